package ui

// Fyne test-driver tests: real widgets, a real application layer on an
// offline demo folder (real Badger, real Automerge), no display. They drive
// the screens as staff would (type, tap) and assert on what the screens
// show: label text, not pixels.

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"haven/assets/demo"
	"haven/desktop/internal/app"
	"haven/shared/record"
)

var testNow = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

// clock is the application layer's clock, moved by the idle-lock test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// demoApp opens an offline demo computer with n residents, locked. The
// first unlock builds the resident list in the background; it is done here
// (and waited for) so that no application goroutine touches the UI while a
// test drives it.
func demoApp(t *testing.T, n int) (*app.App, *clock) {
	return demoAppAs(t, n, "care-home")
}

// demoAppAs is demoApp on a computer of another kind of organisation
// (orgKind as the relay names it: "advice-line", "gp-hub").
func demoAppAs(t *testing.T, n int, orgKind string) (*app.App, *clock) {
	t.Helper()
	dir := t.TempDir()
	seed := app.SeedDemo
	if orgKind == "advice-line" {
		seed = app.SeedDemoAdviceLine
	}
	if err := seed(dir, n, 3, testNow); err != nil {
		t.Fatal(err)
	}
	c := &clock{t: testNow}
	a, err := app.Open(dir, app.Options{NoSync: true, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	listed := make(chan struct{}, 1)
	a.Subscribe(func(e app.Event) {
		if e.Kind == app.EventList {
			select {
			case listed <- struct{}{}:
			default:
			}
		}
	})
	acc := app.DemoAccounts[0]
	if _, err := a.Unlock(staffID(t, a, acc.Name), acc.PIN); err != nil {
		t.Fatal(err)
	}
	select {
	case <-listed:
	case <-time.After(30 * time.Second):
		t.Fatal("the resident list was not built")
	}
	a.Lock()
	return a, c
}

func staffID(t *testing.T, a *app.App, name string) string {
	t.Helper()
	for _, s := range a.StaffList() {
		if s.Name == name {
			return s.ID
		}
	}
	t.Fatalf("no staff member %q", name)
	return ""
}

func pinOf(t *testing.T, name string) string {
	for _, d := range app.DemoAccounts {
		if d.Name == name {
			return d.PIN
		}
	}
	t.Fatalf("no demo account %q", name)
	return ""
}

// newTestUI makes the window on Fyne's test driver. Background work's
// results wait in a queue that the test's goroutine runs (settle): Fyne's
// test driver would run them at once on the background goroutine, beside
// the test's own use of the widgets. The offline application layer's
// events come on the goroutine that caused them, and run at once.
func newTestUI(t *testing.T, a *app.App) *UI { return testUI(t, a, false) }

// testUI is newTestUI; live also queues the application layer's events,
// which an application syncing with a relay sends from its own goroutines
// (run them with until).
func testUI(t *testing.T, a *app.App, live bool) *UI {
	t.Helper()
	fa := test.NewTempApp(t)
	q := &uiQueue{ready: make(chan struct{}, 1)}
	opts := Options{IdleCheck: -1, NoticeFor: -1, results: q.put}
	if live {
		opts.events = q.put
	}
	u := New(fa, a, opts)
	queues[u] = q
	t.Cleanup(func() {
		u.Close()
		delete(queues, u)
	})
	return u
}

// queues are the test windows' UI-thread queues.
var queues = map[*UI]*uiQueue{}

// uiQueue holds work handed to the UI thread until the test runs it.
type uiQueue struct {
	mu    sync.Mutex
	work  []func()
	ready chan struct{} // a token when work arrives
}

func (q *uiQueue) put(f func()) {
	q.mu.Lock()
	q.work = append(q.work, f)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

// run runs what is queued, as the UI thread would, and reports whether
// there was anything.
func (q *uiQueue) run() bool {
	q.mu.Lock()
	work := q.work
	q.work = nil
	q.mu.Unlock()
	for _, f := range work {
		f()
	}
	return len(work) > 0
}

// settle waits for the window's background work and runs its results on
// the test's goroutine, until none is left (a result may start more).
func settle(u *UI) {
	for {
		u.tasks.Wait()
		if !queues[u].run() {
			return
		}
	}
}

// until runs the window's queue until cond holds: for application layers
// that report from their own goroutines (a live relay).
func until(t *testing.T, u *UI, what string, cond func() bool) {
	t.Helper()
	q := queues[u]
	deadline := time.After(60 * time.Second)
	for q.run(); !cond(); q.run() {
		select {
		case <-q.ready:
		case <-deadline:
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// signIn unlocks through the unlock screen as a demo account.
func signIn(t *testing.T, u *UI, name string) {
	t.Helper()
	if u.unlock == nil {
		t.Fatal("not on the unlock screen")
	}
	if !u.unlock.choose(name) {
		t.Fatalf("%s is not on the unlock screen", name)
	}
	test.Type(u.unlock.pin, pinOf(t, name))
	test.Tap(u.unlock.unlock)
	settle(u)
	if u.main == nil {
		t.Fatalf("%s did not get in: %q", name, u.unlock.message.Text)
	}
}

// texts is every visible text under o, in order.
func texts(o fyne.CanvasObject) []string {
	var out []string
	var walk func(o fyne.CanvasObject)
	walk = func(o fyne.CanvasObject) {
		if o == nil || !o.Visible() {
			return
		}
		switch x := o.(type) {
		case *widget.Label:
			out = append(out, x.Text)
		case *canvas.Text:
			out = append(out, x.Text)
		case *widget.Button:
			out = append(out, x.Text)
		case *widget.Check:
			out = append(out, x.Text)
		case *fyne.Container:
			for _, c := range x.Objects {
				walk(c)
			}
		case fyne.Widget:
			for _, c := range test.WidgetRenderer(x).Objects() {
				walk(c)
			}
		}
	}
	walk(o)
	return out
}

func shows(o fyne.CanvasObject, want string) bool {
	for _, s := range texts(o) {
		if strings.Contains(s, want) {
			return true
		}
	}
	return false
}

// find returns the first visible T under o that ok accepts.
func find[T fyne.CanvasObject](o fyne.CanvasObject, ok func(T) bool) (T, bool) {
	var zero T
	if o == nil || !o.Visible() {
		return zero, false
	}
	if x, is := o.(T); is && ok(x) {
		return x, true
	}
	var kids []fyne.CanvasObject
	switch x := o.(type) {
	case *fyne.Container:
		kids = x.Objects
	case fyne.Widget:
		kids = test.WidgetRenderer(x).Objects()
	}
	for _, c := range kids {
		if x, found := find(c, ok); found {
			return x, true
		}
	}
	return zero, false
}

// button finds a visible button by its text.
func button(t *testing.T, o fyne.CanvasObject, label string) *widget.Button {
	t.Helper()
	b, ok := find(o, func(b *widget.Button) bool { return strings.HasPrefix(b.Text, label) })
	if !ok {
		t.Fatalf("no %q button; the screen shows %q", label, texts(o))
	}
	return b
}

func TestUnlockWithPIN(t *testing.T) {
	a, _ := demoApp(t, 3)
	u := newTestUI(t, a)
	if u.unlock == nil || u.main != nil {
		t.Fatal("a locked computer does not open on the unlock screen")
	}
	screen := u.root.Objects[1]
	if !shows(screen, "Dr Ada Quill · GP · PIN 271828") || !shows(screen, "Demo") {
		t.Fatalf("the demo unlock screen does not list the demo accounts: %q", texts(screen))
	}

	// A wrong PIN is refused in plain words and the PIN box is cleared.
	test.Tap(u.unlock.people[1]) // Casey Carer
	if u.unlock.who.Text != "Unlocking as Casey Carer" {
		t.Fatalf("after tapping a name: %q", u.unlock.who.Text)
	}
	test.Type(u.unlock.pin, "111111")
	test.Tap(u.unlock.unlock)
	settle(u)
	if u.main != nil || u.unlock.message.Text != "that PIN is not right" || u.unlock.pin.Text != "" {
		t.Fatalf("wrong PIN: main=%v message=%q pin=%q", u.main != nil, u.unlock.message.Text, u.unlock.pin.Text)
	}

	test.Type(u.unlock.pin, pinOf(t, "Casey Carer"))
	test.Tap(u.unlock.unlock)
	settle(u)
	if u.main == nil || a.Locked() {
		t.Fatalf("the right PIN did not unlock: %q", u.unlock.message.Text)
	}
	if !shows(u.root.Objects[1], "Casey Carer · Care worker") {
		t.Fatal("the main screen does not say who is signed in")
	}
	// A care worker is not offered to add residents.
	if shows(u.root.Objects[1], "Add a resident") {
		t.Fatal("a care worker is offered 'Add a resident'")
	}
}

func TestIdleLockAndLockButton(t *testing.T) {
	a, c := demoApp(t, 3)
	u := newTestUI(t, a)
	signIn(t, u, "Sam Senior")

	// Typing counts as activity: it postpones the lock.
	c.add(4 * time.Minute)
	test.Type(u.main.list.search, "a")
	c.add(4 * time.Minute)
	u.checkIdle()
	if u.main == nil {
		t.Fatal("locked 4 minutes after typing; the home's idle time is 5")
	}
	c.add(time.Minute + time.Second)
	u.checkIdle()
	if u.unlock == nil || u.main != nil || !a.Locked() {
		t.Fatal("not locked after 5 idle minutes")
	}

	signIn(t, u, "Sam Senior")
	test.Tap(button(t, u.root.Objects[1], "Lock"))
	if u.unlock == nil || !a.Locked() {
		t.Fatal("the Lock button did not lock")
	}
}

func TestFindResidentByTyping(t *testing.T) {
	a, _ := demoApp(t, 40)
	u := newTestUI(t, a)
	signIn(t, u, "Casey Carer")
	l := u.main.list
	if len(l.rows) != 40 || l.count.Text != "40 residents" {
		t.Fatalf("list shows %d rows, %q", len(l.rows), l.count.Text)
	}
	all := a.Residents(app.Filter{})
	target := all[17]

	test.Type(l.search, strings.ToLower(target.FamilyName[:4]))
	if !containsRow(l.rows, target) || len(l.rows) == 40 || !strings.Contains(l.count.Text, "of 40 residents match") {
		t.Fatalf("typing %q: %d rows, %q", target.FamilyName[:4], len(l.rows), l.count.Text)
	}

	// The NHS number as it is read out, with spaces.
	l.search.SetText("")
	spaced := target.NHSNumber[:3] + " " + target.NHSNumber[3:6] + " " + target.NHSNumber[6:]
	test.Type(l.search, spaced)
	if len(l.rows) != 1 || l.rows[0].ID != target.ID || l.count.Text != "1 of 40 residents match" {
		t.Fatalf("NHS number %q found %d rows (%q)", spaced, len(l.rows), l.count.Text)
	}
	// The row says who it is, with the NHS number spaced and the CPR status.
	v := rowFor(l.rows[0])
	if !strings.Contains(v.Detail, "NHS "+spaced) || v.CPR == "" {
		t.Fatalf("row = %+v", v)
	}
	if !shows(l.list, target.FamilyName) {
		t.Fatalf("the list widget does not show the row: %q", texts(l.list))
	}

	// Enter opens the first match's front sheet.
	l.search.TypedKey(&fyne.KeyEvent{Name: fyne.KeyReturn})
	if u.main.resident == nil || u.main.resident.id != target.ID {
		t.Fatal("Enter did not open the resident")
	}
	if !strings.Contains(u.main.resident.name.Text, target.FamilyName) {
		t.Fatalf("front sheet is of %q", u.main.resident.name.Text)
	}

	// Date of birth as staff type it, and the filters.
	l.search.SetText("")
	dob, _ := time.Parse(record.DateLayout, target.DateOfBirth)
	test.Type(l.search, dob.Format("2/1/2006"))
	if !containsRow(l.rows, target) {
		t.Fatalf("date of birth %s did not find them", dob.Format("2/1/2006"))
	}
	l.search.SetText("")
	test.Tap(l.overdue)
	for _, r := range l.rows {
		if r.Overdue == 0 {
			t.Fatalf("review-overdue filter lists %s", r.Name())
		}
	}
	test.Tap(l.overdue)
	l.cpr.SetValue(record.CPRRecommended)
	for _, r := range l.rows {
		if r.CPR != record.CPRRecommended {
			t.Fatalf("CPR filter lists %s with %q", r.Name(), r.CPR)
		}
	}
}

func containsRow(rows []app.Row, r app.Row) bool {
	for _, x := range rows {
		if x.ID == r.ID {
			return true
		}
	}
	return false
}

func TestFrontSheetShowsTheEmergencySummary(t *testing.T) {
	a, _ := demoApp(t, 3)
	u := newTestUI(t, a)
	signIn(t, u, "Nurse Bo Lind")
	row := u.main.list.rows[0]
	u.main.openResident(row.ID)
	s := u.main.resident
	if s == nil {
		t.Fatal("no front sheet")
	}
	fs := s.fs
	sheet := s.front.box
	for _, want := range []string{
		"CPR RECOMMENDATION", record.Label(row.CPR), "Dr Ada Quill, GP, GMC 7000001", "CLINICAL FOCUS", "CEILING OF TREATMENT",
		"ALLERGIES", "ALERTS", "ATTORNEY", "Holds", "PREFERRED PLACE OF DEATH", "1st: Care home", "KEY CONTACTS", "Day 0118 496 0000",
		fs.Attorneys[0].Name, "Last reviewed:", fs.AsOf,
	} {
		if !shows(sheet, want) {
			t.Errorf("the front sheet does not show %q", want)
		}
	}
	if t.Failed() {
		t.Logf("it shows %q", texts(sheet))
	}
	// An offline copy never confirmed with the relay says so, above every tab.
	if !s.stale.Visible() || !strings.Contains(s.staleMsg.Text, "Not confirmed with the relay") {
		t.Fatalf("stale banner visible=%v %q", s.stale.Visible(), s.staleMsg.Text)
	}
	if !strings.Contains(s.identity.Text, "NHS "+fs.NHSNumber) || !strings.Contains(s.identity.Text, "aged") {
		t.Fatalf("identity line %q", s.identity.Text)
	}
	// No conflict: no red conflict card, no Resolve action.
	if shows(sheet, "CONFLICT") || shows(sheet, "Resolve") {
		t.Fatal("a settled record shows a conflict")
	}
}

func TestAddNoteAndEnteredInError(t *testing.T) {
	a, _ := demoApp(t, 2)
	u := newTestUI(t, a)
	signIn(t, u, "Casey Carer")
	u.main.openResident(u.main.list.rows[0].ID)
	s := u.main.resident
	s.selectTab("Notes")
	n := s.notes
	before := len(n.notes)

	// An empty note is refused beside the field.
	test.Tap(n.save)
	if !n.form.message.Visible() || !strings.Contains(n.form.message.Text, "Not saved") || n.form.errs["text"].Text != "New note: is required" {
		t.Fatalf("empty note: %q / %q", n.form.message.Text, n.form.errs["text"].Text)
	}

	test.Type(n.newNote, "Found on the floor at 02:40; no injury seen. Settled back to bed.")
	test.Tap(n.save)
	if got := u.main.notice.Text; got != "Saved on this computer. It will be sent when the connection returns." {
		t.Fatalf("notice after saving = %q", got)
	}
	if n.newNote.Text != "" || n.form.message.Visible() {
		t.Fatal("the note box was not cleared")
	}
	if len(n.notes) != before+1 || !strings.Contains(n.notes[0].Text, "Found on the floor") {
		t.Fatalf("timeline has %d notes, newest %q", len(n.notes), n.notes[0].Text)
	}
	first := n.box.Objects[0]
	if !shows(first, "Found on the floor") || !shows(first, "Casey Carer, Care worker") {
		t.Fatalf("newest card shows %q", texts(first))
	}

	// Entered in error: kept, labelled, never hidden.
	test.Tap(button(t, first, "Entered in error"))
	test.Type(n.inError.reason, "wrong resident")
	test.Tap(n.inError.save)
	first = n.box.Objects[0]
	if !shows(first, "ENTERED IN ERROR: wrong resident (Casey Carer") || !shows(first, "Found on the floor") {
		t.Fatalf("after entered in error the card shows %q", texts(first))
	}
	if len(n.notes) != before+1 || !n.notes[0].InError {
		t.Fatal("the note was hidden or not marked")
	}
}

func TestResolveCPRConflict(t *testing.T) {
	a, _ := demoApp(t, 4)
	u := newTestUI(t, a)
	signIn(t, u, "Casey Carer")
	id := u.main.list.rows[2].ID
	// Two clinicians on two disconnected computers record CPR decisions
	// that both reach this one: the app layer merges them as sync would.
	if err := a.DemoConflict(id, record.KindCPR, record.CPRRecommended, record.CPRNotRecommended); err != nil {
		t.Fatal(err)
	}
	if got := u.main.conflictsButton.Text; got != "Conflicts inbox (1)" {
		t.Fatalf("conflicts button says %q", got)
	}
	if v := rowFor(u.main.list.rows[2]); v.Badges[0] != (badgeView{"CONFLICT", toneDanger}) || v.CPRTone != toneDanger {
		t.Fatalf("the row shows %+v; want a red CONFLICT badge", v)
	}

	// The inbox lists it; its button opens the front sheet.
	test.Tap(u.main.conflictsButton)
	inbox := u.main.inbox
	if len(inbox.items) != 1 || !shows(inbox.box, "In conflict: CPR recommendation") {
		t.Fatalf("inbox shows %q", texts(inbox.box))
	}
	test.Tap(button(t, inbox.box, "Open front sheet"))
	s := u.main.resident
	if s == nil || s.id != id {
		t.Fatal("the inbox did not open the resident")
	}
	for _, want := range []string{"CONFLICT: CPR recommendation", "1. CPR attempts recommended", "2. CPR attempts NOT recommended",
		"Dr Priya Shah, GP, GMC 7000002", "Dr Tom Reyes, GP, GMC 7000003", "Your role cannot resolve this"} {
		if !shows(s.front.box, want) {
			t.Errorf("the front sheet does not show %q", want)
		}
	}
	if shows(s.front.box, "Resolve this conflict") {
		t.Error("a care worker is offered to resolve a CPR conflict")
	}
	if t.Failed() {
		t.FailNow()
	}

	// A GP resolves it with a decision that replaces both.
	test.Tap(button(t, u.root.Objects[1], "Lock"))
	signIn(t, u, "Dr Ada Quill")
	u.main.openResident(id)
	s = u.main.resident
	test.Tap(button(t, s.front.box, "Resolve this conflict"))
	f := s.lastDecide
	if f == nil || f.kind != record.KindCPR {
		t.Fatal("no decision form")
	}
	test.Tap(f.save) // no value, no reason: refused beside the fields
	if f.form.errs["cpr"].Text == "" || f.form.errs["reason"].Text == "" {
		t.Fatalf("an empty decision: cpr %q reason %q", f.form.errs["cpr"].Text, f.form.errs["reason"].Text)
	}
	f.value.SetValue(record.CPRNotRecommended)
	test.Type(f.reason, "Reviewed with the attorney and the resident's GP: wishes clear.")
	test.Tap(f.save)
	s = u.main.resident
	if s.fs.CPR.State != app.DecisionSettled || shows(s.front.box, "CONFLICT") {
		t.Fatalf("after resolving the front sheet shows %q", texts(s.front.box))
	}
	if !shows(s.front.box, "CPR attempts NOT recommended") || !shows(s.front.box, "Dr Ada Quill, GP, GMC 7000001") {
		t.Fatalf("the new decision is not shown with who made it: %q", texts(s.front.box))
	}
	if got := u.main.conflictsButton.Text; got != "Conflicts inbox (none)" {
		t.Fatalf("conflicts button says %q", got)
	}
	if !strings.HasPrefix(u.main.notice.Text, "Saved on this computer") {
		t.Fatalf("notice = %q", u.main.notice.Text)
	}
}

func TestBreakGlassOnTheAdviceLine(t *testing.T) {
	a, _ := demoAppAs(t, 2, "advice-line")
	u := newTestUI(t, a)
	signIn(t, u, "Nurse Bo Lind")
	id := u.main.list.rows[0].ID
	u.main.openResident(id)
	g := u.main.glass
	if g == nil || u.main.resident != nil {
		t.Fatal("the advice line opened a record without asking why")
	}
	if !shows(u.main.detail, "Say why you are opening this record") || !shows(u.main.detail, u.main.list.rows[0].FamilyName) {
		t.Fatalf("the break-glass screen shows %q", texts(u.main.detail))
	}
	test.Type(g.reason, "fall")
	test.Tap(g.open)
	settle(u) // opening goes to the relay, off the UI thread
	if u.main.resident != nil || !strings.HasPrefix(g.form.message.Text, "Give a reason a reviewer will understand") {
		t.Fatalf("a four-letter reason: %q", g.form.message.Text)
	}
	g.reason.SetText("Call from Larch House: found on the floor at 02:40")
	test.Tap(g.open)
	settle(u)
	if u.main.resident == nil || u.main.resident.id != id {
		t.Fatal("the record did not open after a reason was given")
	}
	// The reason lasts one session: after the lock, it is asked again.
	test.Tap(button(t, u.root.Objects[1], "Lock"))
	signIn(t, u, "Nurse Bo Lind")
	u.main.openResident(id)
	if u.main.glass == nil || u.main.resident != nil {
		t.Fatal("a new session opened the record without a reason")
	}
}

func TestAdviceCallWithLiveNEWS2(t *testing.T) {
	a, _ := demoApp(t, 1)
	u := newTestUI(t, a)
	signIn(t, u, "Nurse Bo Lind")
	u.main.openResident(u.main.list.rows[0].ID)
	s := u.main.resident
	s.selectTab("Notes")
	test.Tap(button(t, u.root.Objects[1], "Record an advice call"))
	f := s.notes.call
	if f == nil || f.score.Text != "NEWS2: not complete" {
		t.Fatal("the advice-call form did not open with an empty score")
	}
	test.Type(f.resp, "22")
	test.Type(f.spo2, "93")
	test.Type(f.systolic, "105")
	test.Type(f.pulse, "95")
	f.acvpu.SetValue("alert")
	if f.score.Text != "NEWS2: not complete" || !strings.Contains(f.response.Text, "still to take: temperature") {
		t.Fatalf("six of seven observations: %q / %q", f.score.Text, f.response.Text)
	}
	test.Type(f.temp, "37.8")
	if f.score.Text != "NEWS2 6" || !strings.Contains(f.response.Text, "Medium. Urgent response") || f.shown.Tone != toneWarning {
		t.Fatalf("complete observations: %q / %q (%v)", f.score.Text, f.response.Text, f.shown.Tone)
	}
	if !strings.HasPrefix(f.ceiling.Text, "Ceiling of treatment: Treat in the care home") {
		t.Fatalf("the score is not shown against the ceiling: %q", f.ceiling.Text)
	}
	if !strings.Contains(f.points.Text, "Resp rate 2") {
		t.Fatalf("points = %q", f.points.Text)
	}
	f.temp.SetText("39.5")
	if f.score.Text != "NEWS2 8" || f.shown.Tone != toneDanger || !strings.Contains(f.response.Text, "Emergency response") {
		t.Fatalf("temperature 39.5: %q / %q", f.score.Text, f.response.Text)
	}
	f.temp.SetText("37.8")

	test.Tap(f.softSigns["unsteady"])
	test.Type(f.caller, "Sam Senior")
	test.Type(f.relation, "senior carer on shift")
	test.Type(f.concern, "Found on the floor at 02:40")
	test.Type(f.advice, "Observe hourly; GP review in the morning")
	f.outcome.SetValue("gp")
	test.Tap(f.save)
	first := s.notes.box.Objects[0]
	for _, want := range []string{"Advice call · ", "Nurse Bo Lind, Advice-line clinician, NMC 12A3456E", "Phone call from Sam Senior (senior carer on shift)",
		"Soft signs: unsteady", "NEWS2 6 (Medium)", "Outcome: GP", "37.8 °C"} {
		if !shows(first, want) {
			t.Errorf("the saved call does not show %q: %q", want, texts(first))
		}
	}
}

func TestCarePlanReviewAddAndDischarge(t *testing.T) {
	a, _ := demoApp(t, 30)
	u := newTestUI(t, a)
	signIn(t, u, "Mo Manager")
	late := slices.IndexFunc(u.main.list.rows, func(r app.Row) bool { return r.Overdue > 0 })
	if late < 0 {
		t.Fatal("no resident of a demo home of 30 has a review overdue")
	}
	u.main.openResident(u.main.list.rows[late].ID)
	s := u.main.resident
	s.selectTab("Care plan")
	cp := s.care
	over := -1
	for i, it := range cp.items {
		if it.Review == app.ReviewOverdue {
			over = i
		}
	}
	if len(cp.items) != 12 || over < 0 {
		t.Fatalf("%d domains, overdue at %d; the demo has some overdue", len(cp.items), over)
	}
	cp.list.Select(over)
	domain := cp.items[over].Label
	if !shows(cp.detail, "Review OVERDUE: was due") {
		t.Fatalf("an overdue domain shows %q", texts(cp.detail))
	}
	test.Tap(button(t, cp.detail, "Mark reviewed"))
	test.Tap(cp.review.save) // the monthly default: in 4 weeks
	if cp.items[over].Label != domain || cp.items[over].Review != app.ReviewOK {
		t.Fatalf("after review: %+v", cp.items[over])
	}
	if !shows(cp.detail, "Next review 20 Dec 2026") || !shows(cp.detail, "Last reviewed 22 Nov 2026 by Mo Manager") {
		t.Fatalf("after review the domain shows %q", texts(cp.detail))
	}

	// Add a resident, then discharge them.
	test.Tap(button(t, u.root.Objects[1], "Add a resident"))
	f := u.main.admission
	test.Type(f.given, "Olive")
	test.Type(f.family, "Penrose")
	good := demo.NHSNumber(5000)
	bad := good[:9] + string(rune('0'+(good[9]-'0'+1)%10))
	test.Type(f.nhsNumber, bad[:3]+" "+bad[3:6]+" "+bad[6:]) // the check digit is wrong: refused
	test.Type(f.dob, "6/5/1933")
	f.sex.SetValue("female")
	test.Tap(f.save)
	if f.form.errs["nhsNumber"].Text == "" {
		t.Fatalf("a bad NHS number is not named: %q", f.form.message.Text)
	}
	f.nhsNumber.SetText(good[:3] + " " + good[3:6] + " " + good[6:])
	test.Tap(f.save)
	r := u.main.resident
	if r == nil || r.fs.Name != "Olive Penrose" || !containsName(u.main.list.rows, "Penrose") {
		t.Fatal("the new resident is not open and listed")
	}
	test.Tap(button(t, u.root.Objects[1], "Discharge"))
	d := r.discharge
	d.status.SetValue(record.StatusDischarged)
	test.Tap(d.save)
	if containsName(u.main.list.rows, "Penrose") {
		t.Fatal("a discharged resident is still in the home's list")
	}
}

func containsName(rows []app.Row, family string) bool {
	for _, r := range rows {
		if r.FamilyName == family {
			return true
		}
	}
	return false
}

func TestStatusBar(t *testing.T) {
	now := time.Date(2026, 11, 22, 3, 20, 0, 0, time.Local)
	for _, c := range []struct {
		s                       app.SyncStatus
		conn, waiting, last, dl string
		tone                    tone
	}{
		{app.SyncStatus{Offline: true}, "Offline: this computer has no relay (demo)", "No changes waiting to be sent", "No exchange with the relay yet", "", toneWarning},
		{app.SyncStatus{Online: true, LastExchange: now.Add(-8 * time.Minute)}, "Online: connected to the relay", "No changes waiting to be sent", "Last exchange 03:12", "", toneSuccess},
		{app.SyncStatus{Pending: 1, LastExchange: now.Add(-8 * time.Minute)}, "Offline: working on this computer's copy", "1 change waiting to be sent", "Last exchange 03:12", "", toneDanger},
		{app.SyncStatus{Pending: 3, LastExchange: now.AddDate(0, 0, -1)}, "Offline: working on this computer's copy", "3 changes waiting to be sent", "Last exchange 21 Nov 03:20", "", toneDanger},
		{app.SyncStatus{Online: true, Download: app.Progress{Active: true, Done: 12, Total: 40}}, "Online: connected to the relay", "No changes waiting to be sent", "No exchange with the relay yet", "Downloading the home's records: 12 of 40", toneSuccess},
	} {
		v := statusFor(c.s, now)
		if v.Connection != c.conn || v.Waiting != c.waiting || v.Last != c.last || v.Download != c.dl || v.Tone != c.tone {
			t.Errorf("statusFor(%+v) = %+v", c.s, v)
		}
	}

	// The bar on screen, always at the bottom of the signed-in window.
	a, _ := demoApp(t, 1)
	u := newTestUI(t, a)
	signIn(t, u, "Sam Senior")
	b := u.main.status
	if b.connection.Text != "Offline: this computer has no relay (demo)" || b.waiting.Text != "No changes waiting to be sent" || b.last.Text != "No exchange with the relay yet" {
		t.Fatalf("status bar shows %q / %q / %q", b.connection.Text, b.waiting.Text, b.last.Text)
	}
	if b.download.Visible() {
		t.Fatal("a download shows with none running")
	}
}

func TestEnrolment(t *testing.T) {
	seeded := t.TempDir()
	if err := app.SeedDemo(seeded, 1, 1, testNow); err != nil {
		t.Fatal(err)
	}
	calls := 0
	fa := test.NewTempApp(t)
	var opened *app.App
	u := New(fa, nil, Options{IdleCheck: -1, NoticeFor: -1, Enroll: func(ctx context.Context, req app.EnrollRequest) (*app.App, error) {
		calls++
		if req.Code != "7KQ4-M2XD" {
			return nil, errors.New("that code is not valid: it may be mistyped, used already or expired; ask your administrator for a new one")
		}
		a, err := app.Open(seeded, app.Options{NoSync: true})
		opened = a
		return a, err
	}})
	t.Cleanup(func() {
		u.Close()
		if opened != nil {
			opened.Close()
		}
	})
	e := u.enrol
	if e == nil {
		t.Fatal("a computer that is not set up does not open on the enrolment screen")
	}
	// Problems are named beside their fields before anything is sent.
	e.role.SetValue(string(record.GP))
	test.Type(e.relay, "relay.example")
	test.Type(e.name, "Dr Jo Bloggs")
	test.Type(e.pin, "271828")
	test.Type(e.pinAgain, "271829")
	test.Tap(e.setUp)
	for field, want := range map[string]string{
		"relayURL": "Relay address: the address starts with https://", "code": "One-time code: type the one-time code",
		"regNo": "Registration number: registered clinicians give their professional registration number", "pinAgain": "PIN again: the two PINs are different",
	} {
		if got := e.form.errs[field].Text; !strings.HasPrefix(got, want) {
			t.Errorf("%s: %q, want %q", field, got, want)
		}
	}
	if calls != 0 {
		t.Fatal("the relay was contacted with a form that has problems")
	}

	// The relay's refusal comes back in its own plain words.
	e.relay.SetText("https://relay.example.nhs.uk")
	test.Type(e.regNo, "GMC 7000009")
	e.pinAgain.SetText("271828")
	test.Type(e.code, "WRONG")
	test.Tap(e.setUp)
	u.tasks.Wait()
	if !strings.Contains(e.form.message.Text, "ask your administrator for a new one") || u.app != nil {
		t.Fatalf("after a refused code: %q", e.form.message.Text)
	}

	e.code.SetText("7KQ4-M2XD")
	test.Tap(e.setUp)
	u.tasks.Wait()
	if u.app == nil || u.unlock == nil {
		t.Fatal("after enrolment the unlock screen does not show")
	}
}

func TestAdvanceWishesAndContacts(t *testing.T) {
	a, _ := demoApp(t, 1)
	u := newTestUI(t, a)
	signIn(t, u, "Sam Senior")
	u.main.openResident(u.main.list.rows[0].ID)
	s := u.main.resident
	s.selectTab("Advance wishes")
	w := s.wishes
	for _, want := range []string{"1. This plan belongs to", "2. Shared understanding of my health", "3. What matters to me",
		"4. Clinical recommendations for emergency care and treatment", "5. Capacity for involvement", "6. Involvement in making this plan",
		"7. Clinician signatures", "8. Emergency contacts and those involved", "9. Reviews", "End-of-life plan",
		"B: lacks capacity; made with their proxy or family", "Dr Ada Quill, GP, GMC 7000001"} {
		if !shows(w.box, want) {
			t.Errorf("the advance wishes tab does not show %q", want)
		}
	}
	// A senior carer records allergies but not the clinical recommendations.
	buttons := 0
	for _, s := range texts(w.box) {
		if s == "Record a new decision…" {
			buttons++
		}
	}
	if buttons != 3 { // place of death, ADRT, allergies
		t.Fatalf("a senior carer is offered %d decisions to record; want place of death, ADRT and allergies", buttons)
	}
	test.Tap(button(t, w.box, "Edit advance wishes"))
	e := w.edit
	if e.entry["mostValue"].Disabled() || !e.entry["prognosis"].Disabled() || !e.entry["clinicianReg"].Disabled() {
		t.Fatal("a senior carer must edit what matters to the person but not the clinical fields")
	}
	e.entry["mostValue"].SetText("Being at home here, my family, the garden, and Radio 3.")
	test.Tap(e.save)
	if !shows(w.box, "Radio 3") || !strings.HasPrefix(u.main.notice.Text, "Saved") {
		t.Fatalf("after saving, the tab shows %q", texts(w.box))
	}

	s.selectTab("Contacts")
	c := s.contacts
	test.Tap(button(t, u.root.Objects[1], "Add a contact"))
	f := c.add
	test.Type(f.name, "Rev. Anne Holt")
	test.Type(f.relationship, "parish priest")
	f.personalRole.SetValue("emergency-contact")
	test.Tap(f.save) // no phone: refused beside the field
	if !strings.Contains(f.form.errs["phoneDay"].Text, "give at least one way to reach this contact") {
		t.Fatalf("a contact with no phone: %q", f.form.errs["phoneDay"].Text)
	}
	test.Type(f.phoneDay, "020 7946 0999")
	test.Tap(f.save)
	if !shows(c.box, "Rev. Anne Holt") || !shows(c.box, "Day 020 7946 0999") {
		t.Fatalf("the contacts tab shows %q", texts(c.box))
	}
}
