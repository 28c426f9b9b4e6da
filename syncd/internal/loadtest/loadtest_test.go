package loadtest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Knobs: each flag defaults to an environment variable, so that a quick run
// works through make (`HAVEN_BENCH_STEP=3s make bench`) as well as alone
// (`go test -run '^$' -bench Live ./syncd/internal/loadtest -loadtest.step 3s`).
var (
	stepFlag    = flag.Duration("loadtest.step", envDuration("HAVEN_BENCH_STEP", 20*time.Second), "length of each live rate step (HAVEN_BENCH_STEP)")
	ratesFlag   = flag.String("loadtest.rates", envString("HAVEN_BENCH_RATES", "0.5,1,2,4,8"), "live rates, edits/s per client (HAVEN_BENCH_RATES)")
	maxRateFlag = flag.Float64("loadtest.maxrate", envFloat("HAVEN_BENCH_MAXRATE", 27), "past the rates, a server holding them all goes on at x1.5 a step up to this (HAVEN_BENCH_MAXRATE; 0: never)")
	clientsFlag = flag.Int("loadtest.clients", envInt("HAVEN_BENCH_CLIENTS", 20), "live editing clients (HAVEN_BENCH_CLIENTS)")
	docsFlag    = flag.Int("loadtest.docs", envInt("HAVEN_BENCH_DOCS", 50), "live residents, all edited by every client (HAVEN_BENCH_DOCS)")
	graceFlag   = flag.Duration("loadtest.grace", envDuration("HAVEN_BENCH_GRACE", 5*time.Second), "how long after a step its edits may arrive (HAVEN_BENCH_GRACE)")
	settleFlag  = flag.Duration("loadtest.settle", envDuration("HAVEN_BENCH_SETTLE", 10*time.Second), "after the grace, how long a step's backlog may take to clear, unmeasured, before the next step (HAVEN_BENCH_SETTLE)")
	warmupFlag  = flag.Duration("loadtest.warmup", envDuration("HAVEN_BENCH_WARMUP", 3*time.Second), "unmeasured editing before the first step (HAVEN_BENCH_WARMUP)")
	recordsFlag = flag.Int("loadtest.records", envInt("HAVEN_BENCH_RECORDS", 1000), "records a fresh device fetches (HAVEN_BENCH_RECORDS)")
	serversFlag = flag.String("loadtest.servers", envString("HAVEN_BENCH_SERVERS", "haven,js"), "servers to measure (HAVEN_BENCH_SERVERS)")
	traceFlag   = flag.String("loadtest.trace", envString("HAVEN_BENCH_TRACE", ""), "file for a CSV line per live note arrival (HAVEN_BENCH_TRACE)")
	syncdFlag   = flag.String("loadtest.syncd", envString("HAVEN_BENCH_SYNCD", ""), "a syncd binary to run instead of building one (HAVEN_BENCH_SYNCD), e.g. for perf probes")
	cpusFlag    = flag.String("loadtest.server-cpus", envString("HAVEN_BENCH_SERVER_CPUS", ""), "confine each server to these CPUs (a taskset list, e.g. 4-7); run the benchmark itself under taskset for the clients' (HAVEN_BENCH_SERVER_CPUS)")
	workersFlag = flag.Int("loadtest.workers", envInt("HAVEN_BENCH_WORKERS", 0), "syncd CRDT workers; 0: syncd's default (HAVEN_BENCH_WORKERS)")
)

func envString(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, err := strconv.ParseFloat(os.Getenv(name), 64); err == nil {
		return v
	}
	return def
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// started is when the test binary started, for keeping within -timeout.
var started = time.Now()

// liveDeadline leaves the fresh-device benchmark a few minutes of go test's
// -timeout (10 minutes unless given) after the live one.
func liveDeadline() time.Time {
	f := flag.Lookup("test.timeout")
	if f == nil {
		return time.Time{}
	}
	d, ok := f.Value.(flag.Getter).Get().(time.Duration)
	if !ok || d <= 0 {
		return time.Time{}
	}
	return started.Add(d - 3*time.Minute)
}

// jsScript is the reference server, relative to this package.
const jsScript = "../../interop/server.mjs"

// kinds returns the servers to measure. The JavaScript one needs Node and
// the interop packages (make deps); without them it is left out and said so.
func kinds(b *testing.B) []Kind {
	var out []Kind
	for _, s := range strings.Split(*serversFlag, ",") {
		switch k := Kind(strings.TrimSpace(s)); k {
		case Haven:
			out = append(out, k)
		case JS:
			if _, err := exec.LookPath("node"); err != nil {
				b.Logf("JS sync server left out: node is not installed (make deps)")
				continue
			}
			if _, err := os.Stat(filepath.Join(filepath.Dir(jsScript), "node_modules", "@automerge", "automerge-repo")); err != nil {
				b.Logf("JS sync server left out: syncd/interop/node_modules is missing (make deps)")
				continue
			}
			out = append(out, k)
		default:
			b.Fatalf("unknown server %q in -loadtest.servers (haven, js)", s)
		}
	}
	return out
}

// buildSyncd builds the relay binary once per benchmark into dir: it runs
// as its own process, with its CRDT workers as its children.
func buildSyncd(b *testing.B, dir string) string {
	b.Helper()
	if *syncdFlag != "" {
		return *syncdFlag
	}
	bin := filepath.Join(dir, "syncd")
	out, err := exec.Command("go", "build", "-o", bin, "haven/syncd").CombinedOutput()
	if err != nil {
		b.Fatalf("go build syncd: %v\n%s", err, out)
	}
	return bin
}

// startServer starts a fresh server of kind k, stopped when the benchmark ends.
func startServer(b *testing.B, k Kind, syncdBin string) *Server {
	b.Helper()
	var srv *Server
	var err error
	if k == Haven {
		srv, err = StartHaven(syncdBin, b.TempDir(), *workersFlag, *cpusFlag)
	} else {
		srv, err = StartJS(jsScript, b.TempDir(), *cpusFlag)
	}
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := srv.Stop(); err != nil {
			b.Errorf("stop: %v", err)
		}
	})
	return srv
}

func parseRates(b *testing.B) []float64 {
	var rates []float64
	for _, s := range strings.Split(*ratesFlag, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r <= 0 {
			b.Fatalf("-loadtest.rates: %q is not a positive rate", s)
		}
		rates = append(rates, r)
	}
	return rates
}

// progress reports how a long run is going, on stderr as it happens.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "loadtest: "+format+"\n", args...)
}

// printTable shows a result table whole on stdout (the testing package keeps
// only ten lines of a benchmark's log) and logs its verdict lines, the ones
// naming a target, through b.Log.
func printTable(b *testing.B, table string) {
	fmt.Printf("\n%s\n", table)
	for _, line := range strings.Split(table, "\n") {
		if strings.HasPrefix(line, "Target") {
			b.Log(line)
		}
	}
}

// BenchmarkLive is the live scenario on Haven's relay and the JavaScript
// server, each a fresh process, their steps interleaved (see RunLive). It
// runs once whatever b.N is: its figures are the table it prints and the
// metrics it reports.
func BenchmarkLive(b *testing.B) {
	cfg := LiveConfig{Clients: *clientsFlag, Docs: *docsFlag, Rates: parseRates(b), MaxRate: *maxRateFlag, Step: *stepFlag,
		Warmup: *warmupFlag, Grace: *graceFlag, Settle: *settleFlag, Deadline: liveDeadline(), Logf: progress, ServerCPUs: *cpusFlag}
	if *traceFlag != "" {
		f, err := os.Create(*traceFlag)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		cfg.Trace = f
	}
	bin := buildSyncd(b, b.TempDir())
	var servers []*Server
	for _, k := range kinds(b) {
		servers = append(servers, startServer(b, k, bin))
	}
	results, err := RunLive(context.Background(), servers, cfg)
	if err != nil {
		b.Fatal(err)
	}
	for i, srv := range servers {
		if errs := results[i].Errors; len(errs) > 0 {
			b.Logf("%s sent %d error messages, first: %q", srv.Kind.Label(), len(errs), errs[0])
		}
		if err := srv.Stop(); err != nil {
			b.Errorf("%s: %v", srv.Kind.Label(), err)
		}
	}
	printTable(b, LiveTable(cfg, results))
	b.ReportMetric(0, "ns/op") // one long run: the time per op says nothing
	for _, r := range results {
		b.ReportMetric(r.HeldRate(), string(r.Server)+"-held-edits/s/client")
		if s, ok := r.Step(1); ok {
			b.ReportMetric(msf(s.P99), string(r.Server)+"-p99-ms@1/s")
		}
		b.ReportMetric(r.CPU, string(r.Server)+"-CPU-s")
		b.ReportMetric(float64(r.Peak)/(1<<20), string(r.Server)+"-peak-MiB")
	}
}

// BenchmarkFreshDevice is the fresh-device scenario, each server a fresh
// process. It runs once whatever b.N is.
func BenchmarkFreshDevice(b *testing.B) {
	cfg := FreshConfig{Records: *recordsFlag, History: *historyFlag, Logf: progress, JSClient: freshClient(b)}
	bin := buildSyncd(b, b.TempDir())
	var results []FreshResult
	for _, k := range kinds(b) {
		srv := startServer(b, k, bin)
		// A server that fails is reported beside the other, which still
		// runs: the table shows what each did.
		res, err := RunFresh(context.Background(), srv, cfg)
		if err != nil {
			res.Failed = err.Error()
		}
		if err := srv.Stop(); err != nil {
			b.Errorf("%s: %v", k.Label(), err)
		}
		results = append(results, res)
	}
	printTable(b, FreshTable(results))
	b.ReportMetric(0, "ns/op")
	for _, r := range results {
		if r.Failed != "" {
			b.Errorf("%s: %s", r.Server.Label(), r.Failed)
			continue
		}
		b.ReportMetric(r.Fetch.Seconds(), string(r.Server)+"-fetch-s")
		b.ReportMetric(float64(r.WireBytes())/float64(r.SavedBytes), string(r.Server)+"-wire/saved")
		b.ReportMetric(r.ServerCPU, string(r.Server)+"-CPU-s")
		b.ReportMetric(float64(r.ServerPeak)/(1<<20), string(r.Server)+"-peak-MiB")
	}
}
