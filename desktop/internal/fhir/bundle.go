package fhir

import (
	"crypto/sha1"
	"encoding/json"
	"fmt"
	"html"
	"strings"
	"time"

	r4 "github.com/samply/golang-fhir-models/fhir-models/fhir"

	"haven/shared/record"
)

// Systems, profiles and codes. Where each comes from is listed in the
// README's "FHIR export" section.
const (
	SystemNHSNumber = "https://fhir.nhs.uk/Id/nhs-number"
	SystemSNOMED    = "http://snomed.info/sct"
	systemODS       = "https://fhir.nhs.uk/Id/ods-organization-code"

	extNHSVerification    = "https://fhir.hl7.org.uk/StructureDefinition/Extension-UKCore-NHSNumberVerificationStatus"
	systemNHSVerification = "https://fhir.hl7.org.uk/CodeSystem/UKCore-NHSNumberVerificationStatusEngland"

	systemConsentScope    = "http://terminology.hl7.org/CodeSystem/consentscope"
	systemConsentCategory = "http://terminology.hl7.org/CodeSystem/consentcategorycodes"
	systemFlagCategory    = "http://terminology.hl7.org/CodeSystem/flag-category"
	systemAllergyClinical = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
	systemAllergyVerified = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
	systemConditionCat    = "http://terminology.hl7.org/CodeSystem/condition-category"
	systemConditionStatus = "http://terminology.hl7.org/CodeSystem/condition-clinical"
	systemObservationCat  = "http://terminology.hl7.org/CodeSystem/observation-category"
	systemProvenanceAgent = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"

	// SNOMED CT concepts the standards name for what Haven exports.
	SCTNoKnownAllergy   = "716186003"        // UK Core allergy code value set: no known allergy
	SCTNEWS2Total       = "1104051000000101" // RCP NEWS2 total score
	SCTForCPR           = "450475007"        // for attempted CPR (EPaCCS, SCCI1580)
	SCTNotForCPR        = "450476008"        // not for attempted CPR (EPaCCS, SCCI1580)
	profileBase         = "https://fhir.hl7.org.uk/StructureDefinition/UKCore-"
	xhtmlNamespace      = "http://www.w3.org/1999/xhtml"
	bundleIdentifierURI = "urn:ietf:rfc:3986"
)

// Profile is the UK Core profile URL of a resource type.
func Profile(resourceType string) string { return profileBase + resourceType }

var nhsVerificationWords = map[string]string{
	"01": "Number present and verified", "02": "Number present but not traced", "03": "Trace required",
	"04": "Trace attempted - No match or multiple match found",
	"05": "Trace needs to be resolved - (NHS number or patient detail conflict)", "06": "Trace in progress",
	"07": "Number not present and trace not required", "08": "Trace postponed (baby under six weeks old)",
}

// regSystems are the UK Core identifier systems of professional
// registrations, by the prefix Haven stores them with ("GMC 7000001").
var regSystems = map[string]string{
	"GMC": "https://fhir.hl7.org.uk/Id/gmc-number", "NMC": "https://fhir.hl7.org.uk/Id/nmc-number",
	"HCPC": "https://fhir.hl7.org.uk/Id/hcpc-number",
}

// namespace seeds every resource ID: a UUID of Haven's own, so that IDs
// made from a record ID never collide with another system's name-based UUIDs.
var namespace = [16]byte{0x5b, 0x1f, 0x0c, 0x3e, 0x8a, 0x44, 0x4e, 0x1d, 0x9c, 0x61, 0x2a, 0x70, 0x0e, 0x42, 0xd3, 0x17}

// ResourceID is the ID of the resource holding key in the export of record
// recordID: a name-based (version 5) UUID, the same in every export.
func ResourceID(recordID, key string) string {
	h := sha1.New()
	h.Write(namespace[:])
	h.Write([]byte(recordID + "\x00" + key))
	u := h.Sum(nil)[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// Keys of the resources whose IDs callers and tests look up.
const (
	KeyPatient     = "patient"
	KeyComposition = "composition"
	KeyEndOfLife   = "careplan/advance-care-plan"
)

// ConsentKey is the key of the Consent a decision of kind k becomes.
func ConsentKey(k record.Kind) string { return "consent/" + string(k) }

// DisputeKey is the key of the Flag a disputed decision becomes.
func DisputeKey(k record.Kind, subject string) string {
	if subject == "" {
		return "flag/dispute/" + string(k)
	}
	return "flag/dispute/" + string(k) + "/" + subject
}

// builder accumulates the bundle's entries and the Composition's sections.
type builder struct {
	r        *Record
	patient  r4.Reference
	entries  []r4.BundleEntry
	sections []*section
	err      error
}

type section struct {
	title   string
	lines   []string
	entries []r4.Reference
}

func (b *builder) section(title string) *section {
	s := &section{title: title}
	b.sections = append(b.sections, s)
	return s
}

func (s *section) say(format string, args ...any) {
	s.lines = append(s.lines, fmt.Sprintf(format, args...))
}

// Build returns the record's document bundle as JSON.
func Build(r *Record) ([]byte, error) {
	b := &builder{r: r}
	b.patient = ref(ResourceID(r.ID, KeyPatient))
	b.addPatient()
	b.decisions()
	b.allergies()
	b.alerts()
	b.carePlan()
	b.endOfLife()
	b.contacts()
	b.health()
	b.about()
	if b.err != nil {
		return nil, b.err
	}
	comp, err := b.composition()
	if err != nil {
		return nil, err
	}
	ts := r.Exported.UTC().Format(time.RFC3339)
	bundle := r4.Bundle{
		Id:   ptr(ResourceID(r.ID, "bundle/"+ts)),
		Meta: &r4.Meta{Profile: []string{Profile("Bundle")}},
		// A document's identifier names this one instance: the record
		// and the moment it was exported.
		Identifier: &r4.Identifier{System: ptr(bundleIdentifierURI), Value: ptr("urn:uuid:" + ResourceID(r.ID, "document/"+ts))},
		Type:       r4.BundleTypeDocument,
		Timestamp:  ptr(ts),
		Entry:      append([]r4.BundleEntry{comp}, b.entries...),
	}
	return json.MarshalIndent(bundle, "", " ")
}

// add puts a resource in the bundle under its ID and returns a reference
// to it.
func (b *builder) add(id string, resource any) r4.Reference {
	raw, err := json.Marshal(resource)
	if err != nil && b.err == nil {
		b.err = err
	}
	b.entries = append(b.entries, r4.BundleEntry{FullUrl: ptr("urn:uuid:" + id), Resource: raw})
	return ref(id)
}

func ref(id string) r4.Reference { return r4.Reference{Reference: ptr("urn:uuid:" + id)} }

func ptr[T any](v T) *T { return &v }

func meta(resourceType string) *r4.Meta { return &r4.Meta{Profile: []string{Profile(resourceType)}} }

func text(s string) r4.CodeableConcept { return r4.CodeableConcept{Text: ptr(s)} }

func coded(system, code, display, words string) r4.CodeableConcept {
	c := r4.Coding{System: ptr(system), Code: ptr(code)}
	if display != "" {
		c.Display = ptr(display)
	}
	cc := r4.CodeableConcept{Coding: []r4.Coding{c}}
	if words != "" {
		cc.Text = ptr(words)
	}
	return cc
}

// person is a reference to a member of staff by name, with their
// professional registration as an identifier where Haven knows its system.
func person(words, regNo string) r4.Reference {
	r := r4.Reference{Display: ptr(words)}
	if prefix, number, ok := strings.Cut(regNo, " "); ok {
		if sys, ok := regSystems[prefix]; ok {
			r.Identifier = &r4.Identifier{System: ptr(sys), Value: ptr(number)}
		}
	}
	return r
}

// at is a stored RFC 3339 time in words, in UTC so that the export reads
// the same wherever it is made.
func at(ts string) string {
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return ts
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}

func (b *builder) addPatient() {
	id := b.r.Identity
	nhs := r4.Identifier{System: ptr(SystemNHSNumber), Value: ptr(id.NHSNumber)}
	if words, ok := nhsVerificationWords[id.NHSVerification]; ok {
		nhs.Extension = []r4.Extension{{Url: extNHSVerification,
			ValueCodeableConcept: ptr(coded(systemNHSVerification, id.NHSVerification, words, ""))}}
	}
	p := r4.Patient{Id: ptr(ResourceID(b.r.ID, KeyPatient)), Meta: meta("Patient"), Identifier: []r4.Identifier{nhs},
		Active: ptr(id.Status == "" || id.Status == record.StatusActive)}
	name := r4.HumanName{Use: ptr(r4.NameUseOfficial), Family: nonEmpty(id.FamilyName)}
	if id.GivenName != "" {
		name.Given = []string{id.GivenName}
	}
	p.Name = []r4.HumanName{name}
	if id.PreferredName != "" {
		p.Name = append(p.Name, r4.HumanName{Use: ptr(r4.NameUseUsual), Given: []string{id.PreferredName}})
	}
	if g, ok := genders[id.Sex]; ok {
		p.Gender = &g
	}
	if _, err := time.Parse(record.DateLayout, id.DateOfBirth); err == nil {
		p.BirthDate = &id.DateOfBirth
	}
	if id.Status == record.StatusDied {
		if d := date(id.StatusDate); d != nil {
			p.DeceasedDateTime = d
		} else {
			p.DeceasedBoolean = ptr(true)
		}
	}
	if id.GPPractice != "" {
		p.GeneralPractitioner = []r4.Reference{{Identifier: &r4.Identifier{System: ptr(systemODS), Value: ptr(id.GPPractice)}}}
	}
	if id.Language != "" {
		p.Communication = []r4.PatientCommunication{{Language: text(id.Language), Preferred: ptr(true)}}
	}
	b.add(*p.Id, p)
}

var genders = map[string]r4.AdministrativeGender{
	"female": r4.AdministrativeGenderFemale, "male": r4.AdministrativeGenderMale,
	"other": r4.AdministrativeGenderOther, "unknown": r4.AdministrativeGenderUnknown,
}

// date is a stored date or time as FHIR's date and dateTime take it, or
// nil when it is empty or not one: a malformed value written by another
// client is left out rather than making the document invalid.
func date(s string) *string {
	if _, err := time.Parse(record.DateLayout, s); err == nil {
		return &s
	}
	if _, err := time.Parse(time.RFC3339, s); err == nil {
		return &s
	}
	return nil
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// decisionLine says a decision in the Composition's words. A decision that
// is not exported says why, so the text never reads as if one were.
func decisionLine(label string, d Decision) string {
	switch {
	case d.Exportable():
		s := fmt.Sprintf("%s: %s. Decided by %s, %s.", label, strings.TrimSuffix(d.Text, "."), d.By, at(d.Entry.At))
		if d.Entry.Reason != "" {
			s += " Reason: " + d.Entry.Reason
		}
		return s
	case d.State == NotRecorded && len(d.Unverified) == 0:
		return label + ": not recorded. This document holds no decision for it."
	}
	return label + ": " + disputeWords(d)
}

// disputeWords name every side of a disputed decision and say it is not
// exported as one.
func disputeWords(d Decision) string {
	var parts []string
	switch d.State {
	case Conflict:
		var sides []string
		for _, s := range d.Sides {
			sides = append(sides, fmt.Sprintf("%s (%s, %s)", s.Text, s.By, at(s.At)))
		}
		parts = append(parts, "CONFLICT between decisions that nothing supersedes: "+strings.Join(sides, " versus ")+".")
	case Altered:
		parts = append(parts, d.Text)
	case Settled:
		parts = append(parts, fmt.Sprintf("the verified decision is %s (%s, %s), but the record also holds entries that are not verified decisions.",
			d.Text, d.By, at(d.Entry.At)))
	case NotRecorded:
		parts = append(parts, "no verified decision is recorded.")
	}
	for _, u := range d.Unverified {
		parts = append(parts, fmt.Sprintf("Unverified entry, not a decision: %s, %s, %s (%s).", u.Text, u.Claimed, at(u.At), u.Why))
	}
	parts = append(parts, "Not exported as a decision: check the paper form and ask a permitted clinician to settle it.")
	return strings.Join(parts, " ")
}

// dispute adds the Flag a decision that is not exportable becomes, if it
// is disputed (a decision simply not recorded needs none), and returns
// whether it did.
func (b *builder) dispute(s *section, label string, d Decision, subject string) bool {
	if d.Exportable() || (d.State == NotRecorded && len(d.Unverified) == 0) {
		return false
	}
	id := ResourceID(b.r.ID, DisputeKey(d.Kind, subject))
	f := r4.Flag{Id: ptr(id), Meta: meta("Flag"), Status: r4.FlagStatusActive,
		Category: []r4.CodeableConcept{coded(systemFlagCategory, "safety", "Safety", "")},
		Code:     text(label + " is disputed: " + disputeWords(d)), Subject: b.patient}
	s.entries = append(s.entries, b.add(id, f))
	return true
}

// provenance adds who made a decision, and when, for the resources it
// became.
func (b *builder) provenance(d Decision, targets ...r4.Reference) {
	e := d.Entry
	p := r4.Provenance{Id: ptr(ResourceID(b.r.ID, "provenance/"+e.ID)), Meta: meta("Provenance"), Target: targets, Recorded: e.At,
		Agent: []r4.ProvenanceAgent{{Type: ptr(coded(systemProvenanceAgent, "author", "Author", "")),
			Who: person(d.By, e.Author.RegNo)}}}
	b.add(*p.Id, p)
}

// consent adds the Consent a settled decision of the ReSPECT plan (or an
// ADRT) becomes.
func (b *builder) consent(d Decision, category []r4.CodeableConcept, rule string, provision r4.ConsentProvision) r4.Reference {
	id := ResourceID(b.r.ID, ConsentKey(d.Kind))
	c := r4.Consent{Id: ptr(id), Meta: meta("Consent"), Status: r4.ConsentStateActive,
		Scope:    coded(systemConsentScope, "adr", "Advanced Care Directive", ""),
		Category: append([]r4.CodeableConcept{coded(systemConsentCategory, "acd", "Advance Directive", "")}, category...),
		Patient:  &b.patient, DateTime: ptr(d.Entry.At), Performer: []r4.Reference{person(d.By, d.Entry.Author.RegNo)},
		PolicyRule: ptr(text(rule)), Provision: &provision}
	if b.r.Organisation != "" {
		c.Organization = []r4.Reference{{Display: ptr(b.r.Organisation)}}
	}
	r := b.add(id, c)
	b.provenance(d, r)
	return r
}

const respectRule = "ReSPECT recommendation: a clinical recommendation made with the person or those close to them, not a legally binding order"

// decisions adds the CPR recommendation, clinical focus, ceiling of
// treatment and ADRT as Consents, or as Flags when disputed.
func (b *builder) decisions() {
	s := b.section("Resuscitation and ReSPECT recommendations")
	type item struct {
		d     Decision
		label string
	}
	for _, it := range []item{{b.r.CPR, "CPR recommendation"}, {b.r.Focus, "Clinical focus"},
		{b.r.Ceiling, "Ceiling of treatment"}, {b.r.ADRT, "Advance decision to refuse treatment"}} {
		s.say("%s", decisionLine(it.label, it.d))
		if b.dispute(s, it.label, it.d, "") || !it.d.Exportable() {
			continue
		}
		var r r4.Reference
		switch it.d.Kind {
		case record.KindCPR:
			code, typ := SCTForCPR, r4.ConsentProvisionTypePermit
			if it.d.Entry.Text() == record.CPRNotRecommended {
				code, typ = SCTNotForCPR, r4.ConsentProvisionTypeDeny
			}
			r = b.consent(it.d, []r4.CodeableConcept{coded(SystemSNOMED, code, "", it.d.Text)}, respectRule,
				r4.ConsentProvision{Type: &typ, Code: []r4.CodeableConcept{text("Cardiopulmonary resuscitation: " + it.d.Text)}})
		case record.KindFocus, record.KindCeiling:
			r = b.consent(it.d, []r4.CodeableConcept{text(it.label)}, respectRule,
				r4.ConsentProvision{Code: []r4.CodeableConcept{text(it.label + ": " + it.d.Text)}})
		case record.KindADRT:
			var v record.ADRT
			if it.d.Entry.Decode(&v) != nil || v.Exists != "yes" {
				continue // no ADRT, or not known: the line above says which
			}
			deny := r4.ConsentProvisionTypeDeny
			r = b.consent(it.d, []r4.CodeableConcept{text(it.label)},
				"Advance decision to refuse treatment under the Mental Capacity Act 2005",
				r4.ConsentProvision{Type: &deny, Code: []r4.CodeableConcept{text(it.d.Text)}})
		}
		s.entries = append(s.entries, r)
	}
}

// allergies adds the allergy statement: an AllergyIntolerance per agent,
// or one carrying the "no known allergy" code.
func (b *builder) allergies() {
	s := b.section("Allergies and adverse reactions")
	d := b.r.Allergies
	s.say("%s", decisionLine("Allergies", d))
	if b.dispute(s, "The allergy record", d, "") || !d.Exportable() {
		return
	}
	var v record.Allergies
	if err := d.Entry.Decode(&v); err != nil {
		s.say("The allergy decision could not be read: it is not exported.")
		return
	}
	base := func(key string) r4.AllergyIntolerance {
		return r4.AllergyIntolerance{Id: ptr(ResourceID(b.r.ID, key)), Meta: meta("AllergyIntolerance"),
			ClinicalStatus: ptr(coded(systemAllergyClinical, "active", "Active", "")), Patient: b.patient,
			RecordedDate: ptr(d.Entry.At), Recorder: ptr(person(d.By, d.Entry.Author.RegNo))}
	}
	var refs []r4.Reference
	if v.NoneKnown {
		a := base("allergy/none-known")
		a.Code = ptr(coded(SystemSNOMED, SCTNoKnownAllergy, "No known allergy", "No known allergies"))
		refs = append(refs, b.add(*a.Id, a))
	}
	for i, al := range v.Items {
		a := base(fmt.Sprintf("allergy/%s/%d", d.Entry.ID, i))
		a.Code = ptr(text(al.Agent))
		verified := "unconfirmed"
		if al.Verified || al.Certainty == "confirmed" {
			verified = "confirmed"
		}
		a.VerificationStatus = ptr(coded(systemAllergyVerified, verified, "", ""))
		a.OnsetDateTime = date(al.Date)
		if al.Reaction != "" || al.Severity != "" {
			re := r4.AllergyIntoleranceReaction{Manifestation: []r4.CodeableConcept{text(orWords(al.Reaction, "Reaction not described"))}}
			if sev, ok := severities[al.Severity]; ok {
				re.Severity = &sev
			}
			a.Reaction = []r4.AllergyIntoleranceReaction{re}
		}
		refs = append(refs, b.add(*a.Id, a))
	}
	if len(refs) > 0 {
		b.provenance(d, refs...)
	}
	s.entries = append(s.entries, refs...)
}

var severities = map[string]r4.AllergyIntoleranceSeverity{
	"mild": r4.AllergyIntoleranceSeverityMild, "moderate": r4.AllergyIntoleranceSeverityModerate, "severe": r4.AllergyIntoleranceSeveritySevere,
}

func orWords(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}

// alerts adds the front sheet's alerts, a withdrawn consent to share and
// the last phase of life as Flags, and any rule the record's history
// breaks.
func (b *builder) alerts() {
	s := b.section("Alerts")
	flag := func(key, words, since string, category r4.CodeableConcept) {
		id := ResourceID(b.r.ID, key)
		f := r4.Flag{Id: ptr(id), Meta: meta("Flag"), Status: r4.FlagStatusActive, Category: []r4.CodeableConcept{category},
			Code: text(words), Subject: b.patient}
		if d := date(since); d != nil {
			f.Period = &r4.Period{Start: d}
		}
		s.entries = append(s.entries, b.add(id, f))
		s.say("%s", words)
	}
	clinical := coded(systemFlagCategory, "clinical", "Clinical", "")
	safety := coded(systemFlagCategory, "safety", "Safety", "")
	if b.r.Identity.ConsentWithdrawn {
		flag("flag/consent-withdrawn", "The person has withdrawn consent to share this record: share it only under a new decision", "", safety)
	}
	if b.r.PlanPublished != "" {
		flag("flag/last-phase-of-life", "Last phase of life: an end-of-life plan (ReSPECT) is in place", b.r.PlanPublished,
			coded(systemFlagCategory, "advance-directive", "Advance Directive", ""))
	}
	for _, al := range b.r.Alerts {
		key := "flag/alert/" + al.ID
		if al.ID == "" {
			key = "flag/rule/" + al.Text
		}
		flag(key, al.Text, al.Since, clinical)
	}
	if len(b.r.Altered) > 0 {
		flag("flag/record-altered", "This record's history breaks Haven's rules on the computer that exported it ("+
			strings.Join(b.r.Altered, ", ")+"): check it against the paper record", "", safety)
	}
	if len(s.lines) == 0 {
		s.say("No alerts recorded.")
	}
}

// carePlan adds a CarePlan for each area of care that holds a plan.
func (b *builder) carePlan() {
	s := b.section("Care plan")
	for _, e := range b.r.CarePlan {
		if e.Need == "" && e.Support == "" && e.Goal == "" {
			continue
		}
		label := e.Domain.Label()
		id := ResourceID(b.r.ID, "careplan/"+string(e.Domain))
		cp := r4.CarePlan{Id: ptr(id), Meta: meta("CarePlan"), Status: r4.RequestStatusActive, Intent: r4.CarePlanIntentPlan,
			Category: []r4.CodeableConcept{text(label)}, Title: ptr("Care plan: " + label), Description: nonEmpty(e.Need),
			Subject: b.patient, Created: date(e.UpdatedAt)}
		if e.UpdatedBy != "" {
			cp.Author = &r4.Reference{Display: ptr(e.UpdatedBy)}
		}
		for _, n := range [][2]string{{"Level of need", e.Level}, {"Goal", e.Goal}, {"How to support me", e.Support},
			{"Please do", e.PleaseDo}, {"Please don't", e.PleaseDont}, {"Agreed with", e.AgreedWith},
			{"Review due", e.ReviewDue}, {"Reviewer", e.Reviewer}, {"Last reviewed", e.LastReviewed}} {
			if n[1] != "" {
				cp.Note = append(cp.Note, r4.Annotation{Text: n[0] + ": " + n[1]})
			}
		}
		if e.ScoreTool != "" {
			cp.Note = append(cp.Note, r4.Annotation{Text: fmt.Sprintf("%s score %d (%s)", e.ScoreTool, e.Score, orWords(e.ScoreDate, "date not recorded"))})
		}
		s.entries = append(s.entries, b.add(id, cp))
		s.say("%s: %s", label, orWords(e.Need, e.Support))
	}
	if len(s.entries) == 0 {
		s.say("No care plan recorded.")
	}
}

var planStatuses = map[string]r4.RequestStatus{
	"draft": r4.RequestStatusDraft, "published": r4.RequestStatusActive,
	// A superseded plan is no longer to be acted on.
	"superseded": r4.RequestStatusRevoked,
}

// endOfLife adds the end-of-life plan: what matters to the person, where
// they wish to be cared for and to die, and where the ReSPECT form and
// anticipatory medicines are.
func (b *builder) endOfLife() {
	s := b.section("End-of-life plan")
	w := b.r.Wishes
	status, ok := planStatuses[w.PlanStatus]
	if !ok {
		status = r4.RequestStatusUnknown
	}
	id := ResourceID(b.r.ID, KeyEndOfLife)
	cp := r4.CarePlan{Id: ptr(id), Meta: meta("CarePlan"), Status: status, Intent: r4.CarePlanIntentPlan,
		Category: []r4.CodeableConcept{text("Advance care plan (ReSPECT and end-of-life plan)")}, Title: ptr("End-of-life plan (ReSPECT)"),
		Description: nonEmpty(w.Summary), Subject: b.patient, Created: date(w.CompletedOn)}
	if w.PlanApprover != "" {
		cp.Author = &r4.Reference{Display: ptr(w.PlanApprover)}
	}
	pod := b.r.PlaceOfDeath
	podLine := decisionLine("Preferred place of death", pod)
	s.say("%s", podLine)
	b.dispute(s, "The preferred place of death", pod, "")
	notes := [][2]string{{"What matters most to me", w.MostValue}, {"What I most fear or wish to avoid", w.MostFear},
		{"Preferred place of care", labelled(w.PlaceOfCare)}}
	if pod.Exportable() {
		notes = append(notes, [2]string{"Preferred place of death", pod.Text})
	}
	// Whether the person and family were told is held as yes or nothing:
	// "no" is said only where the record gives a reason.
	told, familyTold := "", ""
	if w.PersonTold {
		told = "yes"
	} else if w.NotToldWhy != "" {
		told = "no"
	}
	if w.FamilyTold {
		familyTold = "yes"
	} else if w.NotToldWhy != "" {
		familyTold = "no"
	}
	notes = append(notes, [][2]string{{"Other care-planning documents", w.OtherDocuments}, {"Prognosis", w.Prognosis},
		{"Capacity for involvement", capacityWords[w.Capacity]}, {"How capacity is lacking", w.CapacityHow},
		{"Involvement", w.Involvement}, {"Involved in the discussion", w.InvolvedWho}, {"Legal welfare proxy", joinNonEmpty(", ", w.Proxy, w.ProxyType, w.ProxyWho)},
		{"Guidance on specific interventions", w.InterventionGuidance}, {"CPR decision date", w.CPRDecisionDate},
		{"CPR review date", w.CPRReviewDate}, {"Where the original ReSPECT form is", w.FormLocation},
		{"Anticipatory medicines", w.AnticipatoryMeds}, {"Where anticipatory medicines are kept", w.AnticipatoryMedsAt},
		{"Person told of the CPR decision", told}, {"Family told of the CPR decision", familyTold}, {"Why not told", w.NotToldWhy}}...)
	for _, n := range notes {
		if n[1] != "" {
			cp.Note = append(cp.Note, r4.Annotation{Text: n[0] + ": " + n[1]})
			s.say("%s: %s", n[0], n[1])
		}
	}
	r := b.add(id, cp)
	s.entries = append(s.entries, r)
	if pod.Exportable() {
		b.provenance(pod, r)
	}
}

var capacityWords = map[string]string{
	"has": "Has capacity to be involved", "does-not-have": "Does not have capacity to be involved",
	"indeterminate": "Capacity indeterminate",
}

func labelled(v string) string {
	if v == "" {
		return ""
	}
	return record.Label(v)
}

func joinNonEmpty(sep string, parts ...string) string {
	var out []string
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, sep)
}

// contacts adds personal contacts as RelatedPersons, each attorney with
// their authority over life-sustaining treatment when it is settled.
// Professional contacts are named in the section's text.
func (b *builder) contacts() {
	s := b.section("Contacts and attorneys")
	for _, c := range b.r.Contacts {
		phones := joinNonEmpty("; ", prefixed("day ", c.PhoneDay), prefixed("night ", c.PhoneNight))
		if c.Kind != "personal" {
			s.say("%s (%s%s): %s", c.Name, c.Role, prefixed(", ", c.Organisation), orWords(phones, "no phone recorded"))
			continue
		}
		id := ResourceID(b.r.ID, "related/"+c.ID)
		rp := r4.RelatedPerson{Id: ptr(id), Meta: meta("RelatedPerson"), Active: ptr(true), Patient: b.patient,
			Name: []r4.HumanName{{Text: ptr(c.Name)}}}
		rel := []r4.CodeableConcept{}
		if c.Relationship != "" {
			rel = append(rel, text(c.Relationship))
		}
		line := fmt.Sprintf("%s (%s, %s): %s", c.Name, orWords(c.Relationship, "relationship not recorded"), c.Role, orWords(phones, "no phone recorded"))
		if c.CallAtNight {
			line += "; may be called at night"
		}
		authority, isAttorney := b.r.Authority[c.ID]
		if c.Role == "attorney" {
			lpa := "Attorney under a lasting power of attorney for health and welfare, not registered with the Office of the Public Guardian"
			if c.LPARegistered {
				lpa = "Attorney under a lasting power of attorney for health and welfare, registered with the Office of the Public Guardian"
			}
			rel = append(rel, text(lpa))
			if !isAttorney {
				authority = Decision{Kind: record.KindAttorney, State: NotRecorded}
			}
			if authority.Exportable() {
				rel = append(rel, text(authority.Text))
			}
			line += ". " + decisionLine("Authority over life-sustaining treatment", authority)
		} else if c.Role != "" {
			rel = append(rel, text(c.Role))
		}
		if len(rel) > 0 {
			rp.Relationship = rel
		}
		for i, p := range []string{c.PhoneDay, c.PhoneNight} {
			if p != "" {
				rp.Telecom = append(rp.Telecom, r4.ContactPoint{System: ptr(r4.ContactPointSystemPhone), Value: ptr(p), Rank: ptr(i + 1)})
			}
		}
		if c.Email != "" {
			rp.Telecom = append(rp.Telecom, r4.ContactPoint{System: ptr(r4.ContactPointSystemEmail), Value: ptr(c.Email)})
		}
		r := b.add(id, rp)
		s.entries = append(s.entries, r)
		s.say("%s", line)
		if c.Role == "attorney" {
			if authority.Exportable() {
				b.provenance(authority, r)
			} else {
				b.dispute(s, "The authority of "+c.Name+" over life-sustaining treatment", authority, c.ID)
			}
		}
	}
	if len(s.lines) == 0 {
		s.say("No contacts recorded.")
	}
}

func prefixed(prefix, s string) string {
	if s == "" {
		return ""
	}
	return prefix + s
}

// health adds the shared understanding of the person's health as a
// Condition and the last NEWS2 as an Observation.
func (b *builder) health() {
	s := b.section("Health and observations")
	w := b.r.Wishes
	if w.Summary != "" {
		id := ResourceID(b.r.ID, "condition/health-summary")
		c := r4.Condition{Id: ptr(id), Meta: meta("Condition"),
			ClinicalStatus: ptr(coded(systemConditionStatus, "active", "Active", "")),
			Category:       []r4.CodeableConcept{coded(systemConditionCat, "problem-list-item", "Problem List Item", "")},
			Code:           ptr(text(w.Summary)), Subject: b.patient}
		if w.Prognosis != "" {
			c.Note = []r4.Annotation{{Text: "Prognosis: " + w.Prognosis}}
		}
		s.entries = append(s.entries, b.add(id, c))
		s.say("Shared understanding of my health: %s", w.Summary)
	}
	switch n := b.r.NEWS2; {
	case n != nil:
		id := ResourceID(b.r.ID, "observation/news2/"+n.NoteID)
		o := r4.Observation{Id: ptr(id), Meta: meta("Observation"), Status: r4.ObservationStatusFinal,
			Category: []r4.CodeableConcept{coded(systemObservationCat, "survey", "Survey", "")},
			Code:     coded(SystemSNOMED, SCTNEWS2Total, "", "NEWS2 total score"), Subject: &b.patient,
			EffectiveDateTime: ptr(n.At), ValueInteger: ptr(n.Total), Performer: []r4.Reference{{Display: ptr(n.By)}}}
		if n.Response != "" {
			o.Interpretation = []r4.CodeableConcept{text(n.Response)}
		}
		s.entries = append(s.entries, b.add(id, o))
		s.say("Last NEWS2: %d at %s, recorded by %s. %s", n.Total, at(n.At), n.By, n.Response)
	case b.r.NotesUnavailable != "":
		s.say("Observations not included: %s", b.r.NotesUnavailable)
	default:
		s.say("No NEWS2 score recorded.")
	}
}

// about says what the document is and what it leaves out.
func (b *builder) about() {
	s := b.section("About this document")
	s.say("Exported from Haven by %s (%s) at %s.", b.r.ExportedBy, orWords(b.r.Organisation, "organisation not known"), b.r.Exported.UTC().Format("2 Jan 2006 15:04 UTC"))
	s.say("Only decisions that are settled and verified (signed by a permitted member of staff) are coded as resources; a disputed decision is a Flag naming each side, and a decision not recorded has no resource.")
	for _, p := range b.r.Problems {
		s.say("Part of the record could not be read and is not included: %s", p)
	}
}

// composition makes the document's first entry from the sections.
func (b *builder) composition() (r4.BundleEntry, error) {
	id := ResourceID(b.r.ID, KeyComposition)
	c := r4.Composition{Id: ptr(id), Meta: meta("Composition"), Status: r4.CompositionStatusFinal,
		Type: text("Care home care plan and advance wishes summary"), Subject: &b.patient,
		Date: b.r.Exported.UTC().Format(time.RFC3339), Author: []r4.Reference{{Display: ptr(orWords(b.r.ExportedBy, "Haven"))}},
		Title: "Care plan and advance wishes"}
	if b.r.Organisation != "" {
		c.Custodian = &r4.Reference{Display: ptr(b.r.Organisation)}
	}
	for _, s := range b.sections {
		var div strings.Builder
		div.WriteString(`<div xmlns="` + xhtmlNamespace + `">`)
		for _, l := range s.lines {
			div.WriteString("<p>" + html.EscapeString(l) + "</p>")
		}
		div.WriteString("</div>")
		cs := r4.CompositionSection{Title: ptr(s.title), Text: &r4.Narrative{Status: r4.NarrativeStatusGenerated, Div: div.String()},
			Entry: s.entries}
		c.Section = append(c.Section, cs)
	}
	raw, err := json.Marshal(c)
	if err != nil {
		return r4.BundleEntry{}, err
	}
	return r4.BundleEntry{FullUrl: ptr("urn:uuid:" + id), Resource: raw}, nil
}
