package record

import (
	"errors"
	"slices"
	"testing"
	"time"
)

// TestReviewState: a date's state moves with the day it is looked at,
// across the day boundary in the home's own time.
func TestReviewState(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	evening := time.Date(2026, 6, 30, 23, 30, 0, 0, london) // 22:30 UTC
	for _, c := range []struct {
		due  string
		at   time.Time
		want string
	}{
		{"", evening, ReviewNotSet},
		{"2026-06-29", evening, ReviewOverdue},
		{"2026-06-30", evening, ReviewDue},
		{"2026-07-01", evening, ReviewSoon},
		{"2026-07-07", evening, ReviewSoon},
		{"2026-07-08", evening, ReviewOK},
		{"2026-06-30", evening.Add(time.Hour), ReviewOverdue}, // past midnight in London
		{"2026-07-01", evening.Add(time.Hour), ReviewDue},
	} {
		if got := ReviewState(c.due, c.at); got != c.want {
			t.Errorf("ReviewState(%q, %v) = %q, want %q", c.due, c.at, got, c.want)
		}
	}
}

// TestPlanReviewDue: the end-of-life plan is due three months after it
// was last made or reviewed, sooner if a review date was set with the CPR
// decision; a record without a plan has none due.
func TestPlanReviewDue(t *testing.T) {
	gp := editor(t, "Dr Ada Quill", GP)
	doc := newResident(t, gp)
	r := read(t, doc)
	if due := r.PlanReviewDue(); due != "" || slices.ContainsFunc(r.Reviews(), func(i ReviewItem) bool { return i.What == PlanReviewItem }) {
		t.Fatalf("no plan yet, but a plan review due %q", due)
	}
	// The plan made two months ago (the editor's clock then).
	made := testNow.AddDate(0, -2, 0)
	gp.Rules.Now = func() time.Time { return made }
	if _, err := gp.Decide(doc, KindCPR, "", CPRNotRecommended, "frailty"); err != nil {
		t.Fatal(err)
	}
	gp.Rules.Now = func() time.Time { return testNow }
	want := made.AddDate(0, PlanReviewMonths, 0).Format(DateLayout)
	if due := read(t, doc).PlanReviewDue(); due != want {
		t.Fatalf("plan made %s: review due %q, want %q", made.Format(DateLayout), due, want)
	}
	// A review today moves the date on.
	reviewed := testNow.Format(DateLayout)
	if _, err := gp.AddReview(doc, Review{Date: reviewed, Clinician: "Dr Ada Quill", RemainsRelevant: true}); err != nil {
		t.Fatal(err)
	}
	want = testNow.AddDate(0, PlanReviewMonths, 0).Format(DateLayout)
	if due := read(t, doc).PlanReviewDue(); due != want {
		t.Fatalf("reviewed %s: due %q, want %q", reviewed, due, want)
	}
	// A sooner review date set with the decision wins; a later one does not.
	w := read(t, doc).Wishes
	w.CPRReviewDate = testNow.AddDate(0, 1, 0).Format(DateLayout)
	if err := gp.UpdateWishes(doc, w); err != nil {
		t.Fatal(err)
	}
	if due := read(t, doc).PlanReviewDue(); due != w.CPRReviewDate {
		t.Fatalf("review date set for %s: due %q", w.CPRReviewDate, due)
	}
	w.CPRReviewDate = testNow.AddDate(1, 0, 0).Format(DateLayout)
	if err := gp.UpdateWishes(doc, w); err != nil {
		t.Fatal(err)
	}
	if due := read(t, doc).PlanReviewDue(); due != want {
		t.Fatalf("review date set a year on: due %q, want at most three months, %q", due, want)
	}
	items := read(t, doc).Reviews()
	if !slices.ContainsFunc(items, func(i ReviewItem) bool { return i.What == PlanReviewItem && i.Due == want }) {
		t.Fatalf("Reviews() = %+v lacks the plan", items)
	}
	if !slices.IsSortedFunc(items, func(a, b ReviewItem) int {
		if a.Due < b.Due {
			return -1
		}
		if a.Due > b.Due {
			return 1
		}
		return 0
	}) {
		t.Fatalf("Reviews() not soonest first: %+v", items)
	}
}

// TestBlankPlaceOfDeathIsRaised: no preferred place of death is an alert
// (Haven refuses a blank first choice; one another client wrote is raised
// the same way); a recorded first choice is not; a conflict is raised as
// a conflict, not as blank.
func TestBlankPlaceOfDeathIsRaised(t *testing.T) {
	senior := editor(t, "Sam Senior", SeniorCarer)
	doc := newResident(t, senior)
	if a := read(t, doc).PlanAlerts(); !slices.Contains(a, AlertNoPlaceOfDeath) {
		t.Fatalf("nothing recorded: alerts %q", a)
	}
	if _, err := senior.Decide(doc, KindPlaceOfDeath, "", PlaceOfDeath{First: "care-home", Second: "hospice"}, "resident's wish"); err != nil {
		t.Fatal(err)
	}
	if a := read(t, doc).PlanAlerts(); slices.Contains(a, AlertNoPlaceOfDeath) {
		t.Fatalf("first choice recorded: alerts %q", a)
	}
	other, err := doc.Fork()
	if err != nil {
		t.Fatal(err)
	}
	nurse := editor(t, "Sam Other", SeniorCarer)
	if _, err := senior.Decide(doc, KindPlaceOfDeath, "", PlaceOfDeath{First: "hospice"}, "changed her mind"); err != nil {
		t.Fatal(err)
	}
	if _, err := nurse.Decide(other, KindPlaceOfDeath, "", PlaceOfDeath{First: "hospital"}, "family"); err != nil {
		t.Fatal(err)
	}
	sync(t, doc, other)
	r := read(t, doc)
	if !r.Decision(KindPlaceOfDeath, "").Conflict() {
		t.Fatal("no conflict made")
	}
	if a := r.PlanAlerts(); slices.Contains(a, AlertNoPlaceOfDeath) {
		t.Fatalf("a conflict raised as blank: %q", a)
	}
}

// TestOnePersonOneRecord: a home admits an NHS number once (spaces or not,
// discharged or not: a return is a readmission of that record); a rename
// keeps its own number, but cannot take another resident's.
func TestOnePersonOneRecord(t *testing.T) {
	mgr := editor(t, "Mo Manager", HomeManager)
	dir, _, err := mgr.NewDirectory("home-1", "Larch House")
	if err != nil {
		t.Fatal(err)
	}
	first, err := mgr.AddResident(dir, identity())
	if err != nil {
		t.Fatal(err)
	}
	again := identity()
	again.GivenName, again.NHSNumber = "Edie", "999 000 0018"
	var dup *DuplicateError
	if _, err := mgr.AddResident(dir, again); !errors.As(err, &dup) || dup.Held.ID != first.RecordID.String() || dup.Held.Room != "12" || dup.Held.FamilyName != "Marlow" {
		t.Fatalf("the same NHS number again: %v", err)
	}
	other := identity()
	other.NHSNumber, other.GivenName, other.Room = "9990000026", "Alfred", "14"
	second, err := mgr.AddResident(dir, other)
	if err != nil {
		t.Fatal(err)
	}
	renamed := identity()
	renamed.FamilyName, renamed.Status = "Marlow-Hughes", StatusActive
	if err := mgr.UpdateResident(dir, first.Record, renamed); err != nil {
		t.Fatalf("a rename keeping its own number: %v", err)
	}
	taken := other
	taken.NHSNumber, taken.Status = identity().NHSNumber, StatusActive
	if err := mgr.UpdateResident(dir, second.Record, taken); !errors.As(err, &dup) || dup.Held.ID != first.RecordID.String() {
		t.Fatalf("taking another resident's number: %v", err)
	}
	if r := read(t, second.Record); r.Identity.NHSNumber != "9990000026" {
		t.Fatalf("the refused change was saved: %s", r.Identity.NHSNumber)
	}
	if err := mgr.Discharge(dir, first.Record, StatusDischarged, testNow.Format(DateLayout), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := mgr.AddResident(dir, again); !errors.As(err, &dup) {
		t.Fatalf("a discharged resident's number admitted again as a new record: %v", err)
	}
}
