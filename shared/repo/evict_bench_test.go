package repo

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
)

// BenchmarkDocMemory measures what an open document costs in memory (the
// process's resident set, Go and Automerge together) against its saved
// size and the estimate, for timelines of 1, 100 and 1,000 notes
// (TestDocMemoryEstimate checks the estimate for more shapes, each in a
// fresh process). Then it opens the same documents through a Repo
// bounded to two of them and reports the peak, and the resident set once
// they are all evicted and swept: what eviction gives back. It runs once
// whatever b.N is.
func BenchmarkDocMemory(b *testing.B) {
	for _, c := range []struct{ notes, docs int }{{1, 400}, {100, 100}, {1000, 20}} {
		b.Run(fmt.Sprintf("notes=%d", c.notes), func(b *testing.B) {
			st := openStore(b, b.TempDir())
			defer st.Close()
			saved, ids := storeCopies(b, st, testEditor(b), c.notes, c.docs)

			base := settledRSS(b)
			r := New(st, Options{})
			var est int64
			for _, id := range ids {
				h, err := r.Open(id)
				if err != nil {
					b.Fatal(err)
				}
				h.Doc().Heads()
			}
			_, est = r.Usage()
			open := settledRSS(b) - base
			r.Close()
			r = nil
			perDoc := open / int64(len(ids))

			bound := 2 * est / int64(len(ids))
			resetPeak(b)
			start := settledRSS(b)
			r = New(st, Options{MaxBytes: bound})
			for _, id := range ids {
				h, err := r.Open(id)
				if err != nil {
					b.Fatal(err)
				}
				h.Doc().Heads()
			}
			peak := procStatus(b, "VmHWM") - start
			after := settledRSS(b) - start
			r.Close()

			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(saved), "saved-B/doc")
			b.ReportMetric(float64(perDoc), "rss-B/doc")
			b.ReportMetric(float64(perDoc)/float64(saved), "rss/saved")
			b.ReportMetric(float64(est/int64(len(ids))), "estimate-B/doc")
			b.ReportMetric(float64(peak)/(1<<20), "bounded-peak-MiB")
			b.Logf("%d notes: saved %d B; open %d B each (%.1f× saved), estimated %d B; %d documents through a bound of %d B: peak +%.1f MiB, +%.1f MiB once evicted (all open: %.1f MiB)",
				c.notes, saved, perDoc, float64(perDoc)/float64(saved), est/int64(len(ids)), len(ids), bound,
				float64(peak)/(1<<20), float64(after)/(1<<20), float64(open)/(1<<20))
		})
	}
}

// storeCopies stores n copies (each under its own ID) of a timeline with
// the given number of notes, and returns its saved size and their IDs.
func storeCopies(b *testing.B, st Storage, e *record.Editor, notes, n int) (int, []docid.ID) {
	b.Helper()
	docs, err := e.NewResident("home-1", testIdentity())
	if err != nil {
		b.Fatal(err)
	}
	for i := range notes {
		if _, err := e.AddNote(docs.Timeline, record.Note{Kind: record.NoteKindNote, Text: fmt.Sprintf("Note %d: ate well, walked to the garden, settled at night.", i)}); err != nil {
			b.Fatal(err)
		}
	}
	data := docs.Timeline.Save()
	r := New(st, Options{})
	defer r.Close()
	ids := make([]docid.ID, n)
	for i := range ids {
		doc, err := crdt.Load(data)
		if err != nil {
			b.Fatal(err)
		}
		ids[i] = docid.New()
		if _, err := r.Create(context.Background(), ids[i], doc); err != nil {
			b.Fatal(err)
		}
	}
	return len(data), ids
}

// settledRSS is the resident set once the collector has run, the
// finalizers it queued (Automerge's frees) have had their turn, and the Go
// runtime has handed back what it can.
func settledRSS(b testing.TB) int64 {
	done := make(chan struct{})
	sentinel := new([64]byte)
	runtime.SetFinalizer(sentinel, func(*[64]byte) { close(done) })
	sentinel = nil
	runtime.GC()
	<-done // the finalizers run one after another, this one among them
	debug.FreeOSMemory()
	return procStatus(b, "VmRSS")
}

// procStatus reads a size in bytes from /proc/self/status.
func procStatus(b testing.TB, field string) int64 {
	b.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skip("no /proc:", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			if err != nil {
				b.Fatal(err)
			}
			return kb << 10
		}
	}
	b.Fatalf("/proc/self/status: no %s", field)
	return 0
}

// resetPeak starts VmHWM again from the resident set now.
func resetPeak(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Skip("cannot reset the peak resident set:", err)
	}
}
