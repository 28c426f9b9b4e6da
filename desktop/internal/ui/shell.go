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
// add-resident form) and the sync status bar always at the bottom.
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
	resident        *residentScreen
	inbox           *conflictsInbox
	admission       *admissionForm
	glass           *breakGlassForm
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
	actions := container.NewGridWithColumns(2, m.conflictsButton)
	if m.perms.EditRecord {
		actions.Add(u.button("Add a resident", m.showAdmission))
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
	header := container.NewVBox(
		container.NewBorder(nil, nil, title, fixedWidth(100, lock), container.NewVBox(signedIn, place)),
		actions, m.tamperBox)

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

// start fills the list and the first view.
func (m *mainScreen) start() {
	m.status.refresh()
	m.list.reload()
	m.updateConflictCount()
	if len(m.u.app.Conflicts()) > 0 {
		m.showConflicts()
	} else {
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
	if !u.opts.OpenFirst || m.resident != nil {
		u.ready()
	}
}

func (m *mainScreen) setDetail(o fyne.CanvasObject) {
	m.detail.Objects = []fyne.CanvasObject{o}
	m.detail.Refresh()
}

func (m *mainScreen) showWelcome() {
	m.resident, m.inbox, m.admission, m.glass = nil, nil, nil, nil
	m.list.selectNone()
	body := container.NewVBox(
		heading("Find a resident"),
		wrapped("Type in the search box on the left: a name, an NHS number (with or without spaces), a date of birth such as 2/4/1931, or a room number. "+
			"Press Enter to open the first match.", toneNeutral, false),
		wrapped("A resident's front sheet opens first: the CPR recommendation, treatment ceiling, allergies, alerts and key contacts on one screen.", toneNeutral, false),
	)
	m.setDetail(container.NewPadded(body))
}

func (m *mainScreen) showConflicts() {
	m.resident, m.admission, m.glass = nil, nil, nil
	m.list.selectNone()
	m.inbox = newConflictsInbox(m.u, m.openResident)
	m.setDetail(m.inbox.build())
}

func (m *mainScreen) showAdmission() {
	m.resident, m.inbox, m.glass = nil, nil, nil
	m.list.selectNone()
	m.admission = newAdmissionForm(m.u, m)
	m.setDetail(m.admission.build())
}

// openResident shows a resident's front sheet.
func (m *mainScreen) openResident(id docid.ID) {
	fs, err := m.u.app.FrontSheet(id)
	if errors.Is(err, app.ErrNeedsReason) {
		m.resident, m.inbox, m.admission = nil, nil, nil
		m.glass = newBreakGlassForm(m.u, m, id)
		m.setDetail(m.glass.build(m.list.nameOf(id)))
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
		if errors.Is(err, app.ErrNotHeld) {
			m.setDetail(container.NewPadded(wrapped(err.Error(), toneInfo, true)))
		}
		return
	}
	m.inbox, m.admission, m.glass = nil, nil, nil
	m.resident = newResidentScreen(m.u, m, id, fs)
	m.setDetail(m.resident.build())
	m.list.markOpen(id)
	m.clearNotice()
	if m.u.opts.OpenFirst {
		m.u.ready()
	}
}

func (m *mainScreen) listChanged() {
	m.list.reload()
	m.updateConflictCount()
	if m.inbox != nil {
		m.inbox.refresh()
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
		fyne.Do(func() {
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
