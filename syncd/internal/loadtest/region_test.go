package loadtest

import (
	"context"
	"flag"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The region run's knobs, each defaulting to an environment variable as
// the others do. The default sizes are small enough for the run to fit in
// what `make bench` leaves it on a 2-core machine.
var (
	regionHomesFlag     = flag.String("loadtest.region-homes", envString("HAVEN_BENCH_REGION_HOMES", "3,6"), "region run sizes in care homes, at least two for a slope (HAVEN_BENCH_REGION_HOMES)")
	regionNodesFlag     = flag.String("loadtest.region-nodes", envString("HAVEN_BENCH_REGION_NODES", "1,3"), "region runs on one relay node and on a cluster of this many (HAVEN_BENCH_REGION_NODES)")
	regionResidentsFlag = flag.Int("loadtest.region-residents", envInt("HAVEN_BENCH_REGION_RESIDENTS", ResidentsPerHome), "residents per care home (HAVEN_BENCH_REGION_RESIDENTS)")
	regionWindowFlag    = flag.Duration("loadtest.region-window", envDuration("HAVEN_BENCH_REGION_WINDOW", 20*time.Second), "how long a region run's editors edit (HAVEN_BENCH_REGION_WINDOW)")
	regionSettleFlag    = flag.Duration("loadtest.region-settle", envDuration("HAVEN_BENCH_REGION_SETTLE", time.Minute), "the longest a region run waits after seeding for the relay's workers to let the seeding's documents go, before the edit window; 0: none (HAVEN_BENCH_REGION_SETTLE)")
	regionEditsFlag     = flag.Float64("loadtest.region-edits", envFloat("HAVEN_BENCH_REGION_EDITS", FullEditsPerMinute), "the region's edits a minute, shared by its editors; default: the full region's (HAVEN_BENCH_REGION_EDITS)")
)

// parseCounts reads a comma-separated list of positive whole numbers.
func parseCounts(b *testing.B, name, list string) []int {
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 {
			b.Fatalf("%s: %q is not a positive whole number", name, s)
		}
		out = append(out, n)
	}
	return out
}

// regionMinRun is the least time a region run is started with when there
// is no earlier run to judge by.
const regionMinRun = 90 * time.Second

// BenchmarkRegion is the region scenario at each size in
// -loadtest.region-homes, smallest first, each on one node and on a
// cluster, then a straight line through each node count's figures read at
// the full region (RegionTable). Each run is a fresh relay. Under `make
// bench` it runs after the other benchmarks of this package, within what
// go test's -timeout leaves: a size that would not fit is left out and
// said so. It runs once whatever b.N is.
func BenchmarkRegion(b *testing.B) {
	homes := parseCounts(b, "-loadtest.region-homes", *regionHomesFlag)
	nodes := parseCounts(b, "-loadtest.region-nodes", *regionNodesFlag)
	slices.Sort(homes)
	bin := buildSyncd(b, b.TempDir())
	// liveDeadline keeps 3 minutes of -timeout for what follows the live
	// run; this run may use all but the last of them.
	deadline := liveDeadline()
	if !deadline.IsZero() {
		deadline = deadline.Add(2 * time.Minute)
	}
	perHome := map[int]time.Duration{} // each node count's last run's time per home
	var results []RegionResult
	for _, h := range homes {
		for _, n := range nodes {
			need := regionMinRun
			if per, ok := perHome[n]; ok {
				need = per * time.Duration(h)
			}
			if !deadline.IsZero() && time.Until(deadline) < need {
				b.Logf("region: %d homes on %d node(s) left out: about %v needed, %v left of -timeout (run -bench Region alone)",
					h, n, need.Round(time.Second), time.Until(deadline).Round(time.Second))
				continue
			}
			start := time.Now()
			res, err := RunRegion(context.Background(), RegionConfig{Syncd: bin, Dir: b.TempDir(), Nodes: n, Homes: h,
				Residents: *regionResidentsFlag, EditsPerMinute: *regionEditsFlag, Window: *regionWindowFlag, Settle: *regionSettleFlag,
				Grace: *graceFlag, Workers: *workersFlag, Logf: progress})
			if err != nil {
				b.Fatalf("region, %d homes on %d node(s): %v", h, n, err)
			}
			perHome[n] = time.Since(start) / time.Duration(h)
			results = append(results, res)
			if len(res.Errors) > 0 {
				b.Logf("region, %d homes on %d node(s): the relay sent %d error messages, first: %q", h, n, len(res.Errors), res.Errors[0])
			}
		}
	}
	if len(results) == 0 {
		b.Skip("region: no run fitted in what -timeout left")
	}
	printTable(b, RegionTable(results))
	b.ReportMetric(0, "ns/op") // one long run: the time per op says nothing
	for _, p := range projectRegion(results) {
		b.ReportMetric(p.Lines[figP99].At(FullHomes), fmt.Sprintf("%dnode-projected-p99-ms", p.Nodes))
		b.ReportMetric(p.Lines[figPeak].At(FullHomes), fmt.Sprintf("%dnode-projected-MiB-per-node", p.Nodes))
		b.ReportMetric(p.Lines[figEnd].At(FullHomes), fmt.Sprintf("%dnode-projected-end-MiB-per-node", p.Nodes))
	}
}

func TestFitLine(t *testing.T) {
	for _, c := range []struct {
		xs, ys []float64
		want   line
	}{
		{[]float64{10, 20, 40}, []float64{23, 43, 83}, line{A: 3, B: 2, R2: 1}},
		{[]float64{1, 2, 3}, []float64{1, 3, 2}, line{A: 1, B: 0.5, R2: 0.25}},
		{[]float64{5, 5, 10}, []float64{7, 9, 18}, line{A: -2, B: 2, R2: 200.0 / 206}},
		{[]float64{3, 6, 12}, []float64{4, 4, 4}, line{A: 4, B: 0, R2: 1}},
	} {
		got, ok := fitLine(c.xs, c.ys)
		if !ok || math.Abs(got.A-c.want.A) > 1e-9 || math.Abs(got.B-c.want.B) > 1e-9 || math.Abs(got.R2-c.want.R2) > 1e-9 {
			t.Errorf("fitLine(%v, %v) = %+v, %v, want %+v", c.xs, c.ys, got, ok, c.want)
		}
	}
	for _, xs := range [][]float64{nil, {10}, {10, 10}} {
		if l, ok := fitLine(xs, xs); ok {
			t.Errorf("fitLine(%v) = %+v, want no line: no two distinct sizes", xs, l)
		}
	}
}

// The projection fits each node count's runs apart, leaves out a node
// count run at one size only, and trusts a line only through three sizes
// or more that follow it.
func TestProjectRegion(t *testing.T) {
	run := func(nodes, homes int, peakMiB int64, p99 time.Duration) RegionResult {
		peaks, own := make([]int64, nodes), make([]int64, nodes)
		for i := range peaks {
			peaks[i], own[i] = peakMiB<<20, peakMiB<<20/4
		}
		return RegionResult{Nodes: nodes, Homes: homes, NodePeaks: peaks, NodeOwn: own, P99: p99, CPU: float64(homes), Wall: 10 * time.Second,
			Bootstrap: time.Duration(homes) * time.Millisecond, Serving: time.Second, Back: 2 * time.Second}
	}
	proj := projectRegion([]RegionResult{
		run(1, 10, 100, 10*time.Millisecond), run(3, 10, 200, 20*time.Millisecond),
		run(1, 20, 110, 12*time.Millisecond), run(3, 20, 220, 30*time.Millisecond),
		run(3, 40, 260, 20*time.Millisecond),
		run(5, 10, 300, time.Millisecond),
	})
	if len(proj) != 2 || proj[0].Nodes != 1 || proj[1].Nodes != 3 {
		t.Fatalf("projectRegion: %d projections, want node counts 1 and 3 (5 ran at one size)", len(proj))
	}
	one, three := proj[0], proj[1]
	for _, c := range []struct {
		what      string
		got, want float64
	}{
		{"1 node: MiB per node", one.Lines[figPeak].At(FullHomes), 100 + 990},
		{"1 node: p99 ms", one.Lines[figP99].At(FullHomes), 10 + 0.2*990},
		{"3 nodes: MiB per node", three.Lines[figPeak].At(FullHomes), 200 + 2*990},
		{"3 nodes: MiB in all", three.Lines[figPeakSum].At(FullHomes), 3 * (200 + 2*990)},
		{"3 nodes: syncd's own MiB per node", three.Lines[figOwn].At(FullHomes), (200 + 2*990) / 4},
		{"3 nodes: workers' MiB per node", three.Lines[figWorkers].At(FullHomes), 3 * (200 + 2*990) / 4},
		{"3 nodes: cores", three.Lines[figCores].At(FullHomes), 100},
		{"3 nodes: bootstrap s", three.Lines[figBootstrap].At(FullHomes), 1},
		{"3 nodes: restart serving s", three.Lines[figServing].At(FullHomes), 1},
		{"3 nodes: devices back s", three.Lines[figBack].At(FullHomes), 2},
	} {
		if math.Abs(c.got-c.want) > 1e-6 {
			t.Errorf("%s at %d homes = %g, want %g", c.what, FullHomes, c.got, c.want)
		}
	}
	if one.Sizes() != 2 || one.Trusted(figPeak) {
		t.Errorf("1 node: %d sizes, memory line trusted %v; want 2 sizes, not trusted (any two points make a line)", one.Sizes(), one.Trusted(figPeak))
	}
	if three.Sizes() != 3 || !three.Trusted(figPeak) || three.Trusted(figP99) {
		t.Errorf("3 nodes: %d sizes, memory line trusted %v (R2 %.2f), p99 line trusted %v (R2 %.2f); want 3, true, false",
			three.Sizes(), three.Trusted(figPeak), three.Lines[figPeak].R2, three.Trusted(figP99), three.Lines[figP99].R2)
	}
}

// Every size keeps the full region's shape: two devices per home, one in
// ten editing, and the region's edits shared by its editors; at the full
// size each editor edits once a minute.
func TestRegionShape(t *testing.T) {
	for _, c := range []struct {
		homes, editors int
		every          time.Duration
	}{
		{FullHomes, 200, time.Minute},
		{40, 8, 2400 * time.Millisecond},
		{10, 2, 600 * time.Millisecond},
		{3, 1, 300 * time.Millisecond},
	} {
		cfg := RegionConfig{Homes: c.homes, EditsPerMinute: FullEditsPerMinute}
		if cfg.Devices() != 2*c.homes || cfg.Editors() != c.editors || cfg.EditEvery() != c.every {
			t.Errorf("%d homes: %d devices, %d editors each every %v; want %d, %d, %v",
				c.homes, cfg.Devices(), cfg.Editors(), cfg.EditEvery(), 2*c.homes, c.editors, c.every)
		}
	}
}

// The region's editors, one per home, each edit at a phase of their own:
// were they in step, every edit of a window would reach the relay in bursts
// as large as the number of editors, and the latency measured would grow
// with the region's size for that reason alone.
func TestRegionEditorsAreOutOfStep(t *testing.T) {
	start := time.Now()
	const homes, interval = 200, time.Minute
	firsts := map[time.Duration]int{}
	for k := range homes {
		_, first := homeRun(k, nil).schedule(0, start, interval)
		firsts[first.Sub(start)/time.Second]++
	}
	// 200 editors over 60 one-second slots: in step, all 200 share one; out
	// of step, the fullest holds a handful (20 or more is a chance of about
	// one in forty million).
	most := 0
	for _, n := range firsts {
		most = max(most, n)
	}
	if most >= 20 {
		t.Fatalf("%d of %d editors make their first edit in the same second of %v", most, homes, interval)
	}
}

// The region table says, per run, whether its edit window waited for the
// relay to let the seeding's documents go, how long, and whether it began
// before they were.
func TestRegionTableSaysWhetherTheWindowWaited(t *testing.T) {
	runs := []RegionResult{
		{Nodes: 1, Homes: 3, Editors: 1, EditEvery: time.Second},
		{Nodes: 1, Homes: 6, Editors: 1, EditEvery: time.Second, Settled: 3200 * time.Millisecond},
		{Nodes: 1, Homes: 12, Editors: 2, EditEvery: time.Second, Settled: time.Minute, Unsettled: true},
	}
	var cells []string
	for _, line := range strings.Split(RegionTable(runs), "\n") {
		f := strings.Fields(line)
		if len(f) > 2 && f[0] == "1" && (f[1] == "3" || f[1] == "6" || f[1] == "12") {
			cells = append(cells, line)
		}
	}
	if len(cells) != 3 {
		t.Fatalf("%d rows for 3 runs:\n%s", len(cells), RegionTable(runs))
	}
	for i, want := range []string{" - ", " 3.2 ", " 60.0 ! "} {
		if !strings.Contains(cells[i], want) {
			t.Errorf("run %d's row lacks %q: %s", i, want, cells[i])
		}
		// Only the run that did not wait has a dash, only the one that
		// gave up a mark.
		if dash := strings.Contains(cells[i], " - "); dash != (i == 0) {
			t.Errorf("run %d's row has a dash %v: %s", i, dash, cells[i])
		}
		if mark := strings.Contains(cells[i], " ! "); mark != (i == 2) {
			t.Errorf("run %d's row has a mark %v: %s", i, mark, cells[i])
		}
	}
}
