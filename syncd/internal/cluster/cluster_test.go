package cluster

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/rig"
	"haven/shared/store"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var testKey = bytes.Repeat([]byte{7}, 32)

// openStore is a relay's store, where the follower keeps its mark.
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// recorder collects the changes Follow hands over, one channel send each.
type recorder struct {
	got  chan Change
	fail func(Change) error // nil: every change applies
}

func newRecorder() *recorder { return &recorder{got: make(chan Change, 100)} }

func (r *recorder) apply(_ context.Context, c Change) error {
	if r.fail != nil {
		if err := r.fail(c); err != nil {
			return err
		}
	}
	r.got <- c
	return nil
}

// next waits for the next change applied.
func (r *recorder) next(t *testing.T, what string) Change {
	t.Helper()
	select {
	case c := <-r.got:
		return c
	case <-time.After(20 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		return Change{}
	}
}

func openAlone(t *testing.T, dir string) *Node {
	t.Helper()
	n, err := Open(context.Background(), Config{Dir: dir, Key: testKey})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	return n
}

// openFollower is a node alone and the store it follows into, both
// closed when the test ends (the node first).
func openFollower(t *testing.T) (*store.Store, *Node) {
	t.Helper()
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "store"))
	t.Cleanup(func() { st.Close() })
	n := openAlone(t, filepath.Join(dir, "cluster"))
	t.Cleanup(func() { n.Close() })
	return st, n
}

func keepOK() error { return nil }

var errDisk = errors.New("disk full")

// A node alone hands back no change it kept itself, and hands back one
// whose own copy failed: the stream holds it, so this node must store it
// too. After a restart on the same store, the follower goes on after what
// it applied, and applies nothing twice.
func TestFollowAppliesWhatThisNodeDidNotKeep(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "store"))
	defer st.Close()
	ctx := context.Background()

	n := openAlone(t, filepath.Join(dir, "cluster"))
	rec := newRecorder()
	n.Follow(st, rec.apply)
	if err := n.Publish(ctx, "docA", "home-1", []byte("kept here"), keepOK); err != nil {
		t.Fatalf("Publish(kept) = %v", err)
	}
	if err := n.Publish(ctx, "docA", "home-1", []byte("not kept"), func() error { return errDisk }); !errors.Is(err, errDisk) {
		t.Fatalf("Publish(keep fails) = %v, want %v", err, errDisk)
	}
	c := rec.next(t, "the change this node did not keep")
	if c.Doc != "docA" || c.Owner != "home-1" || string(c.Chunk) != "not kept" || c.Seq != 2 {
		t.Fatalf("applied %+v (chunk %q), want docA/home-1 seq 2 %q", c, c.Chunk, "not kept")
	}
	n.Close()

	n = openAlone(t, filepath.Join(dir, "cluster"))
	defer n.Close()
	rec = newRecorder()
	n.Follow(st, rec.apply)
	if err := n.Publish(ctx, "docB", "home-1", []byte("third"), func() error { return errDisk }); err == nil {
		t.Fatal("Publish(keep fails) = nil")
	}
	if c := rec.next(t, "the third change"); c.Seq != 3 || string(c.Chunk) != "third" {
		t.Fatalf("after a restart the follower applied seq %d %q first, want seq 3 %q", c.Seq, c.Chunk, "third")
	}
}

// A change apply fails is retried, not skipped, and the follower does not
// pass it: the next change comes after it.
func TestFollowRetriesAFailedApply(t *testing.T) {
	st, n := openFollower(t)
	rec := newRecorder()
	var mu sync.Mutex
	failures := 2
	rec.fail = func(c Change) error {
		mu.Lock()
		defer mu.Unlock()
		if c.Seq == 1 && failures > 0 {
			failures--
			return errors.New("worker busy")
		}
		return nil
	}
	n.Follow(st, rec.apply)
	for i := range 2 {
		if err := n.Publish(context.Background(), "docA", "home-1", fmt.Appendf(nil, "change %d", i), func() error { return errDisk }); err == nil {
			t.Fatal("Publish(keep fails) = nil")
		}
	}
	first, second := rec.next(t, "the first change"), rec.next(t, "the second change")
	if first.Seq != 1 || second.Seq != 2 {
		t.Fatalf("applied seq %d then %d, want 1 then 2", first.Seq, second.Seq)
	}
	mu.Lock()
	defer mu.Unlock()
	if failures != 0 {
		t.Fatalf("%d failures left: the follower skipped the failing change", failures)
	}
}

// Progress says how far the node has applied the document stream: past
// its own kept publications at once, and past another's only once apply
// has returned; the stream's last sequence is the cluster's.
func TestProgressSaysHowFarTheNodeApplied(t *testing.T) {
	st, n := openFollower(t)
	rec := newRecorder()
	started, gate := make(chan struct{}), make(chan struct{})
	rec.fail = func(c Change) error {
		close(started)
		<-gate
		return nil
	}
	n.Follow(st, rec.apply)
	docs := func() StreamProgress {
		for _, p := range n.Progress(context.Background()) {
			if p.Stream == DocStream {
				return p
			}
		}
		t.Fatalf("Progress has no %s", DocStream)
		return StreamProgress{}
	}
	ctx := context.Background()
	if err := n.Publish(ctx, "docA", "home-1", []byte("kept here"), keepOK); err != nil {
		t.Fatal(err)
	}
	rig.WaitFor(t, 20*time.Second, "the node to pass its own kept publication", func() bool { return docs().Applied == 1 })
	if err := n.Publish(ctx, "docA", "home-1", []byte("not kept"), func() error { return errDisk }); err == nil {
		t.Fatal("Publish(keep fails) = nil")
	}
	<-started
	if p := docs(); p.Applied != 1 || !p.Known || p.Last != 2 {
		t.Fatalf("while the second change is being applied, Progress = %+v; want applied 1, last 2", p)
	}
	// One waits from now on; the other gives up meanwhile.
	caught := make(chan bool, 1)
	go func() { caught <- n.CaughtUp(ctx) }()
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if n.CaughtUp(short) {
		t.Fatal("CaughtUp = true while a change the cluster holds is still being applied")
	}
	close(gate)
	rec.next(t, "the second change")
	if ok, _ := rig.Recv(caught, 20*time.Second); !ok {
		t.Fatal("CaughtUp did not report the node caught up once it applied the change")
	}
	if p := docs(); p.Applied != 2 {
		t.Fatalf("once caught up, Progress = %+v; want applied 2", p)
	}
}

// JetStream's files hold no change in the clear.
func TestNoPlaintextOnDisk(t *testing.T) {
	dir := t.TempDir()
	n := openAlone(t, dir)
	canary := "canary-note-Edith-Marlow-" + strings.Repeat("x", 64)
	if err := n.Publish(context.Background(), "docA", "home-canary-owner", []byte(canary), keepOK); err != nil {
		t.Fatal(err)
	}
	n.Close()
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, s := range []string{canary, "home-canary-owner"} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds %q in the clear", path, s)
			}
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("walked %d files: %v", files, err)
	}
}

// Three nodes form one cluster, over mutual TLS routes: a change one
// publishes reaches the other two and not itself, and with one node gone
// the other two still take changes (two of three is a quorum) and hold
// every acknowledged one.
// openCluster opens one node per config at once (a node serves only once
// a quorum has elected JetStream's leader), each on a store of its own, and
// closes them as the test ends.
func openCluster(t *testing.T, cfgs []Config) ([]*Node, []*store.Store) {
	t.Helper()
	nodes := make([]*Node, len(cfgs))
	stores := make([]*store.Store, len(cfgs))
	errs := make([]error, len(cfgs))
	var wg sync.WaitGroup
	for i := range nodes {
		stores[i] = openStore(t, t.TempDir())
		t.Cleanup(func() { stores[i].Close() })
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			nodes[i], errs[i] = Open(ctx, cfgs[i])
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: Open = %v", i, err)
		}
		t.Cleanup(func() { nodes[i].Close() })
	}
	return nodes, stores
}

// clusterConfigs are n nodes' configurations, on loopback routes of their
// own and fresh folders; routeTLS, if not nil, gives node i its routes'
// TLS.
func clusterConfigs(t *testing.T, n int, routeTLS func(i int) *tls.Config) []Config {
	addrs := make([]string, n)
	for i := range addrs {
		addrs[i] = rig.RouteAddr(t)
	}
	cfgs := make([]Config, n)
	for i := range cfgs {
		cfgs[i] = Config{Dir: t.TempDir(), Key: testKey, Name: "test", Node: fmt.Sprintf("n%d", i), RouteSecret: testKey,
			Listen: addrs[i], Peers: addrs}
		if routeTLS != nil {
			cfgs[i].RouteTLS = routeTLS(i)
		}
	}
	return cfgs
}

func TestClusterOfThree(t *testing.T) {
	// The routes are mutual TLS, each node with a certificate of its own
	// from the cluster's authority, as syncd's -cluster-tls-* flags set
	// them up (the syncd package's cluster tests run without).
	ca := newTestAuthority(t)
	nodes, stores := openCluster(t, clusterConfigs(t, 3, func(int) *tls.Config { return ca.routeTLS(t) }))
	recs := make([]*recorder, 3)
	for i := range nodes {
		if nodes[i].Replicas() != ClusterReplicas {
			t.Fatalf("node %d replicas = %d", i, nodes[i].Replicas())
		}
		recs[i] = newRecorder()
		nodes[i].Follow(stores[i], recs[i].apply)
	}
	ctx := context.Background()
	if err := nodes[0].Publish(ctx, "docA", "home-1", []byte("from n0"), keepOK); err != nil {
		t.Fatalf("Publish on n0 = %v", err)
	}
	for i := 1; i < 3; i++ {
		if c := recs[i].next(t, fmt.Sprintf("n%d to apply n0's change", i)); string(c.Chunk) != "from n0" || c.Doc != "docA" {
			t.Fatalf("n%d applied %q to %s", i, c.Chunk, c.Doc)
		}
	}

	// A registry key written on one node is read on another at once, and
	// of two nodes creating one key at the same moment, one wins.
	if _, ok, err := nodes[0].RegistryPut(ctx, "codes", "c0de", []byte("dev-1"), 0); err != nil || !ok {
		t.Fatalf("RegistryPut on n0 = %v, %v", ok, err)
	}
	if v, _, err := nodes[2].RegistryGet(ctx, "codes", "c0de"); err != nil || string(v) != "dev-1" {
		t.Fatalf("RegistryGet on n2 right after n0's put = %q, %v; want dev-1", v, err)
	}
	wins := make([]bool, 3)
	var race sync.WaitGroup
	for i := range nodes {
		race.Go(func() {
			_, ok, err := nodes[i].RegistryPut(ctx, "devices", "dev-2", fmt.Appendf(nil, "n%d", i), 0)
			if err != nil {
				t.Errorf("RegistryPut on n%d = %v", i, err)
			}
			wins[i] = ok
		})
	}
	race.Wait()
	if n := countTrue(wins); n != 1 {
		t.Fatalf("%d of 3 nodes created the same key at once (%v), want 1", n, wins)
	}

	nodes[2].Close()
	if err := nodes[1].Publish(ctx, "docA", "home-1", []byte("from n1"), keepOK); err != nil {
		t.Fatalf("Publish on n1 with n2 gone = %v", err)
	}
	if c := recs[0].next(t, "n0 to apply n1's change"); string(c.Chunk) != "from n1" {
		t.Fatalf("n0 applied %q next, want n1's change", c.Chunk)
	}
	// n1 must not have applied its own change: the next it applies is
	// the one n0 publishes now.
	if err := nodes[0].Publish(ctx, "docA", "home-1", []byte("n0 again"), keepOK); err != nil {
		t.Fatalf("Publish on n0 with n2 gone = %v", err)
	}
	if c := recs[1].next(t, "n1 to apply n0's second change"); string(c.Chunk) != "n0 again" {
		t.Fatalf("n1 applied %q next, want n0's second change", c.Chunk)
	}
}

// A node restarted in a running cluster asks JetStream to make or change
// no stream and no bucket: they are there as it expects. Asking again is
// not harmless: the cluster proposes the stream afresh and that answer can
// be lost, so the node waited out a whole timeout and a consumer another
// node asked for meanwhile went unanswered for 10 s (a device on that node
// then heard nothing of other nodes' changes for as long).
func TestRestartedNodeMakesNoStreams(t *testing.T) {
	cfgs := clusterConfigs(t, 3, nil)
	nodes, _ := openCluster(t, cfgs)
	// Every request to JetStream's API about streams (buckets are streams
	// too), as node 0 sees them pass.
	seen := make(chan string, 100)
	spy, err := nodes[0].js.Conn().Subscribe("$JS.API.STREAM.>", func(m *nats.Msg) { seen <- m.Subject })
	if err != nil {
		t.Fatal(err)
	}
	defer spy.Unsubscribe()
	if err := nodes[0].js.Conn().Flush(); err != nil {
		t.Fatal(err)
	}

	nodes[1].Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	again, err := Open(ctx, cfgs[1])
	if err != nil {
		t.Fatalf("reopening node 1: %v", err)
	}
	defer again.Close()
	// A request after the restart marks the end of what it asked: one
	// connection's requests reach node 0 in order.
	const marker = "$JS.API.STREAM.NAMES"
	if err := again.js.Conn().Publish(marker, nil); err != nil {
		t.Fatal(err)
	}
	var asked []string
	for done := false; !done; {
		select {
		case subject := <-seen:
			done = subject == marker
			if strings.HasPrefix(subject, "$JS.API.STREAM.CREATE.") || strings.HasPrefix(subject, "$JS.API.STREAM.UPDATE.") {
				asked = append(asked, subject)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("node 0 never saw the restarted node's requests")
		}
	}
	if len(asked) > 0 {
		t.Fatalf("the restarted node asked %v; its streams and bucket were there as it expects", asked)
	}
}

// A node that finds its streams or bucket set otherwise than this version
// sets them (made by an earlier version, or by a relay run alone before it
// joined a cluster) brings them back to its own settings as it starts.
func TestStartBringsStreamSettingsBack(t *testing.T) {
	dir := t.TempDir()
	n := openAlone(t, dir)
	ctx := context.Background()
	docs := n.streamConfig(DocStream, docSubject, maxPayload)
	docs.Duplicates = time.Minute
	if _, err := n.js.UpdateStream(ctx, docs); err != nil {
		t.Fatal(err)
	}
	if _, err := n.js.UpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: RegistryBucket, History: 1, Storage: jetstream.FileStorage,
		Replicas: 1, MaxValueSize: maxRegistryValue / 2}); err != nil {
		t.Fatal(err)
	}
	n.Close()

	n = openAlone(t, dir)
	defer n.Close()
	s, err := n.js.Stream(ctx, DocStream)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.CachedInfo().Config.Duplicates; got != 2*time.Minute {
		t.Errorf("after a start, the document stream keeps a retry's duplicates for %v; want 2m0s", got)
	}
	st, err := n.registry.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Config().MaxValueSize; got != maxRegistryValue {
		t.Errorf("after a start, the registry takes values of %d bytes; want %d", got, maxRegistryValue)
	}
}

// BenchmarkPublishAlone is what a relay alone adds to each change it
// acknowledges: one publication of a 1 KiB chunk (a note) to its own
// JetStream, with this node's follower running.
func BenchmarkPublishAlone(b *testing.B) {
	dir := b.TempDir()
	st, err := store.Open(filepath.Join(dir, "store"), store.Options{Key: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	n, err := Open(context.Background(), Config{Dir: filepath.Join(dir, "cluster"), Key: testKey})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Close()
	n.Follow(st, func(context.Context, Change) error { return nil })
	chunk := bytes.Repeat([]byte{1}, 1024)
	for i := 0; b.Loop(); i++ {
		if err := n.Publish(context.Background(), "doc"+strconv.Itoa(i%50), "home-1", chunk, keepOK); err != nil {
			b.Fatal(err)
		}
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// A registry write names the revision it expects: a write from a stale
// read is refused, whatever the key holds, and a deleted key is created
// again only from the delete's revision.
func TestRegistryCompareAndSet(t *testing.T) {
	n := openAlone(t, t.TempDir())
	defer n.Close()
	ctx := context.Background()
	rev1, ok, err := n.RegistryPut(ctx, "devices", "dev-1", []byte("pending"), 0)
	if err != nil || !ok {
		t.Fatalf("RegistryPut(new) = %v, %v", ok, err)
	}
	if _, ok, err := n.RegistryPut(ctx, "devices", "dev-1", []byte("again"), 0); err != nil || ok {
		t.Fatalf("RegistryPut(new) of a key that exists = %v, %v; want false, nil", ok, err)
	}
	rev2, ok, err := n.RegistryPut(ctx, "devices", "dev-1", []byte("enrolled"), rev1)
	if err != nil || !ok || rev2 <= rev1 {
		t.Fatalf("RegistryPut(rev %d) = %d, %v, %v", rev1, rev2, ok, err)
	}
	if _, ok, err := n.RegistryPut(ctx, "devices", "dev-1", []byte("stale"), rev1); err != nil || ok {
		t.Fatalf("RegistryPut(stale rev %d) = %v, %v; want false, nil", rev1, ok, err)
	}
	if v, rev, err := n.RegistryGet(ctx, "devices", "dev-1"); err != nil || string(v) != "enrolled" || rev != rev2 {
		t.Fatalf("RegistryGet = %q, %d, %v; want enrolled, %d", v, rev, err, rev2)
	}
	if _, ok, err := n.RegistryDelete(ctx, "devices", "dev-1", rev1); err != nil || ok {
		t.Fatalf("RegistryDelete(stale rev) = %v, %v; want false, nil", ok, err)
	}
	rev3, ok, err := n.RegistryDelete(ctx, "devices", "dev-1", rev2)
	if err != nil || !ok {
		t.Fatalf("RegistryDelete(rev %d) = %v, %v", rev2, ok, err)
	}
	if _, rev, err := n.RegistryGet(ctx, "devices", "dev-1"); !errors.Is(err, store.ErrNotFound) || rev != rev3 {
		t.Fatalf("RegistryGet(deleted) = rev %d, %v; want rev %d, %v", rev, err, rev3, store.ErrNotFound)
	}
	if _, ok, _ := n.RegistryPut(ctx, "devices", "dev-1", []byte("back"), 0); ok {
		t.Fatal("RegistryPut(rev 0) of a deleted key = true: a spent code could be made again from a stale read")
	}
	if _, ok, err := n.RegistryPut(ctx, "devices", "dev-1", []byte("back"), rev3); err != nil || !ok {
		t.Fatalf("RegistryPut(the delete's rev) = %v, %v", ok, err)
	}
	if _, _, err := n.RegistryGet(ctx, "never", "written"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("RegistryGet(never written) = %v, want %v", err, store.ErrNotFound)
	}
	if _, _, err := n.RegistryPut(ctx, "Bad.NS", "k", nil, 0); err == nil {
		t.Fatal("RegistryPut(a namespace with a dot) = nil")
	}
}

// The watcher hands over each key's latest value, deletes included, then
// says it has caught up, then each write as it is made; after a restart it
// hands over the same again. Keys hold any byte.
func TestWatchRegistryReplaysThenFollows(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	odd := "home-1/Dr Ada Quill/é.*>/gp" // a store key no bucket key may hold as it is
	n := openAlone(t, dir)
	if _, ok, err := n.RegistryPut(ctx, "preapproved", odd, []byte{}, 0); err != nil || !ok {
		t.Fatalf("RegistryPut(%q) = %v, %v", odd, ok, err)
	}
	rev, _, _ := n.RegistryPut(ctx, "codes", "abc", []byte("dev-1"), 0)
	if _, ok, err := n.RegistryDelete(ctx, "codes", "abc", rev); err != nil || !ok {
		t.Fatalf("RegistryDelete = %v, %v", ok, err)
	}
	n.Close()

	n = openAlone(t, dir)
	defer n.Close()
	// One channel, so the order in which the watcher calls is the order
	// read; caught up is the zero entry.
	got := make(chan RegistryEntry, 10)
	n.WatchRegistry(func(_ context.Context, e RegistryEntry) error { got <- e; return nil },
		func(context.Context) { got <- RegistryEntry{} })
	next := func(what string) RegistryEntry {
		t.Helper()
		select {
		case e := <-got:
			return e
		case <-time.After(20 * time.Second):
			t.Fatalf("timed out waiting for %s", what)
		}
		return RegistryEntry{}
	}
	seen := map[string]RegistryEntry{}
	for range 2 {
		e := next("the keys written before the restart")
		if e.NS == "" {
			t.Fatalf("caught up after %d of the 2 keys written before the restart", len(seen))
		}
		seen[e.NS+"/"+e.Key] = e
	}
	if e, ok := seen["preapproved/"+odd]; !ok || e.Deleted || len(e.Val) != 0 {
		t.Fatalf("replayed %v, want preapproved %q held", seen, odd)
	}
	if e, ok := seen["codes/abc"]; !ok || !e.Deleted || e.Val != nil {
		t.Fatalf("replayed %v, want codes/abc deleted", seen)
	}
	if e := next("the watcher to say it has caught up"); e.NS != "" {
		t.Fatalf("heard %+v, want caught up", e)
	}
	if _, ok, err := n.RegistryPut(ctx, "revoked", "crt-1", []byte("sig"), 0); err != nil || !ok {
		t.Fatalf("RegistryPut = %v, %v", ok, err)
	}
	if e := next("a write made after catching up"); e.NS != "revoked" || e.Key != "crt-1" || string(e.Val) != "sig" {
		t.Fatalf("then heard %+v, want revoked/crt-1", e)
	}
}

// Audit events are numbered by the stream, from the first number the node
// that makes it asks for; the follower hands over every event, this
// node's own too, in order, and a publication retried under its id is
// stored once.
func TestAuditStreamNumbersEveryEvent(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "store"))
	defer st.Close()
	asked := 0
	n, err := Open(context.Background(), Config{Dir: filepath.Join(dir, "cluster"), Key: testKey,
		AuditFirstSeq: func() (uint64, error) { asked++; return 42, nil }})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	ctx := context.Background()
	// The second organisation cannot be a subject token: filed all the same.
	seqs, err := n.PublishAudit(ctx, []string{"home-1", "home.*"}, []string{"a-1", "a-2"}, [][]byte{[]byte(`{"n":0}`), []byte(`{"n":1}`)})
	if err != nil || !slices.Equal(seqs, []uint64{42, 43}) {
		t.Fatalf("PublishAudit = %v, %v; want 42, 43", seqs, err)
	}
	if seqs, err := n.PublishAudit(ctx, []string{"home-1"}, []string{"a-2"}, [][]byte{[]byte(`{"n":1}`)}); err != nil || !slices.Equal(seqs, []uint64{43}) {
		t.Fatalf("PublishAudit(a-2 again) = %v, %v; want 43: the retried publication stored once", seqs, err)
	}
	got := make(chan AuditEntry, 10)
	n.FollowAudit(st, func(_ context.Context, es []AuditEntry) error {
		for _, e := range es {
			got <- e
		}
		return nil
	})
	for _, want := range []AuditEntry{{Seq: 42, ID: "a-1", Event: []byte(`{"n":0}`)}, {Seq: 43, ID: "a-2", Event: []byte(`{"n":1}`)}} {
		select {
		case e := <-got:
			if e.Seq != want.Seq || e.ID != want.ID || !bytes.Equal(e.Event, want.Event) {
				t.Fatalf("followed %d %s %s, want %d %s %s", e.Seq, e.ID, e.Event, want.Seq, want.ID, want.Event)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("timed out waiting for audit event %d", want.Seq)
		}
	}
	if asked != 1 {
		t.Fatalf("AuditFirstSeq asked %d times, want 1", asked)
	}
}

// A device's burst of audit events and the edits sent after it reach
// JetStream on separate connections. A connection's messages are handled
// in order, so on one shared connection every edit would wait for the
// whole burst to be stored first.
func TestAuditBurstTravelsApartFromEdits(t *testing.T) {
	n := openAlone(t, t.TempDir())
	defer n.Close()
	ctx := context.Background()
	const events, eventSize, changeSize = 200, 1 << 10, 64 << 10
	orgs, ids, evs := make([]string, events), make([]string, events), make([][]byte, events)
	for i := range evs {
		orgs[i], ids[i], evs[i] = "home-1", "burst-"+strconv.Itoa(i), bytes.Repeat([]byte{'a'}, eventSize)
	}
	if _, err := n.PublishAudit(ctx, orgs, ids, evs); err != nil {
		t.Fatal(err)
	}
	if err := n.Publish(ctx, "docA", "home-1", bytes.Repeat([]byte{'c'}, changeSize), keepOK); err != nil {
		t.Fatal(err)
	}
	cz, err := n.ns.Connz(nil)
	if err != nil {
		t.Fatal(err)
	}
	audit, edits := false, false
	for _, c := range cz.Conns {
		// The burst is larger than the edit, and each is larger than the
		// streams' other traffic.
		switch in := c.InBytes; {
		case in >= events*eventSize+changeSize:
			t.Fatalf("connection %q carried %d bytes: the audit burst and the edit shared it", c.Name, in)
		case in >= events*eventSize:
			audit = true
		case in >= changeSize:
			edits = true
		}
	}
	if !audit || !edits {
		t.Fatalf("connections %+v: want one that carried the audit burst and one that carried the edit", cz.Conns)
	}
}
