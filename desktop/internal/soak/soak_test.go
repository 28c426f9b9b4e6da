package soak

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/rig"
)

// TestSoak is the suite. Without flags it runs the fast subset (a couple
// of chaos rounds, a short hostile phase, one damaged chunk on each side),
// which `go test ./...` includes; -soak.full runs the whole thing (make
// soak). Both print the same summary table.
//
// Phases:
//  1. setup: the real syncd built from ./syncd, its demo home (40
//     residents) grown to 60 by a desktop, N desktops enrolled through their
//     own fault links, all converged on LAN;
//  2. chaos: rounds of a fault window (relay and desktop SIGKILLs at random
//     points during sync, cuts, blackholes both and one way, on each
//     desktop's link profile, with edits throughout), then everything is
//     healed and the time each desktop takes to converge is measured;
//  3. hostile: healthy desktops' edit-to-other-desktop latency with and
//     without an attack by unenrolled, revoked and out-of-scope devices,
//     slowloris handshakes, a reader that never reads, oversized frames,
//     garbage CBOR and mutated Automerge sync messages; then a connection
//     flood;
//  4. disk: a truncated and a bit-flipped chunk in two stopped desktops'
//     stores and in the stopped relay's, and raw damage to copies of the
//     relay's files;
//  5. final: everything healed and converged, stopped cleanly, and every
//     store opened: acknowledged changes present everywhere, equal heads
//     and records everywhere, damaged chunks quarantined and reported.
//
// With -soak.cluster (make soak-cluster) the relay is three syncd nodes as
// one relay (cluster_test.go): routes between them through links, the
// organisations made through the running cluster, each desktop enrolled
// at all three through one line per node, node kills and partitions
// instead of relay kills, and every node's store compared at the end; the
// hostile, insider and disk phases, written for one relay, are skipped.
func TestSoak(t *testing.T) {
	cfg := loadConfig()
	if testing.Short() && !*flagFull {
		t.Skip("the soak's fast subset takes about a minute; -short skips it")
	}
	start := time.Now()
	root := *flagDir
	keep := root != ""
	if root == "" {
		var err error
		if root, err = os.MkdirTemp("", "haven-soak-"); err != nil {
			t.Fatal(err)
		}
	} else if err := os.MkdirAll(root, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Logf("soak %s: seed %d (replay with -soak.seed=%d), data in %s", cfg.mode, cfg.seed, cfg.seed, root)
	h := newHarness(t, cfg, root)
	rep := &report{cfg: cfg, start: start}
	defer func() {
		if f, err := os.Create(filepath.Join(root, "stalls.tsv")); err == nil {
			fmt.Fprintf(f, "entered\tdesktop\tline\tdirection\tms\n")
			for _, a := range h.agents {
				a.writeStalls(f)
			}
			f.Close()
		}
		for _, a := range h.agents {
			st := a.linkStats()
			rep.links = append(rep.links, fmt.Sprintf("%s (%s) %d conns, %.1f/%.1f MB up/down, %d loss stalls",
				a.spec.name, a.spec.profile.Name, st.Accepted, float64(st.BytesUp)/1e6, float64(st.BytesDown)/1e6, st.Stalls))
		}
		h.shutdown()
		h.close()
		rep.elapsed = time.Since(start)
		rep.counts = h.counts
		// go test shows a passing package's output only with -v, so the
		// table also goes to a file that outlives the run's folder.
		table := rep.table()
		fmt.Print(table)
		os.WriteFile(filepath.Join(root, "summary.txt"), []byte(table), 0o600)
		last := filepath.Join(os.TempDir(), "haven-soak-"+cfg.mode+"-summary.txt")
		if os.WriteFile(last, []byte(table), 0o644) == nil {
			t.Logf("summary table also in %s", last)
		}
		if t.Failed() || keep {
			t.Logf("run data kept in %s (events.log, acks.jsonl, schedule.txt, stalls.tsv, relay.log, agent logs)", root)
		} else {
			os.RemoveAll(root)
		}
	}()

	h.setup()
	rep.seedNote = h.seedNote
	if t.Failed() {
		return
	}
	h.checkRoutes(rep, "setup")
	h.chaos(rep)
	if h.cluster == nil {
		h.hostile(rep)
		h.insider(rep)
		h.disk(rep)
	} else {
		// The hostile and insider phases measure one relay's latency
		// and restarts, and the disk phase damages one relay's stopped
		// store: all three are written for one relay, and the cluster's
		// own suites (syncd's) attack its nodes. Said in the table.
		rep.skipped = append(rep.skipped, "hostile", "insider", "disk")
	}
	h.final(rep)
	// The deferred table takes the counts again once everything stopped;
	// the check needs them now (the rounds row reads them).
	rep.counts = h.counts
	rep.check(t)
}

// agentMemTable is the i-th desktop's store memtable: the store's default
// and a further MiB and a half for each desktop before it. The desktops
// write the same notes at the same pace, so with memtables of one size they
// fill them at the same moment, and the save that fills one waits while
// Badger allocates the next (store.BenchmarkMemtableFill): five desktops
// waited 170 to 360 ms on one save at once, on this machine's two cores,
// which no desktop on a computer of its own sees. Sizes apart, each fills
// its own at its own moment.
func agentMemTable(i int) int64 { return 8<<20 + int64(i)*(3<<19) }

// desktopsFolder is where the desktops keep their stores. Each desktop in
// a home has its own computer and disk; here they share one machine with
// the relay, and on one disk every desktop's save (an fsync each) queued
// behind the relay's: an attacker's writes at the relay slowed the healthy
// desktops' own saves, which no real desktop sees, and that, not the
// relay, was the tail of the healthy notes' latency under attack. So their
// stores live in memory (/dev/shm), unless -soak.desktops-on-disk: still
// real Badger stores, and a killed desktop process loses nothing in them
// (the kernel keeps its files). The relay's store stays on the disk.
func (h *harness) desktopsFolder() string {
	dir := filepath.Join(h.root, "desktops")
	if *flagDesktopsOnDisk {
		return dir
	}
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		return dir
	}
	mem, err := os.MkdirTemp("/dev/shm", "haven-soak-desktops-")
	if err != nil {
		return dir
	}
	h.t.Cleanup(func() { os.RemoveAll(mem) })
	os.Symlink(mem, dir) // for a kept run's reader; the stores go when the test ends
	h.logf("desktops' stores in %s", mem)
	return mem
}

// setup builds and starts the relay (or the cluster's nodes), grows the
// demo home to 60 residents and brings every desktop up to date on LAN.
func (h *harness) setup() {
	t := h.t
	if *flagCluster {
		h.startCluster()
	} else {
		h.startRelay()
	}
	if t.Failed() {
		return
	}

	// Each desktop gets its own link (LAN for now), one per node in
	// cluster mode, and is enrolled through it, in parallel: enrolment
	// seals the key under every demo PIN.
	targets := []string{h.relay.Addr()}
	if h.cluster != nil {
		targets = targets[:0]
		for _, n := range h.cluster.nodes {
			targets = append(targets, n.Addr())
		}
	}
	specs := agentSpecs(h.cfg.agents)
	desktops := h.desktopsFolder()
	var wg sync.WaitGroup
	errs := make([]error, len(specs))
	for i, s := range specs {
		a := &agentProc{h: h, spec: s, dir: filepath.Join(desktops, s.name),
			logPath: filepath.Join(h.root, "desktop-"+s.name+".log"), seed: h.cfg.seed*1000 + uint64(i),
			memTable: agentMemTable(i), seen: map[string]time.Time{}, status: make(chan string, 1)}
		for k, target := range targets {
			name := s.name
			if len(targets) > 1 {
				name = fmt.Sprintf("%s-node-%d", s.name, k)
			}
			link, err := rig.NewLink(name, "127.0.0.1:0", target, rig.ProfileLAN, h.cfg.seed*100+uint64(i)+uint64(k)*1_000_000)
			if err != nil {
				t.Fatal(err)
			}
			a.links = append(a.links, link)
		}
		a.link = a.links[0]
		h.agents = append(h.agents, a)
		org := h.home
		if s.orgKind == "hub" {
			org = h.hub
		}
		// Desktops start on different nodes, so changes cross between
		// nodes from the start.
		first := i % len(targets)
		if h.seedFromNode0 {
			first = 0
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = a.enroll(context.Background(), h.relay, org, first)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("enrol %s: %v", specs[i].name, err)
		}
	}
	for _, a := range h.agents {
		if err := a.start(); err != nil {
			t.Fatal(err)
		}
		h.counts.agentStarts++
	}
	if !h.waitFor(3*time.Minute, func() bool { return h.allHold(h.baseResidents) }) {
		t.Fatalf("the desktops did not download the demo home: %s", h.describe())
	}
	h.admitUntil(40 + h.cfg.extraResidents)
	want := 40 + h.cfg.extraResidents
	if !h.waitFor(3*time.Minute, func() bool { return h.allHold(want) && h.converged() }) {
		t.Fatalf("the desktops did not converge on the home of %d residents: %s", want, h.describe())
	}
	h.logf("setup done: %d desktops hold %d residents", len(h.agents), want)
	for _, a := range h.agents {
		a.eachLink(func(l *rig.Link) { l.SetProfile(a.spec.profile) })
	}
}

// startRelay makes the demo organisation in the relay's folder and starts
// it.
func (h *harness) startRelay() {
	t := h.t
	data := filepath.Join(h.root, "relay", "data")
	if err := os.MkdirAll(filepath.Dir(data), 0o700); err != nil {
		t.Fatal(err)
	}
	h.relay = &relayProc{rig.NewRelay(rig.RelayConfig{Syncd: rig.MustBinary(t), Data: data, LogPath: filepath.Join(h.root, "relay.log"),
		Flags: []string{"-workers", "2", "-log-level", logLevel().String()}})}
	h.runDemo()
	out, err := h.relay.Admin("create-home", "Birch Court")
	if err != nil {
		t.Fatal(err)
	}
	h.birch = rig.ID(out)
	if err := h.relay.Start(); err != nil {
		t.Fatal(err)
	}
	h.counts.relayStarts++
	h.logf("relay started pid %d on %s; home %s hub %s birch %s", h.relay.PID(), h.relay.Addr(), h.home, h.hub, h.birch)
}

// admitUntil has the first desktop admit residents until the home has
// want. A desktop refuses an admission until it holds the home's resident
// list, and with no resident to download first (a home the cluster's admin
// made) there is nothing else to wait for: a refused admission is asked
// again once the desktops report something new.
func (h *harness) admitUntil(want int) {
	first := h.agents[0]
	tag := func(i int) string { return fmt.Sprintf("s%d-admit-%d", h.cfg.seed, i) }
	acked := func(tag string) bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		_, ok := h.ackTags[tag]
		return ok
	}
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		var missing []int
		for i := range want - h.baseResidents {
			if !acked(tag(i)) {
				missing = append(missing, i)
			}
		}
		if len(missing) == 0 {
			return
		}
		h.mu.Lock()
		nacks := h.nacks
		h.mu.Unlock()
		for _, i := range missing {
			first.send(fmt.Sprintf("admit %s %d", tag(i), 1000+i))
		}
		refused := 0
		h.waitFor(time.Minute, func() bool {
			h.mu.Lock()
			refused = h.nacks - nacks
			h.mu.Unlock()
			n := refused
			for _, i := range missing {
				if acked(tag(i)) {
					n++
				}
			}
			return n >= len(missing)
		})
		if refused > 0 {
			p := h.progress.Load()
			h.waitFor(10*time.Second, func() bool { return h.progress.Load() != p })
		}
	}
}

// runDemo makes the demo organisation in the stopped relay's folder (in
// cluster mode, node 0's) and reads its IDs.
func (h *harness) runDemo() {
	out, err := h.relay.Command("demo")
	if err != nil {
		h.t.Fatalf("syncd demo in %s: %v", h.relay.Data(), err)
	}
	h.home = regexp.MustCompile(`home=(\S+)`).FindStringSubmatch(out)[1]
	h.hub = regexp.MustCompile(`hub=(\S+)`).FindStringSubmatch(out)[1]
	h.advice = regexp.MustCompile(`advice=(\S+)`).FindStringSubmatch(out)[1]
	h.baseResidents = 40
}

// allHold reports whether every desktop is running and lists n residents.
func (h *harness) allHold(n int) bool {
	for _, a := range h.agents {
		v := a.view()
		if !v.ready || v.rows < n {
			return false
		}
	}
	return true
}

// converged reports whether the relay and every desktop are up and
// connected, every desktop reports the same copy, and every acknowledged
// note is in every desktop's copy. (Decisions and new residents change the
// records' heads, which the copies' digests include.)
func (h *harness) converged() bool {
	if !h.relaysUp() {
		return false
	}
	var state string
	for i, a := range h.agents {
		v := a.view()
		if !v.ready || !v.online || v.state == "" || (i > 0 && v.state != state) {
			return false
		}
		state = v.state
	}
	for _, k := range h.ackList() {
		if k.Kind != "note" {
			continue
		}
		for _, a := range h.agents {
			if _, ok := a.seenAt(k.Tag); !ok {
				return false
			}
		}
	}
	return true
}

// stallLimit is how long convergence may make no progress at all (no
// desktop's copy changing, with every desktop connected) before a wait
// gives up early: it is stuck, and waiting out the deadline would only
// make a failing run slower.
const stallLimit = 30 * time.Second

// waitConverged waits for convergence until within passes or progress
// stalls.
func (h *harness) waitConverged(within time.Duration) bool {
	last, lastAt := h.progress.Load(), time.Now()
	return h.waitFor(within, func() bool {
		if h.converged() {
			return true
		}
		if p := h.progress.Load(); p != last {
			last, lastAt = p, time.Now()
		}
		if time.Since(lastAt) < stallLimit || !h.relaysUp() {
			return false
		}
		for _, a := range h.agents {
			if !a.view().online {
				return false
			}
		}
		h.logf("convergence stalled for %v", stallLimit)
		return true
	}) && h.converged()
}

// settleWithin is how long after convergence a status bar may still show
// changes waiting: a document whose confirmation was lost is asked about
// again after 20 s of silence (shared/client's nudge), checked every 5 s.
const settleWithin = 30 * time.Second

// settled waits briefly for every desktop's status bar to show nothing
// waiting, and returns those that still show changes waiting.
func (h *harness) unsettled(within time.Duration) []string {
	h.waitFor(within, func() bool {
		for _, a := range h.agents {
			if a.view().pending != 0 {
				return false
			}
		}
		return true
	})
	var out []string
	for _, a := range h.agents {
		if v := a.view(); v.pending != 0 {
			out = append(out, fmt.Sprintf("%s (%d)", a.spec.name, v.pending))
		}
	}
	return out
}

// describe says where each desktop is, for failure messages.
func (h *harness) describe() string {
	var parts []string
	acks := h.ackList()
	for _, a := range h.agents {
		v := a.view()
		missing := 0
		for _, k := range acks {
			if _, ok := a.seenAt(k.Tag); k.Kind == "note" && !ok {
				missing++
			}
		}
		st := "not running"
		if s, err := a.askStatus(); err == nil {
			st = fmt.Sprintf("online %v pending %d problem %q", s.Online, s.Pending, s.Problem)
		}
		parts = append(parts, fmt.Sprintf("%s: ready %v state %s rows %d notes %d, %d acked notes missing; %s; link faulty %v conns %d",
			a.spec.name, v.ready, v.state, v.rows, v.notes, missing, st, a.linkFaulty(), a.linkConns()))
	}
	if h.cluster != nil {
		parts = append(parts, h.cluster.describe())
	} else {
		parts = append(parts, fmt.Sprintf("relay running %v", h.relay.Running()))
	}
	return strings.Join(parts, "\n  ")
}

// healAll ends every fault: links healed, the relay and every desktop
// running. It returns when the last heal action was taken.
func (h *harness) healAll() {
	for _, a := range h.agents {
		a.eachLink((*rig.Link).Heal)
	}
	if h.cluster != nil {
		h.cluster.healRoutes()
		if err := h.cluster.startStopped(); err != nil {
			h.t.Errorf("restarting the nodes: %v", err)
		}
	} else if !h.relay.Running() {
		if err := h.relay.Start(); err != nil {
			h.t.Errorf("restarting the relay: %v", err)
		} else {
			h.counts.relayStarts++
		}
	}
	for _, a := range h.agents {
		if !a.running() {
			if err := a.start(); err != nil {
				h.t.Errorf("restarting %s: %v", a.spec.name, err)
			} else {
				h.counts.agentStarts++
			}
		}
	}
}

// shutdown stops whatever still runs (at the end, or after a failure).
func (h *harness) shutdown() {
	for _, a := range h.agents {
		a.kill()
		a.eachLink(func(l *rig.Link) { l.Close() })
	}
	if h.cluster != nil {
		h.cluster.kill()
	} else if h.relay != nil {
		h.relay.Kill()
	}
}

// chaos runs the rounds of faults and measures convergence after each.
func (h *harness) chaos(rep *report) {
	t := h.t
	sched := makeSchedule(h.cfg, len(h.agents))
	os.WriteFile(filepath.Join(h.root, "schedule.txt"), []byte(sched.String()), 0o600)
	rep.scheduleDigest = sched.digest()
	for r, evs := range sched.Rounds {
		h.logf("round %d: %d events", r, len(evs))
		h.runRound(r, evs)
		h.healAll()
		healed := time.Now()
		h.logf("round %d healed", r)
		ok := h.waitConverged(h.cfg.converge)
		h.counts.rounds++
		if !ok {
			rep.notConverged = append(rep.notConverged, fmt.Sprintf("round %d: %s", r, h.describe()))
			t.Errorf("round %d: no convergence within %v of the heal:\n  %s", r, h.cfg.converge, h.describe())
			// Recover for the next round: restart every desktop.
			for _, a := range h.agents {
				a.kill()
			}
			h.healAll()
			if !h.waitConverged(h.cfg.converge) {
				t.Errorf("still no convergence after restarting every desktop; ending the chaos phase:\n  %s", h.describe())
				return
			}
			continue
		}
		h.sampleConvergence(rep, healed)
		h.checkRoutes(rep, fmt.Sprintf("round %d", r))
		if u := h.unsettled(settleWithin); len(u) > 0 {
			rep.unsettled = append(rep.unsettled, fmt.Sprintf("round %d: %s", r, strings.Join(u, ", ")))
			h.logf("round %d: converged, but still showing changes waiting: %v", r, u)
		}
	}
}

// sampleConvergence records, for each desktop, how long after the heal its
// own line took to bring it level with the relay: until every note it had
// acknowledged was at the relay (seen by another desktop), and until it
// held every note the relay held, each counted from when the relay had it
// (first seen by another desktop, or the heal if earlier). A desktop is not
// charged for another's slow line: a note stuck behind a failing line
// reaches a LAN desktop late, but only after it reached the relay.
func (h *harness) sampleConvergence(rep *report, healed time.Time) {
	acks := h.ackList()
	// relayHad estimates when the relay had a note: the first time a
	// desktop other than its author and except skip saw it.
	relayHad := func(k ack, skip *agentProc) (time.Time, bool) {
		var first time.Time
		for _, o := range h.agents {
			if o == skip || o.spec.name == k.Agent {
				continue
			}
			if at, ok := o.seenAt(k.Tag); ok && (first.IsZero() || at.Before(first)) {
				first = at
			}
		}
		return first, !first.IsZero()
	}
	for _, x := range h.agents {
		done := healed
		for _, k := range acks {
			if k.Kind != "note" {
				continue
			}
			if k.Agent == x.spec.name { // uplink
				if at, ok := relayHad(k, nil); ok && at.After(done) {
					done = at
				}
				continue
			}
			seen, ok := x.seenAt(k.Tag) // downlink
			if !ok || !seen.After(healed) {
				continue
			}
			from := healed
			if at, ok := relayHad(k, x); ok && at.After(from) {
				from = at
			}
			if lag := seen.Sub(from); healed.Add(lag).After(done) {
				done = healed.Add(lag)
			}
		}
		d := done.Sub(healed)
		rep.addConvergence(x.spec.profile.Name, d)
		h.logf("converged %s (%s) in %v", x.spec.name, x.spec.profile.Name, d)
	}
}

// runRound plays one round's events at their offsets.
func (h *harness) runRound(r int, evs []event) {
	start := time.Now()
	for _, e := range evs {
		if d := time.Until(start.Add(e.At)); d > 0 {
			tm := time.NewTimer(d) // the schedule's pacing
			<-tm.C
		}
		h.apply(e)
	}
	if d := time.Until(start.Add(h.cfg.window)); d > 0 {
		tm := time.NewTimer(d)
		<-tm.C
	}
}

func (h *harness) apply(e event) {
	switch e.Kind {
	case evRelayKill:
		if h.relay.Running() {
			h.relay.Kill()
			h.counts.relayKills++
			h.logf("relay killed")
		}
	case evRelayStart:
		if !h.relay.Running() {
			if err := h.relay.Start(); err != nil {
				h.t.Errorf("restarting the relay: %v", err)
				return
			}
			h.counts.relayStarts++
			h.logf("relay restarted pid %d", h.relay.PID())
		}
	case evAgentKill:
		a := h.agents[e.Agent]
		if a.running() {
			a.kill()
			h.counts.agentKills++
			h.logf("%s killed", a.spec.name)
		}
	case evAgentStart:
		a := h.agents[e.Agent]
		if !a.running() {
			if err := a.start(); err != nil {
				h.t.Errorf("restarting %s: %v", a.spec.name, err)
				return
			}
			h.counts.agentStarts++
			h.logf("%s restarted", a.spec.name)
		}
	case evNodeKill:
		if n := h.cluster.nodes[e.Node]; n.Running() {
			n.Kill()
			h.counts.nodeKills++
			h.logf("node %d killed", e.Node)
		}
	case evNodeStart:
		// A node cut off from the others cannot reach a quorum, and would
		// wait out its start: it starts when its partition ends.
		if n := h.cluster.nodes[e.Node]; !n.Running() && !h.cluster.isPartitioned(e.Node) {
			began := time.Now()
			if err := n.Start(); err != nil {
				h.t.Errorf("restarting node %d: %v", e.Node, err)
				return
			}
			h.countNodeStart(time.Since(began))
			h.logf("node %d restarted pid %d in %v", e.Node, n.PID(), time.Since(began).Round(time.Millisecond))
		}
	case evPartition:
		h.cluster.partition(e.Node)
		h.counts.partitions++
		h.logf("node %d partitioned from the others", e.Node)
	case evUnpartition:
		h.cluster.unpartition(e.Node)
		h.logf("node %d's partition healed", e.Node)
		if n := h.cluster.nodes[e.Node]; !n.Running() {
			h.apply(event{Kind: evNodeStart, Node: e.Node})
		}
	case evCut:
		h.agents[e.Agent].eachLink((*rig.Link).Cut)
		h.counts.cuts++
		h.logf("%s link cut", h.agents[e.Agent].spec.name)
	case evHole:
		h.agents[e.Agent].eachLink(func(l *rig.Link) { l.Blackhole(e.Dir) })
		if e.Dir == rig.Both {
			h.counts.blackholes++
		} else {
			h.counts.oneWay++
		}
		h.logf("%s link blackholed %s", h.agents[e.Agent].spec.name, e.Dir)
	case evHeal:
		h.agents[e.Agent].eachLink((*rig.Link).Heal)
		h.logf("%s link healed", h.agents[e.Agent].spec.name)
	case evNote, evDecide:
		a := h.agents[e.Agent]
		cmd := fmt.Sprintf("note %s %d", e.Tag, e.N)
		if e.Kind == evDecide {
			rec := "n"
			if e.Rec {
				rec = "r"
			}
			cmd = fmt.Sprintf("decide %s %d %s", e.Tag, e.N, rec)
		}
		if a.send(cmd) {
			h.counts.editsSent++
		} else {
			h.counts.editsSkipped++
		}
	}
}

// relaysUp reports whether the relay runs; in cluster mode, whether every
// node runs and none is partitioned.
func (h *harness) relaysUp() bool {
	if h.cluster != nil {
		return h.cluster.allRunning()
	}
	return h.relay.Running()
}
