package repo

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
	"haven/shared/store"
)

var testKey = bytes.Repeat([]byte{7}, 32)

func openStore(t testing.TB, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(dir, store.Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func testEditor(t testing.TB) *record.Editor {
	t.Helper()
	e, err := record.NewEditor(record.Author{UserID: "u1", Name: "Sam Senior", Role: record.SeniorCarer, DeviceID: "pc-1"},
		record.Rules{NHS: nhs.Demo})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func testIdentity() record.Identity {
	return record.Identity{NHSNumber: "9990000018", GivenName: "Edith", FamilyName: "Marlow", DateOfBirth: "1931-04-02", Sex: "female", Room: "12"}
}

// newResident stores a new resident's record and timeline and returns the
// timeline's handle, where notes go.
func newResident(t testing.TB, r *Repo, e *record.Editor) *Handle {
	t.Helper()
	docs, err := e.NewResident("home-1", testIdentity())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(context.Background(), docs.RecordID, docs.Record); err != nil {
		t.Fatal(err)
	}
	h, err := r.Create(context.Background(), docs.TimelineID, docs.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func timeline(t testing.TB, h *Handle) *record.Timeline {
	t.Helper()
	tl, err := record.ReadTimeline(h.Doc())
	if err != nil {
		t.Fatal(err)
	}
	return tl
}

func addNote(t testing.TB, h *Handle, e *record.Editor, text string) string {
	t.Helper()
	var id string
	err := h.Change(context.Background(), func(doc *crdt.Doc) (err error) {
		id, err = e.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: text})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestChangesSurviveReopen(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	r := New(st, Options{})
	e := testEditor(t)
	h := newResident(t, r, e)
	var notes []string
	for i := 0; i < 5; i++ {
		notes = append(notes, addNote(t, h, e, "note"))
	}
	heads := h.Doc().Heads()
	r.Close()
	st.Close()

	st = openStore(t, dir)
	defer st.Close()
	r = New(st, Options{})
	defer r.Close()
	h2, err := r.Open(h.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !crdt.SameHeads(h2.Doc().Heads(), heads) {
		t.Fatal("reopened document has other heads")
	}
	rec := timeline(t, h2)
	for _, n := range notes {
		if _, ok := rec.Note(n); !ok {
			t.Fatalf("note %s lost across reopen", n)
		}
	}
	if _, err := r.Open(docid.New()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open(unknown) = %v, want ErrNotFound", err)
	}
}

func TestCompactionKeepsEverything(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	defer st.Close()
	r := New(st, Options{CompactAfter: 1 << 30}) // compaction only when asked
	defer r.Close()
	e := testEditor(t)
	h := newResident(t, r, e)
	for i := 0; i < 20; i++ {
		addNote(t, h, e, "before")
	}
	if n, _, _, _ := st.DocStats(h.ID.String()); n != 21 {
		t.Fatalf("%d chunks before compaction, want 21", n)
	}
	if err := h.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n, _, snap, _ := st.DocStats(h.ID.String()); n != 0 || snap == 0 {
		t.Fatalf("after compaction %d chunks and a %d-byte snapshot, want 0 and a snapshot", n, snap)
	}
	after := addNote(t, h, e, "after")
	heads := h.Doc().Heads()

	r2 := New(st, Options{})
	defer r2.Close()
	h2, err := r2.Open(h.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec := timeline(t, h2)
	if !crdt.SameHeads(h2.Doc().Heads(), heads) || len(rec.Notes) != 21 {
		t.Fatalf("reloaded after compaction: %d notes, same heads %v", len(rec.Notes), crdt.SameHeads(h2.Doc().Heads(), heads))
	}
	if _, ok := rec.Note(after); !ok {
		t.Fatal("note written after compaction lost")
	}
}

func TestBackgroundCompaction(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	changed := make(chan struct{}, 100)
	r := New(&watchCompact{Storage: st, done: changed}, Options{CompactAfter: 4})
	defer r.Close()
	e := testEditor(t)
	h := newResident(t, r, e)
	for i := 0; i < 6; i++ { // CompactAfter and at most half as many again
		addNote(t, h, e, "n")
	}
	select {
	case <-changed:
	case <-time.After(10 * time.Second):
		t.Fatal("no background compaction after CompactAfter chunks and half as many again")
	}
	if n, _, _, _ := st.DocStats(h.ID.String()); n > 1 {
		t.Fatalf("%d chunks left after background compaction", n)
	}
}

// Computers that hold the same documents and see the same changes do not
// compact them at the same moments: the compaction point of each document is
// drawn afresh, between CompactAfter and half as many again.
func TestCompactionPointsDifferBetweenComputers(t *testing.T) {
	const after, docs = 8, 12
	points := func() []int {
		st := openStore(t, t.TempDir())
		defer st.Close()
		r := New(st, Options{CompactAfter: after})
		defer r.Close()
		e := testEditor(t)
		var at []int
		for range docs {
			h := newResident(t, r, e) // a timeline, where notes go
			addNote(t, h, e, "n")
			h.mu.Lock()
			at = append(at, h.due)
			h.mu.Unlock()
		}
		return at
	}
	a, b := points(), points()
	if slices.Equal(a, b) {
		t.Fatalf("two computers would compact %d documents at the same points %v", docs, a)
	}
	for _, p := range append(a, b...) {
		if p < after || p > after+after/2 {
			t.Fatalf("due for compaction at %d chunks; want between %d and %d", p, after, after+after/2)
		}
	}
}

type watchCompact struct {
	Storage
	done chan struct{}
}

func (w *watchCompact) Compact(ctx context.Context, id string, snap []byte, upTo uint64) error {
	err := w.Storage.Compact(ctx, id, snap, upTo)
	w.done <- struct{}{}
	return err
}

// A chunk that passes the store's checksum but is not Automerge (written by a
// buggy or hostile writer) is quarantined and reported; the rest loads.
func TestUnusableChunkIsQuarantined(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	r := New(st, Options{})
	e := testEditor(t)
	h := newResident(t, r, e)
	first := addNote(t, h, e, "kept")
	if _, err := st.AppendChunk(context.Background(), h.ID.String(), []byte("not automerge at all")); err != nil {
		t.Fatal(err)
	}
	r.Close()

	r2 := New(st, Options{})
	defer r2.Close()
	h2, err := r2.Open(h.ID)
	if err != nil {
		t.Fatal(err)
	}
	rep := h2.Report()
	if len(rep.Quarantined) != 1 || rep.Quarantined[0].Seq != 3 {
		t.Fatalf("report = %+v, want chunk 3 quarantined", rep)
	}
	rec := timeline(t, h2)
	if _, ok := rec.Note(first); !ok || rec.Resident == (docid.ID{}) {
		t.Fatal("the healthy part of the document did not load")
	}
	q, _ := st.Quarantined()
	if len(q) != 1 {
		t.Fatalf("store lists %d quarantined items, want 1", len(q))
	}
	// Later changes still save and load.
	later := addNote(t, h2, e, "later")
	r3 := New(st, Options{})
	defer r3.Close()
	h3, err := r3.Open(h.ID)
	if err != nil {
		t.Fatal(err)
	}
	rec = timeline(t, h3)
	if _, ok := rec.Note(later); !ok || len(h3.Report().Quarantined) != 1 {
		t.Fatalf("after quarantine: later note present %v, report %+v", ok, h3.Report())
	}
}

// When the disk refuses a change, the caller hears so and memory forgets the
// change too.
func TestFailedSaveIsNotKept(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	fail := &failingStorage{Storage: st}
	r := New(fail, Options{})
	defer r.Close()
	e := testEditor(t)
	h := newResident(t, r, e)
	fail.fail = true
	err := h.Change(context.Background(), func(doc *crdt.Doc) error {
		_, err := e.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: "lost"})
		return err
	})
	if err == nil {
		t.Fatal("Change succeeded though the disk refused it")
	}
	rec := timeline(t, h)
	if len(rec.Notes) != 0 {
		t.Fatal("memory kept a change that was not saved")
	}
	fail.fail = false
	addNote(t, h, e, "kept")
	rec = timeline(t, h)
	if len(rec.Notes) != 1 {
		t.Fatalf("%d notes after a good save, want 1", len(rec.Notes))
	}
}

type failingStorage struct {
	Storage
	fail bool
}

func (f *failingStorage) AppendChunk(ctx context.Context, id string, b []byte) (uint64, error) {
	if f.fail {
		return 0, errors.New("disk full")
	}
	return f.Storage.AppendChunk(ctx, id, b)
}

// A care record written through the real record editor and repo never
// reaches disk in plain text: the canary, in a name, a note and a decision
// reason, appears in no file of the data folder.
func TestRecordCanaryNotOnDisk(t *testing.T) {
	const canary = "CANARY-Zephyrine-Quistwater"
	dir := t.TempDir()
	st := openStore(t, dir)
	r := New(st, Options{CompactAfter: 2})
	e := testEditor(t)
	id := testIdentity()
	id.FamilyName = canary
	docs, err := e.NewResident("home-1", id)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.Create(context.Background(), docs.RecordID, docs.Record)
	if err != nil {
		t.Fatal(err)
	}
	tl, err := r.Create(context.Background(), docs.TimelineID, docs.Timeline)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		addNote(t, tl, e, "Visited by "+canary)
	}
	if err := rec.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	r.Close()
	st.Close()
	found := scanFor(t, dir, canary)
	if found != "" {
		t.Fatalf("canary found in plain text in %s", found)
	}
	// The scan can see plain text: the same words in an unencrypted file are found.
	if err := os.WriteFile(filepath.Join(dir, "control"), []byte("x"+canary), 0o600); err != nil {
		t.Fatal(err)
	}
	if scanFor(t, dir, canary) == "" {
		t.Fatal("the scan missed a canary in plain text")
	}
}

func scanFor(t *testing.T, dir, canary string) string {
	t.Helper()
	var found string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(b, []byte(canary)) {
			found = path
		}
		return nil
	})
	return found
}

// Try keeps nothing of a change whose check fails.
func TestTryDiscardsOnError(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	r := New(st, Options{})
	defer r.Close()
	e := testEditor(t)
	h := newResident(t, r, e)
	before := h.Doc().Heads()
	err := h.Try(context.Background(), func(doc *crdt.Doc) error {
		if _, err := e.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: "checked and refused"}); err != nil {
			return err
		}
		return errors.New("check failed")
	})
	if err == nil || !crdt.SameHeads(h.Doc().Heads(), before) {
		t.Fatalf("Try = %v; the refused change is still in memory", err)
	}
	if n, _, _, _ := st.DocStats(h.ID.String()); n != 1 {
		t.Fatalf("%d chunks stored, want only the first", n)
	}
	if err := h.Try(context.Background(), func(doc *crdt.Doc) error {
		_, err := e.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: "kept"})
		return err
	}); err != nil || len(timeline(t, h).Notes) != 1 {
		t.Fatalf("a good Try: %v, %d notes", err, len(timeline(t, h).Notes))
	}
}

// A damaged document opened by several callers at once (the sync client
// offering every document while the screen reads the same one) is loaded
// once: every caller gets the same handle, none an error from two loads
// racing to quarantine the same chunk.
func TestConcurrentOpensOfADamagedDocument(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	r := New(st, Options{})
	e := testEditor(t)
	h := newResident(t, r, e)
	for i := 0; i < 6; i++ {
		addNote(t, h, e, "note")
	}
	r.Close()
	// The first chunk is lost, so every later one fails to apply.
	if err := st.Quarantine(context.Background(), h.ID.String(), 1, "test: damaged"); err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		r2 := New(st, Options{})
		const callers = 8
		handles := make(chan *Handle, callers)
		errs := make(chan error, callers)
		start := make(chan struct{})
		for i := 0; i < callers; i++ {
			go func() {
				<-start
				h, err := r2.Open(h.ID)
				if err != nil {
					errs <- err
					return
				}
				handles <- h
			}()
		}
		close(start)
		var first *Handle
		for i := 0; i < callers; i++ {
			select {
			case err := <-errs:
				t.Fatalf("round %d: Open failed while another caller loaded the same document: %v", round, err)
			case got := <-handles:
				if first == nil {
					first = got
				} else if got != first {
					t.Fatalf("round %d: two callers got different handles for one document", round)
				}
			}
		}
		r2.Close()
	}
}

// A document arriving (Create) while something else is asking for it (Open,
// still not found: a screen polling for a record being downloaded) is
// stored, not refused as "already open".
func TestCreateWhileOpenLooksForIt(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	r := New(st, Options{})
	defer r.Close()
	for i := 0; i < 50; i++ {
		id := docid.New()
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				select {
				case <-stop:
					return
				default:
					r.Open(id)
				}
			}
		}()
		doc := crdt.New()
		if _, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("1", "room") }); err != nil {
			t.Fatal(err)
		}
		_, err := r.Create(context.Background(), id, doc)
		close(stop)
		<-done
		if err != nil {
			t.Fatalf("Create while another caller looked for the document: %v", err)
		}
		if h, err := r.Open(id); err != nil || h.Doc() != doc {
			t.Fatalf("after Create, Open = %v, %v", h, err)
		}
	}
}

// gatedStorage holds a LoadDoc at gate, once read, while armed, and notes a
// document deleted while a load of it was under way.
type gatedStorage struct {
	*store.Store
	armed    atomic.Bool
	entered  chan struct{}
	gate     chan struct{}
	inFlight atomic.Int32
	overlap  atomic.Bool
}

func (g *gatedStorage) LoadDoc(id string) (store.Doc, error) {
	g.inFlight.Add(1)
	defer g.inFlight.Add(-1)
	d, err := g.Store.LoadDoc(id)
	if g.armed.CompareAndSwap(true, false) {
		g.entered <- struct{}{}
		<-g.gate
	}
	return d, err
}

func (g *gatedStorage) DeleteDoc(ctx context.Context, id string) error {
	if g.inFlight.Load() > 0 {
		g.overlap.Store(true)
	}
	return g.Store.DeleteDoc(ctx, id)
}

// A document removed (let go at the relay's word) while something was
// loading it (a screen opening it) stays removed: the load finishes first,
// its copy is dropped, and nothing holds the document afterwards.
func TestRemoveWhileALoadIsUnderWay(t *testing.T) {
	st := openStore(t, t.TempDir())
	defer st.Close()
	g := &gatedStorage{Store: st, entered: make(chan struct{}), gate: make(chan struct{})}
	first := New(g, Options{})
	h := newResident(t, first, testEditor(t))
	first.Close()

	r := New(g, Options{})
	defer r.Close()
	g.armed.Store(true)
	opened := make(chan error, 1)
	go func() {
		_, err := r.Open(h.ID)
		opened <- err
	}()
	<-g.entered // the load is under way
	removed := make(chan error, 1)
	go func() { removed <- r.Remove(context.Background(), h.ID) }()
	// A Remove that waits for the load cannot be seen waiting; one that
	// does not returns at once. The pause only gives the latter time to
	// delete under the load (so the test can fail); a Remove that waits
	// passes whatever the pause.
	select {
	case err := <-removed: // it did not wait for the load
		removed <- err
	case <-time.After(100 * time.Millisecond):
	}
	close(g.gate)
	if err := <-opened; err != nil {
		t.Fatalf("the load under way: %v", err)
	}
	if err := <-removed; err != nil {
		t.Fatalf("Remove = %v", err)
	}
	if g.overlap.Load() {
		t.Error("the document was deleted from the store while a load of it was under way")
	}
	if _, err := r.Open(h.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after Remove, Open = %v; want ErrNotFound (the load's copy stayed)", err)
	}
}
