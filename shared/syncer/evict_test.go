package syncer

import (
	"bytes"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/repo"
	"haven/shared/repo/repotest"
	"haven/shared/store"
)

// A relay whose repo may hold only the document it works on syncs many
// documents: the sync states of those it lets go are handed over for saving
// and dropped, so nothing keeps the evicted documents in memory, and a
// document evicted and then changed again still converges.
func TestEvictedDocumentsLeaveNoState(t *testing.T) {
	desk := newNode(t, "desk", t.TempDir(), Options{})
	st, err := store.Open(t.TempDir(), store.Options{Key: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	// A bound of one byte: every document but the one in hand is evicted.
	r := repo.New(st, repo.Options{MaxBytes: 1})
	relay := &node{name: "relay", st: st, repo: r}
	t.Cleanup(relay.close)
	var ev repotest.Evictions
	r.OnEvict(ev.Hook)
	relay.eng = New(r, Options{States: st, AckInSync: true})
	desk.eng.Connect(Peer{ID: "relay", StorageID: "s-relay"})
	relay.eng.Connect(Peer{ID: "desk", StorageID: "s-desk"})
	nw := &net{t: t, nodes: map[string]*node{"desk": desk, "relay": relay}}

	const docs = 12
	var ids []docid.ID
	for i := range docs {
		id := docid.New()
		doc := crdt.New()
		if _, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set(int64(i), "n") }); err != nil {
			t.Fatal(err)
		}
		if _, err := desk.repo.Create(ctx, id, doc); err != nil {
			t.Fatal(err)
		}
		out, err := desk.eng.Sync(ctx, id, []string{"relay"})
		if err != nil {
			t.Fatal(err)
		}
		nw.pump("desk", out)
		ids = append(ids, id)
	}
	if n, _ := r.Usage(); n > 1 {
		t.Fatalf("relay holds %d documents open, want 1 at most", n)
	}
	relay.eng.mu.Lock()
	held := len(relay.eng.peers["desk"].states)
	relay.eng.mu.Unlock()
	if held > 1 {
		t.Fatalf("relay keeps %d sync states with the desk, want 1 at most", held)
	}
	if n := len(ev.IDs()); n < docs-1 {
		t.Fatalf("%d documents evicted, want %d", n, docs-1)
	}
	if n := ev.Kept(); n > 0 {
		t.Fatalf("%d evicted documents are still referenced after a collection", n)
	}

	// Every document's state with the desk is there to save, evicted or not.
	saved := map[string]bool{}
	for _, s := range relay.eng.TakeDirty("") {
		if s.Storage == "s-desk" {
			saved[s.Doc] = true
		}
	}
	for _, id := range ids {
		if !saved[id.String()] {
			t.Fatalf("no sync state with the desk to save for %s (of %d saved)", id, len(saved))
		}
	}

	// The first document, long evicted, changes again and converges.
	h, err := desk.repo.Open(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	setValue(t, h, "room", "14")
	out, err := desk.eng.Sync(ctx, ids[0], []string{"relay"})
	if err != nil {
		t.Fatal(err)
	}
	nw.pump("desk", out)
	if v := value(t, relay, ids[0], "room"); v != "14" {
		t.Fatalf("relay reads room %v after the evicted document changed, want 14", v)
	}
	rh, err := r.Open(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if !crdt.SameHeads(rh.Doc().Heads(), h.Doc().Heads()) {
		t.Fatal("relay and desk hold different heads")
	}
}
