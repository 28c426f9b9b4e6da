package relay

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"haven/shared/docid"
	"haven/shared/store"
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

	first := &conn{s: s, tc: &recorder{}, dev: dev, scope: sc, boot: make(chan wire.Message, 16)}
	first.onFrame(join)
	first.onFrame(msg)
	s.wg.Wait()
	// The client comes back before the relay noticed the first connection drop.
	second := &conn{s: s, tc: &recorder{}, dev: dev, scope: sc, boot: make(chan wire.Message, 16)}
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

// batchWorker records how many messages each worker call carried, and when.
type batchWorker struct {
	echoWorker
	mu    sync.Mutex
	sizes []int
	at    []time.Time
}

func (w *batchWorker) Work(ctx context.Context, a worker.WorkArgs) (worker.WorkReply, error) {
	w.mu.Lock()
	w.sizes = append(w.sizes, len(a.Msgs))
	w.at = append(w.at, time.Now())
	w.mu.Unlock()
	return w.echoWorker.Work(ctx, a)
}

func (w *batchWorker) calls() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sizes)
}

// A message to an idle document is worked at once; messages that follow
// within the linger (the answers to a fan-out) share one worker call
// instead of one call each.
func TestAnswersShareAWorkerCall(t *testing.T) {
	const linger = 300 * time.Millisecond // wide, so that the test does not race the scheduler
	w := &batchWorker{}
	r := newTestRelay(t, Config{Linger: linger}, w)
	s, doc := r.s, r.doc
	var conns []*conn
	for _, name := range []string{"a", "b", "c"} {
		dev, sc := r.device(t, "PC "+name)
		c := &conn{s: s, tc: &recorder{}, dev: dev, scope: sc, boot: make(chan wire.Message, 16)}
		b, _ := wire.Encode(wire.Message{Type: wire.TypeJoin, SenderID: name, SupportedProtocolVersions: []string{"1"}})
		c.onFrame(b)
		conns = append(conns, c)
	}
	send := func(c *conn) {
		b, _ := wire.Encode(wire.Message{Type: wire.TypeSync, SenderID: c.clientID, TargetID: "relay", DocumentID: doc, Data: []byte{0x42, 0, 0, 0, 0}})
		c.onFrame(b)
	}
	sent := time.Now()
	send(conns[0])
	for w.calls() == 0 {
		if time.Since(sent) > 5*time.Second {
			t.Fatal("the first message was never worked")
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(linger / 10)
	send(conns[1])
	time.Sleep(linger / 10)
	send(conns[2])
	s.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	if got := w.at[0].Sub(sent); got > linger/2 {
		t.Errorf("a message to an idle document waited %v for the worker", got)
	}
	if len(w.sizes) != 2 || w.sizes[0] != 1 || w.sizes[1] != 2 {
		t.Errorf("worker calls carried %v messages; want [1 2]: the two answers arriving within the linger share a call", w.sizes)
	}
}
