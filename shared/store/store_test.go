package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"haven/shared/store"
)

var testKey = bytes.Repeat([]byte{0x5a}, 32)

// open opens dir with the test key and closes it when the test ends (a second Close is
// harmless, so tests may close earlier to reopen).
func open(t testing.TB, dir string) *store.Store {
	t.Helper()
	s, err := store.Open(dir, store.Options{Key: testKey})
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func closeStore(t testing.TB, s *store.Store) {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close() = %v", err)
	}
}

func appendChunks(t testing.TB, s *store.Store, doc string, chunks ...string) []uint64 {
	t.Helper()
	var seqs []uint64
	for _, c := range chunks {
		seq, err := s.AppendChunk(context.Background(), doc, []byte(c))
		if err != nil {
			t.Fatalf("AppendChunk(%s, %q) = %v", doc, c, err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// chunkText renders a doc's chunks as "seq:data" for comparison.
func chunkText(d store.Doc) string {
	var parts []string
	for _, c := range d.Chunks {
		parts = append(parts, fmt.Sprintf("%d:%s", c.Seq, c.Data))
	}
	return strings.Join(parts, " ")
}

func loadDoc(t testing.TB, s *store.Store, doc string) store.Doc {
	t.Helper()
	d, err := s.LoadDoc(doc)
	if err != nil {
		t.Fatalf("LoadDoc(%s) = %v", doc, err)
	}
	return d
}

// TestAppendLoadReopen: chunks come back in order with increasing seqs, per document, and
// survive reopening.
func TestAppendLoadReopen(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	if got := appendChunks(t, s, "doc-a", "one", "two", "three"); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("seqs = %v, want [1 2 3]", got)
	}
	appendChunks(t, s, "doc-b", "other")
	appendChunks(t, s, "doc-a\x01", "prefix neighbour") // shares a prefix with doc-a's keys
	closeStore(t, s)

	s = open(t, dir)
	d := loadDoc(t, s, "doc-a")
	if got, want := chunkText(d), "1:one 2:two 3:three"; got != want {
		t.Errorf("LoadDoc(doc-a) chunks = %q, want %q", got, want)
	}
	if d.Snapshot != nil || len(d.Quarantined) != 0 {
		t.Errorf("LoadDoc(doc-a) = snapshot %q, quarantined %v; want none", d.Snapshot, d.Quarantined)
	}
	if got := appendChunks(t, s, "doc-a", "four"); got[0] != 4 {
		t.Errorf("seq after reopen = %d, want 4", got[0])
	}
	if _, err := s.LoadDoc("missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LoadDoc(missing) = %v, want ErrNotFound", err)
	}
	docs, err := s.Docs()
	if err != nil || !slices.Equal(docs, []string{"doc-a", "doc-a\x01", "doc-b"}) {
		t.Errorf("Docs() = %q, %v", docs, err)
	}
}

// TestCompact: Compact replaces the snapshot and removes chunks up to upTo in one step; later
// chunks survive; seqs keep increasing after compaction and after reopening, even when every
// chunk was compacted away; stale or impossible compactions are refused.
func TestCompact(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	appendChunks(t, s, "doc", "c1", "c2", "c3", "c4", "c5")
	if err := s.Compact(ctx, "doc", []byte("snap-3"), 3); err != nil {
		t.Fatalf("Compact(upTo 3) = %v", err)
	}
	d := loadDoc(t, s, "doc")
	if string(d.Snapshot) != "snap-3" || d.UpTo != 3 || chunkText(d) != "4:c4 5:c5" {
		t.Errorf("after Compact: snapshot %q upTo %d chunks %q; want snap-3, 3, \"4:c4 5:c5\"", d.Snapshot, d.UpTo, chunkText(d))
	}
	if got := appendChunks(t, s, "doc", "c6"); got[0] != 6 {
		t.Errorf("seq after Compact = %d, want 6", got[0])
	}
	if err := s.Compact(ctx, "doc", []byte("old"), 2); !errors.Is(err, store.ErrStale) {
		t.Errorf("Compact(upTo 2 < stored 3) = %v, want ErrStale", err)
	}
	if err := s.Compact(ctx, "doc", []byte("future"), 99); err == nil {
		t.Errorf("Compact(upTo 99 beyond last chunk) = nil, want error")
	}
	closeStore(t, s)

	s = open(t, dir)
	if got := appendChunks(t, s, "doc", "c7"); got[0] != 7 {
		t.Errorf("seq after reopen = %d, want 7", got[0])
	}
	if err := s.Compact(ctx, "doc", []byte("snap-7"), 7); err != nil {
		t.Fatalf("Compact(upTo 7) = %v", err)
	}
	n, _, snapBytes, err := s.DocStats("doc")
	if err != nil || n != 0 || snapBytes != int64(len("snap-7")) {
		t.Errorf("DocStats after full compaction = %d chunks, %d snapshot bytes, %v", n, snapBytes, err)
	}
	closeStore(t, s)

	s = open(t, dir) // no chunk left: the counter alone must remember 7
	if got := appendChunks(t, s, "doc", "c8"); got[0] != 8 {
		t.Errorf("seq after compacting everything and reopening = %d, want 8", got[0])
	}
	d = loadDoc(t, s, "doc")
	if string(d.Snapshot) != "snap-7" || chunkText(d) != "8:c8" {
		t.Errorf("final doc: snapshot %q chunks %q", d.Snapshot, chunkText(d))
	}

	// A first snapshot received from a peer: upTo 0, no chunks.
	if err := s.Compact(ctx, "fresh", []byte("from relay"), 0); err != nil {
		t.Fatalf("Compact(fresh, upTo 0) = %v", err)
	}
	if d := loadDoc(t, s, "fresh"); string(d.Snapshot) != "from relay" || len(d.Chunks) != 0 {
		t.Errorf("LoadDoc(fresh) = %q, %d chunks", d.Snapshot, len(d.Chunks))
	}
	if got := appendChunks(t, s, "fresh", "x"); got[0] != 1 {
		t.Errorf("first chunk after a bootstrap snapshot has seq %d, want 1", got[0])
	}
}

// TestDocStats: counts and payload sizes, ErrNotFound for an unknown document.
func TestDocStats(t *testing.T) {
	s := open(t, t.TempDir())
	appendChunks(t, s, "doc", "12345", "123")
	n, cb, sb, err := s.DocStats("doc")
	if err != nil || n != 2 || cb != 8 || sb != 0 {
		t.Errorf("DocStats = %d, %d, %d, %v; want 2, 8, 0, nil", n, cb, sb, err)
	}
	if _, _, _, err := s.DocStats("nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DocStats(nope) = %v, want ErrNotFound", err)
	}
}

// TestQuarantineByCaller: a chunk the caller cannot use leaves the document, is listed, and
// stays quarantined after reopening; the same for a snapshot.
func TestQuarantineByCaller(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	appendChunks(t, s, "doc", "a", "b", "c")
	if err := s.Quarantine(ctx, "doc", 2, "automerge refused it"); err != nil {
		t.Fatalf("Quarantine = %v", err)
	}
	if err := s.Quarantine(ctx, "doc", 2, "again"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Quarantine of a quarantined chunk = %v, want ErrNotFound", err)
	}
	if err := s.Compact(ctx, "other", []byte("s"), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.QuarantineSnapshot(ctx, "other", "does not load"); err != nil {
		t.Fatalf("QuarantineSnapshot = %v", err)
	}
	closeStore(t, s)

	s = open(t, dir)
	d := loadDoc(t, s, "doc")
	if chunkText(d) != "1:a 3:c" {
		t.Errorf("chunks = %q, want \"1:a 3:c\"", chunkText(d))
	}
	if len(d.Quarantined) != 1 || d.Quarantined[0].Seq != 2 || d.Quarantined[0].Reason != "automerge refused it" {
		t.Errorf("Quarantined = %+v", d.Quarantined)
	}
	all, err := s.Quarantined()
	if err != nil || len(all) != 2 {
		t.Fatalf("Quarantined() = %+v, %v; want 2 items", all, err)
	}
	if q := all[1]; q.DocID != "other" || !q.Snapshot || q.Reason != "does not load" || q.Time.IsZero() {
		t.Errorf("snapshot quarantine = %+v", q)
	}
	if d := loadDoc(t, s, "other"); d.Snapshot != nil || len(d.Quarantined) != 1 {
		t.Errorf("LoadDoc(other) = %+v, want no snapshot and one quarantined item", d)
	}
}

// TestKV: Put/Get/Delete/Scan, namespaces kept apart, durability across reopening.
func TestKV(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	for _, kv := range [][3]string{
		{"devices", "dev-1", "alpha"}, {"devices", "dev-2", "beta"}, {"devices", "other-1", "gamma"},
		{"devices2", "dev-9", "not mine"}, {"accounts", "dev-1", "not mine either"},
	} {
		if err := s.Put(ctx, kv[0], kv[1], []byte(kv[2])); err != nil {
			t.Fatalf("Put(%q) = %v", kv, err)
		}
	}
	if err := s.Put(ctx, "devices", "dev-2", []byte("beta2")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "devices", "other-1"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, "devices", "never-existed"); err != nil {
		t.Errorf("Delete(missing) = %v, want nil", err)
	}
	closeStore(t, s)

	s = open(t, dir)
	if v, err := s.Get("devices", "dev-2"); err != nil || string(v) != "beta2" {
		t.Errorf("Get(dev-2) = %q, %v", v, err)
	}
	if _, err := s.Get("devices", "other-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(deleted) = %v, want ErrNotFound", err)
	}
	var got []string
	err := s.Scan("devices", "dev-", func(k string, v []byte) error {
		got = append(got, k+"="+string(v))
		return nil
	})
	if want := []string{"dev-1=alpha", "dev-2=beta2"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("Scan(devices, dev-) = %q, %v; want %q", got, err, want)
	}
	stop := errors.New("stop")
	n := 0
	err = s.Scan("devices", "", func(string, []byte) error { n++; return stop })
	if err != stop || n != 1 {
		t.Errorf("Scan stopping early = %v after %d calls; want the callback's error after 1", err, n)
	}
	if err := s.Put(ctx, "bad\x00ns", "k", nil); err == nil {
		t.Errorf("Put with a 0x00 in the namespace = nil, want error")
	}
}

// TestLog: seqs start at 1 and increase per log, logs are independent (even when one name
// prefixes another), ReadLog resumes after a seq, and it all survives reopening.
func TestLog(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, dir)
	for i := 1; i <= 3; i++ {
		seq, err := s.AppendLog(ctx, "audit", fmt.Appendf(nil, "event %d", i))
		if err != nil || seq != uint64(i) {
			t.Fatalf("AppendLog #%d = %d, %v", i, seq, err)
		}
	}
	if seq, err := s.AppendLog(ctx, "audit2", []byte("elsewhere")); err != nil || seq != 1 {
		t.Fatalf("AppendLog(audit2) = %d, %v; want 1", seq, err)
	}
	closeStore(t, s)

	s = open(t, dir)
	if seq, err := s.AppendLog(ctx, "audit", []byte("event 4")); err != nil || seq != 4 {
		t.Fatalf("AppendLog after reopen = %d, %v; want 4", seq, err)
	}
	// Several in one write: numbered on from the last, in order.
	if seq, err := s.AppendLogs(ctx, "audit", [][]byte{[]byte("event 5"), []byte("event 6")}); err != nil || seq != 5 {
		t.Fatalf("AppendLogs = %d, %v; want the first numbered 5", seq, err)
	}
	if _, err := s.AppendLogs(ctx, "audit", [][]byte{[]byte("event 7"), make([]byte, store.MaxValueSize+1)}); err == nil {
		t.Fatal("AppendLogs took a value over the size limit")
	}
	closeStore(t, s)
	s = open(t, dir)
	var got []string
	err := s.ReadLog("audit", 1, func(seq uint64, v []byte) error {
		got = append(got, fmt.Sprintf("%d:%s", seq, v))
		return nil
	})
	if want := []string{"2:event 2", "3:event 3", "4:event 4", "5:event 5", "6:event 6"}; err != nil || !slices.Equal(got, want) {
		t.Errorf("ReadLog(audit, after 1) = %q, %v; want %q (a refused batch adds nothing)", got, err, want)
	}
}

// TestSyncStates: one state per (peer, doc), replaced on Put, and DeleteSyncStates removes one
// peer's states only (not a peer whose ID extends it).
func TestSyncStates(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir())
	for _, p := range [][3]string{{"peer", "d1", "s1"}, {"peer", "d2", "s2"}, {"peer2", "d1", "other"}, {"peer", "d1", "s1b"}} {
		if err := s.PutSyncState(ctx, p[0], p[1], []byte(p[2])); err != nil {
			t.Fatal(err)
		}
	}
	if v, err := s.SyncState("peer", "d1"); err != nil || string(v) != "s1b" {
		t.Errorf("SyncState(peer, d1) = %q, %v", v, err)
	}
	if err := s.DeleteSyncStates("peer"); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"d1", "d2"} {
		if _, err := s.SyncState("peer", d); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SyncState(peer, %s) after delete = %v, want ErrNotFound", d, err)
		}
	}
	if v, err := s.SyncState("peer2", "d1"); err != nil || string(v) != "other" {
		t.Errorf("SyncState(peer2, d1) = %q, %v; another peer's state must survive", v, err)
	}
}

// TestLargeChunk: a chunk above the inline limit lives in Badger's value log and comes back
// intact after reopening; one above MaxValueSize is refused.
func TestLargeChunk(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	big := bytes.Repeat([]byte("0123456789abcdef"), 3<<20/16)
	if _, err := s.AppendChunk(context.Background(), "doc", big); err != nil {
		t.Fatalf("AppendChunk(3 MiB) = %v", err)
	}
	if _, err := s.AppendChunk(context.Background(), "doc", make([]byte, store.MaxValueSize+1)); !errors.Is(err, store.ErrTooLarge) {
		t.Errorf("AppendChunk(too large) = %v, want ErrTooLarge", err)
	}
	closeStore(t, s)
	s = open(t, dir)
	d := loadDoc(t, s, "doc")
	if len(d.Chunks) != 1 || !bytes.Equal(d.Chunks[0].Data, big) {
		t.Errorf("large chunk did not survive reopening (%d chunks)", len(d.Chunks))
	}
}

// TestChunksAroundTheInlineLimit: with the smallest memtable, where the
// inline limit comes closest to the largest transaction Badger accepts, a
// chunk of every size around the limit is stored and survives reopening
// (a value kept inline must fit in a transaction with its key).
func TestChunksAroundTheInlineLimit(t *testing.T) {
	dir := t.TempDir()
	const memtable = 1 << 20
	opts := store.Options{Key: testKey, MemTableSize: memtable}
	s, err := store.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	txnLimit := memtable * 15 / 100
	var sizes []int
	for d := -512; d <= 512; d += 32 {
		sizes = append(sizes, txnLimit+d)
	}
	for i, n := range sizes {
		if _, err := s.AppendChunk(context.Background(), "doc", bytes.Repeat([]byte{byte(i)}, n)); err != nil {
			t.Fatalf("AppendChunk(%d bytes) with a %d-byte memtable = %v", n, memtable, err)
		}
	}
	s.Close()
	if s, err = store.Open(dir, opts); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := loadDoc(t, s, "doc")
	if len(d.Chunks) != len(sizes) {
		t.Fatalf("%d chunks after reopening, want %d", len(d.Chunks), len(sizes))
	}
	for i, c := range d.Chunks {
		if !bytes.Equal(c.Data, bytes.Repeat([]byte{byte(i)}, sizes[i])) {
			t.Errorf("chunk %d (%d bytes) came back as %d bytes", i, sizes[i], len(c.Data))
		}
	}
}

// TestOpenKeyErrors: a missing key is refused; a wrong key fails clearly, naming the folder,
// and leaves the folder usable with the right key.
func TestOpenKeyErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := store.Open(dir, store.Options{}); err == nil {
		t.Fatalf("Open without a key = nil, want error")
	}
	s := open(t, dir)
	appendChunks(t, s, "doc", "x")
	closeStore(t, s)

	wrong := bytes.Repeat([]byte{0x01}, 32)
	_, err := store.Open(dir, store.Options{Key: wrong})
	if !errors.Is(err, store.ErrWrongKey) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open with the wrong key = %v; want ErrWrongKey naming %s", err, dir)
	}
	t.Logf("wrong key: %v", err)
	s = open(t, dir)
	if d := loadDoc(t, s, "doc"); chunkText(d) != "1:x" {
		t.Errorf("after a failed open: chunks %q", chunkText(d))
	}
}

// TestOpenLockedSameProcess: a second Open of an open folder fails with ErrLocked and a
// message naming the folder; once closed, it opens.
func TestOpenLockedSameProcess(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	_, err := store.Open(dir, store.Options{Key: testKey})
	want := fmt.Sprintf("data folder %s is already in use by another Haven process", dir)
	if !errors.Is(err, store.ErrLocked) || err.Error() != want {
		t.Fatalf("second Open = %v; want ErrLocked saying %q", err, want)
	}
	closeStore(t, s)
	open(t, dir)
}

// TestClosed: every method fails with ErrClosed after Close; Close twice is fine.
func TestClosed(t *testing.T) {
	s := open(t, t.TempDir())
	closeStore(t, s)
	ctx := context.Background()
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	errs := map[string]error{}
	_, errs["AppendChunk"] = s.AppendChunk(ctx, "d", nil)
	_, errs["LoadDoc"] = s.LoadDoc("d")
	errs["Put"] = s.Put(ctx, "ns", "k", nil)
	_, errs["Get"] = s.Get("ns", "k")
	errs["Scan"] = s.Scan("ns", "", func(string, []byte) error { return nil })
	_, errs["AppendLog"] = s.AppendLog(ctx, "l", nil)
	errs["PutSyncState"] = s.PutSyncState(ctx, "p", "d", nil)
	_, errs["Docs"] = s.Docs()
	for name, err := range errs {
		if !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close = %v, want ErrClosed", name, err)
		}
	}
}

// TestCloseDuringWrites: writers racing Close either get a seq, and then the chunk is on disk,
// or ErrClosed; Close waits for the former.
func TestCloseDuringWrites(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		acked    = map[uint64]string{}
		firstAck = make(chan struct{})
		once     sync.Once
	)
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				data := fmt.Sprintf("w%d-%d", w, i)
				seq, err := s.AppendChunk(context.Background(), "doc", []byte(data))
				if errors.Is(err, store.ErrClosed) {
					return
				}
				if err != nil {
					t.Errorf("AppendChunk = %v", err)
					return
				}
				mu.Lock()
				acked[seq] = data
				mu.Unlock()
				once.Do(func() { close(firstAck) })
			}
		})
	}
	<-firstAck // the writers are going: close under them
	closeStore(t, s)
	wg.Wait()

	s = open(t, dir)
	d := loadDoc(t, s, "doc")
	got := map[uint64]string{}
	for _, c := range d.Chunks {
		got[c.Seq] = string(c.Data)
	}
	for seq, data := range acked {
		if got[seq] != data {
			t.Errorf("acknowledged chunk %d = %q after reopening, want %q", seq, got[seq], data)
		}
	}
}

// TestCancelledContext: a write whose ctx has ended is not made.
func TestCancelledContext(t *testing.T) {
	s := open(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.AppendChunk(ctx, "doc", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Errorf("AppendChunk(cancelled) = %v, want context.Canceled", err)
	}
	if _, err := s.LoadDoc("doc"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LoadDoc after a cancelled append = %v, want ErrNotFound", err)
	}
}

// TestNames: names that would break the key layout are refused.
func TestNames(t *testing.T) {
	s := open(t, t.TempDir())
	ctx := context.Background()
	for _, id := range []string{"", "a\x00b", strings.Repeat("x", 513)} {
		if _, err := s.AppendChunk(ctx, id, nil); err == nil {
			t.Errorf("AppendChunk(%q) = nil, want error", id)
		}
	}
}

// TestPutManyLargerThanATransaction: a hub's desktop saves a list row for
// every document of its homes in one PutMany, several MiB in all, more than
// one Badger transaction holds: every value is stored, and survives
// reopening.
func TestPutManyLargerThanATransaction(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	vals := map[string][]byte{}
	for i := range 4000 { // 40 homes of 50 residents, two documents each: about 4 MiB of rows
		vals[fmt.Sprintf("doc-%04d", i)] = bytes.Repeat([]byte{byte(i)}, 1000)
	}
	if err := s.PutMany(context.Background(), "rows", vals); err != nil {
		t.Fatalf("PutMany(%d values of 1,000 bytes) = %v", len(vals), err)
	}
	closeStore(t, s)
	s = open(t, dir)
	for k, want := range vals {
		got, err := s.Get("rows", k)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("Get(%s) after reopening = %d bytes, %v", k, len(got), err)
		}
	}
}

func TestPutManyAndLastSeq(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	ctx := context.Background()
	if err := s.PutMany(ctx, "rows", map[string][]byte{"a": []byte("1"), "b": []byte("2")}); err != nil {
		t.Fatal(err)
	}
	if seq, err := s.LastSeq("doc"); err != nil || seq != 0 {
		t.Fatalf("LastSeq of a document never stored = %d, %v", seq, err)
	}
	for i := 0; i < 3; i++ {
		if _, err := s.AppendChunk(ctx, "doc", []byte("chunk")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, dir)
	defer s.Close()
	for k, want := range map[string]string{"a": "1", "b": "2"} {
		if v, err := s.Get("rows", k); err != nil || string(v) != want {
			t.Fatalf("Get(%s) = %q, %v", k, v, err)
		}
	}
	if seq, err := s.LastSeq("doc"); err != nil || seq != 3 {
		t.Fatalf("LastSeq = %d, %v; want 3", seq, err)
	}
	if err := s.PutSyncStates(ctx, []store.SyncStateEntry{{Peer: "p", Doc: "d1", State: []byte("s1")}, {Peer: "p", Doc: "d2", State: []byte("s2")}}); err != nil {
		t.Fatal(err)
	}
	if v, err := s.SyncState("p", "d2"); err != nil || string(v) != "s2" {
		t.Fatalf("SyncState after PutSyncStates = %q, %v", v, err)
	}
}

// A write-ahead log damaged in the middle makes Badger open without the
// writes after the damage; the store notices and says so.
func TestLostWritesAreReported(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir)
	for i := 0; i < 5; i++ {
		if _, err := s.AppendChunk(context.Background(), "doc", []byte("chunk")); err != nil {
			t.Fatal(err)
		}
	}
	if s.Damage() != "" {
		t.Fatalf("fresh store reports damage: %s", s.Damage())
	}
	s.Close()
	s = open(t, dir)
	if s.Damage() != "" {
		t.Fatalf("an ordinary reopen reports damage: %s", s.Damage())
	}
	s.Close()
	// Stand in for the damage: the witness says more commits were made than
	// the store recovered.
	b, err := os.ReadFile(filepath.Join(dir, "HAVEN-MARK"))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(string(b), &n)
	os.WriteFile(filepath.Join(dir, "HAVEN-MARK"), []byte(fmt.Sprint(n+3)), 0o600)
	s = open(t, dir)
	if !strings.Contains(s.Damage(), "3 most recent writes") {
		t.Fatalf("Damage() = %q, want the 3 lost commits named", s.Damage())
	}
	s.Close()
	s = open(t, dir)
	defer s.Close()
	if s.Damage() != "" {
		t.Fatalf("damage reported again after it was reported: %s", s.Damage())
	}
}

// A table cut short (a failing disk, a copy that stopped half way) must give
// a plain error at open, not a crash: Badger reads table footers on its own
// goroutines, where a panic cannot be recovered.
func TestTruncatedTableIsAnErrorNotACrash(t *testing.T) {
	ref, tables, st := storeWithATable(t)
	for _, keep := range []int64{0, 3, 7, st.Size() / 3, st.Size() / 2, st.Size() - 1, st.Size() - 5} {
		dir := t.TempDir()
		copyFolder(t, ref, dir)
		if err := os.Truncate(filepath.Join(dir, filepath.Base(tables[0])), keep); err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(dir, store.Options{Key: testKey})
		if err == nil {
			s.Close()
			t.Fatalf("table cut to %d of %d bytes: opened without a word", keep, st.Size())
		}
		if !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), dir) {
			t.Fatalf("table cut to %d bytes: error %q does not say the folder %s is damaged", keep, err, dir)
		}
	}
}

// A byte flipped inside a table (bit rot, a bad sector) must give a plain
// error at open, not a crash and not a store that hides what the damaged
// block held: Badger's own check at open dereferences a nil block on a
// damaged one, in a goroutine of its own.
func TestFlippedTableByteIsAnErrorNotACrash(t *testing.T) {
	ref, tables, st := storeWithATable(t)
	for _, at := range []int64{16, st.Size() / 4, st.Size() / 3, st.Size() / 2} {
		dir := t.TempDir()
		copyFolder(t, ref, dir)
		name := filepath.Join(dir, filepath.Base(tables[0]))
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		b[at] ^= 0x40
		if err := os.WriteFile(name, b, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(dir, store.Options{Key: testKey})
		if err == nil {
			s.Close()
			t.Fatalf("byte %d of %d flipped: opened without a word", at, st.Size())
		}
		if !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), dir) {
			t.Fatalf("byte %d flipped: error %q does not say the folder %s is damaged", at, err, dir)
		}
	}
}

// storeWithATable makes a closed store whose chunks are in a table (Close
// flushes the memtable into one), and returns its folder, its tables and
// the first table's size.
func storeWithATable(t *testing.T) (string, []string, os.FileInfo) {
	t.Helper()
	ref := t.TempDir()
	s := open(t, ref)
	for i := 0; i < 200; i++ {
		if _, err := s.AppendChunk(context.Background(), fmt.Sprintf("doc%03d", i), bytes.Repeat([]byte{byte(i)}, 500)); err != nil {
			t.Fatal(err)
		}
	}
	closeStore(t, s)
	tables, _ := filepath.Glob(filepath.Join(ref, "*.sst"))
	if len(tables) == 0 {
		t.Fatal("no table written at close")
	}
	st, err := os.Stat(tables[0])
	if err != nil {
		t.Fatal(err)
	}
	return ref, tables, st
}

func copyFolder(t *testing.T, src, dst string) {
	t.Helper()
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, e.Name()), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
