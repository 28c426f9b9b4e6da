package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/docid"
)

// residentScreen is one resident: who they are, how current this copy is,
// and tabs with the front sheet first. Tabs other than the front sheet load
// when opened, so that viewing the care plan or advance wishes is audited
// only when someone actually looks.
type residentScreen struct {
	u  *UI
	m  *mainScreen
	id docid.ID
	fs *app.FrontSheet

	name     *widget.Label
	identity *widget.Label
	stale    *fyne.Container
	staleMsg *widget.Label
	current  *widget.Label // the "as of" line while the copy is current
	tabs     *container.AppTabs

	front    *frontSheet
	care     *carePlanTab
	wishes   *wishesTab
	contacts *contactsTab
	notes    *notesTab
	history  *historyTab

	lastDecide *decideForm     // the decision form opened last (tests)
	discharge  *dischargeForm  // likewise
	correction *correctionForm // likewise
	printing   *printForm      // likewise
	transfer   *transferForm   // likewise
}

func newResidentScreen(u *UI, m *mainScreen, id docid.ID, fs *app.FrontSheet) *residentScreen {
	return &residentScreen{u: u, m: m, id: id, fs: fs}
}

// identityLine is the line under the name: the facts that tell one
// resident from another.
func identityLine(fs *app.FrontSheet) string {
	var parts []string
	if fs.NHSNumber != "" {
		parts = append(parts, "NHS "+fs.NHSNumber)
	}
	if fs.DateOfBirth != "" {
		parts = append(parts, "Born "+fs.DateOfBirth)
	}
	if fs.Sex != "" {
		parts = append(parts, words(fs.Sex))
	}
	if fs.Room != "" {
		parts = append(parts, "Room "+fs.Room)
	}
	if fs.Home != "" {
		parts = append(parts, fs.Home)
	}
	if fs.Status != "" && fs.Status != "active" {
		parts = append(parts, strings.ToUpper(words(fs.Status)))
	}
	return strings.Join(parts, " · ")
}

func displayName(fs *app.FrontSheet) string {
	if fs.PreferredName != "" && !strings.HasPrefix(fs.Name, fs.PreferredName+" ") {
		return fs.Name + " (known as " + fs.PreferredName + ")"
	}
	return fs.Name
}

func (s *residentScreen) build() fyne.CanvasObject {
	u := s.u
	s.name = heading(displayName(s.fs))
	s.identity = text(identityLine(s.fs), toneNeutral, false)
	s.identity.Truncation = fyne.TextTruncateEllipsis
	s.staleMsg = wrapped("", toneWarning, false)
	s.stale = card(toneWarning, container.NewBorder(nil, nil, text("This copy may be out of date:", toneWarning, true), nil, s.staleMsg))
	s.current = caption("")
	s.showAsOf(s.fs.AsOf, s.fs.Stale)

	actions := []fyne.CanvasObject{u.button("Print…", func() { s.printing = showPrint(u, s) })}
	if s.m.perms.EditRecord {
		actions = append(actions, u.button("Correct details…", func() { s.correction = showCorrection(u, s) }),
			u.button("Discharge…", func() { s.discharge = showDischarge(u, s) }))
	}
	if s.m.perms.Transfer {
		actions = append(actions, u.button("Move to another home…", func() { s.transfer = showTransfer(u, s) }))
	}
	header := container.NewBorder(nil, nil, nil, container.NewVBox(actions...), container.NewVBox(s.name, s.identity))

	s.front = newFrontSheet(u, s)
	s.care = newCarePlanTab(u, s)
	s.wishes = newWishesTab(u, s)
	s.contacts = newContactsTab(u, s)
	s.notes = newNotesTab(u, s)
	s.history = newHistoryTab(u, s)
	s.tabs = container.NewAppTabs(
		container.NewTabItem("Front sheet", s.front.build()),
		container.NewTabItem("Care plan", s.care.build()),
		container.NewTabItem("Advance wishes", s.wishes.build()),
		container.NewTabItem("Contacts", s.contacts.build()),
		container.NewTabItem("Notes", s.notes.build()),
		container.NewTabItem("History", s.history.build()),
	)
	s.tabs.OnSelected = func(*container.TabItem) { u.touch(); s.loadTab() }
	return container.NewBorder(container.NewPadded(container.NewVBox(header, s.stale, s.current)), nil, nil, nil, s.tabs)
}

// showAsOf shows the warning banner only when the copy may be stale; the
// "as of" line itself is always on the front sheet.
func (s *residentScreen) showAsOf(asOf string, stale bool) {
	s.staleMsg.SetText(strings.TrimSuffix(asOf, ": it may be out of date") + ". Check the paper ReSPECT form if a decision matters now.")
	s.current.SetText(asOf)
	if stale {
		s.stale.Show()
		s.current.Hide()
	} else {
		s.stale.Hide()
		s.current.Show()
	}
}

// loadTab fills the selected tab.
func (s *residentScreen) loadTab() {
	switch s.tabs.SelectedIndex() {
	case 0:
		s.front.show(s.fs)
	case 1:
		s.care.load()
	case 2:
		s.wishes.load()
	case 3:
		s.contacts.load()
	case 4:
		s.notes.load()
	case 5:
		s.history.load()
	}
}

// selectTab opens a tab by its title.
// nextTab moves to the tab after the one shown, round to the first.
func (s *residentScreen) nextTab() {
	if s.tabs == nil || len(s.tabs.Items) == 0 {
		return
	}
	s.tabs.SelectIndex((s.tabs.SelectedIndex() + 1) % len(s.tabs.Items))
}

func (s *residentScreen) selectTab(title string) {
	for _, t := range s.tabs.Items {
		if t.Text == title {
			s.tabs.Select(t)
			return
		}
	}
}

// refresh re-reads the record after it changed here or arrived from the relay.
func (s *residentScreen) refresh() {
	fs, err := s.u.app.FrontSheet(s.id)
	if err != nil {
		s.m.problem(err)
		return
	}
	s.fs = fs
	s.name.SetText(displayName(fs))
	s.identity.SetText(identityLine(fs))
	s.showAsOf(fs.AsOf, fs.Stale)
	s.front.show(fs)
	if s.tabs.SelectedIndex() != 0 {
		s.loadTab()
	}
}

// refreshAsOf follows the connection without re-reading the record.
func (s *residentScreen) refreshAsOf() {
	asOf, stale := s.u.app.AsOf(s.id)
	s.fs.AsOf, s.fs.Stale = asOf, stale
	s.showAsOf(asOf, stale)
	s.front.showAsOf(asOf, stale)
}

// closeSaved ends a form's save: on error the form says why in plain words
// and stays open; otherwise the dialog closes and the screen shows what was
// saved.
func (s *residentScreen) closeSaved(form *fieldForm, dlg dialog.Dialog, saved app.Saved, err error) {
	if err != nil {
		form.show(err)
		return
	}
	dlg.Hide()
	s.m.saved(saved)
}
