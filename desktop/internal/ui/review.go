package ui

import (
	"errors"
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/record"
)

// The information-governance lead's part: an alert on the main screen
// while break-glass accesses await review, and the screen that lists them
// and records a review of each. The relay holds the accesses and the
// reviews, so both say plainly when it cannot be reached.

// What the alert and the screen say without the relay.
const (
	alertOffline  = "Break-glass accesses awaiting review cannot be listed: the relay cannot be reached now."
	reviewOffline = "Break-glass accesses and their reviews are kept by the relay, which this computer cannot reach now: " +
		"they are listed here again when it is back."
)

// reviewState is what this computer last heard about accesses awaiting
// review: the list, or why there is none.
type reviewState struct {
	Known   bool // an answer (or an error) has come back
	Pending []app.PendingAccess
	Err     error
}

// alertView is what the IG lead's alert on the main screen says.
type alertView struct {
	Show bool
	Text string
	Tone tone
}

// reviewAlertFor words the alert: shown while accesses await review, or
// while it cannot be known whether any do; hidden when none do.
func reviewAlertFor(s reviewState) alertView {
	switch n := len(s.Pending); {
	case !s.Known:
		return alertView{true, "Checking for break-glass accesses awaiting your review…", toneInfo}
	case errors.Is(s.Err, app.ErrRegionOffline):
		return alertView{true, alertOffline, toneWarning}
	case s.Err != nil:
		return alertView{true, "Break-glass accesses could not be listed: " + s.Err.Error(), toneDanger}
	case n == 0:
		return alertView{}
	case n == 1:
		return alertView{true, "IG REVIEW: 1 break-glass access awaits your review.", toneWarning}
	default:
		return alertView{true, fmt.Sprintf("IG REVIEW: %d break-glass accesses await your review.", n), toneWarning}
	}
}

// accessView is one access awaiting review, as the review screen shows it.
type accessView struct {
	When, Who, Computer, Record, Reason string
}

// accessFor words an access; name is the resident's name when this
// computer holds their record, else "".
func accessFor(p app.PendingAccess, name string) accessView {
	v := accessView{When: p.When.Local().Format("Mon 2 Jan 2006 15:04"), Who: p.Staff, Computer: p.Device, Reason: "“" + p.Reason + "”"}
	if r := record.Role(p.Role).Label(); r != "" {
		v.Who += ", " + r
	} else if p.Role != "" {
		v.Who += ", " + p.Role
	}
	v.Record = "record " + p.Resident
	if name != "" {
		v.Record = name + " (" + v.Record + ")"
	}
	if p.Home != "" {
		v.Record += " at " + p.Home
	}
	return v
}

// reviewScreen lists the break-glass accesses awaiting review, each with
// a note and Record review. Its list is the main screen's reviewState.
type reviewScreen struct {
	u      *UI
	m      *mainScreen
	status *widget.Label
	box    *fyne.Container
	items  []*accessItem
}

// accessItem is one access on the review screen.
type accessItem struct {
	access app.PendingAccess
	form   *fieldForm
	note   *widget.Entry
	save   *widget.Button
	card   *fyne.Container
}

func newReviewScreen(u *UI, m *mainScreen) *reviewScreen {
	return &reviewScreen{u: u, m: m}
}

func (s *reviewScreen) build() fyne.CanvasObject {
	s.status = wrapped("", toneNeutral, true)
	s.box = container.NewVBox()
	intro := wrapped("Each access is a record opened outside a care relationship (on the advice line, for a call), with the reason typed at the time. "+
		"Check it against the call log, then record what you found. A reviewed access leaves this list.", toneNeutral, false)
	again := s.u.button("Check again", s.m.loadReviews)
	top := container.NewVBox(container.NewBorder(nil, nil, nil, again, heading("Break-glass accesses to review")), intro, s.status)
	s.refresh()
	return container.NewBorder(container.NewPadded(top), nil, nil, nil, s.u.scroll(container.NewPadded(s.box)))
}

// refresh shows the main screen's reviewState, keeping notes being typed.
func (s *reviewScreen) refresh() {
	st := s.m.reviews
	typed := map[uint64]string{}
	for _, it := range s.items {
		typed[it.access.Seq] = it.note.Text
	}
	s.items = nil
	s.box.RemoveAll()
	switch {
	case !st.Known:
		setLabel(s.status, "Asking the relay…", toneInfo)
		return
	case errors.Is(st.Err, app.ErrRegionOffline):
		setLabel(s.status, reviewOffline, toneWarning)
		return
	case st.Err != nil:
		setLabel(s.status, sentence(st.Err.Error()), toneDanger)
		return
	case len(st.Pending) == 0:
		setLabel(s.status, "Nothing awaits review.", toneSuccess)
		return
	}
	setLabel(s.status, plural(len(st.Pending), "access awaits", "accesses await")+" review.", toneWarning)
	names := s.names()
	for _, p := range st.Pending {
		it := s.item(p, names[p.Resident])
		it.note.SetText(typed[p.Seq])
		s.items = append(s.items, it)
		s.box.Add(it.card)
	}
}

// names are the residents this computer holds, by record ID, so an access
// names the person where it can.
func (s *reviewScreen) names() map[string]string {
	out := map[string]string{}
	for _, r := range s.u.app.Residents(app.Filter{Discharged: true}) {
		out[r.ID.String()] = r.Name()
	}
	return out
}

func (s *reviewScreen) item(p app.PendingAccess, name string) *accessItem {
	v := accessFor(p, name)
	it := &accessItem{access: p, form: newFieldForm()}
	it.note = s.u.multiline("e.g. Call logged on the advice line at 02:41; appropriate", 2)
	it.form.add("note", "Your review", it.note)
	it.save = s.u.primary("Record review", func() { s.onReview(it) })
	facts := newFieldForm()
	facts.add("", "When", text(v.When, toneNeutral, false))
	facts.add("", "Who", wrapped(v.Who, toneNeutral, false))
	facts.add("", "Computer", wrapped(v.Computer, toneNeutral, false))
	facts.add("", "Record", wrapped(v.Record, toneNeutral, false))
	facts.add("", "Reason", wrapped(v.Reason, toneNeutral, true))
	it.card = card(toneWarning, facts.object(), it.form.object(), container.NewHBox(it.save))
	return it
}

func (s *reviewScreen) onReview(it *accessItem) {
	seq, note := it.access.Seq, it.note.Text
	s.u.busy(it.save, "Recording…", func() func() {
		pending, err := s.u.app.ReviewAccess(seq, note)
		return func() { s.reviewed(it, pending, err) }
	})
}

func (s *reviewScreen) reviewed(it *accessItem, pending []app.PendingAccess, err error) {
	if err == nil {
		// The relay's answer is the list now awaiting review, wherever
		// the lead has gone meanwhile.
		s.m.setReviews(reviewState{Known: true, Pending: pending})
		return
	}
	if errors.Is(err, app.ErrRegionOffline) {
		it.form.clear()
		it.form.say("Not recorded. " + reviewOffline)
		return
	}
	it.form.show(err)
}
