package worker

import (
	"context"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
	"haven/shared/record/recordtest"
	"haven/shared/syncer"
)

// BenchmarkRuleCheck prints what the relay's check of one incoming change
// costs on a small record and on a 12 MB document: the rule check with its
// proof that the document stays loadable (decode the change, check it
// against the record's rules, prove its structure: what the workers run),
// against the whole-document save-and-reload it replaces for Haven's
// documents (still run for documents of other types and for changes it
// cannot prove). Each figure is the median of one-field edits (a note
// added), each checked as the relay checks a message carrying it. Also the
// one-off cost of building a document's guard from its stored history the
// first time a worker sees the document change.
func BenchmarkRuleCheck(b *testing.B) {
	org := recordtest.NewOrg()
	author := record.Author{UserID: "u1", Name: "Sam Senior", Role: record.SeniorCarer, DeviceID: "pc-1"}
	ed := org.Editor(author, record.Rules{NHS: nhs.Demo})
	for _, size := range []struct {
		name  string
		bytes int
	}{{"small record", 0}, {"12 MB document", 12 << 20}} {
		docs, err := ed.NewResident("home-1", record.Identity{NHSNumber: "9990000018", GivenName: "Edith", FamilyName: "Marlow",
			DateOfBirth: "1931-04-02", Sex: "female", Status: record.StatusActive})
		if err != nil {
			b.Fatal(err)
		}
		tl, id := docs.Timeline, docs.TimelineID
		rng := rand.New(rand.NewSource(1))
		words := strings.Fields("settled ate lunch walked garden daughter visited skin intact slept music group breakfast declined confused reassured tea")
		for n := 0; size.bytes > 0; n++ {
			var text strings.Builder
			for text.Len() < 600 {
				fmt.Fprintf(&text, "%s %d ", words[rng.Intn(len(words))], rng.Intn(100000))
			}
			if _, err := ed.AddNote(tl, record.Note{Kind: record.NoteKindNote, Text: text.String()}); err != nil {
				b.Fatal(err)
			}
			if n%2000 == 1999 && len(tl.Save()) >= size.bytes {
				break
			}
		}
		saved := len(tl.Save())
		v := &vetter{guards: map[docid.ID]*guarded{}, trust: org.Trust, version: 1, want: 1}
		t0 := time.Now()
		g, _, err := v.guard(id, tl, tl.Heads())
		if err != nil {
			b.Fatal(err)
		}
		if err := g.learnUpTo(tl, nil); err != nil {
			b.Fatal(err)
		}
		build := time.Since(t0)
		var check, reload []time.Duration
		for i := 0; i < 21; i++ {
			// The edit arrives as a device sends it: a sync message
			// carrying the change, applied to the relay's copy.
			before := tl.Heads()
			f, _ := tl.Fork()
			if _, err := ed.AddNote(f, record.Note{Kind: record.NoteKindNote, Text: fmt.Sprintf("edit %d", i)}); err != nil {
				b.Fatal(err)
			}
			msg := message(b, f, before)
			if err := crdt.NewSyncState(tl).Receive(msg); err != nil {
				b.Fatal(err)
			}
			t0 := time.Now()
			if err := v.vet(context.Background(), id, tl, before, []syncer.In{{From: "dev-1/peer#1", Data: msg}}); err != nil {
				b.Fatal(err)
			}
			check = append(check, time.Since(t0))
			if v.reloaded.Load() != 0 {
				b.Fatal("an honest edit was not proven: the check fell back to the whole document")
			}
			if i < 5 || size.bytes == 0 {
				t0 = time.Now()
				if err := syncer.RoundTrips(tl); err != nil {
					b.Fatal(err)
				}
				reload = append(reload, time.Since(t0))
			}
		}
		med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
		b.ReportMetric(float64(med(check).Microseconds()), strings.ReplaceAll(size.name, " ", "-")+"-check-µs")
		b.Logf("%s (saved %.1f MB, %d changes): rule check and proof %v per edit; save-and-reload %v per edit (%.0f× more); guard built from the history once in %v",
			size.name, float64(saved)/(1<<20), v.guards[id].g.Changes(), med(check).Round(time.Microsecond), med(reload).Round(time.Microsecond),
			float64(med(reload))/float64(med(check)), build.Round(time.Millisecond))
	}
}

// message is a sync message from d carrying its changes since shared, as a
// device that knows the relay holds shared sends them.
func message(b *testing.B, d *crdt.Doc, shared []crdt.Hash) []byte {
	ss, err := crdt.SyncStateSharing(d, shared)
	if err != nil {
		b.Fatal(err)
	}
	msg, ok, err := ss.Generate()
	if err != nil || !ok {
		b.Fatal("no message", err)
	}
	msg, added, err := crdt.WithChangesSince(msg, d, shared, 1<<20)
	if err != nil || !added {
		b.Fatal("no changes in the message", err)
	}
	return msg
}
