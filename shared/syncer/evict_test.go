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
	desk, relay, nw := tinyRelay(t)
	r := relay.repo
	var ev repotest.Evictions
	r.OnEvict(ev.Hook)

	const docs = 12
	var ids []docid.ID
	for i := range docs {
		ids = append(ids, offerNew(t, desk, nw, i))
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

// Settled acknowledgements of a document the relay has let go are taken
// without loading it: the peer's saved sync state then shares the heads it
// confirmed, as receiving them would have left it. A document held, or a
// message that says more, is left to Receive.
func TestSettleDoesNotLoad(t *testing.T) {
	desk, relay, nw := tinyRelay(t)
	r, st := relay.repo, relay.st
	gone, held := offerNew(t, desk, nw, 0), offerNew(t, desk, nw, 1)
	if r.Resident(gone) || !r.Resident(held) {
		t.Fatalf("resident: first %v, second %v; want only the second", r.Resident(gone), r.Resident(held))
	}
	hd, err := desk.repo.Open(gone)
	if err != nil {
		t.Fatal(err)
	}
	heads := hd.Doc().Heads()
	ack := append([]byte{0x42, 1}, heads[0][:]...)
	ack = append(ack, 0, 1, 1)
	ack = append(ack, heads[0][:]...)
	ack = append(ack, 0, 0)
	if !crdt.SettledAck(ack, heads) {
		t.Fatal("the test's acknowledgement is not a settled one")
	}
	if err := st.PutSyncState(ctx, "s-desk", gone.String(), []byte{0x43, 0}); err != nil {
		t.Fatal(err)
	}
	if done, err := relay.eng.Settle(ctx, gone, []In{{From: "desk", Data: crdt.EmptySyncMessage()}}); done || err != nil {
		t.Fatalf("Settle took a message that is no acknowledgement: %v, %v", done, err)
	}
	if done, err := relay.eng.Settle(ctx, held, []In{{From: "desk", Data: ack}}); done || err != nil {
		t.Fatalf("Settle took a message about a document held: %v, %v", done, err)
	}
	done, err := relay.eng.Settle(ctx, gone, []In{{From: "desk", Data: ack}})
	if !done || err != nil {
		t.Fatalf("Settle = %v, %v; want it taken", done, err)
	}
	if r.Resident(gone) {
		t.Fatal("Settle loaded the document")
	}
	saved, err := st.SyncState("s-desk", gone.String())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(saved, crdt.SavedSharing(heads)) {
		t.Fatalf("saved %x, want the state sharing %x", saved, heads)
	}
}

// tinyRelay is a desk and a relay whose repo may hold only the document in
// hand (a bound of one byte: every other is evicted), connected.
func tinyRelay(t *testing.T) (desk, relay *node, nw *net) {
	t.Helper()
	desk = newNode(t, "desk", t.TempDir(), Options{})
	st, err := store.Open(t.TempDir(), store.Options{Key: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	r := repo.New(st, repo.Options{MaxBytes: 1})
	relay = &node{name: "relay", st: st, repo: r}
	t.Cleanup(relay.close)
	relay.eng = New(r, Options{States: st, AckInSync: true})
	desk.eng.Connect(Peer{ID: "relay", StorageID: "s-relay"})
	relay.eng.Connect(Peer{ID: "desk", StorageID: "s-desk"})
	return desk, relay, &net{t: t, nodes: map[string]*node{"desk": desk, "relay": relay}}
}

// offerNew makes a document of one change on desk and syncs it to the
// relay.
func offerNew(t *testing.T, desk *node, nw *net, n int) docid.ID {
	t.Helper()
	id := docid.New()
	doc := crdt.New()
	if _, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set(int64(n), "n") }); err != nil {
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
	return id
}

// A document let go and worked on again before its peers' states were
// handed over for saving takes up each state as it was when let go, not
// the older one in the store, and saves it later as before.
func TestStateOfADocumentLetGoIsItsNewest(t *testing.T) {
	desk, relay, nw := tinyRelay(t)
	gone := offerNew(t, desk, nw, 0)
	offerNew(t, desk, nw, 1)
	if relay.repo.Resident(gone) {
		t.Fatal("the first document is still held")
	}
	if _, err := relay.st.SyncState("s-desk", gone.String()); err == nil {
		t.Fatal("the store holds a state already; the test needs it to hold none")
	}
	out, err := relay.eng.Sync(ctx, gone, []string{"desk"})
	if err != nil {
		t.Fatal(err)
	}
	hd, err := desk.repo.Open(gone)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != 1 {
		t.Fatalf("%d messages to the desk, want 1", len(out))
	}
	// The state as let go shares the desk's heads: its message says so and
	// nothing more. A state begun afresh would ask for everything.
	if heads, ok := crdt.AckedHeads(out[0].Data); !ok || !crdt.SameHeads(heads, hd.Doc().Heads()) {
		t.Fatalf("the message to the desk is not the one of a state sharing its heads: %x", out[0].Data)
	}
	saved := false
	for _, s := range relay.eng.TakeDirty("") {
		saved = saved || (s.Storage == "s-desk" && s.Doc == gone.String())
	}
	if !saved {
		t.Fatal("the state taken up is not handed over for saving")
	}
}
