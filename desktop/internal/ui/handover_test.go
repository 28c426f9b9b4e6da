package ui

import (
	"image/png"
	"os"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
)

// shot saves the window for make screenshots, when it asks.
func shot(u *UI) {
	if p := os.Getenv("HAVEN_UI_SHOT"); p != "" {
		if f, err := os.Create(p); err == nil {
			png.Encode(f, u.win.Canvas().Capture())
			f.Close()
		}
	}
}

// TestCorrectAPhoneNumber: a senior carer corrects a contact's day phone
// on the Contacts tab; the record holds the new number, the tab shows it,
// and the History tab shows the number before and after.
func TestCorrectAPhoneNumber(t *testing.T) {
	a, _ := demoApp(t, 3)
	u := newTestUI(t, a)
	signIn(t, u, "Mo Manager")
	row := u.main.list.rows[0]
	u.main.openResident(row.ID)
	s := u.main.resident
	s.tabs.SelectIndex(3)
	settle(u)
	cs, err := a.Contacts(row.ID)
	if err != nil || len(cs) == 0 {
		t.Fatal(err)
	}
	old := cs[0].PhoneDay
	test.Tap(button(t, s.contacts.box.Objects[0], "Correct"))
	d := u.win.Canvas().Overlays().Top()
	phone, ok := find(d, func(e *widget.Entry) bool { return e.Text == old && old != "" })
	if !ok {
		t.Fatalf("no entry holding the day phone %q in %q", old, texts(d))
	}
	phone.SetText("0161 496 0123")
	test.Tap(button(t, d, "Save correction"))
	settle(u)
	if cs, _ := a.Contacts(row.ID); cs[0].PhoneDay != "0161 496 0123" {
		t.Fatalf("the record holds %q", cs[0].PhoneDay)
	}
	if !shows(s.contacts.box, "0161 496 0123") {
		t.Fatalf("the Contacts tab shows %q", texts(s.contacts.box))
	}
	s.tabs.SelectIndex(5)
	settle(u)
	items, _ := a.History(row.ID)
	found := false
	for _, it := range items {
		if strings.Contains(strings.Join(it.Changes, " "), "“"+old+"” → “0161 496 0123”") {
			found = true
		}
	}
	if !found {
		t.Fatal("the history does not show the number before and after")
	}
}

// TestHandoverShowsTheShift: a note written this shift shows on the
// handover under its resident, with its author; Open opens the resident.
func TestHandoverShowsTheShift(t *testing.T) {
	a, clk := demoApp(t, 6)
	u := newTestUI(t, a)
	signIn(t, u, "Casey Carer")
	clk.t = clk.t.Add(30 * time.Minute)
	row := u.main.list.rows[2]
	if _, err := a.AddNote(row.ID, "Chest sounds wet; GP asked to visit"); err != nil {
		t.Fatal(err)
	}
	b, ok := find(u.win.Canvas().Content(), func(b *widget.Button) bool { return b.Text == "Handover" })
	if !ok {
		t.Fatal("no Handover button")
	}
	test.Tap(b)
	h := u.main.handover
	if h == nil || !shows(u.main.detail, "Chest sounds wet; GP asked to visit") || !shows(u.main.detail, "Casey Carer") {
		t.Fatalf("the handover does not show the note: %q", texts(u.main.detail))
	}
	shot(u)
	var card fyne.CanvasObject
	for _, c := range h.body.Objects {
		if shows(c, "Chest sounds wet") {
			card = c
		}
	}
	if !shows(card, row.Name()) {
		t.Fatalf("the note is not under %s: %q", row.Name(), texts(card))
	}
	test.Tap(button(t, card, "Open"))
	if u.main.resident == nil || u.main.resident.id != row.ID {
		t.Fatal("Open did not open the resident")
	}
}
