package store

import (
	"bytes"
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/dgraph-io/badger/v4"
)

var internalKey = bytes.Repeat([]byte{0xa5}, 32)

func openInternal(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(dir, Options{Key: internalKey})
	if err != nil {
		t.Fatalf("Open(%s) = %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustAppend(t testing.TB, s *Store, doc string, chunks ...string) {
	t.Helper()
	for _, c := range chunks {
		if _, err := s.AppendChunk(context.Background(), doc, []byte(c)); err != nil {
			t.Fatalf("AppendChunk(%s, %q) = %v", doc, c, err)
		}
	}
}

// damage rewrites the stored value under key through Badger directly, as a disk fault would.
func damage(t *testing.T, s *Store, key []byte, f func([]byte) []byte) {
	t.Helper()
	err := s.db.Update(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if err != nil {
			return err
		}
		v, err := item.ValueCopy(nil)
		if err != nil {
			return err
		}
		return txn.Set(key, f(v))
	})
	if err != nil {
		t.Fatalf("damage(%q) = %v", key, err)
	}
}

func chunkSeqs(d Doc) []uint64 {
	var seqs []uint64
	for _, c := range d.Chunks {
		seqs = append(seqs, c.Seq)
	}
	return seqs
}

var damages = []struct {
	name string
	f    func([]byte) []byte
}{
	{"truncated", func(b []byte) []byte { return b[:len(b)-2] }},
	{"bit flipped", func(b []byte) []byte { c := bytes.Clone(b); c[len(c)-1] ^= 0x08; return c }},
	{"header only", func(b []byte) []byte { return b[:5] }},
	{"empty", func(b []byte) []byte { return []byte{} }},
}

// TestDamagedChunkQuarantined: LoadDoc returns the sound chunks, reports the damaged one, and
// has moved it durably: after reopening it is still reported as quarantined, never again as a
// chunk, its bytes are kept, and seqs carry on past it.
func TestDamagedChunkQuarantined(t *testing.T) {
	for _, dmg := range damages {
		t.Run(dmg.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openInternal(t, dir)
			mustAppend(t, s, "doc", "one", "two", "three")
			var original []byte
			damage(t, s, chunkKey("doc", 2), func(b []byte) []byte { original = dmg.f(b); return original })

			d, err := s.LoadDoc("doc")
			if err != nil {
				t.Fatalf("LoadDoc = %v", err)
			}
			if got := chunkSeqs(d); !slices.Equal(got, []uint64{1, 3}) {
				t.Errorf("chunks = %v, want [1 3]", got)
			}
			if len(d.Quarantined) != 1 || d.Quarantined[0].Seq != 2 || d.Quarantined[0].Size != len(original) ||
				!strings.Contains(d.Quarantined[0].Reason, "corrupt") {
				t.Errorf("Quarantined = %+v, want chunk 2 (%d bytes) as corrupt", d.Quarantined, len(original))
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = openInternal(t, dir)
			d, err = s.LoadDoc("doc")
			if err != nil {
				t.Fatalf("LoadDoc after reopen = %v", err)
			}
			if got := chunkSeqs(d); !slices.Equal(got, []uint64{1, 3}) {
				t.Errorf("chunks after reopen = %v, want [1 3]", got)
			}
			if len(d.Quarantined) != 1 || d.Quarantined[0].Seq != 2 {
				t.Errorf("Quarantined after reopen = %+v, want chunk 2 only once", d.Quarantined)
			}
			err = s.db.View(func(txn *badger.Txn) error {
				item, err := txn.Get(quarantineDataKey("doc", 2))
				if err != nil {
					return err
				}
				kept, err := item.ValueCopy(nil)
				if !bytes.Equal(kept, original) {
					t.Errorf("kept bytes = %x, want %x", kept, original)
				}
				return err
			})
			if err != nil {
				t.Errorf("reading the kept bytes: %v", err)
			}
			if seq, err := s.AppendChunk(context.Background(), "doc", []byte("four")); err != nil || seq != 4 {
				t.Errorf("AppendChunk after quarantine = %d, %v; want 4", seq, err)
			}
		})
	}
}

// TestDamagedSnapshotQuarantined: a damaged snapshot is quarantined and reported, the chunks
// after it still load, it stays quarantined after reopening, and a new Compact is accepted.
func TestDamagedSnapshotQuarantined(t *testing.T) {
	for _, dmg := range damages {
		t.Run(dmg.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			s := openInternal(t, dir)
			mustAppend(t, s, "doc", "one", "two", "three")
			if err := s.Compact(ctx, "doc", []byte("snapshot of one and two"), 2); err != nil {
				t.Fatal(err)
			}
			mustAppend(t, s, "doc", "four")
			damage(t, s, snapshotKey("doc"), dmg.f)

			d, err := s.LoadDoc("doc")
			if err != nil {
				t.Fatalf("LoadDoc = %v", err)
			}
			if d.Snapshot != nil || !slices.Equal(chunkSeqs(d), []uint64{3, 4}) {
				t.Errorf("LoadDoc = snapshot %q, chunks %v; want none, [3 4]", d.Snapshot, chunkSeqs(d))
			}
			if len(d.Quarantined) != 1 || !d.Quarantined[0].Snapshot {
				t.Errorf("Quarantined = %+v, want the snapshot", d.Quarantined)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = openInternal(t, dir)
			d, err = s.LoadDoc("doc")
			if err != nil || d.Snapshot != nil || !slices.Equal(chunkSeqs(d), []uint64{3, 4}) || len(d.Quarantined) != 1 {
				t.Errorf("after reopen: %+v, %v", d, err)
			}
			if err := s.Compact(ctx, "doc", []byte("rebuilt"), 4); err != nil {
				t.Errorf("Compact after the snapshot was quarantined = %v", err)
			}
			if seq, err := s.AppendChunk(ctx, "doc", []byte("five")); err != nil || seq <= 4 {
				t.Errorf("AppendChunk = %d, %v; want a seq above 4", seq, err)
			}
		})
	}
}

// TestDamagedValueLogQuarantined flips a byte in Badger's value log file on disk, under a
// chunk too large to be stored inline. Whatever Badger makes of it (a checksum error, or a
// truncated log), LoadDoc reports that chunk as quarantined and returns the others.
func TestDamagedValueLogQuarantined(t *testing.T) {
	dir := t.TempDir()
	s := openInternal(t, dir)
	mustAppend(t, s, "doc", "small")
	mustAppend(t, s, "doc", strings.Repeat("large chunk ", 200_000)) // 2.4 MB, > inline limit
	mustAppend(t, s, "doc", "small again")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	vlogs, _ := filepath.Glob(filepath.Join(dir, "*.vlog"))
	var biggest string
	var size int64
	for _, p := range vlogs {
		if fi, err := os.Stat(p); err == nil && fi.Size() > size {
			biggest, size = p, fi.Size()
		}
	}
	if size < 2_000_000 {
		t.Fatalf("no value log holds the large chunk: %v", vlogs)
	}
	b, err := os.ReadFile(biggest)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	if err := os.WriteFile(biggest, b, 0o600); err != nil {
		t.Fatal(err)
	}

	s = openInternal(t, dir)
	d, err := s.LoadDoc("doc")
	if err != nil {
		t.Fatalf("LoadDoc = %v", err)
	}
	if got := chunkSeqs(d); !slices.Equal(got, []uint64{1, 3}) {
		t.Errorf("chunks = %v, want [1 3]", got)
	}
	if len(d.Quarantined) != 1 || d.Quarantined[0].Seq != 2 {
		t.Fatalf("Quarantined = %+v, want chunk 2", d.Quarantined)
	}
	t.Logf("quarantined: %s", d.Quarantined[0].Reason)
}

// runQueued runs each call in its own goroutine, holding the writer on the first until all
// of them are queued, so they reach the writer together; then it waits for them.
func runQueued(s *Store, calls ...func()) {
	var (
		queued  sync.WaitGroup
		started = make(chan struct{})
		release = make(chan struct{})
		first   atomic.Bool
	)
	queued.Add(len(calls))
	s.hooks.enqueued = queued.Done
	s.hooks.batchStart = func() {
		if first.CompareAndSwap(false, true) {
			close(started)
			<-release
		}
	}
	var wg sync.WaitGroup
	wg.Go(calls[0])
	<-started
	for _, c := range calls[1:] {
		wg.Go(c)
	}
	queued.Wait()
	close(release)
	wg.Wait()
	s.hooks = testHooks{} // the writer is idle again: no op is in flight
}

// appendCalls returns n calls appending chunk i (of size bytes) to doc, recording seqs.
func appendCalls(t *testing.T, s *Store, doc string, n, size int, seqs []uint64) []func() {
	calls := make([]func(), n)
	for i := range calls {
		calls[i] = func() {
			chunk := bytes.Repeat([]byte{byte(i)}, size)
			seq, err := s.AppendChunk(context.Background(), doc, chunk)
			if err != nil {
				t.Errorf("AppendChunk #%d = %v", i, err)
			}
			seqs[i] = seq
		}
	}
	return calls
}

// TestGroupCommit: 64 concurrent appends that queue up while the writer is busy are committed
// (and synced) in one transaction, not 64, and get seqs 1..64.
func TestGroupCommit(t *testing.T) {
	s := openInternal(t, t.TempDir())
	const n = 64
	seqs := make([]uint64, n)
	before := s.commits.Load()
	runQueued(s, appendCalls(t, s, "doc", n, 10, seqs)...)
	if got := s.commits.Load() - before; got != 1 {
		t.Errorf("%d concurrent appends took %d commits, want 1", n, got)
	}
	slices.Sort(seqs)
	for i, seq := range seqs {
		if seq != uint64(i+1) {
			t.Fatalf("seqs = %v, want 1..%d each once", seqs, n)
		}
	}
}

// TestBatchTooBig: when the queued ops together are more than one Badger transaction holds,
// each is committed on its own; all succeed, with consecutive seqs and intact data.
func TestBatchTooBig(t *testing.T) {
	s := openInternal(t, t.TempDir())
	s.maxBatch = 1 << 30         // let the writer gather more than a transaction holds
	const n, size = 4, 700 << 10 // inline values (< 1 MiB), 2.8 MB together
	seqs := make([]uint64, n)
	before := s.commits.Load()
	runQueued(s, appendCalls(t, s, "doc", n, size, seqs)...)
	if got := s.commits.Load() - before; got != n {
		t.Errorf("commits = %d, want %d (one per op after the batch failed)", got, n)
	}
	d, err := s.LoadDoc("doc")
	if err != nil {
		t.Fatal(err)
	}
	if got := chunkSeqs(d); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Fatalf("chunks = %v, want [1 2 3 4]", got)
	}
	for i, seq := range seqs {
		if c := d.Chunks[seq-1]; len(c.Data) != size || c.Data[0] != byte(i) {
			t.Errorf("chunk %d holds %d bytes of %d, want %d of %d", seq, len(c.Data), c.Data[0], size, i)
		}
	}
}

const canary = "CANARY-Haven-9990000018"

// filesContaining lists the files under dir whose bytes contain needle.
func filesContaining(t *testing.T, dir, needle string) []string {
	t.Helper()
	var hits []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(b, []byte(needle)) {
			hits = append(hits, filepath.Base(path))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

// writeCanaries puts the canary into every kind of value: a chunk, a large chunk (value log),
// a snapshot, a sync state, a key/value and a log entry.
func writeCanaries(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	large := strings.Repeat("x", 1<<20) + canary + strings.Repeat("y", 100<<10)
	steps := []error{
		func() error { _, err := s.AppendChunk(ctx, "doc", []byte("note: "+canary)); return err }(),
		func() error { _, err := s.AppendChunk(ctx, "doc", []byte(large)); return err }(),
		s.Compact(ctx, "doc2", []byte("snapshot "+canary), 0),
		s.PutSyncState(ctx, "peer", "doc", []byte("state "+canary)),
		s.Put(ctx, "ns", "key", []byte("value "+canary)),
		func() error { _, err := s.AppendLog(ctx, "audit", []byte("event "+canary)); return err }(),
	}
	for i, err := range steps {
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
}

// TestEncryptedAtRest: with the store's options no file under the data folder contains the
// canary, neither while the store is open (write-ahead and value logs) nor after Close
// (tables).
func TestEncryptedAtRest(t *testing.T) {
	dir := t.TempDir()
	s := openInternal(t, dir)
	writeCanaries(t, s)
	if hits := filesContaining(t, dir, canary); len(hits) > 0 {
		t.Errorf("plaintext on disk while open, in %v", hits)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if hits := filesContaining(t, dir, canary); len(hits) > 0 {
		t.Errorf("plaintext on disk after Close, in %v", hits)
	}
	s = openInternal(t, dir)
	if v, err := s.Get("ns", "key"); err != nil || !strings.Contains(string(v), canary) {
		t.Errorf("Get after reopen = %q, %v", v, err)
	}
}

// TestCanaryVisibleWithoutEncryption is the control for TestEncryptedAtRest: the same options
// without a key leave the canary readable in the files, so the search above would find it.
func TestCanaryVisibleWithoutEncryption(t *testing.T) {
	dir := t.TempDir()
	bo, _ := badgerOptions(dir, Options{}, slog.New(slog.DiscardHandler))
	db, err := badger.Open(bo)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(txn *badger.Txn) error {
		if err := txn.Set([]byte("inline"), encodeFrame([]byte("note: "+canary))); err != nil {
			return err
		}
		return txn.Set([]byte("large"), encodeFrame([]byte(strings.Repeat("x", 1<<20)+canary)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if hits := filesContaining(t, dir, canary); len(hits) < 2 {
		t.Errorf("unencrypted, open: canary found in %v, want the write-ahead log and the value log", hits)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if hits := filesContaining(t, dir, canary); len(hits) < 2 {
		t.Errorf("unencrypted, closed: canary found in %v, want a table and the value log", hits)
	}
}

// FuzzDecodeFrame: decoding never panics, accepts exactly what encodeFrame produces, and
// rejects any change to it.
func FuzzDecodeFrame(f *testing.F) {
	f.Add([]byte("chunk"), []byte{})
	f.Add([]byte{}, []byte{0x01, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, payload, junk []byte) {
		decodeFrame(junk) // must not panic
		fr := encodeFrame(payload)
		got, err := decodeFrame(fr)
		if err != nil || !bytes.Equal(got, payload) {
			t.Fatalf("decodeFrame(encodeFrame(%x)) = %x, %v", payload, got, err)
		}
		if len(junk) > 0 {
			bad := bytes.Clone(fr)
			i := int(junk[0]) % len(bad)
			bad[i] ^= 1 << (junk[len(junk)-1] % 8)
			if _, err := decodeFrame(bad); err == nil {
				t.Fatalf("decodeFrame accepted a frame with bit flipped at %d", i)
			}
		}
	})
}
