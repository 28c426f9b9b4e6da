package worker

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/lowprio"
	"haven/shared/repo"
	"haven/shared/rig"
	"haven/shared/store"
	"haven/shared/syncer"
)

const (
	childEnv = "HAVEN_WORKER_TEST_CHILD"
	// holdDocEnv names a document whose work items the test children hold
	// (see holdOn); holdDirEnv the folder where they mark each hold.
	holdDocEnv = "HAVEN_WORKER_TEST_HOLD_DOC"
	holdDirEnv = "HAVEN_WORKER_TEST_HOLD_DIR"
	// niceDirEnv names a folder where test children write, for each work
	// item, the nice value of the thread working it (see noteNice).
	niceDirEnv = "HAVEN_WORKER_TEST_NICE_DIR"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		hold, nice := holdOn(os.Getenv(holdDocEnv), os.Getenv(holdDirEnv)), noteNice(os.Getenv(niceDirEnv))
		onWork := func(a WorkArgs) {
			if nice != nil {
				nice(a)
			}
			if hold != nil {
				hold(a)
			}
		}
		if err := RunTestChild(nil, onWork); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// holdOn makes a test child hold every work item on doc, as an item that
// sent Automerge into an endless loop would, after marking the hold with a
// file in dir named for the process. The hold is the fault itself, not a
// wait for anything: a minute, longer than any test waits, but not forever,
// so that a pool that failed to kill the child leaves no process behind.
func holdOn(doc, dir string) func(WorkArgs) {
	if doc == "" {
		return nil
	}
	return func(a WorkArgs) {
		if a.Doc == doc {
			os.WriteFile(filepath.Join(dir, strconv.Itoa(os.Getpid())), nil, 0o600)
			<-time.After(time.Minute)
		}
	}
}

// noteNice makes a test child write, in dir, a file named for each work
// item's document holding the nice value of the thread working it.
func noteNice(dir string) func(WorkArgs) {
	if dir == "" {
		return nil
	}
	return func(a WorkArgs) {
		os.WriteFile(filepath.Join(dir, a.Doc), []byte(strconv.Itoa(lowprio.ThreadNice())), 0o600)
	}
}

// hangingDoc is a document whose work hangs the test children.
type hangingDoc struct {
	doc docid.ID
	dir string
}

func newHangingDoc(t *testing.T) hangingDoc { return hangingDoc{doc: docid.New(), dir: t.TempDir()} }

// env is what a pool passes its children for them to hold h.doc.
func (h hangingDoc) env() []string {
	return []string{holdDocEnv + "=" + h.doc.String(), holdDirEnv + "=" + h.dir}
}

// held counts the children that have held an item on h.doc.
func (h hangingDoc) held() int {
	marks, _ := os.ReadDir(h.dir)
	return len(marks)
}

// waitHeld waits until n children have held an item on h.doc.
func (h hangingDoc) waitHeld(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for h.held() < n {
		select {
		case <-deadline:
			t.Fatalf("%d children held the item, want %d", h.held(), n)
		case <-tick.C:
		}
	}
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

func (h *testHost) Provenance(string, map[string]string)           {}
func (h *testHost) Person(string, string, string) (string, string) { return "", "" }
func (h *testHost) Writers(_ string, peers []string) []string      { return peers }

func startPool(t *testing.T, workers int) (*Pool, *testHost) {
	t.Helper()
	host := newTestHost(t)
	return runPool(t, host, Config{Workers: workers}), host
}

// newTestHost is a host over a fresh store, closed when the test ends.
func newTestHost(t testing.TB) *testHost {
	t.Helper()
	st, err := store.Open(t.TempDir(), store.Options{Key: bytes.Repeat([]byte{2}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &testHost{Store: st, admitted: map[string]string{}}
}

// runPool starts test children serving host, configured by cfg; the pool
// closes when the test ends, before the host's store.
func runPool(t testing.TB, host Host, cfg Config) *Pool {
	t.Helper()
	cfg.Command, cfg.Host = []string{os.Args[0]}, host
	cfg.Env = append(cfg.Env, childEnv+"=1")
	p, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
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

func startGatedPool(t *testing.T, cfg Config, hold func() bool) (*Pool, *gatedHost) {
	t.Helper()
	host := &gatedHost{testHost: newTestHost(t), hold: hold, arrived: make(chan string, 16), gate: make(chan struct{})}
	return runPool(t, host, cfg), host
}

// While one item waits for the store to make its change durable, the child
// works on another: two new documents on a one-child pool both reach the
// store before either append returns.
func TestChildWorksOnSeveralItemsAtOnce(t *testing.T) {
	p, host := startGatedPool(t, Config{Workers: 1}, func() bool { return true })
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
	p := startDyingPool(t, Config{}, "CRDT worker died")
	const innocents = callsPerChild - 1
	results := p.startInnocents(t, innocents)
	_, err := p.Work(context.Background(), WorkArgs{Doc: docid.New().String(), Msgs: []syncer.In{{From: "evil", Data: crashingMessage(t)}}, Peers: []syncer.Peer{{ID: "evil"}}})
	if !errors.Is(err, ErrQuarantined) {
		t.Fatalf("Work(crashing message) = %v, want ErrQuarantined", err)
	}
	p.checkInnocents(t, results, innocents)
	if n := p.Restarts(); n != 2 {
		t.Fatalf("restarts = %d, want 2 (the crash, and the culprit's replay)", n)
	}
}

// dyingPool is a one-child pool whose store holds the first appends of new
// documents until the log says the child died, so that items are in flight
// when it does.
type dyingPool struct {
	*Pool
	host   *gatedHost
	died   chan struct{} // closed at the first record saying so
	mu     sync.Mutex
	deaths []slog.Record // the records saying so; guarded by mu
}

// startDyingPool starts a dyingPool; death is in the message of a log
// record saying the child died.
func startDyingPool(t *testing.T, cfg Config, death string) *dyingPool {
	t.Helper()
	d := &dyingPool{died: make(chan struct{})}
	var once, opened sync.Once
	cfg.Workers, cfg.Logger = 1, slog.New(handlerFunc(func(r slog.Record) {
		if strings.Contains(r.Message, death) {
			d.mu.Lock()
			d.deaths = append(d.deaths, r)
			d.mu.Unlock()
			once.Do(func() { close(d.died) })
		}
	}))
	d.Pool, d.host = startGatedPool(t, cfg, func() bool {
		select {
		case <-d.died:
			return false
		default:
			return true
		}
	})
	go func() { <-d.died; opened.Do(func() { close(d.host.gate) }) }()
	t.Cleanup(func() { opened.Do(func() { close(d.host.gate) }) })
	return d
}

// innocent is a client's exchange on a new document of its own.
type innocent struct {
	c   *client
	id  docid.ID
	err error
}

// startInnocents starts n innocent exchanges and waits until each item is
// in flight on the child, held at the store.
func (d *dyingPool) startInnocents(t *testing.T, n int) <-chan innocent {
	t.Helper()
	results := make(chan innocent, n)
	for i := range n {
		c := newClient(fmt.Sprint("good", i))
		c.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set(int64(i), "n") })
		id := docid.New()
		go func() { results <- innocent{c, id, c.exchange(d.Pool, id)} }()
	}
	for range n {
		select {
		case <-d.host.arrived:
		case <-d.died:
			t.Fatal("the child died before every innocent item was in flight")
		}
	}
	return results
}

// checkInnocents waits for n innocent items that were in flight when the
// child died: each completed, was stored, and syncs on.
func (d *dyingPool) checkInnocents(t *testing.T, results <-chan innocent, n int) {
	t.Helper()
	for range n {
		r := <-results
		if r.err != nil {
			t.Fatalf("an innocent item in flight when the child died failed: %v", r.err)
		}
		if _, err := d.host.LoadDoc(r.id.String()); err != nil {
			t.Fatalf("an innocent item's document was not stored: %v", err)
		}
		r.c.syncWith(t, d.Pool, r.id)
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
	pr.cur.cmd.Process.Kill()
	<-pr.cur.exited
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

// An item that hangs Automerge, rather than crashing it, among several in
// flight on one child: at its deadline the child is killed, which counts as
// a crash. The innocent items in flight are replayed alone and complete;
// the hanging one hangs again alone, is killed again and quarantined; the
// child's documents work on.
func TestHangAmongSeveralItemsInFlight(t *testing.T) {
	const deadline = 2 * time.Second
	h := newHangingDoc(t)
	p := startDyingPool(t, Config{CallTimeout: deadline, Env: h.env()}, "exceeded its deadline")
	slow := newClient("slow")
	slow.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("x", "k") })
	msg, _, err := slow.ss.Generate()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	hung := make(chan error, 1)
	go func() {
		_, err := p.Work(context.Background(), WorkArgs{Doc: h.doc.String(), Msgs: []syncer.In{{From: slow.id, Data: msg}}, Peers: []syncer.Peer{slow.peer}})
		hung <- err
	}()
	h.waitHeld(t, 1)
	// The others go in after it, so that its deadline comes first.
	const innocents = callsPerChild - 1
	results := p.startInnocents(t, innocents)

	select {
	case err = <-hung:
	case <-time.After(2*deadline + 20*time.Second):
		t.Fatalf("the hanging item was not settled %v after it was sent", time.Since(began).Round(time.Millisecond))
	}
	took := time.Since(began)
	if !errors.Is(err, ErrQuarantined) {
		t.Fatalf("Work(hanging item) = %v, want ErrQuarantined", err)
	}
	// Two deadlines: the one in flight, and the one alone.
	if took < 2*deadline {
		t.Fatalf("the hanging item was quarantined after %v, before two deadlines of %v had passed", took, deadline)
	}
	t.Logf("hanging item quarantined %v after it was sent (deadline %v)", took.Round(time.Millisecond), deadline)
	p.checkInnocents(t, results, innocents)
	if n := h.held(); n != 2 {
		t.Errorf("%d children held the hanging item, want 2 (in flight, then alone)", n)
	}
	if r, k := p.Restarts(), p.Timeouts(); r != 2 || k != 2 {
		t.Errorf("restarts = %d, timeouts = %d; want 2 and 2 (the kill in flight, and the replay's)", r, k)
	}
	if _, err := p.host.LoadDoc(h.doc.String()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the hanging item's document was stored: %v", err)
	}
	p.mu.Lock()
	for _, r := range p.deaths {
		var doc string
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "doc" {
				doc = a.Value.String()
			}
			return true
		})
		if doc != h.doc.String() {
			t.Errorf("a kill was logged naming document %q, want the hanging one, %s", doc, h.doc)
		}
	}
	p.mu.Unlock()
	// Documents on the child work on (the pool has one child: all of them).
	c := newClient("after")
	c.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("fine", "k") })
	c.syncWith(t, p.Pool, docid.New())
}

// Close does not wait for a child hung in a call: the call returns
// ErrClosed at once (neither replayed nor quarantined: its item says
// nothing about the child), the child gets its grace to exit, is killed,
// and Close returns.
func TestCloseWhileAChildHangs(t *testing.T) {
	h := newHangingDoc(t)
	p := runPool(t, newTestHost(t), Config{Workers: 2, Env: h.env()}) // the default deadline: longer than the test waits
	a := newClient("a")
	a.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("x", "k") })
	msg, _, err := a.ss.Generate()
	if err != nil {
		t.Fatal(err)
	}
	hung := make(chan error, 1)
	go func() {
		_, err := p.Work(context.Background(), WorkArgs{Doc: h.doc.String(), Msgs: []syncer.In{{From: a.id, Data: msg}}, Peers: []syncer.Peer{a.peer}})
		hung <- err
	}()
	h.waitHeld(t, 1)

	began := time.Now()
	closed := make(chan struct{})
	go func() { p.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(exitGrace + 8*time.Second):
		t.Fatalf("Close still waiting %v after it was called, for a child hung in a call", time.Since(began).Round(time.Millisecond))
	}
	took := time.Since(began)
	t.Logf("Close returned %v after it was called, a child hung in a call (grace %v)", took.Round(time.Millisecond), exitGrace)
	if took > exitGrace+3*time.Second {
		t.Errorf("Close took %v with a child hung in a call, want about its grace, %v", took, exitGrace)
	}
	select {
	case err := <-hung:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("the hung call returned %v when the pool closed, want ErrClosed", err)
		}
	default:
		t.Error("the hung call had not returned when Close did")
	}
	if n := p.Restarts(); n != 0 {
		t.Errorf("restarts = %d, want 0: nothing restarts once the pool is closed", n)
	}
	if n := h.held(); n != 1 {
		t.Errorf("%d children held the item, want 1: nothing is replayed once the pool is closed", n)
	}
}

// TestBulkWorkRunsAtLowPriority: a bulk item is worked on a thread whose
// nice value is lowprio.Nice above the child's, so a busy machine runs
// everyone's small edits first; an ordinary item at the child's own; and
// the lowered thread is not handed to the next item.
func TestBulkWorkRunsAtLowPriority(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("priorities are set per thread only on Linux")
	}
	own := lowprio.ThreadNice() // the children inherit the test's
	if own+lowprio.Nice > 19 {
		t.Skipf("the test runs at nice %d: no room to go lower", own)
	}
	dir := t.TempDir()
	p := runPool(t, newTestHost(t), Config{Workers: 1, Env: []string{niceDirEnv + "=" + dir}})
	read := func(doc docid.ID) int {
		b, err := os.ReadFile(filepath.Join(dir, doc.String()))
		if err != nil {
			t.Fatal(err)
		}
		n, err := strconv.Atoi(string(b))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	c := newClient("pc")
	work := func(bulk bool) docid.ID {
		doc := docid.New()
		msg, _, err := c.ss.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Work(context.Background(), WorkArgs{Doc: doc.String(), Peers: []syncer.Peer{c.peer},
			Msgs: []syncer.In{{From: c.id, Data: msg}}, Bulk: bulk}); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	for range 3 { // one after another on the one child: none inherits the last one's thread
		if got := read(work(true)); got != own+lowprio.Nice {
			t.Errorf("a bulk item ran at nice %d; want %d", got, own+lowprio.Nice)
		}
		if got := read(work(false)); got != own {
			t.Errorf("an ordinary item ran at nice %d; want the child's own %d", got, own)
		}
	}
}

// A Go panic's first line is kept for the log even when the goroutine dump
// after it runs past what the buffer keeps.
func TestPanicLineSurvivesALongDump(t *testing.T) {
	b := &tailBuffer{max: 8 << 10}
	b.Write([]byte("some log line\npanic: runtime error: index out of range [3] with length 3\n\ngoroutine 7 [running]:\n"))
	for range 100 {
		b.Write([]byte(strings.Repeat("haven/shared/crdt.frame(...)\n", 10)))
	}
	if got, want := b.panicLine(), "panic: runtime error: index out of range [3] with length 3"; got != want {
		t.Fatalf("panicLine = %q; want %q", got, want)
	}
}

// TestBulkWorkLeavesSlotsForEdits: a device's bulk items, however many and
// however slow (here held in the child), take at most bulkCallsPerChild of
// a child's calls, so another device's edit to a document the same child
// serves is worked meanwhile rather than queued behind them.
func TestBulkWorkLeavesSlotsForEdits(t *testing.T) {
	h := newHangingDoc(t)
	p := runPool(t, newTestHost(t), Config{Workers: 1, Env: h.env()}) // the default deadline: longer than the test waits
	bad := newClient("bad")
	bad.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("x", "k") })
	msg, _, err := bad.ss.Generate()
	if err != nil {
		t.Fatal(err)
	}
	for range callsPerChild {
		go p.Work(context.Background(), WorkArgs{Doc: h.doc.String(), Msgs: []syncer.In{{From: bad.id, Data: msg}}, Peers: []syncer.Peer{bad.peer}, Bulk: true})
	}
	h.waitHeld(t, 1)
	pr := p.procs[0]
	rig.WaitFor(t, 20*time.Second, "the bulk items to take what they may", func() bool { return len(pr.bulk) == cap(pr.bulk) })
	if n := len(pr.slots); n > bulkCallsPerChild {
		t.Errorf("bulk items hold %d of the child's %d calls, want at most %d", n, callsPerChild, bulkCallsPerChild)
	}
	good := newClient("good")
	good.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("y", "k") })
	done := make(chan error, 1)
	go func() { done <- good.exchange(p, docid.New()) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the edit beside the bulk items: %v", err)
		}
	case <-time.After(30 * time.Second): // the held items hold for a minute
		t.Fatalf("an edit waited 30 s behind %d held bulk items", callsPerChild)
	}
}
