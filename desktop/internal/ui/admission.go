package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/record"
)

// admissionForm adds a resident to the home: their record, their timeline
// and the home's directory entry (app.Admit).
type admissionForm struct {
	u    *UI
	m    *mainScreen
	form *fieldForm

	home                     *choice
	given, family, preferred *widget.Entry
	nhsNumber, dob, room, gp *widget.Entry
	sex                      *choice
	save                     *widget.Button
}

func newAdmissionForm(u *UI, m *mainScreen) *admissionForm { return &admissionForm{u: u, m: m} }

func (f *admissionForm) build() fyne.CanvasObject {
	u := f.u
	homes := u.app.Homes()
	f.home = u.choice(homes, func(h string) string { return h }, nil)
	if len(homes) > 0 {
		f.home.SetSelectedIndex(0)
	}
	f.given = u.entry("")
	f.family = u.entry("")
	f.preferred = u.entry("what they like to be called")
	f.nhsNumber = u.entry("10 digits, spaces allowed: 943 476 5919")
	f.dob = u.entry("e.g. 2/4/1931")
	f.sex = u.choice(record.Sexes, words, nil)
	f.room = u.entry("")
	f.gp = u.entry("GP practice ODS code, e.g. E85001")
	f.form = newFieldForm()
	if len(homes) > 1 {
		f.form.add("home", "Care home", f.home)
	}
	f.form.add("givenName", "Given name", f.given)
	f.form.add("familyName", "Family name", f.family)
	f.form.add("preferredName", "Preferred name", f.preferred)
	f.form.add("nhsNumber", "NHS number", f.nhsNumber)
	f.form.add("dateOfBirth", "Date of birth", f.dob)
	f.form.add("sex", "Sex", f.sex)
	f.form.add("room", "Room", f.room)
	f.form.add("gpPractice", "GP practice", f.gp)
	f.save = u.primary("Add this resident", f.onSave)
	body := container.NewVBox(heading("Add a resident"),
		wrapped("Their record is created on this computer first and sent to the relay when the connection allows. "+
			"Add the care plan, advance wishes and contacts from their record once it opens.", toneNeutral, false),
		f.form.object(), container.NewHBox(tall(f.save), u.button("Cancel", f.m.showWelcome)))
	return u.scroll(container.NewPadded(body))
}

func (f *admissionForm) admission() app.Admission {
	return app.Admission{GivenName: f.given.Text, FamilyName: f.family.Text, PreferredName: f.preferred.Text,
		NHSNumber: f.nhsNumber.Text, DateOfBirth: f.dob.Text, Sex: f.sex.Value(), Room: f.room.Text, GPPractice: f.gp.Text}
}

func (f *admissionForm) onSave() {
	id, saved, err := f.u.app.Admit(f.home.Value(), f.admission())
	if err != nil {
		f.form.show(err)
		return
	}
	f.m.openResident(id)
	f.m.saved(saved)
}

// dischargeForm records that a resident left the home or died. The record
// is kept; the resident leaves the default list.
type dischargeForm struct {
	u      *UI
	rs     *residentScreen
	form   *fieldForm
	status *choice
	date   *widget.Entry
	place  *choice
	save   *widget.Button
	dlg    dialog.Dialog
}

func showDischarge(u *UI, rs *residentScreen) *dischargeForm {
	f := &dischargeForm{u: u, rs: rs}
	f.status = u.choice([]string{record.StatusDischarged, record.StatusDied}, func(v string) string {
		if v == record.StatusDied {
			return "Died"
		}
		return "Left the home (discharged)"
	}, nil)
	f.date = u.entry("e.g. 22/11/2026")
	f.date.SetText(app.FormatDate(u.app.Today()))
	f.place = u.choice(record.Places, record.Label, nil)
	f.place.PlaceHolder = "only if they died: where"
	f.form = newFieldForm()
	f.form.add("status", "What happened", f.status)
	f.form.add("statusDate", "Date", f.date)
	f.form.add("placeOfDeath", "Place of death", f.place)
	f.save = u.primary("Record", f.onSave)
	body := container.NewVBox(
		wrapped("The record is kept and can still be found with \"Include discharged\". It leaves the home's list on every computer.", toneNeutral, false),
		f.form.object(), container.NewHBox(f.save, u.button("Cancel", func() { f.dlg.Hide() })))
	f.dlg = u.showDialog("Discharge or death: "+rs.fs.Name, body, fyne.NewSize(640, 380))
	return f
}

func (f *dischargeForm) onSave() {
	place := f.place.Value()
	if f.status.Value() != record.StatusDied {
		place = ""
	}
	saved, err := f.u.app.Discharge(f.rs.id, f.status.Value(), app.NormaliseDate(f.date.Text), place)
	f.rs.closeSaved(f.form, f.dlg, saved, err)
}

// correctionForm corrects a resident's personal details and consent
// (app.CorrectIdentity): what was recorded wrongly, or has changed. The
// history keeps what it said before, and who corrected it.
type correctionForm struct {
	u    *UI
	rs   *residentScreen
	form *fieldForm

	given, family, preferred *widget.Entry
	nhsNumber, dob, room, gp *widget.Entry
	sex, consentBasis        *choice
	consentDate              *widget.Entry
	withdrawn                *widget.Check
	save                     *widget.Button
	dlg                      dialog.Dialog
}

func showCorrection(u *UI, rs *residentScreen) *correctionForm {
	f := &correctionForm{u: u, rs: rs, form: newFieldForm()}
	cur, err := u.app.CorrectionOf(rs.id)
	if err != nil {
		rs.m.say(err.Error(), toneDanger)
		return nil
	}
	f.given, f.family, f.preferred = u.entry(""), u.entry(""), u.entry("what they like to be called")
	f.nhsNumber, f.dob = u.entry("10 digits, spaces allowed"), u.entry("e.g. 2/4/1931")
	f.room, f.gp = u.entry(""), u.entry("GP practice ODS code, e.g. E85001")
	f.sex = u.choice(record.Sexes, words, nil)
	f.consentBasis = u.choice(record.ConsentBases, words, nil)
	f.consentDate = u.entry("the date consent was given or decided")
	f.withdrawn = u.check("Consent to share this record has been withdrawn", nil)
	f.given.SetText(cur.GivenName)
	f.family.SetText(cur.FamilyName)
	f.preferred.SetText(cur.PreferredName)
	f.nhsNumber.SetText(cur.NHSNumber)
	f.dob.SetText(app.FormatDate(cur.DateOfBirth))
	f.sex.SetValue(cur.Sex)
	f.room.SetText(cur.Room)
	f.gp.SetText(cur.GPPractice)
	f.consentBasis.SetValue(cur.ConsentBasis)
	f.consentDate.SetText(app.FormatDate(cur.ConsentDate))
	f.withdrawn.SetChecked(cur.ConsentWithdrawn)
	fm := f.form
	fm.add("givenName", "Given name", f.given)
	fm.add("familyName", "Family name", f.family)
	fm.add("preferredName", "Preferred name", f.preferred)
	fm.add("nhsNumber", "NHS number", f.nhsNumber)
	fm.add("dateOfBirth", "Date of birth", f.dob)
	fm.add("sex", "Sex", f.sex)
	fm.add("room", "Room", f.room)
	fm.add("gpPractice", "GP practice", f.gp)
	fm.section("Consent to hold and share this record")
	fm.add("consentBasis", "Basis", f.consentBasis)
	fm.add("consentDate", "Date", f.consentDate)
	fm.add("consentWithdrawn", "", f.withdrawn)
	f.save = u.primary("Save corrections", f.onSave)
	body := container.NewVBox(
		wrapped("Correct what was recorded wrongly or has changed. Nothing is lost: the history shows what each field "+
			"said before and after, and who changed it.", toneNeutral, false),
		fm.object(), container.NewHBox(tall(f.save), u.button("Cancel", func() { f.dlg.Hide() })))
	f.dlg = u.showDialog("Correct details: "+rs.fs.Name, u.scroll(body), fyne.NewSize(720, 700))
	return f
}

func (f *correctionForm) onSave() {
	c := app.Correction{Admission: app.Admission{GivenName: f.given.Text, FamilyName: f.family.Text, PreferredName: f.preferred.Text,
		NHSNumber: f.nhsNumber.Text, DateOfBirth: f.dob.Text, Sex: f.sex.Value(), Room: f.room.Text, GPPractice: f.gp.Text},
		ConsentBasis: f.consentBasis.Value(), ConsentDate: f.consentDate.Text, ConsentWithdrawn: f.withdrawn.Checked}
	saved, err := f.u.app.CorrectIdentity(f.rs.id, c)
	f.rs.closeSaved(f.form, f.dlg, saved, err)
}

// transferForm moves a resident to another care home (app.Transfer): the
// home's manager chooses the receiving home and says why. The record, its
// notes and its history go with them; this home keeps the move in its
// audit trail and the resident in its list, marked as moved.
type transferForm struct {
	u      *UI
	rs     *residentScreen
	form   *fieldForm
	home   *choice
	reason *widget.Entry
	save   *widget.Button
	dlg    dialog.Dialog
}

func showTransfer(u *UI, rs *residentScreen) *transferForm {
	f := &transferForm{u: u, rs: rs, form: newFieldForm()}
	homes := u.app.TransferHomes()
	ids := make([]string, len(homes))
	names := map[string]string{}
	for i, h := range homes {
		ids[i], names[h.ID] = h.ID, h.Name
	}
	f.home = u.choice(ids, func(id string) string { return names[id] }, nil)
	f.home.PlaceHolder = "the care home they are moving to"
	f.reason = u.multiline("why they are moving, e.g. nearer family; needs nursing care", 3)
	f.form.add("home", "Moving to", f.home)
	f.form.add("reason", "Reason", f.reason)
	f.save = u.primary("Move the record", f.onSave)
	intro := "The record, its notes and all its history go to the receiving home, which holds it from now on. " +
		"This home's computers let their copies go; the move is kept in the audit trail."
	if len(homes) == 0 {
		intro = "No other care home is known yet: connect to the relay once, then try again."
		f.save.Disable()
	}
	body := container.NewVBox(wrapped(intro, toneNeutral, false), f.form.object(),
		container.NewHBox(f.save, u.button("Cancel", func() { f.dlg.Hide() })))
	f.dlg = u.showDialog("Move to another home: "+rs.fs.Name, body, fyne.NewSize(640, 400))
	return f
}

func (f *transferForm) onSave() {
	saved, err := f.u.app.Transfer(f.rs.id, f.home.Value(), f.reason.Text)
	f.rs.closeSaved(f.form, f.dlg, saved, err)
}
