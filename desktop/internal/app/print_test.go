package app

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"haven/assets/demo"
	"haven/desktop/internal/printout/printouttest"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/news2"
	"haven/shared/record"
	"haven/shared/wire"
)

// printed prints a resident's printout and returns the PDF.
func printed(t *testing.T, a *App, id docid.ID, req PrintRequest) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := a.Print(id, req, &b); err != nil {
		t.Fatalf("Print(%s) = %v", req.Kind, err)
	}
	if !bytes.HasPrefix(b.Bytes(), []byte("%PDF-")) {
		t.Fatalf("Print(%s) wrote no PDF", req.Kind)
	}
	return b.Bytes()
}

// headerWords are what every page of a resident's printout must show.
func headerWords(a *App, fs *FrontSheet) []string {
	return []string{fs.Name, fs.NHSNumber, fs.DateOfBirth, "Printed by " + a.CurrentUser().Name, fs.AsOf}
}

// mustContain fails for each of want missing from text.
func mustContain(t *testing.T, what, text string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(text, w) {
			t.Errorf("%s lacks %q", what, w)
		}
	}
}

// auditedPrints are the print events in the audit log, each as stored.
func auditedPrints(t *testing.T, a *App) []wire.AuditEvent {
	t.Helper()
	var out []wire.AuditEvent
	a.st.ReadLog(auditLog, 0, func(_ uint64, v []byte) error {
		var e wire.AuditEvent
		if err := json.Unmarshal(v, &e); err != nil {
			t.Fatal(err)
		}
		if e.Action == AuditPrint {
			out = append(out, e)
		}
		return nil
	})
	return out
}

// TestPrintSummary: the emergency summary is one page holding every field
// of the front sheet in the paramedic's order, each decision with who
// decided and when, the header on the page; and the print is audited with
// its kind and nothing of the record.
func TestPrintSummary(t *testing.T) {
	a, _, h := openApp(t, 3, "Dr Ada Quill", gpPIN)
	id := h.Residents[0].RecordID
	if _, err := a.AddAlert(id, "Swallowing risk: thickened fluids level 2"); err != nil {
		t.Fatal(err)
	}
	pdf := printed(t, a, id, PrintRequest{Kind: PrintSummary})
	fs, _ := a.FrontSheet(id)
	if n := printouttest.Pages(t, pdf); n != 1 {
		t.Fatalf("the emergency summary has %d pages, want 1", n)
	}
	printouttest.EveryPage(t, pdf, headerWords(a, fs)...)
	txt := printouttest.Words(t, pdf)
	var order []string
	for _, d := range []DecisionView{fs.CPR, fs.Focus, fs.Ceiling, fs.ADRT, fs.Allergies} {
		mustContain(t, "the summary", txt, d.Text, d.By, d.At)
		order = append(order, d.Text)
	}
	order = append(order, "Swallowing risk: thickened fluids level 2")
	att := fs.Attorneys[0]
	mustContain(t, "the summary", txt, att.Name, att.Phone, att.Authority.Text, fs.PlaceOfDeath.Text)
	order = append(order, att.Name, fs.PlaceOfDeath.Text)
	for _, c := range fs.Contacts {
		if c.ID != att.ContactID {
			mustContain(t, "the summary", txt, c.Name, c.PhoneDay)
			order = append(order, c.Name)
		}
	}
	at := -1
	for _, w := range order {
		i := strings.Index(txt, w)
		if i < at {
			t.Errorf("%q comes before what precedes it in the paramedic's order", w)
		}
		at = max(at, i)
	}
	ev := auditedPrints(t, a)
	if len(ev) != 1 || ev[0].Detail != PrintSummary || ev[0].Resident != id.String() || ev[0].User != a.CurrentUser().ID {
		t.Fatalf("print audit events %+v; want one, naming the kind, the resident and who printed", ev)
	}
	if raw, _ := json.Marshal(ev); bytes.Contains(raw, []byte(fs.Name)) || bytes.Contains(raw, []byte("Swallowing")) {
		t.Fatal("the print's audit event holds health data")
	}
}

// TestPrintShowsConflictUnverifiedAndNotRecorded: a printout never shows
// a disputed or unverified decision as settled, nor a missing one as a
// blank: a conflict names both decisions and who made them, an unverified
// entry is marked as one beside the real decision, and a resident with no
// decisions reads "Not recorded" for each.
func TestPrintShowsConflictUnverifiedAndNotRecorded(t *testing.T) {
	a, _, h := openApp(t, 3, "Dr Ada Quill", gpPIN)
	// A conflict, as two offline computers make one.
	conflicted := h.Residents[1].RecordID
	other, _ := h.Residents[1].Record.Fork()
	_, _, gp2 := demo.Authors("hub-laptop", testCertifier)
	if _, err := gp2.Decide(other, record.KindCPR, "", record.CPRRecommended, "on the phone with the resident"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Decide(conflicted, record.KindCPR, "", record.CPRNotRecommended, "reviewed today"); err != nil {
		t.Fatal(err)
	}
	hd, _ := a.repo.Open(conflicted)
	if err := hd.Change(context.Background(), func(doc *crdt.Doc) error { return doc.Merge(other) }); err != nil {
		t.Fatal(err)
	}
	a.idx.refresh(conflicted)
	fs, _ := a.FrontSheet(conflicted)
	if fs.CPR.State != DecisionConflict || len(fs.CPR.Sides) != 2 {
		t.Fatalf("CPR %+v: the test needs a conflict", fs.CPR)
	}
	for _, kind := range PrintKinds {
		txt := printouttest.Words(t, printed(t, a, conflicted, PrintRequest{Kind: kind, Reason: "fall"}))
		for _, s := range fs.CPR.Sides {
			mustContain(t, kind+" of a conflict", txt, s.Text, strings.SplitN(s.By, ",", 2)[0], s.At)
		}
		if kind != PrintPersonal {
			mustContain(t, kind+" of a conflict", txt, "CONFLICT")
		} else {
			mustContain(t, kind+" of a conflict", txt, "have not yet been settled")
		}
	}

	// An entry planted around the relay: the GP's copied, value flipped.
	tampered := h.Residents[2].RecordID
	if _, err := a.Decide(tampered, record.KindCPR, "", record.CPRNotRecommended, "reviewed today"); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := a.record(tampered)
	cur, _ := rec.Decision(record.KindCPR, "").Settled()
	forged := cur
	forged.ID, forged.Value, forged.Supersedes = record.NewID(), `"`+record.CPRRecommended+`"`, []string{cur.ID}
	plant(t, a, tampered, func(w *crdt.Writer) error {
		b, _ := json.Marshal(forged)
		return w.Set(string(b), "decisions", "cpr", forged.ID)
	})
	fs, _ = a.FrontSheet(tampered)
	if fs.CPR.State != DecisionSettled || len(fs.CPR.Unverified) != 1 {
		t.Fatalf("CPR %+v: the test needs a settled decision beside an unverified entry", fs.CPR)
	}
	for _, kind := range PrintKinds {
		txt := printouttest.Words(t, printed(t, a, tampered, PrintRequest{Kind: kind, Reason: "fall"}))
		mustContain(t, kind+" with an unverified entry", txt, strings.ToUpper(UnverifiedLabel), "“CPR attempts recommended”", "CPR attempts NOT recommended")
		if strings.Count(txt, "CPR attempts recommended") != 1 {
			t.Errorf("%s: the forged value is printed other than as the unverified entry's claim:\n%s", kind, txt)
		}
	}

	// A resident admitted today has no decisions yet.
	bare, _, err := a.AddResident("home-1", record.Identity{NHSNumber: demo.NHSNumber(5000), GivenName: "Olive", FamilyName: "Penrose",
		DateOfBirth: "1933-05-06", Sex: "female", Room: "9"})
	if err != nil {
		t.Fatal(err)
	}
	txt := printouttest.Words(t, printed(t, a, bare, PrintRequest{Kind: PrintSummary}))
	for _, label := range []string{"CPR RECOMMENDATION", "Clinical focus", "Ceiling of treatment", "Advance decision to refuse treatment",
		"Allergies", "Preferred place of death"} {
		if !strings.Contains(txt, label+" Not recorded") {
			t.Errorf("the summary of a resident without decisions lacks %q followed by Not recorded:\n%s", label, txt)
		}
	}
	for _, kind := range []string{PrintTransfer, PrintPersonal} {
		txt := printouttest.Words(t, printed(t, a, bare, PrintRequest{Kind: kind, Reason: "fall"}))
		mustContain(t, kind+" of a resident without decisions", txt, "Not recorded")
		if kind == PrintTransfer {
			mustContain(t, "the transfer pack of a new resident", txt, "No NEWS2 recorded", "No notes recorded", "Personal care Not recorded")
		}
	}
}

// TestPrintTransferPack: the summary, then what matters to the person,
// communication and mobility, the care plan in brief, the last NEWS2 with
// its time, the newest three notes and advice calls (not older ones),
// contacts and the reason typed at print time. A resident with long notes
// runs to several pages, each with the header.
func TestPrintTransferPack(t *testing.T) {
	a, c, h := openApp(t, 1, "Dr Ada Quill", gpPIN)
	id := h.Residents[0].RecordID
	long := strings.Repeat("Restless in the evening; walked the corridor with a carer, then settled with music. ", 60)
	var texts []string
	for i := 0; i < 6; i++ {
		c.t = c.t.Add(time.Hour)
		texts = append(texts, "Note "+string(rune('A'+i))+": "+long)
		if _, err := a.AddNote(id, texts[i]); err != nil {
			t.Fatal(err)
		}
	}
	obs := news2.Observations{RespRate: 22, SpO2: 93, Systolic: 105, Pulse: 95, Consciousness: "alert", Temperature: 37.8}
	for i, concern := range []string{"fall", "more confused", "short of breath", "not eating"} {
		c.t = c.t.Add(time.Hour)
		call := AdviceCall{Method: "phone", Caller: "Sam Senior", CallerRelation: "senior carer", Concern: concern,
			Advice: "Observe hourly", Outcome: "gp"}
		if i == 2 {
			call.Observations = &obs
		}
		if _, err := a.AddAdviceCall(id, call); err != nil {
			t.Fatal(err)
		}
	}
	const reason = "Fall at 02:40 with a painful, shortened left leg"
	pdf := printed(t, a, id, PrintRequest{Kind: PrintTransfer, Reason: "  " + reason + "\n"})
	fs, _ := a.FrontSheet(id)
	n := printouttest.EveryPage(t, pdf, headerWords(a, fs)...)
	if n < 3 {
		t.Errorf("the transfer pack of long notes has %d pages; want them to run on", n)
	}
	first := printouttest.Words(t, pdf, 1)
	mustContain(t, "the transfer pack's first page", first, reason, fs.CPR.Text, fs.CPR.By, fs.Focus.Text, fs.Ceiling.Text, fs.Allergies.Text)
	txt := printouttest.Words(t, pdf)
	wv, _ := a.Wishes(id)
	plan, _ := a.CarePlan(id)
	mustContain(t, "the transfer pack", txt, wv.MostValue, wv.MostFear, "Communication", "Mobility", "Face me and speak clearly",
		"Last NEWS2", "NEWS2 6 (medium)", "Taken on an advice call", "Last 3 notes", "Last 3 advice calls", "Contacts")
	for _, p := range plan {
		mustContain(t, "the care plan in brief", txt, p.Label, p.Need)
	}
	notes, _ := a.Notes(id)
	for _, nv := range notes {
		if nv.Call != nil && nv.Call.Observations != nil {
			mustContain(t, "the last NEWS2", txt, nv.When)
		}
	}
	for i, want := range []bool{false, false, false, true, true, true} {
		if got := strings.Contains(txt, texts[i][:8]); got != want {
			t.Errorf("%q printed %v, want %v: the newest three notes", texts[i][:8], got, want)
		}
	}
	for i, concern := range []string{"fall", "more confused", "short of breath", "not eating"} {
		if got := strings.Contains(txt, "Concern: "+concern); got != (i > 0) {
			t.Errorf("advice call %q printed %v: want the newest three", concern, got)
		}
	}
	if ev := auditedPrints(t, a); len(ev) != 1 || ev[0].Detail != PrintTransfer || strings.Contains(ev[0].Detail, "Fall") {
		t.Fatalf("print audit %+v; want the kind, not the reason", ev)
	}
}

// TestPrintTransferNeedsAReason: without the reason for transfer nothing
// is printed or audited, and the error says what is missing.
func TestPrintTransferNeedsAReason(t *testing.T) {
	a, _, h := openApp(t, 1, "Dr Ada Quill", gpPIN)
	var b bytes.Buffer
	for _, req := range []PrintRequest{{Kind: PrintTransfer}, {Kind: PrintTransfer, Reason: " \n "}} {
		if err := a.Print(h.Residents[0].RecordID, req, &b); !errors.Is(err, ErrNoTransferReason) {
			t.Fatalf("transfer without a reason = %v, want ErrNoTransferReason", err)
		}
	}
	if err := a.Print(h.Residents[0].RecordID, PrintRequest{Kind: "poster"}, &b); !errors.Is(err, ErrPrintKind) {
		t.Fatalf("an unknown kind = %v, want ErrPrintKind", err)
	}
	a.Lock()
	if err := a.Print(h.Residents[0].RecordID, PrintRequest{Kind: PrintSummary}, &b); !errors.Is(err, ErrLockedScreen) {
		t.Fatalf("printing while locked = %v", err)
	}
	if b.Len() != 0 || len(auditedPrints(t, a)) != 0 {
		t.Fatalf("a refused print wrote %d bytes and %d audit events", b.Len(), len(auditedPrints(t, a)))
	}
}

// TestPrintPersonalCopyLeavesOutStaffFields: the person's own copy holds
// their decisions, wishes and contacts in plain words, and none of the
// staff-only fields (personalLeavesOut).
func TestPrintPersonalCopyLeavesOutStaffFields(t *testing.T) {
	a, _, h := openApp(t, 1, "Dr Ada Quill", gpPIN)
	id := h.Residents[0].RecordID
	if _, err := a.AddAlert(id, "Key-safe code 4471 held by the home manager"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddNote(id, "Tearful after the phone call; settled with tea."); err != nil {
		t.Fatal(err)
	}
	obs := news2.Observations{RespRate: 22, SpO2: 93, Systolic: 105, Pulse: 95, Consciousness: "alert", Temperature: 37.8}
	if _, err := a.AddAdviceCall(id, AdviceCall{Method: "phone", Caller: "Sam Senior", Concern: "short of breath", Observations: &obs,
		Advice: "Observe hourly", Outcome: "gp"}); err != nil {
		t.Fatal(err)
	}
	wv, _ := a.Wishes(id)
	w := wv.Wishes
	w.Prognosis, w.FormLocation, w.NotToldWhy = "Months rather than years", "Blue folder in the nurses' office", "Family asked to tell her themselves"
	if _, err := a.UpdateWishes(id, w); err != nil {
		t.Fatal(err)
	}
	pdf := printed(t, a, id, PrintRequest{Kind: PrintPersonal})
	fs, _ := a.FrontSheet(id)
	printouttest.EveryPage(t, pdf, headerWords(a, fs)...)
	txt := printouttest.Words(t, pdf)
	mustContain(t, "the personal copy", txt, fs.CPR.Text, fs.Focus.Text, fs.Ceiling.Text, fs.Allergies.Text, fs.PlaceOfDeath.Text,
		w.MostValue, w.MostFear, fs.Attorneys[0].Name, fs.Attorneys[0].Phone, "Decided by Dr Ada Quill, GP", "If your heart stops")
	for _, staffOnly := range []string{"Key-safe", "Tearful", "short of breath", "NEWS2", "Months rather than years", "Blue folder",
		"Family asked", w.AnticipatoryMedsAt, "Office safe", "GMC 7000001", "MUST", "Waterlow", "Review due"} {
		if strings.Contains(txt, staffOnly) {
			t.Errorf("the personal copy holds the staff-only %q", staffOnly)
		}
	}
	if ev := auditedPrints(t, a); len(ev) != 1 || ev[0].Detail != PrintPersonal {
		t.Fatalf("print audit %+v", ev)
	}
}

// BenchmarkPrintFiveYearRecord prints the transfer pack of a resident with
// five years of notes (five a day, an advice call with observations a
// month) and the full care plan, the record read from the store as a
// computer that has just started would. Target: ≤ 1 s a PDF.
func BenchmarkPrintFiveYearRecord(b *testing.B) {
	dir := b.TempDir()
	testDevice(b, dir)
	now := time.Date(2026, 11, 22, 20, 45, 0, 0, time.UTC)
	c := &clock{t: now}
	h, err := demo.NewHome("home-1", "Larch House", 1, 0, 5, now, testCertifier)
	if err != nil {
		b.Fatal(err)
	}
	r := h.Residents[0]
	carer, _, _ := demo.Authors("bench", testCertifier)
	nurse := testCertifier.Editor(record.Author{UserID: "u-nurse", Name: "Nurse Bo Lind", Role: record.AdviceClinician, RegNo: "NMC 12A3456E", DeviceID: "bench"})
	notes := 0
	for day := now.AddDate(-5, 0, 0); day.Before(now); day = day.AddDate(0, 0, 1) {
		for k := 0; k < 5; k++ {
			at := day.Add(time.Duration(7+3*k) * time.Hour)
			carer.Rules.Now = func() time.Time { return at }
			if _, err := carer.AddNote(r.Timeline, record.Note{Kind: record.NoteKindNote, Text: "Settled; ate most of lunch; walked to the garden with support.",
				EventAt: record.Timestamp(at)}); err != nil {
				b.Fatal(err)
			}
			notes++
		}
		if day.Day() == 1 {
			at := day.Add(14 * time.Hour)
			nurse.Rules.Now = func() time.Time { return at }
			if _, err := nurse.AddNote(r.Timeline, record.Note{Kind: record.NoteKindAdviceCall, Text: "Call from the home", EventAt: record.Timestamp(at),
				Call: &record.AdviceCall{Method: "phone", Caller: "Sam Senior", Concern: "fall", Advice: "observe", Outcome: "gp",
					Observations: &record.Observations{RespRate: 20, SpO2: 95, Systolic: 118, Pulse: 88, Consciousness: "alert", Temperature: 37.1}}}); err != nil {
				b.Fatal(err)
			}
		}
	}
	a, err := Open(dir, Options{Now: c.now, NoSync: true})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Unlock(staffID(b, a, "Dr Ada Quill"), gpPIN); err != nil {
		b.Fatal(err)
	}
	seed(b, a, h.DirectoryID, h.Directory)
	seed(b, a, r.RecordID, r.Record)
	seed(b, a, r.TimelineID, r.Timeline)
	a.Close()
	// A computer just started: the first print reads the record from disk.
	if a, err = Open(dir, Options{Now: c.now, NoSync: true}); err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Unlock(staffID(b, a, "Dr Ada Quill"), gpPIN); err != nil {
		b.Fatal(err)
	}
	var size int
	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		var out bytes.Buffer
		if err := a.Print(r.RecordID, PrintRequest{Kind: PrintTransfer, Reason: "Fall with a painful hip"}, &out); err != nil {
			b.Fatal(err)
		}
		size = out.Len()
	}
	per := time.Since(t0).Seconds() / float64(b.N)
	b.StopTimer()
	b.Logf("transfer pack of %d notes over five years and a 12-area plan: %.3f s a PDF of %d KB (target ≤ 1 s)", notes, per, size/1024)
	b.ReportMetric(per, "s/pdf")
}
