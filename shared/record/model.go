// Package record is the typed care record of one care-home resident and the
// directory of a care home, held as Automerge documents through package crdt.
//
// Layout of a resident document (keys as stored; every container is created
// when the record is created, never lazily, because two devices creating the
// same container concurrently would hide one another's writes):
//
//	schema      int        SchemaVersion; readers ignore keys they do not know
//	type        "resident"
//	id, home    document ID and the care home's organisation ID
//	identity    map: Identity fields
//	contacts    map contactID → Contact
//	alerts      map alertID → Alert
//	carePlan    map domain → CarePlanEntry (all twelve domains)
//	wishes      map: Wishes fields; wishes.reviews map reviewID → Review
//	decisions   map kind → map entryID → Entry as a JSON string (safety-critical
//	            decision lists; an entry never changes once written)
//	timeline    document ID of the resident's timeline
//
// Notes live in a second document per resident, the timeline, because they
// are written many times a day for years while the plan changes monthly:
// kept apart, the plan (what a clinician on a call needs first) stays small
// and quick to open and sync however long the timeline grows.
//
//	schema, type "timeline", id, home, resident (the record's document ID)
//	notes       map noteID → JSON of the note's fixed fields (never deleted)
//	noteStatus  map noteID → JSON of {status, errorReason, errorBy, errorAt}:
//	            entered-in-error is a status, never a deletion
//
// Write-once values are single JSON strings rather than maps of fields: one
// operation instead of a dozen, which keeps a record with years of history
// quick to load.
//
// Each write is one Automerge change whose message (ChangeMeta, JSON) names
// the author, role, registration, device and the fields written, which is
// what History reads.
package record

import (
	"time"

	"haven/shared/docid"
)

// SchemaVersion is written into every document; schema changes are additive.
const SchemaVersion = 1

// Author is who makes a change: a member of staff at a device.
type Author struct {
	UserID   string `json:"u"`
	Name     string `json:"n"`
	Role     Role   `json:"r"`
	RegNo    string `json:"reg,omitempty"` // GMC/NMC/HCPC number, for clinicians
	DeviceID string `json:"d"`
}

// Identity says who the resident is and where they live.
type Identity struct {
	NHSNumber          string `json:"nhsNumber"` // ten digits, no spaces
	NHSVerification    string `json:"nhsVerification"`
	GivenName          string `json:"givenName"`
	FamilyName         string `json:"familyName"`
	PreferredName      string `json:"preferredName"`
	DateOfBirth        string `json:"dateOfBirth"` // YYYY-MM-DD
	Sex                string `json:"sex"`
	Room               string `json:"room"`
	GPPractice         string `json:"gpPractice"` // ODS code
	CareCoordinator    string `json:"careCoordinator"`
	Language           string `json:"language"`
	Interpreter        bool   `json:"interpreter"`
	CommunicationNeeds string `json:"communicationNeeds"`
	Religion           string `json:"religion"`
	CulturalNeeds      string `json:"culturalNeeds"`
	ConsentBasis       string `json:"consentBasis"`
	ConsentDate        string `json:"consentDate"`
	ConsentWithdrawn   bool   `json:"consentWithdrawn"`
	Restricted         bool   `json:"restricted"`
	Status             string `json:"status"`
	StatusDate         string `json:"statusDate"` // date discharged or of death
	PlaceOfDeath       string `json:"placeOfDeath"`
}

// FullName is the legal name as shown in lists.
func (id Identity) FullName() string {
	switch {
	case id.GivenName == "":
		return id.FamilyName
	case id.FamilyName == "":
		return id.GivenName
	}
	return id.GivenName + " " + id.FamilyName
}

// Contact is a personal or professional contact. Whether an attorney holds
// authority over life-sustaining treatment is a decision (KindAttorney), not a
// field here.
type Contact struct {
	ID             string `json:"id"`
	Kind           string `json:"kind"` // personal or professional
	Name           string `json:"name"`
	Relationship   string `json:"relationship"`
	Role           string `json:"role"`
	Organisation   string `json:"organisation"`
	CallOrder      int64  `json:"callOrder"`
	PhoneDay       string `json:"phoneDay"`
	PhoneNight     string `json:"phoneNight"`
	Email          string `json:"email"`
	CallAtNight    bool   `json:"callAtNight"`
	LPARegistered  bool   `json:"lpaRegistered"` // registered with the Office of the Public Guardian
	LPACertificate string `json:"lpaCertificate"`
	LPACopySeenBy  string `json:"lpaCopySeenBy"`
	LPACopySeenOn  string `json:"lpaCopySeenOn"`
	Removed        bool   `json:"removed"`
}

// Alert is a safety flag such as a swallowing risk or DoLS in force.
type Alert struct {
	ID     string `json:"id"`
	Text   string `json:"text"`
	Since  string `json:"since"`
	Status string `json:"status"`
}

// CarePlanEntry is the plan for one domain.
type CarePlanEntry struct {
	Domain         Domain `json:"-"`
	Need           string `json:"need"`
	Level          string `json:"level"`
	Goal           string `json:"goal"`
	Support        string `json:"support"` // how to support me, in the first person
	PleaseDo       string `json:"pleaseDo"`
	PleaseDont     string `json:"pleaseDont"`
	ScoreTool      string `json:"scoreTool"`
	Score          int64  `json:"score"`
	ScoreDate      string `json:"scoreDate"`
	AgreedWith     string `json:"agreedWith"`
	UpdatedBy      string `json:"updatedBy"`
	UpdatedAt      string `json:"updatedAt"`
	ReviewDue      string `json:"reviewDue"` // YYYY-MM-DD
	Reviewer       string `json:"reviewer"`
	LastReviewed   string `json:"lastReviewed"`
	LastReviewedBy string `json:"lastReviewedBy"`
}

// Wishes holds the ReSPECT sections and the end-of-life plan, apart from the
// safety-critical values, which are decisions.
type Wishes struct {
	// 1: completed on (identity fields come from Identity).
	CompletedOn string `json:"completedOn"`
	// 2: shared understanding of my health.
	Summary          string `json:"summary"`
	OtherDocuments   string `json:"otherDocuments"`
	Proxy            string `json:"proxy"`
	ProxyType        string `json:"proxyType"`
	ProxyWho         string `json:"proxyWho"`
	ProxyCertificate string `json:"proxyCertificate"`
	// 3: what matters to me.
	MostValue string `json:"mostValue"`
	MostFear  string `json:"mostFear"`
	// 4: guidance beyond the decisions (free text on specific interventions).
	InterventionGuidance string `json:"interventionGuidance"`
	// 5: capacity.
	Capacity    string `json:"capacity"`
	CapacityHow string `json:"capacityHow"`
	// 6: involvement.
	Involvement     string `json:"involvement"`
	InvolvementDate string `json:"involvementDate"`
	InvolvedWho     string `json:"involvedWho"`
	RecordLocation  string `json:"recordLocation"`
	// 7: clinician signatures.
	ClinicianName string `json:"clinicianName"`
	ClinicianRole string `json:"clinicianRole"`
	ClinicianReg  string `json:"clinicianReg"`
	ClinicianAt   string `json:"clinicianAt"`
	SeniorName    string `json:"seniorName"`
	SeniorRole    string `json:"seniorRole"`
	SeniorReg     string `json:"seniorReg"`
	SeniorAt      string `json:"seniorAt"`
	// 8: emergency contacts and those involved.
	DiscussionWith string `json:"discussionWith"`
	// 9: reviews are Wishes.Reviews.
	// End-of-life plan and EPaCCS items.
	CPRDecisionDate    string   `json:"cprDecisionDate"`
	CPRReviewDate      string   `json:"cprReviewDate"`
	FormLocation       string   `json:"formLocation"`
	PersonTold         bool     `json:"personTold"`
	FamilyTold         bool     `json:"familyTold"`
	NotToldWhy         string   `json:"notToldWhy"`
	PlaceOfCare        string   `json:"placeOfCare"`
	AnticipatoryMeds   string   `json:"anticipatoryMeds"`
	AnticipatoryMedsAt string   `json:"anticipatoryMedsAt"` // where they are kept
	Prognosis          string   `json:"prognosis"`
	PlanStatus         string   `json:"planStatus"`
	PlanApprover       string   `json:"planApprover"`
	Reviews            []Review `json:"-"`
}

// Review is a ReSPECT section 9 review.
type Review struct {
	ID              string `json:"id"`
	Date            string `json:"date"`
	Clinician       string `json:"clinician"`
	RemainsRelevant bool   `json:"remainsRelevant"`
}

// Note is a timeline entry; an advice call carries the call form.
type Note struct {
	ID          string      `json:"id"`
	Kind        string      `json:"kind"`
	EventAt     string      `json:"eventAt"`    // when it happened (RFC 3339)
	RecordedAt  string      `json:"recordedAt"` // when it was written
	Text        string      `json:"text"`
	Author      Author      `json:"by"`
	Call        *AdviceCall `json:"call,omitempty"`
	Status      string      `json:"status"`
	ErrorReason string      `json:"errorReason,omitempty"`
	ErrorBy     string      `json:"errorBy,omitempty"`
	ErrorAt     string      `json:"errorAt,omitempty"`
}

// AdviceCall is what an advice-line clinician records about a call.
type AdviceCall struct {
	Method         string        `json:"method"`
	Caller         string        `json:"caller"`
	CallerRelation string        `json:"callerRelation"`
	Concern        string        `json:"concern"`
	SoftSigns      []string      `json:"softSigns"`
	Observations   *Observations `json:"obs,omitempty"`
	NEWS2          int64         `json:"news2"`
	NEWS2Band      string        `json:"news2Band"`
	PlanSeen       string        `json:"planSeen"` // heads of the record the clinician saw
	Advice         string        `json:"advice"`
	Outcome        string        `json:"outcome"`
	Actions        string        `json:"actions"`
	FollowUp       string        `json:"followUp"`
}

// Observations feed NEWS2; zero means not taken.
type Observations struct {
	RespRate      int64   `json:"respRate"`
	SpO2          int64   `json:"spo2"`
	SpO2Scale2    bool    `json:"spo2Scale2"`
	OnOxygen      bool    `json:"onOxygen"`
	Systolic      int64   `json:"systolic"`
	Pulse         int64   `json:"pulse"`
	Consciousness string  `json:"acvpu"`
	Temperature   float64 `json:"temp"`
}

// Record is a resident's whole record as read from its document.
type Record struct {
	ID     docid.ID
	Schema int64
	Home   string // where the record was created
	// CurrentHome holds the record now: Home, or where its verified
	// transfers end (transfer.go); Transfers are those moves, in order.
	CurrentHome string
	Transfers   []TransferView
	Identity    Identity
	Contacts    []Contact // by call order, then name; removed contacts included
	Alerts      []Alert
	CarePlan    []CarePlanEntry // in Domains order
	Wishes      Wishes
	Timeline    docid.ID // the document holding the resident's notes
	// Decisions by kind; attorney authority keyed "attorneyAuthority/<contactID>".
	Decisions map[string]*DecisionState
	// Problems names parts of the document that could not be read (paths, no
	// values), e.g. a field of the wrong type written by another client.
	Problems []string
	// Altered names rules the record's history breaks outside its decision
	// lists (see MarkAltered).
	Altered []string
}

// Timeline is a resident's notes as read from the timeline document.
type Timeline struct {
	ID       docid.ID
	Resident docid.ID
	Home     string
	Notes    []Note // newest event first
	Problems []string
}

// Timestamp formats t as stored.
func Timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// DateLayout is how dates are stored.
const DateLayout = "2006-01-02"
