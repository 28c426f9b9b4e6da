package worker

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/repo"
	"haven/shared/store"
	"haven/shared/syncer"
)

const childEnv = "HAVEN_WORKER_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if err := RunChild(nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

type testHost struct {
	*store.Store
	mu       sync.Mutex
	admitted map[string]string // doc → peer
	refuse   bool
}

func (h *testHost) Admit(_ context.Context, from syncer.Peer, doc, home string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.refuse {
		return errors.New("out of scope")
	}
	h.admitted[doc] = from.ID
	return nil
}

// Trust: these tests write plain documents, which no signature concerns.
func (h *testHost) Trust() ([]byte, []cert.Revocation, uint64) { return nil, nil, 1 }

func (h *testHost) Provenance(string, map[string]string) {}

func startPool(t *testing.T, workers int) (*Pool, *testHost) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Key: bytes.Repeat([]byte{2}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	host := &testHost{Store: st, admitted: map[string]string{}}
	p, err := Start(Config{Command: []string{os.Args[0]}, Env: []string{childEnv + "=1"}, Workers: workers, Host: host})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); st.Close() })
	return p, host
}

// client is a peer with its own in-memory document, talking to the pool as
// the relay's connection handler would.
type client struct {
	id   string
	doc  *crdt.Doc
	ss   *crdt.SyncState
	peer syncer.Peer
}

func newClient(id string) *client {
	d := crdt.New()
	return &client{id: id, doc: d, ss: crdt.NewSyncState(d), peer: syncer.Peer{ID: id, StorageID: "s-" + id}}
}

// syncWith exchanges messages with the pool until both sides are quiet.
func (c *client) syncWith(t *testing.T, p *Pool, doc docid.ID) {
	t.Helper()
	if err := c.exchange(p, doc); err != nil {
		t.Fatal(err)
	}
}

// exchange is syncWith, returning what went wrong.
func (c *client) exchange(p *Pool, doc docid.ID) error {
	for i := 0; i < 20; i++ {
		msg, ok, err := c.ss.Generate()
		if err != nil {
			return err
		}
		args := WorkArgs{Doc: doc.String(), Peers: []syncer.Peer{c.peer}}
		if ok {
			args.Msgs = []syncer.In{{From: c.id, Data: msg}}
		} else {
			args.Notify = []string{c.id}
		}
		reply, err := p.Work(context.Background(), args)
		if err != nil {
			return err
		}
		if reply.Failed != nil {
			return fmt.Errorf("work failed: %+v", reply.Failed)
		}
		if !ok && len(reply.Out) == 0 {
			return nil
		}
		for _, o := range reply.Out {
			if err := c.ss.Receive(o.Data); err != nil {
				return err
			}
		}
	}
	return errors.New("sync did not settle")
}

func TestPoolStoresAndServes(t *testing.T) {
	p, host := startPool(t, 2)
	a := newClient("a")
	a.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("12", "room") })
	id := docid.New()
	a.syncWith(t, p, id)
	if host.admitted[id.String()] != "a" {
		t.Fatalf("admitted = %v, want the document admitted for a", host.admitted)
	}
	sd, err := host.LoadDoc(id.String())
	if err != nil || len(sd.Chunks) == 0 {
		t.Fatalf("relay store after sync: %+v, %v", sd, err)
	}
	// A second client with nothing receives the document.
	b := newClient("b")
	b.syncWith(t, p, id)
	if v, _, _ := b.doc.Get("room"); v != "12" {
		t.Fatalf("b reads room %v, want 12", v)
	}
}

func TestAdmitRefusalStoresNothing(t *testing.T) {
	p, host := startPool(t, 1)
	host.refuse = true
	a := newClient("a")
	a.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("x", "k") })
	id := docid.New()
	var failed *Failure
	for i := 0; i < 5 && failed == nil; i++ {
		msg, ok, _ := a.ss.Generate()
		if !ok {
			break
		}
		reply, err := p.Work(context.Background(), WorkArgs{Doc: id.String(), Msgs: []syncer.In{{From: "a", Data: msg}}, Peers: []syncer.Peer{a.peer}})
		if err != nil {
			t.Fatal(err)
		}
		failed = reply.Failed
		for _, o := range reply.Out {
			a.ss.Receive(o.Data)
		}
	}
	if failed == nil || !failed.Refused || failed.Peer != "a" {
		t.Fatalf("failure = %+v, want a refusal naming a", failed)
	}
	if _, err := host.LoadDoc(id.String()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused document stored: %v", err)
	}
}

func crashingMessage(t *testing.T) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/aborts-automerge.hex")
	if err != nil {
		t.Fatal(err)
	}
	b, err := hex.DecodeString(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if err := crdt.CheckSyncMessage(b); err != nil {
		t.Fatalf("fixture no longer passes the Go check (%v): it would not reach Automerge", err)
	}
	return b
}

// A message that aborts Automerge (it passes the Go check: its changes carry
// valid checksums) kills a worker, twice, and is quarantined; the pool keeps
// serving other documents, on the same worker too, and stores nothing of it.
func TestCrashingMessageIsQuarantined(t *testing.T) {
	p, host := startPool(t, 2)
	bad := crashingMessage(t)
	evil := docid.New()
	good := newClient("good")
	good.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("fine", "k") })
	goodDoc := docid.New()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // healthy traffic alongside
		defer wg.Done()
		good.syncWith(t, p, goodDoc)
	}()
	_, err := p.Work(context.Background(), WorkArgs{Doc: evil.String(), Msgs: []syncer.In{{From: "evil", Data: bad}}, Peers: []syncer.Peer{{ID: "evil"}}})
	wg.Wait()
	if !errors.Is(err, ErrQuarantined) {
		t.Fatalf("Work(crashing message) = %v, want ErrQuarantined", err)
	}
	if n := p.Restarts(); n != 2 {
		t.Fatalf("restarts = %d, want 2 (the crash and the replay)", n)
	}
	if _, err := host.LoadDoc(evil.String()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the crashing document was stored: %v", err)
	}
	// The restarted worker serves the healthy document, reloading it from the store.
	again := newClient("again")
	again.syncWith(t, p, goodDoc)
	if v, _, _ := again.doc.Get("k"); v != "fine" {
		t.Fatalf("after restarts, document reads %v, want fine", v)
	}
	// Every document hashed to the crashed worker still works.
	for i := 0; i < 8; i++ {
		c := newClient(fmt.Sprint("c", i))
		c.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set(int64(i), "n") })
		c.syncWith(t, p, docid.New())
	}
}

// Sync states survive a worker restart through the store: the restarted
// worker loads them instead of starting over.
func TestSyncStatesPersist(t *testing.T) {
	p, host := startPool(t, 1)
	a := newClient("a")
	a.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("x", "k") })
	id := docid.New()
	a.syncWith(t, p, id)
	p.Forget("a")
	if _, err := host.SyncState("s-a", id.String()); err != nil {
		t.Fatalf("sync state after Forget: %v", err)
	}
	_ = repo.ErrNotFound
}

// gatedHost holds the first appends of new documents until gate closes, and
// tells arrived about each one held.
type gatedHost struct {
	*testHost
	hold    func() bool // whether to hold this append
	arrived chan string
	gate    chan struct{}
}

func (h *gatedHost) AppendChunk(ctx context.Context, doc string, chunk []byte) (uint64, error) {
	open := false
	select {
	case <-h.gate:
		open = true
	default:
	}
	if !open && h.hold() {
		h.arrived <- doc
		select {
		case <-h.gate:
		case <-time.After(10 * time.Second):
			return 0, errors.New("append held for 10 s: the gate never opened")
		}
	}
	return h.testHost.AppendChunk(ctx, doc, chunk)
}

func startGatedPool(t *testing.T, log *slog.Logger, hold func() bool) (*Pool, *gatedHost) {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Key: bytes.Repeat([]byte{2}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	host := &gatedHost{testHost: &testHost{Store: st, admitted: map[string]string{}}, hold: hold,
		arrived: make(chan string, 16), gate: make(chan struct{})}
	p, err := Start(Config{Command: []string{os.Args[0]}, Env: []string{childEnv + "=1"}, Workers: 1, Host: host, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(); st.Close() })
	return p, host
}

// While one item waits for the store to make its change durable, the child
// works on another: two new documents on a one-child pool both reach the
// store before either append returns.
func TestChildWorksOnSeveralItemsAtOnce(t *testing.T) {
	p, host := startGatedPool(t, nil, func() bool { return true })
	errs := make(chan error, 2)
	for _, name := range []string{"a", "b"} {
		c := newClient(name)
		c.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set(name, "k") })
		go func() { errs <- c.exchange(p, docid.New()) }()
	}
	for range 2 {
		select {
		case <-host.arrived:
		case err := <-errs:
			t.Fatalf("an item finished (%v) before both were at the store: the child works on one item at a time", err)
		}
	}
	close(host.gate)
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// A crash with several items in flight: each is replayed alone on the fresh
// child; the innocent ones complete and are stored, only the culprit is
// quarantined.
func TestCrashAmongSeveralItemsInFlight(t *testing.T) {
	died := make(chan struct{})
	var once sync.Once
	log := slog.New(handlerFunc(func(r slog.Record) {
		if strings.Contains(r.Message, "CRDT worker died") {
			once.Do(func() { close(died) })
		}
	}))
	var first sync.Once
	var p *Pool
	p, host := startGatedPool(t, log, func() bool {
		// Hold the innocent items' first appends on the first child
		// until it has died, so they are in flight when it does.
		select {
		case <-died:
			return false
		default:
			return true
		}
	})
	go func() { <-died; first.Do(func() { close(host.gate) }) }()
	t.Cleanup(func() { first.Do(func() { close(host.gate) }) })

	const innocents = callsPerChild - 1
	type result struct {
		c   *client
		id  docid.ID
		err error
	}
	results := make(chan result, innocents)
	for i := range innocents {
		c := newClient(fmt.Sprint("good", i))
		c.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set(int64(i), "n") })
		id := docid.New()
		go func() { results <- result{c, id, c.exchange(p, id)} }()
	}
	for range innocents {
		<-host.arrived // every innocent item is in flight, at the store
	}
	_, err := p.Work(context.Background(), WorkArgs{Doc: docid.New().String(), Msgs: []syncer.In{{From: "evil", Data: crashingMessage(t)}}, Peers: []syncer.Peer{{ID: "evil"}}})
	if !errors.Is(err, ErrQuarantined) {
		t.Fatalf("Work(crashing message) = %v, want ErrQuarantined", err)
	}
	for range innocents {
		r := <-results
		if r.err != nil {
			t.Fatalf("an innocent item in flight at the crash failed: %v", r.err)
		}
		if _, err := host.LoadDoc(r.id.String()); err != nil {
			t.Fatalf("an innocent item's document was not stored: %v", err)
		}
		r.c.syncWith(t, p, r.id)
	}
	if n := p.Restarts(); n != 2 {
		t.Fatalf("restarts = %d, want 2 (the crash, and the culprit's replay)", n)
	}
}

// handlerFunc is a slog.Handler calling a function for each record.
type handlerFunc func(slog.Record)

func (h handlerFunc) Enabled(context.Context, slog.Level) bool      { return true }
func (h handlerFunc) Handle(_ context.Context, r slog.Record) error { h(r); return nil }
func (h handlerFunc) WithAttrs([]slog.Attr) slog.Handler            { return h }
func (h handlerFunc) WithGroup(string) slog.Handler                 { return h }

// A replay runs alone, and a crash during it quarantines its item; so a
// child that another item already killed, before anyone noticed, must not
// count against the replay. Here the child is killed from outside; a replay
// on it restarts it first and succeeds.
func TestReplayOnAChildAlreadyDeadIsNotItsCrash(t *testing.T) {
	p, host := startPool(t, 1)
	pr := p.procs[0]
	pr.cmd.Process.Kill()
	<-pr.exited
	c := newClient("a")
	c.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("x", "k") })
	id := docid.New()
	for i := 0; i < 20; i++ {
		msg, ok, err := c.ss.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		reply, err := pr.work(WorkArgs{Doc: id.String(), Msgs: []syncer.In{{From: c.id, Data: msg}}, Peers: []syncer.Peer{c.peer}}, true)
		if err != nil {
			t.Fatalf("replay on a child that was already dead: %v, want it restarted first and the item worked", err)
		}
		for _, o := range reply.Out {
			c.ss.Receive(o.Data)
		}
	}
	if _, err := host.LoadDoc(id.String()); err != nil {
		t.Fatalf("the replayed item's document was not stored: %v", err)
	}
	if n := p.Restarts(); n != 1 {
		t.Fatalf("restarts = %d, want 1", n)
	}
}
