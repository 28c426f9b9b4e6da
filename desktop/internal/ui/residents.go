package ui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
)

// rowView is one resident as the list shows them.
type rowView struct {
	Name    string
	Detail  string // room, date of birth, NHS number
	CPR     string
	CPRTone tone
	Badges  []badgeView
}

// rowFor words a list row: the CPR status always, and badges for what
// needs attention (a conflict in red, overdue reviews).
func rowFor(r app.Row) rowView {
	v := rowView{Name: r.Name()}
	var parts []string
	if r.Room != "" {
		parts = append(parts, "Room "+r.Room)
	}
	if r.DateOfBirth != "" {
		parts = append(parts, "DOB "+app.FormatDate(r.DateOfBirth))
	}
	if r.NHSNumber != "" {
		parts = append(parts, "NHS "+nhs.Number(r.NHSNumber).String())
	}
	v.Detail = strings.Join(parts, " · ")
	switch {
	case r.MovedTo != "":
		v.CPR, v.CPRTone = "Moved to "+r.MovedTo+": the record is held there now", toneInfo
	case r.NotShared:
		v.CPR, v.CPRTone = "Record not shared: kept by the care home only. Ask the home", toneWarning
	case !r.Held:
		v.CPR, v.CPRTone = "Record downloading: CPR status not known yet", toneInfo
	case r.CPRConflict():
		v.CPR, v.CPRTone = "CPR: CONFLICT between two decisions", toneDanger
	case r.CPR == "unverified":
		v.CPR, v.CPRTone = "CPR: UNVERIFIED (record altered on this computer)", toneDanger
	case r.CPR == "":
		v.CPR, v.CPRTone = "CPR: not recorded", toneWarning
	default:
		v.CPR = record.Label(r.CPR)
	}
	if r.Tampered > 0 {
		v.Badges = append(v.Badges, badgeView{"TAMPER ALERT", toneDanger})
	}
	switch n := len(r.Conflicts); {
	case n == 1:
		v.Badges = append(v.Badges, badgeView{"CONFLICT", toneDanger})
	case n > 1:
		v.Badges = append(v.Badges, badgeView{fmt.Sprintf("%d CONFLICTS", n), toneDanger})
	}
	if r.Unseen {
		v.Badges = append(v.Badges, badgeView{"Changed since you looked", toneInfo})
	}
	switch {
	case r.Overdue == 1:
		v.Badges = append(v.Badges, badgeView{"1 review overdue", toneWarning})
	case r.Overdue > 1:
		v.Badges = append(v.Badges, badgeView{fmt.Sprintf("%d reviews overdue", r.Overdue), toneWarning})
	case r.DueThisWeek > 0:
		v.Badges = append(v.Badges, badgeView{"Review due this week", toneInfo})
	}
	if r.Status == record.StatusDischarged || r.Status == record.StatusDied {
		v.Badges = append(v.Badges, badgeView{words(r.Status), toneInfo})
	}
	return v
}

// cprFilterValues are the CPR filter's choices: any, each value, not
// recorded, conflict.
var cprFilterValues = append(append([]string{""}, record.CPRValues...), app.CPRNotRecorded, app.CPRConflict)

func cprFilterLabel(v string) string {
	switch v {
	case "":
		return "Any CPR status"
	case app.CPRNotRecorded:
		return "CPR not recorded"
	case app.CPRConflict:
		return "CPR in conflict"
	}
	return record.Label(v)
}

// residentList is the searchable, filterable list of residents. It is a
// widget.List, so only the rows on screen exist: thousands scroll smoothly.
type residentList struct {
	u      *UI
	onOpen func(docid.ID)

	search     *widget.Entry
	overdue    *widget.Check
	dueSoon    *widget.Check
	conflicts  *widget.Check
	discharged *widget.Check
	cpr        *choice
	count      *widget.Label
	week       *widget.Button // the reviews due this week, and how many
	list       *widget.List

	filter app.Filter
	rows   []app.Row
	open   docid.ID // the resident on the right, kept selected
}

func newResidentList(u *UI, onOpen func(docid.ID)) *residentList {
	return &residentList{u: u, onOpen: onOpen}
}

func (l *residentList) build() fyne.CanvasObject {
	u := l.u
	l.search = widget.NewEntry()
	l.search.PlaceHolder = "Search: name, NHS no., birth date, room"
	l.search.OnChanged = l.onSearch
	l.search.OnSubmitted = func(string) { l.onOpenFirst() }
	l.overdue = u.check("Review overdue", func(b bool) { l.filter.Overdue = b; l.reload() })
	l.dueSoon = u.check("Review due this week", func(b bool) { l.filter.DueSoon = b; l.reload() })
	if u.app.AdviceLine() {
		l.overdue.Hide() // reviews are the homes' work
		l.dueSoon.Hide()
	}
	l.conflicts = u.check("Conflicts", func(b bool) { l.filter.Conflicts = b; l.reload() })
	l.discharged = u.check("Include discharged", func(b bool) { l.filter.Discharged = b; l.reload() })
	l.cpr = u.choice(cprFilterValues, cprFilterLabel, func(v string) { l.filter.CPR = v; l.reload() })
	l.cpr.SetSelectedIndex(0)
	l.count = text("", toneNeutral, false)
	l.count.Importance = widget.LowImportance
	l.week = u.button("Reviews this week", func() { showReviewsDue(u, l.onOpen) })
	l.week.Importance = widget.LowImportance

	l.list = widget.NewList(
		func() int { return len(l.rows) },
		func() fyne.CanvasObject { return newRowItem() },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if i < len(l.rows) {
				o.(*rowItem).set(rowFor(l.rows[i]))
			}
		})
	l.list.OnSelected = l.onSelected

	filters := container.NewVBox(
		l.search,
		container.NewGridWithColumns(2, l.overdue, l.dueSoon),
		container.NewGridWithColumns(2, l.conflicts, l.discharged),
		l.cpr.Select,
		container.NewBorder(nil, nil, nil, l.week, l.count),
	)
	return container.NewBorder(container.NewPadded(filters), nil, nil, nil, l.list)
}

// reload asks the application layer for the rows matching the filter.
func (l *residentList) reload() {
	if l.list == nil {
		return // still being built
	}
	l.rows = l.u.app.Residents(l.filter)
	total := len(l.u.app.Residents(app.Filter{Discharged: l.filter.Discharged}))
	l.count.SetText(countFor(len(l.rows), total, l.u.app.AdviceLine()))
	if n := len(l.u.app.Residents(app.Filter{DueSoon: true})); n > 0 && !l.u.app.AdviceLine() {
		l.week.SetText(fmt.Sprintf("Reviews this week: %s", plural(n, "resident", "residents")))
		l.week.Show()
	} else {
		l.week.Hide()
	}
	l.list.Refresh()
	l.markOpen(l.open)
}

// countFor says how many of the list's residents match. The advice line
// holds only the records it opened for calls, and says so.
func countFor(shown, total int, adviceLine bool) string {
	switch {
	case total == 0 && adviceLine:
		return "No records opened for calls on this computer"
	case total == 0:
		return "No residents on this computer yet"
	case adviceLine && shown == total:
		return plural(total, "record", "records") + " opened for calls"
	case adviceLine:
		return fmt.Sprintf("%d of %d records opened for calls match", shown, total)
	case shown == total:
		return fmt.Sprintf("%d residents", total)
	}
	return fmt.Sprintf("%d of %d residents match", shown, total)
}

func (l *residentList) onSearch(q string) {
	l.u.touch()
	l.filter.Query = q
	l.reload()
	if len(l.rows) > 0 {
		l.list.ScrollToTop()
	}
}

func (l *residentList) onOpenFirst() {
	l.u.touch()
	if len(l.rows) > 0 {
		l.onOpen(l.rows[0].ID)
	}
}

func (l *residentList) onSelected(i widget.ListItemID) {
	l.u.touch()
	if i < 0 || i >= len(l.rows) || l.rows[i].ID == l.open {
		return
	}
	l.onOpen(l.rows[i].ID)
}

// markOpen highlights the open resident's row, if it is listed.
func (l *residentList) markOpen(id docid.ID) {
	l.open = id
	for i, r := range l.rows {
		if r.ID == id && id != (docid.ID{}) {
			l.list.Select(i)
			return
		}
	}
	l.list.UnselectAll()
}

// nameOf is a listed resident's name, for screens that have no record yet.
func (l *residentList) nameOf(id docid.ID) string {
	for _, r := range l.rows {
		if r.ID == id {
			v := rowFor(r)
			return v.Name + " · " + v.Detail
		}
	}
	return ""
}

func (l *residentList) selectNone() { l.markOpen(docid.ID{}) }

// rowItem is one row of the list: name and badges, details, CPR status.
type rowItem struct {
	widget.BaseWidget
	name, detail, cpr *widget.Label
	badges            []*badge
	content           fyne.CanvasObject
}

func newRowItem() *rowItem {
	r := &rowItem{name: text("", toneNeutral, true), detail: text("", toneNeutral, false), cpr: text("", toneNeutral, false)}
	for _, l := range []*widget.Label{r.name, r.detail, r.cpr} {
		l.Truncation = fyne.TextTruncateEllipsis
	}
	badges := container.NewHBox()
	for i := 0; i < 3; i++ {
		b := newBadge()
		r.badges = append(r.badges, b)
		badges.Add(container.NewCenter(b.box))
	}
	r.content = container.NewVBox(container.NewBorder(nil, nil, nil, badges, r.name), r.detail, r.cpr)
	r.ExtendBaseWidget(r)
	return r
}

func (r *rowItem) CreateRenderer() fyne.WidgetRenderer { return widget.NewSimpleRenderer(r.content) }

func (r *rowItem) set(v rowView) {
	r.name.SetText(v.Name)
	r.detail.SetText(v.Detail)
	setLabel(r.cpr, v.CPR, v.CPRTone)
	r.cpr.TextStyle.Bold = v.CPRTone == toneDanger
	for i, b := range r.badges {
		if i < len(v.Badges) {
			b.set(v.Badges[i])
		} else {
			b.set(badgeView{})
		}
	}
}
