package demo

import (
	"testing"
	"time"

	"haven/shared/cert"
	"haven/shared/nhs"
	"haven/shared/record"
)

var testNow = time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)

// testHome makes a demo home of n residents with notes notes each.
func testHome(t *testing.T, n, notes int, seed int64) (*Home, *Certifier) {
	t.Helper()
	_, key := cert.NewKey()
	c := NewCertifier(key, "home-demo")
	h, err := NewHome("home-demo", "Larch House", n, notes, seed, testNow, c)
	if err != nil {
		t.Fatal(err)
	}
	return h, c
}

func TestHomeIsValidAndDeterministic(t *testing.T) {
	h, c := testHome(t, 5, 3, 1)
	d, _ := record.ReadDirectory(h.Directory)
	if len(d.Residents) != 5 {
		t.Fatalf("directory lists %d residents, want 5", len(d.Residents))
	}
	seen := map[string]bool{}
	for _, r := range h.Residents {
		rec, err := record.Read(r.Record, c.Trust())
		if err != nil || len(rec.Problems) > 0 {
			t.Fatalf("record: %v %v", err, rec.Problems)
		}
		n, err := nhs.Parse(rec.Identity.NHSNumber, nhs.Demo)
		if err != nil || !n.InTestRange() {
			t.Fatalf("NHS number %q: %v; demo data must use the 999 test range", rec.Identity.NHSNumber, err)
		}
		if seen[rec.Identity.NHSNumber] {
			t.Fatalf("NHS number %s repeated", rec.Identity.NHSNumber)
		}
		seen[rec.Identity.NHSNumber] = true
		if _, ok := rec.Decision(record.KindCPR, "").Settled(); !ok {
			t.Fatal("demo resident has no CPR decision")
		}
		tl, _ := record.ReadTimeline(r.Timeline)
		if len(tl.Notes) != 3 {
			t.Fatalf("%d notes, want 3", len(tl.Notes))
		}
	}
	again, _ := NewHome("home-demo", "Larch House", 5, 3, 1, testNow, c)
	r1, _ := record.Read(h.Residents[2].Record, c.Trust())
	r2, _ := record.Read(again.Residents[2].Record, c.Trust())
	if r1.Identity != r2.Identity {
		t.Fatal("the same seed made different people")
	}
}

// TestReviewsAreSpreadAsInAHome: in a demo home most residents' reviews
// are in date, a few are due this week and a few overdue, so that the
// badges mean something; the same holds for the end-of-life plans.
func TestReviewsAreSpreadAsInAHome(t *testing.T) {
	h, c := testHome(t, 120, 0, 7)
	now := testNow
	count := map[string]int{}
	plans := map[string]int{}
	for _, r := range h.Residents {
		rec, err := record.Read(r.Record, c.Trust())
		if err != nil {
			t.Fatal(err)
		}
		worst := record.ReviewOK
		for _, it := range rec.Reviews() {
			switch st := record.ReviewState(it.Due, now); {
			case st == record.ReviewOverdue:
				worst = st
			case (st == record.ReviewDue || st == record.ReviewSoon) && worst == record.ReviewOK:
				worst = record.ReviewSoon
			}
		}
		count[worst]++
		plans[record.ReviewState(rec.PlanReviewDue(), now)]++
	}
	n := len(h.Residents)
	if count[record.ReviewOK] < n/2 || count[record.ReviewOverdue] == 0 || count[record.ReviewOverdue] > n/4 || count[record.ReviewSoon] == 0 {
		t.Fatalf("residents by their most pressing review: %v of %d; want most in date, some due this week, a few overdue", count, n)
	}
	if plans[record.ReviewNotSet] > 0 || plans[record.ReviewOK] < n/2 || plans[record.ReviewOverdue] == 0 {
		t.Fatalf("end-of-life plans by review state: %v of %d", plans, n)
	}
}
