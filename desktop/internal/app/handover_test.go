package app

import (
	"slices"
	"strings"
	"testing"
	"time"

	"haven/shared/docid"
)

// TestHandoverSinceTheShiftStarted: after a shift's notes, an alert and a
// correction, the handover from the shift's start lists exactly those
// residents, newest first, each change in words with who made it; from a
// later time, none. The shift starts at 08:00 or 20:00.
func TestHandoverSinceTheShiftStarted(t *testing.T) {
	a, c, h := openApp(t, 6, "Mo Manager", managerPIN)
	day := time.Date(2026, 11, 23, 0, 0, 0, 0, time.Local)
	for _, tc := range []struct{ now, want time.Time }{
		{day.Add(7*time.Hour + 59*time.Minute), day.Add(-4 * time.Hour)},
		{day.Add(8 * time.Hour), day.Add(8 * time.Hour)},
		{day.Add(19 * time.Hour), day.Add(8 * time.Hour)},
		{day.Add(23 * time.Hour), day.Add(20 * time.Hour)},
	} {
		if got := ShiftStart(tc.now); !got.Equal(tc.want) {
			t.Errorf("ShiftStart(%v) = %v; want %v", tc.now, got, tc.want)
		}
	}
	c.t = day.Add(9 * time.Hour)
	start := ShiftStart(c.t)
	ids := h.Residents
	c.t = c.t.Add(time.Hour)
	if _, err := a.AddNote(ids[0].RecordID, "Ate well at lunch; walked to the garden"); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Hour)
	if _, err := a.AddAlert(ids[1].RecordID, "Falls risk: new walking frame"); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Hour)
	form, _ := a.CorrectionOf(ids[2].RecordID)
	form.Room = "21"
	if _, err := a.CorrectIdentity(ids[2].RecordID, form); err != nil {
		t.Fatal(err)
	}
	got, err := a.Handover(start)
	if err != nil {
		t.Fatal(err)
	}
	var changed []string
	for _, r := range got {
		if len(r.Items) > 0 {
			changed = append(changed, r.Row.ID.String())
		}
	}
	want := []string{ids[2].RecordID.String(), ids[1].RecordID.String(), ids[0].RecordID.String()}
	if !slices.Equal(changed, want) {
		t.Fatalf("changed residents %v; want %v, newest first", changed, want)
	}
	find := func(id string) HandoverResident {
		for _, r := range got {
			if r.Row.ID.String() == id {
				return r
			}
		}
		t.Fatalf("%s not in the handover", id)
		return HandoverResident{}
	}
	note := find(ids[0].RecordID.String()).Items
	if len(note) != 1 || note[0].Kind != HandoverNote || !strings.Contains(note[0].What, "walked to the garden") || !strings.HasPrefix(note[0].Who, "Mo Manager") {
		t.Fatalf("the note reads %+v", note)
	}
	if al := find(ids[1].RecordID.String()).Items; len(al) != 1 || al[0].Kind != HandoverAlert || !strings.Contains(al[0].What, "Falls risk") {
		t.Fatalf("the alert reads %+v", al)
	}
	if co := find(ids[2].RecordID.String()).Items; len(co) != 1 || co[0].Kind != HandoverCorrection || !strings.Contains(co[0].What, "room") {
		t.Fatalf("the correction reads %+v", co)
	}
	later, err := a.Handover(c.t.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range later {
		if len(r.Items) > 0 {
			t.Fatalf("a handover from after the last change lists %s's %+v", r.Row.Name(), r.Items)
		}
	}
}

// TestChangedSinceYouLooked: a resident someone else changed after the
// person last opened them is marked for that person until they open the
// record again; their own changes mark nothing, and neither does a
// resident they never opened.
func TestChangedSinceYouLooked(t *testing.T) {
	a, c, h := openApp(t, 4, "Mo Manager", managerPIN)
	seen, mine := h.Residents[0].RecordID, h.Residents[1].RecordID
	unseen := func(id interface{ String() string }) bool {
		for _, r := range a.Residents(Filter{}) {
			if r.ID.String() == id.String() {
				return r.Unseen
			}
		}
		t.Fatalf("%s not listed", id)
		return false
	}
	c.t = c.t.Add(time.Hour)
	for _, id := range []docid.ID{seen, mine} {
		if _, err := a.FrontSheet(id); err != nil {
			t.Fatal(err)
		}
	}
	c.t = c.t.Add(time.Hour)
	if _, err := a.AddNote(mine, "Settled after tea"); err != nil {
		t.Fatal(err)
	}
	if unseen(mine) {
		t.Fatal("the manager's own note marks the resident as changed for her")
	}
	a.Lock()
	if _, err := a.Unlock(staffID(t, a, "Casey Carer"), carerPIN); err != nil {
		t.Fatal(err)
	}
	c.t = c.t.Add(time.Hour)
	if _, err := a.AddNote(seen, "Restless overnight, settled with reassurance"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddNote(h.Residents[2].RecordID, "Had a visitor"); err != nil {
		t.Fatal(err)
	}
	a.Lock()
	if _, err := a.Unlock(staffID(t, a, "Mo Manager"), managerPIN); err != nil {
		t.Fatal(err)
	}
	if !unseen(seen) {
		t.Fatal("a resident Casey wrote about since the manager looked is not marked for her")
	}
	if unseen(h.Residents[2].RecordID) {
		t.Fatal("a resident the manager never opened is marked")
	}
	c.t = c.t.Add(time.Minute)
	if _, err := a.FrontSheet(seen); err != nil {
		t.Fatal(err)
	}
	if unseen(seen) {
		t.Fatal("the mark stays after the manager opened the record")
	}
}

// TestHandoverOfABusyResident: a resident with more changes in the shift
// than a list row keeps in words still has every one in the handover.
func TestHandoverOfABusyResident(t *testing.T) {
	a, c, h := openApp(t, 2, "Mo Manager", managerPIN)
	c.t = time.Date(2026, 11, 23, 9, 0, 0, 0, time.Local)
	start := ShiftStart(c.t)
	id := h.Residents[0].RecordID
	const notes = recentCap + 20
	for i := 0; i < notes; i++ {
		c.t = c.t.Add(time.Minute)
		if _, err := a.AddNote(id, "Observation round"); err != nil {
			t.Fatal(err)
		}
	}
	got, err := a.Handover(start)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if r.Row.ID == id && len(r.Items) != notes {
			t.Fatalf("%d of the shift's %d notes in the handover", len(r.Items), notes)
		}
	}
}
