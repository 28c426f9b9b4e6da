package ui

import (
	"context"
	"errors"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/record"
)

// enrolScreen is the first run: the relay's address and a one-time code
// from the administrator, and the first staff account on this computer.
type enrolScreen struct {
	u             *UI
	form          *fieldForm
	relay, code   *widget.Entry
	name, regNo   *widget.Entry
	role          *choice
	pin, pinAgain *widget.Entry
	regRow        *fyne.Container
	setUp         *widget.Button
	working       *widget.ProgressBarInfinite
	status        *widget.Label
}

func newEnrolScreen(u *UI) *enrolScreen { return &enrolScreen{u: u} }

func (s *enrolScreen) build() fyne.CanvasObject {
	u := s.u
	s.relay = u.entry("https://relay.example.nhs.uk")
	s.code = u.entry("one-time code, e.g. 7KQ4-M2XD")
	s.relay.SetText(u.opts.Relay)
	s.code.SetText(u.opts.Code)
	s.name = u.entry("your full name as colleagues know it")
	s.regNo = u.entry("GMC, NMC or HCPC number")
	s.role = u.choice(roleValues(), func(v string) string { return record.Role(v).Label() }, s.onRole)
	s.pin = widget.NewPasswordEntry()
	s.pin.PlaceHolder = "at least 6 digits"
	s.pinAgain = widget.NewPasswordEntry()
	s.pinAgain.PlaceHolder = "the same PIN again"
	s.pinAgain.OnSubmitted = func(string) { s.onSetUp() }

	s.form = newFieldForm()
	s.form.section("This computer")
	s.form.add("relayURL", "Relay address", s.relay)
	s.form.add("code", "One-time code", s.code)
	s.form.section("Your staff account")
	s.form.add("name", "Your name", s.name)
	s.form.add("role", "Your role", s.role)
	s.form.add("regNo", "Registration number", s.regNo)
	s.form.add("pin", "Choose a PIN", s.pin)
	s.form.add("pinAgain", "PIN again", s.pinAgain)
	s.onRole("")

	s.setUp = u.primary("Set up this computer", s.onSetUp)
	s.working = widget.NewProgressBarInfinite()
	s.working.Hide()
	s.status = wrapped("", toneNeutral, false)
	intro := wrapped("This computer is not set up yet. Your administrator gives you the relay address and a one-time code. "+
		"Then make your own staff account: you will unlock Haven with your PIN.", toneNeutral, false)
	body := container.NewVBox(heading("Set up Haven on this computer"), intro, s.form.object(), tall(s.setUp), s.working, s.status)
	return u.scroll(container.NewCenter(fixedWidth(640, card(toneNeutral, body))))
}

// roleValues are the roles as stored, for the role choice.
var errNoEnrolment = errors.New("this program was started without a data folder to set up; start it again normally")

func roleValues() []string {
	out := make([]string, len(record.Roles))
	for i, r := range record.Roles {
		out[i] = string(r)
	}
	return out
}

// onRole asks for a registration number only from clinicians.
func (s *enrolScreen) onRole(v string) {
	if record.Role(v).Clinician() {
		s.regNo.Enable()
		s.regNo.PlaceHolder = "GMC, NMC or HCPC number (required)"
	} else {
		s.regNo.SetText("")
		s.regNo.Disable()
		s.regNo.PlaceHolder = "only for registered clinicians"
	}
	s.regNo.Refresh()
}

func (s *enrolScreen) request() app.EnrollRequest {
	return app.EnrollRequest{RelayURL: s.relay.Text, Code: s.code.Text, Name: s.name.Text, RegNo: s.regNo.Text,
		PIN: s.pin.Text, Role: record.Role(s.role.Value())}
}

func (s *enrolScreen) onSetUp() {
	req := s.request()
	if err := app.CheckEnrolment(req, s.pinAgain.Text); err != nil {
		s.form.show(err)
		return
	}
	s.form.clear()
	s.setUp.Disable()
	s.working.Show()
	setLabel(s.status, "Contacting the relay…", toneNeutral)
	s.u.background(func() func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if s.u.opts.Enroll == nil {
			return func() { s.enrolled(nil, errNoEnrolment) }
		}
		a, err := s.u.opts.Enroll(ctx, req)
		return func() { s.enrolled(a, err) }
	})
}

func (s *enrolScreen) enrolled(a *app.App, err error) {
	s.working.Hide()
	s.setUp.Enable()
	if err != nil {
		s.u.log.Warn("enrolment failed", "err", err)
		setLabel(s.status, "", toneNeutral)
		s.form.show(err)
		return
	}
	s.u.attach(a)
}
