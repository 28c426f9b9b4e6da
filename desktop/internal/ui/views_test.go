package ui

// The words and tones the screens compute, tested without widgets.

import (
	"strings"
	"testing"

	"haven/desktop/internal/app"
	"haven/shared/news2"
	"haven/shared/record"
)

func TestRowFor(t *testing.T) {
	base := app.Row{GivenName: "Edith", FamilyName: "Ashby", PreferredName: "Edi", NHSNumber: "9990001987", DateOfBirth: "1930-09-12", Room: "19", Held: true}
	r := base
	r.CPR = record.CPRNotRecommended
	v := rowFor(r)
	if v.Name != "Edith Ashby (Edi)" || v.Detail != "Room 19 · DOB 12 Sep 1930 · NHS 999 000 1987" || v.CPR != "CPR attempts NOT recommended" || len(v.Badges) != 0 {
		t.Fatalf("settled row = %+v", v)
	}
	r = base
	r.CPR, r.Conflicts, r.Overdue = "conflict", []string{"CPR recommendation"}, 2
	v = rowFor(r)
	if v.CPRTone != toneDanger || !strings.Contains(v.CPR, "CONFLICT") || len(v.Badges) != 2 ||
		v.Badges[0] != (badgeView{"CONFLICT", toneDanger}) || v.Badges[1] != (badgeView{"2 reviews overdue", toneWarning}) {
		t.Fatalf("conflicted row = %+v", v)
	}
	r = base
	r.Conflicts, r.Overdue = []string{"Allergies", "Ceiling of treatment"}, 1
	if v := rowFor(r); v.CPR != "CPR: not recorded" || v.CPRTone != toneWarning || v.Badges[0].Text != "2 CONFLICTS" || v.Badges[1].Text != "1 review overdue" {
		t.Fatalf("row = %+v", v)
	}
	r = base
	r.Held = false
	if v := rowFor(r); v.CPRTone != toneInfo || !strings.Contains(v.CPR, "downloading") {
		t.Fatalf("a record not yet downloaded = %+v; it must not look settled", v)
	}
}

func TestReviewFor(t *testing.T) {
	for _, c := range []struct {
		review, due, want string
		tone              tone
	}{
		{app.ReviewOverdue, "2026-11-14", "Review OVERDUE: was due 14 Nov 2026", toneDanger},
		{app.ReviewDue, "2026-11-22", "Review due today", toneWarning},
		{app.ReviewSoon, "2026-11-26", "Review due soon: 26 Nov 2026", toneWarning},
		{app.ReviewOK, "2026-12-20", "Next review 20 Dec 2026", toneNeutral},
		{app.ReviewNotSet, "", "No review date set", toneWarning},
	} {
		s, tn := reviewFor(app.CarePlanItem{CarePlanEntry: record.CarePlanEntry{ReviewDue: c.due}, Review: c.review})
		if s != c.want || tn != c.tone {
			t.Errorf("%s: %q %v, want %q %v", c.review, s, tn, c.want, c.tone)
		}
	}
}

func TestNEWS2For(t *testing.T) {
	v := news2For(app.NEWS2View{Missing: "NEWS2 needs all seven observations; still to take: pulse", Ceiling: "Ceiling of treatment not recorded"})
	if v.Score != "NEWS2: not complete" || !strings.Contains(v.Response, "pulse") || v.Ceiling != "Ceiling of treatment not recorded" {
		t.Fatalf("incomplete = %+v", v)
	}
	for band, tn := range map[news2.Band]tone{news2.Low: toneSuccess, news2.LowMedium: toneWarning, news2.Medium: toneWarning, news2.High: toneDanger} {
		v := news2For(app.NEWS2View{Complete: true, Total: 7, Band: band, Response: band.Response(), Ceiling: "Ceiling of treatment: Comfort care only",
			Points: map[string]int{"respiration": 3}})
		if v.Tone != tn || v.Score != "NEWS2 7" || !strings.HasSuffix(v.Response, band.Response()) || !strings.HasPrefix(v.Points, "Resp rate 3 · SpO2 0") {
			t.Errorf("%s: %+v", band, v)
		}
	}
}

func TestNoteLines(t *testing.T) {
	n := app.NoteView{Note: record.Note{Text: "Fell at 02:40.", Status: record.NoteEnteredInError, ErrorReason: "wrong resident",
		ErrorBy: "Sam Senior", ErrorAt: "2026-11-22T03:10:00Z"}, When: "22 Nov 2026 02:45", Who: "Casey Carer, Care worker", InError: true}
	header, lines := noteLines(n)
	if header != "22 Nov 2026 02:45 · Casey Carer, Care worker" || len(lines) != 2 {
		t.Fatalf("%q %+v", header, lines)
	}
	if !strings.HasPrefix(lines[0].Text, "ENTERED IN ERROR: wrong resident (Sam Senior, ") || lines[0].Tone != toneDanger {
		t.Fatalf("label = %+v", lines[0])
	}
	if lines[1].Text != "Fell at 02:40." || !lines[1].Dim {
		t.Fatalf("the retired text must stay, dimmed: %+v", lines[1])
	}
	call := app.NoteView{Note: record.Note{Call: &record.AdviceCall{Method: "phone", Caller: "Sam Senior", Concern: "fall", Advice: "observe",
		Outcome: "999", NEWS2: 7, NEWS2Band: "high", Observations: &record.Observations{RespRate: 26, SpO2: 90, OnOxygen: true, Systolic: 120, Pulse: 80, Consciousness: "new-confusion", Temperature: 38.2}}},
		When: "22 Nov 2026 03:00", Who: "Nurse Bo Lind"}
	header, lines = noteLines(call)
	joined := header
	for _, l := range lines {
		joined += "\n" + l.Text
	}
	for _, want := range []string{"Advice call · ", "Phone call from Sam Senior", "resp rate 26, SpO2 90% on oxygen", "new confusion", "38.2 °C", "NEWS2 12 (High)", "Outcome: 999 ambulance"} {
		if !strings.Contains(joined, want) {
			t.Errorf("advice call lines lack %q:\n%s", want, joined)
		}
	}
	// The score shown is the observations', not the one written beside
	// them; a partial set shows as not scored.
	call.Call.Observations.Systolic, call.Call.Observations.Pulse = 0, 0
	header, lines = noteLines(call)
	joined = header
	for _, l := range lines {
		joined += "\n" + l.Text
	}
	if strings.Contains(joined, "NEWS2 7") || strings.Contains(joined, "NEWS2 12") || !strings.Contains(joined, "NEWS2 not scored") ||
		!strings.Contains(joined, "systolic blood pressure, pulse") {
		t.Errorf("a partial set's lines:\n%s", joined)
	}
}

func TestFrontSheetWords(t *testing.T) {
	if s := conflictBanner(1); !strings.HasPrefix(s, "1 CONFLICT in this record") {
		t.Fatal(s)
	}
	if s := conflictBanner(2); !strings.HasPrefix(s, "2 CONFLICTS") {
		t.Fatal(s)
	}
	who, phones := contactLine(app.ContactView{Name: "Jane Smith", Relationship: "daughter", Role: "attorney", Kind: "personal", PhoneDay: "020 7946 0001", PhoneNight: "07700 900001"})
	if who != "Jane Smith · daughter, attorney" || phones != "Day 020 7946 0001 · Night 07700 900001 · call at night: NO" {
		t.Fatalf("%q %q", who, phones)
	}
	fs := &app.FrontSheet{Name: "Edith Ashby", PreferredName: "Edi", NHSNumber: "999 000 1987", DateOfBirth: "12 Sep 1930 (aged 96)", Sex: "female", Room: "19", Home: "Larch House", Status: "discharged"}
	if got := identityLine(fs); got != "NHS 999 000 1987 · Born 12 Sep 1930 (aged 96) · Female · Room 19 · Larch House · DISCHARGED" {
		t.Fatal(got)
	}
	if got := displayName(fs); got != "Edith Ashby (known as Edi)" {
		t.Fatal(got)
	}
	fs.PreferredName = "Edith"
	if got := displayName(fs); got != "Edith Ashby" {
		t.Fatal(got)
	}
}

func TestStatusWordsSayItInWords(t *testing.T) {
	// Colour is never the only signal: each tone comes with its own words.
	seen := map[string]bool{}
	for _, s := range []app.SyncStatus{{Offline: true}, {Online: true}, {}} {
		v := statusFor(s, testNow)
		if seen[v.Connection] || !strings.Contains(v.Connection, "line") {
			t.Fatalf("%+v: %q", s, v.Connection)
		}
		seen[v.Connection] = true
	}
}
