package ui

import (
	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"
	"strings"

	"haven/desktop/internal/app"
)

// historyTab lists who changed what and when, by name, newest first. Years
// of changes scroll smoothly: it is a widget.List.
type historyTab struct {
	u       *UI
	rs      *residentScreen
	items   []app.HistoryItem
	list    *widget.List
	message *widget.Label
}

func newHistoryTab(u *UI, rs *residentScreen) *historyTab { return &historyTab{u: u, rs: rs} }

func (t *historyTab) build() fyne.CanvasObject {
	t.message = wrapped("", toneDanger, true)
	t.message.Hide()
	t.list = widget.NewList(func() int { return len(t.items) },
		func() fyne.CanvasObject {
			who, what, was := text("", toneNeutral, true), text("", toneNeutral, false), text("", toneWarning, false)
			who.Truncation, what.Truncation, was.Truncation = fyne.TextTruncateEllipsis, fyne.TextTruncateEllipsis, fyne.TextTruncateEllipsis
			return container.NewVBox(who, what, was)
		},
		func(i widget.ListItemID, o fyne.CanvasObject) {
			if i >= len(t.items) {
				return
			}
			it := t.items[i]
			box := o.(*fyne.Container)
			box.Objects[0].(*widget.Label).SetText(it.At + " · " + it.Who)
			box.Objects[1].(*widget.Label).SetText(it.What)
			box.Objects[2].(*widget.Label).SetText(strings.Join(it.Changes, "; "))
		})
	t.list.OnSelected = func(widget.ListItemID) { t.u.touch(); t.list.UnselectAll() }
	return container.NewBorder(t.message, nil, nil, nil, t.list)
}

// load reads the history (an audited view).
func (t *historyTab) load() {
	items, err := t.u.app.History(t.rs.id)
	if err != nil {
		t.message.SetText(err.Error())
		t.message.Show()
		return
	}
	t.message.Hide()
	t.items = items
	t.list.Refresh()
}
