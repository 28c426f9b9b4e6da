package ui

import (
	"errors"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"haven/assets/demo"
	"haven/desktop/internal/app"
	"haven/shared/record"
)

func TestMatchFor(t *testing.T) {
	r := app.RegionMatch{Name: "Edith Marlow", DateOfBirth: "1931-04-02", NHSNumber: "9990000018", HomeName: "Larch House", Status: record.StatusActive, Held: true}
	if v := matchFor(r); v != (matchView{Name: "Edith Marlow", Detail: "DOB 2 Apr 1931 · NHS 999 000 0018", Where: "Larch House", Opened: true}) {
		t.Fatalf("matchFor(%+v) = %+v", r, v)
	}
	r.Status, r.Held = record.StatusDischarged, false
	if v := matchFor(r); v.Where != "Larch House · "+words(record.StatusDischarged) || v.Opened {
		t.Fatalf("a discharged resident not opened here: %+v", v)
	}
}

// The region is searched only from an advice-line computer, by a clinician.
func TestRegionSearchOnlyOnTheAdviceLine(t *testing.T) {
	a, _ := demoAppAs(t, 2, "advice-line")
	u := newTestUI(t, a)
	signIn(t, u, "Nurse Bo Lind")
	screen := u.root.Objects[1]
	if u.main.region == nil || !shows(u.main.detail, "Find a resident in the region") {
		t.Fatalf("the advice line does not offer the region search: %q", texts(u.main.detail))
	}
	if got := u.main.list.count.Text; got != "2 records opened for calls" {
		t.Fatalf("the advice line's list says %q", got)
	}
	// Offline, the panel says so before anyone searches.
	if !shows(u.main.detail, sentence(app.ErrRegionOffline.Error())) {
		t.Fatalf("the offline panel does not say what still works: %q", texts(u.main.detail))
	}
	// It is the view whenever no record is open.
	u.main.openResident(u.main.list.rows[0].ID)
	test.Tap(button(t, screen, "Find in the region"))
	if u.main.glass != nil || !shows(u.main.detail, "Find a resident in the region") {
		t.Fatalf("Find in the region shows %q", texts(u.main.detail))
	}

	// Not a clinician: no panel, even on the advice line.
	test.Tap(button(t, screen, "Lock"))
	signIn(t, u, "Casey Carer")
	if u.main.region != nil || shows(u.root.Objects[1], "in the region") {
		t.Fatalf("a care worker is offered the region search: %q", texts(u.root.Objects[1]))
	}

	// A care home's computer: no panel for anyone.
	h, _ := demoApp(t, 2)
	u = newTestUI(t, h)
	for _, who := range []string{"Nurse Bo Lind", "Dr Ada Quill"} {
		signIn(t, u, who)
		if u.main.region != nil || shows(u.root.Objects[1], "in the region") {
			t.Fatalf("%s on a care home is offered the region search: %q", who, texts(u.root.Objects[1]))
		}
		if got := u.main.list.count.Text; got != "2 residents" {
			t.Fatalf("the care home's list says %q", got)
		}
		test.Tap(button(t, u.root.Objects[1], "Lock"))
	}
}

// Without the relay a search says so plainly, and everything else works.
func TestRegionSearchOffline(t *testing.T) {
	a, _ := demoAppAs(t, 2, "advice-line")
	u := newTestUI(t, a)
	signIn(t, u, "Nurse Bo Lind")
	r := u.main.region
	test.Type(r.nhs, demo.NHSNumber(5000))
	test.Tap(r.search)
	settle(u)
	if !shows(r.results, "Not searched: the relay cannot be reached") || !r.offline.Visible() {
		t.Fatalf("an offline search shows %q", texts(u.main.detail))
	}
	if r.form.message.Visible() || r.search.Disabled() || r.search.Text != "Search the region" {
		t.Fatalf("after an offline search: message %q, button %q disabled=%v", r.form.message.Text, r.search.Text, r.search.Disabled())
	}
	// A date of birth as staff type it is taken: the search fails only for
	// want of the relay.
	r.nhs.SetText("")
	test.Type(r.family, "Marlow")
	test.Type(r.dob, "2/4/1931")
	test.Tap(r.search)
	settle(u)
	if r.form.message.Visible() || !shows(r.results, "Not searched") {
		t.Fatalf("family name and 2/4/1931: %q, %q", r.form.message.Text, texts(r.results))
	}
	// Records opened in the last days still open, with a reason.
	u.main.openResident(u.main.list.rows[1].ID)
	g := u.main.glass
	test.Type(g.reason, "Call back from Larch House about the fall at 02:40")
	test.Tap(g.open)
	settle(u)
	if u.main.resident == nil || u.main.resident.id != u.main.list.rows[1].ID {
		t.Fatalf("a record still held did not open offline: %q", g.form.message.Text)
	}
}

// Problems with what was typed come back from the application layer and
// stand beside their fields.
func TestRegionSearchFieldProblems(t *testing.T) {
	a, _ := demoAppAs(t, 1, "advice-line")
	u := newTestUI(t, a)
	signIn(t, u, "Nurse Bo Lind")
	r := u.main.region
	for _, c := range []struct{ nhs, family, dob string }{
		{"123 456", "", ""},
		{"", "M", ""},
		{"", "Marlow", "the second of April"},
	} {
		_, want := a.SearchRegion(c.nhs, c.family, c.dob)
		var p *app.Problem
		if !errors.As(want, &p) {
			t.Fatalf("SearchRegion(%q, %q, %q) = %v; want a Problem", c.nhs, c.family, c.dob, want)
		}
		r.nhs.SetText(c.nhs)
		r.family.SetText(c.family)
		r.dob.SetText(c.dob)
		test.Tap(r.search)
		settle(u)
		if r.form.message.Text != p.Message {
			t.Errorf("%+v: message %q, want %q", c, r.form.message.Text, p.Message)
		}
		for key, l := range r.form.errs {
			msg, named := p.Fields[key]
			if l.Visible() != named || named && l.Text != r.form.labels[key]+": "+msg {
				t.Errorf("%+v: field %s shows %q (visible %v); the Problem says %q", c, key, l.Text, l.Visible(), msg)
			}
		}
		if len(r.results.Objects) != 0 {
			t.Errorf("%+v: results shown for a search not made: %q", c, texts(r.results))
		}
	}
}

// A resident found in the region opens through the reason form; the
// button says it is working while the relay is asked.
func TestOpenARegionMatchForACall(t *testing.T) {
	a, _ := demoAppAs(t, 2, "advice-line")
	u := newTestUI(t, a)
	signIn(t, u, "Nurse Bo Lind")
	row := u.main.list.rows[0]
	r := u.main.region
	// As the relay answers a search: the record is one this computer
	// opened two nights ago and still holds, so it opens offline too.
	r.searched([]app.RegionMatch{{ID: row.ID, Name: row.Name(), DateOfBirth: row.DateOfBirth, NHSNumber: row.NHSNumber,
		HomeName: "Larch House", Status: record.StatusActive, Held: true}}, nil)
	for _, want := range []string{"1 resident found", row.Name(), "NHS " + row.NHSNumber[:3] + " " + row.NHSNumber[3:6] + " ", "Larch House", "OPENED"} {
		if !shows(r.results, want) {
			t.Errorf("the results do not show %q: %q", want, texts(r.results))
		}
	}
	test.Tap(button(t, r.results, "Open for a call"))
	g := u.main.glass
	if g == nil || !shows(u.main.detail, "Say why you are opening this record") || !shows(u.main.detail, "Larch House") {
		t.Fatalf("choosing a match shows %q", texts(u.main.detail))
	}
	// Cancel comes back to the results.
	test.Tap(button(t, u.main.detail, "Cancel"))
	if !shows(u.main.detail, "1 resident found") {
		t.Fatalf("after Cancel: %q", texts(u.main.detail))
	}
	test.Tap(button(t, r.results, "Open for a call"))
	g = u.main.glass
	test.Type(g.reason, "Call from Larch House: found on the floor at 02:40")
	test.Tap(g.open)
	if g.open.Text != "Opening…" || !g.open.Disabled() || u.main.resident != nil {
		t.Fatalf("while the relay is asked, the button says %q (disabled %v)", g.open.Text, g.open.Disabled())
	}
	settle(u)
	if u.main.resident == nil || u.main.resident.id != row.ID || u.main.glass != nil {
		t.Fatalf("the record did not open: %q", g.form.message.Text)
	}
}

func TestReviewAlertFor(t *testing.T) {
	for _, c := range []struct {
		s    reviewState
		show bool
		tone tone
		want string
	}{
		{reviewState{}, true, toneInfo, "Checking"},
		{reviewState{Known: true}, false, toneNeutral, ""},
		{reviewState{Known: true, Pending: make([]app.PendingAccess, 1)}, true, toneWarning, "1 break-glass access awaits your review"},
		{reviewState{Known: true, Pending: make([]app.PendingAccess, 3)}, true, toneWarning, "3 break-glass accesses await your review"},
		{reviewState{Known: true, Err: app.ErrRegionOffline}, true, toneWarning, alertOffline},
		{reviewState{Known: true, Err: errors.New("disk on fire")}, true, toneDanger, "disk on fire"},
	} {
		v := reviewAlertFor(c.s)
		if v.Show != c.show || v.Tone != c.tone || !strings.Contains(v.Text, c.want) {
			t.Errorf("reviewAlertFor(%+v) = %+v", c.s, v)
		}
	}
}

func TestAccessFor(t *testing.T) {
	p := app.PendingAccess{Seq: 7, When: time.Date(2026, 11, 22, 2, 41, 0, 0, time.Local), Staff: "Nurse Bo Lind", Role: string(record.AdviceClinician),
		Device: "Advice desk 1, 24/7 Care Home Advice Line", Resident: "3xyz", Home: "Larch House", Reason: "Call from Larch House about a fall"}
	want := accessView{When: "Sun 22 Nov 2026 02:41", Who: "Nurse Bo Lind, Advice-line clinician", Computer: "Advice desk 1, 24/7 Care Home Advice Line",
		Record: "Edith Marlow (record 3xyz) at Larch House", Reason: "“Call from Larch House about a fall”"}
	if v := accessFor(p, "Edith Marlow"); v != want {
		t.Fatalf("accessFor = %+v, want %+v", v, want)
	}
	if v := accessFor(p, ""); v.Record != "record 3xyz at Larch House" {
		t.Fatalf("an access to a record not held here: %q", v.Record)
	}
}

// Only a certified IG lead sees the alert and the review screen; offline
// both say the relay cannot be reached, and a review is not recorded.
func TestIGLeadAlertAndReviewOffline(t *testing.T) {
	a, _ := demoAppAs(t, 2, "advice-line")
	u := newTestUI(t, a)
	for _, who := range []string{"Nurse Bo Lind", "Casey Carer", "Mo Manager"} {
		signIn(t, u, who)
		settle(u)
		if u.main.alertBox.Visible() || u.main.review != nil || shows(u.root.Objects[1], "Review accesses") || shows(u.root.Objects[1], "break-glass") {
			t.Fatalf("%s sees the IG review: %q", who, texts(u.root.Objects[1]))
		}
		test.Tap(button(t, u.root.Objects[1], "Lock"))
	}

	signIn(t, u, "Ivy Gov")
	settle(u)
	m := u.main
	if !m.alertBox.Visible() || m.alert.Text != alertOffline {
		t.Fatalf("the IG lead's alert offline: visible %v, %q", m.alertBox.Visible(), m.alert.Text)
	}
	if m.review == nil || m.review.status.Text != reviewOffline {
		t.Fatalf("the IG lead does not start on the review screen, saying it is offline: %q", texts(m.detail))
	}
	m.showWelcome()
	test.Tap(button(t, m.alertBox, "Review accesses"))
	if m.review == nil {
		t.Fatal("the alert's button does not open the review screen")
	}
	test.Tap(button(t, m.detail, "Check again"))
	settle(u)
	if m.review.status.Text != reviewOffline {
		t.Fatalf("checking again offline: %q", m.review.status.Text)
	}

	// Accesses listed earlier (as the relay would answer): a review needs
	// a note, and offline it is not recorded and the note is kept.
	listed := []app.PendingAccess{{Seq: 4, When: testNow, Staff: "Nurse Bo Lind", Role: string(record.AdviceClinician), Device: "Advice desk 1",
		Resident: u.main.list.rows[0].ID.String(), Home: "Larch House", Reason: "Call from Larch House about a fall at night"}}
	m.setReviews(reviewState{Known: true, Pending: listed})
	if !strings.Contains(m.alert.Text, "1 break-glass access awaits your review") {
		t.Fatalf("alert with one access: %q", m.alert.Text)
	}
	s := m.review
	if len(s.items) != 1 || !shows(s.box, u.main.list.rows[0].Name()) || !shows(s.box, "Call from Larch House about a fall at night") || !shows(s.box, "Advice desk 1") {
		t.Fatalf("the review screen shows %q", texts(s.box))
	}
	it := s.items[0]
	_, want := a.ReviewAccess(4, "")
	var p *app.Problem
	if !errors.As(want, &p) {
		t.Fatalf("ReviewAccess without a note = %v; want a Problem", want)
	}
	test.Tap(it.save)
	settle(u)
	if it.form.errs["note"].Text != "Your review: "+p.Fields["note"] || it.form.message.Text != p.Message {
		t.Fatalf("a review without a note: %q / %q", it.form.message.Text, it.form.errs["note"].Text)
	}
	test.Type(it.note, "Call logged on the advice line at 02:41")
	test.Tap(it.save)
	settle(u)
	if !strings.HasPrefix(it.form.message.Text, "Not recorded. "+reviewOffline) || it.save.Disabled() || len(s.items) != 1 ||
		it.note.Text != "Call logged on the advice line at 02:41" {
		t.Fatalf("an offline review: %q, disabled %v, %d items, note %q", it.form.message.Text, it.save.Disabled(), len(s.items), it.note.Text)
	}
}
