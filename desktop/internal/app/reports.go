package app

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"strconv"
	"time"

	"haven/shared/record"
)

// A home's figures, month by month over the last twelve, for its manager:
// from each resident's row (Row.Created, Row.Milestones, Row.Calls), so a
// report reads no documents.

// MonthFigures are one month's figures for a home. The counts of residents
// are as the month ended (for the current month, as of today); deaths and
// advice calls are those within the month.
type MonthFigures struct {
	Month time.Time // its first day
	// Residents in the home; of them, those with a published ReSPECT plan,
	// a CPR recommendation, a first preferred place of death.
	Residents, WithPlan, WithCPR, WithPreferred int
	// Deaths, and those in the place the person wished for.
	Deaths, DeathsInPreferred int
	// Advice calls, and by outcome (record.CallOutcomes).
	Calls    int
	Outcomes map[string]int
}

// Conveyed is the month's advice calls that ended in a conveyance to
// hospital or a 999 call: the admissions the service sets out to avoid.
func (m MonthFigures) Conveyed() int { return m.Outcomes["conveyed"] + m.Outcomes["999"] }

// Report is a home's figures: twelve months, oldest first, the last the
// current month to date; and what can only be counted today.
type Report struct {
	Home, HomeName string
	Months         []MonthFigures
	// ReviewsOverdue and Conflicts count residents now: with a review
	// past its date, with decisions in conflict.
	ReviewsOverdue, Conflicts int
}

// Latest is the current month's figures.
func (r Report) Latest() MonthFigures { return r.Months[len(r.Months)-1] }

// Year is the twelve months together: their deaths and advice calls
// summed (the counts of residents are not, being as each month ended).
func (r Report) Year() MonthFigures {
	y := MonthFigures{Outcomes: map[string]int{}}
	for _, m := range r.Months {
		y.Deaths += m.Deaths
		y.DeathsInPreferred += m.DeathsInPreferred
		y.Calls += m.Calls
		for o, n := range m.Outcomes {
			y.Outcomes[o] += n
		}
	}
	return y
}

// ReportMonths is how many months a report covers.
const ReportMonths = 12

// Report counts a home's figures. Every resident the computer holds who
// ever lived there counts, discharged and died included.
func (a *App) Report(home string) (Report, error) {
	if a.CurrentUser() == nil {
		return Report{}, ErrLockedScreen
	}
	now := a.opts.Now()
	today := now.Format(record.DateLayout)
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, 1-ReportMonths, 0)
	rep := Report{Home: home, Months: make([]MonthFigures, ReportMonths)}
	ends := make([]string, ReportMonths)
	for i := range rep.Months {
		m := first.AddDate(0, i, 0)
		rep.Months[i] = MonthFigures{Month: m, Outcomes: map[string]int{}}
		ends[i] = m.AddDate(0, 1, -1).Format(record.DateLayout)
		if ends[i] > today {
			ends[i] = today
		}
	}
	monthOf := func(date string) int {
		t, err := time.Parse(record.DateLayout, date)
		if err != nil {
			return -1
		}
		i := (t.Year()-first.Year())*12 + int(t.Month()) - int(first.Month())
		if i < 0 || i >= ReportMonths || date > today {
			return -1
		}
		return i
	}
	for _, r := range a.Residents(Filter{Discharged: true}) {
		if r.Home != home || !r.Held {
			continue
		}
		rep.HomeName = r.HomeName
		ms := r.Milestones
		if r.Status == "" || r.Status == record.StatusActive {
			if r.Overdue > 0 {
				rep.ReviewsOverdue++
			}
			if len(r.Conflicts) > 0 {
				rep.Conflicts++
			}
		}
		for i, end := range ends {
			if r.Created == "" || r.Created > end || ms.Ended != "" && ms.Ended <= end {
				continue
			}
			f := &rep.Months[i]
			f.Residents++
			if ms.Plan != "" && ms.Plan <= end {
				f.WithPlan++
			}
			if ms.CPR != "" && ms.CPR <= end {
				f.WithCPR++
			}
			if ms.Preferred != "" && ms.Preferred <= end {
				f.WithPreferred++
			}
		}
		if i := monthOf(ms.Ended); ms.Died && i >= 0 {
			rep.Months[i].Deaths++
			if ms.DiedInPreferredPlace() {
				rep.Months[i].DeathsInPreferred++
			}
		}
		for _, c := range r.Calls {
			if i := monthOf(c.Date); i >= 0 {
				rep.Months[i].Calls++
				rep.Months[i].Outcomes[c.Outcome]++
			}
		}
	}
	return rep, nil
}

// CSV is the report as a spreadsheet opens it: a header row, then one row
// a month, oldest first; the counts of today in the last two columns of
// the current month's row.
func (r Report) CSV() []byte {
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	head := []string{"month", "residents", "with_respect_plan", "with_cpr_recommendation", "with_preferred_place_of_death",
		"deaths", "deaths_in_preferred_place", "advice_calls"}
	for _, o := range record.CallOutcomes {
		head = append(head, "calls_"+o)
	}
	head = append(head, "residents_with_reviews_overdue", "residents_with_conflicts")
	w.Write(head)
	for i, m := range r.Months {
		row := []string{m.Month.Format("2006-01")}
		for _, n := range []int{m.Residents, m.WithPlan, m.WithCPR, m.WithPreferred, m.Deaths, m.DeathsInPreferred, m.Calls} {
			row = append(row, strconv.Itoa(n))
		}
		for _, o := range record.CallOutcomes {
			row = append(row, strconv.Itoa(m.Outcomes[o]))
		}
		if i == len(r.Months)-1 {
			row = append(row, strconv.Itoa(r.ReviewsOverdue), strconv.Itoa(r.Conflicts))
		} else {
			row = append(row, "", "")
		}
		w.Write(row)
	}
	w.Flush()
	return b.Bytes()
}

// Percent words part of whole ("12 of 40 (30%)").
func Percent(part, whole int) string {
	if whole == 0 {
		return fmt.Sprintf("%d", part)
	}
	return fmt.Sprintf("%d of %d (%d%%)", part, whole, (part*100+whole/2)/whole)
}
