package crdt

import (
	"bytes"
	"errors"
	"math/rand"
	"testing"
	"time"
)

// syncMessage returns a real sync message carrying changes.
func syncMessage(t testing.TB) []byte {
	t.Helper()
	a := New()
	for i := 0; i < 3; i++ {
		if _, err := a.Change("c", time.Time{}, func(w *Writer) error { return w.Set(int64(i), "k") }); err != nil {
			t.Fatal(err)
		}
	}
	sa, sb := NewSyncState(a), NewSyncState(New())
	m1, _, _ := sa.Generate()
	if err := sb.Receive(m1); err != nil {
		t.Fatal(err)
	}
	m2, _, _ := sb.Generate()
	if err := sa.Receive(m2); err != nil {
		t.Fatal(err)
	}
	m3, ok, _ := sa.Generate()
	if !ok {
		t.Fatal("no message with changes")
	}
	return m3
}

func TestCheckSyncMessageAcceptsReal(t *testing.T) {
	a, b := New(), New()
	sa, sb := NewSyncState(a), NewSyncState(b)
	for i := 0; i < 3; i++ {
		if _, err := a.Change("c", time.Time{}, func(w *Writer) error { return w.Set(int64(i), "k") }); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 6; round++ {
		for _, p := range [][2]*SyncState{{sa, sb}, {sb, sa}} {
			m, ok, err := p[0].Generate()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				continue
			}
			if err := CheckSyncMessage(m); err != nil {
				t.Fatalf("CheckSyncMessage(real message %x) = %v", m, err)
			}
			if err := p[1].Receive(m); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestCheckSyncMessageRejects(t *testing.T) {
	good := syncMessage(t)
	if err := CheckSyncMessage(good); err != nil {
		t.Fatal(err)
	}
	// What automerge 3.x sends: the message, then its capabilities.
	if err := CheckSyncMessage(append(append([]byte{}, good...), 2, 2, 0x84)); err != nil {
		t.Fatalf("message with a capability list refused: %v", err)
	}
	flip := append([]byte(nil), good...)
	flip[len(flip)-5] ^= 0x40 // inside the last change: its checksum no longer matches
	for name, b := range map[string][]byte{
		"empty":          {},
		"wrong type":     append([]byte{0x43}, good[1:]...),
		"truncated":      good[:len(good)-1],
		"trailing":       append(append([]byte{}, good...), 0, 1),
		"short caps":     append(append([]byte{}, good...), 2, 1),
		"change flipped": flip,
		"huge head list": {0x42, 0xff, 0xff, 0xff, 0x0f},
	} {
		if err := CheckSyncMessage(b); !errors.Is(err, ErrMalformedSync) {
			t.Errorf("%s: CheckSyncMessage = %v, want ErrMalformedSync", name, err)
		}
	}
	// Most random mutations are caught; a flipped byte inside a head or need
	// hash cannot be told from a real hash, so some pass.
	rng := rand.New(rand.NewSource(1))
	caught := 0
	for i := 0; i < 2000; i++ {
		c := append([]byte(nil), good...)
		c[rng.Intn(len(c))] ^= byte(1 + rng.Intn(255))
		if CheckSyncMessage(c) != nil {
			caught++
		}
	}
	if caught < 1500 {
		t.Fatalf("only %d of 2000 single-byte mutations caught", caught)
	}
}

func FuzzCheckSyncMessage(f *testing.F) {
	f.Add(syncMessage(f))
	f.Add([]byte{0x42, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = CheckSyncMessage(b) // must not panic or hang
		_ = KnowsShared(b, []Hash{{1}})
	})
}

// KnowsShared tells a message whose sender knows it shares our heads from
// one whose sender does not.
func TestKnowsShared(t *testing.T) {
	d := New()
	if _, err := d.Change("", time.Time{}, func(w *Writer) error { return w.Set("Ward 2", "room") }); err != nil {
		t.Fatal(err)
	}
	heads := d.Heads()
	msgFrom := func(ss *SyncState) []byte {
		t.Helper()
		msg, ok, err := ss.Generate()
		if err != nil || !ok {
			t.Fatalf("Generate = %v, %v", ok, err)
		}
		return msg
	}
	fresh := msgFrom(NewSyncState(d))
	if KnowsShared(fresh, heads) {
		t.Error("a first message from a fresh state claims to know the heads are shared")
	}
	known, err := SyncStateSharing(d, heads)
	if err != nil {
		t.Fatal(err)
	}
	if !KnowsShared(msgFrom(known), heads) {
		t.Error("a message built on a last sync at these heads does not show it")
	}
	if _, err := d.Change("", time.Time{}, func(w *Writer) error { return w.Set("Ward 3", "room") }); err != nil {
		t.Fatal(err)
	}
	if KnowsShared(msgFrom(known), d.Heads()) {
		t.Error("a message built on older heads claims to know the newer ones are shared")
	}
	if KnowsShared(HeadsMessage(heads), heads) {
		t.Error("a heads-only message (no have) claims knowledge")
	}
	for _, bad := range [][]byte{nil, {0x42}, {0x42, 1}, {0x41, 0, 0, 0, 0}, append(HeadsMessage(heads)[:5:5], 0xff)} {
		if KnowsShared(bad, heads) {
			t.Errorf("malformed message % x claims knowledge", bad)
		}
	}
}

// WithChangesSince adds the changes made since the given heads to a first
// message, which its receiver applies; it leaves alone a message with
// changes already, a peer with nothing shared, and anything over the limit.
func TestWithChangesSince(t *testing.T) {
	a := New()
	set := func(v string) {
		t.Helper()
		if _, err := a.Change("", time.Time{}, func(w *Writer) error { return w.Set(v, "room") }); err != nil {
			t.Fatal(err)
		}
	}
	set("Ward 2")
	b, err := a.Fork()
	if err != nil {
		t.Fatal(err)
	}
	shared := a.Heads()
	set("Ward 3")
	ss, err := SyncStateSharing(a, shared)
	if err != nil {
		t.Fatal(err)
	}
	msg, ok, err := ss.Generate()
	if err != nil || !ok {
		t.Fatalf("Generate = %v, %v", ok, err)
	}
	out, added, err := WithChangesSince(msg, a, shared, 1<<20)
	if err != nil || !added {
		t.Fatalf("WithChangesSince = %v, %v; want the change added", added, err)
	}
	if err := CheckSyncMessage(out); err != nil {
		t.Fatalf("the message with changes does not parse: %v", err)
	}
	if err := NewSyncState(b).Receive(out); err != nil {
		t.Fatal(err)
	}
	if v, _, _ := b.Get("room"); v != "Ward 3" {
		t.Fatalf("receiver has room %v after the first message, want Ward 3", v)
	}
	if again, added, _ := WithChangesSince(out, a, shared, 1<<20); added || !bytes.Equal(again, out) {
		t.Error("changes added to a message that carries some already")
	}
	if same, added, _ := WithChangesSince(msg, a, nil, 1<<20); added || !bytes.Equal(same, msg) {
		t.Error("changes added with nothing known to be shared")
	}
	if same, added, _ := WithChangesSince(msg, a, shared, 10); added || !bytes.Equal(same, msg) {
		t.Error("changes over the limit added")
	}
	if same, added, _ := WithChangesSince([]byte{0x42, 5}, a, shared, 1<<20); added || !bytes.Equal(same, []byte{0x42, 5}) {
		t.Error("a malformed message was changed")
	}
}
