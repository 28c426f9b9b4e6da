package app

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"haven/shared/record"
)

// TestReportCountsTheYear: a home's report counts, month by month, the
// residents then in the home and those of them with a plan, a CPR
// recommendation and a preferred place; the deaths of each month and
// whether in the preferred place; the advice calls and their outcomes.
// Recording a death and an advice call now moves this month's figures
// and nothing else; the CSV holds the same numbers.
func TestReportCountsTheYear(t *testing.T) {
	a, c, h := openApp(t, 6, "Mo Manager", managerPIN)
	c.t = c.t.Add(time.Hour)
	before, err := a.Report("home-1")
	if err != nil {
		t.Fatal(err)
	}
	if len(before.Months) != ReportMonths {
		t.Fatalf("%d months", len(before.Months))
	}
	now := before.Latest()
	if now.Residents != 6 || now.WithCPR != 6 || now.WithPreferred != 6 || now.WithPlan == 0 {
		t.Fatalf("this month: %+v; want 6 residents, each with a CPR recommendation and a preferred place", now)
	}
	for i := 1; i < len(before.Months); i++ {
		if before.Months[i].Residents < before.Months[i-1].Residents {
			t.Fatalf("residents fell from %d to %d with nobody leaving", before.Months[i-1].Residents, before.Months[i].Residents)
		}
	}

	id := h.Residents[0].RecordID
	if _, err := a.Discharge(id, record.StatusDied, c.t.Format(record.DateLayout), "care-home"); err != nil {
		t.Fatal(err)
	}
	a.Lock()
	if _, err := a.Unlock(staffID(t, a, "Dr Ada Quill"), gpPIN); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RecordAdviceCall(h.Residents[1].RecordID, AdviceCallForm{Method: "phone", Caller: "Sam Senior", Concern: "fall",
		Advice: "Ambulance", Outcome: "conveyed"}); err != nil {
		t.Fatal(err)
	}
	after, err := a.Report("home-1")
	if err != nil {
		t.Fatal(err)
	}
	got, want := after.Latest(), now
	want.Residents--
	want.WithCPR--
	want.WithPreferred--
	want.WithPlan--
	want.Deaths++
	want.DeathsInPreferred++
	want.Calls++
	if got.Residents != want.Residents || got.WithCPR != want.WithCPR || got.WithPreferred != want.WithPreferred ||
		got.Deaths != want.Deaths || got.DeathsInPreferred != want.DeathsInPreferred || got.Calls != want.Calls ||
		got.Outcomes["conveyed"] != now.Outcomes["conveyed"]+1 || got.Conveyed() != now.Conveyed()+1 {
		t.Fatalf("this month after a death in the preferred place and a conveyance: %+v; want %+v", got, want)
	}
	for i := 0; i < ReportMonths-1; i++ {
		if after.Months[i].Residents != before.Months[i].Residents || after.Months[i].Calls != before.Months[i].Calls {
			t.Fatalf("month %d changed: %+v, was %+v", i, after.Months[i], before.Months[i])
		}
	}
	if y, was := after.Year(), before.Year(); y.Deaths != was.Deaths+1 || y.Calls != was.Calls+1 || y.Conveyed() != was.Conveyed()+1 {
		t.Fatalf("the year's totals %+v; were %+v, want one more death, call and conveyance", y, was)
	}
	rows, err := csv.NewReader(bytes.NewReader(after.CSV())).ReadAll()
	if err != nil || len(rows) != ReportMonths+1 {
		t.Fatalf("CSV: %d rows, %v", len(rows), err)
	}
	last := rows[len(rows)-1]
	col := func(name string) int {
		for i, h := range rows[0] {
			if h == name {
				n, _ := strconv.Atoi(last[i])
				return n
			}
		}
		t.Fatalf("no column %s in %v", name, rows[0])
		return 0
	}
	if col("residents") != got.Residents || col("deaths_in_preferred_place") != got.DeathsInPreferred || col("calls_conveyed") != got.Outcomes["conveyed"] {
		t.Fatalf("the CSV's last row %v does not hold this month's figures %+v", last, got)
	}
}

// TestRowLostInACrashIsReadAgain: a row saved lazily after a timeline
// change and lost (the computer stopped first) is read again from the
// timeline at the next start, so the advice call still counts.
func TestRowLostInACrashIsReadAgain(t *testing.T) {
	a, c, h := openApp(t, 2, "Dr Ada Quill", gpPIN)
	id := h.Residents[0].RecordID
	if _, err := a.RecordAdviceCall(id, AdviceCallForm{Method: "phone", Caller: "Sam Senior", Concern: "fall", Advice: "observe", Outcome: "gp"}); err != nil {
		t.Fatal(err)
	}
	calls := func(a *App) int {
		for _, r := range a.Residents(Filter{}) {
			if r.ID == id {
				return len(r.Calls)
			}
		}
		return -1
	}
	want := calls(a)
	if want < 1 {
		t.Fatalf("%d calls counted after one was recorded", want)
	}
	// The row as it was before the call, saved over the lazy one: as if
	// the computer stopped before the lazy save.
	a.idx.flush()
	a.idx.mu.Lock()
	stale := *a.idx.rows[id]
	a.idx.mu.Unlock()
	stale.Calls, stale.CallsHeads, stale.TimelineSeq = nil, "", 0
	b, _ := json.Marshal(stale)
	if err := a.st.Put(context.Background(), nsRow, id.String(), b); err != nil {
		t.Fatal(err)
	}
	dir := a.dir
	a.Close()
	b2, err := Open(dir, Options{Now: c.now, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer b2.Close()
	if _, err := b2.Unlock(staffID(t, b2, "Dr Ada Quill"), gpPIN); err != nil {
		t.Fatal(err)
	}
	b2.idx.verify() // what the start ran in the background, run to its end here
	if got := calls(b2); got != want {
		t.Fatalf("after the restart the row counts %d calls; want %d", got, want)
	}
}
