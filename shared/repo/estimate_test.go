package repo

import (
	"bytes"
	"context"
	"encoding/gob"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/store"
)

// The memory estimate (docMemory) against what documents of different
// shapes take once loaded: each shape's copies are loaded in a fresh child
// process, from bytes held in memory, and measured as the growth of its
// resident set, Go and Automerge together. A fresh process, because a
// process that has already freed memory reuses it: loading there would
// grow the resident set by less than the documents take.

// estimateChildEnv names the file a child loads its copies from.
const estimateChildEnv = "HAVEN_REPO_ESTIMATE_CHILD"

// estimateSample is what the child loads (encoded with gob) and what it
// reports back (on stdout, "measured estimated", bytes per document).
type estimateSample struct {
	Doc    store.Doc
	Copies int
}

// longStay is a resident's record after updates care-plan updates, each
// its own change.
func longStay(t *testing.T, e *record.Editor, updates int) *crdt.Doc {
	t.Helper()
	docs, err := e.NewResident("home-1", testIdentity())
	if err != nil {
		t.Fatal(err)
	}
	for i := range updates {
		if err := e.UpdateCarePlan(docs.Record, record.CarePlanEntry{Domain: record.Domains[i%len(record.Domains)],
			Need: fmt.Sprintf("Needs as reviewed at review %d", i), Goal: fmt.Sprintf("Goal agreed at review %d", i),
			Support: fmt.Sprintf("How to support me, as of review %d.", i)}); err != nil {
			t.Fatal(err)
		}
	}
	return docs.Record
}

// estimateShapes are documents as Haven holds them: a new record, a record
// after a long stay of small care-plan updates (memory follows its changes,
// which its save compresses well), timelines of notes, one change of many
// operations, and notes stored as chunks not yet compacted.
func estimateShapes(t *testing.T) []struct {
	name   string
	doc    store.Doc
	copies int
} {
	e := testEditor(t)
	resident := func(updates int) *crdt.Doc { return longStay(t, e, updates) }
	notes := func(n int) (*crdt.Doc, *crdt.Doc) {
		docs, err := e.NewResident("home-1", testIdentity())
		if err != nil {
			t.Fatal(err)
		}
		for i := range n {
			if _, err := e.AddNote(docs.Timeline, record.Note{Kind: record.NoteKindNote, Text: fmt.Sprintf("Note %d: ate well, walked to the garden, settled at night.", i)}); err != nil {
				t.Fatal(err)
			}
		}
		return docs.Timeline, docs.Record
	}
	manyOps := crdt.New()
	if _, err := manyOps.Change("", time.Unix(1, 0), func(w *crdt.Writer) error {
		for i := range 5000 {
			if err := w.Set(fmt.Sprintf("value %d", i), fmt.Sprintf("key %d", i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	snapshot := func(d *crdt.Doc) store.Doc { return store.Doc{Snapshot: d.Save()} }
	// A timeline as stored before compaction: its creation, then a chunk
	// per note.
	chunked := func(n int) store.Doc {
		docs, err := e.NewResident("home-1", testIdentity())
		if err != nil {
			t.Fatal(err)
		}
		first, err := docs.Timeline.SaveSince(nil)
		if err != nil {
			t.Fatal(err)
		}
		sd := store.Doc{Chunks: []store.Chunk{{Seq: 1, Data: first}}}
		for i := range n {
			heads := docs.Timeline.Heads()
			if _, err := e.AddNote(docs.Timeline, record.Note{Kind: record.NoteKindNote, Text: fmt.Sprintf("Note %d: slept well.", i)}); err != nil {
				t.Fatal(err)
			}
			chunk, err := docs.Timeline.SaveSince(heads)
			if err != nil {
				t.Fatal(err)
			}
			sd.Chunks = append(sd.Chunks, store.Chunk{Seq: uint64(i + 2), Data: chunk})
		}
		return sd
	}
	tl100, _ := notes(100)
	tl1000, rec := notes(1000)
	return []struct {
		name   string
		doc    store.Doc
		copies int
	}{
		{"new record", snapshot(rec), 300},
		{"record, 200 updates", snapshot(resident(200)), 60},
		{"record, 2,000 updates", snapshot(resident(2000)), 12},
		{"timeline, 100 notes", snapshot(tl100), 150},
		{"timeline, 1,000 notes", snapshot(tl1000), 20},
		{"one change, 5,000 ops", snapshot(manyOps), 20},
		{"timeline, 60 chunks", chunked(60), 150},
	}
}

// The estimate of each shape of document is within a factor of two of the
// memory its copies take once loaded, measured.
func TestDocMemoryEstimate(t *testing.T) {
	if f := os.Getenv(estimateChildEnv); f != "" {
		estimateChild(t, f)
		return
	}
	if runtime.GOOS != "linux" {
		t.Skip("measures the resident set through /proc")
	}
	const factor = 2.0
	for _, s := range estimateShapes(t) {
		measured, estimated := measureLoaded(t, s.name, s.doc, s.copies)
		saved := int64(len(s.doc.Snapshot))
		for _, c := range s.doc.Chunks {
			saved += int64(len(c.Data))
		}
		ratio := float64(estimated) / float64(measured)
		t.Logf("%-22s saved %7d B: measured %8d B/doc, estimated %8d (%.2fx)", s.name, saved, measured, estimated, ratio)
		if ratio < 1/factor || ratio > factor {
			t.Errorf("%s: estimated %d bytes a document, measured %d: %.2fx, want within %gx", s.name, estimated, measured, ratio, factor)
		}
	}
}

// measureLoaded loads copies of doc in a fresh child process and returns
// the memory each took there, measured, and as the Repo estimated it.
func measureLoaded(t *testing.T, name string, doc store.Doc, copies int) (measured, estimated int64) {
	t.Helper()
	var enc bytes.Buffer
	if err := gob.NewEncoder(&enc).Encode(estimateSample{Doc: doc, Copies: copies}); err != nil {
		t.Fatal(err)
	}
	file := t.TempDir() + "/sample"
	if err := os.WriteFile(file, enc.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestDocMemoryEstimate$", "-test.count=1")
	cmd.Env = append(os.Environ(), estimateChildEnv+"="+file)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: child: %v\n%s", name, err, out)
	}
	line, _, _ := strings.Cut(string(out), "\n")
	if _, err := fmt.Sscan(line, &measured, &estimated); err != nil || measured <= 0 {
		t.Fatalf("%s: child printed %q", name, out)
	}
	return measured, estimated
}

// A document stored as it was created, one chunk holding its whole save
// (Create), takes no more memory once loaded than the same document loaded
// from a snapshot: the relay keeps a device's new record that way until it
// is compacted, which a record many times changed offline may never need.
func TestCreatedDocumentLoadsAsCompactly(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("measures the resident set through /proc")
	}
	saved := longStay(t, testEditor(t), 2000).Save()
	const copies = 12
	snapshot, _ := measureLoaded(t, "snapshot", store.Doc{Snapshot: saved}, copies)
	created, _ := measureLoaded(t, "created", store.Doc{Chunks: []store.Chunk{{Seq: 1, Data: saved}}}, copies)
	t.Logf("a record of 2,000 updates loaded: %d bytes from a snapshot, %d from its creation chunk", snapshot, created)
	if created > snapshot*5/4 {
		t.Errorf("loaded from its creation chunk a record takes %d bytes, from a snapshot %d: want at most a quarter more", created, snapshot)
	}
}

// estimateChild loads the copies described in file through an unbounded
// Repo and prints the resident set's growth and the Repo's estimate, per
// document.
func estimateChild(t *testing.T, file string) {
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var s estimateSample
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&s); err != nil {
		t.Fatal(err)
	}
	st := &heldDocs{doc: s.Doc}
	ids := make([]docid.ID, s.Copies)
	for i := range ids {
		ids[i] = docid.New()
	}
	r := New(st, Options{CompactAfter: 1 << 30})
	defer r.Close()
	// One copy first, so that what loading a first document sets up once
	// (Automerge's and the Repo's) is in the base, not the per-document
	// figure.
	if _, err := r.Open(docid.New()); err != nil {
		t.Fatal(err)
	}
	_, est0 := r.Usage()
	base := settledRSS(t)
	for _, id := range ids {
		h, err := r.Open(id)
		if err != nil {
			t.Fatal(err)
		}
		h.Doc().Heads()
	}
	grown := settledRSS(t) - base
	_, est := r.Usage()
	fmt.Println(strconv.FormatInt(grown/int64(s.Copies), 10), strconv.FormatInt((est-est0)/int64(s.Copies), 10))
}

// heldDocs is a Storage that holds one document's bytes in memory and
// serves them under every ID, so that copies share the bytes and only the
// loaded documents grow the process.
type heldDocs struct{ doc store.Doc }

func (h *heldDocs) LoadDoc(string) (store.Doc, error) { return h.doc, nil }

func (h *heldDocs) AppendChunk(context.Context, string, []byte) (uint64, error) {
	return 0, fmt.Errorf("heldDocs is read-only")
}

func (h *heldDocs) Quarantine(context.Context, string, uint64, string) error {
	return fmt.Errorf("heldDocs is read-only")
}

func (h *heldDocs) Compact(context.Context, string, []byte, uint64) error {
	return fmt.Errorf("heldDocs is read-only")
}
