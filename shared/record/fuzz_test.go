package record

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
)

// FuzzRead builds an arbitrary Automerge document (any JSON the fuzzer
// invents, written as maps, lists and scalars) and reads it as a resident
// record and as a directory. Reading must never panic or fail, and must be
// deterministic. The seeds include a real record, so mutations explore
// near-valid shapes too.
func FuzzRead(f *testing.F) {
	e, err := NewEditor(Author{UserID: "u", Name: "Dr A", Role: GP, RegNo: "GMC 1", DeviceID: "d"}, rules())
	if err != nil {
		f.Fatal(err)
	}
	e.Signer = certify(e.Author)
	docs, err := e.NewResident("home-1", identity())
	if err != nil {
		f.Fatal(err)
	}
	doc := docs.Record
	if _, err := e.Decide(doc, KindCPR, "", CPRNotRecommended, "frailty"); err != nil {
		f.Fatal(err)
	}
	root, _ := doc.Root()
	real, _ := json.Marshal(root)
	f.Add(real)
	tl, _ := docs.Timeline.Root()
	realTimeline, _ := json.Marshal(tl)
	f.Add(realTimeline)
	f.Add([]byte(`{"type":"resident","decisions":{"cpr":{"a":{"supersedes":["a"]},"b":{"supersedes":[1,{}]}}}}`))
	f.Add([]byte(`{"type":"directory","residents":{"x":1,"11111111111111114Ki9Gx":{"room":[]}}}`))
	f.Add([]byte(`{"identity":{"dateOfBirth":1e308,"interpreter":"yes"},"carePlan":{"skin":{"score":1.5}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var tree map[string]any
		if json.Unmarshal(data, &tree) != nil {
			return
		}
		doc := crdt.New()
		_, err := doc.Change("fuzz", time.Unix(0, 0), func(w *crdt.Writer) error {
			for k, v := range tree {
				if err := w.Set(intsOf(v), k); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil && err != crdt.ErrNoChange {
			return // a key automerge refuses; nothing to read
		}
		r1, err := Read(doc, testTrust)
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
		r2, _ := Read(doc, testTrust)
		if len(r1.Problems) != len(r2.Problems) || r1.Timeline != r2.Timeline || len(r1.Conflicts()) != len(r2.Conflicts()) {
			t.Fatal("Read is not deterministic")
		}
		for _, s := range r1.Decisions {
			for _, c := range s.Current {
				_ = c.Text()
				var v Allergies
				_ = c.Decode(&v)
			}
			if s.Conflict() {
				_ = s.ConflictSummary(func(e Entry) string { return e.Text() })
			}
		}
		if _, err := ReadTimeline(doc); err != nil {
			t.Fatalf("ReadTimeline: %v", err)
		}
		if _, err := ReadDirectory(doc); err != nil {
			t.Fatalf("ReadDirectory: %v", err)
		}
		if _, err := History(doc, "identity"); err != nil {
			t.Fatalf("History: %v", err)
		}
	})
}

// intsOf turns JSON's float64 whole numbers into int64 some of the time, so
// both number kinds reach the reader.
func intsOf(v any) any {
	switch x := v.(type) {
	case float64:
		if x == float64(int64(x)) && int64(x)%2 == 0 {
			return int64(x)
		}
	case map[string]any:
		for k, e := range x {
			x[k] = intsOf(e)
		}
	case []any:
		for i, e := range x {
			x[i] = intsOf(e)
		}
	}
	return v
}

// FuzzProvenChangeReloads holds the relay's shortcut to its guarantee: a
// change the guard accepts and proves (Guard.Proven) is one a document can
// take and still save and load again to the same heads, so skipping the
// whole-document check never lets a poisonous change through. The fuzzer
// mutates real changes to a real record (its checksum made good again, as
// a hostile device would); whatever is proven must round-trip.
func FuzzProvenChangeReloads(f *testing.F) {
	gp := editor(f, "Dr Ada Quill", GP)
	docs := newDocs(f, gp)
	base := docs.Record
	if _, err := gp.Decide(base, KindCPR, "", CPRNotRecommended, "frailty"); err != nil {
		f.Fatal(err)
	}
	history, _ := base.RawChangesSince(nil)
	next, _ := base.Fork()
	heads := next.Heads()
	gp.AddAlert(next, Alert{Text: "falls risk"})
	gp.Decide(next, KindCPR, "", CPRRecommended, "changed her mind")
	gp.AddContact(next, Contact{Kind: "personal", Name: "Jane", Role: "next-of-kin", PhoneDay: "020 7946 0001"})
	seeds, _ := next.RawChangesSince(heads)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if len(raw) < 10 || raw[8] != 1 {
			return
		}
		b := bytes.Clone(raw)
		sum := sha256.Sum256(b[8:])
		copy(b[4:8], sum[:4])
		c, err := crdt.DecodeChange(b)
		if err != nil {
			return
		}
		if proven(docs.RecordID, history, c) {
			if err := reloads(base.Save(), b); err != nil {
				t.Fatal(err)
			}
			// What the rules promise of an accepted change: every entry
			// still there, unchanged, and nothing new that does not verify.
			doc, _ := crdt.Load(base.Save())
			doc.ApplyChanges(b)
			was, now := mustRead(base), mustRead(doc)
			for key, s := range was.Decisions {
				for _, e := range s.Entries {
					if !slices.ContainsFunc(now.Decision(s.Kind, s.Subject).Entries, func(x Entry) bool { return x.ID == e.ID && x.Value == e.Value }) {
						t.Fatalf("an accepted change removed or altered entry %s of %s", e.ID, key)
					}
				}
			}
			if len(now.Tampered()) > len(was.Tampered()) {
				t.Fatalf("an accepted change added an entry that does not verify: %v", now.Tampered())
			}
		}
	})
}

// TestEveryBitFlipThatIsProvenReloads is FuzzProvenChangeReloads done
// exhaustively for single bits: every bit of three real changes flipped
// (checksum made good), and every variant the guard proves must apply and
// round-trip. It also counts how many variants are proven, so the test
// shows it is not vacuous.
func TestEveryBitFlipThatIsProvenReloads(t *testing.T) {
	gp := editor(t, "Dr Ada Quill", GP)
	docs := newDocs(t, gp)
	base := docs.Record
	history, _ := base.RawChangesSince(nil)
	next, _ := base.Fork()
	heads := next.Heads()
	gp.AddAlert(next, Alert{Text: "falls risk"})
	gp.Decide(next, KindCPR, "", CPRRecommended, "changed her mind")
	changes, _ := next.RawChangesSince(heads)
	saved := base.Save()
	nproven, variants := 0, 0
	for _, orig := range changes {
		for i := 9; i < len(orig); i++ {
			for bit := 0; bit < 8; bit++ {
				b := bytes.Clone(orig)
				b[i] ^= 1 << bit
				sum := sha256.Sum256(b[8:])
				copy(b[4:8], sum[:4])
				variants++
				c, err := crdt.DecodeChange(b)
				if err != nil {
					continue
				}
				if !proven(docs.RecordID, history, c) {
					continue
				}
				nproven++
				if err := reloads(saved, b); err != nil {
					oc, _ := crdt.DecodeChange(orig)
					for k := range oc.Ops {
						if fmt.Sprint(oc.Ops[k]) != fmt.Sprint(c.Ops[k]) {
							t.Logf("op %d was %+v\n now %+v", k, oc.Ops[k], c.Ops[k])
						}
					}
					t.Fatalf("byte %d bit %d: %v", i, bit, err)
				}
			}
		}
	}
	t.Logf("%d single-bit variants, %d proven (and reloaded)", variants, nproven)
	if nproven == 0 {
		t.Fatal("no variant was proven: the test no longer exercises the shortcut")
	}
}

// proven reports whether a guard that has taken in history accepts c and
// proves it keeps the document loadable.
func proven(id docid.ID, history [][]byte, c *crdt.DecodedChange) bool {
	g := NewGuard(id)
	for _, h := range history {
		hc, _ := crdt.DecodeChange(h)
		g.Learn(hc)
	}
	return g.Check([]*crdt.DecodedChange{c}, testTrust) == nil && g.Proven()
}

// reloads applies a change to the saved document and checks the result
// saves and loads again with the same heads.
func reloads(saved, change []byte) error {
	doc, err := crdt.Load(saved)
	if err != nil {
		return err
	}
	if err := doc.ApplyChanges(change); err != nil {
		return fmt.Errorf("a proven change does not apply: %w", err)
	}
	again, err := crdt.Load(doc.Save())
	if err != nil {
		return fmt.Errorf("a proven change leaves a document that does not load: %w", err)
	}
	if !crdt.SameHeads(again.Heads(), doc.Heads()) {
		return errors.New("a proven change leaves a document that loads with other heads")
	}
	return nil
}
