package crdt

import (
	"slices"
	"testing"
	"time"
)

// ChunkChanges names exactly the changes a SaveSince chunk carries, and
// names none for a whole document or damaged bytes.
func TestChunkChangesNamesTheChunksChanges(t *testing.T) {
	d := New()
	d.Change("", time.Time{}, func(w *Writer) error { return w.Set("a", "k") })
	before := d.Heads()
	for i := range 3 {
		d.Change("", time.Time{}, func(w *Writer) error { return w.Set(int64(i), "n") })
	}
	chunk, err := d.SaveSince(before)
	if err != nil {
		t.Fatal(err)
	}
	got, ok := ChunkChanges(chunk)
	after, err := d.ChangesAfter(before)
	if err != nil {
		t.Fatal(err)
	}
	var want []Hash
	for _, c := range after {
		want = append(want, c.Hash)
	}
	slices.SortFunc(got, func(a, b Hash) int { return slices.Compare(a[:], b[:]) })
	slices.SortFunc(want, func(a, b Hash) int { return slices.Compare(a[:], b[:]) })
	if !ok || !slices.Equal(got, want) {
		t.Fatalf("ChunkChanges(SaveSince) = %v, %v; want %v", got, ok, want)
	}
	for name, b := range map[string][]byte{"whole document": d.Save(), "truncated": chunk[:len(chunkMagic)+3], "empty": nil} {
		if hs, ok := ChunkChanges(b); ok {
			t.Errorf("ChunkChanges(%s) = %v, true; want false", name, hs)
		}
	}
}
