package record

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"haven/shared/cert"
	"haven/shared/nhs"
)

// Rules are what validation depends on beyond the input itself.
type Rules struct {
	// NHS is nhs.Live in production; nhs.Demo only for demo and test data,
	// whose NHS numbers come from the 999 test range.
	NHS nhs.Mode
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Trust verifies decisions: the organisation key and the revocations
	// this device knows. An editor signs a decision only if it verifies.
	Trust *cert.Trust
}

func (r Rules) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// FieldError is one problem with one field, worded for the person who typed it.
type FieldError struct {
	Field   string
	Problem string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Problem }

// ErrInvalid is wrapped by every validation failure.
var ErrInvalid = errors.New("not saved: please correct the highlighted fields")

// ValidationError lists every field problem found in one input.
type ValidationError struct{ Fields []*FieldError }

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.Error()
	}
	return "not saved: " + strings.Join(parts, "; ")
}

func (e *ValidationError) Unwrap() error { return ErrInvalid }

// checker collects field problems.
type checker struct {
	rules Rules
	errs  []*FieldError
}

func (c *checker) fail(field, format string, args ...any) {
	c.errs = append(c.errs, &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)})
}

func (c *checker) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	return &ValidationError{Fields: c.errs}
}

func (c *checker) required(field, v string) bool {
	if strings.TrimSpace(v) == "" {
		c.fail(field, "is required")
		return false
	}
	return true
}

func (c *checker) enum(field, v string, set []string, optional bool) {
	if v == "" && optional {
		return
	}
	if !oneOf(v, set) {
		c.fail(field, "must be one of %s", strings.Join(set, ", "))
	}
}

func (c *checker) date(field, v string, optional, notFuture bool) {
	if v == "" {
		if !optional {
			c.fail(field, "is required")
		}
		return
	}
	d, err := time.Parse(DateLayout, v)
	if err != nil {
		c.fail(field, "must be a date written YYYY-MM-DD")
		return
	}
	if notFuture && d.After(c.rules.now()) {
		c.fail(field, "cannot be in the future")
	}
}

func (c *checker) timestamp(field, v string, optional bool) {
	if v == "" {
		if !optional {
			c.fail(field, "is required")
		}
		return
	}
	if _, err := time.Parse(time.RFC3339, v); err != nil {
		c.fail(field, "must be a date and time")
	}
}

func (c *checker) maxLen(field, v string, n int) {
	if len(v) > n {
		c.fail(field, "is too long (%d characters, at most %d)", len(v), n)
	}
}

const (
	shortText = 200
	longText  = 20000
)

// ValidateIdentity checks an identity before it is written.
func ValidateIdentity(id Identity, rules Rules) error {
	c := &checker{rules: rules}
	if c.required("nhsNumber", id.NHSNumber) {
		if n, err := nhs.Parse(id.NHSNumber, rules.NHS); err != nil {
			c.fail("nhsNumber", "%v", err)
		} else if n.Digits() != id.NHSNumber {
			c.fail("nhsNumber", "must be stored as ten digits without spaces")
		}
	}
	c.enum("nhsVerification", id.NHSVerification, NHSVerifications, true)
	c.required("familyName", id.FamilyName)
	c.required("givenName", id.GivenName)
	c.date("dateOfBirth", id.DateOfBirth, false, true)
	if id.DateOfBirth != "" {
		if d, err := time.Parse(DateLayout, id.DateOfBirth); err == nil && d.Year() < 1890 {
			c.fail("dateOfBirth", "is before 1890; check the year")
		}
	}
	c.enum("sex", id.Sex, Sexes, false)
	c.enum("consentBasis", id.ConsentBasis, ConsentBases, true)
	c.date("consentDate", id.ConsentDate, true, true)
	c.enum("status", id.Status, RecordStatuses, false)
	c.date("statusDate", id.StatusDate, id.Status != StatusDischarged && id.Status != StatusDied, true)
	// Where a person died is one of the places a plan names, so a report
	// can say whether it was the one they wished for.
	switch {
	case id.Status == StatusDied:
		c.enum("placeOfDeath", id.PlaceOfDeath, Places, false)
	case id.PlaceOfDeath != "":
		c.fail("placeOfDeath", "is recorded only at a death")
	}
	if id.GPPractice != "" && !odsCode(id.GPPractice) {
		c.fail("gpPractice", "must be an ODS code: a letter and five characters, e.g. E85001")
	}
	for f, v := range map[string]string{
		"givenName": id.GivenName, "familyName": id.FamilyName, "preferredName": id.PreferredName,
		"room": id.Room, "careCoordinator": id.CareCoordinator, "language": id.Language,
		"religion": id.Religion,
	} {
		c.maxLen(f, v, shortText)
	}
	return c.err()
}

// odsCode accepts GP practice codes: a letter followed by five letters or digits.
func odsCode(s string) bool {
	if len(s) != 6 || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 1; i < 6; i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'A' && s[i] <= 'Z') {
			return false
		}
	}
	return true
}

// ValidateAuthor checks who is making a change.
func ValidateAuthor(a Author) error {
	c := &checker{}
	c.required("author.user", a.UserID)
	c.required("author.name", a.Name)
	c.required("author.device", a.DeviceID)
	if !oneOf(string(a.Role), rolesText()) {
		c.fail("author.role", "must be one of %s", strings.Join(rolesText(), ", "))
	}
	if a.Role.Clinician() && strings.TrimSpace(a.RegNo) == "" {
		c.fail("author.registration", "a %s must give a professional registration number", a.Role.Label())
	}
	return c.err()
}

func rolesText() []string {
	out := make([]string, len(Roles))
	for i, r := range Roles {
		out[i] = string(r)
	}
	return out
}

// ValidateContact checks a contact.
func ValidateContact(ct Contact, rules Rules) error {
	c := &checker{rules: rules}
	c.required("name", ct.Name)
	c.enum("kind", ct.Kind, ContactKinds, false)
	switch ct.Kind {
	case "personal":
		c.enum("role", ct.Role, PersonalContactRoles, false)
	case "professional":
		c.enum("role", ct.Role, ProfessionalRoles, false)
	}
	if ct.PhoneDay == "" && ct.PhoneNight == "" && ct.Email == "" {
		c.fail("phoneDay", "give at least one way to reach this contact")
	}
	for f, v := range map[string]string{"phoneDay": ct.PhoneDay, "phoneNight": ct.PhoneNight} {
		if v != "" && !phone(v) {
			c.fail(f, "must be a phone number (digits, spaces, +, brackets)")
		}
	}
	if ct.Email != "" && !strings.Contains(ct.Email, "@") {
		c.fail("email", "must be an email address")
	}
	if ct.CallOrder < 0 {
		c.fail("callOrder", "cannot be negative")
	}
	c.date("lpaCopySeenOn", ct.LPACopySeenOn, true, true)
	c.maxLen("name", ct.Name, shortText)
	return c.err()
}

func phone(s string) bool {
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case strings.ContainsRune(" +()-", r):
		default:
			return false
		}
	}
	return digits >= 6 && digits <= 15
}

// ValidateAlert checks an alert.
func ValidateAlert(a Alert, rules Rules) error {
	c := &checker{rules: rules}
	c.required("text", a.Text)
	c.maxLen("text", a.Text, shortText*5)
	c.date("since", a.Since, true, true)
	c.enum("status", a.Status, AlertStatuses, false)
	return c.err()
}

// ValidateCarePlan checks one domain's entry.
func ValidateCarePlan(e CarePlanEntry, rules Rules) error {
	c := &checker{rules: rules}
	if !oneOf(string(e.Domain), domainsText()) {
		c.fail("domain", "must be one of %s", strings.Join(domainsText(), ", "))
	}
	c.enum("level", e.Level, NeedLevels, true)
	c.enum("scoreTool", e.ScoreTool, ScoreTools, true)
	if e.ScoreTool != "" {
		c.date("scoreDate", e.ScoreDate, false, true)
		if e.Score < 0 || e.Score > 64 {
			c.fail("score", "must be between 0 and 64")
		}
	}
	c.date("reviewDue", e.ReviewDue, true, false)
	c.date("lastReviewed", e.LastReviewed, true, true)
	for f, v := range map[string]string{"need": e.Need, "goal": e.Goal, "support": e.Support, "pleaseDo": e.PleaseDo, "pleaseDont": e.PleaseDont} {
		c.maxLen(f, v, longText)
	}
	return c.err()
}

func domainsText() []string {
	out := make([]string, len(Domains))
	for i, d := range Domains {
		out[i] = string(d)
	}
	return out
}

// ValidateWishes checks the ordinary ReSPECT and end-of-life fields.
func ValidateWishes(w Wishes, rules Rules) error {
	c := &checker{rules: rules}
	c.enum("proxy", w.Proxy, ProxyPresences, true)
	c.enum("capacity", w.Capacity, Capacities, true)
	c.enum("involvement", w.Involvement, Involvements, true)
	c.enum("placeOfCare", w.PlaceOfCare, Places, true)
	c.enum("planStatus", w.PlanStatus, PlanStatuses, true)
	c.date("completedOn", w.CompletedOn, true, true)
	c.date("involvementDate", w.InvolvementDate, true, true)
	c.date("cprDecisionDate", w.CPRDecisionDate, true, true)
	c.date("cprReviewDate", w.CPRReviewDate, true, false)
	c.timestamp("clinicianAt", w.ClinicianAt, true)
	c.timestamp("seniorAt", w.SeniorAt, true)
	if w.ClinicianName != "" && w.ClinicianReg == "" {
		c.fail("clinicianReg", "the signing clinician's registration number is required")
	}
	if w.SeniorName != "" && w.SeniorReg == "" {
		c.fail("seniorReg", "the senior responsible clinician's registration number is required")
	}
	if w.PlanStatus != "" && w.PlanStatus != "draft" && w.PlanApprover == "" {
		c.fail("planApprover", "a published or superseded plan names its approver")
	}
	for _, r := range w.Reviews {
		c.date("reviews.date", r.Date, false, true)
		c.required("reviews.clinician", r.Clinician)
	}
	return c.err()
}

// ValidateNote checks a note or advice call before it is added.
func ValidateNote(n Note, rules Rules) error {
	c := &checker{rules: rules}
	c.enum("kind", n.Kind, NoteKinds, false)
	c.timestamp("eventAt", n.EventAt, false)
	if t, err := time.Parse(time.RFC3339, n.EventAt); err == nil && t.After(rules.now().Add(5*time.Minute)) {
		c.fail("eventAt", "cannot be in the future")
	}
	c.maxLen("text", n.Text, longText)
	if n.Kind == NoteKindNote {
		c.required("text", n.Text)
	}
	if n.Kind == NoteKindAdviceCall {
		if n.Call == nil {
			c.fail("call", "an advice call needs the call form")
		} else {
			call := n.Call
			c.enum("call.method", call.Method, CallMethods, false)
			c.required("call.caller", call.Caller)
			c.required("call.concern", call.Concern)
			c.required("call.advice", call.Advice)
			c.enum("call.outcome", call.Outcome, CallOutcomes, false)
			for _, s := range call.SoftSigns {
				c.enum("call.softSigns", s, SoftSigns, false)
			}
			if o := call.Observations; o != nil {
				checkObservations(c, o)
			}
		}
	}
	return c.err()
}

// Consciousness (ACVPU) values.
var ACVPU = []string{"alert", "new-confusion", "voice", "pain", "unresponsive"}

func checkObservations(c *checker, o *Observations) {
	rng := func(field string, v, lo, hi int64) {
		if v != 0 && (v < lo || v > hi) {
			c.fail(field, "must be between %d and %d", lo, hi)
		}
	}
	rng("obs.respRate", o.RespRate, 1, 80)
	rng("obs.spo2", o.SpO2, 40, 100)
	rng("obs.systolic", o.Systolic, 30, 300)
	rng("obs.pulse", o.Pulse, 10, 250)
	if o.Temperature != 0 && (o.Temperature < 25 || o.Temperature > 45) {
		c.fail("obs.temp", "must be between 25 and 45 °C")
	}
	c.enum("obs.acvpu", o.Consciousness, ACVPU, true)
}

// ValidateDecision checks a decision's value for its kind and the author's
// permission to record it.
func ValidateDecision(k Kind, subject string, value any, reason string, by Author, rules Rules) error {
	c := &checker{rules: rules}
	if !CanDecide(by.Role, k) {
		c.fail(string(k), "a %s cannot record the %s", strings.ToLower(by.Role.Label()), strings.ToLower(k.Label()))
	}
	if k == KindAttorney && subject == "" {
		c.fail("subject", "name the attorney this authority belongs to")
	}
	if k != KindAttorney && subject != "" {
		c.fail("subject", "only attorney authority has a subject")
	}
	c.maxLen("reason", reason, longText)
	switch k {
	case KindCPR:
		s, ok := value.(string)
		if !ok {
			c.fail("cpr", "value must be text")
		}
		c.enum("cpr", s, CPRValues, false)
		c.required("reason", reason)
	case KindFocus:
		s, ok := value.(string)
		if !ok {
			c.fail("clinicalFocus", "value must be text")
		}
		c.enum("clinicalFocus", s, ClinicalFocuses, false)
	case KindCeiling:
		v, ok := value.(Ceiling)
		if !ok {
			c.fail("ceiling", "value must be a Ceiling")
		}
		c.enum("ceiling.level", v.Level, CeilingLevels, false)
		c.maxLen("ceiling.guidance", v.Guidance, longText)
	case KindAllergies:
		v, ok := value.(Allergies)
		if !ok {
			c.fail("allergies", "value must be Allergies")
		}
		if v.NoneKnown && len(v.Items) > 0 {
			c.fail("allergies", "cannot be both 'no known allergies' and a list of allergies")
		}
		if !v.NoneKnown && len(v.Items) == 0 {
			c.fail("allergies", "list the allergies, or record 'no known allergies'")
		}
		for i, a := range v.Items {
			f := fmt.Sprintf("allergies[%d]", i)
			c.required(f+".agent", a.Agent)
			c.enum(f+".severity", a.Severity, AllergySeverities, true)
			c.enum(f+".certainty", a.Certainty, AllergyCertainties, true)
			c.date(f+".date", a.Date, true, true)
			if a.Verified && !by.Role.Clinician() {
				c.fail(f+".verified", "only a clinician can verify an allergy")
			}
		}
	case KindADRT:
		v, ok := value.(ADRT)
		if !ok {
			c.fail("adrt", "value must be an ADRT")
		}
		c.enum("adrt.exists", v.Exists, ADRTExists, false)
		if v.Exists == "yes" {
			c.required("adrt.treatmentsRefused", v.TreatmentsRefused)
			c.required("adrt.location", v.Location)
		}
		c.date("adrt.date", v.Date, true, true)
	case KindPlaceOfDeath:
		v, ok := value.(PlaceOfDeath)
		if !ok {
			c.fail("placeOfDeath", "value must be a PlaceOfDeath")
		}
		c.enum("placeOfDeath.first", v.First, Places, false)
		c.enum("placeOfDeath.second", v.Second, Places, true)
	case KindAttorney:
		if _, ok := value.(AttorneyAuthority); !ok {
			c.fail("attorneyAuthority", "value must be an AttorneyAuthority")
		}
	case KindHome:
		v, ok := value.(Transfer)
		if !ok {
			c.fail("transfer", "value must be a Transfer")
		}
		c.required("transfer.to", v.To)
		c.required("transfer.toName", v.ToName)
		c.maxLen("transfer.toName", v.ToName, shortText)
		c.required("reason", reason)
	default:
		c.fail("kind", "unknown decision kind %q", k)
	}
	return c.err()
}

// Professional registers, and the roles each may register.
var registers = []struct {
	body  string
	shape func(string) bool
	roles []Role
}{
	{"GMC", func(s string) bool { return len(s) == 7 && allDigits(s) }, []Role{GP, AdviceClinician}},
	{"NMC", func(s string) bool { // two digits, a letter, four digits, a letter: 12A3456E
		return len(s) == 8 && allDigits(s[:2]) && isUpper(s[2]) && allDigits(s[3:7]) && isUpper(s[7])
	}, []Role{Nurse, HubNurse, AdviceClinician}},
	{"HCPC", func(s string) bool { // a profession's two letters, then digits: PA12345
		return len(s) >= 4 && len(s) <= 10 && isUpper(s[0]) && isUpper(s[1]) && allDigits(s[2:])
	}, []Role{AdviceClinician}},
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }

// ValidateRegistration checks a professional registration for a role and
// returns it in its stored form ("GMC 7000001", "NMC 12A3456E", "HCPC
// PA12345"): a GP is on the GMC register; a nurse on the NMC's; an
// advice-line clinician on any of the three (doctors, nurses, paramedics);
// other roles have none. It is checked before a certificate is issued,
// because the registration is part of what the organisation vouches for.
func ValidateRegistration(role Role, reg string) (string, error) {
	reg = strings.ToUpper(strings.Join(strings.Fields(reg), " "))
	if !role.Clinician() {
		if reg != "" {
			return "", &ValidationError{Fields: []*FieldError{{"registration", fmt.Sprintf("a %s has no professional registration", strings.ToLower(role.Label()))}}}
		}
		return "", nil
	}
	var bodies []string
	for _, r := range registers {
		if !slices.Contains(r.roles, role) {
			continue
		}
		bodies = append(bodies, r.body)
		if num, ok := strings.CutPrefix(reg, r.body); ok {
			num = strings.TrimSpace(num)
			if r.shape(num) {
				return r.body + " " + num, nil
			}
			return "", &ValidationError{Fields: []*FieldError{{"registration", fmt.Sprintf("is not a %s number (%s)", r.body, registerExample[r.body])}}}
		}
	}
	return "", &ValidationError{Fields: []*FieldError{{"registration", fmt.Sprintf("a %s gives a %s number", strings.ToLower(role.Label()), strings.Join(bodies, " or "))}}}
}

var registerExample = map[string]string{"GMC": "7 digits, e.g. GMC 7000001", "NMC": "e.g. NMC 12A3456E", "HCPC": "two letters and digits, e.g. HCPC PA12345"}
