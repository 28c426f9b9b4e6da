package crdt

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"math/rand"
	"os"
	"os/exec"
	"slices"
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
		_ = HoldsExactly(b, []Hash{{1}})
	})
}

// nextMessage is the message ss makes next; there must be one.
func nextMessage(t *testing.T, ss *SyncState) []byte {
	t.Helper()
	msg, ok, err := ss.Generate()
	if err != nil || !ok {
		t.Fatalf("Generate = %v, %v", ok, err)
	}
	return msg
}

// KnowsShared tells a message whose sender knows it shares our heads from
// one whose sender does not.
func TestKnowsShared(t *testing.T) {
	d := New()
	if _, err := d.Change("", time.Time{}, func(w *Writer) error { return w.Set("Ward 2", "room") }); err != nil {
		t.Fatal(err)
	}
	heads := d.Heads()
	msgFrom := func(ss *SyncState) []byte { return nextMessage(t, ss) }
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

// HoldsExactly: a device's first message about a document it holds at the
// same heads as its receiver, whether from a fresh state (it says what it
// has) or from a saved one (it also knows the receiver has it), says
// nothing the receiver must answer but that the two agree. A message that
// carries a change, needs one, names other heads, or does not read, is not
// such a message.
func TestHoldsExactly(t *testing.T) {
	d := New()
	set(t, d, "", "Ward 2", "room")
	before := d.Heads()
	set(t, d, "", "Ward 3", "room")
	heads := d.Heads()
	first := func(ss *SyncState) []byte { return nextMessage(t, ss) }
	fresh := first(NewSyncState(d))
	saved, err := SyncStateSharing(d, heads)
	if err != nil {
		t.Fatal(err)
	}
	known := first(saved)
	for name, msg := range map[string][]byte{
		"from a fresh state":             fresh,
		"from a state sharing the heads": known,
		"with capabilities after it":     append(slices.Clone(fresh), 2, 2, 0x84),
		"heads alone":                    HeadsMessage(heads),
	} {
		if !HoldsExactly(msg, heads) {
			t.Errorf("%s: % x does not say its sender holds exactly the heads", name, msg)
		}
	}
	older, err := SyncStateSharing(d, before)
	if err != nil {
		t.Fatal(err)
	}
	carrying, ok, err := WithChangesSince(first(older), d, before, 1<<20)
	if err != nil || !ok {
		t.Fatalf("WithChangesSince = %v, %v", ok, err)
	}
	behind, err := d.At(before)
	if err != nil {
		t.Fatal(err)
	}
	needing := withNeed(t, fresh, heads, before[0])
	for name, c := range map[string]struct {
		msg   []byte
		heads []Hash
	}{
		"against other heads":         {fresh, before},
		"against no heads":            {fresh, nil},
		"from a peer behind":          {first(NewSyncState(behind)), heads},
		"carrying the changes since":  {carrying, heads},
		"needing a change":            {needing, heads},
		"with a bad section after it": {append(slices.Clone(fresh), 5, 2), heads},
		"cut short":                   {fresh[:len(fresh)-1], heads},
		"of another type":             {append([]byte{0x43}, fresh[1:]...), heads},
		"empty":                       {nil, heads},
	} {
		if HoldsExactly(c.msg, c.heads) {
			t.Errorf("%s: says its sender holds exactly the heads, want not", name)
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

// listingNoActors is a sync message carrying a real change whose
// operation works inside a map another actor made, re-encoded with its
// list of other actors emptied and its checksum made good again: the
// operation then names actor index 1 of a change that lists only its own.
// base is the document the change applies to (it holds the map).
func listingNoActors(t *testing.T) (base *Doc, msg []byte) {
	t.Helper()
	a := New()
	if _, err := a.Change("c", time.Time{}, func(w *Writer) error { return w.EnsureMap("m") }); err != nil {
		t.Fatal(err)
	}
	b, err := a.Fork()
	if err != nil {
		t.Fatal(err)
	}
	if err := b.SetActor(NewActor()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Change("c", time.Time{}, func(w *Writer) error { return w.Set("x", "m", "k") }); err != nil {
		t.Fatal(err)
	}
	raws, err := b.RawChangesSince(a.Heads())
	if err != nil || len(raws) != 1 {
		t.Fatalf("RawChangesSince = %d changes, %v", len(raws), err)
	}
	c, err := DecodeChange(raws[0])
	if err != nil {
		t.Fatal(err)
	}
	body := c.Canonical()
	r := reader{b: body}
	r.hashList() // dependencies
	r.bytes()    // actor
	r.uleb()     // seq
	r.uleb()     // start op
	r.sleb()     // time
	r.bytes()    // message
	at := r.off
	if n, _ := r.uleb(); n != 1 {
		t.Fatalf("the change lists %d other actors, want 1", n)
	}
	r.bytes()
	crafted := slices.Concat(body[:at], []byte{0}, body[r.off:])
	sum := sha256.Sum256(slices.Concat([]byte{1}, binary.AppendUvarint(nil, uint64(len(crafted))), crafted))
	chunk := slices.Concat(changeMagic[:], sum[:4], []byte{1}, binary.AppendUvarint(nil, uint64(len(crafted))), crafted)
	msg = binary.AppendUvarint([]byte{0x42, 0, 0, 0, 1}, uint64(len(chunk))) // no heads, needs or haves; one change
	return a, append(msg, chunk...)
}

const feedAutomergeEnv = "HAVEN_CRDT_TEST_FEED_AUTOMERGE"

// A change whose checksum is good but whose operation names an actor the
// change does not list is refused before Automerge sees it: Automerge
// itself panics applying it, taking the whole process down (shown in a
// child process, which is what a relay's CRDT worker would be).
func TestCheckRefusesAChangeNamingAnActorItLacks(t *testing.T) {
	base, msg := listingNoActors(t)
	if os.Getenv(feedAutomergeEnv) != "" {
		_ = NewSyncState(base).Receive(msg)
		return // Automerge took it: the parent sees a clean exit
	}
	if err := CheckSyncMessage(msg); !errors.Is(err, ErrMalformedSync) {
		t.Fatalf("CheckSyncMessage(change naming an unlisted actor) = %v, want ErrMalformedSync", err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$")
	cmd.Env = append(os.Environ(), feedAutomergeEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("Automerge took the message unchecked without crashing; the check may no longer be needed:\n%s", out)
	}
	t.Logf("Automerge, fed it unchecked: %v, %s", err, firstLine(out, "panicked"))
}

// firstLine is out's first line holding word, for a test log.
func firstLine(out []byte, word string) string {
	for line := range bytes.Lines(out) {
		if bytes.Contains(line, []byte(word)) {
			return string(bytes.TrimSpace(line))
		}
	}
	return ""
}

// The answer a peer sends once it has applied a change it was sent is a
// settled acknowledgement of the sender's heads; the message that carried
// the change, a bare heads message, an answer naming other heads and
// anything malformed or with more after it are not.
func TestSettledAck(t *testing.T) {
	a, b := New(), New()
	sa, sb := NewSyncState(a), NewSyncState(b)
	edit := func(v int64) {
		t.Helper()
		if _, err := a.Change("c", time.Time{}, func(w *Writer) error { return w.Set(v, "k") }); err != nil {
			t.Fatal(err)
		}
	}
	edit(1)
	exchange(t, sa, sb)
	before := a.Heads()
	edit(2)
	carrying, ok, err := sa.Generate()
	if err != nil || !ok {
		t.Fatalf("no message carrying the change: %v", err)
	}
	if err := sb.Receive(carrying); err != nil {
		t.Fatal(err)
	}
	answer, ok, err := sb.Generate()
	if err != nil || !ok {
		t.Fatalf("the peer did not answer the change: %v", err)
	}
	heads := a.Heads()
	if !SameHeads(b.Heads(), heads) {
		t.Fatal("the peer did not take the change")
	}
	if !SettledAck(answer, heads) {
		t.Fatalf("the peer's answer %x is not a settled acknowledgement of %x", answer, heads)
	}
	if !SettledAck(append(slices.Clone(answer), 2, 2, 0x84), heads) {
		t.Fatal("the answer with Automerge 3's capabilities after it is not a settled acknowledgement")
	}
	for name, c := range map[string]struct {
		msg   []byte
		heads []Hash
	}{
		"the message carrying the change": {carrying, heads},
		"heads alone, no have":            {HeadsMessage(heads), heads},
		"the answer, against older heads": {answer, before},
		"the answer, against no heads":    {answer, nil},
		"the answer, then a bad section":  {append(slices.Clone(answer), 5, 2), heads},
		"the answer cut short":            {answer[:len(answer)-1], heads},
		"empty":                           {nil, heads},
	} {
		if SettledAck(c.msg, c.heads) {
			t.Errorf("%s: a settled acknowledgement, want not", name)
		}
	}
	// A peer that needs a change it heard of is not settled either.
	needing := withNeed(t, answer, heads, before[0])
	if SettledAck(needing, heads) {
		t.Error("a message that needs a change is a settled acknowledgement")
	}
}

// withNeed is msg, a sync message naming heads and needing nothing, made
// to need the change need; still well formed, so that a case refusing it
// proves what it says.
func withNeed(t *testing.T, msg []byte, heads []Hash, need Hash) []byte {
	t.Helper()
	off := 1 + 1 + 32*len(heads)
	if msg[off] != 0 {
		t.Fatalf("need count at %d is %d; the message layout is not as expected", off, msg[off])
	}
	out := slices.Concat(msg[:off], []byte{1}, need[:], msg[off+1:])
	if err := CheckSyncMessage(out); err != nil {
		t.Fatalf("the needing message is malformed, so the case proves nothing: %v", err)
	}
	return out
}

// Holding a settled acknowledgement back from Automerge (SyncState.Receive)
// changes nothing a peer is sent, nor what is saved: a relay's states that
// hold them back and states that do not, on two copies of one document fed
// the same messages through edits on both sides, lost messages and
// reconnects, make the same messages byte for byte.
func TestHeldAcknowledgementsChangeNothing(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	held, plain := New(), New() // the relay's document, twice
	const peers = 3
	var docs [peers]*Doc
	var mine, heldSS, plainSS [peers]*SyncState
	connect := func(p int, saved []byte) {
		t.Helper()
		var err error
		if heldSS[p], err = LoadSyncState(held, saved); err != nil {
			t.Fatal(err)
		}
		if plainSS[p], err = LoadSyncState(plain, saved); err != nil {
			t.Fatal(err)
		}
		plainSS[p].holdNone = true
		mine[p] = NewSyncState(docs[p])
	}
	for p := range docs {
		docs[p] = New()
		connect(p, SavedSharing(nil))
	}
	edit := func(d *Doc) {
		t.Helper()
		if _, err := d.Change("", time.Time{}, func(w *Writer) error { return w.Set(rng.Int63(), "k") }); err != nil {
			t.Fatal(err)
		}
	}
	holds, compared := 0, 0
	for step := 0; step < 8000; step++ {
		p := rng.Intn(peers)
		switch r := rng.Float64(); {
		case r < 0.05: // another device's change reaches the relay
			edit(held)
			raws, err := held.RawChangesSince(plain.Heads())
			if err != nil {
				t.Fatal(err)
			}
			if err := plain.ApplyChanges(raws...); err != nil {
				t.Fatal(err)
			}
		case r < 0.08:
			edit(docs[p])
		case r < 0.1: // reconnect: each side resumes from what it saved
			a, b := heldSS[p].Save(), plainSS[p].Save()
			if !bytes.Equal(a, b) {
				t.Fatalf("step %d: saved %x holding back, %x not", step, a, b)
			}
			connect(p, a)
		case r < 0.55: // the relay speaks to p
			m1, ok1, err1 := heldSS[p].Generate()
			m2, ok2, err2 := plainSS[p].Generate()
			if err1 != nil || err2 != nil {
				t.Fatal(err1, err2)
			}
			if ok1 != ok2 || !bytes.Equal(m1, m2) {
				t.Fatalf("step %d: made %x (%v) holding back, %x (%v) not", step, m1, ok1, m2, ok2)
			}
			compared++
			if ok1 && rng.Float64() > 0.1 {
				if err := mine[p].Receive(m1); err != nil {
					t.Fatal(err)
				}
			}
		default: // p speaks to the relay
			m, ok, err := mine[p].Generate()
			if err != nil {
				t.Fatal(err)
			}
			if !ok || rng.Float64() < 0.1 {
				continue
			}
			if err := heldSS[p].Receive(m); err != nil {
				t.Fatal(err)
			}
			if err := plainSS[p].Receive(m); err != nil {
				t.Fatal(err)
			}
			if heldSS[p].pending != nil {
				holds++
			}
			if !SameHeads(held.Heads(), plain.Heads()) {
				t.Fatalf("step %d: the relay's two copies differ", step)
			}
		}
	}
	if holds < 200 || compared < 1000 {
		t.Fatalf("%d acknowledgements held back, %d messages compared: too few to show anything", holds, compared)
	}
}
