package ui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/record"
)

// decideForm records a safety-critical decision (app.Decide). Recorded
// while a conflict shows, it replaces every side the clinician sees: that
// is how a conflict is resolved. It starts blank on purpose, so that a
// value is chosen, never carried over by accident.
type decideForm struct {
	u       *UI
	rs      *residentScreen
	kind    record.Kind
	subject string
	form    *fieldForm

	value                       *choice // CPR, clinical focus
	level                       *choice // ceiling of treatment
	guidance                    *widget.Entry
	first, second               *choice // place of death
	podNotes                    *widget.Entry
	adrt                        *choice
	refused, location, adrtDate *widget.Entry
	lifeRisk, witnessed         *widget.Check
	authority                   *widget.Check // attorney
	noneKnown                   *widget.Check // allergies
	allergies                   []allergyRow
	reason                      *widget.Entry
	save                        *widget.Button
	dlg                         dialog.Dialog
}

type allergyRow struct {
	agent, reaction *widget.Entry
	severity        *choice
}

// decide opens the decision form for v (subject: the attorney's contact ID).
func (s *residentScreen) decide(v app.DecisionView, subject string) *decideForm {
	f := &decideForm{u: s.u, rs: s, kind: v.Kind, subject: subject}
	f.dlg = s.u.showDialog(decideTitle(v, s.fs.Name), f.build(v), fyne.NewSize(760, 620))
	s.lastDecide = f
	return f
}

func decideTitle(v app.DecisionView, name string) string {
	if v.State == app.DecisionConflict {
		return "Resolve the conflict: " + v.Label + " for " + name
	}
	return "Record: " + v.Label + " for " + name
}

func (f *decideForm) build(v app.DecisionView) fyne.CanvasObject {
	u := f.u
	f.form = newFieldForm()
	var top []fyne.CanvasObject
	switch v.State {
	case app.DecisionConflict:
		objs := []fyne.CanvasObject{text("Your decision will replace both of these:", toneDanger, true)}
		for i, s := range v.Sides {
			objs = append(objs, wrapped(fmt.Sprintf("%d. %s", i+1, s.Text), toneDanger, true), caption(sideLine(s)))
		}
		top = append(top, card(toneDanger, objs...))
	case app.DecisionSettled:
		top = append(top, card(toneNeutral, text("Current: "+v.Text, toneNeutral, true), caption(byLine(v.By, v.At, v.Reason))))
	}
	switch f.kind {
	case record.KindCPR:
		f.value = u.choice(record.CPRValues, record.Label, nil)
		f.form.add("cpr", "CPR recommendation", f.value)
	case record.KindFocus:
		f.value = u.choice(record.ClinicalFocuses, record.Label, nil)
		f.form.add("clinicalFocus", "Clinical focus", f.value)
	case record.KindCeiling:
		f.level = u.choice(record.CeilingLevels, record.Label, nil)
		f.guidance = u.multiline("guidance on specific interventions: hospital admission, antibiotics, fluids…", 3)
		f.form.add("ceiling.level", "Ceiling of treatment", f.level)
		f.form.add("ceiling.guidance", "Guidance", f.guidance)
	case record.KindPlaceOfDeath:
		f.first = u.choice(record.Places, record.Label, nil)
		f.second = u.choice(record.Places, record.Label, nil)
		f.podNotes = u.entry("")
		f.form.add("placeOfDeath.first", "1st choice", f.first)
		f.form.add("placeOfDeath.second", "2nd choice", f.second)
		f.form.add("placeOfDeath.notes", "Notes", f.podNotes)
	case record.KindADRT:
		f.adrt = u.choice(record.ADRTExists, func(v string) string {
			return map[string]string{"yes": "Yes, an ADRT exists", "no": "No ADRT", "unknown": "Not known"}[v]
		}, nil)
		f.refused = u.entry("treatments refused")
		f.lifeRisk = u.check("Applies even if life is at risk", nil)
		f.witnessed = u.check("Signed and witnessed", nil)
		f.adrtDate = u.entry("date made, e.g. 3/2/2025")
		f.location = u.entry("where the document is kept")
		f.form.add("adrt.exists", "ADRT", f.adrt)
		f.form.add("adrt.treatmentsRefused", "Refuses", f.refused)
		f.form.add("", "", container.NewHBox(f.lifeRisk, f.witnessed))
		f.form.add("adrt.date", "Date", f.adrtDate)
		f.form.add("adrt.location", "Kept", f.location)
	case record.KindAttorney:
		f.authority = u.check("The LPA gives authority over life-sustaining treatment", nil)
		f.form.add("attorneyAuthority", "Authority", f.authority)
	case record.KindAllergies:
		f.noneKnown = u.check("No known allergies (asked and none reported)", nil)
		f.form.add("allergies", "Statement", f.noneKnown)
		for i := 0; i < 4; i++ {
			r := allergyRow{agent: u.entry("agent, e.g. penicillin"), reaction: u.entry("reaction"),
				severity: u.choice(record.AllergySeverities, words, nil)}
			f.allergies = append(f.allergies, r)
			f.form.add(fmt.Sprintf("allergies[%d].agent", i), fmt.Sprintf("Allergy %d", i+1),
				container.NewGridWithColumns(3, r.agent, r.reaction, r.severity))
		}
	}
	f.reason = u.multiline("why: what was discussed, with whom", 3)
	f.form.add("reason", "Reason", f.reason)

	me := u.app.CurrentUser()
	who := me.Name + ", " + me.Role.Label()
	if me.RegNo != "" {
		who += ", " + me.RegNo
	}
	f.save = u.primary("Record this decision", f.onSave)
	body := container.NewVBox(top...)
	body.Add(f.form.object())
	body.Add(caption("Recorded as " + who + ", with the time, on this computer."))
	body.Add(container.NewHBox(tall(f.save), u.button("Cancel", func() { f.dlg.Hide() })))
	return u.scroll(body)
}

// valueOf is the decision's value as the form shows it.
func (f *decideForm) valueOf() any {
	switch f.kind {
	case record.KindCPR, record.KindFocus:
		return f.value.Value()
	case record.KindCeiling:
		return record.Ceiling{Level: f.level.Value(), Guidance: strings.TrimSpace(f.guidance.Text)}
	case record.KindPlaceOfDeath:
		return record.PlaceOfDeath{First: f.first.Value(), Second: f.second.Value(), Notes: f.podNotes.Text}
	case record.KindADRT:
		return record.ADRT{Exists: f.adrt.Value(), TreatmentsRefused: f.refused.Text, EvenIfLifeAtRisk: f.lifeRisk.Checked,
			SignedWitnessed: f.witnessed.Checked, Date: app.NormaliseDate(f.adrtDate.Text), Location: f.location.Text}
	case record.KindAttorney:
		return record.AttorneyAuthority{LifeSustaining: f.authority.Checked}
	case record.KindAllergies:
		v := record.Allergies{NoneKnown: f.noneKnown.Checked}
		for _, r := range f.allergies {
			if strings.TrimSpace(r.agent.Text) != "" || r.reaction.Text != "" {
				v.Items = append(v.Items, record.Allergy{Agent: strings.TrimSpace(r.agent.Text), Reaction: r.reaction.Text, Severity: r.severity.Value()})
			}
		}
		return v
	}
	return nil
}

func (f *decideForm) onSave() {
	saved, err := f.u.app.Decide(f.rs.id, f.kind, f.subject, f.valueOf(), f.reason.Text)
	f.rs.closeSaved(f.form, f.dlg, saved, err)
}
