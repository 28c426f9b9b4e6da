package worker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/repo"
	"haven/shared/syncer"
)

// clusterHost records, for each chunk stored, whether it came marked as
// another node's.
type clusterHost struct {
	*testHost
	mu     sync.Mutex
	marked []bool
}

func (h *clusterHost) AppendChunk(ctx context.Context, doc string, chunk []byte) (uint64, error) {
	h.mu.Lock()
	h.marked = append(h.marked, IsFromCluster(ctx))
	h.mu.Unlock()
	return h.testHost.AppendChunk(ctx, doc, chunk)
}

// storedHeads are the heads of the document as the host's store holds it.
func storedHeads(t *testing.T, h *clusterHost, id docid.ID) []crdt.Hash {
	t.Helper()
	r := repo.New(h.Store, repo.Options{})
	defer r.Close()
	d, err := r.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	return d.Doc().Heads()
}

// fromAnotherNode starts a worker whose host records which chunks came
// marked as another node's, and has it create a document (src's copy) from
// another node's chunk.
func fromAnotherNode(t *testing.T) (*clusterHost, *Pool, docid.ID, *crdt.Doc) {
	t.Helper()
	host := &clusterHost{testHost: newTestHost(t)}
	p := runPool(t, host, Config{Workers: 1})
	src := crdt.New()
	src.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("12", "room") })
	id := docid.New()
	if reply, err := p.Work(context.Background(), WorkArgs{Doc: id.String(), Chunks: [][]byte{src.Save()}}); err != nil || reply.Failed != nil {
		t.Fatalf("Work(new document's chunk) = %+v, %v", reply.Failed, err)
	}
	return host, p, id, src
}

// Chunks another node stored are loaded as they are: a document this node
// never held is created, a later change is applied and sent to a peer that
// follows the document, every chunk is stored marked as another node's
// (so the relay does not publish it again), and bytes that do not load
// store nothing and are reported, not returned as an error to retry.
func TestChunksFromAnotherNode(t *testing.T) {
	host, p, id, src := fromAnotherNode(t)
	ctx := context.Background()
	if got := storedHeads(t, host, id); !crdt.SameHeads(got, src.Heads()) {
		t.Fatalf("stored heads %v, want the source's %v", got, src.Heads())
	}

	b := newClient("b")
	b.syncWith(t, p, id)
	before := src.Heads()
	src.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("14", "room") })
	next, err := src.SaveSince(before)
	if err != nil {
		t.Fatal(err)
	}
	reply, err := p.Work(ctx, WorkArgs{Doc: id.String(), Chunks: [][]byte{next}, Notify: []string{"b"}, Peers: []syncer.Peer{b.peer}})
	if err != nil || reply.Failed != nil {
		t.Fatalf("Work(a later chunk) = %+v, %v", reply.Failed, err)
	}
	if len(reply.Out) == 0 {
		t.Fatal("the peer following the document was sent nothing of the change")
	}
	for _, o := range reply.Out {
		if err := b.ss.Receive(o.Data); err != nil {
			t.Fatal(err)
		}
	}
	b.syncWith(t, p, id)
	if v, _, _ := b.doc.Get("room"); v != "14" {
		t.Fatalf("the peer reads room %v, want 14", v)
	}
	host.mu.Lock()
	marked := append([]bool(nil), host.marked...)
	host.mu.Unlock()
	if len(marked) != 2 || !marked[0] || !marked[1] {
		t.Fatalf("chunks stored marked as another node's: %v, want [true true]", marked)
	}

	reply, err = p.Work(ctx, WorkArgs{Doc: id.String(), Chunks: [][]byte{[]byte("not automerge at all")}})
	if !errors.Is(err, ErrQuarantined) && (err != nil || reply.Failed == nil) {
		t.Fatalf("Work(bytes that do not load) = %+v, %v; want a failure reported", reply.Failed, err)
	}
	if got := storedHeads(t, host, id); !crdt.SameHeads(got, src.Heads()) {
		t.Fatalf("after bytes that do not load, stored heads %v, want %v", got, src.Heads())
	}
}

// A peer's change that Automerge held back for want of a change this node
// lacks is not released by that change arriving from another node: the
// other node's chunk is stored alone, marked as its; the peer's change
// goes on to be vetted, and stored as this node's (published), when the
// peer's exchange sends it again.
func TestChangesFromAnotherNodeReleaseNothingHeldBack(t *testing.T) {
	host, p, id, src := fromAnotherNode(t)
	ctx := context.Background()
	b := newClient("b")
	b.syncWith(t, p, id)
	shared := b.doc.Heads()
	// y: a change another node acknowledged, not here yet.
	b.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("20", "room") })
	y := b.doc.Heads()
	yChunk, err := b.doc.SaveSince(shared)
	if err != nil {
		t.Fatal(err)
	}
	// x: the peer's next change, sent here alone, as a peer that believes
	// this node holds y sends it (client's EagerChanges).
	b.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("21", "room") })
	x := b.doc.Heads()
	first, _, err := crdt.NewSyncState(b.doc).Generate()
	if err != nil {
		t.Fatal(err)
	}
	msg, added, err := crdt.WithChangesSince(first, b.doc, y, 64<<10)
	if err != nil || !added {
		t.Fatalf("WithChangesSince = %v, %v", added, err)
	}
	if reply, err := p.Work(ctx, WorkArgs{Doc: id.String(), Msgs: []syncer.In{{From: "b", Data: msg}}, Peers: []syncer.Peer{b.peer}}); err != nil || reply.Failed != nil {
		t.Fatalf("Work(the peer's change without its dependency) = %+v, %v", reply.Failed, err)
	}
	if got := storedHeads(t, host, id); !crdt.SameHeads(got, src.Heads()) {
		t.Fatalf("stored heads %v before y arrived, want %v", got, src.Heads())
	}
	host.mu.Lock()
	n := len(host.marked)
	host.mu.Unlock()

	if reply, err := p.Work(ctx, WorkArgs{Doc: id.String(), Chunks: [][]byte{yChunk}}); err != nil || reply.Failed != nil {
		t.Fatalf("Work(y from another node) = %+v, %v", reply.Failed, err)
	}
	if got := storedHeads(t, host, id); !crdt.SameHeads(got, y) {
		t.Fatalf("after y from another node, stored heads %v, want y %v alone (x is %v)", got, y, x)
	}

	b.syncWith(t, p, id)
	if got := storedHeads(t, host, id); !crdt.SameHeads(got, x) {
		t.Fatalf("after the peer's exchange, stored heads %v, want x %v", got, x)
	}
	host.mu.Lock()
	marked := append([]bool(nil), host.marked[n:]...)
	host.mu.Unlock()
	if len(marked) != 2 || !marked[0] || marked[1] {
		t.Fatalf("chunks stored since (marked as another node's): %v, want [true false]: y as the other node's, x as this node's", marked)
	}
}
