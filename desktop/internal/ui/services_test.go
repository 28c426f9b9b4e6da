package ui

import (
	"testing"

	"fyne.io/fyne/v2/test"

	"haven/desktop/internal/app"
)

// TestServicesScreenAndWhoToCall: on a care home's offline computer the
// Services button shows the directory filtered to the home's area, typing
// narrows it to what matches, and nobody at a care home is offered Edit.
// A resident's front sheet shows the who-to-call panel: each service the
// application layer lists as open now for the home, with its number.
func TestServicesScreenAndWhoToCall(t *testing.T) {
	a, _ := demoApp(t, 3)
	u := newTestUI(t, a)
	signIn(t, u, "Sam Senior")
	m := u.main
	test.Tap(button(t, u.win.Content(), "Services"))
	s := m.services
	if s == nil {
		t.Fatal("the Services button did not open the directory")
	}
	if s.area.Text != a.HomeArea().Borough {
		t.Errorf("the area filter starts at %q, want the home's borough %q", s.area.Text, a.HomeArea().Borough)
	}
	want, err := a.Services(app.ServicesQuery{Area: s.area.Text})
	if err != nil || len(want.Services) == 0 {
		t.Fatalf("the home's area lists %+v, %v", want, err)
	}
	if len(s.body.Objects) != len(want.Services) {
		t.Errorf("the screen shows %d cards for %d services", len(s.body.Objects), len(want.Services))
	}
	test.Type(s.search, "midazolam")
	if len(s.body.Objects) != 1 || !shows(s.body, "Harlesden Late Pharmacy") {
		t.Errorf("searching midazolam shows %q", texts(s.body))
	}
	if shows(s.body, "Edit…") {
		t.Error("a care home's computer offers to edit a service")
	}

	rows := a.Residents(app.Filter{})
	m.openResident(rows[0].ID)
	settle(u)
	if m.resident == nil {
		t.Fatal("the resident did not open")
	}
	sheet := m.resident.tabs.Items[0].Content
	w := a.WhoToCall(rows[0].ID)
	if !shows(sheet, "WHO TO CALL NOW") {
		t.Fatalf("the front sheet has no who-to-call panel: %q", texts(sheet))
	}
	for _, v := range w.Services {
		if !shows(sheet, v.PhoneNow+" · "+v.Name) {
			t.Errorf("the panel lacks %s with %s", v.Name, v.PhoneNow)
		}
	}
	if len(w.Services) == 0 && !shows(sheet, "is open now") {
		t.Errorf("no service open, and the panel does not say so: %q", texts(sheet))
	}
}
