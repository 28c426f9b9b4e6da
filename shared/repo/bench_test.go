package repo

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/record/recordtest"
)

// BenchmarkDurableCommit measures the latency of one acknowledged change (a
// note added to a real record and synced to disk) with 1 and 16 writers,
// each on its own resident. Figures: p50/p99 in ms. Target: p99 ≤ 10 ms.
func BenchmarkDurableCommit(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			st := openStore(b, b.TempDir())
			defer st.Close()
			r := New(st, Options{})
			defer r.Close()
			e := testEditor(b)
			handles := make([]*Handle, writers)
			for i := range handles {
				handles[i] = newResident(b, r, e)
			}
			per := 200 // changes per writer, whatever b.N is: the figure is a distribution
			lat := make([][]time.Duration, writers)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range handles {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for i := 0; i < per; i++ {
						t0 := time.Now()
						err := handles[w].Change(context.Background(), func(doc *crdt.Doc) error {
							_, err := e.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: "Had a cup of tea with her daughter."})
							return err
						})
						if err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				}(w)
			}
			wg.Wait()
			elapsed := time.Since(start)
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l...)
			}
			p50, p99 := percentile(all, 50), percentile(all, 99)
			b.ReportMetric(ms(p50), "p50-ms")
			b.ReportMetric(ms(p99), "p99-ms")
			b.ReportMetric(float64(len(all))/elapsed.Seconds(), "commits/s")
			b.Logf("durable commit, %d writers: p50 %.2f ms, p99 %.2f ms, %.0f commits/s (target p99 ≤ 10 ms)", writers, ms(p50), ms(p99), float64(len(all))/elapsed.Seconds())
		})
	}
}

// BenchmarkFiveYearRecord builds a resident with about 10,000 changes over
// five years: notes five times a day in the timeline; in the record, monthly
// reviews of all twelve care-plan domains, six-monthly CPR decisions and
// occasional identity edits. Both documents are stored and compacted; then
// each is opened from disk in a fresh Repo and read whole. Opening the
// record is what shows the front sheet. Target: open ≤ 150 ms.
func BenchmarkFiveYearRecord(b *testing.B) {
	e := testEditor(b)
	org := recordtest.NewOrg()
	gp := org.Editor(record.Author{UserID: "gp", Name: "Dr Ada Quill", Role: record.GP, RegNo: "GMC 7000001", DeviceID: "hub"}, e.Rules)
	docs, err := e.NewResident("home-1", testIdentity())
	if err != nil {
		b.Fatal(err)
	}
	recChanges, tlChanges := 1, 1
	for day := 0; day < 5*365 && recChanges+tlChanges < 10000; day++ {
		for i := 0; i < 5; i++ {
			if _, err := e.AddNote(docs.Timeline, record.Note{Kind: record.NoteKindNote, Text: fmt.Sprintf("Day %d: ate well, walked to the garden, settled at night.", day)}); err != nil {
				b.Fatal(err)
			}
			tlChanges++
		}
		if day%30 == 0 {
			for _, d := range record.Domains {
				c := record.CarePlanEntry{Domain: d, Need: "Needs support", Goal: fmt.Sprintf("Goal %d", day), Support: "I like to be asked first.", ReviewDue: "2031-01-01"}
				if err := e.UpdateCarePlan(docs.Record, c); err != nil {
					b.Fatal(err)
				}
				recChanges++
			}
		}
		if day%180 == 0 {
			if _, err := gp.Decide(docs.Record, record.KindCPR, "", record.CPRNotRecommended, "reviewed"); err != nil {
				b.Fatal(err)
			}
			recChanges++
		}
		if day%90 == 0 {
			id := testIdentity()
			id.Room = fmt.Sprint(day % 40)
			id.Status = record.StatusActive
			if err := e.UpdateIdentity(docs.Record, id); err != nil {
				b.Fatal(err)
			}
			recChanges++
		}
	}
	st := openStore(b, b.TempDir())
	defer st.Close()
	r := New(st, Options{})
	var compact time.Duration
	for _, d := range []struct {
		id  docid.ID
		doc *crdt.Doc
	}{{docs.RecordID, docs.Record}, {docs.TimelineID, docs.Timeline}} {
		h, err := r.Create(context.Background(), d.id, d.doc)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := h.Compact(context.Background()); err != nil {
			b.Fatal(err)
		}
		compact += time.Since(t0)
	}
	r.Close()
	_, _, recSaved, _ := st.DocStats(docs.RecordID.String())
	_, _, tlSaved, _ := st.DocStats(docs.TimelineID.String())

	var opens, timelines []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N || len(opens) < 10; i++ {
		r := New(st, Options{})
		t0 := time.Now()
		h, err := r.Open(docs.RecordID)
		if err != nil {
			b.Fatal(err)
		}
		rec, err := record.Read(h.Doc(), org.Trust)
		if err != nil || rec.Decision(record.KindCPR, "").Current == nil {
			b.Fatalf("read record: %v", err)
		}
		opens = append(opens, time.Since(t0))
		t0 = time.Now()
		h, err = r.Open(rec.Timeline)
		if err != nil {
			b.Fatal(err)
		}
		tl, err := record.ReadTimeline(h.Doc())
		if err != nil || len(tl.Notes) < 6000 {
			b.Fatalf("read %d notes, err %v", len(tl.Notes), err)
		}
		timelines = append(timelines, time.Since(t0))
		r.Close()
	}
	b.ReportMetric(ms(percentile(opens, 50)), "open-p50-ms")
	b.ReportMetric(ms(percentile(opens, 100)), "open-max-ms")
	b.ReportMetric(ms(percentile(timelines, 50)), "timeline-p50-ms")
	b.ReportMetric(float64(recSaved+tlSaved)/1024, "saved-KiB")
	b.ReportMetric(ms(compact), "compact-ms")
	b.Logf("five years, %d changes (record %d, timeline %d): open record + read p50 %.1f ms, max %.1f ms (target ≤ 150 ms); "+
		"timeline (all %d notes) p50 %.1f ms; saved %d KiB (record %d, timeline %d); compaction %.0f ms",
		recChanges+tlChanges, recChanges, tlChanges, ms(percentile(opens, 50)), ms(percentile(opens, 100)),
		tlChanges-1, ms(percentile(timelines, 50)), (recSaved+tlSaved)/1024, recSaved/1024, tlSaved/1024, ms(compact))
}

func percentile(d []time.Duration, p int) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := (len(s)*p + 99) / 100
	if i > 0 {
		i--
	}
	return s[i]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
