package app

import (
	"errors"
	"fmt"
	"testing"

	"haven/shared/docid"
)

// TestWithdrawnConsentLeavesTheHub: a real relay, a care home's desktop and
// a GP hub's. When a resident withdraws consent to share their record, the
// hub's computer deletes its copies of the record and its timeline, shows
// the resident as not shared (still listed, from the home's directory), and
// no copy comes back while the home goes on writing, across a restart of
// the hub's desktop. When consent is given again, the hub's next
// connection brings the record back with what the home wrote meanwhile.
func TestWithdrawnConsentLeavesTheHub(t *testing.T) {
	r, orgs := demoRelay(t)
	homeOrg, hubOrg := orgs["home"], orgs["hub"]
	home := r.desktop(homeOrg, "Larch nurses' station", account("Dr Ada Quill"))
	hub := r.desktop(hubOrg, "Hub laptop", account("Dr Priya Shah"))
	downloaded(t, home, hub)
	rows := home.Residents(Filter{})
	person, other := rows[5].ID, rows[6].ID
	tl, err := home.timelineOf(person)
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "the hub to hold the resident's timeline", func() bool {
		_, err := hub.Notes(person)
		return err == nil
	}, hub)
	setConsent := func(withdrawn bool) {
		t.Helper()
		f, err := home.CorrectionOf(person)
		if err != nil {
			t.Fatal(err)
		}
		f.ConsentWithdrawn = withdrawn
		if _, err := home.CorrectIdentity(person, f); err != nil {
			t.Fatal(err)
		}
	}
	copies := func(a *App) bool {
		_, errR := a.repo.Open(person)
		_, errT := a.repo.Open(tl)
		return errR == nil || errT == nil
	}
	notShared := func(a *App) bool {
		_, err := a.FrontSheet(person)
		row := rowOf(a, person)
		return errors.Is(err, ErrNotShared) && !copies(a) && row != nil && row.NotShared && !row.Held
	}

	// why says which part of notShared does not hold yet, for a failure.
	why := func(a *App) string {
		_, err := a.FrontSheet(person)
		_, errR := a.repo.Open(person)
		_, errT := a.repo.Open(tl)
		row := rowOf(a, person)
		return fmt.Sprintf("front sheet: %v; record held: %t; timeline held: %t; marked: %t, %t; row: %+v",
			err, errR == nil, errT == nil, a.letGo.Marked(person), a.letGo.Marked(tl), row)
	}

	setConsent(true)
	var last string
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the hub as last seen: %s", last)
		}
	})
	eventually(t, "the hub to let the record and timeline go and show the resident as not shared", func() bool {
		last = why(hub)
		return notShared(hub)
	}, hub)

	// The home writes on; the hub restarts and reconnects; a later note to
	// another resident arriving at the hub shows the relay has answered
	// everything before it.
	if _, err := home.AddNote(person, "Settled night, no concerns"); err != nil {
		t.Fatal(err)
	}
	dir := hub.dir
	hub.Close()
	hub = reopen(t, dir, "Dr Priya Shah", account("Dr Priya Shah").PIN)
	if _, err := home.AddNote(other, "Visited by family this afternoon"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other resident's note to reach the restarted hub", func() bool {
		notes, err := hub.Notes(other)
		return err == nil && len(notes) > 0 && notes[0].Text == "Visited by family this afternoon"
	}, hub)
	if !notShared(hub) {
		t.Fatal("the record came back to the hub while consent is withdrawn")
	}
	if _, err := hub.AddNote(person, "written at the hub"); !errors.Is(err, ErrNotShared) {
		t.Fatalf("a note at the hub on a record not shared: %v; want ErrNotShared", err)
	}

	setConsent(false)
	dir = hub.dir
	hub.Close()
	hub = reopen(t, dir, "Dr Priya Shah", account("Dr Priya Shah").PIN)
	eventually(t, "the hub to have the record again, with the home's note", func() bool {
		notes, err := hub.Notes(person)
		return err == nil && len(notes) > 0 && notes[0].Text == "Settled night, no concerns" && !rowOf(hub, person).NotShared
	}, hub)
	if fs, err := hub.FrontSheet(person); err != nil || fs.ID != person {
		t.Fatalf("the hub opens the record shared again: %v", err)
	}
}

// reopen opens a desktop's data folder again and signs a member of staff in.
func reopen(t *testing.T, dir, name, pin string) *App {
	t.Helper()
	a, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	if _, err := a.Unlock(staffID(t, a, name), pin); err != nil {
		t.Fatal(err)
	}
	return a
}

func rowOf(a *App, id docid.ID) *Row {
	for _, r := range a.Residents(Filter{Discharged: true}) {
		if r.ID == id {
			return &r
		}
	}
	return nil
}
