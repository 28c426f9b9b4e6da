package app

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"haven/shared/record"
)

// historyShows reports whether any history item's before-and-after lines
// hold all of want.
func historyShows(t *testing.T, a *App, id interface{ String() string }, want ...string) bool {
	t.Helper()
	rows := a.Residents(Filter{})
	for _, r := range rows {
		if r.ID.String() != id.String() {
			continue
		}
		items, err := a.History(r.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			line := strings.Join(it.Changes, "; ")
			ok := true
			for _, w := range want {
				ok = ok && strings.Contains(line, w)
			}
			if ok {
				return true
			}
		}
	}
	return false
}

// TestCorrectionsKeepBeforeAndAfter: a phone number, a room and consent
// are corrected and an alert resolved; nothing is deleted, and the history
// shows each field as it was and as it became. A withdrawal of consent
// heads the front sheet. An NHS number another resident of the home holds
// is refused, and a care worker corrects nothing.
func TestCorrectionsKeepBeforeAndAfter(t *testing.T) {
	a, _, h := openApp(t, 3, "Mo Manager", managerPIN)
	id := h.Residents[0].RecordID
	cs, err := a.Contacts(id)
	i := slices.IndexFunc(cs, func(c record.Contact) bool { return c.PhoneDay != "" && !c.Removed })
	if err != nil || i < 0 {
		t.Fatalf("no contact with a phone number: %v, %v", cs, err)
	}
	c := cs[i]
	oldPhone := c.PhoneDay
	c.PhoneDay = "0161 496 0999"
	if _, err := a.UpdateContact(id, c); err != nil {
		t.Fatal(err)
	}
	if cs, _ := a.Contacts(id); cs[i].PhoneDay != "0161 496 0999" {
		t.Fatalf("phone after correction: %q", cs[i].PhoneDay)
	}
	if !historyShows(t, a, id, "contact phoneDay", "“"+oldPhone+"”", "“0161 496 0999”") {
		t.Fatalf("the history does not show the phone number before (%q) and after", oldPhone)
	}

	form, err := a.CorrectionOf(id)
	if err != nil {
		t.Fatal(err)
	}
	oldRoom := form.Room
	form.Room, form.ConsentBasis, form.ConsentDate, form.ConsentWithdrawn = "14B", "best-interests", "1/11/2026", true
	if _, err := a.CorrectIdentity(id, form); err != nil {
		t.Fatal(err)
	}
	ident, _ := a.Identity(id)
	if ident.Room != "14B" || !ident.ConsentWithdrawn || ident.ConsentDate != "2026-11-01" || ident.GivenName != form.GivenName {
		t.Fatalf("identity after correction: %+v", ident)
	}
	if !historyShows(t, a, id, "room: “"+oldRoom+"” → “14B”") || !historyShows(t, a, id, "consentWithdrawn: “no” → “yes”") {
		t.Fatal("the history does not show the room and the withdrawal before and after")
	}
	fs, err := a.FrontSheet(id)
	if err != nil || len(fs.Alerts) == 0 || fs.Alerts[0] != ConsentWithdrawnWords {
		t.Fatalf("the front sheet does not head its alerts with the withdrawal: %q", fs.Alerts)
	}

	if _, err := a.AddAlert(id, "Swallowing risk: thickened fluids"); err != nil {
		t.Fatal(err)
	}
	fs, _ = a.FrontSheet(id)
	i = slices.Index(fs.Alerts, "Swallowing risk: thickened fluids")
	if i < 0 || fs.AlertIDs[i] == "" {
		t.Fatalf("the new alert is not shown with its ID: %q %q", fs.Alerts, fs.AlertIDs)
	}
	if _, err := a.ResolveAlert(id, fs.AlertIDs[i]); err != nil {
		t.Fatal(err)
	}
	fs, _ = a.FrontSheet(id)
	if slices.Contains(fs.Alerts, "Swallowing risk: thickened fluids") {
		t.Fatal("a resolved alert is still on the front sheet")
	}
	if !historyShows(t, a, id, "alert status: “active” → “resolved”") {
		t.Fatal("the history does not show the alert resolved")
	}

	other, _ := a.Identity(h.Residents[1].RecordID)
	form, _ = a.CorrectionOf(id)
	form.NHSNumber = other.NHSNumber
	_, err = a.CorrectIdentity(id, form)
	var p *Problem
	if !errors.As(err, &p) || p.Fields["nhsNumber"] == "" {
		t.Fatalf("another resident's NHS number: %v; want a problem naming the field", err)
	}

	a.Lock()
	if _, err := a.Unlock(staffID(t, a, "Casey Carer"), carerPIN); err != nil {
		t.Fatal(err)
	}
	form, _ = a.CorrectionOf(id)
	form.Room = "1"
	if _, err := a.CorrectIdentity(id, form); err == nil {
		t.Fatal("a care worker corrected personal details")
	}
	if ident, _ := a.Identity(id); ident.Room != "14B" {
		t.Fatalf("room is %q after a refused correction", ident.Room)
	}
}
