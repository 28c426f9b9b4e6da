package crdt

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func set(t *testing.T, d *Doc, msg string, v any, path ...string) Hash {
	t.Helper()
	h, err := d.Change(msg, time.Time{}, func(w *Writer) error { return w.Set(v, path...) })
	if err != nil {
		t.Fatalf("Change(%s) = %v", msg, err)
	}
	return h
}

// exchange passes sync messages between two states until neither has
// anything to send.
func exchange(t *testing.T, sa, sb *SyncState) {
	t.Helper()
	for round := 0; round < 10; round++ {
		moved := false
		for _, p := range [][2]*SyncState{{sa, sb}, {sb, sa}} {
			m, ok, err := p[0].Generate()
			if err != nil {
				t.Fatal(err)
			}
			if ok {
				moved = true
				if err := p[1].Receive(m); err != nil {
					t.Fatal(err)
				}
			}
		}
		if !moved {
			return
		}
	}
	t.Fatal("sync did not settle in 10 rounds")
}

func TestChangeIsOneCommitWithMessage(t *testing.T) {
	d := New()
	at := time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)
	h, err := d.Change(`{"u":"a"}`, at, func(w *Writer) error {
		if err := w.Set(map[string]any{"given": "Ada", "family": "Quill"}, "name"); err != nil {
			return err
		}
		return w.Set(int64(12), "room")
	})
	if err != nil {
		t.Fatal(err)
	}
	chs, err := d.Changes()
	if err != nil {
		t.Fatal(err)
	}
	if len(chs) != 1 || chs[0].Hash != h || chs[0].Message != `{"u":"a"}` || !chs[0].Time.Equal(at) {
		t.Fatalf("Changes() = %+v, want one change %s with message and time", chs, h)
	}
	got, err := d.Root()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": map[string]any{"given": "Ada", "family": "Quill"}, "room": int64(12)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Root() = %v, want %v", got, want)
	}
	if _, err := d.Change("empty", at, func(w *Writer) error { return nil }); !errors.Is(err, ErrNoChange) {
		t.Fatalf("empty Change error = %v, want ErrNoChange", err)
	}
}

func TestSetThroughMissingMapFails(t *testing.T) {
	d := New()
	_, err := d.Change("m", time.Time{}, func(w *Writer) error { return w.Set("x", "absent", "key") })
	if err == nil {
		t.Fatal("Set under a missing map succeeded; it must not create containers implicitly")
	}
}

// Concurrent puts at different keys of one map both survive a merge; this is
// what decision lists rely on.
func TestConcurrentKeysBothSurvive(t *testing.T) {
	a := New()
	set(t, a, "init", map[string]any{}, "entries")
	b, err := a.Fork()
	if err != nil {
		t.Fatal(err)
	}
	set(t, a, "a", "from a", "entries", "e1")
	set(t, b, "b", "from b", "entries", "e2")
	if err := a.Merge(b); err != nil {
		t.Fatal(err)
	}
	if err := b.Merge(a); err != nil {
		t.Fatal(err)
	}
	ra, _ := a.Root()
	rb, _ := b.Root()
	if !reflect.DeepEqual(ra, rb) || len(ra["entries"].(map[string]any)) != 2 {
		t.Fatalf("after merge a=%v b=%v, want both entries in both", ra, rb)
	}
	if !SameHeads(a.Heads(), b.Heads()) || len(a.Heads()) != 2 {
		t.Fatalf("heads a=%v b=%v, want the same two heads", a.Heads(), b.Heads())
	}
}

func TestSyncConverges(t *testing.T) {
	a, b := New(), New()
	set(t, a, "a", "1", "x")
	set(t, b, "b", "2", "y")
	sa, sb := NewSyncState(a), NewSyncState(b)
	exchange(t, sa, sb)
	if !SameHeads(a.Heads(), b.Heads()) {
		t.Fatalf("heads differ after sync: %v vs %v", a.Heads(), b.Heads())
	}
	if !Covers(sa.SharedHeads(), a.Heads()) || !Covers(sb.SharedHeads(), b.Heads()) {
		t.Fatalf("after sync, shared heads %v / %v do not cover heads %v", sa.SharedHeads(), sb.SharedHeads(), a.Heads())
	}
	// A saved state resumes: a new change costs one message, not a resend.
	// A heads-only message tells a fresh state what the peer holds.
	fresh := NewSyncState(b)
	if err := CheckSyncMessage(HeadsMessage(a.Heads())); err != nil {
		t.Fatal(err)
	}
	if err := fresh.Receive(HeadsMessage(a.Heads())); err != nil || !Covers(fresh.SharedHeads(), b.Heads()) {
		t.Fatalf("after a heads message: shared %v, %v", fresh.SharedHeads(), err)
	}
	sharing, err := SyncStateSharing(b, b.Heads())
	if err != nil || !SameHeads(sharing.SharedHeads(), b.Heads()) {
		t.Fatalf("SyncStateSharing = %v, %v", sharing.SharedHeads(), err)
	}
	saved := sa.Save()
	set(t, a, "a2", "3", "z")
	if Covers(sa.SharedHeads(), a.Heads()) {
		t.Fatal("shared heads cover a change the peer has not seen")
	}
	sa2, err := LoadSyncState(a, saved)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := sa2.Generate(); !ok {
		t.Fatal("resumed state generated nothing for a new change")
	}
}

func TestSaveLoadAndIncremental(t *testing.T) {
	a := New()
	set(t, a, "1", "one", "k1")
	full := a.Save()
	set(t, a, "2", "two", "k2")
	inc, err := a.SaveSince(a.Heads()[:0])
	if err != nil {
		t.Fatal(err)
	}
	chs, _ := a.Changes()
	inc, err = a.SaveSince([]Hash{chs[0].Hash})
	if err != nil || len(inc) == 0 {
		t.Fatalf("SaveSince(first change) = %d bytes, %v", len(inc), err)
	}
	since, err := a.SaveSince(nil)
	if err != nil || len(since) == 0 {
		t.Fatalf("SaveSince(nil) = %d bytes, %v", len(since), err)
	}
	c := New()
	if err := c.LoadIncremental(since); err != nil || !SameHeads(c.Heads(), a.Heads()) {
		t.Fatalf("loading SaveSince(nil) = %v; heads equal %v", err, SameHeads(c.Heads(), a.Heads()))
	}
	if none, err := a.SaveSince(a.Heads()); none != nil || err != nil {
		t.Fatalf("SaveSince(current heads) = %d bytes, %v; want nil", len(none), err)
	}
	b, err := Load(full)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.LoadIncremental(inc); err != nil {
		t.Fatal(err)
	}
	if !SameHeads(a.Heads(), b.Heads()) {
		t.Fatal("incremental load did not reach the same heads")
	}
	if _, err := Load([]byte("not a document")); err == nil {
		t.Fatal("Load of garbage succeeded")
	}
	// A damaged chunk is refused, on an empty and on a non-empty document.
	// (Junk after complete changes is ignored: every listed change applied.)
	for _, bad := range [][]byte{[]byte("garbage"), inc[:len(inc)-3], inc[:len(inc)-40], full[:len(full)-2]} {
		partial, _ := Load(full) // holds the first change, lacks the second
		for _, d := range []*Doc{New(), partial} {
			before := d.Heads()
			if err := d.LoadIncremental(bad); err == nil {
				t.Fatalf("LoadIncremental(%d damaged bytes; inc %d, full %d) succeeded", len(bad), len(inc), len(full))
			}
			if !SameHeads(before, d.Heads()) {
				t.Fatal("a refused chunk changed the document")
			}
		}
	}
}

func TestHashRoundTrip(t *testing.T) {
	d := New()
	h := set(t, d, "1", "v", "k")
	back, err := ParseHash(h.String())
	if err != nil || back != h {
		t.Fatalf("ParseHash(%s) = %v, %v", h, back, err)
	}
	if _, err := ParseHash("zz"); err == nil {
		t.Fatal("ParseHash accepted zz")
	}
}

// TestHeadsFollowEveryKindOfChange: Heads is cached, so every way a
// document can gain changes must refresh it. Each case reads the heads
// first (filling the cache), changes the document, and compares Heads with
// what a fresh load of the document reports.
func TestHeadsFollowEveryKindOfChange(t *testing.T) {
	source := func(t *testing.T) (*Doc, *Doc) {
		base := New()
		set(t, base, "base", "x", "a")
		other, err := base.Fork()
		if err != nil {
			t.Fatal(err)
		}
		set(t, other, "other", "y", "b")
		return base, other
	}
	cases := map[string]func(t *testing.T, d, other *Doc){
		"change": func(t *testing.T, d, _ *Doc) { set(t, d, "local", "z", "c") },
		"merge": func(t *testing.T, d, other *Doc) {
			if err := d.Merge(other); err != nil {
				t.Fatal(err)
			}
		},
		"load incremental chunk": func(t *testing.T, d, other *Doc) {
			chunk, err := other.SaveSince(d.Heads())
			if err != nil {
				t.Fatal(err)
			}
			if err := d.LoadIncremental(chunk); err != nil {
				t.Fatal(err)
			}
		},
		"load incremental whole": func(t *testing.T, d, other *Doc) {
			if err := d.LoadIncremental(other.Save()); err != nil {
				t.Fatal(err)
			}
		},
		"sync message": func(t *testing.T, d, other *Doc) {
			exchange(t, NewSyncState(other), NewSyncState(d))
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			d, other := source(t)
			before := d.Heads()
			mutate(t, d, other)
			again, err := Load(d.Save())
			if err != nil {
				t.Fatal(err)
			}
			want := again.Heads()
			if got := d.Heads(); !SameHeads(got, want) || SameHeads(got, before) {
				t.Fatalf("Heads() = %v after the change, want %v (was %v)", got, want, before)
			}
		})
	}
}
