package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/crdt/crdttest"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/rig"
	"haven/shared/transport"
	"haven/shared/wire"
)

// TestHostileDeviceCannotHurtOthers: an enrolled device of a care home sends
// a thousand mutated sync messages for the home's real documents (some with
// recomputed checksums, so they pass the Go check and reach Automerge, and
// five times a message known to abort Automerge), plus oversized, malformed
// and non-protocol frames, while two other devices of the home keep editing
// a shared resident. The relay stays up, every healthy edit arrives at the
// other device and survives in the relay's store across a restart, the
// crash path (worker restarts, quarantine) is exercised, and the hostile
// device learns nothing outside its scope.
//
// Mutations that poison a document (see planAttack) are sent too: the
// relay's workers refuse a change whose document no longer saves and
// reloads, so none reaches the healthy devices (which run in this process
// and would abort on one).
func TestHostileDeviceCannotHurtOthers(t *testing.T) {
	data := t.TempDir()
	p := startRelay(t, data, anyPort)
	homeA := idRE.FindString(p.admin("create-home", "Larch House"))
	homeB := idRE.FindString(p.admin("create-home", "Birch Court"))
	a := newDevice(t, "a", p.enroll(homeA, "Nurses' station"), p.url())
	b := newDevice(t, "b", p.enroll(homeA, "Office PC"), p.url())
	birch := newDevice(t, "birch", p.enroll(homeB, "Birch office"), p.url())
	waitFor(t, "devices online", func() bool { return a.online() && b.online() && birch.online() })

	docs := a.newResident(homeA, "Marlow")
	rec, tl := docs.RecordID, docs.TimelineID
	waitFor(t, "the relay to hold the resident", func() bool { return a.client.Synced(rec) && a.client.Synced(tl) })
	b.client.Request(rec)
	b.client.Request(tl)
	waitFor(t, "b to receive the resident", func() bool { return b.has(rec) && b.has(tl) })
	outside := birch.newResident(homeB, "Ashby")
	waitFor(t, "the relay to hold the other home's resident", func() bool {
		return birch.client.Synced(outside.RecordID) && birch.client.Synced(outside.TimelineID)
	})
	outsideIDs := []string{outside.RecordID.String(), outside.TimelineID.String()}

	// Healthy editing without an attack, for comparison.
	ea := &healthyEditor{d: a, other: b, rec: rec, tl: tl, notes: map[string]string{}, alerts: map[string]string{}}
	eb := &healthyEditor{d: b, other: a, rec: rec, tl: tl, notes: map[string]string{}, alerts: map[string]string{}}
	runEditors(t, nil, 10, ea, eb)
	baseline := append(append([]time.Duration(nil), ea.lat...), eb.lat...)
	ea.lat, eb.lat = nil, nil

	// The hostile device: enrolled in the same home, with real copies of
	// the home's documents to mutate.
	hEnr := p.enroll(homeA, "Compromised PC")
	corpus, bases := buildCorpus(t, a, rec, tl)
	plan, stats := planAttack(t, corpus, bases, rec.String(), tl.String(), outsideIDs)
	h := &hostile{t: t, url: p.url(), cred: hEnr.Credential, peerID: "hostile-peer"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := h.connect(ctx); err != nil {
		t.Fatalf("the hostile device could not connect: %v", err)
	}
	defer h.close()

	// The attack runs while the healthy devices keep editing; they stop once
	// the attack is over and each has made at least 60 more edits.
	attackDone := make(chan struct{})
	var frameResults []frameResult
	var healthFailures []string
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		defer close(attackDone)
		stats = h.attack(ctx, plan, stats, outsideIDs, corpus[0].data, func() {
			if err := healthz(p); err != nil {
				healthFailures = append(healthFailures, err.Error())
			}
		})
	}()
	go func() {
		defer wg.Done()
		frameResults = frameAttacks(p, hEnr.Credential, outsideIDs)
	}()
	attackStart := time.Now()
	runEditors(t, attackDone, 60, ea, eb)
	wg.Wait()
	attackTime := time.Since(attackStart)
	if len(healthFailures) > 0 {
		t.Errorf("/healthz failed during the attack: %v", healthFailures)
	}
	if t.Failed() {
		t.FailNow()
	}

	// The relay still serves: healthy, and a fresh edit flows.
	if err := healthz(p); err != nil {
		t.Fatalf("after the attack: %v", err)
	}
	runEditors(t, nil, 1, ea, eb)
	waitFor(t, "the healthy devices to converge and be confirmed", func() bool {
		return a.client.Synced(rec) && a.client.Synced(tl) && b.client.Synced(rec) && b.client.Synced(tl) &&
			crdt.SameHeads(heads(a, tl), heads(b, tl)) && crdt.SameHeads(heads(a, rec), heads(b, rec))
	})

	// Every healthy edit is at both devices, as written.
	checkEdits(t, "device a", a.record(rec), timelineOf(t, a, tl), ea, eb)
	checkEdits(t, "device b", b.record(rec), timelineOf(t, b, tl), ea, eb)
	if ta, tb := timelineOf(t, a, tl), timelineOf(t, b, tl); !reflect.DeepEqual(ta, tb) {
		t.Errorf("the devices read different timelines: %d vs %d notes", len(ta.Notes), len(tb.Notes))
	}
	if ra, rb := a.record(rec), b.record(rec); !reflect.DeepEqual(ra, rb) {
		t.Errorf("the devices read different records")
	}

	// The crash path was exercised, and the relay says what it refused.
	m := metrics(t, p)
	quarantined := m[`haven_relay_quarantined_total{what="message"}`]
	restarts := m["haven_relay_worker_restarts_total"]
	badSync := m[`haven_relay_refused_total{reason="bad-sync-message"}`]
	if quarantined == 0 || restarts == 0 {
		t.Errorf("quarantined messages %v, worker restarts %v: the crash path was not exercised", quarantined, restarts)
	}
	if badSync == 0 {
		t.Error("the relay refused no sync message")
	}
	if m[`haven_relay_quarantined_total{what="chunk"}`] > 0 {
		t.Errorf("the relay quarantined %v stored chunks: something it stored does not load", m[`haven_relay_quarantined_total{what="chunk"}`])
	}
	if quarantined >= 3 && !h.wasDropped(10*time.Second) {
		t.Errorf("after %v quarantined messages the hostile device was never disconnected (connections %d)", quarantined, h.snapshot().connects)
	}
	hs := h.snapshot()

	// Nothing outside the hostile device's scope reached it.
	for _, id := range outsideIDs {
		for typ, n := range hs.docs[id] {
			// A refusal of its changes names the document it sent them
			// to, as for one the relay never held: nothing it did not know.
			if typ != wire.TypeDocUnavailable && typ != syncEmpty && typ != refusal(wire.CodeOutOfScope) {
				t.Errorf("the hostile device received %d %s message(s) for another home's document", n, typ)
			}
		}
		if hs.docs[id][wire.TypeDocUnavailable] == 0 {
			t.Errorf("the hostile device's messages for another home's document got no doc-unavailable")
		}
	}
	for id, types := range hs.docs {
		for typ := range types {
			if typ != wire.TypeDocUnavailable && !stats.addressed[id] {
				t.Errorf("the hostile device received %s for %s, a document it never asked about", typ, id)
			}
		}
	}
	if n := hs.errors[string(rig.ClassNoCode)]; n > 0 {
		t.Errorf("the relay sent the hostile device %d error messages without a code", n)
	}
	if slices.ContainsFunc(hs.listed, func(id string) bool { return slices.Contains(outsideIDs, id) }) {
		t.Error("haven-list offered the hostile device another home's document")
	}

	// Frame attacks: each got the answer it should, and nothing more.
	for _, r := range frameResults {
		if r.problem != "" {
			t.Errorf("frame attack %q: %s", r.name, r.problem)
		}
	}

	// The other home's resident is untouched.
	birchHeads := map[string][]crdt.Hash{}
	for _, id := range []docid.ID{outside.RecordID, outside.TimelineID} {
		birchHeads[id.String()] = heads(birch, id)
	}

	t.Logf("hostile: %d sync messages sent (%s) over %d connections in %v; %d fail the Go check, %d pass it and reach Automerge (%d of them the aborting fixture)",
		stats.sent, stats.kindSummary(), hs.connects, attackTime.Round(time.Millisecond), stats.goRefused, stats.goPassed, stats.fixtures)
	t.Logf("screen of what reaches Automerge for the shared documents: %v; poison withheld: %d (HAVEN_HOSTILE_WITHHOLD_POISON=1 withholds it)", stats.screened, stats.withheld)
	t.Logf("relay: %v sync messages refused (Go check or Automerge error), %v quarantined, %v worker restarts; hostile was told: %v",
		badSync, quarantined, restarts, hs.errors)
	t.Logf("healthy edit-to-other-device latency: without attack %s; during attack %s", latencySummary(baseline), latencySummary(append(ea.lat, eb.lat...)))
	for _, r := range frameResults {
		t.Logf("frame attack %-34s → %s", r.name, r.outcome)
	}

	// Nothing stored is lost: the relay's store holds every healthy edit and
	// everything the devices hold, loads without quarantining anything, and
	// serves it after a restart.
	h.close()
	p.stop()
	view := openRelayStore(t, data)
	storedTLDoc, storedRecDoc := view.doc(tl.String()), view.doc(rec.String())
	storedTL, err := record.ReadTimeline(storedTLDoc)
	if err != nil {
		t.Fatal(err)
	}
	storedRec, err := record.Read(storedRecDoc, nil) // alerts, not decisions
	if err != nil {
		t.Fatal(err)
	}
	checkEdits(t, "the relay's store", storedRec, storedTL, ea, eb)
	for _, d := range []*device{a, b} {
		for id, stored := range map[docid.ID]*crdt.Doc{tl: storedTLDoc, rec: storedRecDoc} {
			if !contains(t, stored, docOf(t, d, id)) {
				t.Errorf("device %s holds changes of %s that the relay's store lacks", d.name, id)
			}
		}
	}
	wantTL, wantRec := storedTLDoc.Heads(), storedRecDoc.Heads()
	for id, want := range birchHeads {
		if got := view.doc(id).Heads(); !crdt.SameHeads(got, want) {
			t.Errorf("the other home's document %s changed in the relay's store: %v, want %v", id, got, want)
		}
	}
	var kept int
	view.st.Scan("relay-quarantined-msg", "", func(string, []byte) error { kept++; return nil })
	if float64(kept) != quarantined {
		t.Errorf("the relay kept %d quarantined messages, its metric says %v", kept, quarantined)
	}
	view.close()

	p2 := startRelay(t, data, p.addr)
	if err := healthz(p2); err != nil {
		t.Fatalf("after restart: %v", err)
	}
	c := newDevice(t, "c", p2.enroll(homeA, "New PC"), p2.url())
	waitFor(t, "a new device online", c.online)
	c.client.Request(rec)
	c.client.Request(tl)
	waitFor(t, "a new device to receive the resident after the restart", func() bool {
		return crdt.SameHeads(heads(c, tl), wantTL) && crdt.SameHeads(heads(c, rec), wantRec)
	})
	checkEdits(t, "a new device after the relay restarted", c.record(rec), timelineOf(t, c, tl), ea, eb)
}

// healthyEditor is one healthy device adding notes to the shared timeline
// (and now and then an alert to the record), each confirmed by its arrival
// at the other device.
type healthyEditor struct {
	d, other *device
	rec, tl  docid.ID
	n        int
	notes    map[string]string // note ID → text
	alerts   map[string]string // alert ID → text
	lat      []time.Duration   // from saved locally to readable at the other device
}

func (e *healthyEditor) step() error {
	ctx := context.Background()
	i := e.n
	e.n++
	text := fmt.Sprintf("%s: observation %d", e.d.name, i)
	var id string
	if err := change(ctx, e.d, e.tl, func(doc *crdt.Doc) (err error) {
		id, err = e.d.ed.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: text})
		return err
	}); err != nil {
		return err
	}
	start := time.Now()
	e.notes[id] = text
	if i%10 == 5 {
		alert := fmt.Sprintf("%s: alert %d", e.d.name, i)
		var aid string
		if err := change(ctx, e.d, e.rec, func(doc *crdt.Doc) (err error) {
			aid, err = e.d.ed.AddAlert(doc, record.Alert{Text: alert, Since: "2024-01-02"})
			return err
		}); err != nil {
			return err
		}
		e.alerts[aid] = alert
		if err := poll(20*time.Second, func() bool { return has(e.other, e.rec, "alerts", aid) }); err != nil {
			return fmt.Errorf("alert %d of %s never reached %s (the relay told %s: %v)", i, e.d.name, e.other.name, e.d.name, e.d.errorCodes())
		}
	}
	if err := poll(20*time.Second, func() bool { return has(e.other, e.tl, "notes", id) }); err != nil {
		return fmt.Errorf("note %d of %s never reached %s (the relay told %s: %v)", i, e.d.name, e.other.name, e.d.name, e.d.errorCodes())
	}
	e.lat = append(e.lat, time.Since(start))
	return nil
}

// runEditors runs the editors concurrently until each has made at least n
// edits and until is closed (nil: at once).
func runEditors(t *testing.T, until <-chan struct{}, n int, eds ...*healthyEditor) {
	t.Helper()
	errs := make(chan error, len(eds))
	for _, e := range eds {
		go func() {
			for made := 0; ; made++ {
				if made >= n {
					select {
					case <-until:
						errs <- nil
						return
					default:
						if until == nil {
							errs <- nil
							return
						}
					}
				}
				if err := e.step(); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for range eds {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

func change(ctx context.Context, d *device, id docid.ID, fn func(doc *crdt.Doc) error) error {
	h, err := d.repo.Open(id)
	if err != nil {
		return err
	}
	if err := h.Change(ctx, fn); err != nil {
		return err
	}
	d.client.Changed(id)
	return nil
}

func has(d *device, id docid.ID, path ...string) bool {
	h, err := d.repo.Open(id)
	if err != nil {
		return false
	}
	_, ok, _ := h.Doc().Get(path...)
	return ok
}

// poll checks cond every millisecond until it holds or the time is up
// (a healthy edit's arrival, timed to the millisecond).
func poll(within time.Duration, cond func() bool) error {
	if !rig.UntilEvery(within, time.Millisecond, cond) {
		return errors.New("timed out")
	}
	return nil
}

func docOf(t *testing.T, d *device, id docid.ID) *crdt.Doc {
	t.Helper()
	h, err := d.repo.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	return h.Doc()
}

// contains reports whether big holds every change of small: merging small
// into a copy of big changes nothing.
func contains(t *testing.T, big, small *crdt.Doc) bool {
	t.Helper()
	f, err := big.Fork()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Merge(small); err != nil {
		t.Fatal(err)
	}
	return crdt.SameHeads(f.Heads(), big.Heads())
}

func timelineOf(t *testing.T, d *device, id docid.ID) *record.Timeline {
	t.Helper()
	h, err := d.repo.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := record.ReadTimeline(h.Doc())
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

// checkEdits asserts every note and alert the editors wrote is in a copy,
// as written.
func checkEdits(t *testing.T, where string, rec *record.Record, tl *record.Timeline, eds ...*healthyEditor) {
	t.Helper()
	var missing []string
	for _, e := range eds {
		for id, text := range e.notes {
			if n, ok := tl.Note(id); !ok || n.Text != text || n.Author.DeviceID != e.d.ed.Author.DeviceID {
				missing = append(missing, "note "+id)
			}
		}
		for id, text := range e.alerts {
			if !slices.ContainsFunc(rec.Alerts, func(a record.Alert) bool { return a.ID == id && a.Text == text }) {
				missing = append(missing, "alert "+id)
			}
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s lacks %d healthy edits (or holds them altered): %v", where, len(missing), missing)
	}
}

func latencySummary(ds []time.Duration) string {
	if len(ds) == 0 {
		return "no samples"
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	q := func(f float64) time.Duration {
		return s[min(len(s)-1, int(f*float64(len(s))))].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("p50 %v, p95 %v, max %v (%d edits)", q(0.5), q(0.95), s[len(s)-1].Round(100*time.Microsecond), len(s))
}

// --- the mutated sync messages ---

// seedMsg is a real sync message for a real document.
type seedMsg struct {
	doc  string
	data []byte
}

// buildCorpus makes real sync messages for the shared documents from copies
// of a healthy device's: opening messages (heads and Bloom filter), whole
// histories sent to an empty peer, and single new changes, as a device in
// the home would send them.
func buildCorpus(t *testing.T, d *device, rec, tl docid.ID) (corpus []seedMsg, saved map[string][]byte) {
	t.Helper()
	ed, err := record.NewEditor(record.Author{UserID: "u-mallory", Name: "Mallory", Role: record.GP, RegNo: "GMC 7000002", DeviceID: "dev-hostile"},
		record.Rules{})
	if err != nil {
		t.Fatal(err)
	}
	var out []seedMsg
	saved = map[string][]byte{}
	for _, id := range []docid.ID{rec, tl} {
		h, err := d.repo.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		base := h.Doc()
		saved[id.String()] = base.Save()
		var edits []func(*crdt.Doc) error
		for i := 0; i < 6; i++ {
			edits = append(edits, func(x *crdt.Doc) (err error) {
				if id == tl {
					_, err = ed.AddNote(x, record.Note{Kind: record.NoteKindNote, Text: fmt.Sprintf("hostile note %d", i)})
				} else {
					_, err = ed.AddAlert(x, record.Alert{Text: fmt.Sprintf("hostile alert %d", i), Since: "2024-01-01"})
				}
				return err
			})
		}
		msgs, err := rig.SyncCorpus(base, edits...)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			out = append(out, seedMsg{id.String(), m})
		}
	}
	for _, s := range out {
		if err := crdt.CheckSyncMessage(s.data); err != nil {
			t.Fatalf("a real sync message fails the Go check: %v", err)
		}
	}
	return out, saved
}

// firstChanges syncs from to to in memory and returns the first message
// that carried changes.
func firstChanges(t *testing.T, from, to *crdt.Doc) []byte {
	t.Helper()
	m, err := crdttest.FirstChanges(from, to)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func loadFixture(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("internal/worker/testdata/aborts-automerge.hex")
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := crdt.CheckSyncMessage(b); err != nil {
		t.Fatalf("the aborting fixture no longer passes the Go check (%v): it would not reach Automerge", err)
	}
	return b
}

// mutFixture is the kind of the aborting fixture among the mutations (the
// rest are rig.Mutate's).
const mutFixture = "aborting fixture"

// --- the hostile device ---

type attackStats struct {
	sent      int
	kinds     map[string]int
	goRefused int // would fail crdt.CheckSyncMessage
	goPassed  int // pass it: Automerge sees them
	fixtures  int
	screened  map[string]int  // verdicts of the screen on what reaches Automerge for the shared documents
	withheld  int             // poison, not sent (see planAttack)
	addressed map[string]bool // every document ID the hostile device named
}

func (s attackStats) kindSummary() string {
	var parts []string
	for _, k := range []string{rig.MutFlip, rig.MutTruncate, rig.MutInsert, rig.MutChecksum, rig.MutStructural, mutFixture} {
		parts = append(parts, fmt.Sprintf("%s %d", k, s.kinds[k]))
	}
	return strings.Join(parts, ", ")
}

// hostile is an enrolled device speaking the protocol directly, so it can
// send anything.
type hostile struct {
	t      *testing.T
	url    string
	cred   string
	peerID string

	conn *rig.Peer // used by the attacking goroutine only

	mu       sync.Mutex // guards below, written by the read loops
	connects int
	docs     map[string]map[wire.Type]int // document → message type → count received
	errors   map[string]int               // classes of the error messages received (rig.Classify)
	listed   []string                     // haven-list answers
}

type hostileView struct {
	connects int
	docs     map[string]map[wire.Type]int
	errors   map[string]int
	listed   []string
}

func (h *hostile) snapshot() hostileView {
	h.mu.Lock()
	defer h.mu.Unlock()
	v := hostileView{connects: h.connects, docs: map[string]map[wire.Type]int{}, errors: map[string]int{}, listed: slices.Clone(h.listed)}
	for d, m := range h.docs {
		v.docs[d] = map[wire.Type]int{}
		for k, n := range m {
			v.docs[d][k] = n
		}
	}
	for k, n := range h.errors {
		v.errors[k] = n
	}
	return v
}

// emptySync is the sync message an empty document sends: the only sync
// message the relay may send about a document the device may not see, as
// it says nothing of the document. syncEmpty counts them apart.
var emptySync = crdt.EmptySyncMessage()

const syncEmpty wire.Type = "sync (an empty document's)"

// refusal is the pseudo message type under which a hostile device counts
// the relay's errors about a document, by code.
func refusal(code string) wire.Type { return wire.Type("error " + code) }

// onMessage counts what the relay sends the device.
func (h *hostile) onMessage(m wire.Message, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.docs == nil {
		h.docs, h.errors = map[string]map[wire.Type]int{}, map[string]int{}
	}
	switch {
	case err != nil:
		h.errors["undecodable frame from the relay"]++
	case m.Type == wire.TypeError:
		h.errors[string(rig.Classify(m.ErrorCode))]++
	case m.Type == wire.TypeHavenList:
		h.listed = append(h.listed, m.DocumentIDs...)
	}
	if m.DocumentID != "" {
		if h.docs[m.DocumentID] == nil {
			h.docs[m.DocumentID] = map[wire.Type]int{}
		}
		typ := m.Type
		switch {
		case typ == wire.TypeSync && bytes.Equal(m.Data, emptySync):
			typ = syncEmpty
		case typ == wire.TypeError:
			typ = refusal(m.ErrorCode)
		}
		h.docs[m.DocumentID][typ]++
	}
}

func (h *hostile) connect(ctx context.Context) error {
	p, err := rig.DialPeer(ctx, h.url, h.cred, h.peerID, h.onMessage)
	if err != nil {
		return err
	}
	if err := p.Join(); err != nil {
		p.Close()
		return err
	}
	if err := p.WaitJoined(10 * time.Second); err != nil {
		p.Close()
		return err
	}
	h.mu.Lock()
	h.connects++
	h.mu.Unlock()
	h.conn = p
	return nil
}

func (h *hostile) close() {
	if h.conn != nil {
		h.conn.Close()
		h.conn = nil
	}
}

// wasDropped reports whether the relay told the device it was
// disconnected and closed its connection. The quarantine that drops it
// may be decided after the device's last message was answered (a worker
// screens changes after the connection reads on), so the close is waited
// for, up to limit. Called once the attacking goroutine is done.
func (h *hostile) wasDropped(limit time.Duration) bool {
	told := poll(limit, func() bool { return h.snapshot().errors[string(rig.ClassDisconnected)] > 0 }) == nil
	if !told {
		return false
	}
	if h.snapshot().connects >= 2 || h.conn == nil {
		return true
	}
	if _, ended := rig.Recv(h.conn.Done(), limit); !ended {
		return false
	}
	h.conn = nil
	return true
}

// send delivers one message, reconnecting when the relay has dropped the
// device (it does after repeated quarantined messages).
func (h *hostile) send(ctx context.Context, m wire.Message) error {
	m.SenderID = h.peerID
	for attempt := 0; attempt < 10; attempt++ {
		if h.conn == nil {
			if err := h.connect(ctx); err != nil {
				return err
			}
		}
		if err := h.conn.Send(ctx, m); err == nil {
			return nil
		}
		<-h.conn.Done()
		h.conn = nil
	}
	return errors.New("could not stay connected")
}

// planned is one message the hostile device will send.
type planned struct {
	doc  string
	typ  wire.Type
	data []byte
	kind string
}

// sendPoison makes the hostile device also send the mutated changes the
// screen finds poisonous (see planAttack). On by default: the relay refuses
// them. HAVEN_HOSTILE_WITHHOLD_POISON=1 withholds them, to compare.
var sendPoison = os.Getenv("HAVEN_HOSTILE_WITHHOLD_POISON") == ""

// planAttack draws the hostile device's 1,000 messages from the corpus,
// with a fixed seed: mutated messages, mostly for the documents they were
// made for, some for the other shared document, a new document or another
// home's; 15% as requests; and five times the message known to abort
// Automerge.
//
// Every message that would reach Automerge for a shared document is first
// screened in a child process (screen). Those that apply cleanly are sent:
// the relay stores them and healthy devices receive them, which is allowed
// for an enrolled device. Those that leave a document that no longer saves
// and reloads, or that aborts Automerge once applied, are poison: the relay
// must refuse them (see TestChangeThatBreaksTheDocumentIsRefused); they are
// sent unless HAVEN_HOSTILE_WITHHOLD_POISON is set.
func planAttack(t *testing.T, corpus []seedMsg, bases map[string][]byte, rec, tl string, outside []string) ([]planned, attackStats) {
	t.Helper()
	const total = 1000
	rng := rand.New(rand.NewPCG(2024, 3)) // fixed: the same mutations every run
	inScope := []string{rec, tl}
	var cands []planned
	for len(cands) < total*13/10 {
		seed := corpus[rng.IntN(len(corpus))]
		data, kind := rig.Mutate(rng, seed.data)
		doc := seed.doc
		switch r := rng.IntN(100); {
		case r < 8:
			doc = inScope[rng.IntN(2)] // another document than the message's
		case r < 13:
			doc = docid.New().String() // offering a new document
		case r < 18:
			doc = outside[rng.IntN(len(outside))] // another home's
		}
		if len(data) == 0 {
			data = []byte{0x42}
		}
		typ := wire.TypeSync
		if rng.IntN(100) < 15 {
			typ = wire.TypeRequest
		}
		cands = append(cands, planned{doc: doc, typ: typ, data: data, kind: kind})
	}

	st := attackStats{kinds: map[string]int{}, screened: map[string]int{}, addressed: map[string]bool{}}
	var items []screenItem
	var at []int
	for i, c := range cands {
		if slices.Contains(inScope, c.doc) && crdt.CheckSyncMessage(c.data) == nil {
			items = append(items, screenItem{Doc: c.doc, Data: c.data})
			at = append(at, i)
		}
	}
	withhold := map[int]bool{}
	for j, v := range screen(t, bases, items) {
		st.screened[v]++
		if v == verdictPoison && !sendPoison {
			withhold[at[j]] = true
		}
	}

	fixture := loadFixture(t)
	var plan []planned
	for i := 0; len(plan) < total && i < len(cands); i++ {
		if len(plan)%200 == 100 {
			// The fixture applies, then aborts Automerge when a sync message
			// is generated from it: for a new document the worker gets that
			// far before storing anything, so it crashes and the message is
			// quarantined; for a shared document the save-and-reload check
			// refuses it first. Both paths, alternately.
			doc := docid.New().String()
			if sendPoison && len(plan)/200%2 == 1 { // plan lengths 300 and 700
				doc = inScope[len(plan)/400%2]
			}
			plan = append(plan, planned{doc: doc, typ: wire.TypeSync, data: fixture, kind: mutFixture})
		}
		if withhold[i] {
			st.withheld++
			continue
		}
		plan = append(plan, cands[i])
	}
	if len(plan) < total {
		t.Fatalf("only %d messages to send", len(plan))
	}
	for _, m := range plan {
		st.kinds[m.kind]++
		st.addressed[m.doc] = true
		if m.kind == mutFixture {
			st.fixtures++
		}
		if crdt.CheckSyncMessage(m.data) == nil {
			st.goPassed++
		} else {
			st.goRefused++
		}
	}
	return plan, st
}

// attack sends the plan, paced over a few seconds so the healthy devices
// edit throughout, and calls check every hundred messages.
func (h *hostile) attack(ctx context.Context, plan []planned, st attackStats, outside []string, probeData []byte, check func()) attackStats {
	tick := time.NewTicker(20 * time.Millisecond) // pacing, not waiting: 10 messages a tick
	defer tick.Stop()
	for i, m := range plan {
		if err := h.send(ctx, wire.Message{Type: m.typ, DocumentID: m.doc, Data: m.data}); err != nil {
			h.t.Errorf("hostile send %d: %v", i, err)
			return st
		}
		st.sent++
		if i%10 == 9 {
			<-tick.C
		}
		if i%100 == 99 {
			check()
		}
	}
	// It also asks, in every way it can, for another home's documents.
	h.send(ctx, wire.Message{Type: wire.TypeHavenList})
	h.send(ctx, wire.Message{Type: wire.TypeHavenFetch, DocumentIDs: outside})
	for _, id := range outside {
		st.addressed[id] = true
		h.send(ctx, wire.Message{Type: wire.TypeRequest, DocumentID: id, Data: probeData})
	}
	// A request for a missing document is answered at once, after all that
	// came before it on this connection was read (answers to queued work
	// may still follow).
	probe := docid.New().String()
	st.addressed[probe] = true
	h.send(ctx, wire.Message{Type: wire.TypeRequest, DocumentID: probe, Data: probeData})
	if err := poll(30*time.Second, func() bool {
		v := h.snapshot()
		return v.docs[probe][wire.TypeDocUnavailable] > 0 && v.listed != nil
	}); err != nil {
		h.t.Errorf("the relay never answered the hostile device's last request")
	}
	return st
}

// --- screening mutated messages in a child process ---

// Verdicts of the screen.
const (
	verdictRefused   = "refused by Automerge"
	verdictUnchanged = "applied, document unchanged"
	verdictAccepted  = "applied cleanly"
	verdictPoison    = "poison: applies, then the document breaks"
	verdictAborts    = "aborts Automerge on receipt"
)

const screenEnv = "HAVEN_HOSTILE_SCREEN"

type screenItem struct {
	Doc  string
	Data []byte
}

type screenJob struct {
	Bases map[string][]byte // saved documents by ID
	Items []screenItem
	Start int
}

// screen applies each message to a fresh copy of its document in a child
// process (automerge-go aborts the process on some inputs) and returns a
// verdict for each. A child that dies is replaced, starting after the
// message that killed it.
func screen(t *testing.T, bases map[string][]byte, items []screenItem) []string {
	t.Helper()
	verdicts := make([]string, len(items))
	path := filepath.Join(t.TempDir(), "screen.json")
	for start := 0; start < len(items); {
		b, _ := json.Marshal(screenJob{Bases: bases, Items: items, Start: start})
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestHostileScreenChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), screenEnv+"="+path, testWorkerEnv+"=") // a test run, not a CRDT worker
		out, runErr := cmd.Output()
		applied := -1
		next := start
		for _, line := range strings.Split(string(out), "\n") {
			var i int
			var v string
			switch {
			case strings.HasPrefix(line, "applied "):
				fmt.Sscanf(line, "applied %d", &applied)
			case strings.HasPrefix(line, "verdict "):
				if _, err := fmt.Sscanf(line, "verdict %d", &i); err == nil {
					_, v, _ = strings.Cut(line[len("verdict "):], " ")
					verdicts[i] = v
					next = i + 1
				}
			}
		}
		if next >= len(items) {
			break
		}
		if runErr == nil {
			t.Fatalf("the screen stopped at message %d of %d without dying", next, len(items))
		}
		verdicts[next] = verdictAborts
		if applied == next {
			verdicts[next] = verdictPoison // it applied, then something on the document aborted
		}
		start = next + 1
	}
	return verdicts
}

// TestHostileScreenChild is the screen's child process, not a test.
func TestHostileScreenChild(t *testing.T) {
	path := os.Getenv(screenEnv)
	if path == "" {
		t.Skip("helper run by TestHostileDeviceCannotHurtOthers in a child process")
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var job screenJob
	if err := json.Unmarshal(raw, &job); err != nil {
		t.Fatal(err)
	}
	verdict := func(i int, v string) { fmt.Printf("verdict %d %s\n", i, v) }
	for i := job.Start; i < len(job.Items); i++ {
		it := job.Items[i]
		d, err := crdt.Load(job.Bases[it.Doc])
		if err != nil {
			t.Fatal(err)
		}
		before := d.Heads()
		if err := crdt.NewSyncState(d).Receive(it.Data); err != nil {
			verdict(i, verdictRefused)
			continue
		}
		after := d.Heads()
		if crdt.SameHeads(before, after) {
			verdict(i, verdictUnchanged)
			continue
		}
		fmt.Printf("applied %d\n", i)
		if _, err := crdt.Load(d.Save()); err != nil {
			verdict(i, verdictPoison)
			continue
		}
		// What a healthy device does next: merge a concurrent change of its
		// own, then generate a message from shared heads that include the
		// new change (the clock path where automerge-go aborted one).
		f, err := crdt.Load(job.Bases[it.Doc])
		if err != nil {
			t.Fatal(err)
		}
		f.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("concurrent", "canary") })
		if err := d.Merge(f); err != nil {
			verdict(i, verdictPoison)
			continue
		}
		state := binary.AppendUvarint([]byte{0x43}, uint64(len(after)))
		for _, h := range after {
			state = append(state, h[:]...)
		}
		ss, err := crdt.LoadSyncState(d, state)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := ss.Generate(); err != nil {
			verdict(i, verdictPoison)
			continue
		}
		verdict(i, verdictAccepted)
	}
}

// --- frame-level attacks, each on its own connection ---

type frameResult struct {
	name, outcome, problem string
}

// frameAttacks sends frames no client should, each on a fresh connection
// with the hostile credential, and checks the relay's answer: a close (with
// the right code where the protocol names one) or an error message, and the
// connection still usable where the frame is merely ignorable.
func frameAttacks(p *relayProc, cred string, outside []string) []frameResult {
	join := rig.MustEncode(wire.Message{Type: wire.TypeJoin, SenderID: "frames", SupportedProtocolVersions: []string{wire.ProtocolV1}})
	syncMsg := func(doc string) []byte {
		return rig.MustEncode(wire.Message{Type: wire.TypeSync, SenderID: "frames", TargetID: "relay", DocumentID: doc, Data: []byte{0x42, 0, 0, 0, 0}})
	}
	huge := bytes.Repeat([]byte{0x42}, 16<<20+1) // one byte over the relay's read limit
	hugeCBOR := []byte{0xa2, 0x64, 't', 'y', 'p', 'e', 0x64, 's', 'y', 'n', 'c', 0x64, 'd', 'a', 't', 'a', 0x5b, 0x0f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3}
	nested := append([]byte{0xa1, 0x63, 'f', 'o', 'o'}, append(bytes.Repeat([]byte{0x81}, 100000), 0)...)
	manyPairs := []byte{0xbb, 0, 0, 0, 0, 0, 0x0f, 0x42, 0x40, 0x64, 't', 'y', 'p', 'e', 0x64, 's', 'y', 'n', 'c'}
	garbage := make([]byte, 300)
	rng := rand.New(rand.NewPCG(7, 7))
	for i := range garbage {
		garbage[i] = byte(rng.Uint32())
	}
	garbage[0] = 0xff
	bigIDs := strings.Repeat("x", 100<<10)

	type attack struct {
		name   string
		frames [][]byte // after join, unless noJoin
		noJoin bool
		sender string // of the closing probe; default "frames", the joined peer
		want   string // "closed", "closed:<code>", "error", "open"
	}
	attacks := []attack{
		{name: "garbage bytes", frames: [][]byte{garbage}, want: "closed"},
		{name: "CBOR array", frames: [][]byte{{0x83, 1, 2, 3}}, want: "closed"},
		{name: "CBOR integer", frames: [][]byte{{0x18, 42}}, want: "closed"},
		{name: "CBOR map without type", frames: [][]byte{{0xa1, 0x63, 'f', 'o', 'o', 0x01}}, want: "closed"},
		{name: "CBOR map with numeric type", frames: [][]byte{{0xa1, 0x64, 't', 'y', 'p', 'e', 0x07}}, want: "closed"},
		{name: "byte string claiming 2^60 bytes", frames: [][]byte{hugeCBOR}, want: "closed"},
		{name: "map claiming a million pairs", frames: [][]byte{manyPairs}, want: "closed"},
		{name: "100,000 nested arrays", frames: [][]byte{nested}, want: "closed"},
		{name: "empty frame", frames: [][]byte{{}}, want: "closed"},
		{name: "sync before join", frames: [][]byte{syncMsg(docid.New().String())}, noJoin: true, want: "closed"},
		{name: "join with protocol version 9", frames: [][]byte{rig.MustEncode(wire.Message{Type: wire.TypeJoin, SenderID: "x", SupportedProtocolVersions: []string{"9"}})}, noJoin: true, want: "closed"},
		{name: "join without a peer ID", frames: [][]byte{{0xa1, 0x64, 't', 'y', 'p', 'e', 0x64, 'j', 'o', 'i', 'n'}}, noJoin: true, want: "closed"},
		{name: "join with 100 KiB IDs", frames: [][]byte{rig.MustEncode(wire.Message{Type: wire.TypeJoin, SenderID: bigIDs, PeerMetadata: &wire.PeerMetadata{StorageID: bigIDs}})}, noJoin: true, sender: bigIDs, want: "any"},
		{name: "sync with a malformed document ID", frames: [][]byte{syncMsg("not/a/doc")}, want: "error"},
		{name: "sync without data", frames: [][]byte{rig.MustEncode(wire.Message{Type: wire.TypeSync, SenderID: "frames", TargetID: "relay", DocumentID: docid.New().String()})}, want: "error"},
		{name: "sync posing as another peer", frames: [][]byte{rig.MustEncode(wire.Message{Type: wire.TypeSync, SenderID: "someone-else", TargetID: "relay", DocumentID: outside[0], Data: []byte{0x42}})}, want: "open"},
		{name: "unknown message type", frames: [][]byte{rig.MustEncode(wire.Message{Type: "launch-missiles", SenderID: "frames"})}, want: "open"},
		{name: "request for another home's record", frames: [][]byte{rig.MustEncode(wire.Message{Type: wire.TypeRequest, SenderID: "frames", TargetID: "relay", DocumentID: outside[0], Data: []byte{0x42, 0, 0, 0, 0}})}, want: "open"},
		{name: "haven-fetch of 1,000 IDs", frames: [][]byte{rig.MustEncode(wire.Message{Type: wire.TypeHavenFetch, SenderID: "frames", DocumentIDs: manyIDs(1000, outside)})}, want: "open"},
		{name: "haven-fetch of 5,000 IDs", frames: [][]byte{rig.MustEncode(wire.Message{Type: wire.TypeHavenFetch, SenderID: "frames", DocumentIDs: manyIDs(5000, outside)})}, want: "open"}, // the relay serves at most 1,000 per request, all doc-unavailable here
		{name: "frame over the read limit", frames: [][]byte{huge}, want: "closed:1009"},
	}
	var out []frameResult
	for _, a := range attacks {
		frames := a.frames
		if !a.noJoin {
			frames = append([][]byte{join}, frames...)
		}
		sender := a.sender
		if sender == "" {
			sender = "frames"
		}
		got, leaked := probeFrames(p, cred, frames, sender, outside)
		r := frameResult{name: a.name, outcome: got}
		switch {
		case leaked != "":
			r.problem = "disclosed another home's document: " + leaked
		case a.want == "any":
		case a.want == "open" && got != "open":
			r.problem = "want the frame ignored and the connection kept, got " + got
		case strings.Contains(got, string(rig.ClassNoCode)):
			r.problem = "an error message without a code: " + got
		case a.want == "error" && !strings.HasPrefix(got, "error"):
			r.problem = "want an error message on an open connection, got " + got
		case strings.HasPrefix(a.want, "closed") && !strings.HasPrefix(got, a.want):
			r.problem = "want " + a.want + ", got " + got
		}
		out = append(out, r)
	}
	// Raw websocket frames transport will not send.
	for _, a := range []struct {
		name  string
		frame []byte
		want  int
	}{
		{"text frame", rig.Frame(0x1, []byte(`{"type":"join"}`), true, -1), transport.CloseUnsupportedData},
		{"frame header claiming 2^62 bytes", rig.Frame(0x2, []byte("abc"), true, 1<<62), transport.CloseTooBig},
		{"reserved opcode", rig.Frame(0x3, []byte("abc"), true, -1), transport.CloseProtocolError},
		{"unmasked client frame", rig.Frame(0x2, join, false, -1), transport.CloseProtocolError},
	} {
		code, err := rawAttack(p.addr, cred, a.frame)
		r := frameResult{name: a.name, outcome: fmt.Sprintf("closed:%d", code)}
		if err != nil {
			r.outcome, r.problem = err.Error(), err.Error()
		} else if code != a.want {
			r.problem = fmt.Sprintf("want close code %d, got %d", a.want, code)
		}
		out = append(out, r)
	}
	return out
}

func manyIDs(n int, include []string) []string {
	ids := slices.Clone(include)
	for len(ids) < n {
		ids = append(ids, docid.New().String())
	}
	return ids
}

// probeFrames sends frames on a new connection, then a request for a
// missing document, and reports what happened: "open" (the probe was
// answered and nothing else), "error: <classes>" (error messages on an open
// connection), or "closed[:code]" and the classes of the errors before the
// close. It also reports any message that named one of the outside
// documents other than doc-unavailable.
func probeFrames(p *relayProc, cred string, frames [][]byte, sender string, outside []string) (outcome, leaked string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	probe := docid.New().String()
	var mu sync.Mutex
	var codes []string
	answered := make(chan struct{})
	var once sync.Once
	peer, err := rig.DialPeer(ctx, p.url(), cred, sender, func(m wire.Message, err error) {
		if err != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		switch {
		case m.Type == wire.TypeError:
			codes = append(codes, string(rig.Classify(m.ErrorCode))+" ("+m.ErrorCode+")")
		case m.DocumentID == probe:
			once.Do(func() { close(answered) })
		case slices.Contains(outside, m.DocumentID) && m.Type != wire.TypeDocUnavailable:
			leaked = string(m.Type)
		}
	})
	if err != nil {
		return "dial failed: " + err.Error(), ""
	}
	for _, f := range frames {
		if peer.Conn.SendWait(ctx, f) != nil {
			break
		}
	}
	peer.Conn.Send(rig.MustEncode(wire.Message{Type: wire.TypeRequest, SenderID: sender, TargetID: "relay", DocumentID: probe, Data: []byte{0x42, 0, 0, 0, 0}}))
	select {
	case <-answered:
		peer.Close()
		mu.Lock()
		defer mu.Unlock()
		if len(codes) > 0 {
			return "error: " + strings.Join(codes, "; "), leaked
		}
		return "open", leaked
	case <-peer.Done():
		mu.Lock()
		defer mu.Unlock()
		told := ""
		if len(codes) > 0 {
			told = " after: " + strings.Join(codes, "; ")
		}
		if code, ok := rig.CloseCode(peer.Err()); ok {
			return fmt.Sprintf("closed:%d%s", code, told), leaked
		}
		return fmt.Sprintf("closed (%v)%s", peer.Err(), told), leaked
	case <-ctx.Done():
		peer.Close()
		return "no answer within 20s", leaked
	}
}

// rawAttack upgrades a plain TCP connection by hand, writes frame, and
// returns the code of the close frame the relay answers with.
func rawAttack(addr, cred string, frame []byte) (int, error) {
	w, err := rig.DialRaw(addr, cred, 0)
	if err != nil {
		return 0, err
	}
	defer w.Close()
	w.Conn.SetDeadline(time.Now().Add(20 * time.Second))
	if err := w.Write(frame); err != nil {
		return 0, err
	}
	return w.CloseCode()
}

// TestChangeThatBreaksTheDocumentIsRefused: an enrolled device sends, for
// an existing document, a change with a valid checksum that automerge-go
// applies but after which the document no longer survives save and reload
// ("changes out of order"), and from which generating a sync message can
// abort Automerge (a slice index in its clock path, automerge.rs:916). Two
// such messages: a real change with its seq rewritten to skip ahead, and the
// aborts-automerge fixture. The relay must refuse them as it refuses an
// unloadable new document: store nothing, forward nothing.
func TestChangeThatBreaksTheDocumentIsRefused(t *testing.T) {
	fixture := loadFixture(t)
	for _, tc := range []struct {
		name string
		msg  func(base *crdt.Doc) []byte
	}{
		{"seq skipped ahead", func(base *crdt.Doc) []byte {
			ed, _ := record.NewEditor(record.Author{UserID: "u-mallory", Name: "Mallory", Role: record.GP, RegNo: "GMC 7000002", DeviceID: "dev-x"}, record.Rules{})
			x, _ := base.Fork()
			if _, err := ed.AddNote(x, record.Note{Kind: record.NoteKindNote, Text: "hostile"}); err != nil {
				t.Fatal(err)
			}
			y, _ := base.Fork()
			return withChangeSeq(t, firstChanges(t, x, y), base.Heads(), 5)
		}},
		{"aborts-automerge fixture", func(*crdt.Doc) []byte { return fixture }},
	} {
		t.Run(tc.name, func(t *testing.T) { checkBreakingChangeRefused(t, tc.msg) })
	}
}

func checkBreakingChangeRefused(t *testing.T, makeMsg func(base *crdt.Doc) []byte) {
	data := t.TempDir()
	p := startRelay(t, data, anyPort)
	home := idRE.FindString(p.admin("create-home", "Larch House"))
	a := newDevice(t, "a", p.enroll(home, "Nurses' station"), p.url())
	waitFor(t, "online", a.online)
	docs := a.newResident(home, "Marlow")
	tl := docs.TimelineID
	waitFor(t, "the relay to hold the resident", func() bool { return a.client.Synced(tl) && a.client.Synced(docs.RecordID) })
	// a goes offline, so no device in this process applies what the relay
	// might forward (it could abort the test binary).
	a.cancel()
	<-a.runErr
	a.runErr <- nil
	stored := heads(a, tl)
	h, err := a.repo.Open(tl)
	if err != nil {
		t.Fatal(err)
	}
	base, err := h.Doc().Fork()
	if err != nil {
		t.Fatal(err)
	}
	msg := makeMsg(base)
	if err := crdt.CheckSyncMessage(msg); err != nil {
		t.Fatalf("the message fails the Go check (%v); the test needs one that reaches Automerge", err)
	}
	// Confirm in memory that it is poison: it applies, and the result does
	// not reload. (Applying is safe; generating from it is what aborts.)
	probe, _ := base.Fork()
	if err := crdt.NewSyncState(probe).Receive(msg); err != nil || crdt.SameHeads(probe.Heads(), base.Heads()) {
		t.Fatalf("automerge-go does not apply the message (%v): the test no longer exercises the bug", err)
	}
	if _, err := crdt.Load(probe.Save()); err == nil {
		t.Fatal("a document holding the change reloads: the test no longer exercises the bug")
	}

	hEnr := p.enroll(home, "Compromised PC")
	hd := &hostile{t: t, url: p.url(), cred: hEnr.Credential, peerID: "hostile-peer"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := hd.connect(ctx); err != nil {
		t.Fatal(err)
	}
	if err := hd.send(ctx, wire.Message{Type: wire.TypeSync, DocumentID: tl.String(), Data: msg}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the relay to answer the message", func() bool {
		v := hd.snapshot()
		return v.docs[tl.String()][wire.TypeSync] > 0 || len(v.errors) > 0
	})
	v := hd.snapshot()
	hd.close()
	m := metrics(t, p)
	p.stop()

	view := openRelayStore(t, data)
	doc := view.doc(tl.String())
	if !crdt.SameHeads(doc.Heads(), stored) {
		_, reloadErr := crdt.Load(doc.Save())
		t.Errorf("the relay stored the change (reload now fails: %v); it answered the sender with %v and quarantined %v messages. "+
			"Fix: in syncer.Engine.Receive, for an existing document, check the result round-trips (as receiveNew does with roundTrips), "+
			"and generate once from shared heads that include the new heads, before storing; refuse the message otherwise",
			reloadErr, v.errors, m[`haven_relay_quarantined_total{what="message"}`])
	}
	if _, err := crdt.Load(doc.Save()); err != nil {
		t.Errorf("the relay's copy no longer survives save and reload: %v", err)
	}
}

// withChangeSeq rebuilds a sync message carrying one change: the change's
// seq rewritten (checksum recomputed), and heads as given.
func withChangeSeq(t *testing.T, msg []byte, heads []crdt.Hash, seq uint64) []byte {
	t.Helper()
	l, ok := rig.ParseSyncLayout(msg)
	if !ok || len(l.Changes) != 1 {
		t.Fatalf("want a message with one change (parsed %v, %d changes)", ok, len(l.Changes))
	}
	c := bytes.Clone(msg[l.Changes[0][0]:l.Changes[0][1]])
	off := 9
	_, n := binary.Uvarint(c[off:]) // chunk length
	off += n
	deps, n := binary.Uvarint(c[off:])
	off += n + int(deps)*32
	actor, n := binary.Uvarint(c[off:])
	off += n + int(actor)
	if old, n := binary.Uvarint(c[off:]); n != 1 || old != 1 || seq > 127 {
		t.Fatalf("change seq %d in %d bytes; want a first change", old, n)
	}
	c[off] = byte(seq)
	sum := sha256.Sum256(c[8:])
	copy(c[4:8], sum[:4])
	out := []byte{0x42}
	out = binary.AppendUvarint(out, uint64(len(heads)))
	for _, h := range heads {
		out = append(out, h[:]...)
	}
	out = append(out, 0, 0, 1) // no need, no have, one change
	out = binary.AppendUvarint(out, uint64(len(c)))
	return append(out, c...)
}
