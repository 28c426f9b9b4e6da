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

// staffScreen is a manager's view of the staff accounts on this computer:
// who may sign in here, in what role, whether the organisation has
// certified them; adding a member of staff with them present to choose a
// PIN, resetting a forgotten PIN, and removing a leaver.
type staffScreen struct {
	u    *UI
	m    *mainScreen
	rows *fyne.Container
	note *widget.Label
}

func newStaffScreen(u *UI, m *mainScreen) *staffScreen { return &staffScreen{u: u, m: m} }

func (s *staffScreen) build() fyne.CanvasObject {
	u := s.u
	s.rows = container.NewVBox()
	s.note = wrapped("", toneWarning, false)
	intro := wrapped("Everyone who uses this computer signs in with their own PIN, so that every change and every "+
		"record opened names the right person. Add each member of the team with them beside you: they type their own PIN.",
		toneNeutral, false)
	add := u.primary("Add a member of staff", func() { showAddStaff(u, s) })
	head := container.NewVBox(heading("Staff on this computer"), intro, container.NewHBox(add), s.note)
	s.refresh()
	return container.NewBorder(container.NewPadded(head), nil, nil, nil, u.scroll(container.NewPadded(s.rows)))
}

// welcome says, on a computer just set up, what to do first.
func (s *staffScreen) welcome() {
	setLabel(s.note, "This computer is set up, with your account only. Add each member of the team now, with them "+
		"beside you to choose their PIN: everyone signs in as themselves.", toneInfo)
	s.note.Show()
}

// refresh redraws the list: a certificate granted or revoked changes what
// a person's line says.
func (s *staffScreen) refresh() {
	u := s.u
	me := u.app.CurrentUser()
	s.rows.Objects = nil
	for _, st := range u.app.StaffList() {
		st := st
		who := text(st.Name, toneNeutral, true)
		role := st.Role.Label()
		if st.RegNo != "" {
			role += " · " + st.RegNo
		}
		status, t := "Certified by the organisation", toneSuccess
		if !st.Certified {
			status, t = sentence(st.Status)+": may write notes, not decisions", toneWarning
		}
		line := container.NewVBox(who, text(role, toneNeutral, false), text(status, t, false))
		var actions *fyne.Container
		if me != nil && st.ID == me.ID {
			actions = container.NewHBox(text("Signed in now", toneNeutral, false))
		} else {
			actions = container.NewHBox(
				u.button("Reset PIN…", func() { showResetPIN(u, s, st) }),
				u.button("Remove (leaver)…", func() { showRemoveStaff(u, s, st) }))
		}
		s.rows.Add(card(toneNeutral, container.NewBorder(nil, nil, nil, actions, line)))
	}
	s.rows.Refresh()
	if n := u.app.PendingLeavers(); n > 0 {
		setLabel(s.note, fmt.Sprintf("%s waiting to reach the relay: sent when this computer is next connected.",
			plural(n, "certificate revocation", "certificate revocations")), toneWarning)
		s.note.Show()
	} else {
		s.note.Hide()
	}
}

// pinPair is a PIN typed twice, by the person whose PIN it is.
type pinPair struct{ pin, again *widget.Entry }

func newPinPair(u *UI, form *fieldForm) pinPair {
	p := pinPair{pin: u.entry("at least 6 digits"), again: u.entry("the same again")}
	p.pin.Password, p.again.Password = true, true
	form.add("pin", "Their PIN", p.pin)
	form.add("pinAgain", "PIN again", p.again)
	return p
}

// errPINsDiffer is the one check the screen makes itself: two entries of
// one PIN that differ.
var errPINsDiffer = errors.New("the two PINs are not the same: type it again")

func (p pinPair) value() (string, error) {
	if p.pin.Text != p.again.Text {
		return "", errPINsDiffer
	}
	return p.pin.Text, nil
}

// staffDialog is a staff change in a dialog: intro words, the form, and
// one button that runs work off the UI thread (after ready, the screen's
// own check, passes); on success the dialog closes, the list is redrawn
// and the screen says what work returned; on failure the form says why.
func (s *staffScreen) staffDialog(title, intro, label, doing string, form *fieldForm, size fyne.Size,
	ready func() error, work func() (string, error)) {
	u := s.u
	var d interface{ Hide() }
	var b *widget.Button
	b = u.primary(label, func() {
		if err := ready(); err != nil {
			form.show(err)
			return
		}
		u.busy(b, doing, func() func() {
			msg, err := work()
			return func() {
				if err != nil {
					form.show(err)
					return
				}
				d.Hide()
				s.refresh()
				s.m.say(msg, toneSuccess)
			}
		})
	})
	d = u.showDialog(title, container.NewVBox(wrapped(intro, toneNeutral, false), form.object(),
		container.NewHBox(b, u.button("Cancel", func() { d.Hide() }))), size)
}

// showAddStaff asks for a new member of staff: name, role, registration
// where the role has one, and a PIN they type themselves.
func showAddStaff(u *UI, s *staffScreen) {
	form := newFieldForm()
	name := u.entry("e.g. Casey Carer")
	form.add("name", "Name", name)
	reg := u.entry("e.g. NMC 12A3456E")
	roles := make([]string, len(record.Roles))
	for i, r := range record.Roles {
		roles[i] = string(r)
	}
	role := u.choice(roles, func(v string) string { return record.Role(v).Label() }, func(v string) {
		if record.Role(v).Clinician() {
			reg.Enable()
		} else {
			reg.SetText("")
			reg.Disable()
		}
	})
	form.add("role", "Role", role)
	form.add("registration", "Registration", reg)
	reg.Disable()
	pins := newPinPair(u, form)
	var pin, who string
	s.staffDialog("Add a member of staff", "Care workers and senior carers you add are certified at once on your word; "+
		"registered clinicians once an administrator has checked their registration.", "Add", "Adding…", form, fyne.NewSize(640, 460),
		func() (err error) { pin, err = pins.value(); who = name.Text; return err },
		func() (string, error) {
			st, err := u.app.AddStaff(who, record.Role(role.Value()), reg.Text, pin)
			if err != nil {
				return "", err
			}
			msg := st.Name + " can now sign in on this computer."
			if !st.Certified {
				msg += " Until the organisation certifies them (" + st.Status + ") they may write notes, not decisions."
			}
			return msg, nil
		})
}

// showResetPIN lets a person who forgot their PIN choose another, with the
// manager signed in.
func showResetPIN(u *UI, s *staffScreen, st app.Staff) {
	form := newFieldForm()
	pins := newPinPair(u, form)
	var pin string
	s.staffDialog("Reset "+st.Name+"'s PIN", "Ask "+st.Name+" to type a new PIN of their choosing. Their old PIN will open "+
		"nothing, and what they sign from now on uses a new key, which the organisation certifies again.",
		"Set the new PIN", "Saving…", form, fyne.NewSize(600, 340),
		func() (err error) { pin, err = pins.value(); return err },
		func() (string, error) {
			ch, err := u.app.ResetPIN(st.ID, pin)
			return st.Name + " signs in with the new PIN. " + changeWords(ch), err
		})
}

// showRemoveStaff removes a leaver after the manager confirms.
func showRemoveStaff(u *UI, s *staffScreen, st app.Staff) {
	s.staffDialog("Remove "+st.Name, st.Name+" will no longer be able to sign in on this computer, and their certificate is "+
		"revoked, so nothing signed with it from now on is trusted anywhere. Everything they recorded stays, under their name.",
		"Remove "+st.Name, "Removing…", newFieldForm(), fyne.NewSize(600, 260),
		func() error { return nil },
		func() (string, error) {
			ch, err := u.app.RemoveStaff(st.ID)
			return st.Name + " can no longer sign in on this computer. " + changeWords(ch), err
		})
}

// changeWords says what became of the person's certificate.
func changeWords(ch app.StaffChange) string {
	switch {
	case ch.Revoking:
		return "Their old certificate is being revoked at the relay."
	case ch.AskAdministrator:
		return "Ask an administrator to revoke their old certificate: your word does not revoke it."
	}
	return ""
}
