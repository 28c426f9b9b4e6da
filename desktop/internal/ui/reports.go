package ui

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
)

// reportsScreen is a manager's view of the home as a whole: each figure
// now, and a bar for each of the last twelve months; exported as CSV.
type reportsScreen struct {
	u      *UI
	m      *mainScreen
	home   *widget.Select
	homes  []string
	body   *fyne.Container
	report app.Report
}

func newReportsScreen(u *UI, m *mainScreen) *reportsScreen { return &reportsScreen{u: u, m: m} }

func (r *reportsScreen) build() fyne.CanvasObject {
	u := r.u
	r.homes = u.app.Homes()
	r.body = container.NewVBox()
	r.home = widget.NewSelect(r.homes, func(string) { u.touch(); r.load() })
	export := u.button("Export as CSV…", r.export)
	top := container.NewVBox(heading("Reports"),
		wrapped("The home's figures now, and month by month over the last twelve months (the last bar is this month so far).",
			toneNeutral, false))
	if len(r.homes) > 1 {
		top.Add(container.NewBorder(nil, nil, text("Care home", toneNeutral, true), export, r.home))
	} else {
		top.Add(container.NewHBox(export))
	}
	if len(r.homes) > 0 {
		r.home.SetSelectedIndex(0)
	}
	return container.NewBorder(container.NewPadded(top), nil, nil, nil, u.scroll(container.NewPadded(r.body)))
}

// load counts the chosen home's figures.
func (r *reportsScreen) load() {
	i := r.home.SelectedIndex()
	if i < 0 || i >= len(r.homes) {
		return
	}
	rep, err := r.u.app.Report(r.homes[i])
	r.body.RemoveAll()
	if err != nil {
		r.body.Add(wrapped(err.Error(), toneDanger, true))
		return
	}
	r.report = rep
	now := rep.Latest()
	series := func(f func(app.MonthFigures) int) []int {
		out := make([]int, len(rep.Months))
		for i, m := range rep.Months {
			out[i] = f(m)
		}
		return out
	}
	months := make([]string, len(rep.Months))
	for i, m := range rep.Months {
		months[i] = m.Month.Format("Jan")
	}
	overdueTone, conflictTone := toneNeutral, toneNeutral
	if rep.ReviewsOverdue > 0 {
		overdueTone = toneWarning
	}
	if rep.Conflicts > 0 {
		conflictTone = toneDanger
	}
	grid := container.NewGridWithColumns(2)
	r.body.Add(grid)
	add := func(title, value string, t tone, values []int) { grid.Add(figureCard(title, value, t, values, months)) }
	add("Residents", fmt.Sprint(now.Residents), toneNeutral, series(func(m app.MonthFigures) int { return m.Residents }))
	add("With a ReSPECT plan", app.Percent(now.WithPlan, now.Residents), toneNeutral, series(func(m app.MonthFigures) int { return m.WithPlan }))
	add("With a CPR recommendation", app.Percent(now.WithCPR, now.Residents), toneNeutral, series(func(m app.MonthFigures) int { return m.WithCPR }))
	add("With a preferred place of death", app.Percent(now.WithPreferred, now.Residents), toneNeutral,
		series(func(m app.MonthFigures) int { return m.WithPreferred }))
	year := rep.Year()
	add("Deaths in the preferred place (12 months)", app.Percent(year.DeathsInPreferred, year.Deaths), toneNeutral,
		series(func(m app.MonthFigures) int { return m.DeathsInPreferred }))
	add("Deaths (12 months)", fmt.Sprint(year.Deaths), toneNeutral, series(func(m app.MonthFigures) int { return m.Deaths }))
	add("Advice calls (12 months)", fmt.Sprint(year.Calls), toneNeutral, series(func(m app.MonthFigures) int { return m.Calls }))
	add("Conveyed to hospital or 999 (12 months)", app.Percent(year.Conveyed(), year.Calls), toneNeutral,
		series(func(m app.MonthFigures) int { return m.Conveyed() }))
	r.body.Add(card(overdueTone, text("Residents with a review overdue now", toneNeutral, true), text(fmt.Sprint(rep.ReviewsOverdue), overdueTone, true)))
	r.body.Add(card(conflictTone, text("Residents with decisions in conflict now", toneNeutral, true), text(fmt.Sprint(rep.Conflicts), conflictTone, true)))
	r.body.Refresh()
}

// figureCard is one figure: its title, its value now, and a bar a month.
func figureCard(title, value string, t tone, values []int, months []string) fyne.CanvasObject {
	most := 1
	for _, v := range values {
		most = max(most, v)
	}
	const height = 60
	bars := container.NewGridWithColumns(len(values))
	labels := container.NewGridWithColumns(len(values))
	for i, v := range values {
		bar := canvas.NewRectangle(toneInfo.colour())
		bar.SetMinSize(fyne.NewSize(8, float32(height*v/most)))
		if v == 0 {
			bar.SetMinSize(fyne.NewSize(8, 1))
		}
		bars.Add(container.NewVBox(layout.NewSpacer(), container.NewCenter(bar)))
		l := canvas.NewText(months[i], toneNeutral.colour())
		l.TextSize = 10
		l.Color = theme.Color(theme.ColorNameForeground)
		labels.Add(container.NewCenter(l))
	}
	return card(t, text(title, toneNeutral, true), text(value, t, true), container.NewVBox(bars, labels))
}

// export saves the report where the manager chooses.
func (r *reportsScreen) export() {
	u := r.u
	u.touch()
	data := r.report.CSV()
	d := dialog.NewFileSave(func(w fyne.URIWriteCloser, err error) {
		if err != nil || w == nil {
			return
		}
		defer w.Close()
		if _, err := w.Write(data); err != nil {
			r.m.say("The report was not saved: "+err.Error(), toneDanger)
			return
		}
		r.m.say("Report saved as "+w.URI().Name(), toneSuccess)
	}, u.win)
	d.SetFileName("haven-report-" + r.report.Home + ".csv")
	d.Show()
}
