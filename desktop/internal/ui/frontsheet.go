package ui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/record"
)

// frontSheet is the emergency summary on one screen: what an advice-line
// clinician or a carer at 3 a.m. needs first. Safety-critical values are
// large; a conflict is red and names both decisions; a stale copy says so.
type frontSheet struct {
	u    *UI
	rs   *residentScreen
	box  *fyne.Container
	asOf *widget.Label
}

func newFrontSheet(u *UI, rs *residentScreen) *frontSheet { return &frontSheet{u: u, rs: rs} }

func (f *frontSheet) build() fyne.CanvasObject {
	f.box = container.NewVBox()
	f.asOf = wrapped("", toneNeutral, false)
	f.show(f.rs.fs)
	return f.u.scroll(f.box)
}

// conflictBanner words the count of conflicts on a record.
func conflictBanner(n int) string {
	s := "1 CONFLICT in this record"
	if n > 1 {
		s = fmt.Sprintf("%d CONFLICTS in this record", n)
	}
	return s + ", shown in red below: two decisions disagree. Check the paper ReSPECT form kept with the resident; a clinician must record a decision that replaces both sides."
}

func (f *frontSheet) show(fs *app.FrontSheet) {
	var objs []fyne.CanvasObject
	// The banner points to conflicts below the first row; one in the CPR
	// recommendation or clinical focus is already the first thing seen.
	if fs.Conflicts > 0 && fs.CPR.State != app.DecisionConflict && fs.Focus.State != app.DecisionConflict {
		objs = append(objs, card(toneDanger, wrapped(conflictBanner(fs.Conflicts), toneDanger, true)))
	}
	if fs.Tampered > 0 {
		objs = append(objs, card(toneDanger, wrapped(tamperBanner(fs), toneDanger, true)))
	}
	if len(fs.Problems) > 0 {
		objs = append(objs, card(toneWarning, text("Parts of this record could not be read", toneWarning, true),
			wrapped(strings.Join(fs.Problems, ", "), toneWarning, false)))
	}
	// Two independent columns, so a tall card (a conflict, a long ceiling)
	// pushes down only its own column and the summary stays on one screen.
	left := container.NewVBox(f.decision(fs.CPR, true, ""), f.allergies(fs.Allergies), f.alerts(fs.Alerts, fs.AlertIDs), f.attorneys(fs.Attorneys, fs.Contacts),
		whoToCall(f.u.app.WhoToCall(fs.ID)))
	right := container.NewVBox(f.decision(fs.Focus, true, ""), f.decision(fs.Ceiling, false, ""),
		container.NewGridWithColumns(2, f.decision(fs.PlaceOfDeath, false, ""), f.decision(fs.ADRT, false, "")),
		f.contacts(fs.Contacts, fs.Attorneys))
	objs = append(objs,
		container.NewGridWithColumns(2, left, right),
		container.NewVBox(text("Last reviewed: "+fs.LastReviewed, toneNeutral, false), f.asOf),
	)
	f.showAsOf(fs.AsOf, fs.Stale)
	f.box.Objects = objs
	f.box.Refresh()
}

func (f *frontSheet) showAsOf(asOf string, stale bool) {
	setLabel(f.asOf, asOf, map[bool]tone{true: toneWarning, false: toneNeutral}[stale])
}

// decision is one safety-critical value with a Resolve action for those
// permitted to record it.
func (f *frontSheet) decision(v app.DecisionView, big bool, subject string) fyne.CanvasObject {
	return decisionBlock(v, big, toneNeutral, f.action(v, subject))
}

// action is Resolve on a conflict, or Record on a value not recorded, for
// those permitted to record it; a settled value is changed from the
// Advance wishes tab, away from the emergency summary.
func (f *frontSheet) action(v app.DecisionView, subject string) *widget.Button {
	if !f.u.app.CanDecide(v.Kind) {
		return nil
	}
	switch v.State {
	case app.DecisionConflict:
		b := f.u.button("Resolve this conflict…", func() { f.rs.decide(v, subject) })
		b.Importance = widget.DangerImportance
		return b
	case app.DecisionNotRecorded:
		return f.u.button("Record…", func() { f.rs.decide(v, subject) })
	}
	return nil
}

// tamperBanner words the tamper alert at the top of a record.
func tamperBanner(fs *app.FrontSheet) string {
	s := fmt.Sprintf("TAMPER ALERT: %d item(s) in this record are not decisions: shown in red below and never as the value.", fs.Tampered)
	if len(fs.Altered) > 0 {
		s += " This record was altered on this computer outside Haven's rules (" + strings.Join(fs.Altered, ", ") + ")."
	}
	return s + " Check the paper ReSPECT form, and tell the home manager."
}

// decisionBlock shows a decision as every screen does: settled (value, who,
// when), not recorded (amber), a conflict (red, each side with who, when
// and why), or an altered list (red, no value); entries that are not
// decisions follow in red, each with why. settled is the tone of a settled
// value's card.
func decisionBlock(v app.DecisionView, big bool, settled tone, act *widget.Button) fyne.CanvasObject {
	block := decisionValue(v, big, settled, act)
	if len(v.Unverified) == 0 {
		return block
	}
	objs := []fyne.CanvasObject{block}
	for _, u := range v.Unverified {
		objs = append(objs, card(toneDanger, text(app.UnverifiedLabel, toneDanger, true),
			wrapped(u.Text, toneDanger, false), caption(u.Claimed+" · "+u.At+"\nWhy: "+u.Why)))
	}
	return container.NewVBox(objs...)
}

func decisionValue(v app.DecisionView, big bool, settled tone, act *widget.Button) fyne.CanvasObject {
	title := blockTitle(strings.ToUpper(shortLabel(v)))
	var objs []fyne.CanvasObject
	switch v.State {
	case app.DecisionAltered:
		head := wrapped("UNVERIFIED: "+v.Label, toneDanger, true)
		if big {
			head.SizeName = sizeDecision
		}
		return card(toneDanger, title, head, wrapped(v.Text, toneDanger, false))
	case app.DecisionConflict:
		head := wrapped("CONFLICT: "+v.Label, toneDanger, true)
		if big {
			head.SizeName = sizeDecision
		}
		objs = append(objs, head)
		for i, side := range v.Sides {
			objs = append(objs, wrapped(fmt.Sprintf("%d. %s", i+1, side.Text), toneDanger, true), caption(sideLine(side)))
		}
		if act != nil {
			objs = append(objs, act)
		} else {
			objs = append(objs, wrapped("Your role cannot resolve this: ask a clinician.", toneDanger, false))
		}
		return card(toneDanger, objs...)
	case app.DecisionNotRecorded:
		value := text("Not recorded", toneWarning, true)
		if big {
			value.SizeName = sizeDecision
		}
		objs = append(objs, title, value)
		if act != nil {
			objs = append(objs, act)
		}
		return card(toneWarning, objs...)
	}
	value := wrapped(v.Text, settled, true)
	reason := ""
	if big {
		value.SizeName = sizeDecision
		reason = v.Reason // the reason for a CPR recommendation or focus; others keep theirs on the Advance wishes tab
	}
	objs = append(objs, title, value, caption(byLine(v.By, v.At, reason)))
	if act != nil {
		objs = append(objs, act)
	}
	return card(settled, objs...)
}

// shortLabel is a decision's name where space is short.
func shortLabel(v app.DecisionView) string {
	if v.Kind == record.KindADRT {
		return "Advance decision (ADRT)"
	}
	return v.Label
}

// blockTitle names a block of the front sheet, small and grey above its value.
func blockTitle(s string) *widget.Label {
	l := wrapped(s, toneNeutral, true)
	l.SizeName = theme.SizeNameCaptionText
	l.Importance = widget.LowImportance
	return l
}

func byLine(by, at, reason string) string {
	s := by
	if at != "" {
		s += " · " + at
	}
	if reason != "" {
		s += "\nReason: " + reason
	}
	return s
}

func sideLine(s app.DecisionSide) string { return byLine(s.By, s.At, s.Reason) }

func (f *frontSheet) allergies(v app.DecisionView) fyne.CanvasObject {
	t := toneNeutral
	if v.State == app.DecisionSettled && v.Text != "No known allergies" {
		t = toneWarning
	}
	return f.decisionTone(v, t)
}

func (f *frontSheet) decisionTone(v app.DecisionView, settled tone) fyne.CanvasObject {
	return decisionBlock(v, false, settled, f.action(v, ""))
}

func (f *frontSheet) alerts(alerts, ids []string) fyne.CanvasObject {
	var head fyne.CanvasObject = blockTitle("ALERTS")
	if f.rs.m.perms.EditRecord {
		add := f.u.button("Add…", func() { showAddAlert(f.u, f.rs) })
		add.Importance = widget.LowImportance
		head = container.NewBorder(nil, nil, nil, add, head)
	}
	objs := []fyne.CanvasObject{head}
	t := toneNeutral
	if len(alerts) == 0 {
		objs = append(objs, text("No alerts", toneNeutral, false))
	} else {
		t = toneWarning
		for i, a := range alerts {
			line := fyne.CanvasObject(wrapped(a, toneWarning, true))
			if i < len(ids) && ids[i] != "" && f.rs.m.perms.EditRecord {
				id, what := ids[i], a
				resolve := f.u.button("Mark resolved…", func() { showResolveAlert(f.u, f.rs, id, what) })
				resolve.Importance = widget.LowImportance
				line = container.NewBorder(nil, nil, nil, resolve, line)
			}
			objs = append(objs, line)
		}
	}
	return card(t, objs...)
}

// showResolveAlert asks before an alert that no longer applies (or was
// raised in error) leaves the front sheet; the history keeps it.
func showResolveAlert(u *UI, rs *residentScreen, alertID, what string) {
	form := newFieldForm()
	var d interface{ Hide() }
	save := u.primary("Resolve the alert", func() {
		saved, err := u.app.ResolveAlert(rs.id, alertID)
		if err != nil {
			form.show(err)
			return
		}
		d.Hide()
		rs.m.saved(saved)
	})
	d = u.showDialog("Resolve an alert: "+rs.fs.Name, container.NewVBox(
		wrapped("“"+what+"” will no longer show on the front sheet. The record's history keeps it, with who resolved it and when.", toneNeutral, false),
		form.object(), container.NewHBox(save, u.button("Cancel", func() { d.Hide() }))), fyne.NewSize(600, 240))
}

func (f *frontSheet) attorneys(atts []app.AttorneyView, contacts []app.ContactView) fyne.CanvasObject {
	title := blockTitle("ATTORNEY (HEALTH AND WELFARE LPA)")
	objs := []fyne.CanvasObject{title}
	if len(atts) == 0 {
		objs = append(objs, text("No attorney recorded", toneNeutral, false))
	}
	for _, a := range atts {
		a := a
		who, phones := a.Name, a.Phone
		for _, c := range contacts {
			if c.ID == a.ContactID {
				who, phones = contactLine(c)
			}
		}
		if a.Registered {
			who += " · LPA registered"
		}
		objs = append(objs, wrapped(who, toneNeutral, true), wrapped(phones, toneNeutral, false))
		if !a.Registered {
			objs = append(objs, wrapped("LPA NOT registered with the Office of the Public Guardian: cannot act yet", toneWarning, true))
		}
		switch auth := a.Authority; auth.State {
		case app.DecisionSettled:
			objs = append(objs, wrapped(auth.Text, toneNeutral, true), caption(byLine(auth.By, auth.At, "")))
		default:
			objs = append(objs, decisionBlock(auth, false, toneNeutral, f.action(auth, a.ContactID)))
		}
	}
	return card(toneNeutral, objs...)
}

// contactLine words a contact for the front sheet.
func contactLine(c app.ContactView) (who, phones string) {
	who = c.Name
	var about []string
	if c.Relationship != "" {
		about = append(about, c.Relationship)
	}
	if c.Role != "" {
		about = append(about, contactRoleWords(c.Role))
	}
	if len(about) > 0 {
		who += " · " + strings.Join(about, ", ")
	}
	return who, c.Phones()
}

// contacts lists the key contacts other than attorneys, whose numbers are
// in the attorney block.
func (f *frontSheet) contacts(cs []app.ContactView, atts []app.AttorneyView) fyne.CanvasObject {
	objs := []fyne.CanvasObject{blockTitle("KEY CONTACTS")}
	attorney := map[string]bool{}
	for _, a := range atts {
		attorney[a.ContactID] = true
	}
	n := 0
	for _, c := range cs {
		if attorney[c.ID] {
			continue
		}
		who, phones := contactLine(c)
		objs = append(objs, wrapped(who, toneNeutral, true), wrapped(phones, toneNeutral, false))
		n++
	}
	switch {
	case len(cs) == 0:
		objs = append(objs, text("No contacts recorded", toneWarning, true))
	case n == 0:
		objs = append(objs, text("Only the attorney, shown beside", toneNeutral, false))
	}
	return card(toneNeutral, objs...)
}

// showAddAlert asks for an alert's text (swallowing risk, DoLS in force…).
func showAddAlert(u *UI, rs *residentScreen) {
	form := newFieldForm()
	alert := u.entry("e.g. Swallowing risk: thickened fluids, stage 2")
	form.add("text", "Alert", alert)
	var d interface{ Hide() }
	save := u.primary("Add alert", func() {
		saved, err := u.app.AddAlert(rs.id, alert.Text)
		if err != nil {
			form.show(err)
			return
		}
		d.Hide()
		rs.m.saved(saved)
	})
	d = u.showDialog("Add an alert: "+rs.fs.Name, container.NewVBox(form.object(), container.NewHBox(save, u.button("Cancel", func() { d.Hide() }))),
		fyne.NewSize(640, 240))
}
