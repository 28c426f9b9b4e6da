package ui

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/docid"
)

// mainScreen is the signed-in window: a header, the resident list on the
// left, the chosen view on the right (a resident, the conflicts inbox, the
// add-resident form; on the advice line, the region search; for an IG
// lead, the review of break-glass accesses) and the sync status bar always
// at the bottom.
type mainScreen struct {
	u     *UI
	perms app.Permissions

	list      *residentList
	status    *statusBar
	notice    *widget.Label
	noticeBox *fyne.Container
	noticeID  int
	detail    *fyne.Container

	conflictsButton *widget.Button
	tamper          *widget.Label
	tamperBox       *fyne.Container
	alert           *widget.Label // the IG lead's: accesses awaiting review
	alertBox        *fyne.Container

	// The view on the right; those not showing are nil, so events
	// refresh only what is on screen. region lasts the session once
	// made (on the advice line, for a clinician), keeping its results.
	resident  *residentScreen
	inbox     *conflictsInbox
	admission *admissionForm
	glass     *breakGlassForm
	review    *reviewScreen
	region    *regionSearch
	staff     *staffScreen
	handover  *handoverScreen
	reports   *reportsScreen
	services  *servicesScreen

	findButton *widget.Button // on the advice line: back to the region search
	reviews    reviewState    // for an IG lead: what awaits review
	reviewsSet int            // counts setReviews: an answer asked for before the last is stale
	reviewing  bool           // the person signed in reviews accesses
	online     bool           // the relay was reachable at the last status
}

func newMainScreen(u *UI) *mainScreen {
	return &mainScreen{u: u, perms: u.app.Permissions()}
}

func (m *mainScreen) build() fyne.CanvasObject {
	u := m.u
	user := u.app.CurrentUser()
	who := user.Name
	if r := user.Role.Label(); r != "" {
		who += " · " + r
	}
	if !user.Certified {
		// Until the certificate comes: notes only, no decisions.
		who += " · " + user.Status + " (notes only)"
	}
	// The left column carries who is signed in, Lock, the conflicts inbox
	// and the list, so the resident on the right has the full height.
	m.conflictsButton = u.button("Conflicts inbox", m.showConflicts)
	actions := container.NewGridWithColumns(2)
	if u.app.AdviceLine() {
		m.findButton = u.button("Find in the region", m.showWelcome)
		actions.Add(m.findButton)
	}
	actions.Add(m.conflictsButton)
	if m.perms.AddResident {
		actions.Add(u.button("Add a resident", m.showAdmission))
	}
	if m.perms.AddNote && !u.app.AdviceLine() {
		actions.Add(u.button("Handover", m.showHandover))
	}
	actions.Add(u.button("Services", m.showServices))
	if m.perms.ManageStaff {
		actions.Add(u.button("Staff", m.showStaff))
		if !u.app.AdviceLine() {
			actions.Add(u.button("Reports", m.showReports))
		}
	}
	lock := u.primary("Lock", func() { u.app.Lock() })
	title := heading("Haven")
	title.Truncation = fyne.TextTruncateOff
	signedIn := text(who, toneNeutral, true)
	signedIn.Truncation = fyne.TextTruncateEllipsis
	place := caption(u.app.Device().OrgName)
	m.tamper = wrapped("", toneDanger, true)
	m.tamperBox = card(toneDanger, m.tamper)
	m.tamperBox.Hide()
	m.alert = wrapped("", toneWarning, true)
	m.alertBox = card(toneWarning, m.alert, u.button("Review accesses", m.showReview))
	m.alertBox.Hide()
	header := container.NewVBox(
		container.NewBorder(nil, nil, title, fixedWidth(100, lock), container.NewVBox(signedIn, place)),
		actions, m.tamperBox, m.alertBox)

	m.list = newResidentList(u, m.openResident)
	m.status = newStatusBar(u)
	m.notice = wrapped("", toneNeutral, true)
	m.noticeBox = card(toneSuccess, m.notice)
	m.noticeBox.Hide()
	m.detail = container.NewStack()

	left := container.NewBorder(container.NewPadded(header), nil, nil, nil, m.list.build())
	split := container.NewHSplit(left, container.NewBorder(nil, m.noticeBox, nil, nil, m.detail))
	split.Offset = 0.3
	return container.NewBorder(nil, m.status.build(), nil, nil, split)
}

// start fills the list and the first view: an IG lead's reviews, else the
// conflicts inbox when there are conflicts, else the welcome (on the
// advice line, the region search).
func (m *mainScreen) start() {
	m.status.refresh()
	m.online = m.u.app.Status().Online
	m.reviewing = m.u.app.CanReview()
	m.list.reload()
	m.updateConflictCount()
	m.updateFindButton()
	switch {
	case m.reviewing:
		m.loadReviews()
		m.showReview()
	case m.perms.ManageStaff && len(m.u.app.StaffList()) == 1:
		// A computer just enrolled has one account, its manager's: the
		// first thing to do is to add the team.
		m.showStaff()
		m.staff.welcome()
	case len(m.u.app.Conflicts()) > 0:
		m.showConflicts()
	default:
		m.showWelcome()
	}
	m.afterList()
}

// afterList opens the first resident when asked to, and reports the first
// view ready.
func (m *mainScreen) afterList() {
	u := m.u
	if len(m.list.rows) == 0 {
		return
	}
	if u.opts.OpenFirst && !u.openedFirst {
		u.openedFirst = true
		m.openResident(m.list.rows[0].ID)
	}
	if u.opts.Show != "" && !u.openedFirst {
		u.openedFirst = true
		switch u.opts.Show {
		case "handover":
			m.showHandover()
		case "staff":
			m.showStaff()
		case "reports":
			m.showReports()
		case "services":
			m.showServices()
		}
	}
	if !u.opts.OpenFirst || m.resident != nil {
		u.ready()
	}
}

func (m *mainScreen) setDetail(o fyne.CanvasObject) {
	m.detail.Objects = []fyne.CanvasObject{o}
	m.detail.Refresh()
}

// drop forgets the view on the right, before another replaces it.
func (m *mainScreen) drop() {
	m.resident, m.inbox, m.admission, m.glass, m.review, m.staff, m.handover, m.reports = nil, nil, nil, nil, nil, nil, nil, nil
	m.services = nil
}

// showView puts v on the right, after the view before it is dropped and
// the list's choice cleared; field is where the screen keeps it, so events
// refresh it while it shows.
func showView[V interface{ build() fyne.CanvasObject }](m *mainScreen, field *V, v V) {
	m.drop()
	m.list.selectNone()
	*field = v
	m.setDetail(v.build())
}

// showServices shows the directory of services.
func (m *mainScreen) showServices() {
	showView(m, &m.services, newServicesScreen(m.u, m))
}

// showReports shows the home's figures, for a manager.
func (m *mainScreen) showReports() {
	showView(m, &m.reports, newReportsScreen(m.u, m))
}

// showHandover shows what changed since the start of this shift.
func (m *mainScreen) showHandover() {
	showView(m, &m.handover, newHandoverScreen(m.u, m))
}

// showStaff shows the staff accounts on this computer, for a manager.
func (m *mainScreen) showStaff() {
	showView(m, &m.staff, newStaffScreen(m.u, m))
}

func (m *mainScreen) showWelcome() {
	m.drop()
	m.list.selectNone()
	if m.u.app.CanSearchRegion() {
		if m.region == nil {
			m.region = newRegionSearch(m.u, m)
		}
		m.setDetail(m.region.object())
		return
	}
	body := container.NewVBox(
		heading("Find a resident"),
		wrapped("Type in the search box on the left: a name, an NHS number (with or without spaces), a date of birth such as 2/4/1931, or a room number. "+
			"Press Enter to open the first match.", toneNeutral, false),
		wrapped("A resident's front sheet opens first: the CPR recommendation, treatment ceiling, allergies, alerts and key contacts on one screen.", toneNeutral, false),
	)
	m.setDetail(container.NewPadded(body))
}

func (m *mainScreen) showConflicts() {
	showView(m, &m.inbox, newConflictsInbox(m.u, m.openResident))
}

func (m *mainScreen) showAdmission() {
	showView(m, &m.admission, newAdmissionForm(m.u, m))
}

// showReview shows the break-glass accesses awaiting an IG lead's review.
func (m *mainScreen) showReview() {
	showView(m, &m.review, newReviewScreen(m.u, m))
}

// openResident shows a listed resident's front sheet.
func (m *mainScreen) openResident(id docid.ID) { m.open(id, m.list.nameOf(id)) }

// open shows a resident's front sheet, or first asks why when the record
// is outside this computer's care relationship; name says who they are
// on that form.
func (m *mainScreen) open(id docid.ID, name string) {
	fs, err := m.u.app.FrontSheet(id)
	if errors.Is(err, app.ErrNeedsReason) {
		m.drop()
		m.glass = newBreakGlassForm(m.u, m, id)
		m.setDetail(m.glass.build(name))
		m.list.markOpen(id)
		m.u.win.Canvas().Focus(m.glass.reason)
		if m.u.opts.OpenFirst {
			m.u.ready()
		}
		return
	}
	if err != nil {
		m.u.log.Warn("opening a record", "doc", id.String(), "err", err)
		m.problem(err)
		switch {
		case errors.Is(err, app.ErrNotHeld):
			m.setDetail(container.NewPadded(wrapped(err.Error(), toneInfo, true)))
		case errors.Is(err, app.ErrNotShared):
			m.setDetail(container.NewPadded(wrapped(err.Error(), toneWarning, true)))
		case errors.As(err, new(*app.MovedError)):
			m.setDetail(container.NewPadded(wrapped(err.Error(), toneInfo, true)))
		}
		return
	}
	m.drop()
	m.resident = newResidentScreen(m.u, m, id, fs)
	m.setDetail(m.resident.build())
	m.list.markOpen(id)
	m.clearNotice()
	if m.u.opts.OpenFirst {
		m.u.ready()
	}
}

func (m *mainScreen) listChanged() {
	m.rolesChanged()
	m.list.reload()
	m.updateConflictCount()
	if m.inbox != nil {
		m.inbox.refresh()
	}
	if m.staff != nil {
		m.staff.refresh()
	}
	if m.services != nil {
		m.services.load() // the directory itself may have changed
	}
	m.afterList()
}

func (m *mainScreen) residentChanged(id docid.ID) {
	if m.resident != nil && m.resident.id == id {
		m.resident.refresh()
	}
}

func (m *mainScreen) statusChanged() {
	if m.resident != nil {
		m.resident.refreshAsOf()
	}
	if m.region != nil {
		m.region.refreshOnline()
	}
	// Accesses awaiting review are asked for again when the relay comes
	// back; the relay does not announce new ones.
	online := m.u.app.Status().Online
	if online && !m.online && m.reviewing {
		m.loadReviews()
	}
	m.online = online
}

// rolesChanged catches up with a certificate that arrived, or was
// revoked, while the person is signed in (a first sign-in on a new
// computer comes before the relay's answer): the region search and the IG
// review follow what they may do now.
func (m *mainScreen) rolesChanged() {
	a := m.u.app
	idle := m.resident == nil && m.inbox == nil && m.admission == nil && m.glass == nil && m.review == nil
	m.updateFindButton()
	if search := a.CanSearchRegion(); search != (m.region != nil) {
		if !search {
			m.region = nil
		}
		if idle {
			m.showWelcome()
		}
	}
	if now := a.CanReview(); now != m.reviewing {
		m.reviewing = now
		switch {
		case now:
			m.loadReviews()
			if idle {
				m.showReview()
			}
		default:
			m.alertBox.Hide()
			if m.review != nil {
				m.showWelcome()
			}
		}
	}
}

// updateFindButton offers the region search to whoever may search it.
func (m *mainScreen) updateFindButton() {
	if m.findButton == nil {
		return
	}
	if m.u.app.CanSearchRegion() {
		m.findButton.Show()
	} else {
		m.findButton.Hide()
	}
}

// loadReviews asks the relay, off the UI thread, what awaits the IG
// lead's review.
func (m *mainScreen) loadReviews() {
	m.setReviews(reviewState{})
	asked := m.reviewsSet
	m.u.background(func() func() {
		pending, err := m.u.app.PendingReviews()
		return func() {
			if m.u.main == m && m.reviewing && m.reviewsSet == asked {
				m.setReviews(reviewState{Known: true, Pending: pending, Err: err})
			}
		}
	})
}

// setReviews shows what awaits review: on the alert, and on the review
// screen if it is open.
func (m *mainScreen) setReviews(s reviewState) {
	m.reviews = s
	m.reviewsSet++
	v := reviewAlertFor(s)
	if !v.Show {
		m.alertBox.Hide()
	} else {
		setLabel(m.alert, v.Text, v.Tone)
		recolour(m.alertBox, v.Tone)
		m.alertBox.Show()
	}
	if m.review != nil {
		m.review.refresh()
	}
}

func (m *mainScreen) updateConflictCount() {
	m.updateTamper()
	n := len(m.u.app.Conflicts())
	if n == 0 {
		m.conflictsButton.SetText("Conflicts inbox (none)")
		m.conflictsButton.Importance = widget.MediumImportance
	} else {
		m.conflictsButton.SetText(fmt.Sprintf("Conflicts inbox (%d)", n))
		m.conflictsButton.Importance = widget.DangerImportance
	}
	m.conflictsButton.Refresh()
}

// updateTamper shows the tamper alert while any resident's record holds
// entries that are not decisions.
func (m *mainScreen) updateTamper() {
	t := m.u.app.Tampered()
	if len(t) == 0 {
		m.tamperBox.Hide()
		return
	}
	names := make([]string, 0, 3)
	for i, r := range t {
		if i == 3 {
			names = append(names, "…")
			break
		}
		names = append(names, r.Name())
	}
	m.tamper.SetText(fmt.Sprintf("TAMPER ALERT: %d record(s) hold entries that are not decisions (%s). They are shown in red and never used. "+
		"Home manager: report it to your Haven administrator.", len(t), strings.Join(names, ", ")))
	m.tamperBox.Show()
}

// saved tells the person their change is on disk, for a few seconds.
func (m *mainScreen) saved(s app.Saved) {
	m.say(s.Message, toneSuccess)
	m.noticeID++
	id := m.noticeID
	d := m.u.opts.NoticeFor
	if d < 0 {
		return
	}
	if d == 0 {
		d = 8 * time.Second
	}
	time.AfterFunc(d, func() {
		m.u.opts.events(func() {
			if m.noticeID == id {
				m.clearNotice()
			}
		})
	})
}

// problem shows an error that has no form to stand beside.
func (m *mainScreen) problem(err error) {
	m.noticeID++
	m.say(err.Error(), toneDanger)
}

func (m *mainScreen) say(msg string, t tone) {
	setLabel(m.notice, msg, t)
	recolour(m.noticeBox, t)
	m.noticeBox.Show()
}

func (m *mainScreen) clearNotice() {
	m.notice.SetText("")
	m.noticeBox.Hide()
}
