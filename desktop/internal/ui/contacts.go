package ui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"haven/shared/record"
)

// contactLines words a contact for the contacts tab.
func contactLines(c record.Contact) (title string, lines []string) {
	title = c.Name
	if c.Removed {
		title += " (removed)"
	}
	var about []string
	if c.Relationship != "" {
		about = append(about, c.Relationship)
	}
	if c.Role != "" {
		about = append(about, contactRoleWords(c.Role))
	}
	if c.Organisation != "" {
		about = append(about, c.Organisation)
	}
	if c.Kind == "personal" && c.CallOrder > 0 {
		about = append(about, fmt.Sprintf("call order %d", c.CallOrder))
	}
	lines = append(lines, strings.Join(about, " · "))
	var p []string
	if c.PhoneDay != "" {
		p = append(p, "Day "+c.PhoneDay)
	}
	if c.PhoneNight != "" {
		p = append(p, "Night "+c.PhoneNight)
	}
	if c.Email != "" {
		p = append(p, c.Email)
	}
	if c.Kind == "personal" {
		p = append(p, "call at night: "+strings.ToLower(yesNo(c.CallAtNight)))
	}
	lines = append(lines, strings.Join(p, " · "))
	if c.Role == "attorney" {
		lpa := "LPA NOT registered with the Office of the Public Guardian"
		if c.LPARegistered {
			lpa = "LPA registered with the Office of the Public Guardian"
		}
		if c.LPACertificate != "" {
			lpa += " · certificate: " + c.LPACertificate
		}
		if c.LPACopySeenBy != "" {
			lpa += " · copy seen by " + c.LPACopySeenBy + " " + c.LPACopySeenOn
		}
		lines = append(lines, lpa)
	}
	return title, lines
}

// contactsTab lists the resident's contacts, removed ones marked, and adds new ones.
type contactsTab struct {
	u       *UI
	rs      *residentScreen
	items   []record.Contact
	box     *fyne.Container
	message *widget.Label
	add     *contactForm // last opened (tests)
}

func newContactsTab(u *UI, rs *residentScreen) *contactsTab { return &contactsTab{u: u, rs: rs} }

func (t *contactsTab) build() fyne.CanvasObject {
	t.box = container.NewVBox()
	t.message = wrapped("", toneDanger, true)
	t.message.Hide()
	var top []fyne.CanvasObject
	if t.rs.m.perms.EditRecord {
		top = append(top, container.NewHBox(t.u.primary("Add a contact…", func() { t.add = showContactForm(t.u, t.rs) })))
	}
	top = append(top, t.message)
	return container.NewBorder(container.NewPadded(container.NewVBox(top...)), nil, nil, nil, t.u.scroll(container.NewPadded(t.box)))
}

func (t *contactsTab) load() {
	cs, err := t.u.app.Contacts(t.rs.id)
	if err != nil {
		t.message.SetText(err.Error())
		t.message.Show()
		return
	}
	t.message.Hide()
	t.items = cs
	t.box.RemoveAll()
	if len(cs) == 0 {
		t.box.Add(text("No contacts recorded", toneWarning, true))
	}
	for _, c := range cs {
		c := c
		title, lines := contactLines(c)
		objs := []fyne.CanvasObject{text(title, toneNeutral, true)}
		for _, l := range lines {
			objs = append(objs, wrapped(l, toneNeutral, false))
		}
		body := fyne.CanvasObject(container.NewVBox(objs...))
		if t.rs.m.perms.EditRecord && !c.Removed {
			edit := t.u.button("Correct…", func() { t.add = showContactEdit(t.u, t.rs, c) })
			body = container.NewBorder(nil, nil, nil, container.NewVBox(edit), body)
		}
		t.box.Add(card(toneNeutral, body))
	}
}

// contactForm adds a contact (app.AddContact).
type contactForm struct {
	u    *UI
	rs   *residentScreen
	form *fieldForm

	kind                             *choice
	personalRole, professionalRole   *choice
	name, relationship, organisation *widget.Entry
	phoneDay, phoneNight, email      *widget.Entry
	callOrder                        *choice
	callAtNight, lpaRegistered       *widget.Check
	lpaCertificate                   *widget.Entry
	removed                          *widget.Check // correcting: the contact no longer applies, or was entered in error
	save                             *widget.Button
	dlg                              dialog.Dialog
	editing                          *record.Contact // the contact corrected; nil when adding
}

func showContactForm(u *UI, rs *residentScreen) *contactForm { return contactDialog(u, rs, nil) }

// showContactEdit corrects a contact: every field as recorded, to change,
// or the whole contact marked as no longer applying (nothing is deleted:
// the history keeps what it said).
func showContactEdit(u *UI, rs *residentScreen, c record.Contact) *contactForm {
	return contactDialog(u, rs, &c)
}

func contactDialog(u *UI, rs *residentScreen, editing *record.Contact) *contactForm {
	f := &contactForm{u: u, rs: rs, form: newFieldForm(), editing: editing}
	f.personalRole = u.choice(record.PersonalContactRoles, contactRoleWords, nil)
	f.professionalRole = u.choice(record.ProfessionalRoles, contactRoleWords, nil)
	f.professionalRole.Hide()
	f.kind = u.choice(record.ContactKinds, words, func(k string) {
		if k == "professional" {
			f.personalRole.Hide()
			f.professionalRole.Show()
		} else {
			f.professionalRole.Hide()
			f.personalRole.Show()
		}
	})
	f.kind.SetValue("personal")
	f.name = u.entry("")
	f.relationship = u.entry("e.g. daughter")
	f.organisation = u.entry("for professionals: practice or team")
	f.phoneDay = u.entry("")
	f.phoneNight = u.entry("")
	f.email = u.entry("")
	f.callOrder = u.choice([]string{"1", "2", "3", "4", "5"}, func(s string) string { return "Call " + s + ordinal(s) }, nil)
	f.callAtNight = u.check("Happy to be called at night", nil)
	f.lpaRegistered = u.check("Attorney: LPA registered with the Office of the Public Guardian", nil)
	f.lpaCertificate = u.entry("attorney: where the certificate is")
	fm := f.form
	fm.add("kind", "Kind", f.kind)
	fm.add("role", "Role", container.NewStack(f.personalRole, f.professionalRole))
	fm.add("name", "Name", f.name)
	fm.add("relationship", "Relationship", f.relationship)
	fm.add("organisation", "Organisation", f.organisation)
	fm.add("callOrder", "Order to call", f.callOrder)
	fm.add("phoneDay", "Phone (day)", f.phoneDay)
	fm.add("phoneNight", "Phone (night)", f.phoneNight)
	fm.add("email", "Email", f.email)
	fm.add("", "", container.NewVBox(f.callAtNight, f.lpaRegistered))
	fm.add("lpaCertificate", "LPA certificate", f.lpaCertificate)
	f.removed = u.check("No longer a contact, or entered in error (kept in the history, not shown)", nil)
	title, label := "Add a contact: ", "Add contact"
	if editing != nil {
		fm.add("", "", f.removed)
		f.fill(*editing)
		title, label = "Correct a contact: ", "Save correction"
	}
	f.save = u.primary(label, f.onSave)
	body := container.NewVBox(fm.object(), container.NewHBox(tall(f.save), u.button("Cancel", func() { f.dlg.Hide() })))
	f.dlg = u.showDialog(title+rs.fs.Name, u.scroll(body), fyne.NewSize(760, 660))
	return f
}

// fill shows a recorded contact in the form, to correct.
func (f *contactForm) fill(c record.Contact) {
	f.kind.SetValue(c.Kind)
	if c.Kind == "professional" {
		f.professionalRole.SetValue(c.Role)
	} else {
		f.personalRole.SetValue(c.Role)
	}
	f.name.SetText(c.Name)
	f.relationship.SetText(c.Relationship)
	f.organisation.SetText(c.Organisation)
	if c.CallOrder >= 1 && c.CallOrder <= 5 {
		f.callOrder.SetSelectedIndex(int(c.CallOrder - 1))
	}
	f.phoneDay.SetText(c.PhoneDay)
	f.phoneNight.SetText(c.PhoneNight)
	f.email.SetText(c.Email)
	f.callAtNight.SetChecked(c.CallAtNight)
	f.lpaRegistered.SetChecked(c.LPARegistered)
	f.lpaCertificate.SetText(c.LPACertificate)
	f.removed.SetChecked(c.Removed)
}

func ordinal(s string) string {
	switch s {
	case "1":
		return "st"
	case "2":
		return "nd"
	case "3":
		return "rd"
	}
	return "th"
}

func (f *contactForm) contact() record.Contact {
	role := f.personalRole.Value()
	if f.kind.Value() == "professional" {
		role = f.professionalRole.Value()
	}
	order := int64(f.callOrder.SelectedIndex() + 1)
	return record.Contact{Kind: f.kind.Value(), Role: role, Name: strings.TrimSpace(f.name.Text), Relationship: f.relationship.Text,
		Organisation: f.organisation.Text, CallOrder: order, PhoneDay: f.phoneDay.Text, PhoneNight: f.phoneNight.Text,
		Email: f.email.Text, CallAtNight: f.callAtNight.Checked, LPARegistered: f.lpaRegistered.Checked, LPACertificate: f.lpaCertificate.Text}
}

func (f *contactForm) onSave() {
	c := f.contact()
	if f.editing != nil {
		// What the form does not show (who saw the LPA copy, and when) is
		// kept as recorded.
		c.ID, c.LPACopySeenBy, c.LPACopySeenOn, c.Removed = f.editing.ID, f.editing.LPACopySeenBy, f.editing.LPACopySeenOn, f.removed.Checked
		saved, err := f.u.app.UpdateContact(f.rs.id, c)
		f.rs.closeSaved(f.form, f.dlg, saved, err)
		return
	}
	saved, err := f.u.app.AddContact(f.rs.id, c)
	f.rs.closeSaved(f.form, f.dlg, saved, err)
}
