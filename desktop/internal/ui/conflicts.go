package ui

import (
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"

	"haven/desktop/internal/app"
	"haven/shared/docid"
)

// conflictsInbox lists every unresolved conflict on this computer: two
// safety-critical decisions made on different computers, neither aware of
// the other. A permitted clinician resolves one from the front sheet.
type conflictsInbox struct {
	u      *UI
	onOpen func(docid.ID)
	items  []app.Conflict
	box    *fyne.Container
	title  *fyne.Container
}

func newConflictsInbox(u *UI, onOpen func(docid.ID)) *conflictsInbox {
	return &conflictsInbox{u: u, onOpen: onOpen}
}

func (c *conflictsInbox) build() fyne.CanvasObject {
	c.box = container.NewVBox()
	c.refresh()
	intro := wrapped("Each conflict is two decisions recorded on different computers while they could not see each other. "+
		"Haven shows both, in red, everywhere the value appears, until a clinician records a decision that replaces both.", toneNeutral, false)
	return container.NewBorder(container.NewPadded(container.NewVBox(heading("Conflicts to resolve"), intro)), nil, nil, nil,
		c.u.scroll(container.NewPadded(c.box)))
}

// conflictLine words one resident's conflicts.
func conflictLine(x app.Conflict) (title, detail string) {
	title = x.Name
	if x.Room != "" {
		title += " · Room " + x.Room
	}
	return title, "In conflict: " + strings.Join(x.Kinds, ", ")
}

func (c *conflictsInbox) refresh() {
	c.items = c.u.app.Conflicts()
	c.box.RemoveAll()
	if len(c.items) == 0 {
		c.box.Add(card(toneSuccess, text("No conflicts: every safety-critical decision on this computer is settled.", toneSuccess, true)))
		return
	}
	c.box.Add(text(plural(len(c.items), "resident", "residents")+" with a conflict", toneDanger, true))
	for _, x := range c.items {
		x := x
		title, detail := conflictLine(x)
		open := c.u.button("Open front sheet", func() { c.onOpen(x.Resident) })
		c.box.Add(card(toneDanger, container.NewBorder(nil, nil, nil, container.NewCenter(open),
			container.NewVBox(text(title, toneNeutral, true), wrapped(detail, toneDanger, true)))))
	}
}
