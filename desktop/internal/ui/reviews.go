package ui

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/docid"
)

// reviewLine words one review due, for the week's list.
func reviewLine(d app.DueReview) (string, tone) {
	who := d.Resident.Name()
	if d.Resident.Room != "" {
		who += ", room " + d.Resident.Room
	}
	due := app.FormatDate(d.Due)
	switch d.State {
	case app.ReviewOverdue:
		return fmt.Sprintf("OVERDUE since %s · %s · %s", due, who, d.What), toneWarning
	case app.ReviewDue:
		return fmt.Sprintf("Due today · %s · %s", who, d.What), toneWarning
	}
	return fmt.Sprintf("Due %s · %s · %s", due, who, d.What), toneNeutral
}

// showReviewsDue lists every review overdue or due within the week, most
// overdue first; choosing one opens the resident.
func showReviewsDue(u *UI, open func(docid.ID)) {
	u.touch()
	items := u.app.ReviewsDue()
	var d interface{ Hide() }
	list := widget.NewList(
		func() int { return len(items) },
		func() fyne.CanvasObject { return text("", toneNeutral, false) },
		func(i widget.ListItemID, o fyne.CanvasObject) {
			s, t := reviewLine(items[i])
			l := o.(*widget.Label)
			l.SetText(s)
			l.Importance = t.importance()
			l.Refresh()
		})
	list.OnSelected = func(i widget.ListItemID) {
		if i >= 0 && i < len(items) {
			d.Hide()
			open(items[i].Resident.ID)
		}
	}
	head := wrapped(fmt.Sprintf("%s overdue or due in the next seven days, most overdue first. Choose one to open the resident.",
		plural(len(items), "review", "reviews")), toneNeutral, false)
	d = u.showDialog("Reviews this week", container.NewBorder(head, container.NewHBox(u.button("Close", func() { d.Hide() })), nil, nil, list),
		fyne.NewSize(760, 520))
}
