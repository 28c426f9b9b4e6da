package relay

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"haven/shared/crdt"
	"haven/shared/crdt/crdttest"
	"haven/shared/docid"
	"haven/shared/lowprio"
	"haven/shared/wire"
	"haven/syncd/internal/worker"
)

// turnWorker records how many new documents each device has in the worker
// at once. Each device's first call waits (up to a few seconds) until the
// other device has one in the worker too, which only happens if one
// device's turn does not hold up another's.
type turnWorker struct {
	echoWorker
	mu      sync.Mutex
	now     map[string]int // device peer → calls in the worker
	most    map[string]int
	both    chan struct{}
	oneEach sync.Once
	sawBoth bool
}

func (w *turnWorker) Work(ctx context.Context, a worker.WorkArgs) (worker.WorkReply, error) {
	from := a.Msgs[0].From
	w.mu.Lock()
	w.now[from]++
	w.most[from] = max(w.most[from], w.now[from])
	if len(w.now) == 2 && w.now[from] > 0 {
		busy := 0
		for _, n := range w.now {
			if n > 0 {
				busy++
			}
		}
		if busy == 2 {
			w.sawBoth = true
			w.oneEach.Do(func() { close(w.both) })
		}
	}
	w.mu.Unlock()
	select {
	case <-w.both:
	case <-time.After(3 * time.Second):
	}
	// The work takes a moment, as real work does, so that calls the relay
	// lets through together are in the worker together. (The relay's store
	// cannot run in a synctest bubble, so the test cannot wait for "every
	// runner blocked" instead.)
	<-time.After(5 * time.Millisecond)
	w.mu.Lock()
	w.now[from]--
	w.mu.Unlock()
	return w.echoWorker.Work(ctx, a)
}

// changesOf returns a sync message carrying a new document's first change.
func changesOf(t *testing.T, i int) []byte {
	t.Helper()
	doc := crdt.New()
	if _, err := doc.Change("", time.Unix(0, 0), func(w *crdt.Writer) error { return w.Set(int64(i), "n") }); err != nil {
		t.Fatal(err)
	}
	m, err := crdttest.FirstChanges(doc, crdt.New())
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestNewDocumentsTakeTurnsPerDevice: a device offering many new documents
// at once has one of them in a worker at a time, so the others' work goes
// on beside it; another device's new document does not wait for its turn.
func TestNewDocumentsTakeTurnsPerDevice(t *testing.T) {
	w := &turnWorker{now: map[string]int{}, most: map[string]int{}, both: make(chan struct{})}
	r := newTestRelay(t, Config{}, w)
	enc := func(m wire.Message) []byte { b, _ := wire.Encode(m); return b }
	var conns []*conn
	for d := range 2 {
		dev, sc := r.device(t, fmt.Sprintf("PC %d", d))
		c := newConn(r.s, context.Background(), &recorder{}, dev, sc)
		c.onFrame(enc(wire.Message{Type: wire.TypeJoin, SenderID: fmt.Sprintf("pc%d", d), SupportedProtocolVersions: []string{"1"}}))
		conns = append(conns, c)
	}
	for i := range 8 {
		for d, c := range conns {
			c.onFrame(enc(wire.Message{Type: wire.TypeSync, SenderID: fmt.Sprintf("pc%d", d), TargetID: "relay",
				DocumentID: docid.New().String(), Data: changesOf(t, i)}))
		}
	}
	r.s.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.most) != 2 {
		t.Fatalf("the worker heard from %d devices; want 2", len(w.most))
	}
	for p, n := range w.most {
		if n != 1 {
			t.Errorf("peer %s had %d new documents in the worker at once; want one at a time", p, n)
		}
	}
	if !w.sawBoth {
		t.Error("the two devices' new documents were never in the worker together: one waited for the other's turn")
	}
}

// TestReadsAreShapedPerDevice: past its burst, the relay reads a device's
// frames no faster than its read rate (the connection waits; nothing is
// refused), whatever the frames hold; another device is read at once.
func TestReadsAreShapedPerDevice(t *testing.T) {
	const rate, burst = 1000, 2000
	r := newTestRelay(t, Config{Limits: Limits{ReadBytesPerSecond: rate, ReadBurst: burst}}, echoWorker{})
	var conns []*conn
	for d := range 2 {
		dev, sc := r.device(t, fmt.Sprintf("PC %d", d))
		c := newConn(r.s, context.Background(), &recorder{}, dev, sc)
		b, _ := wire.Encode(wire.Message{Type: wire.TypeJoin, SenderID: fmt.Sprintf("pc%d", d), SupportedProtocolVersions: []string{"1"}})
		c.onFrame(b)
		conns = append(conns, c)
	}
	// Ephemeral messages about a document nobody holds: reading them is
	// all the work.
	frame, _ := wire.Encode(wire.Message{Type: wire.TypeEphemeral, SenderID: "pc0", TargetID: "relay", DocumentID: docid.New().String(),
		SessionID: "s", Count: 1, Data: make([]byte, 1000)})
	if len(frame) < 1000 {
		t.Fatalf("a frame of %d bytes", len(frame))
	}
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		conns[1].onFrame(frame)
		if d := time.Since(start); d != 0 {
			t.Fatalf("a device within its burst waited %v", d)
		}
		sent := 0
		for range 5 {
			conns[0].onFrame(frame)
			sent += len(frame)
		}
		got := time.Since(start)
		// The join and the frames, less the burst, at the rate.
		want := time.Duration(float64(sent-burst) / rate * float64(time.Second))
		if got < want-50*time.Millisecond || got > want+200*time.Millisecond {
			t.Fatalf("%d bytes past a burst of %d at %d/s took %v to read; want about %v", sent-burst, burst, rate, got, want)
		}
	})
}

// bulkWorker records, for each document, whether its calls were bulk.
type bulkWorker struct {
	echoWorker
	mu   sync.Mutex
	bulk map[string][]bool
}

func (w *bulkWorker) Work(ctx context.Context, a worker.WorkArgs) (worker.WorkReply, error) {
	w.mu.Lock()
	w.bulk[a.Doc] = append(w.bulk[a.Doc], a.Bulk)
	w.mu.Unlock()
	return w.echoWorker.Work(ctx, a)
}

// TestBulkWorkIsMarked: a new document's first batch and a batch with a
// large message go to the worker as bulk work (run behind small edits); a
// small edit to a document the relay holds does not.
func TestBulkWorkIsMarked(t *testing.T) {
	w := &bulkWorker{bulk: map[string][]bool{}}
	r := newTestRelay(t, Config{}, w)
	enc := func(m wire.Message) []byte { b, _ := wire.Encode(m); return b }
	dev, sc := r.device(t, "PC")
	c := newConn(r.s, context.Background(), &recorder{}, dev, sc)
	c.onFrame(enc(wire.Message{Type: wire.TypeJoin, SenderID: "pc", SupportedProtocolVersions: []string{"1"}}))
	large := crdt.New()
	if _, err := large.Change("", time.Unix(0, 0), func(w *crdt.Writer) error { return w.Set(randomText(2*bulkMessageBytes), "v") }); err != nil {
		t.Fatal(err)
	}
	largeMsg, err := crdttest.FirstChanges(large, crdt.New())
	if err != nil {
		t.Fatal(err)
	}
	held, fresh := docid.New().String(), docid.New().String()
	r.s.mu.Lock()
	r.s.owners[held] = r.home
	r.s.mu.Unlock()
	cases := []struct {
		name, doc string
		data      []byte
		bulk      bool
	}{
		{"a small edit to a held document", held, changesOf(t, 1), false},
		{"a large message to a held document", held, largeMsg, true},
		{"a new document's first message", fresh, changesOf(t, 2), true},
	}
	for _, tc := range cases {
		w.mu.Lock()
		before := len(w.bulk[tc.doc])
		w.mu.Unlock()
		c.onFrame(enc(wire.Message{Type: wire.TypeSync, SenderID: "pc", TargetID: "relay", DocumentID: tc.doc, Data: tc.data}))
		r.s.wg.Wait()
		w.mu.Lock()
		got := w.bulk[tc.doc][before:]
		w.mu.Unlock()
		if len(got) != 1 || got[0] != tc.bulk {
			t.Errorf("%s: worker calls marked bulk %v; want [%v]", tc.name, got, tc.bulk)
		}
	}
}

// randomText is n characters that do not compress.
func randomText(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[rand.IntN(36)]
	}
	return string(b)
}

// suspectWorker refuses any message from the peer "bad" carrying refuseMe,
// records each call's peers and whether it was bulk, and, when hold is
// set, says it started a call and holds it until hold closes.
type suspectWorker struct {
	echoWorker
	hold    chan struct{}
	started chan struct{}
	mu      sync.Mutex
	calls   []suspectCall
}

type suspectCall struct {
	peers []string
	bulk  bool
}

var refuseMe = []byte{0x42, 9, 9, 9, 9}

// who is the name a device joined with, from the engine peer ID the relay
// gives its connection ("dev-…/name#n").
func who(peer string) string {
	_, name, _ := strings.Cut(peer, "/")
	name, _, _ = strings.Cut(name, "#")
	return name
}

func (w *suspectWorker) Work(ctx context.Context, a worker.WorkArgs) (worker.WorkReply, error) {
	w.mu.Lock()
	hold := w.hold
	w.hold = nil
	w.mu.Unlock()
	if hold != nil {
		w.started <- struct{}{}
		<-hold
	}
	c := suspectCall{bulk: a.Bulk}
	for _, m := range a.Msgs {
		c.peers = append(c.peers, who(m.From))
	}
	w.mu.Lock()
	w.calls = append(w.calls, c)
	w.mu.Unlock()
	for i, m := range a.Msgs {
		if who(m.From) == "bad" && bytes.Equal(m.Data, refuseMe) {
			return worker.WorkReply{Failed: &worker.Failure{Index: i, Peer: m.From, Reason: "malformed"}}, nil
		}
	}
	return w.echoWorker.Work(ctx, a)
}

// TestRefusedDeviceIsWorkedBehindOthers: once the workers refuse a
// device's message, its messages to a document go after other devices'
// waiting with them, in a call of their own marked bulk (low priority);
// other devices' calls are not bulk.
func TestRefusedDeviceIsWorkedBehindOthers(t *testing.T) {
	w := &suspectWorker{started: make(chan struct{}, 1)}
	r := newTestRelay(t, Config{}, w)
	enc := func(m wire.Message) []byte { b, _ := wire.Encode(m); return b }
	join := func(name, peer string) *conn {
		dev, sc := r.device(t, name)
		c := newConn(r.s, context.Background(), &recorder{}, dev, sc)
		c.onFrame(enc(wire.Message{Type: wire.TypeJoin, SenderID: peer, SupportedProtocolVersions: []string{"1"}}))
		return c
	}
	bad, good := join("Attacker PC", "bad"), join("Office PC", "good")
	send := func(c *conn, peer string, data []byte) {
		c.onFrame(enc(wire.Message{Type: wire.TypeSync, SenderID: peer, TargetID: "relay", DocumentID: r.doc, Data: data}))
	}
	send(bad, "bad", refuseMe)
	r.s.wg.Wait()

	// Hold the worker on a first message while both devices' next
	// messages queue for the document.
	hold := make(chan struct{})
	w.mu.Lock()
	w.hold = hold
	w.mu.Unlock()
	send(good, "good", changesOf(t, 1))
	<-w.started
	send(bad, "bad", changesOf(t, 2))
	send(good, "good", changesOf(t, 3))
	close(hold)
	r.s.wg.Wait()

	w.mu.Lock()
	defer w.mu.Unlock()
	var order []string
	for _, c := range w.calls[1:] {
		order = append(order, c.peers...)
		isBad := slices.Contains(c.peers, "bad")
		if isBad && (!c.bulk || len(c.peers) != 1) || !isBad && c.bulk {
			t.Errorf("call %v marked bulk %v; want the refused device's alone and bulk, the other's not", c.peers, c.bulk)
		}
	}
	if want := []string{"good", "good", "bad"}; !slices.Equal(order, want) {
		t.Errorf("worked in the order %v; want %v", order, want)
	}
}

// TestSuspectDevicesConnectionsRunAtLowPriority: once a device is suspect,
// by a worker's refusal or by going over a quota of its own, the goroutine
// that reads its connection moves to a low-priority thread at its next
// frame; another device's stays where it was.
func TestSuspectDevicesConnectionsRunAtLowPriority(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("thread priorities are set only on Linux")
	}
	w := &suspectWorker{started: make(chan struct{}, 1)}
	r := newTestRelay(t, Config{Limits: Limits{ChangesPerSecond: 0.001, ChangeBurst: 1}}, w)
	enc := func(m wire.Message) []byte { b, _ := wire.Encode(m); return b }
	// Each device's frames are read on a goroutine of its own, locked to
	// its thread as a connection's read loop would be, which then reports
	// the nice value of the thread it ran on.
	type reader struct {
		c     *conn
		peer  string
		frame chan []byte
		nice  chan int
	}
	start := func(name, peer string) *reader {
		dev, sc := r.device(t, name)
		rd := &reader{c: newConn(r.s, context.Background(), &recorder{}, dev, sc), peer: peer, frame: make(chan []byte), nice: make(chan int)}
		go func() {
			runtime.LockOSThread()
			for f := range rd.frame {
				rd.c.onFrame(f)
				rd.nice <- lowprio.ThreadNice()
			}
		}()
		t.Cleanup(func() { close(rd.frame) })
		return rd
	}
	send := func(rd *reader, m wire.Message) int {
		m.SenderID = rd.peer
		rd.frame <- enc(m)
		n := <-rd.nice
		r.s.wg.Wait()
		return n
	}
	base := lowprio.ThreadNice()
	sync := func(data []byte) wire.Message {
		return wire.Message{Type: wire.TypeSync, TargetID: "relay", DocumentID: r.doc, Data: data}
	}
	join := wire.Message{Type: wire.TypeJoin, SupportedProtocolVersions: []string{"1"}}

	refused, greedy, good := start("Attacker PC", "bad"), start("Greedy PC", "greedy"), start("Office PC", "good")
	for _, rd := range []*reader{refused, greedy, good} {
		if n := send(rd, join); n != base {
			t.Fatalf("%s joined on a thread at nice %d; want the process's %d", rd.peer, n, base)
		}
	}
	// One message the workers refuse; another over the change quota (a
	// burst of one change, refilled once in 1,000 s: the second is over).
	send(refused, sync(refuseMe))
	send(greedy, sync(changesOf(t, 1)))
	send(greedy, sync(changesOf(t, 2)))
	for _, rd := range []*reader{refused, greedy} {
		if n := send(rd, wire.Message{Type: wire.TypeRequest, DocumentID: r.doc, Data: changesOf(t, 0)}); n < base+lowprio.Nice {
			t.Errorf("the suspect device %s's next frame was read at nice %d; want at least %d", rd.peer, n, base+lowprio.Nice)
		}
	}
	if n := send(good, sync(changesOf(t, 4))); n != base {
		t.Errorf("the good device's frame was read at nice %d; want the process's %d", n, base)
	}
	if got := counterValue(t, r.s.metrics, "haven_relay_goroutines_lowered_total"); got != 2 {
		t.Errorf("lowered counter %v; want 2", got)
	}
}

// counterValue is the sum of a counter's series as the relay exports it.
func counterValue(t *testing.T, m *Metrics, name string) float64 {
	t.Helper()
	fams, err := m.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	v := 0.0
	for _, f := range fams {
		if f.GetName() == name {
			for _, x := range f.GetMetric() {
				v += x.GetCounter().GetValue()
			}
		}
	}
	return v
}
