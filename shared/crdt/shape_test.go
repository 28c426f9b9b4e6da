package crdt

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// shapedDoc makes a document of changes changes, each setting opsEach new
// keys (so every operation stays in the op set), with values long enough
// that Automerge deflates the larger columns of its save.
func shapedDoc(t testing.TB, changes, opsEach int) *Doc {
	t.Helper()
	d := New()
	for c := range changes {
		_, err := d.Change("", time.Unix(int64(c), 0), func(w *Writer) error {
			for o := range opsEach {
				if err := w.Set(fmt.Sprintf("value %d.%d %s", c, o, strings.Repeat("x", o%7)), fmt.Sprintf("k%d.%d", c, o)); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return d
}

// ShapeOf counts what Automerge saved: a whole document, the change chunks
// saved since some heads, and the two concatenated as a store holds them.
func TestShapeOfCountsChangesAndOps(t *testing.T) {
	for _, c := range []struct{ changes, opsEach int }{{1, 1}, {1, 500}, {40, 3}, {600, 1}} {
		d := shapedDoc(t, c.changes, c.opsEach)
		want := Shape{Changes: int64(c.changes), Ops: int64(c.changes * c.opsEach)}
		saved := d.Save()
		if got, err := ShapeOf(saved); err != nil || got != want {
			t.Errorf("%d×%d: ShapeOf(Save()) = %+v, %v, want %+v", c.changes, c.opsEach, got, err, want)
		}

		heads := d.Heads()
		more := shapedDoc(t, 0, 0)
		if err := more.Merge(d); err != nil {
			t.Fatal(err)
		}
		if _, err := more.Change("", time.Unix(1e6, 0), func(w *Writer) error {
			return errors.Join(w.Set("a", "later1"), w.Set("b", "later2"))
		}); err != nil {
			t.Fatal(err)
		}
		if _, err := more.Change("", time.Unix(1e6+1, 0), func(w *Writer) error { return w.Set("c", "later3") }); err != nil {
			t.Fatal(err)
		}
		tail, err := more.SaveSince(heads)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ShapeOf(tail); err != nil || got != (Shape{Changes: 2, Ops: 3}) {
			t.Errorf("%d×%d: ShapeOf(SaveSince) = %+v, %v, want 2 changes, 3 ops", c.changes, c.opsEach, got, err)
		}
		both := want.Add(Shape{Changes: 2, Ops: 3})
		if got, err := ShapeOf(append(saved, tail...)); err != nil || got != both {
			t.Errorf("%d×%d: ShapeOf(snapshot+chunks) = %+v, %v, want %+v", c.changes, c.opsEach, got, err, both)
		}
	}
}

// A change chunk counts as one change with its operations, as DecodeChange
// reads them; so does the same change compressed whole.
func TestShapeOfChangeChunksAgreesWithDecodeChange(t *testing.T) {
	d := shapedDoc(t, 3, 200)
	raws, err := d.RawChangesSince(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i, raw := range raws {
		c, err := DecodeChange(raw)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := ShapeOf(raw); err != nil || got != (Shape{Changes: 1, Ops: int64(len(c.Ops))}) {
			t.Errorf("change %d: ShapeOf = %+v, %v, want 1 change, %d ops", i, got, err, len(c.Ops))
		}
	}
	// An empty document saves no chunk worth counting, and nothing is nothing.
	if got, err := ShapeOf(New().Save()); err != nil || got != (Shape{}) {
		t.Errorf("ShapeOf(empty document) = %+v, %v, want zero", got, err)
	}
	if got, err := ShapeOf(nil); err != nil || got != (Shape{}) {
		t.Errorf("ShapeOf(nil) = %+v, %v, want zero", got, err)
	}
}

// Damaged bytes are an error, never a panic or a count out of nowhere.
func TestShapeOfRefusesDamage(t *testing.T) {
	saved := shapedDoc(t, 5, 5).Save()
	for name, b := range map[string][]byte{
		"not a chunk": []byte("hello, world"),
		"truncated":   saved[:len(saved)/2],
		"trailing":    append(saved[:len(saved):len(saved)], 0x85, 0x6f),
		"bad type":    append(append([]byte{}, saved[:8]...), append([]byte{9}, saved[9:]...)...),
	} {
		if _, err := ShapeOf(b); !errors.Is(err, ErrBadShape) {
			t.Errorf("ShapeOf(%s) error = %v, want ErrBadShape", name, err)
		}
	}
}

func FuzzShapeOf(f *testing.F) {
	d := shapedDoc(f, 4, 70)
	f.Add(d.Save())
	raws, _ := d.RawChangesSince(nil)
	for _, r := range raws {
		f.Add(r)
	}
	f.Add(append(d.Save(), raws[0]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ShapeOf(b) // must not panic or hang
		if err == nil && (s.Changes < 0 || s.Ops < 0) {
			t.Fatalf("ShapeOf = %+v: negative counts", s)
		}
		if err != nil && !errors.Is(err, ErrBadShape) {
			t.Fatalf("ShapeOf error %v does not wrap ErrBadShape", err)
		}
	})
}
