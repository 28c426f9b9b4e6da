package ui

import (
	"fmt"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
)

// handoverScreen shows what changed in the home since a time (by default
// the start of this shift), resident by resident: notes and advice calls,
// decisions, alerts, corrections, plan changes, and every open conflict.
// Choosing a resident opens their record.
type handoverScreen struct {
	u     *UI
	m     *mainScreen
	since *widget.Select
	head  *widget.Label
	body  *fyne.Container
	// choices are the since-times offered, in the select's order.
	choices []time.Time
}

func newHandoverScreen(u *UI, m *mainScreen) *handoverScreen { return &handoverScreen{u: u, m: m} }

func (h *handoverScreen) build() fyne.CanvasObject {
	u := h.u
	now := u.app.Now()
	start := app.ShiftStart(now)
	h.choices = []time.Time{start, now.Add(-12 * time.Hour), now.Add(-24 * time.Hour), app.ShiftStart(start.Add(-time.Minute))}
	labels := []string{"the start of this shift (" + start.Format("15:04") + ")", "the last 12 hours", "the last 24 hours",
		"the start of the last shift (" + h.choices[3].Format("Mon 15:04") + ")"}
	h.since = widget.NewSelect(labels, func(string) { u.touch(); h.load() })
	h.head = wrapped("", toneNeutral, false)
	h.body = container.NewVBox()
	h.since.SetSelectedIndex(0)
	top := container.NewVBox(heading("Handover"),
		container.NewBorder(nil, nil, text("What changed since", toneNeutral, true), nil, h.since), h.head)
	return container.NewBorder(container.NewPadded(top), nil, nil, nil, u.scroll(container.NewPadded(h.body)))
}

// load reads the handover for the chosen time.
func (h *handoverScreen) load() {
	i := h.since.SelectedIndex()
	if i < 0 || i >= len(h.choices) {
		return
	}
	items, err := h.u.app.Handover(h.choices[i])
	h.body.RemoveAll()
	if err != nil {
		setLabel(h.head, err.Error(), toneDanger)
		return
	}
	changed := 0
	for _, r := range items {
		if len(r.Items) > 0 {
			changed++
		}
	}
	setLabel(h.head, fmt.Sprintf("%s changed; %s with a conflict to settle. Choose a resident to open their record.",
		plural(changed, "resident", "residents"), plural(countConflicts(items), "resident", "residents")), toneNeutral)
	if len(items) == 0 {
		h.body.Add(text("Nothing has changed in this time.", toneNeutral, false))
	}
	for _, r := range items {
		h.body.Add(h.card(r))
	}
	h.body.Refresh()
}

func countConflicts(items []app.HandoverResident) int {
	n := 0
	for _, r := range items {
		if len(r.Conflicts) > 0 {
			n++
		}
	}
	return n
}

// card is one resident's changes.
func (h *handoverScreen) card(r app.HandoverResident) fyne.CanvasObject {
	name := r.Row.Name()
	if r.Row.Room != "" {
		name += " · room " + r.Row.Room
	}
	id := r.Row.ID
	open := h.u.button("Open", func() { h.m.openResident(id) })
	objs := []fyne.CanvasObject{container.NewBorder(nil, nil, nil, open, text(name, toneNeutral, true))}
	t := toneNeutral
	for _, c := range r.Conflicts {
		objs = append(objs, wrapped("CONFLICT: "+c+": two decisions stand; a clinician must settle it", toneDanger, true))
		t = toneDanger
	}
	for _, it := range r.Items {
		line := it.At.Local().Format("Mon 15:04") + " · " + kindWords(it.Kind) + " · " + it.Who + ": " + it.What
		tn := toneNeutral
		if it.Kind == app.HandoverDecision || it.Kind == app.HandoverAlert {
			tn = toneWarning
		}
		objs = append(objs, wrapped(line, tn, it.Kind == app.HandoverDecision))
	}
	return card(t, objs...)
}

func kindWords(k string) string {
	switch k {
	case app.HandoverNote:
		return "Note"
	case app.HandoverCall:
		return "Advice call"
	case app.HandoverDecision:
		return "DECISION"
	case app.HandoverAlert:
		return "Alert"
	case app.HandoverCorrection:
		return "Details"
	case app.HandoverPlan:
		return "Plan"
	}
	return k
}
