package ui

import (
	"fmt"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/news2"
	"haven/shared/record"
)

// news2View is the live NEWS2 panel's words.
type news2View struct {
	Score    string // "NEWS2 6"
	Response string // band and what to do
	Tone     tone
	Points   string // how the total was reached
	Ceiling  string // always shown beside the score
}

var pointOrder = []struct{ key, label string }{
	{"respiration", "Resp rate"}, {"spo2", "SpO2"}, {"air-or-oxygen", "Air/oxygen"}, {"systolic", "Systolic"},
	{"pulse", "Pulse"}, {"consciousness", "Consciousness"}, {"temperature", "Temp"},
}

// news2For words a NEWS2 score against the plan's ceiling of treatment.
func news2For(v app.NEWS2View) news2View {
	out := news2View{Ceiling: v.Ceiling}
	if !v.Complete {
		out.Score, out.Response, out.Tone = "NEWS2: not complete", v.Missing, toneNeutral
		return out
	}
	out.Score = fmt.Sprintf("NEWS2 %d", v.Total)
	out.Tone = bandTone(string(v.Band))
	band := map[news2.Band]string{news2.Low: "Low", news2.LowMedium: "Low (a single parameter scores 3)",
		news2.Medium: "Medium", news2.High: "High"}[v.Band]
	out.Response = band + ". " + v.Response
	var p []string
	for _, k := range pointOrder {
		p = append(p, fmt.Sprintf("%s %d", k.label, v.Points[k.key]))
	}
	out.Points = strings.Join(p, " · ")
	return out
}

// adviceCallForm records an advice-line call: who called and why, RESTORE2
// soft signs, observations with a live NEWS2 score shown against the
// plan's ceiling of treatment, the advice given and what happens next.
type adviceCallForm struct {
	u    *UI
	rs   *residentScreen
	form *fieldForm

	method, outcome, acvpu                   *choice
	caller, relation                         *widget.Entry
	concern, advice, actions, followUp, text *widget.Entry
	softSigns                                map[string]*widget.Check
	resp, spo2, systolic, pulse, temp        *widget.Entry
	scale2, oxygen                           *widget.Check

	score, response, points, ceiling *widget.Label
	panel                            *fyne.Container
	shown                            news2View

	save *widget.Button
	dlg  dialog.Dialog
}

func showAdviceCall(u *UI, rs *residentScreen) *adviceCallForm {
	f := &adviceCallForm{u: u, rs: rs, form: newFieldForm(), softSigns: map[string]*widget.Check{}}
	rescore := func(string) { f.rescore() }
	obsEntry := func(ph string) *widget.Entry {
		e := u.entry(ph)
		e.OnChanged = func(s string) { u.touch(); rescore(s) }
		return e
	}
	f.method = u.choice(record.CallMethods, words, nil)
	f.method.SetValue("phone")
	f.caller = u.entry("name")
	f.relation = u.entry("e.g. senior carer on shift")
	f.concern = u.multiline("what is worrying them", 2)
	signs := container.NewGridWithColumns(2)
	for _, s := range record.SoftSigns {
		c := u.check(words(s), nil)
		f.softSigns[s] = c
		signs.Add(c)
	}
	f.resp = obsEntry("breaths/min")
	f.spo2 = obsEntry("%")
	f.scale2 = u.check("Scale 2 (target 88–92%)", func(bool) { f.rescore() })
	f.oxygen = u.check("On oxygen", func(bool) { f.rescore() })
	f.systolic = obsEntry("mmHg")
	f.pulse = obsEntry("beats/min")
	f.acvpu = u.choice(record.ACVPU, acvpuWords, func(string) { f.rescore() })
	f.temp = obsEntry("°C")
	f.advice = u.multiline("advice given", 2)
	f.outcome = u.choice(record.CallOutcomes, outcomeWords, nil)
	f.actions = u.entry("actions requested, and of whom")
	f.followUp = u.entry("when and how to follow up")
	f.text = u.multiline("anything else (optional)", 2)

	fm := f.form
	fm.section("The call")
	fm.add("call.method", "Method", f.method)
	fm.add("call.caller", "Caller", f.caller)
	fm.add("call.callerRelation", "Caller is", f.relation)
	fm.add("call.concern", "Concern", f.concern)
	fm.add("call.softSigns", "Soft signs (RESTORE2)", signs)
	fm.section("Observations")
	fm.add("obs.respRate", "Respiration rate", f.resp)
	fm.add("obs.spo2", "SpO2", container.NewBorder(nil, nil, nil, container.NewHBox(f.scale2, f.oxygen), f.spo2))
	fm.add("obs.systolic", "Systolic BP", f.systolic)
	fm.add("obs.pulse", "Pulse", f.pulse)
	fm.add("obs.acvpu", "Consciousness", f.acvpu)
	fm.add("obs.temp", "Temperature", f.temp)
	fm.section("Advice")
	fm.add("call.advice", "Advice", f.advice)
	fm.add("call.outcome", "Outcome", f.outcome)
	fm.add("call.actions", "Actions", f.actions)
	fm.add("call.followUp", "Follow-up", f.followUp)
	fm.add("text", "Summary", f.text)

	f.score = text("", toneNeutral, true)
	f.score.SizeName = theme.SizeNameHeadingText
	f.response = wrapped("", toneNeutral, true)
	f.points = caption("")
	f.ceiling = wrapped("", toneNeutral, true)
	f.panel = card(toneNeutral, f.score, f.response, f.points, widget.NewSeparator(), f.ceiling)
	f.rescore()

	f.save = u.primary("Save advice call", f.onSave)
	side := container.NewVBox(subheading("Live NEWS2"), f.panel,
		caption("NEWS2 is computed from the observations, never typed, and stored with the call together with the version of the plan you are seeing."))
	body := container.NewBorder(nil, container.NewHBox(tall(f.save), u.button("Cancel", func() { f.dlg.Hide() })), nil,
		fixedWidth(340, container.NewPadded(side)), u.scroll(fm.object()))
	f.dlg = u.showDialog("Advice call: "+rs.fs.Name, body, fyne.NewSize(1120, 720))
	return f
}

func (f *adviceCallForm) observations() app.ObservationsForm {
	return app.ObservationsForm{RespRate: f.resp.Text, SpO2: f.spo2.Text, Systolic: f.systolic.Text, Pulse: f.pulse.Text,
		Temperature: f.temp.Text, Consciousness: f.acvpu.Value(), Scale2: f.scale2.Checked, OnOxygen: f.oxygen.Checked}
}

// rescore updates the live NEWS2 panel as observations are typed.
func (f *adviceCallForm) rescore() {
	if f.panel == nil {
		return // still being built
	}
	v := news2For(f.u.app.ScoreTyped(f.rs.id, f.observations()))
	f.shown = v
	setLabel(f.score, v.Score, v.Tone)
	setLabel(f.response, v.Response, v.Tone)
	f.points.SetText(v.Points)
	f.ceiling.SetText(v.Ceiling)
	recolour(f.panel, v.Tone)
}

func (f *adviceCallForm) call() app.AdviceCallForm {
	var signs []string
	for _, s := range record.SoftSigns {
		if f.softSigns[s].Checked {
			signs = append(signs, s)
		}
	}
	return app.AdviceCallForm{Method: f.method.Value(), Caller: f.caller.Text, CallerRelation: f.relation.Text, Concern: f.concern.Text,
		SoftSigns: signs, Observations: f.observations(), Advice: f.advice.Text, Outcome: f.outcome.Value(), Actions: f.actions.Text,
		FollowUp: f.followUp.Text, Text: f.text.Text}
}

func (f *adviceCallForm) onSave() {
	saved, err := f.u.app.RecordAdviceCall(f.rs.id, f.call())
	f.rs.closeSaved(f.form, f.dlg, saved, err)
}
