package soak

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"haven/shared/crdt"
	"haven/shared/crdt/crdttest"
	"haven/shared/docid"
	"haven/shared/rig"
	"haven/shared/wire"
)

// The insider phase. The hostile phase's attackers are outsiders: other
// homes, the unenrolled, the revoked. Here the attacker is the home's own
// enrolled computer (a compromised nurses'-station PC, its credential
// valid) doing everything the relay bounds, over and over, while the
// healthy desktops write notes:
//
//   - holding more connections than a device may (quota/connections);
//   - creating documents by the hundred, for a home outside its scope
//     (out-of-scope, then quota/documents once its hour's share is spent);
//   - sending one message with more changes than its burst (quota/changes);
//   - filling its own home's scope with documents of 2 MB (quota/bytes once
//     its burst of bytes is spent);
//   - deleting a signed CPR decision in one of the home's records (a rule
//     refusal, rule/...);
//   - reporting audit events numbered wildly (audit/sequence), a forged
//     break-glass under another name with escape codes, and a flood
//     (quota/audit);
//   - asking for thousands of documents that do not exist.
//
// The relay must not restart, every attack must be refused with its code,
// no acknowledged change may be lost (the final comparison checks every
// acknowledgement), and the healthy desktops' p99 note latency may be at
// most 20% worse than in the slices without the insider.

// attackRun is one attack of a phase, run on its own goroutine until the
// slice ends.
type attackRun struct {
	name string
	f    func()
}

// insiderKit is what the insider prepared before the timed slices, so the
// slices spend their time attacking: messages built once, sent many times.
type insiderKit struct {
	resident  string // a record of the home with a CPR decision
	tamper    []byte // a sync message deleting that decision
	newDoc    []byte // a sync message creating a document for another home
	burst     []byte // a sync message carrying more changes than a burst
	junk      []byte // a sync message creating a 2 MB document in the home
	auditSeq  uint64 // the next number the insider reports
	auditSent sync.Mutex
}

// insiderCodes are the refusals every run must see, each a family of codes.
var insiderCodes = []string{wire.CodeQuotaConnections, wire.CodeQuotaDocuments, wire.CodeQuotaChanges, wire.CodeQuotaBytes, "rule/",
	wire.CodeAuditSequence, wire.CodeQuotaAudit}

func (h *harness) insider(rep *report) {
	t := h.t
	rep.insiderRan = true
	for _, a := range h.agents {
		a.link.SetProfile(rig.ProfileLAN)
	}
	h.healAll()
	if !h.waitFor(h.cfg.converge, h.converged) {
		t.Errorf("insider phase: no convergence before it:\n  %s", h.describe())
		return
	}
	r := h.relay
	pid := r.PID()
	dev, cred, err := r.enrollDevice(h.home, "Night office PC")
	if err != nil {
		t.Errorf("insider: %v", err)
		return
	}
	kit, err := prepareInsider(r.Addr(), cred, h.home, h.birch)
	if err != nil {
		t.Errorf("insider: preparing: %v", err)
		return
	}
	h.logf("insider: device %s; tampering with %s", dev, kit.resident)
	at := &attack{h: h, logf: h.logf, seed: h.cfg.seed, addr: r.Addr(), larchCred: cred, insider: kit}
	if at.proc, err = h.startAttacker(at, "attacker-insider"); err != nil {
		t.Errorf("insider: %v", err)
		return
	}
	defer at.proc.close()
	logsFrom := h.agentLogSizes()
	rep.insiderBaseline, rep.insiderAttacked = h.measureLatency("insider", at)
	rep.insiderRefusedHealthy = h.refusalsSince(logsFrom)
	if r.PID() != pid || !r.Running() || at.healthFailures.Load() > 0 {
		rep.insiderRestarts++
	}
	at.mu.Lock()
	rep.insiderCodes = map[string]int{}
	for k, n := range at.codes {
		rep.insiderCodes[k] = n
	}
	at.mu.Unlock()
	for _, want := range insiderCodes {
		if !slices.ContainsFunc(keys(rep.insiderCodes), func(k string) bool { return k == want || strings.HasSuffix(want, "/") && strings.HasPrefix(k, want) }) {
			rep.insiderUnrefused = append(rep.insiderUnrefused, want)
		}
	}
	h.logf("insider: codes %v, unrefused %v", rep.insiderCodes, rep.insiderUnrefused)
}

func keys(m map[string]int) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// prepareInsider fetches one of the home's records with a CPR decision and
// builds the insider's messages.
func prepareInsider(addr, cred, home, otherHome string) (*insiderKit, error) {
	ids, err := listDocs(addr, cred)
	if err != nil {
		return nil, err
	}
	kit := &insiderKit{auditSeq: 1}
	for _, id := range ids {
		doc, err := fetchDoc(addr, cred, id)
		if err != nil {
			continue
		}
		cpr, ok, _ := doc.Get("decisions", "cpr")
		entries, _ := cpr.(map[string]any)
		if !ok || len(entries) == 0 {
			continue
		}
		key := slices.Sorted(func(yield func(string) bool) {
			for k := range entries {
				if !yield(k) {
					return
				}
			}
		})[0]
		tampered, err := doc.Fork()
		if err != nil {
			return nil, err
		}
		if _, err := tampered.Change("", time.Now(), func(w *crdt.Writer) error { return w.Delete("decisions", "cpr", key) }); err != nil {
			return nil, err
		}
		if kit.tamper, err = crdttest.FirstChanges(tampered, doc); err != nil {
			return nil, err
		}
		kit.resident = id
		break
	}
	if kit.resident == "" {
		return nil, errors.New("no record of the home holds a CPR decision")
	}
	other := crdt.New()
	if _, err := other.Change("", time.Now(), func(w *crdt.Writer) error { return w.Set(otherHome, "home") }); err != nil {
		return nil, err
	}
	if kit.newDoc, err = crdttest.FirstChanges(other, crdt.New()); err != nil {
		return nil, err
	}
	junk := crdt.New()
	if _, err := junk.Change("", time.Now(), func(w *crdt.Writer) error {
		if err := w.Set(home, "home"); err != nil {
			return err
		}
		return w.Set(randomHex(1<<20), "junk") // 2 MB that does not compress
	}); err != nil {
		return nil, err
	}
	if kit.junk, err = crdttest.FirstChanges(junk, crdt.New()); err != nil {
		return nil, err
	}
	many := crdt.New()
	for i := 0; i <= 10_000; i++ {
		if _, err := many.Change("", time.Now(), func(w *crdt.Writer) error { return w.Set(int64(i), "n") }); err != nil {
			return nil, err
		}
	}
	if kit.burst, err = crdttest.FirstChanges(many, crdt.New()); err != nil {
		return nil, err
	}
	return kit, nil
}

// fetchDoc downloads one stored document as a device in scope.
func fetchDoc(addr, cred, id string) (*crdt.Doc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	got := make(chan wire.Message, 1)
	p, err := rig.DialPeer(ctx, "ws://"+addr+"/sync", cred, "fetcher", func(m wire.Message, err error) {
		if err == nil && (m.Type == wire.TypeHavenDoc || m.Type == wire.TypeDocUnavailable) {
			select {
			case got <- m:
			default:
			}
		}
	})
	if err != nil {
		return nil, err
	}
	defer p.Close()
	p.Join()
	p.Send(ctx, wire.Message{Type: wire.TypeHavenFetch, DocumentIDs: []string{id}})
	var m wire.Message
	select {
	case m = <-got:
	case <-ctx.Done():
		return nil, errors.New("no answer to haven-fetch")
	}
	if m.Type != wire.TypeHavenDoc {
		return nil, errors.New("unavailable")
	}
	doc := crdt.New()
	if len(m.Snapshot) > 0 {
		if doc, err = crdt.Load(m.Snapshot); err != nil {
			return nil, err
		}
	}
	for _, ch := range m.Chunks {
		if err := doc.LoadIncremental(ch); err != nil {
			return nil, err
		}
	}
	return doc, nil
}

// hogConnections holds as many connections as it can with the insider's
// credential: the relay lets a device have four.
func (at *attack) hogConnections() {
	var held []*peer
	defer func() {
		for _, p := range held {
			p.close()
		}
	}()
	for i := 0; i < 8 && at.pace(50*time.Millisecond); i++ {
		p, err := at.dialPeer(fmt.Sprintf("insider-hog-%d", i), at.larchCred, true)
		if err != nil {
			at.outcome("insider-hog: dial refused")
			continue
		}
		held = append(held, p)
	}
	<-at.ended.Done()
}

// insiderLoop sends the insider's messages, round after round, on one
// connection.
//
// The insider is a device of its own, on a computer of its own: here it
// shares the healthy desktops' two cores, so it runs in the attacker's
// process, which takes only the CPU they leave (attacker_test.go).
func (at *attack) insiderLoop() {
	p, err := at.dialPeer("insider", at.larchCred, true)
	if err != nil {
		at.outcome("insider: dial refused")
		return
	}
	defer p.close()
	select {
	case <-p.Joined():
	case <-at.ended.Done():
		return
	}
	k := at.insider
	for at.pace(100 * time.Millisecond) {
		for i := 0; i < 50; i++ {
			p.send(wire.Message{Type: wire.TypeSync, DocumentID: docid.New().String(), Data: k.newDoc})
		}
		p.send(wire.Message{Type: wire.TypeSync, DocumentID: docid.New().String(), Data: k.burst})
		p.send(wire.Message{Type: wire.TypeSync, DocumentID: docid.New().String(), Data: k.junk})
		p.send(wire.Message{Type: wire.TypeSync, DocumentID: k.resident, Data: k.tamper})
		at.forgeAudit(p)
		for i := 0; i < 200; i++ {
			p.send(wire.Message{Type: wire.TypeRequest, DocumentID: docid.New().String(), Data: emptySync})
		}
	}
}

// forgeAudit reports a wildly numbered batch, a forged break-glass under
// another name with escape codes, and six batches of 1,000 views (past the
// relay's burst, relay.DefaultAuditBurst).
func (at *attack) forgeAudit(p *peer) {
	k := at.insider
	k.auditSent.Lock()
	defer k.auditSent.Unlock()
	ev := func(seq uint64, action, user, detail string) wire.AuditEvent {
		return wire.AuditEvent{Seq: seq, ID: randomHex(8), Time: time.Now(), User: user, Role: "gp", Resident: k.resident, Action: action, Detail: detail}
	}
	send := func(evs []wire.AuditEvent) {
		b, _ := json.Marshal(evs)
		p.send(wire.Message{Type: wire.TypeHavenAudit, Data: b, Count: min(evs[len(evs)-1].Seq, 1<<53-1)})
	}
	send([]wire.AuditEvent{ev(1<<62, "view-front-sheet", "staff-x", "")})
	send([]wire.AuditEvent{ev(k.auditSeq, wire.ActionBreakGlass, "staff-dr-who", "\x1b[2Jnothing to see")})
	k.auditSeq++
	for range 6 {
		batch := make([]wire.AuditEvent, 1000)
		for i := range batch {
			batch[i] = ev(k.auditSeq+uint64(i), "view-front-sheet", "staff-x", "")
		}
		send(batch)
		// Numbers run on only as far as the relay took them; the insider
		// does not know, so it goes on from the end of what it sent, and
		// its later batches are gaps: refused too.
		k.auditSeq += uint64(len(batch))
	}
}
