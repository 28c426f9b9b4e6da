package record

import (
	"encoding/json"
	"testing"
	"time"

	"haven/shared/crdt"
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
