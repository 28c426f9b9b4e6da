package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/record"
)

// TestManagerAddsAndRemovesStaff: the home manager opens Staff, adds a
// senior carer who types their own PIN (twice: a mismatch is caught before
// anything is saved), sees them listed, and the new account signs in with
// that PIN; then removes them as a leaver, and they can no longer sign in.
// A care worker is offered no staff screen.
func TestManagerAddsAndRemovesStaff(t *testing.T) {
	a, _ := demoApp(t, 5)
	u := newTestUI(t, a)
	signIn(t, u, "Mo Manager")
	openStaff := func() {
		t.Helper()
		b, ok := find(u.win.Canvas().Content(), func(b *widget.Button) bool { return b.Text == "Staff" })
		if !ok {
			t.Fatal("the manager has no Staff button")
		}
		test.Tap(b)
	}
	openStaff()
	if u.main.staff == nil || !shows(u.main.detail, "Staff on this computer") || !shows(u.main.detail, "Casey Carer") {
		t.Fatalf("the staff screen does not list the team: %q", texts(u.main.detail))
	}
	before := len(a.StaffList())
	test.Tap(button(t, u.main.detail, "Add a member of staff"))
	d := u.win.Canvas().Overlays().Top()
	entries := map[string]*widget.Entry{}
	for _, ph := range []string{"e.g. Casey Carer", "at least 6 digits", "the same again"} {
		e, ok := find(d, func(e *widget.Entry) bool { return e.PlaceHolder == ph })
		if !ok {
			t.Fatalf("no %q entry in %q", ph, texts(d))
		}
		entries[ph] = e
	}
	role, ok := find(d, func(s *choice) bool { return true })
	if !ok {
		t.Fatal("no role choice")
	}
	test.Type(entries["e.g. Casey Carer"], "Robin Newcombe")
	role.SetValue(string(record.SeniorCarer))
	test.Type(entries["at least 6 digits"], "582931")
	test.Type(entries["the same again"], "582939")
	test.Tap(button(t, d, "Add"))
	settle(u)
	if len(a.StaffList()) != before || !shows(d, "not the same") {
		t.Fatalf("PINs that differ were taken: %d staff; the dialog says %q", len(a.StaffList()), texts(d))
	}
	entries["the same again"].SetText("582931")
	test.Tap(button(t, d, "Add"))
	settle(u)
	var sam *app.Staff
	for _, s := range a.StaffList() {
		if s.Name == "Robin Newcombe" {
			sam = &s
		}
	}
	if sam == nil || sam.Role != record.SeniorCarer || !shows(u.main.detail, "Robin Newcombe") {
		t.Fatalf("Sam is not listed as a senior carer: %+v; screen %q", sam, texts(u.main.detail))
	}
	shot(u)

	a.Lock()
	settle(u)
	if who, err := a.Unlock(sam.ID, "582931"); err != nil || who.Name != "Robin Newcombe" {
		t.Fatalf("Sam signs in with the PIN Sam chose: %v", err)
	}
	a.Lock()
	settle(u)
	signIn(t, u, "Mo Manager")
	openStaff()

	// Remove Sam: the line's own button.
	rows := u.main.staff.rows.Objects
	var samRow fyne.CanvasObject
	for _, r := range rows {
		if shows(r, "Robin Newcombe") {
			samRow = r
		}
	}
	test.Tap(button(t, samRow, "Remove"))
	d = u.win.Canvas().Overlays().Top()
	test.Tap(button(t, d, "Remove Robin Newcombe"))
	settle(u)
	for _, s := range a.StaffList() {
		if s.ID == sam.ID {
			t.Fatal("Sam is still on this computer after removal")
		}
	}
	if shows(u.main.detail, "Robin Newcombe") {
		t.Fatalf("the staff screen still lists Sam: %q", texts(u.main.detail))
	}
	a.Lock()
	if _, err := a.Unlock(sam.ID, "582931"); err == nil {
		t.Fatal("a removed leaver signs in")
	}
	settle(u)
	signIn(t, u, "Casey Carer")
	if _, ok := find(u.win.Canvas().Content(), func(b *widget.Button) bool { return b.Text == "Staff" }); ok {
		t.Fatal("a care worker is offered the staff screen")
	}
}

// TestFirstSignInLeadsToTheTeam: on a computer with one account, its
// manager's (as enrolment leaves it), signing in opens the staff screen
// with words saying to add the team.
func TestFirstSignInLeadsToTheTeam(t *testing.T) {
	a, _ := demoApp(t, 2)
	u := newTestUI(t, a)
	signIn(t, u, "Mo Manager")
	me := a.CurrentUser()
	for _, s := range a.StaffList() {
		if s.ID != me.ID {
			if _, err := a.RemoveStaff(s.ID); err != nil {
				t.Fatal(err)
			}
		}
	}
	a.Lock()
	settle(u)
	signIn(t, u, "Mo Manager")
	if u.main.staff == nil || !u.main.staff.note.Visible() || !strings.Contains(u.main.staff.note.Text, "Add each member of the team") {
		t.Fatalf("the first sign-in shows %q", texts(u.main.detail))
	}
}
