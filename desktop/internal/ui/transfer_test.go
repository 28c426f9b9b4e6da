package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"

	"haven/desktop/internal/app"
)

// TestMoveToAnotherHome: the home manager moves a resident from the
// resident screen, choosing among the region's other care homes and giving
// a reason; a carer has no such button. The front sheet then says the
// record is now held by the receiving home.
func TestMoveToAnotherHome(t *testing.T) {
	a, _ := demoApp(t, 3)
	u := newTestUI(t, a)
	signIn(t, u, "Casey Carer")
	u.main.openResident(u.main.list.rows[0].ID)
	if shows(u.root.Objects[1], "Move to another home") {
		t.Fatal("a care worker may move a resident")
	}
	a.Lock()
	settle(u)
	signIn(t, u, "Mo Manager")
	id := u.main.list.rows[0].ID
	u.main.openResident(id)
	r := u.main.resident
	test.Tap(button(t, u.root.Objects[1], "Move to another home…"))
	f := r.transfer
	if f == nil {
		t.Fatal("the move form did not open")
	}
	homes := a.TransferHomes()
	if len(homes) == 0 || len(f.home.values) != len(homes) {
		t.Fatalf("the form offers %d homes; the app knows %d", len(f.home.values), len(homes))
	}
	test.Tap(f.save)
	if f.form.errs["home"].Hidden {
		t.Fatal("a move without a home chosen was not stopped at the home field")
	}
	f.home.SetValue(homes[0].ID)
	test.Type(f.reason, "Moving nearer her daughter")
	shot(u)
	test.Tap(f.save)
	settle(u)
	fs, err := a.FrontSheet(id)
	if err != nil {
		t.Fatal(err)
	}
	if !slicesContainsPrefix(fs.Alerts, app.MovedWords) || !strings.HasSuffix(fs.Alerts[indexPrefix(fs.Alerts, app.MovedWords)], homes[0].Name) {
		t.Fatalf("after the move the front sheet's alerts are %q", fs.Alerts)
	}
	// A second move from here is refused, in words: the record is held
	// elsewhere now.
	test.Tap(button(t, u.root.Objects[1], "Move to another home…"))
	f = r.transfer
	f.home.SetValue(homes[0].ID)
	test.Type(f.reason, "again")
	test.Tap(f.save)
	if f.form.message.Hidden || f.dlg == nil {
		t.Fatal("a second move from here was not refused on the form")
	}
}

func indexPrefix(xs []string, p string) int {
	for i, x := range xs {
		if strings.HasPrefix(x, p) {
			return i
		}
	}
	return -1
}

func slicesContainsPrefix(xs []string, p string) bool { return indexPrefix(xs, p) >= 0 }
