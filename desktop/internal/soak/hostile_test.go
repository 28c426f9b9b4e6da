package soak

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"haven/assets/demo"
	"haven/shared/client"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/shared/rig"
	"haven/shared/store"
	"haven/shared/wire"
)

// The hostile phase. Healthy desktops write notes at a steady pace and the
// suite measures how long each takes to appear on the other desktops,
// first with no attack and then while these peers attack the relay:
//
//   - an unenrolled device and a revoked one, reconnecting again and again;
//   - an enrolled device of another care home (Birch Court) asking in every
//     way it can for Larch House's documents, and sending mutated copies of
//     real Automerge sync messages (bit flips, truncations, insertions,
//     changes altered with their checksum recomputed, heads and Bloom bits
//     altered) for its own documents, new documents and Larch's;
//   - slowloris handshakes: HTTP requests whose headers never end, and
//     websockets that never send join;
//   - a reader that never reads, asking for the whole home;
//   - oversized frames (one over the read limit, one claiming 2^62 bytes)
//     and garbage CBOR from an enrolled device of the home.
//
// The relay must not restart (same PID, /healthz up throughout), the
// healthy p99 may be at most 20% worse, and nothing of Larch House may
// reach the other home's device or an unauthenticated one. Then a
// connection flood: one enrolled device opens the relay's whole connection
// allowance while the healthy desktops reconnect; they must be syncing
// again once it ends.

func (h *harness) hostile(rep *report) {
	t := h.t
	rep.hostileRan = true
	for _, a := range h.agents {
		a.link.SetProfile(rig.ProfileLAN) // the relay is the only thing that changes between the two windows
	}
	h.healAll()
	if !h.waitFor(h.cfg.converge, h.converged) {
		t.Errorf("hostile phase: no convergence before the attack:\n  %s", h.describe())
		return
	}
	r := h.relay
	rep.relayPIDBefore = r.PID()
	before := r.metrics()

	birchDev, birchCred, err := r.enrollDevice(h.birch, "Birch office PC")
	if err != nil {
		t.Errorf("hostile: %v", err)
		return
	}
	_, larchCred, err := r.enrollDevice(h.home, "Compromised PC")
	if err != nil {
		t.Errorf("hostile: %v", err)
		return
	}
	revDev, revCred, err := r.enrollDevice(h.home, "Stolen laptop")
	if err != nil {
		t.Errorf("hostile: %v", err)
		return
	}
	if _, err := r.Admin("revoke", revDev); err != nil {
		t.Errorf("hostile: %v", err)
		return
	}
	larchDocs, err := listDocs(r.Addr(), larchCred)
	if err != nil || len(larchDocs) < 100 {
		t.Errorf("hostile: listing the home's documents as an enrolled device: %d, %v", len(larchDocs), err)
		return
	}
	// The region's documents (the directory of services) are every
	// home's: only what Birch may not hold is Larch's alone.
	both, err := listDocs(r.Addr(), birchCred)
	if err != nil {
		t.Errorf("hostile: listing the other home's documents: %v", err)
		return
	}
	larchDocs = slices.DeleteFunc(larchDocs, func(id string) bool { return slices.Contains(both, id) })
	birchDocs, corpus, err := birchResident(r.Addr(), birchDev, birchCred, h.birch, t.TempDir())
	if err != nil {
		t.Errorf("hostile: the other home's device could not store its resident: %v", err)
		return
	}
	h.logf("hostile: %d Larch documents; Birch resident %v", len(larchDocs), birchDocs)

	at := &attack{h: h, logf: h.logf, seed: h.cfg.seed, addr: r.Addr(), larch: larchDocs, birch: birchDocs,
		birchCred: birchCred, larchCred: larchCred, revCred: revCred, unenrolledCred: "hvn1_" + randomHex(24)}
	at.plan = planMutations(mrand.New(mrand.NewPCG(h.cfg.seed, 0x4057)), h.cfg.mutations, corpus, birchDocs, larchDocs)
	if at.proc, err = h.startAttacker(at, "attacker-hostile"); err != nil {
		t.Errorf("hostile: %v", err)
		return
	}
	defer at.proc.close()
	logsFrom := h.agentLogSizes()
	rep.baseline, rep.attacked = h.measureLatency("latency", at)
	rep.healthyRefused = h.refusalsSince(logsFrom)

	rep.relayPIDAfter = r.PID()
	if err := r.Healthz(); err != nil {
		at.healthFailures.Add(1)
	}
	if rep.relayPIDAfter != rep.relayPIDBefore || !r.Running() {
		rep.relayRestarts++
	}
	rep.healthFailures = int(at.healthFailures.Load())
	after := r.metrics()
	rep.workerRestarts = after["haven_relay_worker_restarts_total"] - before["haven_relay_worker_restarts_total"]
	rep.disclosed = at.disclosures()
	rep.hostileNotes = at.notes(before, after)
	h.counts.injectedFrames += int(at.frames.Load())
	h.counts.hostileConnections += int(at.conns.Load())

	if !*flagNoFlood {
		h.flood(rep, larchCred)
	}
}

// agentLogSizes notes how far each healthy desktop's log has got.
func (h *harness) agentLogSizes() map[*agentProc]int64 {
	sizes := map[*agentProc]int64{}
	for _, a := range h.agents {
		if fi, err := os.Stat(a.logPath); err == nil {
			sizes[a] = fi.Size()
		}
	}
	return sizes
}

// refusalsSince lists the healthy desktops the relay told, since sizes were
// taken, that a message of theirs was refused or set aside (quarantined):
// the attack's crashes and refusals must fall on the attacker alone. It
// reads the codes of the relay errors in each desktop's log.
func (h *harness) refusalsSince(sizes map[*agentProc]int64) []string {
	var out []string
	for _, a := range h.agents {
		n := 0
		for _, code := range relayCodesSince(a.logPath, sizes[a]) {
			if rig.Classify(code).FallsOnSender() {
				n++
			}
		}
		if n > 0 {
			out = append(out, fmt.Sprintf("%s ×%d", a.spec.name, n))
		}
	}
	return out
}

// relayCodesSince reads a desktop's log from offset from and returns the
// codes of the errors the relay sent it (the sync client logs each one,
// as JSON, with its code).
func relayCodesSince(path string, from int64) []string {
	b, _ := os.ReadFile(path)
	if from <= int64(len(b)) {
		b = b[from:]
	}
	var codes []string
	for _, line := range bytes.Split(b, []byte("\n")) {
		var e struct {
			Msg  string `json:"msg"`
			Code string `json:"code"`
		}
		if json.Unmarshal(line, &e) == nil && e.Msg == "relay error" {
			codes = append(codes, e.Code)
		}
	}
	return codes
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// measureLatency has every healthy desktop write a note every 150 ms
// through slices without and with the attack in the order without, with,
// with, without (so that a slow moment of this shared machine falls on both
// sides alike, and so does a drift as the documents grow, which strict
// alternation would lay on the slices with the attack), then returns,
// for every note and every other desktop, the time from the author's ack
// to the note being in that desktop's copy, split by slice.
func (h *harness) measureLatency(phase string, at *attack) (without, with []time.Duration) {
	type sent struct {
		tag      string
		attacked bool
	}
	var notes []sent
	probe := startPauseProbe()
	defer probe.stop()
	// Each desktop writes every 150 ms (the staff's pace), each at its own
	// moment of the 150 ms: staff in different homes do not type in step,
	// and five desktops sharing this machine's two cores would otherwise
	// all apply, store and forward at the same instant every time.
	tick := time.NewTicker(150 * time.Millisecond / time.Duration(len(h.agents)))
	defer tick.Stop()
	turn := 0
	checkTick := time.NewTicker(250 * time.Millisecond)
	defer checkTick.Stop()
	n := 0
	for slice := 0; slice < 2*h.cfg.hostileSlices; slice++ {
		attacked := slice%4 == 1 || slice%4 == 2
		if attacked {
			at.start()
		}
		end := time.Now().Add(h.cfg.hostileWin)
		for time.Now().Before(end) {
			select {
			case <-tick.C:
				i, a := turn, h.agents[turn]
				tag := fmt.Sprintf("s%d-%s-a%d-%d", h.cfg.seed, phase, i, n)
				if a.send(fmt.Sprintf("note %s %d", tag, n*7+i)) {
					notes = append(notes, sent{tag, attacked})
					h.counts.editsSent++
				}
				if turn = (turn + 1) % len(h.agents); turn == 0 {
					n++
				}
			case <-checkTick.C:
				if attacked {
					at.checkHealth()
				}
			}
		}
		if attacked {
			at.finish()
		}
	}
	h.waitFor(30*time.Second, func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, x := range notes {
			i, ok := h.ackTags[x.tag]
			if !ok {
				return false
			}
			for _, a := range h.agents {
				if a.spec.name == h.acks[i].Agent {
					continue
				}
				if _, ok := a.seenAt(x.tag); !ok {
					return false
				}
			}
		}
		return true
	})
	missing := 0
	pauses := probe.stop()
	var cleanWith, cleanWithout []time.Duration
	tsv, _ := os.Create(filepath.Join(h.root, phase+".tsv"))
	defer tsv.Close()
	fmt.Fprintf(tsv, "acked\tauthor\tobserver\tms\tattacked\ttag\n")
	for _, x := range notes {
		h.mu.Lock()
		i, ok := h.ackTags[x.tag]
		var k ack
		if ok {
			k = h.acks[i]
		}
		h.mu.Unlock()
		if !ok {
			missing++
			continue
		}
		for _, a := range h.agents {
			if a.spec.name == k.Agent {
				continue
			}
			d := 30 * time.Second // not seen within the wait: counted at the wait's length
			if at, ok := a.seenAt(x.tag); ok {
				d = max(at.Sub(k.At), 0)
			} else {
				missing++
			}
			fmt.Fprintf(tsv, "%s\t%s\t%s\t%d\t%v\t%s\n", k.At.Format("15:04:05.000"), k.Agent, a.spec.name, d.Milliseconds(), x.attacked, x.tag)
			if x.attacked {
				with = append(with, d)
			} else {
				without = append(without, d)
			}
			if !spansPause(pauses, k.At, k.At.Add(d)) {
				if x.attacked {
					cleanWith = append(cleanWith, d)
				} else {
					cleanWithout = append(cleanWithout, d)
				}
			}
		}
	}
	// Not the target (judged on every sample, above): what the figures
	// are without the moments this machine held the test's own process.
	h.logf("latency without host pauses: %d pauses of %v or more; leaving out the samples spanning one, p99 %v vs %v without attack (%+.0f%%; n=%d/%d)",
		len(pauses), pauseAtLeast, quantile(cleanWith, 0.99), quantile(cleanWithout, 0.99), (ratioP99(cleanWithout, cleanWith)-1)*100,
		len(cleanWith), len(cleanWithout))
	h.logf("latency: %d notes, %d missing; without attack p50 %v p95 %v p99 %v (n=%d); with p50 %v p95 %v p99 %v (n=%d)", len(notes), missing,
		quantile(without, 0.5), quantile(without, 0.95), quantile(without, 0.99), len(without),
		quantile(with, 0.5), quantile(with, 0.95), quantile(with, 0.99), len(with))
	return without, with
}

// --- the hostile peers ---

type attack struct {
	// h is the suite's harness, nil in the attacker's own process
	// (attacker_test.go), where the attacks run; logf writes to the suite's
	// event log either way.
	h                                             *harness
	logf                                          func(format string, args ...any)
	seed                                          uint64 // the run's
	attacks                                       string // -soak.attacks: which to run; empty, all
	proc                                          *attackerProc
	addr                                          string
	larch                                         []string
	larchSet                                      map[string]bool
	birch                                         []string
	birchCred, larchCred, revCred, unenrolledCred string

	// ended, end and wg belong to the current slice of the attack (start
	// to finish); everything below them lasts across slices. ended is done
	// when the slice ends: every wait of the attacks (a dial, a join, a send
	// to a relay that reads the attacker slowly) gives up then, so a slice
	// ends when it is told to.
	ended context.Context
	end   context.CancelFunc
	wg    sync.WaitGroup

	frames, conns, healthFailures atomic.Int64

	// runs are the attacks a slice starts; nil: the hostile phase's.
	runs []attackRun
	// insider is what the insider phase prepared (insider_test.go).
	insider *insiderKit

	mu       sync.Mutex
	leaks    []string       // what reached a device that must not have it
	outcomes map[string]int // attack → outcome → count, as "attack: outcome"
	codes    map[string]int // error codes the relay sent the attackers
	plan     []planned
	next     int           // the next planned message to send
	slowest  time.Duration // longest a slowloris connection stayed open
	// stoppedAt is when finish ended the current slice (zero while it runs).
	stoppedAt time.Time
}

func (at *attack) outcome(what string) {
	at.mu.Lock()
	if at.outcomes == nil {
		at.outcomes = map[string]int{}
	}
	at.outcomes[what]++
	at.mu.Unlock()
}

func (at *attack) leak(what string) {
	at.mu.Lock()
	at.leaks = append(at.leaks, what)
	at.mu.Unlock()
}

func (at *attack) stopped() bool { return at.ended.Err() != nil }

func (at *attack) checkHealth() {
	if err := at.h.relay.Healthz(); err != nil {
		at.healthFailures.Add(1)
		at.h.logf("hostile: /healthz failed: %v", err)
	}
	if !at.h.relay.Running() {
		at.healthFailures.Add(1)
	}
}

// start launches every attack (one slice of it): in the attacker's
// process, or, in the suite's, by telling that process to.
func (at *attack) start() {
	if at.proc != nil {
		if _, err := at.proc.call("start"); err != nil {
			at.h.t.Errorf("attacker: %v", err)
		}
		return
	}
	at.ended, at.end = context.WithCancel(context.Background())
	want := map[string]bool{}
	for _, a := range strings.Split(at.attacks, ",") {
		if a = strings.TrimSpace(a); a != "" {
			want[a] = true
		}
	}
	runs := at.runs
	if runs == nil {
		runs = []attackRun{
			{"unenrolled", at.unauthenticated(at.unenrolledCred, "unenrolled")}, {"revoked", at.unauthenticated(at.revCred, "revoked")},
			{"out-of-scope", at.outOfScope}, {"mutated", at.mutated}, {"slowloris", at.slowloris}, {"silent", at.silentWebsockets},
			{"never-reads", at.neverReads}, {"oversized", at.oversized}, {"garbage", at.garbage},
		}
	}
	for _, x := range runs {
		if len(want) > 0 && !want[x.name] {
			continue
		}
		at.wg.Add(1)
		go func() {
			defer at.wg.Done()
			x.f()
			// A slice's end waits for every attack: one slow to end is
			// a gap in the healthy desktops' notes, so it is said.
			at.mu.Lock()
			stopped := at.stoppedAt
			at.mu.Unlock()
			if !stopped.IsZero() {
				if d := time.Since(stopped); d > time.Second {
					at.logf("hostile: the %s attack took %v to end", x.name, d.Round(time.Millisecond))
				}
			}
		}()
	}
}

// finish ends the slice; in the suite's process it takes in what the
// attacker's has seen so far.
func (at *attack) finish() {
	if at.proc != nil {
		rep, err := at.proc.call("finish")
		if err != nil {
			at.h.t.Errorf("attacker: %v", err)
			return
		}
		for _, line := range rep.Said {
			at.logf("%s", line)
		}
		at.mu.Lock()
		at.outcomes, at.codes, at.leaks, at.slowest = rep.Outcomes, rep.Codes, rep.Leaks, rep.Slowest
		at.mu.Unlock()
		at.frames.Store(rep.Frames)
		at.conns.Store(rep.Conns)
		return
	}
	at.mu.Lock()
	at.stoppedAt = time.Now()
	at.mu.Unlock()
	at.end()
	at.wg.Wait()
	at.mu.Lock()
	at.stoppedAt = time.Time{}
	at.mu.Unlock()
}

func (at *attack) disclosures() []string {
	at.mu.Lock()
	defer at.mu.Unlock()
	return slices.Clone(at.leaks)
}

func (at *attack) notes(before, after map[string]float64) []string {
	at.mu.Lock()
	defer at.mu.Unlock()
	keys := make([]string, 0, len(at.outcomes))
	for k := range at.outcomes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var out []string
	for _, k := range keys {
		out = append(out, fmt.Sprintf("%s ×%d", k, at.outcomes[k]))
	}
	out = append(out, fmt.Sprintf("slowloris connections held open at most %v", at.slowest.Round(100*time.Millisecond)))
	diff := func(k string) float64 { return after[k] - before[k] }
	out = append(out, fmt.Sprintf("relay counters during the attack: refused unauthenticated %g, out-of-scope %g, malformed frames %g, bad sync messages %g, quarantined messages %g, CRDT worker restarts %g",
		diff(`haven_relay_refused_total{reason="unauthenticated"}`), diff(`haven_relay_refused_total{reason="out-of-scope"}`),
		diff(`haven_relay_refused_total{reason="malformed-frame"}`), diff(`haven_relay_refused_total{reason="bad-sync-message"}`),
		diff(`haven_relay_quarantined_total{what="message"}`), diff("haven_relay_worker_restarts_total")))
	return out
}

// await waits for ch up to d; false if d passed or the slice ended first.
func (at *attack) await(ch <-chan struct{}, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		return true
	case <-t.C:
	case <-at.ended.Done():
	}
	return false
}

// pace waits d unless the attack is over (pacing, not waiting for an event).
func (at *attack) pace(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-at.ended.Done():
		return false
	}
}

// peer is one protocol-speaking connection of a hostile device.
type peer struct {
	*rig.Peer
	at *attack
}

func (at *attack) dialPeer(name, cred string, scoped bool) (*peer, error) {
	ctx, cancel := context.WithTimeout(at.ended, 10*time.Second)
	defer cancel()
	rp, err := rig.DialPeer(ctx, "ws://"+at.addr+"/sync", cred, "hostile-"+name, func(m wire.Message, err error) {
		if err != nil {
			return
		}
		if m.Type == wire.TypeError {
			at.outcome(name + ": told " + string(rig.Classify(m.ErrorCode)))
			at.mu.Lock()
			if at.codes == nil {
				at.codes = map[string]int{}
			}
			at.codes[m.ErrorCode]++
			at.mu.Unlock()
		}
		if !scoped {
			if m.Type != wire.TypeError {
				at.leak(fmt.Sprintf("%s device received %s", name, m.Type))
			}
			return
		}
		for _, id := range append([]string{m.DocumentID}, m.DocumentIDs...) {
			// About another home's document the relay may say only
			// what it says of one it lacks.
			// An error names at most the document the device itself
			// sent a message about, and says nothing of it.
			if at.larchSet[id] && m.Type != wire.TypeDocUnavailable && m.Type != wire.TypeError &&
				!(m.Type == wire.TypeSync && bytes.Equal(m.Data, emptySync)) {
				at.leak(fmt.Sprintf("%s device received %s for Larch document %s", name, m.Type, id))
			}
		}
	})
	if err != nil {
		return nil, err
	}
	at.conns.Add(1)
	rp.Join()
	return &peer{Peer: rp, at: at}, nil
}

// send sends one message as the peer; false if it could not be written.
func (p *peer) send(m wire.Message) bool {
	ctx, cancel := context.WithTimeout(p.at.ended, 10*time.Second)
	defer cancel()
	if p.Send(ctx, m) != nil {
		return false
	}
	p.at.frames.Add(1)
	return true
}

// close ends the connection as an attacker vanishing would (a graceful
// close would first write all it queued, at the pace the relay reads a
// device over its read rate).
func (p *peer) close() { p.Abort() }

// emptySync is an empty document's first sync message: it says nothing of
// the document it is about.
var emptySync = crdt.EmptySyncMessage()

// unauthenticated reconnects with a bad credential every 100 ms: each must
// be refused, none may join.
func (at *attack) unauthenticated(cred, name string) func() {
	return func() {
		for at.pace(100 * time.Millisecond) {
			p, err := at.dialPeer(name, cred, false)
			if err != nil {
				at.outcome(name + ": dial refused")
				continue
			}
			select {
			case <-p.Joined():
				at.leak(name + " device was admitted (peer message)")
				p.close()
			case <-p.Done():
				at.outcome(closedOutcome(name, p.Err()))
			case <-time.After(10 * time.Second):
				at.outcome(name + ": neither refused nor admitted in 10s")
				p.close()
			case <-at.ended.Done():
				p.close()
			}
		}
	}
}

// outOfScope is the other home's enrolled device asking for Larch's
// documents every way the protocol allows, over and over.
func (at *attack) outOfScope() {
	open, _, _ := crdt.NewSyncState(crdt.New()).Generate()
	for !at.stopped() {
		p, err := at.dialPeer("other-home", at.birchCred, true)
		if err != nil {
			at.outcome("other-home: dial failed")
			if !at.pace(time.Second) {
				return
			}
			continue
		}
		if !at.await(p.Joined(), 10*time.Second) {
			if !at.stopped() {
				at.outcome("other-home: not admitted")
			}
			p.close()
			continue
		}
		p.send(wire.Message{Type: wire.TypeHavenList})
		p.send(wire.Message{Type: wire.TypeHavenFetch, DocumentIDs: at.larch})
		for i, id := range at.larch {
			typ := wire.TypeRequest
			if i%2 == 1 {
				typ = wire.TypeSync
			}
			if !p.send(wire.Message{Type: typ, DocumentID: id, Data: open}) {
				break
			}
			if i%20 == 19 && !at.pace(20*time.Millisecond) {
				break
			}
		}
		at.pace(500 * time.Millisecond)
		p.close()
	}
}

// mutated sends the planned mutated sync messages from the other home's
// device, reconnecting when the relay drops it for repeated quarantines.
func (at *attack) mutated() {
	var p *peer
	defer func() {
		if p != nil {
			p.close()
		}
	}()
	for ; at.next < len(at.plan) && !at.stopped(); at.next++ {
		i := at.next
		if p == nil {
			var err error
			if p, err = at.dialPeer("mutator", at.birchCred, true); err != nil {
				at.outcome("mutator: dial failed")
				if !at.pace(500 * time.Millisecond) {
					return
				}
				continue
			}
			if !at.await(p.Joined(), 10*time.Second) {
				p.close()
				p = nil
				continue
			}
		}
		m := at.plan[i]
		if !p.send(wire.Message{Type: m.typ, DocumentID: m.doc, Data: m.data}) {
			p.close()
			p = nil
			at.outcome("mutator: dropped by the relay")
			continue
		}
		at.outcome("mutator: sent " + m.kind)
		if i%10 == 9 && !at.pace(20*time.Millisecond) {
			return
		}
	}
}

// dial opens a TCP connection to the relay that gives up when the slice
// ends: a relay whose listen queue is full leaves a dial hanging.
func (at *attack) dial() (net.Conn, error) {
	ctx, cancel := context.WithTimeout(at.ended, 5*time.Second)
	defer cancel()
	var d net.Dialer
	return d.DialContext(ctx, "tcp", at.addr)
}

// closeAtEnd closes c when the slice ends, so that a write the relay is
// not reading (a flood over its read rate, a frame it will refuse) does
// not hold the slice open. The returned func stops that.
func (at *attack) closeAtEnd(c io.Closer) func() bool {
	return context.AfterFunc(at.ended, func() { c.Close() })
}

// slowloris keeps 64 HTTP requests open whose headers never end.
func (at *attack) slowloris() {
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !at.stopped() {
				c, err := at.dial()
				if err != nil {
					at.pace(200 * time.Millisecond)
					continue
				}
				at.conns.Add(1)
				opened := time.Now()
				fmt.Fprintf(c, "GET /sync HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n", at.addr)
				for at.pace(500 * time.Millisecond) {
					if _, err := fmt.Fprintf(c, "X-%d: %s\r\n", mrand.IntN(1e6), strings.Repeat("a", 1)); err != nil {
						break
					}
				}
				held := time.Since(opened)
				at.mu.Lock()
				at.slowest = max(at.slowest, held)
				at.mu.Unlock()
				c.Close()
			}
		}()
	}
	wg.Wait()
}

// silentWebsockets upgrade with the home's compromised credential and
// then send nothing at all, never answering pings.
func (at *attack) silentWebsockets() {
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !at.stopped() {
				w, err := rig.DialRaw(at.addr, at.larchCred, 0)
				if err != nil {
					at.pace(200 * time.Millisecond)
					continue
				}
				at.conns.Add(1)
				closed := make(chan struct{})
				go func() { io.Copy(io.Discard, w.Reader); close(closed) }()
				select {
				case <-closed:
					at.outcome("silent websocket: closed by the relay")
				case <-at.ended.Done():
				}
				w.Close()
			}
		}()
	}
	wg.Wait()
}

// neverReads joins with the compromised credential, asks for the whole
// home again and again, and never reads a byte.
func (at *attack) neverReads() {
	join := rig.MustEncode(wire.Message{Type: wire.TypeJoin, SenderID: "never-reads", SupportedProtocolVersions: []string{wire.ProtocolV1}})
	fetch := rig.MustEncode(wire.Message{Type: wire.TypeHavenFetch, SenderID: "never-reads", TargetID: "relay", DocumentIDs: at.larch})
	open, _, _ := crdt.NewSyncState(crdt.New()).Generate()
	for !at.stopped() {
		w, err := rig.DialRaw(at.addr, at.larchCred, 4096)
		if err != nil {
			at.pace(200 * time.Millisecond)
			continue
		}
		at.conns.Add(1)
		opened := time.Now()
		stopClosing := at.closeAtEnd(w)
		w.Conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
		err = w.WriteFrame(0x2, join)
		for i := 0; err == nil && !at.stopped(); i++ {
			if i%50 == 0 {
				err = w.WriteFrame(0x2, fetch)
			} else {
				id := at.larch[i%len(at.larch)]
				err = w.WriteFrame(0x2, rig.MustEncode(wire.Message{Type: wire.TypeRequest, SenderID: "never-reads", TargetID: "relay", DocumentID: id, Data: open}))
			}
			at.frames.Add(1)
			at.pace(20 * time.Millisecond)
		}
		if err != nil && !at.stopped() {
			at.outcome(fmt.Sprintf("never-reads: dropped by the relay (after ~%ds)", int(time.Since(opened).Seconds())/5*5))
		}
		stopClosing()
		w.Close()
	}
}

// oversized sends a frame over the relay's read limit and a header
// claiming 2^62 bytes, now and then.
func (at *attack) oversized() {
	huge := bytes.Repeat([]byte{0x42}, 16<<20+1)
	for i := 0; at.pace(time.Second); i++ {
		w, err := rig.DialRaw(at.addr, at.larchCred, 0)
		if err != nil {
			continue
		}
		at.conns.Add(1)
		stopClosing := at.closeAtEnd(w)
		w.Conn.SetDeadline(time.Now().Add(20 * time.Second))
		var name string
		if i%2 == 0 {
			name = "frame over the read limit"
			err = w.WriteFrame(0x2, huge)
		} else {
			name = "header claiming 2^62 bytes"
			err = w.Write(rig.Frame(0x2, []byte("abc"), true, 1<<62))
		}
		at.frames.Add(1)
		outcome := "connection ended without a close frame"
		if code, err := w.CloseCode(); err == nil {
			outcome = fmt.Sprintf("closed %d", code)
		}
		if !at.stopped() {
			at.outcome(fmt.Sprintf("oversized (%s): %s", name, outcome))
		}
		stopClosing()
		w.Close()
	}
}

// garbage sends random bytes and malformed CBOR after a proper join.
func (at *attack) garbage() {
	rng := mrand.New(mrand.NewPCG(at.seed, 0x6a5b))
	kinds := []struct {
		name  string
		frame func() []byte
	}{
		{"random bytes", func() []byte {
			b := make([]byte, 1+rng.IntN(600))
			for i := range b {
				b[i] = byte(rng.Uint32())
			}
			b[0] = 0xff
			return b
		}},
		{"CBOR array", func() []byte { return []byte{0x83, 1, 2, 3} }},
		{"CBOR map without type", func() []byte { return []byte{0xa1, 0x63, 'f', 'o', 'o', 0x01} }},
		{"byte string claiming 2^60 bytes", func() []byte {
			return []byte{0xa2, 0x64, 't', 'y', 'p', 'e', 0x64, 's', 'y', 'n', 'c', 0x64, 'd', 'a', 't', 'a', 0x5b, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3}
		}},
		{"100,000 nested arrays", func() []byte {
			return append([]byte{0xa1, 0x63, 'f', 'o', 'o'}, append(bytes.Repeat([]byte{0x81}, 100000), 0)...)
		}},
	}
	for i := 0; at.pace(100 * time.Millisecond); i++ {
		k := kinds[i%len(kinds)]
		p, err := at.dialPeer("garbage", at.larchCred, true)
		if err != nil {
			continue
		}
		if !at.await(p.Joined(), 10*time.Second) {
			p.close()
			continue
		}
		p.Conn.Send(k.frame())
		at.frames.Add(1)
		switch {
		case at.await(p.Done(), 5*time.Second):
			at.outcome(closedOutcome(fmt.Sprintf("garbage (%s)", k.name), p.Err()))
		case at.stopped():
			p.close()
		default:
			at.outcome(fmt.Sprintf("garbage (%s): connection kept", k.name))
			p.close()
		}
	}
}

// closedOutcome names how the relay ended an attacker's connection.
func closedOutcome(who string, err error) string {
	if code, ok := rig.CloseCode(err); ok {
		return fmt.Sprintf("%s: closed %d", who, code)
	}
	return who + ": closed"
}

// --- the documents the attack works with ---

// listDocs asks the relay, as an enrolled device, for the documents in its
// scope.
func listDocs(addr, cred string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan []string, 1)
	p, err := rig.DialPeer(ctx, "ws://"+addr+"/sync", cred, "lister", func(m wire.Message, err error) {
		if err == nil && m.Type == wire.TypeHavenList {
			select {
			case got <- m.DocumentIDs:
			default:
			}
		}
	})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	p.Join()
	if err := p.WaitJoined(20 * time.Second); err != nil {
		return nil, err
	}
	p.Send(ctx, wire.Message{Type: wire.TypeHavenList})
	select {
	case ids := <-got:
		return ids, nil
	case <-ctx.Done():
		return nil, errors.New("no haven-list answer")
	}
}

// birchResident has the other home's device store a resident of its own
// through a real Go sync client, and returns its documents' IDs and a
// corpus of real sync messages about them to mutate.
func birchResident(addr, device, cred, home, dir string) ([]string, []seedMsg, error) {
	key := make([]byte, 32)
	rand.Read(key)
	st, err := store.Open(dir, store.Options{Key: key})
	if err != nil {
		return nil, nil, err
	}
	defer st.Close()
	rp := repo.New(st, repo.Options{})
	defer rp.Close()
	ed, err := record.NewEditor(record.Author{UserID: "u-birch", Name: "Dr Rowan Ash", Role: record.GP, RegNo: "GMC 7000009", DeviceID: device},
		record.Rules{NHS: nhs.Demo})
	if err != nil {
		return nil, nil, err
	}
	docs, err := ed.NewResident(home, record.Identity{GivenName: "Agnes", FamilyName: "Birchall", NHSNumber: demo.NHSNumber(990000), DateOfBirth: "1931-04-02", Sex: "female", Room: "3"})
	if err != nil {
		return nil, nil, err
	}
	for i := 0; i < 3; i++ {
		if _, err := ed.AddNote(docs.Timeline, record.Note{Kind: record.NoteKindNote, Text: fmt.Sprintf("Birch note %d", i)}); err != nil {
			return nil, nil, err
		}
	}
	ctx := context.Background()
	for _, d := range []struct {
		id  docid.ID
		doc *crdt.Doc
	}{{docs.RecordID, docs.Record}, {docs.TimelineID, docs.Timeline}} {
		if _, err := rp.Create(ctx, d.id, d.doc); err != nil {
			return nil, nil, err
		}
	}
	c := client.New(client.Config{URL: "ws://" + addr + "/sync", Credential: cred, Repo: rp, States: st, PeerID: "birch-pc", StorageID: "birch-store",
		Docs:       func() []docid.ID { return []docid.ID{docs.RecordID, docs.TimelineID} },
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(cctx) }()
	c.Changed(docs.RecordID)
	c.Changed(docs.TimelineID)
	ok := rig.Until(30*time.Second, func() bool { return c.Status().Online && c.Synced(docs.RecordID) && c.Synced(docs.TimelineID) })
	cancel()
	<-done
	if !ok {
		return nil, nil, errors.New("the relay never confirmed the resident")
	}
	ids := []string{docs.RecordID.String(), docs.TimelineID.String()}
	corpus, err := buildCorpus(ed, []*crdt.Doc{docs.Record, docs.Timeline}, ids)
	return ids, corpus, err
}

// --- mutated sync messages ---

type seedMsg struct {
	doc  string
	data []byte
}

// buildCorpus makes real sync messages for the documents: opening
// messages, whole histories to an empty peer, and single new changes.
func buildCorpus(ed *record.Editor, docs []*crdt.Doc, ids []string) ([]seedMsg, error) {
	var out []seedMsg
	for i, base := range docs {
		var edits []func(*crdt.Doc) error
		for j := 0; j < 4; j++ {
			edits = append(edits, func(x *crdt.Doc) (err error) {
				if i == 1 {
					_, err = ed.AddNote(x, record.Note{Kind: record.NoteKindNote, Text: fmt.Sprintf("corpus note %d", j)})
				} else {
					_, err = ed.AddAlert(x, record.Alert{Text: fmt.Sprintf("corpus alert %d", j), Since: "2024-01-02"})
				}
				return err
			})
		}
		msgs, err := rig.SyncCorpus(base, edits...)
		if err != nil {
			return nil, err
		}
		for _, m := range msgs {
			out = append(out, seedMsg{ids[i], m})
		}
	}
	return out, nil
}

// planned is one mutated message to send.
type planned struct {
	doc  string
	typ  wire.Type
	data []byte
	kind string
}

// planMutations draws n mutated messages from the corpus, for the hostile
// device's own home's documents (including those that pass the relay's Go
// check and reach Automerge), for new documents and for Larch's.
func planMutations(rng *mrand.Rand, n int, corpus []seedMsg, own, larch []string) []planned {
	var out []planned
	for len(out) < n {
		s := corpus[rng.IntN(len(corpus))]
		data, kind := rig.Mutate(rng, s.data)
		if len(data) == 0 {
			data = []byte{0x42}
		}
		doc := s.doc
		switch x := rng.IntN(100); {
		case x < 35:
			doc = larch[rng.IntN(len(larch))]
			kind += ", to a Larch document"
		case x < 65:
			doc = docid.New().String()
			kind += ", as a new document"
		default:
			kind += ", to its own document"
			if crdt.CheckSyncMessage(data) == nil {
				kind += " (passes the Go check)"
			}
		}
		typ := wire.TypeSync
		if rng.IntN(100) < 15 {
			typ = wire.TypeRequest
		}
		out = append(out, planned{doc: doc, typ: typ, data: data, kind: kind})
	}
	return out
}

// A pause probe ticks every few milliseconds on a goroutine of its own and
// records each gap of pauseAtLeast or more between ticks: moments the
// machine did not run this process (the relay and the desktops are held
// with it when the host pauses them all). The latency phases report their
// p99 also without the samples spanning such a pause, beside the target's
// figure, so that the host's pauses can be told from the relay's doing.
const pauseAtLeast = 100 * time.Millisecond

type pause struct{ from, to time.Time }

type pauseProbe struct {
	done   chan struct{}
	result chan []pause
	once   sync.Once
	got    []pause
}

func startPauseProbe() *pauseProbe {
	p := &pauseProbe{done: make(chan struct{}), result: make(chan []pause, 1)}
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var out []pause
		last := time.Now()
		for {
			select {
			case <-p.done:
				p.result <- out
				return
			case now := <-t.C:
				if now.Sub(last) >= pauseAtLeast {
					out = append(out, pause{last, now})
				}
				last = now
			}
		}
	}()
	return p
}

// stop ends the probe (once) and returns the pauses it saw.
func (p *pauseProbe) stop() []pause {
	p.once.Do(func() {
		close(p.done)
		p.got = <-p.result
	})
	return p.got
}

// spansPause reports whether [from, to] overlaps one of pauses.
func spansPause(pauses []pause, from, to time.Time) bool {
	for _, p := range pauses {
		if from.Before(p.to) && p.from.Before(to) {
			return true
		}
	}
	return false
}
