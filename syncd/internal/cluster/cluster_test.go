package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/rig"
	"haven/shared/store"
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
	dir := t.TempDir()
	st := openStore(t, filepath.Join(dir, "store"))
	defer st.Close()
	n := openAlone(t, filepath.Join(dir, "cluster"))
	defer n.Close()
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

// Three nodes form one cluster: a change one publishes reaches the other
// two and not itself, and with one node gone the other two still take
// changes (two of three is a quorum) and hold every acknowledged one.
func TestClusterOfThree(t *testing.T) {
	addrs := []string{rig.RouteAddr(t), rig.RouteAddr(t), rig.RouteAddr(t)}
	nodes := make([]*Node, 3)
	recs := make([]*recorder, 3)
	stores := make([]*store.Store, 3)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range nodes {
		stores[i] = openStore(t, t.TempDir())
		defer stores[i].Close()
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			nodes[i], errs[i] = Open(ctx, Config{Dir: t.TempDir(), Key: testKey, Name: "test", Node: fmt.Sprintf("n%d", i),
				Listen: addrs[i], Peers: addrs})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: Open = %v", i, err)
		}
		defer nodes[i].Close()
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

// A revocation is handed to the watcher as it is made, and again to a
// node that starts after it: a node that was down when a device was
// revoked still cuts it off.
func TestRevocationsReachWatchers(t *testing.T) {
	dir := t.TempDir()
	watch := func(n *Node) chan string {
		got := make(chan string, 10)
		n.WatchRevocations(func(_ context.Context, dev string) { got <- dev })
		return got
	}
	next := func(got chan string) string {
		select {
		case dev := <-got:
			return dev
		case <-time.After(20 * time.Second):
			t.Fatal("timed out waiting for a revocation")
			return ""
		}
	}
	n := openAlone(t, dir)
	got := watch(n)
	if err := n.Revoke(context.Background(), "dev-abc123"); err != nil {
		t.Fatalf("Revoke = %v", err)
	}
	if dev := next(got); dev != "dev-abc123" {
		t.Fatalf("watcher heard %q, want dev-abc123", dev)
	}
	if err := n.Revoke(context.Background(), "dev.*"); err == nil {
		t.Fatal("Revoke(a key with wildcards) = nil")
	}
	n.Close()

	n = openAlone(t, dir)
	defer n.Close()
	if dev := next(watch(n)); dev != "dev-abc123" {
		t.Fatalf("after a restart the watcher heard %q, want dev-abc123", dev)
	}
}
