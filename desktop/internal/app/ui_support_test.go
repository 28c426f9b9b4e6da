package app

import (
	"errors"
	"strings"
	"testing"
	"time"

	"haven/assets/demo"
	"haven/shared/news2"
	"haven/shared/record"
)

// Permissions must offer exactly what the record's rules accept: a button
// shown to someone who is then refused wastes a night-shift minute.
func TestPermissionsMatchWhatIsAccepted(t *testing.T) {
	for _, who := range []struct{ name, pin string }{{"Mo Manager", managerPIN}, {"Casey Carer", carerPIN}, {"Dr Ada Quill", gpPIN}} {
		t.Run(who.name, func(t *testing.T) {
			a, _, h := openApp(t, 1, who.name, who.pin)
			p := a.Permissions()
			id := h.Residents[0].RecordID
			_, _, err := a.Admit("home-1", Admission{GivenName: "Olive", FamilyName: "Penrose", NHSNumber: demo.NHSNumber(5001), DateOfBirth: "6/5/1933", Sex: "female"})
			if (err == nil) != p.EditRecord {
				t.Errorf("EditRecord = %v but adding a resident returned %v", p.EditRecord, err)
			}
			_, err = a.AddNote(id, "Settled after supper.")
			if (err == nil) != p.AddNote {
				t.Errorf("AddNote = %v but adding a note returned %v", p.AddNote, err)
			}
			_, err = a.RecordAdviceCall(id, AdviceCallForm{Method: "phone", Caller: "Sam Senior", Concern: "fall", Advice: "observe", Outcome: "self-care"})
			if (err == nil) != p.AdviceCall {
				t.Errorf("AdviceCall = %v but recording a call returned %v", p.AdviceCall, err)
			}
			wv, _ := a.Wishes(id)
			if wv.CanEditClinical != p.EditClinical {
				t.Errorf("EditClinical = %v, Wishes().CanEditClinical = %v", p.EditClinical, wv.CanEditClinical)
			}
		})
	}
	a, _, _ := openApp(t, 1, "Mo Manager", managerPIN)
	a.Lock()
	if a.Permissions() != (Permissions{}) {
		t.Fatal("a locked screen offers actions")
	}
}

func TestNormaliseDates(t *testing.T) {
	for in, want := range map[string]string{
		"2/4/1931": "1931-04-02", " 02/04/1931 ": "1931-04-02", "2.4.1931": "1931-04-02", "1931-04-02": "1931-04-02",
		"2 Apr 1931": "1931-04-02", "next week": "next week", "": "",
	} {
		if got := NormaliseDate(in); got != want {
			t.Errorf("NormaliseDate(%q) = %q, want %q", in, got, want)
		}
	}
	want := time.Date(2026, 11, 22, 3, 10, 0, 0, time.Local).Format(time.RFC3339)
	for _, in := range []string{"2026-11-22 03:10", "22/11/2026 03:10", want} {
		if got := NormaliseDateTime(in); got != want {
			t.Errorf("NormaliseDateTime(%q) = %q, want %q", in, got, want)
		}
	}
	if got := NormaliseDateTime("soon"); got != "soon" {
		t.Errorf("NormaliseDateTime(soon) = %q", got)
	}
	if FormatDate("1931-04-02") != "2 Apr 1931" {
		t.Errorf("FormatDate = %q", FormatDate("1931-04-02"))
	}
}

func TestReviewDateChoicesCountFromToday(t *testing.T) {
	a, _, _ := openApp(t, 1, "Mo Manager", managerPIN)
	c := a.ReviewDateChoices()
	if len(c) != 4 || c[2].Date != "2026-12-20" || !strings.Contains(c[2].Label, "4 weeks") || !strings.Contains(c[2].Label, "20 Dec 2026") {
		t.Fatalf("choices = %+v; want 4 weeks from 22 Nov 2026 to be 20 Dec 2026", c)
	}
	if a.Today() != "2026-11-22" {
		t.Fatalf("Today = %q", a.Today())
	}
}

func TestAdmitReadsNumbersAndDatesAsTyped(t *testing.T) {
	a, _, _ := openApp(t, 1, "Mo Manager", managerPIN)
	nhsNo := demo.NHSNumber(5002)
	spaced := nhsNo[:3] + " " + nhsNo[3:6] + " " + nhsNo[6:]
	id, saved, err := a.Admit("home-1", Admission{GivenName: " Olive ", FamilyName: "Penrose", NHSNumber: spaced, DateOfBirth: "6/5/1933", Sex: "female", Room: "9", GPPractice: "y99999"})
	if err != nil || saved.Message == "" {
		t.Fatalf("Admit = %v, %v", saved, err)
	}
	ident, _ := a.Identity(id)
	if ident.NHSNumber != nhsNo || ident.DateOfBirth != "1933-05-06" || ident.GivenName != "Olive" || ident.GPPractice != "Y99999" {
		t.Fatalf("stored %+v", ident)
	}
	_, _, err = a.Admit("home-1", Admission{GivenName: "No", FamilyName: "Number", DateOfBirth: "yesterday", Sex: "female"})
	var p *Problem
	if !errors.As(err, &p) || p.Fields["nhsNumber"] == "" || p.Fields["dateOfBirth"] == "" {
		t.Fatalf("Admit with no NHS number and a bad date = %v; want both fields named", err)
	}
}

func TestSaveCarePlanKeepsWhatTheFormDoesNotShow(t *testing.T) {
	a, _, h := openApp(t, 1, "Mo Manager", managerPIN)
	id := h.Residents[0].RecordID
	if _, err := a.MarkReviewed(id, "skin", "2026-12-01"); err != nil {
		t.Fatal(err)
	}
	items, _ := a.CarePlan(id)
	var skin CarePlanItem
	for _, it := range items {
		if it.Domain == "skin" {
			skin = it
		}
	}
	f := CarePlanFormFor(skin.CarePlanEntry)
	if f.Score == "" || f.ScoreTool != "Waterlow" {
		t.Fatalf("form = %+v; want the Waterlow score shown", f)
	}
	f.Goal = "Skin stays intact"
	f.Score = "fifteen"
	_, err := a.SaveCarePlan(id, f)
	var p *Problem
	if !errors.As(err, &p) || p.Fields["score"] == "" {
		t.Fatalf("score 'fifteen' = %v; want the score field named", err)
	}
	f.Score, f.ReviewDue = "16", "1/1/2027"
	if _, err := a.SaveCarePlan(id, f); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := a.record(id)
	e := rec.CarePlanFor("skin")
	if e.Goal != "Skin stays intact" || e.Score != 16 || e.ReviewDue != "2027-01-01" || e.LastReviewed != "2026-11-22" || e.LastReviewedBy != "Mo Manager" {
		t.Fatalf("saved %+v; the form's fields changed and the review kept", e)
	}
}

func TestScoreTypedIsLiveAndPlain(t *testing.T) {
	a, _, h := openApp(t, 1, "Dr Ada Quill", gpPIN)
	id := h.Residents[0].RecordID
	f := ObservationsForm{RespRate: "22", SpO2: "93", Systolic: "105", Pulse: "95", Consciousness: "alert"}
	v := a.ScoreTyped(id, f)
	if v.Complete || !strings.Contains(v.Missing, "temperature") || strings.Contains(v.Missing, "pulse") {
		t.Fatalf("without a temperature: %+v; want the temperature named as still to take", v)
	}
	f.Temperature = "37,8"
	v = a.ScoreTyped(id, f)
	if !v.Complete || v.Total != 6 || v.Band != news2.Medium || !strings.Contains(v.Ceiling, "Treat in the care home") {
		t.Fatalf("complete set: %+v", v)
	}
	f.Pulse = "9x"
	if v := a.ScoreTyped(id, f); v.Complete || !strings.Contains(v.Missing, "pulse") {
		t.Fatalf("pulse 9x: %+v", v)
	}
	_, err := a.RecordAdviceCall(id, AdviceCallForm{Method: "phone", Caller: "Sam Senior", Concern: "fall", Advice: "observe", Outcome: "gp", Observations: f})
	var p *Problem
	if !errors.As(err, &p) || p.Fields["obs.pulse"] == "" {
		t.Fatalf("saving pulse 9x = %v", err)
	}
	f.Pulse = "95"
	if _, err := a.RecordAdviceCall(id, AdviceCallForm{Method: "phone", Caller: "Sam Senior", Concern: "fall", Advice: "observe", Outcome: "gp", Observations: f, SoftSigns: []string{"unsteady"}}); err != nil {
		t.Fatal(err)
	}
	notes, _ := a.Notes(id)
	if notes[0].Call == nil || notes[0].Call.NEWS2 != 6 || notes[0].Call.Observations.Temperature != 37.8 {
		t.Fatalf("newest note = %+v", notes[0])
	}
}

func TestCheckEnrolment(t *testing.T) {
	err := CheckEnrolment(EnrollRequest{RelayURL: "relay.example", Role: record.GP, Name: "Dr A", PIN: "123456"}, "123456")
	var p *Problem
	if !errors.As(err, &p) {
		t.Fatalf("CheckEnrolment = %v", err)
	}
	for _, f := range []string{"relayURL", "code", "regNo", "pin"} {
		if p.Fields[f] == "" {
			t.Errorf("field %s not named: %+v", f, p.Fields)
		}
	}
	err = CheckEnrolment(EnrollRequest{RelayURL: "https://relay.example", Code: "abc", Role: record.HomeManager, Name: "Mo", PIN: "271828"}, "271829")
	if !errors.As(err, &p) || p.Fields["pinAgain"] == "" || len(p.Fields) != 1 {
		t.Fatalf("different PINs = %v", err)
	}
	if err := CheckEnrolment(EnrollRequest{RelayURL: "https://relay.example", Code: "abc", Role: record.HomeManager, Name: "Mo", PIN: "271828"}, "271828"); err != nil {
		t.Fatal(err)
	}
	if err := CheckEnrolment(EnrollRequest{RelayURL: "http://127.0.0.1:8450", Code: "abc", Demo: true}, ""); err != nil {
		t.Fatalf("a demo enrolment with no first account = %v", err)
	}
}

func TestDemoConflictShowsBothClinicians(t *testing.T) {
	a, _, h := openApp(t, 2, "Casey Carer", carerPIN)
	id := h.Residents[0].RecordID
	if err := a.DemoConflict(id, record.KindCPR, record.CPRRecommended, record.CPRNotRecommended); err != nil {
		t.Fatal(err)
	}
	fs, _ := a.FrontSheet(id)
	if fs.CPR.State != DecisionConflict || len(fs.CPR.Sides) != 2 || !strings.Contains(fs.CPR.Sides[0].By, "Dr Priya Shah") || !strings.Contains(fs.CPR.Sides[1].By, "Dr Tom Reyes") {
		t.Fatalf("CPR = %+v; want a conflict naming both clinicians", fs.CPR)
	}
	if len(a.Conflicts()) != 1 {
		t.Fatalf("conflicts inbox = %+v", a.Conflicts())
	}
}

func TestAddDemoConflicts(t *testing.T) {
	dir := t.TempDir()
	if err := SeedDemo(dir, 6, 1, testNow); err != nil {
		t.Fatal(err)
	}
	if err := AddDemoConflicts(dir, 2, testNow); err != nil {
		t.Fatal(err)
	}
	a, err := Open(dir, Options{NoSync: true, Now: func() time.Time { return testNow }})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	acc := DemoAccounts[0]
	if _, err := a.Unlock(staffID(t, a, acc.Name), acc.PIN); err != nil {
		t.Fatal(err)
	}
	// The row cache was written while the conflicts were made.
	rows := a.Residents(Filter{})
	if len(rows) != 6 || !rows[0].CPRConflict() {
		t.Fatalf("%d rows, first %+v; want the first resident in conflict", len(rows), rows[0])
	}
	if c := a.Conflicts(); len(c) != 2 {
		t.Fatalf("%d conflicts, want 2", len(c))
	}
}
