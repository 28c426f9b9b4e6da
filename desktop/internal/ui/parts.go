package ui

// Small pieces the screens share: tones, cards, badges, headings, forms
// that show a Problem beside its fields, and the widget constructors that
// count typing as activity (so a long note never locks mid-sentence).

import (
	"errors"
	"fmt"
	"image/color"
	"sort"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/record"
)

// tone is the meaning a colour carries; every toned element also says it
// in words.
type tone int

const (
	toneNeutral tone = iota
	toneDanger       // conflict, overdue, allergy, offline too long
	toneWarning      // due, not recorded, stale
	toneSuccess      // online, saved
	toneInfo         // downloading
)

func (t tone) colour() color.Color {
	v := fyne.CurrentApp().Settings().ThemeVariant()
	th := fyne.CurrentApp().Settings().Theme()
	switch t {
	case toneDanger:
		return th.Color(theme.ColorNameError, v)
	case toneWarning:
		return th.Color(theme.ColorNameWarning, v)
	case toneSuccess:
		return th.Color(theme.ColorNameSuccess, v)
	case toneInfo:
		return th.Color(theme.ColorNamePrimary, v)
	}
	return th.Color(theme.ColorNameSeparator, v)
}

// importance is the label colour for text in this tone.
func (t tone) importance() widget.Importance {
	switch t {
	case toneDanger:
		return widget.DangerImportance
	case toneWarning:
		return widget.WarningImportance
	case toneSuccess:
		return widget.SuccessImportance
	case toneInfo:
		return widget.HighImportance
	}
	return widget.MediumImportance
}

// wash is the tone as a pale background.
func (t tone) wash() color.Color {
	if t == toneNeutral {
		v := fyne.CurrentApp().Settings().ThemeVariant()
		return fyne.CurrentApp().Settings().Theme().Color(theme.ColorNameInputBackground, v)
	}
	r, g, b, _ := t.colour().RGBA()
	return color.NRGBA{R: uint8(r >> 8), G: uint8(g >> 8), B: uint8(b >> 8), A: 0x22}
}

// card is a toned panel: a pale wash, a coloured edge, and content.
func card(t tone, objs ...fyne.CanvasObject) *fyne.Container {
	bg := canvas.NewRectangle(t.wash())
	bg.CornerRadius = 6
	if t != toneNeutral {
		bg.StrokeColor = t.colour()
		bg.StrokeWidth = 2
	}
	return container.NewStack(bg, container.NewPadded(container.NewVBox(objs...)))
}

// recolour changes a card's tone in place.
func recolour(c *fyne.Container, t tone) {
	bg := c.Objects[0].(*canvas.Rectangle)
	bg.FillColor = t.wash()
	bg.StrokeColor, bg.StrokeWidth = nil, 0
	if t != toneNeutral {
		bg.StrokeColor, bg.StrokeWidth = t.colour(), 2
	}
	bg.Refresh()
}

// text makes a label; wrap for anything longer than a few words.
func text(s string, t tone, bold bool) *widget.Label {
	l := widget.NewLabel(s)
	l.Importance = t.importance()
	l.TextStyle.Bold = bold
	return l
}

func wrapped(s string, t tone, bold bool) *widget.Label {
	l := text(s, t, bold)
	l.Wrapping = fyne.TextWrapWord
	return l
}

func heading(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.SizeName = theme.SizeNameHeadingText
	l.TextStyle.Bold = true
	l.Truncation = fyne.TextTruncateEllipsis
	return l
}

func subheading(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.SizeName = theme.SizeNameSubHeadingText
	l.TextStyle.Bold = true
	l.Wrapping = fyne.TextWrapWord
	return l
}

func caption(s string) *widget.Label {
	l := widget.NewLabel(s)
	l.SizeName = theme.SizeNameCaptionText
	l.Importance = widget.LowImportance
	l.Wrapping = fyne.TextWrapWord
	return l
}

func setLabel(l *widget.Label, s string, t tone) {
	l.Text, l.Importance = s, t.importance()
	l.Refresh()
}

// badge is a short toned word on a row ("CONFLICT", "2 reviews overdue").
type badge struct {
	bg    *canvas.Rectangle
	label *canvas.Text
	box   *fyne.Container
}

func newBadge() *badge {
	b := &badge{bg: canvas.NewRectangle(color.Transparent), label: canvas.NewText("", color.White)}
	b.bg.CornerRadius = 4
	b.label.TextStyle.Bold = true
	b.label.TextSize = 13
	b.box = container.NewStack(b.bg, container.New(layout.NewCustomPaddedLayout(2, 2, 6, 6), b.label))
	b.box.Hide()
	return b
}

func (b *badge) set(v badgeView) {
	if v.Text == "" {
		b.box.Hide()
		return
	}
	b.bg.FillColor = v.Tone.colour()
	b.label.Text = v.Text
	b.label.Color = color.White
	b.box.Show()
	b.bg.Refresh()
	b.label.Refresh()
}

// badgeView is what a badge says.
type badgeView struct {
	Text string
	Tone tone
}

// words is a stored enumeration value as staff read it.
func words(v string) string {
	if v == "" {
		return ""
	}
	if l := record.Label(v); l != v {
		return l
	}
	s := strings.ReplaceAll(v, "-", " ")
	return strings.ToUpper(s[:1]) + s[1:]
}

// contactRoleWords names a contact's role as staff say it.
func contactRoleWords(v string) string {
	return fromMap(map[string]string{"next-of-kin": "next of kin", "carer": "carer", "emergency-contact": "emergency contact",
		"attorney": "attorney", "deputy": "deputy", "gp": "GP", "care-coordinator": "care coordinator",
		"palliative-team": "palliative care team", "district-nurse": "district nurse"})(v)
}

// choice is a Select that shows words and returns stored values.
type choice struct {
	*widget.Select
	values []string
}

func (u *UI) choice(values []string, label func(string) string, changed func(string)) *choice {
	c := &choice{values: values}
	opts := make([]string, len(values))
	for i, v := range values {
		opts[i] = label(v)
	}
	c.Select = widget.NewSelect(opts, func(string) {
		u.touch()
		if changed != nil {
			changed(c.Value())
		}
	})
	c.PlaceHolder = "Choose…"
	return c
}

// Value is the stored value chosen, or "".
func (c *choice) Value() string {
	i := c.SelectedIndex()
	if i < 0 || i >= len(c.values) {
		return ""
	}
	return c.values[i]
}

// SetValue chooses a stored value ("" clears).
func (c *choice) SetValue(v string) {
	for i, x := range c.values {
		if x == v {
			c.SetSelectedIndex(i)
			return
		}
	}
	c.ClearSelected()
}

// entry is a one-line entry whose typing counts as activity.
func (u *UI) entry(placeholder string) *widget.Entry {
	e := widget.NewEntry()
	e.PlaceHolder = placeholder
	e.OnChanged = func(string) { u.touch() }
	return e
}

// multiline is a wrapping entry for prose.
func (u *UI) multiline(placeholder string, rows int) *widget.Entry {
	e := widget.NewMultiLineEntry()
	e.PlaceHolder = placeholder
	e.Wrapping = fyne.TextWrapWord
	e.SetMinRowsVisible(rows)
	e.OnChanged = func(string) { u.touch() }
	return e
}

func (u *UI) check(label string, changed func(bool)) *widget.Check {
	return widget.NewCheck(label, func(b bool) {
		u.touch()
		if changed != nil {
			changed(b)
		}
	})
}

// scroll is a vertical scroll whose scrolling counts as activity: reading
// a long record is using the computer.
func (u *UI) scroll(o fyne.CanvasObject) *container.Scroll {
	s := container.NewVScroll(o)
	s.OnScrolled = func(fyne.Position) { u.touch() }
	return s
}

// button runs fn as the person's action (and counts it as activity).
func (u *UI) button(label string, fn func()) *widget.Button {
	return widget.NewButton(label, func() {
		u.touch()
		fn()
	})
}

func (u *UI) primary(label string, fn func()) *widget.Button {
	b := u.button(label, fn)
	b.Importance = widget.HighImportance
	return b
}

// fieldForm lays out labelled fields and shows a Problem beside them: the
// message on top, each field's problem under the field in red.
type fieldForm struct {
	message *widget.Label
	grid    *fyne.Container
	box     *fyne.Container
	errs    map[string]*widget.Label
	labels  map[string]string
}

func newFieldForm() *fieldForm {
	m := wrapped("", toneDanger, true)
	m.Hide()
	return &fieldForm{message: m, grid: container.New(layout.NewFormLayout()), errs: map[string]*widget.Label{}, labels: map[string]string{}}
}

// add appends a field; key is the name a Problem uses for it.
func (f *fieldForm) add(key, label string, w fyne.CanvasObject) {
	l := widget.NewLabel(label)
	l.TextStyle.Bold = true
	e := wrapped("", toneDanger, false)
	e.Hide()
	if key != "" {
		f.errs[key] = e
		f.labels[key] = label
	}
	f.grid.Add(l)
	f.grid.Add(container.NewVBox(w, e))
}

// section adds a heading across the form.
func (f *fieldForm) section(title string) {
	f.grid.Add(text(title, toneNeutral, true))
	f.grid.Add(layout.NewSpacer())
}

func (f *fieldForm) object() fyne.CanvasObject {
	f.box = container.NewVBox(f.message, f.grid)
	return f.box
}

// show displays err: a Problem's message and fields, or any error's text.
func (f *fieldForm) show(err error) {
	f.clear()
	if err == nil {
		return
	}
	var p *app.Problem
	if !errors.As(err, &p) {
		f.say(err.Error())
		return
	}
	msg := p.Message
	var other []string
	for k, v := range p.Fields {
		if l, ok := f.errs[k]; ok {
			l.SetText(f.labels[k] + ": " + v)
			l.Show()
			continue
		}
		other = append(other, fieldName(k)+": "+v)
	}
	sort.Strings(other)
	if len(other) > 0 {
		msg += "\n" + strings.Join(other, "\n")
	}
	f.say(msg)
}

// say shows a message above the fields, in red.
func (f *fieldForm) say(msg string) {
	setLabel(f.message, msg, toneDanger)
	f.message.Show()
	f.relayout()
}

// relayout makes room for problems shown or taken away.
func (f *fieldForm) relayout() {
	f.grid.Refresh()
	if f.box != nil {
		f.box.Refresh()
	}
}

func (f *fieldForm) clear() {
	f.message.SetText("")
	f.message.Hide()
	for _, l := range f.errs {
		l.SetText("")
		l.Hide()
	}
	f.relayout()
}

// fieldName turns a stored field path into words for a message.
func fieldName(k string) string {
	k = strings.TrimPrefix(strings.TrimPrefix(k, "call."), "obs.")
	var b strings.Builder
	for i, r := range k {
		switch {
		case r == '.' || r == '_':
			b.WriteRune(' ')
		case r >= 'A' && r <= 'Z' && i > 0:
			b.WriteRune(' ')
			b.WriteRune(r + 'a' - 'A')
		default:
			b.WriteRune(r)
		}
	}
	s := b.String()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// fixedWidth keeps an object at least w wide.
func fixedWidth(w float32, o fyne.CanvasObject) fyne.CanvasObject {
	return container.New(&atLeast{min: fyne.NewSize(w, 0)}, o)
}

// tall makes a button easy to hit.
func tall(b *widget.Button) fyne.CanvasObject {
	return container.New(&atLeast{min: fyne.NewSize(0, 48)}, b)
}

// atLeast stacks its objects over its whole area and is never smaller than
// min (nor than any of its objects).
type atLeast struct{ min fyne.Size }

func (m *atLeast) Layout(objs []fyne.CanvasObject, size fyne.Size) {
	for _, o := range objs {
		o.Resize(size)
		o.Move(fyne.NewPos(0, 0))
	}
}

func (m *atLeast) MinSize(objs []fyne.CanvasObject) fyne.Size {
	s := m.min
	for _, o := range objs {
		s = s.Max(o.MinSize())
	}
	return s
}

// sentence shows an error's words as a sentence: capital first, full stop.
func sentence(s string) string {
	if s == "" {
		return s
	}
	s = strings.ToUpper(s[:1]) + s[1:]
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// plural counts things in words: "1 resident", "3 residents".
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
