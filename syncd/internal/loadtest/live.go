package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"haven/shared/docid"
)

// HeldP99 is the latency a server must keep its p99 under, with nothing
// missing, to hold a rate.
const HeldP99 = 250 * time.Millisecond

// LiveConfig shapes the live scenario.
type LiveConfig struct {
	Clients int       // editing clients, each its own device and connection
	Docs    int       // residents: every client edits all their timelines
	Rates   []float64 // edits per second per client, one step each, rising
	// MaxRate lets a server that holds every rate in Rates go on, each step
	// half as fast again as the last, up to this rate, so that its ceiling
	// is measured rather than cut off by the ladder. 0: no extension.
	MaxRate float64
	Step    time.Duration // length of each step
	// ServerCPUs names the CPUs the servers were confined to, for the
	// report ("": not confined).
	ServerCPUs string
	Warmup     time.Duration // unmeasured editing at 1 edit/s per client before the first step
	Grace      time.Duration // how long after a step its notes may still arrive
	// Settle is how long, after Grace, a step's late notes may take to clear
	// (unmeasured) before the next step starts on any server, so that one
	// step's backlog does not load the next.
	Settle time.Duration
	Logf   func(format string, args ...any)
	// Trace, if set, receives a CSV line per note arrival (see tracer).
	Trace io.Writer
	// Deadline, if set, stops the steps past Rates early enough to finish
	// by then (go test's -timeout ends a run that overstays).
	Deadline time.Time
}

// StepResult is one rate's figures.
type StepResult struct {
	Rate       float64 // edits per second per client
	Planned    int     // edits the schedule called for
	Edits      int     // edits made
	Seen       int     // (edit, other client) arrivals measured
	P50        time.Duration
	P95        time.Duration
	P99        time.Duration
	Max        time.Duration
	Missing    int           // edits not read by every other client within Grace after the step
	BadClock   int           // arrivals whose note did not carry the expected clock (should be 0)
	Drain      time.Duration // from the end of the step until its last edit was everywhere (Grace if never)
	Uncleared  bool          // some edits had still not arrived everywhere after Grace and Settle
	Reconnects int           // client connections lost and re-made during the step
	ServerCPU  float64       // server CPU seconds over the step and its drain
	ServerPeak int64         // server peak memory (PSS of the tree) over the step and its drain
	PeakParts  string        // how ServerPeak divides between the server and its workers
	DriverCPU  float64       // this process's CPU seconds over the same span (the clients)
	OtherCPU   float64       // CPU seconds the rest of the machine used meanwhile (other work, the idle server)
	Wall       time.Duration // the step and its drain
}

// CPUPerEdit is the server's CPU seconds over the step and its drain for
// each edit made: what relaying an edit to every other client costs it,
// whatever of its own work (compaction, collection) fell in the step.
func (s StepResult) CPUPerEdit() float64 {
	if s.Edits == 0 {
		return 0
	}
	return s.ServerCPU / float64(s.Edits)
}

// Held reports whether the server held the rate: every edit everywhere,
// p99 within HeldP99.
func (s StepResult) Held() bool { return s.Edits > 0 && s.Missing == 0 && s.P99 <= HeldP99 }

// OtherShare is the share of the machine's CPUs that other work took during
// the step.
func (s StepResult) OtherShare() float64 {
	return s.OtherCPU / (s.Wall.Seconds() * float64(runtime.NumCPU()))
}

// Disturbed reports a step during which other work took more than a quarter
// of the machine: its figures say as much about that work as the server.
func (s StepResult) Disturbed() bool { return s.OtherShare() > 0.25 }

// LiveResult is one server's run of the live scenario.
type LiveResult struct {
	Server    Kind
	Steps     []StepResult
	SetupCPU  float64 // server CPU seconds for enrolment, seeding, subscribing and warm-up
	SetupPeak int64
	Peak      int64   // server peak over the whole scenario
	PeakParts string  // how Peak divides between the server and its workers
	CPU       float64 // server CPU seconds over the whole scenario
	Errors    []string
}

// HeldRate is the highest rate held with every lower rate held too; 0 if
// the first step failed.
func (r LiveResult) HeldRate() float64 {
	held := 0.0
	for _, s := range r.Steps {
		if !s.Held() {
			break
		}
		held = s.Rate
	}
	return held
}

// stopDisturbed reports whether the step that ended the server's held run
// (its first failure) ran under other load.
func (r LiveResult) stopDisturbed() bool {
	for _, s := range r.Steps {
		if !s.Held() {
			return s.Disturbed()
		}
	}
	return false
}

// Step returns the figures for a rate, if it was run.
func (r LiveResult) Step(rate float64) (StepResult, bool) {
	for _, s := range r.Steps {
		if s.Rate == rate {
			return s, true
		}
	}
	return StepResult{}, false
}

// RunLive runs the live scenario against every server, interleaved: each
// server is set up in turn (clients enrolled, residents created, every client
// subscribed to every timeline, a warm-up), then each rate runs on one server
// and then the next before the rate rises, so that background load on a
// shared machine falls on both alike. Results come in the servers' order.
func RunLive(ctx context.Context, servers []*Server, cfg LiveConfig) ([]LiveResult, error) {
	logf := cfg.Logf
	if logf == nil {
		logf = func(string, ...any) {}
	}
	results := make([]LiveResult, len(servers))
	runs := make([]*liveRun, len(servers))
	defer func() {
		for i, r := range runs {
			if r != nil {
				results[i].Errors = r.close()
			}
		}
	}()
	for i, srv := range servers {
		results[i].Server = srv.Kind
		u0, err := srv.Usage()
		if err != nil {
			return results, err
		}
		if runs[i], err = setUpLive(ctx, srv, cfg); err != nil {
			return results, fmt.Errorf("%s: %w", srv.Kind.Label(), err)
		}
		u1, err := srv.Usage()
		if err != nil {
			return results, err
		}
		runs[i].u0 = u0
		results[i].SetupCPU, results[i].SetupPeak, results[i].Peak, results[i].PeakParts = u1.CPU-u0.CPU, u1.PeakPSS, u1.PeakPSS, u1.peakParts()
		logf("%s: %d clients hold %d timelines; warmed up", srv.Kind.Label(), cfg.Clients, cfg.Docs)
	}
	step := func(i int, rate float64) error {
		r := runs[i]
		s, err := r.step(ctx, rate, cfg.Step)
		if err != nil {
			return fmt.Errorf("%s at %v edits/s: %w", r.srv.Kind.Label(), rate, err)
		}
		results[i].Steps = append(results[i].Steps, s)
		if s.ServerPeak > results[i].Peak {
			results[i].Peak, results[i].PeakParts = s.ServerPeak, s.PeakParts
		}
		logf("%s: %v edits/s/client: %d edits, p50 %s p95 %s p99 %s, %d missing; CPU-s server %.1f, clients %.1f, others %.1f",
			r.srv.Kind.Label(), rate, s.Edits, ms(s.P50), ms(s.P95), ms(s.P99), s.Missing, s.ServerCPU, s.DriverCPU, s.OtherCPU)
		if s.Uncleared {
			logf("%s: the backlog at %v edits/s had not cleared %v after the step; the next step starts on a busy server",
				r.srv.Kind.Label(), rate, cfg.Grace+cfg.Settle)
		}
		return nil
	}
	for _, rate := range cfg.Rates {
		for i := range runs {
			if err := step(i, rate); err != nil {
				return results, err
			}
		}
	}
	// Past the ladder, only servers that have held every rate so far go on.
	for rate := cfg.Rates[len(cfg.Rates)-1] * 1.5; rate <= cfg.MaxRate; rate *= 1.5 {
		if !cfg.Deadline.IsZero() && time.Until(cfg.Deadline) < 2*(cfg.Step+cfg.Grace+cfg.Settle) {
			logf("no time left for %v edits/s before the deadline: stopping", rate)
			break
		}
		going := false
		for i := range runs {
			if n := len(results[i].Steps); n == 0 || results[i].HeldRate() != results[i].Steps[n-1].Rate {
				continue
			}
			going = true
			if err := step(i, rate); err != nil {
				return results, err
			}
		}
		if !going {
			break
		}
	}
	for i, r := range runs {
		u, err := r.srv.Usage()
		if err != nil {
			return results, err
		}
		results[i].CPU = u.CPU - r.u0.CPU
	}
	return results, nil
}

// setUpLive enrols the clients and one more device, which creates the
// residents; connects every client and has it request every timeline; and
// runs the warm-up. No timing starts before every client holds every
// timeline.
func setUpLive(ctx context.Context, srv *Server, cfg LiveConfig) (*liveRun, error) {
	creds, err := srv.Enroll(ctx, cfg.Clients+1)
	if err != nil {
		return nil, err
	}
	ids, err := seedTimelines(ctx, srv, creds[cfg.Clients], cfg.Docs)
	if err != nil {
		return nil, err
	}
	var trace *tracer
	if cfg.Trace != nil {
		trace = &tracer{w: cfg.Trace, server: srv.Kind}
	}
	r := &liveRun{cfg: cfg, srv: srv, ids: ids, l: newLedger(ids, cfg.Clients, trace), seq: make([]int, cfg.Clients)}
	for i := range cfg.Clients {
		d, err := startDevice(deviceConfig{
			URL: srv.URL(srv.Addr()), Credential: creds[i], Name: fmt.Sprintf("c%02d", i),
			OnChange: func(d *device, id docid.ID) { r.l.arrived(i, d, id) },
		})
		if err != nil {
			r.close()
			return nil, err
		}
		r.devs = append(r.devs, d)
	}
	err = forAll(ctx, 2*time.Minute, r.devs, func(ctx context.Context, d *device) error {
		if err := d.waitOnline(ctx); err != nil {
			return err
		}
		for _, id := range ids {
			d.client.Request(id)
		}
		return d.allHeld(ctx, ids)
	})
	if err == nil && cfg.Warmup > 0 {
		_, err = r.step(ctx, 1, cfg.Warmup)
	}
	if err != nil {
		r.close()
		return nil, err
	}
	return r, nil
}

// seedTimelines has a device of its own create the residents (record and
// timeline each), waits for the server to confirm all of them, and returns
// the timelines.
func seedTimelines(ctx context.Context, srv *Server, cred string, n int) ([]docid.ID, error) {
	d, err := startDevice(deviceConfig{URL: srv.URL(srv.Addr()), Credential: cred, Name: "seeder"})
	if err != nil {
		return nil, err
	}
	defer d.close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := d.waitOnline(ctx); err != nil {
		return nil, err
	}
	var timelines, all []docid.ID
	for i := range n {
		docs, err := d.editor.NewResident(srv.Home(), identity(i))
		if err != nil {
			return nil, err
		}
		if err := d.create(ctx, docs.RecordID, docs.Record); err != nil {
			return nil, err
		}
		if err := d.create(ctx, docs.TimelineID, docs.Timeline); err != nil {
			return nil, err
		}
		timelines = append(timelines, docs.TimelineID)
		all = append(all, docs.RecordID, docs.TimelineID)
	}
	return timelines, d.allSynced(ctx, all)
}

// forAll runs f for every device at once and returns the first error.
func forAll(ctx context.Context, timeout time.Duration, devs []*device, f func(context.Context, *device) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	errs := make([]error, len(devs))
	var wg sync.WaitGroup
	for i, d := range devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(ctx, d)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// liveRun is one server's live scenario, carried from step to step.
type liveRun struct {
	cfg  LiveConfig
	srv  *Server
	devs []*device
	ids  []docid.ID
	l    *ledger
	seq  []int // each client's next edit number
	u0   usage // the server's usage before setup
	// stream tells this run's editors apart from other runs' in the same
	// window (a region's homes): it seeds their timing, so that each edits
	// at a phase of its own, as devices in different homes do, rather than
	// all at the same instants.
	stream uint64
}

// close disconnects the clients and returns the error messages the server
// sent them.
func (r *liveRun) close() []string {
	var errs []string
	for _, d := range r.devs {
		errs = append(errs, d.serverErrors()...)
		d.close()
	}
	r.devs = nil
	return errs
}

// step has every client edit at rate for dur, waits up to Grace for the
// edits to arrive everywhere, and measures; then it gives a backlog up to
// Settle to clear, unmeasured, so the next step starts on a quiet server.
func (r *liveRun) step(ctx context.Context, rate float64, dur time.Duration) (StepResult, error) {
	res := StepResult{Rate: rate}
	if err := r.srv.ResetPeak(); err != nil {
		return res, fmt.Errorf("reset peak memory: %w", err)
	}
	u0, err := r.srv.Usage()
	if err != nil {
		return res, err
	}
	reconn0 := r.reconnects()
	cpu0, machine0 := selfCPU(), machineCPU()
	log := newStepLog()
	start := time.Now()
	end := start.Add(dur)

	var wg sync.WaitGroup
	planned := make([]int, len(r.devs))
	errs := make([]error, len(r.devs))
	for i, d := range r.devs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			planned[i], errs[i] = r.edit(ctx, i, d, rate, start, end, log)
		}()
	}
	wg.Wait()
	log.close()
	if err := errors.Join(errs...); err != nil {
		return res, err
	}

	grace := time.NewTimer(r.cfg.Grace)
	defer grace.Stop()
	select {
	case <-log.allIn:
	case <-grace.C:
	case <-ctx.Done():
		return res, ctx.Err()
	}
	edits, complete, badClock, lat, lastIn := log.freeze()
	stop := time.Now()
	u1, err := r.srv.Usage()
	if err != nil {
		return res, err
	}
	res.DriverCPU = selfCPU() - cpu0
	res.OtherCPU = max(machineCPU()-machine0-(u1.CPU-u0.CPU)-res.DriverCPU, 0)
	if complete < edits {
		settle := time.NewTimer(r.cfg.Settle)
		defer settle.Stop()
		select {
		case <-log.allIn:
		case <-settle.C:
			res.Uncleared = true
		case <-ctx.Done():
			return res, ctx.Err()
		}
	}
	log.end()
	for _, p := range planned {
		res.Planned += p
	}
	res.Edits, res.Missing, res.BadClock, res.Seen = edits, edits-complete, badClock, len(lat)
	res.P50, res.P95, res.P99, res.Max = percentile(lat, 0.50), percentile(lat, 0.95), percentile(lat, 0.99), percentile(lat, 1)
	res.Drain = r.cfg.Grace
	if res.Missing == 0 {
		res.Drain = max(lastIn.Sub(end), 0)
	}
	res.Reconnects = r.reconnects() - reconn0
	res.ServerCPU, res.ServerPeak, res.PeakParts = u1.CPU-u0.CPU, u1.PeakPSS, u1.peakParts()
	res.Wall = stop.Sub(start)
	return res, nil
}

// schedule returns client i's random source for a step beginning at start
// and the time of its first edit: a random offset within interval, drawn
// from a source of the client's own (and its run's: stream), so that no two
// clients edit in lockstep.
func (r *liveRun) schedule(i int, start time.Time, interval time.Duration) (*rand.Rand, time.Time) {
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), r.stream<<16|uint64(i)))
	return rng, start.Add(time.Duration(rng.Int64N(int64(interval))))
}

// edit is one client's schedule for a step: an edit every 1/rate seconds,
// starting at a random offset (schedule), each to a random timeline. A slot the client is too late for is skipped rather
// than bunched up (the schedule is open-loop); Planned-Edits shows it.
func (r *liveRun) edit(ctx context.Context, i int, d *device, rate float64, start, end time.Time, log *stepLog) (planned int, err error) {
	interval := time.Duration(float64(time.Second) / rate)
	rng, next := r.schedule(i, start, interval)
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for ; next.Before(end); next = next.Add(interval) {
		planned++
		timer.Reset(time.Until(next))
		select {
		case <-timer.C:
		case <-ctx.Done():
			return planned, ctx.Err()
		}
		if time.Since(next) > interval {
			continue // a whole interval late: skip the slot
		}
		doc := r.ids[rng.IntN(len(r.ids))]
		seq := r.seq[i]
		r.seq[i]++
		sent := time.Now()
		err := d.addNote(ctx, doc, noteText(i, seq, sent), func(noteID string) {
			r.l.register(doc, noteID, i, seq, log)
		})
		if err != nil {
			return planned, fmt.Errorf("%s: add note: %w", d.name, err)
		}
	}
	return planned, nil
}

func (r *liveRun) reconnects() int {
	n := 0
	for _, d := range r.devs {
		n += d.reconnects()
	}
	return n
}

// percentile returns the p-quantile (nearest rank) of lat, sorting it.
func percentile(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	if !slices.IsSorted(lat) {
		slices.Sort(lat)
	}
	k := int(math.Ceil(p*float64(len(lat)))) - 1
	return lat[min(max(k, 0), len(lat)-1)]
}

// ms is a duration in milliseconds, for logs and tables.
func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }
