package loadtest

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// The result tables: one per scenario, the servers side by side.

func mib(b int64) string { return fmt.Sprintf("%.0f", float64(b)/(1<<20)) }

func rate(r float64) string { return fmt.Sprintf("%g/s", r) }

// LiveTable prints the live scenario's results, a row per server per rate.
func LiveTable(cfg LiveConfig, results []LiveResult) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "Live: %d clients append notes to the same %d timelines, %v per rate; a step's notes may arrive up to %v after it.\n",
		cfg.Clients, cfg.Docs, cfg.Step, cfg.Grace)
	fmt.Fprintf(&sb, "Latency: note made at one client -> readable at each of the %d others. Held: p99 <= %v and nothing missing.\n",
		cfg.Clients-1, HeldP99)
	if cfg.ServerCPUs != "" {
		fmt.Fprintf(&sb, "Each server confined to CPUs %s (taskset).\n", cfg.ServerCPUs)
	}
	if cfg.MaxRate > 0 {
		fmt.Fprintf(&sb, "Rates past %s run only on a server that has held every rate so far (x1.5 a step, up to %s).\n",
			rate(cfg.Rates[len(cfg.Rates)-1]), rate(cfg.MaxRate))
	}
	sb.WriteString("\n")
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "rate/client\tserver\tedits (planned)\tp50 ms\tp95 ms\tp99 ms\tmax ms\tmissing\treconnects\tserver CPU-s\tserver CPU ms/edit\tserver peak PSS MiB\tclients CPU-s\tothers CPU-s (machine)\theld\t")
	var rates []float64 // every rate any server ran, in order
	for _, r := range results {
		for _, s := range r.Steps {
			if !slices.Contains(rates, s.Rate) {
				rates = append(rates, s.Rate)
			}
		}
	}
	slices.Sort(rates)
	steps, disturbed := 0, 0
	for _, x := range rates {
		for _, r := range results {
			s, ok := r.Step(x)
			if !ok {
				continue
			}
			held := "no"
			switch {
			case s.Held():
				held = "yes"
			case s.Uncleared:
				held = "no, backlog" // still behind Grace+Settle after the step
			}
			others := fmt.Sprintf("%.1f (%.0f%%)", s.OtherCPU, 100*s.OtherShare())
			if s.Disturbed() {
				others += " !"
				disturbed++
			}
			fmt.Fprintf(w, "%s\t%s\t%d (%d)\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t%d\t%.1f\t%.2f\t%s\t%.1f\t%s\t%s\t\n",
				rate(s.Rate), r.Server.Label(), s.Edits, s.Planned, msf(s.P50), msf(s.P95), msf(s.P99), msf(s.Max),
				s.Missing, s.Reconnects, s.ServerCPU, 1000*s.CPUPerEdit(), mib(s.ServerPeak), s.DriverCPU, others, held)
			steps++
		}
	}
	w.Flush()
	if disturbed > 0 {
		fmt.Fprintf(&sb, "! %d of %d steps ran while other work took over a quarter of the machine: their figures are pessimistic.\n", disturbed, steps)
	}
	sb.WriteString("\n")
	w = tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "server\theld rate\tp99 at 1/s\tsetup CPU-s\tsetup peak PSS MiB\tscenario CPU-s\tscenario peak PSS MiB (per process)\t")
	for _, r := range results {
		p99 := "-"
		if s, ok := r.Step(1); ok {
			p99 = ms(s.P99)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%.1f\t%s\t%.1f\t%s (%s)\t\n", r.Server.Label(), rate(r.HeldRate()), p99,
			r.SetupCPU, mib(r.SetupPeak), r.CPU, mib(r.Peak), r.PeakParts)
	}
	w.Flush()
	sb.WriteString(cpuPerEdit(rates, results))
	sb.WriteString(liveVerdict(results))
	if haven, js := pair(results, func(r *LiveResult) Kind { return r.Server }); haven != nil && js != nil {
		sb.WriteString(memoryVerdict(haven.Peak, js.Peak))
	}
	sb.WriteString("Peak memory is the proportional set size (PSS, smaps_rollup) summed over the server's processes (syncd with its CRDT workers), sampled every 100 ms, reset at each step: a page the processes share counts once.\n")
	sb.WriteString("CPU-s over each step and its drain: the server's process tree; the clients (this process); others (the rest of the machine, and its share of all CPUs).\n")
	fmt.Fprintf(&sb, "Servers' steps alternate at each rate; a step's backlog gets up to %v more, unmeasured, to clear before the next (\"backlog\": it did not).\n", cfg.Settle)
	return sb.String()
}

// cpuPerEdit sets the servers' CPU per edit side by side at every rate
// both ran, against the target of a fifth of the JS server's.
func cpuPerEdit(rates []float64, results []LiveResult) string {
	haven, js := pair(results, func(r *LiveResult) Kind { return r.Server })
	if haven == nil || js == nil {
		return ""
	}
	var sb strings.Builder
	for _, x := range rates {
		h, ok1 := haven.Step(x)
		j, ok2 := js.Step(x)
		if !ok1 || !ok2 || j.CPUPerEdit() == 0 {
			continue
		}
		ratio := h.CPUPerEdit() / j.CPUPerEdit()
		verdict := "met"
		if ratio > 1.0/5 {
			verdict = "NOT met"
		}
		note := ""
		if h.Missing > 0 || j.Missing > 0 {
			// A server behind its clients did not spend, within the step,
			// the CPU for the edits it had not yet relayed.
			note = " (edits left undelivered: not comparable)"
		}
		fmt.Fprintf(&sb, "Target relay CPU per edit <= 1/5 of the JS server's at %s: %.2f vs %.2f ms = %.2fx: %s%s.\n",
			rate(x), 1000*h.CPUPerEdit(), 1000*j.CPUPerEdit(), ratio, verdict, note)
	}
	return sb.String()
}

// memoryVerdict states the memory target: Haven's peak at most a third of
// the JS server's in the same run.
func memoryVerdict(haven, js int64) string {
	if js == 0 {
		return ""
	}
	ratio := float64(haven) / float64(js)
	verdict := "met"
	if ratio > 1.0/3 {
		verdict = "NOT met"
	}
	return fmt.Sprintf("Target peak memory <= 1/3 of the JS server's: %s vs %s MiB PSS = %.2fx: %s.\n", mib(haven), mib(js), ratio, verdict)
}

// liveVerdict states the two live targets.
func liveVerdict(results []LiveResult) string {
	haven, js := pair(results, func(r *LiveResult) Kind { return r.Server })
	var sb strings.Builder
	if haven != nil && js != nil {
		h, j := haven.HeldRate(), js.HeldRate()
		switch {
		case j == 0 && h == 0:
			fmt.Fprintf(&sb, "Target held rate >= 5x the JS server's: neither held the lowest rate.\n")
		case j == 0:
			fmt.Fprintf(&sb, "Target held rate >= 5x the JS server's: Haven holds %s, the JS server none of the rates: met.\n", rate(h))
		default:
			verdict := "met"
			if h < 5*j {
				verdict = "NOT met"
			}
			fmt.Fprintf(&sb, "Target held rate >= 5x the JS server's: %s vs %s = %.1fx: %s.\n", rate(h), rate(j), h/j, verdict)
		}
		if haven.stopDisturbed() || js.stopDisturbed() {
			sb.WriteString("  (a server's first failed step ran under other load, marked !: its held rate may be higher on a quiet machine)\n")
		}
	}
	if haven != nil {
		if s, ok := haven.Step(1); ok {
			verdict := "met"
			if s.P99 > 100*time.Millisecond || s.Missing > 0 {
				verdict = "NOT met"
			}
			note := ""
			if s.Disturbed() {
				note = " (under other load, marked !)"
			}
			fmt.Fprintf(&sb, "Target p99 <= 100 ms at 1 edit/s per client: %s, %d missing: %s%s.\n", ms(s.P99), s.Missing, verdict, note)
		}
	}
	return sb.String()
}

// FreshTable prints the fresh-device scenario's results, a row per server.
func FreshTable(results []FreshResult) string {
	var sb strings.Builder
	if len(results) == 0 {
		return ""
	}
	records := 0
	for _, r := range results {
		records = max(records, r.Records)
	}
	fmt.Fprintf(&sb, "Fresh device: a new client fetches %d resident records; saved size = sum of each record's Automerge save.\n", records)
	target := "Target: <= 3 s and <= 2x saved."
	if results[0].JSClient {
		target = "The device is the official JavaScript client, timed from its connection."
	}
	fmt.Fprintf(&sb, "Wire bytes: TCP payload both ways through a counting proxy (HTTP upgrade and websocket framing included). %s\n\n", target)
	w := tabwriter.NewWriter(&sb, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "server\tmethod\tdocs\tsaved KiB\tfetch s\twire KiB (up/down)\tx saved\tquiet s\twire KiB at quiet\tx saved\tserver CPU-s\tserver peak PSS MiB (per process)\tsum of VmHWM MiB\tothers CPU-s\tseed CPU-s\tseed peak PSS MiB\t")
	for _, r := range results {
		saved := float64(r.SavedBytes)
		if r.Failed != "" {
			fmt.Fprintf(w, "%s\t%s\t\t%.0f\tFAILED\t\t\t\t\t\t\t\t\t\t%.1f\t%s\t\n", r.Server.Label(), r.Method, saved/1024, r.SeedCPU, mib(r.SeedPeak))
			continue
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%.0f\t%.2f\t%.0f (%.0f/%.0f)\t%.2f\t%.2f\t%.0f\t%.2f\t%.1f\t%s\t%s\t%.1f\t%.1f\t%s\t\n",
			r.Server.Label(), r.Method, r.Docs, saved/1024, r.Fetch.Seconds(),
			float64(r.WireBytes())/1024, float64(r.FetchUp)/1024, float64(r.FetchDown)/1024, float64(r.WireBytes())/saved,
			r.Quiet.Seconds(), float64(r.QuietUp+r.QuietDown)/1024, float64(r.QuietUp+r.QuietDown)/saved,
			r.ServerCPU, mib(r.ServerPeak)+" ("+r.PeakParts+")", mib(r.ServerHWM), r.OtherCPU, r.SeedCPU, mib(r.SeedPeak))
	}
	w.Flush()
	for _, r := range results {
		if r.Failed != "" {
			fmt.Fprintf(&sb, "%s FAILED: %s (its seed figures stand).\n", r.Server.Label(), r.Failed)
		}
	}
	if haven, js := pair(results, func(r *FreshResult) Kind { return r.Server }); haven != nil && js != nil && haven.Failed == "" && js.Failed == "" {
		sb.WriteString(memoryVerdict(max(haven.SeedPeak, haven.ServerPeak), max(js.SeedPeak, js.ServerPeak)))
	}
	if results[0].JSClient {
		sb.WriteString(jsClientVerdict(results))
	}
	for _, r := range results {
		if r.Server != Haven || r.JSClient || r.Failed != "" {
			continue
		}
		verdict := "met"
		if r.Fetch > 3*time.Second || r.WireBytes() > 2*r.SavedBytes {
			verdict = "NOT met"
		}
		fmt.Fprintf(&sb, "Target for %s: %.2f s, %.2fx saved: %s.\n", r.Server.Label(), r.Fetch.Seconds(), float64(r.WireBytes())/float64(r.SavedBytes), verdict)
	}
	sb.WriteString("Server and others' figures cover dialling to quiet; seed figures, the seeding device's upload before it; the memory target takes the higher peak of the two.\n")
	sb.WriteString("Peak memory is the proportional set size (PSS, smaps_rollup) summed over the server's processes, sampled every 100 ms: a page the processes share (syncd's binary, in the parent and each worker) counts once. The sum of each process's VmHWM counts it in each, and adds peaks that need not coincide.\n")
	return sb.String()
}

func msf(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
