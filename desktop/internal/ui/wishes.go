package ui

import (
	"fmt"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/record"
)

// Words for the ReSPECT enumerations.
var (
	involvementWords = map[string]string{
		"A": "A: has capacity and is fully involved", "B": "B: lacks capacity; made with their proxy or family",
		"C1": "C1: a child, fully involved", "C2": "C2: a child, with those with parental responsibility",
		"C3": "C3: a child, not involved (reason recorded)", "D": "D: none of these applies (reason recorded)",
	}
	capacityWords = map[string]string{"has": "Has capacity for involvement", "does-not-have": "Does not have capacity",
		"indeterminate": "Capacity indeterminate"}
	proxyWords = map[string]string{"present": "A legal welfare proxy is in place", "absent": "No legal welfare proxy", "unknown": "Not known"}
)

func fromMap(m map[string]string) func(string) string {
	return func(v string) string {
		if v == "" {
			return "Not recorded"
		}
		if s, ok := m[v]; ok {
			return s
		}
		return words(v)
	}
}

func yesNo(b bool) string {
	if b {
		return "Yes"
	}
	return "No"
}

// wishesTab shows the ReSPECT plan (sections 1–9) and the end-of-life
// items. The clinical recommendations are decisions, recorded with
// app.Decide by those permitted; the rest is edited in one form whose
// clinical fields only a registered clinician can change.
type wishesTab struct {
	u       *UI
	rs      *residentScreen
	view    *app.WishesView
	box     *fyne.Container
	message *widget.Label

	edit   *wishesEdit // last opened (tests)
	review *respectReviewForm
}

func newWishesTab(u *UI, rs *residentScreen) *wishesTab { return &wishesTab{u: u, rs: rs} }

func (t *wishesTab) build() fyne.CanvasObject {
	t.box = container.NewVBox()
	t.message = wrapped("", toneDanger, true)
	t.message.Hide()
	return container.NewBorder(t.message, nil, nil, nil, t.u.scroll(container.NewPadded(t.box)))
}

// load reads the advance wishes (an audited view).
func (t *wishesTab) load() {
	v, err := t.u.app.Wishes(t.rs.id)
	if err != nil {
		t.message.SetText(err.Error())
		t.message.Show()
		return
	}
	t.message.Hide()
	t.view = v
	t.render()
}

func section(title string, objs ...fyne.CanvasObject) fyne.CanvasObject {
	return card(toneNeutral, append([]fyne.CanvasObject{subheading(title)}, objs...)...)
}

func fields(pairs ...string) fyne.CanvasObject {
	g := container.NewGridWithColumns(2)
	for i := 0; i+1 < len(pairs); i += 2 {
		g.Add(field(pairs[i], pairs[i+1]))
	}
	return g
}

// decision is a decision block with Record or Resolve for those permitted.
func (t *wishesTab) decision(v app.DecisionView) fyne.CanvasObject {
	var act *widget.Button
	if t.u.app.CanDecide(v.Kind) {
		label := "Record a new decision…"
		if v.State == app.DecisionConflict {
			label = "Resolve this conflict…"
		}
		act = t.u.button(label, func() { t.rs.decide(v, "") })
		if v.State == app.DecisionConflict {
			act.Importance = widget.DangerImportance
		}
	}
	return decisionBlock(v, false, toneNeutral, act)
}

func (t *wishesTab) render() {
	v, fs := t.view, t.rs.fs
	w := v.Wishes
	var top []fyne.CanvasObject
	top = append(top, caption("ReSPECT is a recommendation, not a legal order; the signed paper form travels with the person. "+
		"Viewing this page is recorded."))
	if v.CanEdit {
		top = append(top, container.NewHBox(t.u.primary("Edit advance wishes…", t.onEdit)))
	} else {
		top = append(top, caption("Your role can read these wishes; a senior colleague or clinician can change them."))
	}
	address := fs.Home
	if fs.Room != "" {
		address += ", room " + fs.Room
	}
	proxy := fromMap(proxyWords)(w.Proxy)
	if w.ProxyType != "" {
		proxy += ": " + w.ProxyType
	}
	if w.ProxyWho != "" {
		proxy += ", " + w.ProxyWho
	}
	var reviews []fyne.CanvasObject
	for _, r := range w.Reviews {
		reviews = append(reviews, text(fmt.Sprintf("%s · %s · remains relevant: %s", app.FormatDate(r.Date), r.Clinician, yesNo(r.RemainsRelevant)), toneNeutral, false))
	}
	if len(reviews) == 0 {
		reviews = append(reviews, text("No review recorded", toneWarning, false))
	}
	if v.CanEditClinical {
		reviews = append(reviews, container.NewHBox(t.u.button("Record a review…", t.onReview)))
	}
	var contacts []fyne.CanvasObject
	for _, c := range fs.Contacts {
		who, phones := contactLine(c)
		contacts = append(contacts, wrapped(who+": "+phones, toneNeutral, false))
	}
	told := fmt.Sprintf("Person told: %s · family told: %s", yesNo(w.PersonTold), yesNo(w.FamilyTold))
	if w.NotToldWhy != "" {
		told += " · why not: " + w.NotToldWhy
	}
	objs := append(top,
		section("1. This plan belongs to", fields("Name", fs.Name, "Preferred name", fs.PreferredName, "Date of birth", fs.DateOfBirth,
			"NHS number", fs.NHSNumber, "Address", address, "Completed on", app.FormatDate(w.CompletedOn))),
		section("2. Shared understanding of my health", field("Summary", w.Summary),
			fields("Other care-planning documents", w.OtherDocuments, "Legal welfare proxy", proxy, "Proxy's certificate kept", w.ProxyCertificate)),
		section("3. What matters to me", fields("What I most value", w.MostValue, "What I most fear or wish to avoid", w.MostFear)),
		section("4. Clinical recommendations for emergency care and treatment",
			container.NewGridWithColumns(2, t.decision(v.Focus), t.decision(v.CPR)), t.decision(v.Ceiling),
			field("Guidance on specific interventions", w.InterventionGuidance)),
		section("5. Capacity for involvement", fields("Capacity", fromMap(capacityWords)(w.Capacity), "How capacity is lacking", w.CapacityHow)),
		section("6. Involvement in making this plan", fields("Involvement", fromMap(involvementWords)(w.Involvement),
			"Date", app.FormatDate(w.InvolvementDate), "Who was involved", w.InvolvedWho, "Where the record of the discussion is", w.RecordLocation)),
		section("7. Clinician signatures", fields(
			"Clinician", signature(w.ClinicianName, w.ClinicianRole, w.ClinicianReg, w.ClinicianAt),
			"Senior responsible clinician", signature(w.SeniorName, w.SeniorRole, w.SeniorReg, w.SeniorAt))),
		section("8. Emergency contacts and those involved", append([]fyne.CanvasObject{field("Discussed with", w.DiscussionWith)}, contacts...)...),
		section("9. Reviews", reviews...),
		section("End-of-life plan",
			fields("CPR decision date", app.FormatDate(w.CPRDecisionDate), "CPR decision review date", app.FormatDate(w.CPRReviewDate),
				"Where the ReSPECT form is", w.FormLocation, "Told of the CPR decision", told,
				"Preferred place of care", fromMap(nil)(w.PlaceOfCare), "Prognosis", w.Prognosis,
				"Anticipatory (just in case) medicines", w.AnticipatoryMeds, "Kept", w.AnticipatoryMedsAt,
				"Plan status", fromMap(nil)(w.PlanStatus), "Approved by", w.PlanApprover),
			container.NewGridWithColumns(2, t.decision(v.PlaceOfDeath), t.decision(v.ADRT)), t.decision(v.Allergies)),
	)
	t.box.Objects = objs
	t.box.Refresh()
}

func signature(name, role, reg, at string) string {
	if name == "" {
		return ""
	}
	s := name
	for _, p := range []string{role, reg, app.FormatDateTime(at)} {
		if p != "" {
			s += ", " + p
		}
	}
	return s
}

func (t *wishesTab) onEdit()   { t.edit = showWishesEdit(t.u, t.rs, t.view) }
func (t *wishesTab) onReview() { t.review = showRespectReview(t.u, t.rs) }

// wishesEdit edits the ordinary and clinical fields of the advance wishes.
type wishesEdit struct {
	u     *UI
	rs    *residentScreen
	w     record.Wishes
	form  *fieldForm
	binds []func() // copy the widgets into w
	save  *widget.Button
	dlg   dialog.Dialog
	entry map[string]*widget.Entry // by field key (tests)
}

func showWishesEdit(u *UI, rs *residentScreen, v *app.WishesView) *wishesEdit {
	e := &wishesEdit{u: u, rs: rs, w: v.Wishes, form: newFieldForm(), entry: map[string]*widget.Entry{}}
	clinical := v.CanEditClinical
	w := &e.w
	bindEntry := func(key, label string, p *string, isClinical, long bool, show, store func(string) string) {
		var en *widget.Entry
		if long {
			en = u.multiline("", 2)
		} else {
			en = u.entry("")
		}
		en.SetText(show(*p))
		if isClinical && !clinical {
			en.Disable()
		}
		e.entry[key] = en
		e.form.add(key, label, en)
		e.binds = append(e.binds, func() { *p = store(en.Text) })
	}
	same := func(s string) string { return s }
	plain := func(key, label string, p *string, isClinical, long bool) {
		bindEntry(key, label, p, isClinical, long, same, same)
	}
	date := func(key, label string, p *string, isClinical bool) {
		bindEntry(key, label, p, isClinical, false, app.FormatDate, app.NormaliseDate)
	}
	stamp := func(key, label string, p *string) {
		bindEntry(key, label, p, true, false, app.FormatDateTime, app.NormaliseDateTime)
	}
	pick := func(key, label string, p *string, values []string, l func(string) string, isClinical bool) {
		c := u.choice(append([]string{""}, values...), l, nil)
		c.SetValue(*p)
		if isClinical && !clinical {
			c.Disable()
		}
		e.form.add(key, label, c)
		e.binds = append(e.binds, func() { *p = c.Value() })
	}
	tick := func(label string, p *bool) {
		c := u.check(label, nil)
		c.SetChecked(*p)
		e.form.add("", "", c)
		e.binds = append(e.binds, func() { *p = c.Checked })
	}
	f := e.form
	if !clinical {
		f.message.SetText("Greyed fields are clinical: only a registered clinician can change them.")
		f.message.Importance = widget.MediumImportance
		f.message.Show()
	}
	f.section("1. This plan belongs to")
	date("completedOn", "Completed on", &w.CompletedOn, false)
	f.section("2. Shared understanding of my health")
	plain("summary", "Summary", &w.Summary, false, true)
	plain("otherDocuments", "Other documents", &w.OtherDocuments, false, false)
	pick("proxy", "Legal welfare proxy", &w.Proxy, record.ProxyPresences, fromMap(proxyWords), false)
	plain("proxyType", "Type of proxy", &w.ProxyType, false, false)
	plain("proxyWho", "Who", &w.ProxyWho, false, false)
	plain("proxyCertificate", "Certificate kept", &w.ProxyCertificate, false, false)
	f.section("3. What matters to me")
	plain("mostValue", "What I most value", &w.MostValue, false, true)
	plain("mostFear", "What I most fear", &w.MostFear, false, true)
	f.section("4. Clinical recommendations")
	plain("interventionGuidance", "Guidance on interventions", &w.InterventionGuidance, true, true)
	f.section("5. Capacity")
	pick("capacity", "Capacity", &w.Capacity, record.Capacities, fromMap(capacityWords), true)
	plain("capacityHow", "How capacity is lacking", &w.CapacityHow, true, false)
	f.section("6. Involvement")
	pick("involvement", "Involvement", &w.Involvement, record.Involvements, fromMap(involvementWords), true)
	date("involvementDate", "Date", &w.InvolvementDate, false)
	plain("involvedWho", "Who was involved", &w.InvolvedWho, false, false)
	plain("recordLocation", "Record of discussion kept", &w.RecordLocation, false, false)
	f.section("7. Clinician signatures")
	plain("clinicianName", "Clinician", &w.ClinicianName, true, false)
	plain("clinicianRole", "Role", &w.ClinicianRole, true, false)
	plain("clinicianReg", "Registration number", &w.ClinicianReg, true, false)
	stamp("clinicianAt", "Signed at", &w.ClinicianAt)
	plain("seniorName", "Senior responsible clinician", &w.SeniorName, true, false)
	plain("seniorRole", "Role", &w.SeniorRole, true, false)
	plain("seniorReg", "Registration number", &w.SeniorReg, true, false)
	stamp("seniorAt", "Signed at", &w.SeniorAt)
	f.section("8. Those involved")
	plain("discussionWith", "Discussed with", &w.DiscussionWith, false, false)
	f.section("End-of-life plan")
	date("cprDecisionDate", "CPR decision date", &w.CPRDecisionDate, true)
	date("cprReviewDate", "CPR review date", &w.CPRReviewDate, true)
	plain("formLocation", "Where the ReSPECT form is", &w.FormLocation, false, false)
	tick("The person was told of the CPR decision", &w.PersonTold)
	tick("The family was told of the CPR decision", &w.FamilyTold)
	plain("notToldWhy", "If not told, why", &w.NotToldWhy, false, false)
	pick("placeOfCare", "Preferred place of care", &w.PlaceOfCare, record.Places, record.Label, false)
	plain("anticipatoryMeds", "Anticipatory medicines", &w.AnticipatoryMeds, true, false)
	plain("anticipatoryMedsAt", "Kept", &w.AnticipatoryMedsAt, false, false)
	plain("prognosis", "Prognosis", &w.Prognosis, true, false)
	pick("planStatus", "Plan status", &w.PlanStatus, record.PlanStatuses, words, true)
	plain("planApprover", "Approved by", &w.PlanApprover, true, false)

	e.save = u.primary("Save", e.onSave)
	body := container.NewVBox(f.object(), container.NewHBox(tall(e.save), u.button("Cancel", func() { e.dlg.Hide() })))
	e.dlg = u.showDialog("Advance wishes: "+rs.fs.Name, u.scroll(body), fyne.NewSize(900, 720))
	return e
}

func (e *wishesEdit) onSave() {
	for _, b := range e.binds {
		b()
	}
	saved, err := e.u.app.UpdateWishes(e.rs.id, e.w)
	e.rs.closeSaved(e.form, e.dlg, saved, err)
}

// respectReviewForm records a ReSPECT review (section 9).
type respectReviewForm struct {
	u         *UI
	rs        *residentScreen
	form      *fieldForm
	date      *widget.Entry
	clinician *widget.Entry
	relevant  *widget.Check
	save      *widget.Button
	dlg       dialog.Dialog
}

func showRespectReview(u *UI, rs *residentScreen) *respectReviewForm {
	r := &respectReviewForm{u: u, rs: rs, form: newFieldForm()}
	me := u.app.CurrentUser()
	r.date = u.entry("")
	r.date.SetText(app.FormatDate(u.app.Today()))
	r.clinician = u.entry("")
	r.clinician.SetText(signature(me.Name, me.Role.Label(), me.RegNo, ""))
	r.relevant = u.check("The plan remains relevant", nil)
	r.relevant.SetChecked(true)
	r.form.add("reviews.date", "Date", r.date)
	r.form.add("reviews.clinician", "Reviewing clinician", r.clinician)
	r.form.add("", "", r.relevant)
	r.save = u.primary("Record review", r.onSave)
	body := container.NewVBox(r.form.object(), container.NewHBox(r.save, u.button("Cancel", func() { r.dlg.Hide() })))
	r.dlg = u.showDialog("ReSPECT review: "+rs.fs.Name, body, fyne.NewSize(620, 320))
	return r
}

func (r *respectReviewForm) onSave() {
	saved, err := r.u.app.AddRespectReview(r.rs.id, record.Review{Date: app.NormaliseDate(r.date.Text), Clinician: r.clinician.Text, RemainsRelevant: r.relevant.Checked})
	r.rs.closeSaved(r.form, r.dlg, saved, err)
}
