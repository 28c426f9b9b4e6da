package record

import (
	"sort"
	"strings"
	"time"
)

// Review states of a date something is due for review, as of a day. They
// are computed whenever they are shown, never stored: a state stored
// yesterday is wrong today.
const (
	ReviewOverdue = "overdue"
	ReviewDue     = "due"  // today
	ReviewSoon    = "soon" // within the next 7 days
	ReviewOK      = "ok"
	ReviewNotSet  = "not set"
)

// SoonDays is how far ahead a review counts as soon: the week a manager
// plans.
const SoonDays = 7

// PlanReviewMonths is the longest an end-of-life plan (the ReSPECT
// recommendations and the EPaCCS items) may go without review (EPaCCS: at
// most three months apart).
const PlanReviewMonths = 3

// ReviewState says where a review date (YYYY-MM-DD) stands on now's day,
// in now's location (the home's clock).
func ReviewState(due string, now time.Time) string { return DayOf(now).State(due) }

// ReviewDay is a day as review dates are judged on it, worked out once for
// judging many (a list of a home's residents on every keystroke).
type ReviewDay struct{ today, soon string }

// DayOf is now's day, in now's location.
func DayOf(now time.Time) ReviewDay {
	return ReviewDay{now.Format(DateLayout), now.AddDate(0, 0, SoonDays).Format(DateLayout)}
}

// State says where a review date stands on the day (see ReviewState).
func (d ReviewDay) State(due string) string {
	switch {
	case due == "":
		return ReviewNotSet
	case due < d.today:
		return ReviewOverdue
	case due == d.today:
		return ReviewDue
	case due <= d.soon:
		return ReviewSoon
	}
	return ReviewOK
}

// ReviewItem is one thing of a record that is reviewed by a date.
type ReviewItem struct {
	What string `json:"what"` // a care-plan domain, or PlanReviewItem
	Due  string `json:"due"`  // YYYY-MM-DD
}

// PlanReviewItem names the end-of-life plan among a record's reviews.
const PlanReviewItem = "end-of-life-plan"

// Reviews lists what the record has due for review and when, soonest
// first: each care-plan domain with a review date, and the end-of-life
// plan (see PlanReviewDue).
func (r *Record) Reviews() []ReviewItem {
	var out []ReviewItem
	for _, e := range r.CarePlan {
		if e.ReviewDue != "" {
			out = append(out, ReviewItem{What: string(e.Domain), Due: e.ReviewDue})
		}
	}
	if due := r.PlanReviewDue(); due != "" {
		out = append(out, ReviewItem{What: PlanReviewItem, Due: due})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Due < out[j].Due })
	return out
}

// PlanReviewDue is when the end-of-life plan is next due for review:
// PlanReviewMonths after it was last made or reviewed (the latest of a
// verified CPR, clinical-focus or ceiling decision, the clinician's
// signature, and a section 9 review), or the review date recorded with the
// CPR decision if that is sooner. "" when there is no plan yet.
func (r *Record) PlanReviewDue() string {
	last := ""
	later := func(date string) {
		if len(date) >= len(DateLayout) && date[:len(DateLayout)] > last {
			last = date[:len(DateLayout)]
		}
	}
	for _, k := range []Kind{KindCPR, KindFocus, KindCeiling} {
		if st := r.Decision(k, ""); st != nil {
			for _, e := range st.Current {
				later(e.At)
			}
		}
	}
	later(r.Wishes.ClinicianAt)
	for _, rv := range r.Wishes.Reviews {
		later(rv.Date)
	}
	if last == "" {
		return ""
	}
	t, err := time.Parse(DateLayout, last)
	if err != nil {
		return ""
	}
	due := t.AddDate(0, PlanReviewMonths, 0).Format(DateLayout)
	if set := r.Wishes.CPRReviewDate; set != "" && set >= last && set < due {
		due = set
	}
	return due
}

// Plan alerts: what a record must say and does not.
const (
	// AlertNoPlaceOfDeath: the first preferred place of death is blank
	// (EPaCCS: raise an alert; "not recorded" must be explicit).
	AlertNoPlaceOfDeath = "no-preferred-place-of-death"
)

// PlanAlerts lists what the end-of-life plan lacks that must be raised. A
// place of death in conflict is not blank: the conflict is raised as such.
func (r *Record) PlanAlerts() []string {
	var out []string
	st := r.Decision(KindPlaceOfDeath, "")
	if st == nil || !st.Conflict() {
		var p PlaceOfDeath
		e, ok := st.Settled()
		if !ok || e.Decode(&p) != nil || strings.TrimSpace(p.First) == "" {
			out = append(out, AlertNoPlaceOfDeath)
		}
	}
	return out
}
