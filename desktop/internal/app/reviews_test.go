package app

import (
	"slices"
	"testing"
	"time"

	"haven/assets/demo"
	"haven/shared/record"
)

// overdueOn lists, from the rows' review dates alone, the residents with a
// review before day.
func overdueOn(rows []Row, day time.Time) []string {
	today := day.Format(record.DateLayout)
	var out []string
	for _, r := range rows {
		if slices.ContainsFunc(r.Reviews, func(it record.ReviewItem) bool { return it.Due < today }) {
			out = append(out, r.ID.String())
		}
	}
	return out
}

func ids(rows []Row) []string {
	var out []string
	for _, r := range rows {
		out = append(out, r.ID.String())
	}
	return out
}

// TestReviewsFollowTheClock: the list's overdue badge and filter are
// worked out on the day they are shown, so a desktop left running, or
// started again, finds the reviews that fell due overnight; the day's
// change wakes the screens once. The manager's week lists every review
// overdue or due within seven days, soonest first.
func TestReviewsFollowTheClock(t *testing.T) {
	a, clk, _ := openApp(t, 30, "Mo Manager", managerPIN)
	all := a.Residents(Filter{})
	before := overdueOn(all, clk.t)
	if got := ids(a.Residents(Filter{Overdue: true})); !slices.Equal(got, before) {
		t.Fatalf("overdue on day one: %v, want %v", got, before)
	}
	if len(before) == len(all) {
		t.Fatalf("every resident has a review overdue: the badge would teach staff to ignore it")
	}
	events := 0
	a.Subscribe(func(e Event) {
		if e.Kind == EventList {
			events++
		}
	})
	if a.newDay() {
		t.Fatal("a new day announced on the same day")
	}
	clk.t = clk.t.Add(12 * 24 * time.Hour)
	if !a.newDay() || events != 1 || a.newDay() {
		t.Fatalf("the day's change: %d list events; want one, once", events)
	}
	after := overdueOn(all, clk.t)
	if len(after) <= len(before) {
		t.Fatalf("twelve days on, %d residents overdue as before (%d): the test shows nothing", len(after), len(before))
	}
	got := a.Residents(Filter{Overdue: true})
	if !slices.Equal(ids(got), after) {
		t.Fatalf("overdue twelve days on: %v, want %v", ids(got), after)
	}
	for _, r := range got {
		n := 0
		for _, it := range r.Reviews {
			if it.Due < clk.t.Format(record.DateLayout) {
				n++
			}
		}
		if r.Overdue != n {
			t.Errorf("%s: badge says %d overdue, the dates %d", r.Name(), r.Overdue, n)
		}
	}
	week := a.ReviewsDue()
	if len(week) == 0 {
		t.Fatal("nothing due or overdue in a home of 30, twelve days on")
	}
	end := clk.t.AddDate(0, 0, record.SoonDays).Format(record.DateLayout)
	for i, d := range week {
		if d.Due > end || d.State == ReviewOK || d.State == ReviewNotSet || i > 0 && week[i-1].Due > d.Due {
			t.Fatalf("the manager's week holds %+v (item %d)", d, i)
		}
	}
}

// TestEndOfLifePlanReviewAndPlaceOfDeathAlerts: the front sheet raises an
// end-of-life plan past its three months, and a blank first preferred
// place of death.
func TestEndOfLifePlanReviewAndPlaceOfDeathAlerts(t *testing.T) {
	a, clk, h := openApp(t, 1, "Dr Ada Quill", gpPIN)
	id := h.Residents[0].RecordID
	fs, err := a.FrontSheet(id)
	if err != nil {
		t.Fatal(err)
	}
	for _, al := range fs.Alerts {
		if al == planAlertWords[record.AlertNoPlaceOfDeath] {
			t.Fatalf("the demo resident has a place of death, but the front sheet says %q", al)
		}
	}
	clk.t = clk.t.AddDate(0, record.PlanReviewMonths+1, 0)
	fs, err = a.FrontSheet(id)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(fs.Alerts, func(s string) bool { return len(s) > 30 && s[:30] == "End-of-life plan review overdu" }) {
		t.Fatalf("four months on, no plan review alert: %q", fs.Alerts)
	}
	fresh, _, err := a.AddResident("home-1", record.Identity{NHSNumber: demo.NHSNumber(5001), GivenName: "Ivy", FamilyName: "Hart",
		DateOfBirth: "1930-01-02", Sex: "female", Room: "3"})
	if err != nil {
		t.Fatal(err)
	}
	fs, err = a.FrontSheet(fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(fs.Alerts, planAlertWords[record.AlertNoPlaceOfDeath]) {
		t.Fatalf("no place of death recorded, and not raised: %q", fs.Alerts)
	}
}
