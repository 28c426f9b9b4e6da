package relay

import (
	"bytes"
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/store"
	"haven/shared/syncer"
	"haven/shared/wire"
	"haven/syncd/internal/orgs"
	"haven/syncd/internal/worker"
)

// peerWorker records which engine peers the relay hands its worker, and
// which it tells the worker to forget.
type peerWorker struct {
	echoWorker
	mu     sync.Mutex
	from   []string
	forgot []string
}

func (w *peerWorker) Work(ctx context.Context, a worker.WorkArgs) (worker.WorkReply, error) {
	w.mu.Lock()
	for _, m := range a.Msgs {
		w.from = append(w.from, m.From)
	}
	w.mu.Unlock()
	return w.echoWorker.Work(ctx, a)
}

func (w *peerWorker) Forget(p string) {
	w.mu.Lock()
	w.forgot = append(w.forgot, p)
	w.mu.Unlock()
}

// testRelay is a relay on a fresh store with one home and one document of
// that home, working through w.
type testRelay struct {
	s    *Server
	reg  *orgs.Registry
	home string
	doc  string
}

func newTestRelay(t *testing.T, cfg Config, w Worker) *testRelay {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Key: bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := orgs.New(st)
	home, err := reg.CreateHome(context.Background(), "Larch House", "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Store, cfg.Orgs = st, reg
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(w)
	doc := docid.New().String()
	s.RegisterDocument(doc, home.ID)
	// Read its stored size now, outside any synctest bubble: the store's
	// wait group must not become the bubble's.
	s.storedBytes(doc)
	return &testRelay{s: s, reg: reg, home: home.ID, doc: doc}
}

// device enrols a device of the home and returns its ID and scope.
func (r *testRelay) device(t *testing.T, name string) (orgs.Device, orgs.Scope) {
	t.Helper()
	dev, _, err := r.reg.EnrollDevice(context.Background(), r.home, name, 0)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := r.reg.Scope(dev)
	if err != nil {
		t.Fatal(err)
	}
	return dev, sc
}

// A client that reconnects (same device, same peer ID) is a new peer to
// the engine: Automerge's sync state belongs to one connection, and one
// carried over (changes it believes in flight) can leave the reconnected
// client waiting for changes that are never resent. The old connection's
// states are forgotten when it goes, even if it was replaced first.
func TestEachConnectionIsItsOwnEnginePeer(t *testing.T) {
	w := &peerWorker{}
	r := newTestRelay(t, Config{}, w)
	s, doc := r.s, r.doc
	dev, sc := r.device(t, "Nurses' station")
	enc := func(m wire.Message) []byte { b, _ := wire.Encode(m); return b }
	join := enc(wire.Message{Type: wire.TypeJoin, SenderID: "pc", SupportedProtocolVersions: []string{"1"},
		PeerMetadata: &wire.PeerMetadata{StorageID: "store-pc"}})
	msg := enc(wire.Message{Type: wire.TypeSync, SenderID: "pc", TargetID: "relay", DocumentID: doc, Data: []byte{0x42, 0, 0, 0, 0}})

	first := newConn(s, context.Background(), &recorder{}, dev, sc)
	first.onFrame(join)
	first.onFrame(msg)
	s.wg.Wait()
	// The client comes back before the relay noticed the first connection drop.
	second := newConn(s, context.Background(), &recorder{}, dev, sc)
	second.onFrame(join)
	second.onFrame(msg)
	s.wg.Wait()
	first.leave()
	second.leave()

	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.from) != 2 || w.from[0] == w.from[1] {
		t.Fatalf("the two connections reached the engine as %q; want two different peers", w.from)
	}
	if first.peer.StorageID != second.peer.StorageID || first.peer.StorageID == "" {
		t.Fatalf("storage IDs %q and %q: saved states must carry across connections", first.peer.StorageID, second.peer.StorageID)
	}
	forgot := map[string]bool{}
	for _, p := range w.forgot {
		forgot[p] = true
	}
	if !forgot[w.from[0]] || !forgot[w.from[1]] {
		t.Fatalf("forgotten %q; want both connections' peers %q", w.forgot, w.from)
	}
	if !first.tc.(*recorder).closed {
		t.Fatal("the replaced connection was not closed")
	}
}

// batchWorker tells the test how many messages each worker call carried.
type batchWorker struct {
	echoWorker
	calls chan int // made inside the test's bubble
}

func (w *batchWorker) Work(ctx context.Context, a worker.WorkArgs) (worker.WorkReply, error) {
	w.calls <- len(a.Msgs)
	return w.echoWorker.Work(ctx, a)
}

// A message to an idle document is worked at once; messages that follow
// within the linger (the answers to a fan-out) share one worker call
// instead of one call each. The relay's runners run in a synctest bubble,
// so the linger passes on the bubble's clock.
func TestAnswersShareAWorkerCall(t *testing.T) {
	const linger = 300 * time.Millisecond
	w := &batchWorker{}
	r := newTestRelay(t, Config{Linger: linger}, w)
	s, doc := r.s, r.doc
	var conns []*conn
	for _, name := range []string{"a", "b", "c"} {
		dev, sc := r.device(t, "PC "+name)
		c := newConn(s, context.Background(), &recorder{}, dev, sc)
		b, _ := wire.Encode(wire.Message{Type: wire.TypeJoin, SenderID: name, SupportedProtocolVersions: []string{"1"}})
		c.onFrame(b)
		conns = append(conns, c)
	}
	send := func(c *conn) {
		b, _ := wire.Encode(wire.Message{Type: wire.TypeSync, SenderID: c.clientID, TargetID: "relay", DocumentID: doc, Data: []byte{0x42, 0, 0, 0, 0}})
		c.onFrame(b)
	}
	synctest.Test(t, func(t *testing.T) {
		w.calls = make(chan int, 4)
		start := time.Now()
		send(conns[0])
		if n := <-w.calls; n != 1 {
			t.Fatalf("first call carried %d messages, want 1", n)
		}
		if d := time.Since(start); d != 0 {
			t.Errorf("a message to an idle document waited %v for the worker", d)
		}
		synctest.Wait() // the runner is done with the first batch
		send(conns[1])
		synctest.Wait()
		send(conns[2])
		synctest.Wait()
		if n := <-w.calls; n != 2 {
			t.Errorf("the next call carried %d messages; want the two answers that came within the linger in one call", n)
		}
		if d := time.Since(start); d != linger {
			t.Errorf("the answers were worked %v after the first message, want after the linger (%v)", d, linger)
		}
		// With nothing more, the runner goes once one linger is over.
		// Waiting for it to end lets the bubble's clock run to then.
		s.wg.Wait()
		if d := time.Since(start); d != 2*linger {
			t.Errorf("the idle runner ended %v after the first message, want one linger after the answers (%v)", d, 2*linger)
		}
		s.mu.Lock()
		_, running := s.queues[doc]
		s.mu.Unlock()
		if running {
			t.Error("the document's runner is still there after a linger with nothing to do")
		}
	})
}

// failWorker fails every message as from a peer it does not know; before
// answering, it runs during (if set), as if a connection ended meanwhile.
type failWorker struct {
	echoWorker
	during func()
}

func (w *failWorker) Work(_ context.Context, a worker.WorkArgs) (worker.WorkReply, error) {
	if w.during != nil {
		w.during()
	}
	return worker.WorkReply{Failed: &worker.Failure{Index: 0, Peer: a.Msgs[0].From, Reason: "unknown peer"}}, nil
}

// A refused message is reported to its device; but one whose connection
// ended while it waited (the worker forgot the peer, and fails the message
// for that) is not a refusal: nobody is told, nothing is counted.
func TestMessageOfADepartedConnectionIsNotARefusal(t *testing.T) {
	for _, departs := range []bool{false, true} {
		w := &failWorker{}
		r := newTestRelay(t, Config{}, w)
		dev, sc := r.device(t, "PC")
		tc := &recorder{}
		c := newConn(r.s, context.Background(), tc, dev, sc)
		enc := func(m wire.Message) []byte { b, _ := wire.Encode(m); return b }
		c.onFrame(enc(wire.Message{Type: wire.TypeJoin, SenderID: "pc", SupportedProtocolVersions: []string{"1"}}))
		if departs {
			w.during = c.leave
		}
		c.onFrame(enc(wire.Message{Type: wire.TypeSync, SenderID: "pc", TargetID: "relay", DocumentID: r.doc, Data: []byte{0x42, 0, 0, 0, 0}}))
		r.s.wg.Wait()
		told := 0
		tc.mu.Lock()
		for _, f := range tc.frames {
			if m, err := wire.Decode(f); err == nil && m.Type == wire.TypeError {
				told++
			}
		}
		tc.mu.Unlock()
		rec := httptest.NewRecorder()
		r.s.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		counted := strings.Contains(rec.Body.String(), `haven_relay_refused_total{reason="bad-sync-message"} 1`)
		if departs && (told != 0 || counted) {
			t.Errorf("connection gone: told %d, refusal counted %v; want neither", told, counted)
		}
		if !departs && (told != 1 || !counted) {
			t.Errorf("connection still there: told %d, refusal counted %v; want both", told, counted)
		}
	}
}

// headsWorker answers as echoWorker does, with the document at heads, and
// tells the test each call's messages.
type headsWorker struct {
	echoWorker
	heads []crdt.Hash
	calls chan []syncer.In // made inside the test's bubble
}

func (w *headsWorker) Work(ctx context.Context, a worker.WorkArgs) (worker.WorkReply, error) {
	w.calls <- a.Msgs
	r, err := w.echoWorker.Work(ctx, a)
	r.Heads = w.heads
	return r, err
}

// settledAck is the answer of a peer that holds exactly heads and knows
// the relay does.
func settledAck(heads crdt.Hash) []byte {
	b := append([]byte{0x42, 1}, heads[:]...)
	b = append(b, 0, 1, 1) // no need; one have, on one hash
	b = append(b, heads[:]...)
	return append(b, 0, 0) // an empty Bloom filter; no changes
}

// The answers subscribers send once they hold a change (settled
// acknowledgements) cost no worker call of their own: held back, one per
// peer, they go first in the next batch worked on the document, or on their
// own once held settledAckWait. A later message from the peer replaces
// its held answer; one from a connection that has gone is dropped.
func TestSettledAcksWaitForTheNextBatch(t *testing.T) {
	const linger = 10 * time.Millisecond
	heads := crdt.Hash{7}
	w := &headsWorker{heads: []crdt.Hash{heads}}
	r := newTestRelay(t, Config{Linger: linger}, w)
	s, doc := r.s, r.doc
	conns := map[string]*conn{}
	for _, name := range []string{"a", "b", "c", "d"} {
		dev, sc := r.device(t, "PC "+name)
		c := newConn(s, context.Background(), &recorder{}, dev, sc)
		b, _ := wire.Encode(wire.Message{Type: wire.TypeJoin, SenderID: name, SupportedProtocolVersions: []string{"1"}})
		c.onFrame(b)
		conns[name] = c
	}
	change := []byte{0x42, 0, 0, 0, 0} // anything not a settled acknowledgement
	ack := settledAck(heads)
	if !crdt.SettledAck(ack, []crdt.Hash{heads}) {
		t.Fatal("the test's acknowledgement is not a settled one")
	}
	send := func(name string, data []byte) {
		b, _ := wire.Encode(wire.Message{Type: wire.TypeSync, SenderID: name, TargetID: "relay", DocumentID: doc, Data: data})
		conns[name].onFrame(b)
		synctest.Wait()
	}
	from := func(msgs []syncer.In) []string {
		var out []string
		for _, m := range msgs {
			name := ""
			for n, c := range conns {
				if c.peer.ID == m.From {
					name = n
				}
			}
			if crdt.SettledAck(m.Data, []crdt.Hash{heads}) {
				name += " ack"
			}
			out = append(out, name)
		}
		return out
	}
	synctest.Test(t, func(t *testing.T) {
		defer s.wg.Wait() // a runner still lingering when a check fails
		w.calls = make(chan []syncer.In, 8)
		// Before the relay has worked on the document it knows no heads,
		// and holds nothing back.
		send("b", ack)
		if got := from(<-w.calls); !slices.Equal(got, []string{"b ack"}) {
			t.Fatalf("first call %q, want b's answer", got)
		}
		send("a", change)
		if got := from(<-w.calls); !slices.Equal(got, []string{"a"}) {
			t.Fatalf("second call %q, want a's change", got)
		}
		send("b", ack)
		send("c", ack)
		send("c", ack) // the second replaces the first
		send("d", ack)
		select {
		case m := <-w.calls:
			t.Fatalf("a call of its own for %q", from(m))
		default:
		}
		send("d", change) // d's change says all its answer said
		got := from(<-w.calls)
		slices.Sort(got[:2])
		if !slices.Equal(got, []string{"b ack", "c ack", "d"}) {
			t.Fatalf("the next change's call carried %q, want b's and c's answers first (c's once), then d's change alone", got)
		}

		// With no batch to go with, the answers are worked once held
		// settledAckWait; one from a connection gone meanwhile is not.
		send("b", ack)
		send("c", ack)
		held := time.Now()
		conns["c"].leave()
		got = from(<-w.calls)
		if !slices.Equal(got, []string{"b ack"}) {
			t.Fatalf("held answers worked as %q, want b's alone", got)
		}
		if d := time.Since(held); d < settledAckWait || d > settledAckWait+2*linger {
			t.Errorf("held answers worked %v after they came, want about %v", d, settledAckWait)
		}
		s.wg.Wait()
		s.mu.Lock()
		_, left := s.queues[doc]
		s.mu.Unlock()
		if left {
			t.Error("the document's queue is kept with nothing held")
		}
		if n := conns["b"].waiting.Load(); n != 0 {
			t.Errorf("b's connection counts %d messages waiting, want 0", n)
		}
	})
	// The sync latency measures the messages worked as they came (b's first
	// answer, a's and d's changes), not the answers held back on purpose.
	rec := httptest.NewRecorder()
	s.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "haven_relay_sync_seconds_count 3\n") {
		t.Errorf("sync latency counted other than the 3 messages worked as they came:\n%s", rec.Body.String())
	}
}
