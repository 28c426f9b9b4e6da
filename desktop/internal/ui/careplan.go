package ui

import (
	"strconv"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/record"
)

// reviewFor words a domain's review status; overdue is red, due or soon amber.
func reviewFor(it app.CarePlanItem) (string, tone) {
	due := app.FormatDate(it.ReviewDue)
	switch it.Review {
	case app.ReviewOverdue:
		return "Review OVERDUE: was due " + due, toneDanger
	case app.ReviewDue:
		return "Review due today", toneWarning
	case app.ReviewSoon:
		return "Review due soon: " + due, toneWarning
	case app.ReviewOK:
		return "Next review " + due, toneNeutral
	}
	return "No review date set", toneWarning
}

// carePlanTab shows the care plan by domain: a list with each domain's
// review status, and the chosen domain in full with Edit and Mark reviewed.
type carePlanTab struct {
	u        *UI
	rs       *residentScreen
	items    []app.CarePlanItem
	selected int
	list     *widget.List
	detail   *fyne.Container
	message  *widget.Label

	edit   *carePlanEdit // the last edit form opened (tests)
	review *reviewForm
}

func newCarePlanTab(u *UI, rs *residentScreen) *carePlanTab { return &carePlanTab{u: u, rs: rs} }

func (t *carePlanTab) build() fyne.CanvasObject {
	t.list = widget.NewList(func() int { return len(t.items) },
		func() fyne.CanvasObject {
			name, status := text("", toneNeutral, true), text("", toneNeutral, false)
			status.Truncation = fyne.TextTruncateEllipsis
			return container.NewVBox(name, status)
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if i >= len(t.items) {
				return
			}
			box := o.(*fyne.Container)
			box.Objects[0].(*widget.Label).SetText(t.items[i].Label)
			s, tn := reviewFor(t.items[i])
			setLabel(box.Objects[1].(*widget.Label), s, tn)
		})
	t.list.OnSelected = func(i widget.ListItemID) { t.u.touch(); t.selected = i; t.showDetail() }
	t.detail = container.NewVBox()
	t.message = wrapped("", toneDanger, true)
	t.message.Hide()
	return container.NewBorder(t.message, nil, fixedWidth(300, t.list), nil, t.u.scroll(container.NewPadded(t.detail)))
}

// load reads the care plan (an audited view).
func (t *carePlanTab) load() {
	items, err := t.u.app.CarePlan(t.rs.id)
	if err != nil {
		t.message.SetText(err.Error())
		t.message.Show()
		return
	}
	t.message.Hide()
	t.items = items
	t.list.Refresh()
	if t.selected >= len(items) {
		t.selected = 0
	}
	if len(items) > 0 {
		t.list.Select(t.selected)
	}
	t.showDetail()
}

func (t *carePlanTab) showDetail() {
	if t.selected >= len(t.items) {
		t.detail.RemoveAll()
		return
	}
	it := t.items[t.selected]
	status, tn := reviewFor(it)
	reviewed := "Not reviewed yet"
	if it.LastReviewed != "" {
		reviewed = "Last reviewed " + app.FormatDate(it.LastReviewed) + " by " + it.LastReviewedBy
	}
	if it.Reviewer != "" {
		reviewed += " · responsible reviewer: " + it.Reviewer
	}
	objs := []fyne.CanvasObject{heading(it.Label), card(tn, text(status, tn, true), caption(reviewed))}
	assessment := ""
	if it.ScoreTool != "" {
		assessment = it.ScoreTool + " score " + itoa(it.Score)
		if it.ScoreDate != "" {
			assessment += " on " + app.FormatDate(it.ScoreDate)
		}
	}
	updated := ""
	if it.UpdatedBy != "" {
		updated = it.UpdatedBy + " · " + app.FormatDateTime(it.UpdatedAt)
	}
	for _, f := range []struct{ label, value string }{
		{"Identified need", it.Need}, {"Level of need", words(it.Level)}, {"Goal", it.Goal},
		{"How to support me", it.Support}, {"Please do", it.PleaseDo}, {"Please don't", it.PleaseDont},
		{"Assessment", assessment}, {"Agreed with", it.AgreedWith}, {"Last updated", updated},
	} {
		objs = append(objs, field(f.label, f.value))
	}
	if t.rs.m.perms.EditRecord {
		objs = append(objs, container.NewHBox(t.u.primary("Edit this domain…", t.onEdit), t.u.button("Mark reviewed…", t.onReview)))
	} else {
		objs = append(objs, caption("Only senior staff can change the care plan: tell the senior on shift what needs changing."))
	}
	t.detail.Objects = objs
	t.detail.Refresh()
}

// field is a labelled value; blank values say so.
func field(label, value string) fyne.CanvasObject {
	l := text(label, toneNeutral, true)
	l.Importance = widget.LowImportance
	v := wrapped(value, toneNeutral, false)
	if value == "" {
		v.SetText("Not recorded")
		v.Importance = widget.LowImportance
	}
	return container.NewVBox(l, v)
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func (t *carePlanTab) onEdit() {
	t.edit = showCarePlanEdit(t.u, t.rs, t.items[t.selected])
}

func (t *carePlanTab) onReview() {
	t.review = showReview(t.u, t.rs, t.items[t.selected])
}

// carePlanEdit edits one domain (app.SaveCarePlan keeps what it does not show).
type carePlanEdit struct {
	u      *UI
	rs     *residentScreen
	domain record.Domain
	form   *fieldForm

	need, goal, support, pleaseDo, pleaseDont *widget.Entry
	level, scoreTool                          *choice
	score, scoreDate, agreedWith              *widget.Entry
	reviewer, reviewDue                       *widget.Entry
	save                                      *widget.Button
	dlg                                       dialog.Dialog
}

func showCarePlanEdit(u *UI, rs *residentScreen, it app.CarePlanItem) *carePlanEdit {
	v := app.CarePlanFormFor(it.CarePlanEntry)
	e := &carePlanEdit{u: u, rs: rs, domain: it.Domain, form: newFieldForm()}
	set := func(w *widget.Entry, s string) *widget.Entry { w.SetText(s); return w }
	e.need = set(u.multiline("what the need is", 2), v.Need)
	e.level = u.choice(record.NeedLevels, words, nil)
	e.level.SetValue(v.Level)
	e.goal = set(u.multiline("the outcome we are working towards", 2), v.Goal)
	e.support = set(u.multiline("in my words: \"I like…\", \"Please help me…\"", 3), v.Support)
	e.pleaseDo = set(u.entry(""), v.PleaseDo)
	e.pleaseDont = set(u.entry(""), v.PleaseDont)
	e.scoreTool = u.choice(append([]string{""}, record.ScoreTools...), func(s string) string {
		if s == "" {
			return "No assessment tool"
		}
		return s
	}, nil)
	e.scoreTool.SetValue(v.ScoreTool)
	e.score = set(u.entry("score"), v.Score)
	e.scoreDate = set(u.entry("date scored, e.g. 12/11/2026"), app.FormatDate(v.ScoreDate))
	e.agreedWith = set(u.entry("the resident, or their representative"), v.AgreedWith)
	e.reviewer = set(u.entry(""), v.Reviewer)
	e.reviewDue = set(u.entry("e.g. 20/12/2026"), app.FormatDate(v.ReviewDue))
	f := e.form
	f.add("need", "Identified need", e.need)
	f.add("level", "Level of need", e.level)
	f.add("goal", "Goal", e.goal)
	f.add("support", "How to support me", e.support)
	f.add("pleaseDo", "Please do", e.pleaseDo)
	f.add("pleaseDont", "Please don't", e.pleaseDont)
	f.add("scoreTool", "Assessment", e.scoreTool)
	f.add("score", "Score", e.score)
	f.add("scoreDate", "Date scored", e.scoreDate)
	f.add("agreedWith", "Agreed with", e.agreedWith)
	f.add("reviewer", "Responsible reviewer", e.reviewer)
	f.add("reviewDue", "Review due", e.reviewDue)
	e.save = u.primary("Save", e.onSave)
	body := container.NewVBox(f.object(), container.NewHBox(tall(e.save), u.button("Cancel", func() { e.dlg.Hide() })))
	e.dlg = u.showDialog(it.Label+": "+rs.fs.Name, u.scroll(body), fyne.NewSize(820, 680))
	return e
}

func (e *carePlanEdit) onSave() {
	saved, err := e.u.app.SaveCarePlan(e.rs.id, app.CarePlanForm{Domain: e.domain, Need: e.need.Text, Level: e.level.Value(),
		Goal: e.goal.Text, Support: e.support.Text, PleaseDo: e.pleaseDo.Text, PleaseDont: e.pleaseDont.Text,
		ScoreTool: e.scoreTool.Value(), Score: e.score.Text, ScoreDate: e.scoreDate.Text, AgreedWith: e.agreedWith.Text,
		Reviewer: e.reviewer.Text, ReviewDue: e.reviewDue.Text})
	e.rs.closeSaved(e.form, e.dlg, saved, err)
}

// reviewForm marks a domain reviewed and sets the next review date.
type reviewForm struct {
	u      *UI
	rs     *residentScreen
	domain record.Domain
	form   *fieldForm
	when   *widget.RadioGroup
	dates  []app.DateChoice
	other  *widget.Entry
	save   *widget.Button
	dlg    dialog.Dialog
}

const otherDate = "Another date"

func showReview(u *UI, rs *residentScreen, it app.CarePlanItem) *reviewForm {
	r := &reviewForm{u: u, rs: rs, domain: it.Domain, form: newFieldForm(), dates: u.app.ReviewDateChoices()}
	var labels []string
	for _, d := range r.dates {
		labels = append(labels, d.Label)
	}
	r.when = widget.NewRadioGroup(append(labels, otherDate), func(string) { u.touch() })
	r.when.SetSelected(labels[2]) // monthly: the care-home norm
	r.other = u.entry("e.g. 20/12/2026")
	r.form.add("reviewDue", "Next review", container.NewVBox(r.when, r.other))
	r.save = u.primary("Mark reviewed", r.onSave)
	body := container.NewVBox(wrapped("You have reviewed "+it.Label+" with the resident or their representative. "+
		"Your name and today's date are recorded.", toneNeutral, false), r.form.object(),
		container.NewHBox(r.save, u.button("Cancel", func() { r.dlg.Hide() })))
	r.dlg = u.showDialog("Mark reviewed: "+it.Label, body, fyne.NewSize(620, 420))
	return r
}

// next is the chosen next-review date.
func (r *reviewForm) next() string {
	for _, d := range r.dates {
		if d.Label == r.when.Selected {
			return d.Date
		}
	}
	return app.NormaliseDate(r.other.Text)
}

func (r *reviewForm) onSave() {
	saved, err := r.u.app.MarkReviewed(r.rs.id, r.domain, r.next())
	r.rs.closeSaved(r.form, r.dlg, saved, err)
}
