package crdt

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// jsCapabilities is the section @automerge/automerge 3.5 appends to every
// sync message it sends: a length of 2, capV2, then its flag bitfield
// (0x80 | "supports sync reset").
var jsCapabilities = []byte{0x02, capV2, 0x84}

// fromNewPeer is the first message of a peer that holds nothing and reads
// version 2 messages, as a fresh JavaScript client sends it.
func fromNewPeer() []byte { return append(EmptySyncMessage(), jsCapabilities...) }

// manyChanges makes a document of n changes.
func manyChanges(t *testing.T, n int) *Doc {
	t.Helper()
	d := New()
	for i := range n {
		set(t, d, fmt.Sprint(i), fmt.Sprintf("value %d with some text to it", i), fmt.Sprintf("k%d", i))
	}
	return d
}

// answer has ss receive msg and returns what it generates next.
func answer(t testing.TB, ss *SyncState, msg []byte) []byte {
	t.Helper()
	if err := ss.Receive(msg); err != nil {
		t.Fatal(err)
	}
	out, ok, err := ss.Generate()
	if err != nil || !ok {
		t.Fatalf("Generate() = %v, %v", ok, err)
	}
	return out
}

// parsedSync is a sync message of either version, read in the test.
type parsedSync struct {
	version byte
	heads   []Hash
	haves   int
	chunks  [][]byte
	tail    []byte // what follows the chunks (a capabilities section)
}

func parseSync(t *testing.T, msg []byte) parsedSync {
	t.Helper()
	p := parsedSync{version: msg[0]}
	v1 := append([]byte{0x42}, msg[1:]...) // the readers take version 1; the layout is the same
	r := reader{b: v1, off: 1}
	heads, ok := r.hashList()
	if !ok {
		t.Fatalf("message %x: heads unreadable", msg[:min(len(msg), 40)])
	}
	p.heads = heads
	readHaves(v1, func([]Hash) bool { p.haves++; return false })
	chunks, err := SyncMessageChanges(v1)
	if err != nil {
		t.Fatalf("SyncMessageChanges = %v", err)
	}
	p.chunks = chunks
	_, end, _, ok := changesSection(v1)
	if !ok {
		t.Fatal("changes section unreadable")
	}
	p.tail = msg[end:]
	return p
}

// TestNewPeerGetsTheWholeDocumentInOneMessage: a peer that holds nothing
// and announces it reads version 2 messages gets the document in the first
// message, as one saved document that loads to the same heads; the rest of
// the exchange sends no change again. A peer that announces nothing gets
// the changes one by one, as before.
func TestNewPeerGetsTheWholeDocumentInOneMessage(t *testing.T) {
	const n = 40
	d := manyChanges(t, n)
	ss := NewSyncState(d)
	msg := answer(t, ss, fromNewPeer())
	got := parseSync(t, msg)
	if got.version != syncV2 || len(got.chunks) != 1 {
		t.Fatalf("answer to a new peer: type %#x with %d chunks, want %#x with the document as 1 chunk", got.version, len(got.chunks), syncV2)
	}
	if got.haves != 0 {
		t.Fatalf("answer to a new peer carries %d haves: a peer with nothing has nothing to send back", got.haves)
	}
	if len(got.tail) != 0 {
		t.Fatalf("answer ends with %x: a capabilities section would make the peer send version 2 messages back", got.tail)
	}
	if !SameHeads(got.heads, d.Heads()) {
		t.Fatalf("message heads %v, want the document's %v", got.heads, d.Heads())
	}
	peer, err := Load(got.chunks[0])
	if err != nil {
		t.Fatalf("Load(the chunk) = %v", err)
	}
	if !SameHeads(peer.Heads(), d.Heads()) {
		t.Fatalf("the chunk loads to heads %v, want %v", peer.Heads(), d.Heads())
	}
	if saved := len(d.Save()); len(msg) > saved+256 {
		t.Errorf("message of %d bytes for a document saved in %d", len(msg), saved)
	}

	// The peer, now holding what the message's heads name, answers as
	// Automerge does; nothing carrying changes comes back.
	ps, err := SyncStateSharing(peer, got.heads)
	if err != nil {
		t.Fatal(err)
	}
	for round := 0; round < 5; round++ {
		reply, ok, err := ps.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			if err := ss.Receive(reply); err != nil {
				t.Fatal(err)
			}
		}
		next, more, err := ss.Generate()
		if err != nil {
			t.Fatal(err)
		}
		if !more {
			break
		}
		if c := CountChanges(next); c > 0 {
			t.Fatalf("after the whole document, round %d sent %d changes again", round, c)
		}
		if err := ps.Receive(next); err != nil {
			t.Fatal(err)
		}
	}
	if !Covers(ss.SharedHeads(), d.Heads()) {
		t.Fatalf("the sender does not count the peer in sync: shared %v, heads %v", ss.SharedHeads(), d.Heads())
	}

	// A peer that announces nothing gets version 1, a chunk per change.
	if got := parseSync(t, answer(t, NewSyncState(d), EmptySyncMessage())); got.version != syncV1 || len(got.chunks) != n {
		t.Fatalf("answer to a peer that announced nothing: type %#x with %d chunks, want %#x with %d", got.version, len(got.chunks), syncV1, n)
	}
}

// TestWholeDocumentSentOnce: a peer that still names no heads after it was
// sent the document whole (it could not load it, say) gets the changes as
// Automerge sends them, not the same message for ever.
func TestWholeDocumentSentOnce(t *testing.T) {
	d := manyChanges(t, 5)
	ss := NewSyncState(d)
	var versions []byte
	for range 2 {
		p := parseSync(t, answer(t, ss, fromNewPeer()))
		if len(p.chunks) == 0 {
			t.Fatalf("answer %d carries nothing to a peer with nothing", len(versions))
		}
		versions = append(versions, p.version)
	}
	if versions[0] != syncV2 || versions[1] != syncV1 {
		t.Fatalf("message types %x, want the whole document once (%#x) then changes (%#x)", versions, syncV2, syncV1)
	}
}

// TestReadsWholeDocuments reads the capabilities section of every
// Automerge version that writes one.
func TestReadsWholeDocuments(t *testing.T) {
	empty := EmptySyncMessage()
	for _, tc := range []struct {
		name string
		tail []byte
		want bool
	}{
		{"no section (automerge-go, before 0.5.12)", nil, false},
		{"list of capabilities v1, v2 (0.5.12 to 0.7)", []byte{0x02, 0x01, capV2}, true},
		{"v2 and a flag byte (JavaScript 3.5)", jsCapabilities, true},
		{"v1 only", []byte{0x01, 0x01}, false},
		{"empty section", []byte{0x00}, false},
		{"section shorter than it says", []byte{0x05, capV2}, false},
	} {
		msg := append(append([]byte(nil), empty...), tc.tail...)
		if got := readsWholeDocuments(msg); got != tc.want {
			t.Errorf("%s: readsWholeDocuments(…%x) = %v, want %v", tc.name, tc.tail, got, tc.want)
		}
	}
	if readsWholeDocuments([]byte{0x43, 0, 0, 0, 0, 0x01, capV2}) {
		t.Error("a version 2 message is not one the relay reads; it announces nothing")
	}
}

// FuzzWholeDocumentReaders: the readers of a peer's message that decide a
// whole-document answer never panic, and the copy shown to automerge-go
// differs from a well-formed message only in having no haves.
func FuzzWholeDocumentReaders(f *testing.F) {
	f.Add(fromNewPeer())
	f.Add(EmptySyncMessage())
	f.Add([]byte{0x42})
	f.Add([]byte{})
	f.Add(HeadsMessage([]Hash{{1}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		readsWholeDocuments(b)
		namesNoHeads(b)
		out, ok := withoutHaves(b)
		if !ok || CheckSyncMessage(b) != nil {
			return
		}
		if err := CheckSyncMessage(out); err != nil {
			t.Fatalf("withoutHaves(%x) = %x, which does not check: %v", b, out, err)
		}
		if CountChanges(out) != CountChanges(b) || readsWholeDocuments(out) != readsWholeDocuments(b) || namesNoHeads(out) != namesNoHeads(b) {
			t.Fatalf("withoutHaves(%x) = %x changed more than the haves", b, out)
		}
		haves := 0
		readHaves(out, func([]Hash) bool { haves++; return false })
		if haves != 0 {
			t.Fatalf("withoutHaves(%x) = %x keeps %d haves", b, out, haves)
		}
	})
}

// BenchmarkAnswerNewPeer: the first answer to a peer that holds nothing,
// as changes (a peer that announces nothing) and as the whole document,
// for a document of 8 changes of 40 fields each. It reports the answer's
// size beside the document's saved size.
func BenchmarkAnswerNewPeer(b *testing.B) {
	d := New()
	for c := range 8 {
		_, err := d.Change(fmt.Sprint(c), time.Time{}, func(w *Writer) error {
			for k := range 40 {
				if err := w.Set(fmt.Sprintf("value %d of change %d, as long as a field's", k, c), fmt.Sprintf("f%d-%d", c, k)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	saved := len(d.Save())
	for _, bc := range []struct {
		name  string
		first []byte
	}{{"changes", EmptySyncMessage()}, {"whole", fromNewPeer()}} {
		b.Run(bc.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				size = len(answer(b, NewSyncState(d), bc.first))
			}
			b.ReportMetric(float64(size), "msg-bytes")
			b.ReportMetric(float64(size)/float64(saved), "x-saved")
		})
	}
}

// A document as the relay stores it (a saved document, then SaveSince
// chunks; or chunks alone; branches merged) is answered whole from its
// bytes: the heads are the document's, the message is laid out as the one
// a sync state makes for a peer that asks for the whole document, and it
// loads into an empty document as that document.
func TestWholeAnswerFromStoredBytes(t *testing.T) {
	if !AsksForWhole(fromNewPeer()) {
		t.Fatal("a fresh JavaScript client's first message does not ask for the whole document")
	}
	for name, msg := range map[string][]byte{
		"no capabilities":    EmptySyncMessage(),
		"carrying changes":   syncMessage(t),
		"naming heads":       append(HeadsMessage([]Hash{{1}}), jsCapabilities...),
		"not a sync message": {0x43, 0, 0, 0, 0},
	} {
		if AsksForWhole(msg) {
			t.Errorf("%s: asks for the whole document, want not", name)
		}
	}
	stage := func(t *testing.T, d *Doc, since []Hash) ([]byte, []Hash) {
		t.Helper()
		b, err := d.SaveSince(since)
		if err != nil {
			t.Fatal(err)
		}
		return b, d.Heads()
	}
	for _, tc := range []struct {
		name     string
		snapshot bool
		branches bool
	}{{"saved document and chunks", true, false}, {"chunks alone", false, false}, {"merged branches", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			d := manyChanges(t, 20)
			var snapshot []byte
			var chunks [][]byte
			at := []Hash(nil)
			if tc.snapshot {
				snapshot, at = d.Save(), d.Heads()
			} else {
				var c []byte
				c, at = stage(t, d, nil)
				chunks = append(chunks, c)
			}
			for i := range 3 {
				set(t, d, fmt.Sprint(i), fmt.Sprintf("later %d", i), "after")
				var c []byte
				c, at = stage(t, d, at)
				chunks = append(chunks, c)
			}
			if tc.branches {
				other, err := d.Fork()
				if err != nil {
					t.Fatal(err)
				}
				set(t, other, "x", "on the other branch", "branch")
				set(t, d, "y", "on this branch", "here")
				if err := d.Merge(other); err != nil {
					t.Fatal(err)
				}
				c, _ := stage(t, d, at)
				chunks = append(chunks, c)
				if len(d.Heads()) != 2 {
					t.Fatalf("%d heads after the merge, want 2", len(d.Heads()))
				}
			}
			msg, heads, err := WholeAnswer(snapshot, chunks)
			if err != nil {
				t.Fatal(err)
			}
			if !SameHeads(heads, d.Heads()) {
				t.Fatalf("heads %x, the document's %x", heads, d.Heads())
			}
			if alone, err := StoredHeads(snapshot, chunks); err != nil || !SameHeads(alone, d.Heads()) {
				t.Fatalf("StoredHeads = %x, %v; the document's %x", alone, err, d.Heads())
			}
			want := parseSync(t, answer(t, NewSyncState(d), fromNewPeer()))
			got := parseSync(t, msg)
			if got.version != want.version || !SameHeads(got.heads, want.heads) || got.haves != want.haves ||
				len(got.chunks) != 1 || len(got.tail) != 0 {
				t.Fatalf("answer laid out as %+v; a sync state's: %+v", got, want)
			}
			loaded := New()
			if err := loaded.LoadIncremental(got.chunks[0]); err != nil {
				t.Fatal(err)
			}
			if !SameHeads(loaded.Heads(), d.Heads()) {
				t.Fatal("the answer does not load as the document")
			}
		})
	}
	if _, _, err := WholeAnswer(nil, nil); err == nil {
		t.Error("nothing stored: answered")
	}
	if _, _, err := WholeAnswer([]byte("not automerge at all"), nil); err == nil {
		t.Error("garbage stored: answered")
	}
}

// StoredHeads (and so WholeAnswer) refuses bytes whose history has a hole:
// chunks left after a damaged one was quarantined name the heads of
// changes Automerge cannot apply, which are not the document's heads. A
// change depending on one inside a saved document other than its heads
// cannot be told from such a hole without Automerge, and is refused too.
func TestStoredHeadsRefuseAHoleInTheHistory(t *testing.T) {
	d := New()
	set(t, d, "first", "Ward 1", "room")
	first, err := d.SaveSince(nil)
	if err != nil {
		t.Fatal(err)
	}
	at := d.Heads()
	set(t, d, "second", "Ward 2", "room")
	second, err := d.SaveSince(at)
	if err != nil {
		t.Fatal(err)
	}
	if heads, err := StoredHeads(nil, [][]byte{first, second}); err != nil || !SameHeads(heads, d.Heads()) {
		t.Fatalf("whole history: StoredHeads = %x, %v; want the document's %x", heads, err, d.Heads())
	}
	if heads, err := StoredHeads(nil, [][]byte{second}); !errors.Is(err, ErrHistoryNotStored) {
		t.Fatalf("the first chunk lost: StoredHeads = %x, %v; want %v", heads, err, ErrHistoryNotStored)
	}
	if _, _, err := WholeAnswer(nil, [][]byte{second}); !errors.Is(err, ErrHistoryNotStored) {
		t.Fatalf("the first chunk lost: WholeAnswer = %v; want %v", err, ErrHistoryNotStored)
	}

	// Saved after a third change; then a change made on a copy that had
	// only the first arrives, and is stored after the saved document.
	set(t, d, "third", "Ward 3", "room")
	snapshot, saved := d.Save(), d.Heads()
	old, err := d.At(at)
	if err != nil {
		t.Fatal(err)
	}
	set(t, old, "offline", "Ward 9", "room")
	if err := d.Merge(old); err != nil {
		t.Fatal(err)
	}
	late, err := d.SaveSince(saved)
	if err != nil {
		t.Fatal(err)
	}
	if heads, err := StoredHeads(snapshot, [][]byte{late}); !errors.Is(err, ErrHistoryNotStored) {
		t.Fatalf("a change on a head inside the saved document: StoredHeads = %x, %v; want %v", heads, err, ErrHistoryNotStored)
	}
	// Saved again, the whole history is in the saved document.
	if heads, err := StoredHeads(d.Save(), nil); err != nil || !SameHeads(heads, d.Heads()) {
		t.Fatalf("saved whole: StoredHeads = %x, %v; want %x", heads, err, d.Heads())
	}
}
