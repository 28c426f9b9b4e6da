package ui

import (
	"fmt"
	"strconv"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/record"
)

// noteLine is one line of a note as the timeline shows it.
type noteLine struct {
	Text string
	Tone tone
	Bold bool
	Dim  bool // the text of a note entered in error: kept, visibly retired
}

// noteLines words a timeline entry: who and when, then the note; an
// entered-in-error note keeps its text under a red label, never hidden.
func noteLines(n app.NoteView) (header string, lines []noteLine) {
	header = n.When + " · " + n.Who
	if n.Call != nil {
		header = "Advice call · " + header
	}
	if n.InError {
		s := "ENTERED IN ERROR"
		if n.ErrorReason != "" {
			s += ": " + n.ErrorReason
		}
		if n.ErrorBy != "" {
			s += " (" + n.ErrorBy + ", " + app.FormatDateTime(n.ErrorAt) + ")"
		}
		lines = append(lines, noteLine{Text: s, Tone: toneDanger, Bold: true})
	}
	add := func(s string, t tone, bold bool) {
		if s != "" {
			lines = append(lines, noteLine{Text: s, Tone: t, Bold: bold, Dim: n.InError})
		}
	}
	add(n.Text, toneNeutral, false)
	if c := n.Call; c != nil {
		caller := words(c.Method) + " call from " + c.Caller
		if c.CallerRelation != "" {
			caller += " (" + c.CallerRelation + ")"
		}
		add(caller, toneNeutral, true)
		add("Concern: "+c.Concern, toneNeutral, false)
		if len(c.SoftSigns) > 0 {
			var s []string
			for _, x := range c.SoftSigns {
				s = append(s, strings.ToLower(words(x)))
			}
			add("Soft signs: "+strings.Join(s, ", "), toneWarning, false)
		}
		if o := c.Observations; o != nil {
			add("Observations: "+obsWords(o), toneNeutral, false)
			if v := app.CallScore(c); v.Complete {
				add(fmt.Sprintf("NEWS2 %d (%s)", v.Total, words(string(v.Band))), bandTone(string(v.Band)), true)
			} else {
				add(v.Missing, toneWarning, true)
			}
		}
		add("Advice: "+c.Advice, toneNeutral, false)
		add("Outcome: "+outcomeWords(c.Outcome), toneNeutral, true)
		if c.Actions != "" {
			add("Actions: "+c.Actions, toneNeutral, false)
		}
		if c.FollowUp != "" {
			add("Follow-up: "+c.FollowUp, toneNeutral, false)
		}
	}
	return header, lines
}

func obsWords(o *record.Observations) string {
	var p []string
	if o.RespRate > 0 {
		p = append(p, fmt.Sprintf("resp rate %d", o.RespRate))
	}
	if o.SpO2 > 0 {
		s := fmt.Sprintf("SpO2 %d%%", o.SpO2)
		if o.SpO2Scale2 {
			s += " (scale 2)"
		}
		if o.OnOxygen {
			s += " on oxygen"
		} else {
			s += " on air"
		}
		p = append(p, s)
	}
	if o.Systolic > 0 {
		p = append(p, fmt.Sprintf("systolic %d", o.Systolic))
	}
	if o.Pulse > 0 {
		p = append(p, fmt.Sprintf("pulse %d", o.Pulse))
	}
	if o.Consciousness != "" {
		p = append(p, strings.ToLower(acvpuWords(o.Consciousness)))
	}
	if o.Temperature > 0 {
		p = append(p, strconv.FormatFloat(o.Temperature, 'f', 1, 64)+" °C")
	}
	return strings.Join(p, ", ")
}

func bandTone(b string) tone {
	switch b {
	case "low":
		return toneSuccess
	case "low-medium", "medium":
		return toneWarning
	case "high":
		return toneDanger
	}
	return toneNeutral
}

func outcomeWords(v string) string {
	return fromMap(map[string]string{"self-care": "Self-care", "gp": "GP", "999": "999 ambulance",
		"conveyed": "Conveyed to hospital", "died": "Died"})(v)
}

func acvpuWords(v string) string {
	return fromMap(map[string]string{"alert": "Alert", "new-confusion": "New confusion", "voice": "Responds to voice",
		"pain": "Responds to pain", "unresponsive": "Unresponsive"})(v)
}

// notesTab is the timeline, newest first, with a box to add a note and
// the advice-call form for clinicians.
type notesTab struct {
	u       *UI
	rs      *residentScreen
	notes   []app.NoteView
	limit   int
	newNote *widget.Entry
	save    *widget.Button
	form    *fieldForm
	box     *fyne.Container

	call    *adviceCallForm // last opened (tests)
	inError *inErrorForm
}

const notesPage = 100

func newNotesTab(u *UI, rs *residentScreen) *notesTab {
	return &notesTab{u: u, rs: rs, limit: notesPage}
}

func (t *notesTab) build() fyne.CanvasObject {
	u := t.u
	t.box = container.NewVBox()
	t.form = newFieldForm()
	t.newNote = u.multiline("Write a note: what happened, what you did, how they are now", 3)
	t.form.add("text", "New note", t.newNote)
	t.save = u.primary("Save note", t.onSave)
	buttons := container.NewHBox(t.save)
	perms := t.rs.m.perms
	if perms.AdviceCall {
		buttons.Add(u.button("Record an advice call…", func() { t.call = showAdviceCall(u, t.rs) }))
	}
	var top fyne.CanvasObject = container.NewVBox(t.form.object(), buttons)
	if !perms.AddNote {
		top = caption("Your role can read notes but not add them.")
	}
	return container.NewBorder(container.NewPadded(top), nil, nil, nil, t.u.scroll(container.NewPadded(t.box)))
}

func (t *notesTab) load() {
	notes, err := t.u.app.Notes(t.rs.id)
	t.box.RemoveAll()
	if err != nil {
		t.box.Add(wrapped(err.Error(), toneDanger, true))
		return
	}
	t.notes = notes
	if len(notes) == 0 {
		t.box.Add(text("No notes yet", toneNeutral, false))
	}
	for i, n := range notes {
		if i == t.limit {
			more := t.u.button(fmt.Sprintf("Show %d older notes", min(notesPage, len(notes)-i)), func() { t.limit += notesPage; t.load() })
			t.box.Add(more)
			break
		}
		t.box.Add(t.noteCard(n))
	}
}

func (t *notesTab) noteCard(n app.NoteView) fyne.CanvasObject {
	header, lines := noteLines(n)
	h := text(header, toneNeutral, true)
	h.Importance = widget.LowImportance
	objs := []fyne.CanvasObject{h}
	for _, l := range lines {
		w := wrapped(l.Text, l.Tone, l.Bold)
		if l.Dim {
			w.TextStyle.Italic = true
			w.Importance = widget.LowImportance
		}
		objs = append(objs, w)
	}
	if t.u.app.CanMarkInError(n) {
		objs = append(objs, container.NewHBox(t.u.button("Entered in error…", func() { t.inError = showInError(t.u, t.rs, n) })))
	}
	c := toneNeutral
	if n.InError {
		c = toneDanger
	}
	return card(c, objs...)
}

func (t *notesTab) onSave() {
	saved, err := t.u.app.AddNote(t.rs.id, t.newNote.Text)
	if err != nil {
		t.form.show(err)
		return
	}
	t.form.clear()
	t.newNote.SetText("")
	t.rs.m.saved(saved)
}

// inErrorForm retires a note with a reason; it stays on the timeline.
type inErrorForm struct {
	u      *UI
	rs     *residentScreen
	note   app.NoteView
	form   *fieldForm
	reason *widget.Entry
	save   *widget.Button
	dlg    dialog.Dialog
}

func showInError(u *UI, rs *residentScreen, n app.NoteView) *inErrorForm {
	f := &inErrorForm{u: u, rs: rs, note: n, form: newFieldForm()}
	f.reason = u.entry("e.g. written in the wrong resident's record")
	f.form.add("reason", "Why", f.reason)
	f.save = u.primary("Mark entered in error", f.onSave)
	body := container.NewVBox(wrapped("The note stays on the timeline, marked as entered in error with your reason: nothing is deleted.", toneNeutral, false),
		f.form.object(), container.NewHBox(f.save, u.button("Cancel", func() { f.dlg.Hide() })))
	f.dlg = u.showDialog("Entered in error", body, fyne.NewSize(620, 260))
	return f
}

func (f *inErrorForm) onSave() {
	saved, err := f.u.app.MarkEnteredInError(f.rs.id, f.note.ID, f.reason.Text)
	f.rs.closeSaved(f.form, f.dlg, saved, err)
}
