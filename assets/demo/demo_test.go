package demo

import (
	"testing"
	"time"

	"haven/shared/cert"
	"haven/shared/nhs"
	"haven/shared/record"
)

func TestHomeIsValidAndDeterministic(t *testing.T) {
	now := time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC)
	_, key := cert.NewKey()
	c := NewCertifier(key, "home-demo")
	h, err := NewHome("home-demo", "Larch House", 5, 3, 1, now, c)
	if err != nil {
		t.Fatal(err)
	}
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
	again, _ := NewHome("home-demo", "Larch House", 5, 3, 1, now, c)
	r1, _ := record.Read(h.Residents[2].Record, c.Trust())
	r2, _ := record.Read(again.Residents[2].Record, c.Trust())
	if r1.Identity != r2.Identity {
		t.Fatal("the same seed made different people")
	}
}
