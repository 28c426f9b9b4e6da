package record

import (
	"errors"
	"strings"
	"testing"

	"haven/shared/nhs"
)

// fieldsOf returns the fields a validation error names, or "" for nil.
func fieldsOf(t *testing.T, err error) string {
	t.Helper()
	if err == nil {
		return ""
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v is not a ValidationError wrapping ErrInvalid", err)
	}
	var out []string
	for _, f := range ve.Fields {
		out = append(out, f.Field)
	}
	return strings.Join(out, ",")
}

func TestValidateIdentity(t *testing.T) {
	live := Rules{NHS: nhs.Live, Now: rules().Now}
	ok := identity()
	ok.Status = StatusActive
	for _, tc := range []struct {
		name   string
		edit   func(*Identity)
		rules  Rules
		fields string
	}{
		{"valid", func(*Identity) {}, rules(), ""},
		{"test range refused live", func(*Identity) {}, live, "nhsNumber"},
		{"live number accepted live", func(i *Identity) { i.NHSNumber = "9434765919" }, live, ""},
		{"bad check digit", func(i *Identity) { i.NHSNumber = "9990000017" }, rules(), "nhsNumber"},
		{"spaced number", func(i *Identity) { i.NHSNumber = "999 000 0018" }, rules(), "nhsNumber"},
		{"missing number", func(i *Identity) { i.NHSNumber = "" }, rules(), "nhsNumber"},
		{"future birth", func(i *Identity) { i.DateOfBirth = "2026-11-23" }, rules(), "dateOfBirth"},
		{"born today", func(i *Identity) { i.DateOfBirth = "2026-11-22" }, rules(), ""},
		{"unreal birth year", func(i *Identity) { i.DateOfBirth = "1066-10-14" }, rules(), "dateOfBirth"},
		{"birth not a date", func(i *Identity) { i.DateOfBirth = "02/04/1931" }, rules(), "dateOfBirth"},
		{"sex not in list", func(i *Identity) { i.Sex = "F" }, rules(), "sex"},
		{"verification 09", func(i *Identity) { i.NHSVerification = "09" }, rules(), "nhsVerification"},
		{"names required", func(i *Identity) { i.GivenName, i.FamilyName = " ", "" }, rules(), "familyName,givenName"},
		{"ODS code", func(i *Identity) { i.GPPractice = "e85001" }, rules(), "gpPractice"},
		{"status unknown", func(i *Identity) { i.Status = "gone" }, rules(), "status"},
		{"discharged needs date", func(i *Identity) { i.Status = StatusDischarged }, rules(), "statusDate"},
		{"consent basis", func(i *Identity) { i.ConsentBasis = "implied" }, rules(), "consentBasis"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.edit(&in)
			if got := fieldsOf(t, ValidateIdentity(in, tc.rules)); got != tc.fields {
				t.Fatalf("ValidateIdentity fields = %q, want %q", got, tc.fields)
			}
		})
	}
}

func TestValidateDecision(t *testing.T) {
	gp := Author{UserID: "u", Name: "Dr A", Role: GP, RegNo: "GMC 1", DeviceID: "d"}
	senior := Author{UserID: "u2", Name: "S", Role: SeniorCarer, DeviceID: "d"}
	for _, tc := range []struct {
		name    string
		kind    Kind
		subject string
		value   any
		reason  string
		by      Author
		fields  string
	}{
		{"cpr", KindCPR, "", CPRNotRecommended, "frailty", gp, ""},
		{"cpr needs reason", KindCPR, "", CPRNotRecommended, "", gp, "reason"},
		{"cpr spelling", KindCPR, "", "DNACPR", "x", gp, "cpr"},
		{"cpr wrong type", KindCPR, "", 3, "x", gp, "cpr,cpr"},
		{"cpr by senior carer", KindCPR, "", CPRNotRecommended, "x", senior, "cpr"},
		{"focus", KindFocus, "", FocusComfort, "", gp, ""},
		{"focus label not value", KindFocus, "", "Prioritise comfort", "", gp, "clinicalFocus"},
		{"ceiling", KindCeiling, "", Ceiling{Level: "ward-based-care"}, "", gp, ""},
		{"ceiling level", KindCeiling, "", Ceiling{Level: "icu"}, "", gp, "ceiling.level"},
		{"no known allergies", KindAllergies, "", Allergies{NoneKnown: true}, "", senior, ""},
		{"allergies empty", KindAllergies, "", Allergies{}, "", senior, "allergies"},
		{"allergies both", KindAllergies, "", Allergies{NoneKnown: true, Items: []Allergy{{Agent: "Penicillin"}}}, "", senior, "allergies"},
		{"allergy detail", KindAllergies, "", Allergies{Items: []Allergy{{Agent: "", Severity: "fatal", Date: "2030-01-01"}}}, "", senior, "allergies[0].agent,allergies[0].severity,allergies[0].date"},
		{"allergy verified by carer", KindAllergies, "", Allergies{Items: []Allergy{{Agent: "Latex", Verified: true}}}, "", senior, "allergies[0].verified"},
		{"allergy verified by gp", KindAllergies, "", Allergies{Items: []Allergy{{Agent: "Latex", Verified: true, Severity: "severe", Certainty: "confirmed"}}}, "", gp, ""},
		{"adrt yes needs detail", KindADRT, "", ADRT{Exists: "yes"}, "", senior, "adrt.treatmentsRefused,adrt.location"},
		{"adrt none", KindADRT, "", ADRT{Exists: "no"}, "", senior, ""},
		{"place of death", KindPlaceOfDeath, "", PlaceOfDeath{First: "care-home", Second: "hospice"}, "", senior, ""},
		{"place of death blank", KindPlaceOfDeath, "", PlaceOfDeath{}, "", senior, "placeOfDeath.first"},
		{"place not recorded is explicit", KindPlaceOfDeath, "", PlaceOfDeath{First: "not-recorded"}, "", senior, ""},
		{"attorney needs subject", KindAttorney, "", AttorneyAuthority{}, "", gp, "subject"},
		{"subject only for attorney", KindCPR, "c1", CPRRecommended, "x", gp, "subject"},
		{"unknown kind", Kind("dnar"), "", "x", "", gp, "dnar,kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fieldsOf(t, ValidateDecision(tc.kind, tc.subject, tc.value, tc.reason, tc.by, rules())); got != tc.fields {
				t.Fatalf("fields = %q, want %q", got, tc.fields)
			}
		})
	}
}

func TestValidateContactNoteWishes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		err    error
		fields string
	}{
		{"contact ok", ValidateContact(Contact{Kind: "personal", Name: "Jo", Role: "next-of-kin", PhoneDay: "+44 20 7946 0000"}, rules()), ""},
		{"contact no way to reach", ValidateContact(Contact{Kind: "personal", Name: "Jo", Role: "carer"}, rules()), "phoneDay"},
		{"contact bad phone", ValidateContact(Contact{Kind: "personal", Name: "Jo", Role: "carer", PhoneDay: "call me"}, rules()), "phoneDay"},
		{"contact role by kind", ValidateContact(Contact{Kind: "professional", Name: "Dr", Role: "next-of-kin", Email: "a@b"}, rules()), "role"},
		{"note ok", ValidateNote(Note{Kind: NoteKindNote, Text: "Slept well.", EventAt: "2026-11-22T02:00:00Z"}, rules()), ""},
		{"note empty", ValidateNote(Note{Kind: NoteKindNote, EventAt: "2026-11-22T02:00:00Z"}, rules()), "text"},
		{"note future", ValidateNote(Note{Kind: NoteKindNote, Text: "x", EventAt: "2026-11-23T02:00:00Z"}, rules()), "eventAt"},
		{"call form", ValidateNote(Note{Kind: NoteKindAdviceCall, EventAt: "2026-11-22T02:00:00Z", Call: &AdviceCall{
			Method: "phone", Caller: "Sam", Concern: "fall", Advice: "observe", Outcome: "self-care",
			SoftSigns: []string{"unsteady"}, Observations: &Observations{RespRate: 18, SpO2: 96, Consciousness: "alert", Temperature: 36.8},
		}}, rules()), ""},
		{"call form gaps", ValidateNote(Note{Kind: NoteKindAdviceCall, EventAt: "2026-11-22T02:00:00Z", Call: &AdviceCall{
			Method: "pager", Outcome: "ambulance", SoftSigns: []string{"grumpy"}, Observations: &Observations{SpO2: 101, Consciousness: "asleep"},
		}}, rules()), "call.method,call.caller,call.concern,call.advice,call.outcome,call.softSigns,obs.spo2,obs.acvpu"},
		{"wishes ok", ValidateWishes(Wishes{Proxy: "present", PlaceOfCare: "care-home", PlanStatus: "draft"}, rules()), ""},
		{"wishes enums", ValidateWishes(Wishes{Proxy: "yes", Capacity: "maybe", Involvement: "E", PlaceOfCare: "garden"}, rules()), "proxy,capacity,involvement,placeOfCare"},
		{"signature needs registration", ValidateWishes(Wishes{ClinicianName: "Dr A"}, rules()), "clinicianReg"},
		{"published needs approver", ValidateWishes(Wishes{PlanStatus: "published"}, rules()), "planApprover"},
		{"care plan domain", ValidateCarePlan(CarePlanEntry{Domain: "hair"}, rules()), "domain"},
		{"care plan score date", ValidateCarePlan(CarePlanEntry{Domain: "skin", ScoreTool: "Waterlow", Score: 16}, rules()), "scoreDate"},
	} {
		if got := fieldsOf(t, tc.err); got != tc.fields {
			t.Errorf("%s: fields = %q, want %q (%v)", tc.name, got, tc.fields, tc.err)
		}
	}
}

// Invalid input never reaches the document.
func TestInvalidInputWritesNothing(t *testing.T) {
	gp := editor(t, "Dr Ada Quill", GP)
	doc := newResident(t, gp)
	heads := doc.Heads()
	bad := identity()
	bad.DateOfBirth = "2099-01-01"
	if err := gp.UpdateIdentity(doc, bad); !errors.Is(err, ErrInvalid) {
		t.Fatalf("UpdateIdentity(future birth) = %v", err)
	}
	if _, err := gp.Decide(doc, KindCPR, "", "maybe", "x"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Decide(maybe) = %v", err)
	}
	if _, err := gp.AddContact(doc, Contact{Kind: "personal"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("AddContact(empty) = %v", err)
	}
	if _, err := gp.AddAlert(doc, Alert{Text: "x", Status: "maybe"}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("AddAlert(status maybe) = %v", err)
	}
	if got := doc.Heads(); len(got) != 1 || got[0] != heads[0] {
		t.Fatal("an invalid input changed the document")
	}
}

func TestValidateRegistration(t *testing.T) {
	for _, tc := range []struct {
		role Role
		reg  string
		want string // "" and ok: none; "!" an error
	}{
		{GP, "GMC 7000001", "GMC 7000001"},
		{GP, "gmc  7000001", "GMC 7000001"},
		{GP, "GMC7000001", "GMC 7000001"},
		{GP, "GMC 700001", "!"},
		{GP, "NMC 12A3456E", "!"},
		{GP, "", "!"},
		{HubNurse, "NMC 12A3456E", "NMC 12A3456E"},
		{Nurse, "nmc 12a3456e", "NMC 12A3456E"},
		{Nurse, "NMC 1213456E", "!"},
		{AdviceClinician, "HCPC PA12345", "HCPC PA12345"},
		{AdviceClinician, "GMC 7000002", "GMC 7000002"},
		{AdviceClinician, "HCPC 1234567", "!"},
		{CareWorker, "", ""},
		{HomeManager, "NMC 12A3456E", "!"},
	} {
		got, err := ValidateRegistration(tc.role, tc.reg)
		if tc.want == "!" {
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("ValidateRegistration(%s, %q) = %q, %v; want an error", tc.role, tc.reg, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ValidateRegistration(%s, %q) = %q, %v; want %q", tc.role, tc.reg, got, err, tc.want)
		}
	}
}
