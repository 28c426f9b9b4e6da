package relay

import (
	"context"
	"errors"
	"sync"
	"testing"

	"haven/shared/store"
	"haven/syncd/internal/worker"
)

// fakeCluster holds what it is given, or refuses it while down.
type fakeCluster struct {
	mu        sync.Mutex
	down      bool
	published []string // "doc/owner/chunk" of each publication held
}

var errNoQuorum = errors.New("no quorum")

func (c *fakeCluster) Publish(_ context.Context, doc, owner string, chunk []byte, keep func() error) error {
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		return errNoQuorum
	}
	c.published = append(c.published, doc+"/"+owner+"/"+string(chunk))
	c.mu.Unlock()
	return keep()
}

// A change a worker stores goes to the cluster first and is kept here only
// once the cluster holds it; while the cluster cannot hold it, the worker
// is told the change was not stored (so the device is never told it was)
// and nothing of it is kept here. A change from another node is kept here
// without going back to the cluster.
func TestChangesAreKeptOnlyOnceTheClusterHoldsThem(t *testing.T) {
	cl := &fakeCluster{down: true}
	r := newTestRelay(t, Config{Cluster: cl}, echoWorker{})
	h := r.s.Host()
	ctx := context.Background()

	if _, err := h.AppendChunk(ctx, r.doc, []byte("first")); !errors.Is(err, errNoQuorum) {
		t.Fatalf("AppendChunk with the cluster down = %v, want %v", err, errNoQuorum)
	}
	if _, err := r.s.st.LoadDoc(r.doc); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after a change the cluster did not hold, the store has the document (%v)", err)
	}

	cl.mu.Lock()
	cl.down = false
	cl.mu.Unlock()
	if _, err := h.AppendChunk(ctx, r.doc, []byte("second")); err != nil {
		t.Fatalf("AppendChunk = %v", err)
	}
	if _, err := h.AppendChunk(worker.FromCluster(ctx), r.doc, []byte("from another node")); err != nil {
		t.Fatalf("AppendChunk(from another node) = %v", err)
	}
	d, err := r.s.st.LoadDoc(r.doc)
	if err != nil || len(d.Chunks) != 2 || string(d.Chunks[0].Data) != "second" || string(d.Chunks[1].Data) != "from another node" {
		t.Fatalf("store holds %+v, %v; want the two changes held by the cluster", d.Chunks, err)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if want := r.doc + "/" + r.home + "/second"; len(cl.published) != 1 || cl.published[0] != want {
		t.Fatalf("cluster holds %q, want only %q", cl.published, want)
	}
}
