package ui

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
)

// unlockScreen signs a member of staff in: choose your name, type your PIN.
type unlockScreen struct {
	u       *UI
	staff   []app.Staff
	chosen  string // staff ID
	people  []*widget.Button
	who     *widget.Label
	pin     *widget.Entry
	unlock  *widget.Button
	message *widget.Label
	working *widget.ProgressBarInfinite
}

func newUnlockScreen(u *UI) *unlockScreen { return &unlockScreen{u: u} }

func (s *unlockScreen) build() fyne.CanvasObject {
	u := s.u
	d := u.app.Device()
	s.staff = u.app.StaffList()
	names := container.NewGridWithColumns(2)
	for _, p := range s.staff {
		p := p
		label := p.Name
		if r := p.Role.Label(); r != "" {
			label += " · " + r
		}
		if !p.Certified && p.Status != "" {
			label += " (" + p.Status + ")"
		}
		b := u.button(label, func() { s.onChoose(p.ID) })
		s.people = append(s.people, b)
		names.Add(tall(b))
	}
	s.who = text("Choose your name above.", toneNeutral, false)
	s.pin = widget.NewPasswordEntry()
	s.pin.PlaceHolder = "your PIN"
	s.pin.OnSubmitted = func(string) { s.onUnlock() }
	s.pin.OnChanged = func(string) { u.touch() }
	s.unlock = u.primary("Unlock", s.onUnlock)
	s.message = wrapped("", toneDanger, true)
	s.working = widget.NewProgressBarInfinite()
	s.working.Hide()

	where := d.OrgName
	if d.Name != "" {
		where += " · " + d.Name
	}
	body := container.NewVBox(
		heading("Haven is locked"),
		text(where, toneNeutral, false),
		subheading("1. Choose your name"),
		s.namesScroll(names),
		subheading("2. Type your PIN"),
		s.who,
		container.NewBorder(nil, nil, nil, fixedWidth(160, tall(s.unlock)), s.pin),
		s.working,
		s.message,
	)
	if d.Demo {
		body.Add(s.demo())
	}
	return u.scroll(container.NewCenter(fixedWidth(720, card(toneNeutral, body))))
}

// namesScroll shows up to four rows of names; a bigger home scrolls.
func (s *unlockScreen) namesScroll(names *fyne.Container) fyne.CanvasObject {
	rows := (len(s.staff) + 1) / 2
	if rows > 4 {
		rows = 4
	}
	scroll := s.u.scroll(names)
	scroll.SetMinSize(fyne.NewSize(0, float32(rows)*(48+theme.Padding())))
	return scroll
}

// demo lists the demonstration accounts and their PINs.
func (s *unlockScreen) demo() fyne.CanvasObject {
	box := container.NewVBox(subheading("Demo"),
		caption("This computer holds made-up residents for a demonstration. Each demo account's PIN:"))
	for _, a := range app.DemoAccounts {
		box.Add(text(fmt.Sprintf("%s · %s · PIN %s", a.Name, a.Role.Label(), a.PIN), toneNeutral, false))
	}
	return card(toneInfo, box)
}

func (s *unlockScreen) onChoose(id string) {
	s.chosen = id
	for i, p := range s.staff {
		imp := widget.MediumImportance
		if p.ID == id {
			imp = widget.HighImportance
			s.who.SetText("Unlocking as " + p.Name)
		}
		s.people[i].Importance = imp
		s.people[i].Refresh()
	}
	s.message.SetText("")
	s.u.win.Canvas().Focus(s.pin)
}

// choose picks a person by name (the screen's own buttons do this by tap).
func (s *unlockScreen) choose(name string) bool {
	for _, p := range s.staff {
		if p.Name == name {
			s.onChoose(p.ID)
			return true
		}
	}
	return false
}

func (s *unlockScreen) onUnlock() {
	id, pin := s.chosen, s.pin.Text
	s.unlock.Disable()
	s.working.Show()
	s.message.SetText("")
	s.u.background(func() func() {
		_, err := s.u.app.Unlock(id, pin) // slow on purpose: the PIN's key derivation
		return func() { s.unlocked(err) }
	})
}

func (s *unlockScreen) unlocked(err error) {
	if s.u.unlock != s {
		return // the screen changed meanwhile
	}
	s.working.Hide()
	s.unlock.Enable()
	if err != nil {
		s.pin.SetText("")
		s.message.SetText(err.Error())
		s.u.win.Canvas().Focus(s.pin)
		return
	}
	s.u.showMain()
}
