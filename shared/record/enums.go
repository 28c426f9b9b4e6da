package record

// Enumerations, spelled as stored. Each set is exactly the list in the
// domain reference (../shared/DOMAIN.md in the handbook); validation refuses
// anything else so a typo can never reach a document.

// Role is what a member of staff does; it decides what they may record.
type Role string

const (
	CareWorker      Role = "care-worker"
	SeniorCarer     Role = "senior-carer"
	Nurse           Role = "nurse" // registered nurse employed by the home
	HomeManager     Role = "home-manager"
	HubNurse        Role = "hub-nurse"
	GP              Role = "gp"
	AdviceClinician Role = "advice-clinician"
	IGLead          Role = "ig-lead"
)

// Roles lists every role in the order a form offers them.
var Roles = []Role{CareWorker, SeniorCarer, Nurse, HomeManager, HubNurse, GP, AdviceClinician, IGLead}

// Clinician reports the registered clinical roles, who must give a
// professional registration number and who alone may make clinical
// recommendations.
func (r Role) Clinician() bool {
	switch r {
	case Nurse, HubNurse, GP, AdviceClinician:
		return true
	}
	return false
}

// Label is the role as staff read it.
func (r Role) Label() string {
	return roleLabels[r]
}

var roleLabels = map[Role]string{
	CareWorker: "Care worker", SeniorCarer: "Senior carer", Nurse: "Nurse",
	HomeManager: "Home manager", HubNurse: "GP-hub nurse", GP: "GP",
	AdviceClinician: "Advice-line clinician", IGLead: "Information-governance lead",
}

// Sex follows the administrative values used by UK Core Patient.
var Sexes = []string{"female", "male", "other", "unknown"}

// NHSVerification codes 01–08 (01 = number present and verified).
var NHSVerifications = []string{"01", "02", "03", "04", "05", "06", "07", "08"}

// ConsentBases for recording and sharing the plan.
var ConsentBases = []string{"explicit", "best-interests", "attorney"}

// RecordStatuses of a resident's record.
const (
	StatusActive     = "active"
	StatusDischarged = "discharged"
	StatusDied       = "died"
)

var RecordStatuses = []string{StatusActive, StatusDischarged, StatusDied}

// Contact kinds and the roles a personal contact can hold.
var (
	ContactKinds         = []string{"personal", "professional"}
	PersonalContactRoles = []string{"next-of-kin", "carer", "emergency-contact", "attorney", "deputy"}
	ProfessionalRoles    = []string{"gp", "care-coordinator", "palliative-team", "district-nurse"}
)

// Allergy detail.
var (
	AllergySeverities  = []string{"mild", "moderate", "severe"}
	AllergyCertainties = []string{"unlikely", "likely", "confirmed", "unknown"}
)

// Domain is one area of the care plan.
type Domain string

// Domains in the order the care plan shows them.
var Domains = []Domain{
	"personal-care", "eating-and-drinking", "mobility-and-falls", "skin", "continence",
	"medication", "cognition-and-dementia", "communication", "mental-health", "sleep",
	"social-and-spiritual", "end-of-life",
}

var domainLabels = map[Domain]string{
	"personal-care": "Personal care", "eating-and-drinking": "Eating and drinking",
	"mobility-and-falls": "Mobility and falls", "skin": "Skin", "continence": "Continence",
	"medication": "Medication", "cognition-and-dementia": "Cognition and dementia",
	"communication": "Communication", "mental-health": "Mental health", "sleep": "Sleep",
	"social-and-spiritual": "Social and spiritual", "end-of-life": "End of life",
}

// Label is the domain as staff read it.
func (d Domain) Label() string { return domainLabels[d] }

var (
	NeedLevels = []string{"low", "medium", "high"}
	ScoreTools = []string{"MUST", "Waterlow", "Braden"}
)

// ReSPECT section 4 and the end-of-life plan.
const (
	FocusExtendLife = "prioritise-extending-life"
	FocusBalance    = "balance-extending-life-with-comfort"
	FocusComfort    = "prioritise-comfort"

	CPRRecommended    = "cpr-recommended"
	CPRNotRecommended = "cpr-not-recommended"
	CPRModifiedChild  = "modified-cpr-child"
)

var (
	ClinicalFocuses = []string{FocusExtendLife, FocusBalance, FocusComfort}
	CPRValues       = []string{CPRRecommended, CPRNotRecommended, CPRModifiedChild}
	// CeilingLevels summarise the guidance on specific interventions so that a
	// NEWS2 response can be shown against them; the guidance text says more.
	CeilingLevels  = []string{"full-escalation", "ward-based-care", "treat-in-care-home", "comfort-care-only"}
	Capacities     = []string{"has", "does-not-have", "indeterminate"}
	Involvements   = []string{"A", "B", "C1", "C2", "C3", "D"}
	ProxyPresences = []string{"present", "absent", "unknown"}
	PlanStatuses   = []string{"draft", "published", "superseded"}
	ADRTExists     = []string{"yes", "no", "unknown"}
	// Places for preferred place of care and of death; "not-recorded" is an
	// explicit statement, distinct from a blank that was never asked.
	Places = []string{"home", "care-home", "hospice", "hospital", "other", "not-recorded"}
)

var valueLabels = map[string]string{
	FocusExtendLife: "Prioritise extending life", FocusBalance: "Balance extending life with comfort and valued outcomes",
	FocusComfort: "Prioritise comfort", CPRRecommended: "CPR attempts recommended",
	CPRNotRecommended: "CPR attempts NOT recommended", CPRModifiedChild: "Modified CPR (child only)",
	"full-escalation": "Full escalation, including intensive care", "ward-based-care": "Hospital ward care, not intensive care",
	"treat-in-care-home": "Treat in the care home; hospital only for comfort", "comfort-care-only": "Comfort care only",
	"home": "Own home", "care-home": "Care home", "hospice": "Hospice", "hospital": "Hospital", "other": "Other",
	"not-recorded": "Not recorded (asked, no preference given)",
}

// Label is the wording staff read for a stored enumeration value.
func Label(v string) string {
	if l, ok := valueLabels[v]; ok {
		return l
	}
	return v
}

// Notes and encounters.
const (
	NoteCurrent        = "current"
	NoteEnteredInError = "entered-in-error"
	NoteKindNote       = "note"
	NoteKindAdviceCall = "advice-call"
)

var (
	NoteKinds     = []string{NoteKindNote, NoteKindAdviceCall}
	CallMethods   = []string{"phone", "video", "face-to-face"}
	CallOutcomes  = []string{"self-care", "gp", "999", "conveyed", "died"}
	SoftSigns     = []string{"short-of-breath", "unsteady", "more-distressed", "withdrawn", "more-tired", "very-restless"}
	AlertStatuses = []string{"active", "resolved"}
)

func oneOf(v string, set []string) bool {
	for _, s := range set {
		if v == s {
			return true
		}
	}
	return false
}
