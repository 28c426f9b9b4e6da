package repo

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/repo/repotest"
	"haven/shared/store"
)

// storeTimelines stores n residents' timelines, each with one note, through
// an unbounded Repo, and returns their IDs and the estimated memory of one
// (they are alike, so each is estimated the same to within a few bytes).
func storeTimelines(t *testing.T, st *store.Store, e *record.Editor, n int) ([]docid.ID, int64) {
	t.Helper()
	r := New(st, Options{})
	defer r.Close()
	var ids []docid.ID
	for range n {
		h := newResident(t, r, e)
		addNote(t, h, e, "Settled well after lunch.")
		ids = append(ids, h.ID)
	}
	most := int64(0)
	for _, id := range ids {
		h, err := r.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		r.mu.Lock()
		most = max(most, h.mem)
		r.mu.Unlock()
	}
	return ids, most
}

// boundedRepo stores n alike timelines, each with one note, and opens a
// Repo over them bounded to room of them, watched by the returned
// Evictions. Both close when the test ends.
func boundedRepo(t *testing.T, n int, room float64) (*Repo, *record.Editor, []docid.ID, *repotest.Evictions) {
	t.Helper()
	st := openStore(t, t.TempDir())
	t.Cleanup(func() { st.Close() })
	e := testEditor(t)
	ids, each := storeTimelines(t, st, e, n)
	r := New(st, Options{MaxBytes: int64(room * float64(each))})
	t.Cleanup(func() { r.Close() })
	var ev repotest.Evictions
	r.OnEvict(ev.Hook)
	return r, e, ids, &ev
}

// A bounded Repo keeps the documents it holds open within the bound,
// evicting the least recently used; an evicted document opens again with
// every change, and a handle kept from before its eviction still reads and
// writes the one copy the Repo holds.
func TestBoundEvictsLeastRecentlyUsed(t *testing.T) {
	r, e, ids, ev := boundedRepo(t, 8, 3.5)
	bound := r.opts.MaxBytes

	open := func(id docid.ID) *Handle {
		t.Helper()
		h, err := r.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		if n, b := r.Usage(); b > bound {
			t.Fatalf("after opening %s: %d documents of %d bytes open, bound %d", id, n, b, bound)
		}
		return h
	}
	first := open(ids[0])
	note := addNote(t, first, e, "Visited by her son.")
	open(ids[1])
	open(ids[2])
	open(ids[0]) // now the most recently used: ids[1] is the least
	open(ids[3])
	if !ev.Has(ids[1]) || ev.Has(ids[0]) {
		t.Fatalf("evicted %v; want %s (least recently used), not %s", ev.IDs(), ids[1], ids[0])
	}
	for _, id := range ids[4:] {
		open(id)
	}
	if n, _ := r.Usage(); n > 3 {
		t.Fatalf("%d documents open, want at most the 3 the bound holds", n)
	}
	if !ev.Has(ids[0]) {
		t.Fatalf("evicted %v; %s was used least recently of all and is still open", ev.IDs(), ids[0])
	}

	// The evicted document opens again, whole.
	again := open(ids[0])
	if again == first {
		t.Fatal("Open returned the evicted handle")
	}
	if _, ok := timeline(t, again).Note(note); !ok {
		t.Fatal("a note made before eviction is missing after reopening")
	}
	// The handle kept from before writes to, and reads, the copy open now.
	later := addNote(t, first, e, "Slept through.")
	if _, ok := timeline(t, again).Note(later); !ok {
		t.Fatal("a note made through the evicted handle is missing from the open copy")
	}
	if !crdt.SameHeads(first.Doc().Heads(), again.Doc().Heads()) {
		t.Fatal("the evicted handle reads another copy than the one open")
	}
}

// A document being changed, or held, is not evicted however far over the
// bound the Repo goes meanwhile; once let go, it is.
func TestBusyDocumentIsNotEvicted(t *testing.T) {
	r, e, ids, ev := boundedRepo(t, 6, 2.5)

	held, release, err := r.Hold(ids[1])
	if err != nil {
		t.Fatal(err)
	}
	busy, err := r.Open(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	var note string
	err = busy.Change(context.Background(), func(doc *crdt.Doc) (err error) {
		note, err = e.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: "Fell asleep in the lounge."})
		if err != nil {
			return err
		}
		// Mid-change, the least recently used document is passed over.
		for _, id := range ids[2:] {
			if _, err := r.Open(id); err != nil {
				return err
			}
		}
		if ev.Has(ids[0]) {
			t.Error("evicted mid-change")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Has(ids[1]) {
		t.Fatal("a held document was evicted")
	}
	if held.evicted.Load() {
		t.Fatal("a held document's handle is marked evicted")
	}
	release()
	if _, err := r.Open(ids[2]); err != nil {
		t.Fatal(err)
	}
	if !ev.Has(ids[0]) || !ev.Has(ids[1]) {
		t.Fatalf("evicted %v; once no longer busy or held, %s and %s should go", ev.IDs(), ids[0], ids[1])
	}
	h, err := r.Open(ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := timeline(t, h).Note(note); !ok {
		t.Fatal("the note made while others were evicted is missing after reopening")
	}
}

// Nothing in the Repo keeps an evicted document: once those told of the
// eviction let go, the collector frees it (and its finalizers Automerge's
// memory).
func TestEvictedDocumentIsCollected(t *testing.T) {
	r, e, ids, ev := boundedRepo(t, 4, 1.5)
	for _, id := range ids {
		h, err := r.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		addNote(t, h, e, "Walked to the garden.")
	}
	if n := len(ev.IDs()); n < len(ids)-1 {
		t.Fatalf("%d documents evicted, want %d", n, len(ids)-1)
	}
	if n := ev.Kept(); n > 0 {
		t.Fatalf("%d evicted documents are still referenced after a collection", n)
	}
}

// A bounded Repo loads a document for a Hold only once the load fits the
// bound beside the documents held: the bound holds while documents are
// worked on, not only between calls. Documents nobody holds are evicted for
// the load first, and a document too large for the bound on its own loads
// all the same.
func TestHoldWaitsForRoomToLoad(t *testing.T) {
	docs, err := testEditor(t).NewResident("home-1", testIdentity())
	if err != nil {
		t.Fatal(err)
	}
	stored := store.Doc{Snapshot: docs.Record.Save()}
	each := storedMemory(stored)
	synctest.Test(t, func(t *testing.T) {
		r := New(&heldDocs{doc: stored}, Options{MaxBytes: loadingCopies*each + each/2})
		defer r.Close()
		var ev repotest.Evictions
		r.OnEvict(ev.Hook)
		idle, first, second := docid.New(), docid.New(), docid.New()
		if _, err := r.Open(idle); err != nil {
			t.Fatal(err)
		}
		_, releaseFirst, err := r.Hold(first)
		if err != nil {
			t.Fatal(err)
		}
		if !ev.Has(idle) {
			t.Fatal("a document nobody holds was kept beside a load it left no room for")
		}

		held := make(chan func())
		go func() {
			_, release, err := r.Hold(second)
			if err != nil {
				t.Error(err)
			}
			held <- release
		}()
		synctest.Wait()
		select {
		case release := <-held:
			release()
			t.Fatal("a document was loaded beside a held one, over the bound")
		default:
		}
		releaseFirst()
		releaseSecond := <-held
		if !ev.Has(first) {
			t.Fatal("the document no longer held was kept beside the load waiting for it")
		}
		if n, _ := r.Usage(); n != 1 {
			t.Fatalf("%d documents open, want the one held", n)
		}
		releaseSecond()

		small := New(&heldDocs{doc: stored}, Options{MaxBytes: each / 2})
		defer small.Close()
		_, release, err := small.Hold(first)
		if err != nil {
			t.Fatal(err)
		}
		release()
	})
}

// With IdleAfter, a document nobody has opened or held for that long is let
// go, bound or no bound, and its memory with it, within a quarter of
// IdleAfter more; one opened again is let go that long after its new use,
// and one held stays while held and goes at the next look after its
// release. What was let go opens again. The test waits on each eviction
// as it happens: the bubble's clock runs to it, and says when it was.
func TestIdleDocumentsAreLetGo(t *testing.T) {
	docs, err := testEditor(t).NewResident("home-1", testIdentity())
	if err != nil {
		t.Fatal(err)
	}
	stored := store.Doc{Snapshot: docs.Record.Save()}
	synctest.Test(t, func(t *testing.T) {
		const idleAfter = time.Minute
		r := New(&heldDocs{doc: stored}, Options{IdleAfter: idleAfter})
		defer r.Close()
		var ev repotest.Evictions
		r.OnEvict(ev.Hook)
		type eviction struct {
			id docid.ID
			at time.Time
		}
		evictions := make(chan eviction, 16)
		r.OnEvict(func(id docid.ID, _ *crdt.Doc) { evictions <- eviction{id, time.Now()} })
		next := func(want docid.ID, after time.Time, within time.Duration) time.Time {
			t.Helper()
			var e eviction
			select {
			case e = <-evictions:
			case <-time.After(after.Sub(time.Now()) + 2*idleAfter): // the bubble's clock: no real wait
				t.Fatalf("%s was not let go", want)
			}
			if e.id != want {
				t.Fatalf("%s was let go first, want %s", e.id, want)
			}
			if d := e.at.Sub(after); d < 0 || d > within {
				t.Fatalf("%s was let go %v after it was last used or released, want within %v", want, d, within)
			}
			return e.at
		}
		open := func(id docid.ID) {
			t.Helper()
			if _, err := r.Open(id); err != nil {
				t.Fatal(err)
			}
		}

		reopened, held := docid.New(), docid.New()
		start := time.Now()
		open(reopened)
		_, release, err := r.Hold(held)
		if err != nil {
			t.Fatal(err)
		}
		first := next(reopened, start.Add(idleAfter), idleAfter/4)
		if ev.Has(held) {
			t.Fatal("a held document was let go")
		}
		if n := ev.Kept(); n > 0 {
			t.Fatal("the idle document let go is still in memory")
		}

		open(reopened) // used again: idle from now
		release()      // idle since it was held, long ago
		next(held, first, idleAfter/4)
		next(reopened, first.Add(idleAfter), idleAfter/4)
		if n, b := r.Usage(); n != 0 || b != 0 {
			t.Fatalf("%d documents (%d bytes) open after all were idle for over %v", n, b, idleAfter)
		}
		h, err := r.Open(reopened)
		if err != nil {
			t.Fatal(err)
		}
		if !crdt.SameHeads(h.Doc().Heads(), docs.Record.Heads()) {
			t.Fatal("a document let go for idleness opens again changed")
		}
	})
}
