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

// Chunks another node stored are loaded as they are: a document this node
// never held is created, a later change is applied and sent to a peer that
// follows the document, every chunk is stored marked as another node's
// (so the relay does not publish it again), and bytes that do not load
// store nothing and are reported, not returned as an error to retry.
func TestChunksFromAnotherNode(t *testing.T) {
	host := &clusterHost{testHost: newTestHost(t)}
	p := runPool(t, host, Config{Workers: 1})
	ctx := context.Background()
	src := crdt.New()
	src.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("12", "room") })
	id := docid.New()
	reply, err := p.Work(ctx, WorkArgs{Doc: id.String(), Chunks: [][]byte{src.Save()}})
	if err != nil || reply.Failed != nil {
		t.Fatalf("Work(new document's chunk) = %+v, %v", reply.Failed, err)
	}
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
	reply, err = p.Work(ctx, WorkArgs{Doc: id.String(), Chunks: [][]byte{next}, Notify: []string{"b"}, Peers: []syncer.Peer{b.peer}})
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
