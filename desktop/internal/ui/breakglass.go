package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/docid"
)

// breakGlassForm asks why a record outside this computer's care
// relationship is being opened (the advice line opens every record this
// way). The reason is audited and reviewed by the information-governance
// lead (app.BreakGlass); then the front sheet opens. On the advice line
// the form follows the region search, or the list of records opened for
// calls.
type breakGlassForm struct {
	u      *UI
	m      *mainScreen
	id     docid.ID
	name   string
	form   *fieldForm
	reason *widget.Entry
	open   *widget.Button
}

func newBreakGlassForm(u *UI, m *mainScreen, id docid.ID) *breakGlassForm {
	return &breakGlassForm{u: u, m: m, id: id}
}

func (f *breakGlassForm) build(name string) fyne.CanvasObject {
	u := f.u
	f.name = name
	f.reason = u.multiline("e.g. Call from Larch House: found on the floor, asking about hospital", 3)
	f.reason.OnSubmitted = func(string) { f.onOpen() }
	f.form = newFieldForm()
	f.form.add("reason", "Why you are opening it", f.reason)
	f.open = u.primary("Open the record", f.onOpen)
	body := container.NewVBox(
		heading("Say why you are opening this record"),
		text(name, toneNeutral, true),
		card(toneWarning, wrapped(app.ErrNeedsReason.Error()+".", toneWarning, true)),
		f.form.object(),
		container.NewHBox(tall(f.open), u.button("Cancel", f.m.showWelcome)),
	)
	return u.scroll(container.NewPadded(body))
}

// onOpen asks the relay to open the record, off the UI thread: the relay
// records the reason first and then sends the record, which takes seconds.
func (f *breakGlassForm) onOpen() {
	id, reason := f.id, f.reason.Text
	f.u.busy(f.open, "Opening…", func() func() {
		err := f.u.app.BreakGlass(id, reason)
		return func() { f.opened(err) }
	})
}

func (f *breakGlassForm) opened(err error) {
	if f.m.glass != f || f.u.main != f.m {
		return // cancelled or locked meanwhile: the opening stands, audited
	}
	f.form.show(err)
	if err == nil {
		f.m.open(f.id, f.name)
	}
}
