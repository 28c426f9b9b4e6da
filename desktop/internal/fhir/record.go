// Package fhir writes one resident's care record as a FHIR R4 document
// Bundle with UK Core profiles: a Composition first, then Patient,
// RelatedPerson, CarePlan, Consent, AllergyIntolerance, Flag, Condition,
// Observation and Provenance.
//
// It takes a Record, plain data the application layer fills from what it
// read and verified, and knows nothing of documents, stores or signatures.
// The one rule it applies itself is how a decision travels: only a settled
// decision with nothing disputing it becomes a resource (a Consent, an
// AllergyIntolerance, an attorney's authority, a preferred place of death),
// with a Provenance naming who decided and when. A conflict, an entry that
// is not a verified decision, or a list altered outside Haven's rules
// becomes a Flag that says so and names each side, and the disputed value
// is never exported as a resource; a decision never made is said to be not
// recorded in the Composition's text. A receiving system that reads only
// the coded resources therefore never sees one side of a dispute as the
// answer.
//
// Resource IDs are name-based UUIDs of the record's ID and what the resource
// holds, so two exports of the same record differ only in their timestamps
// and the bundle's identifier.
//
// The R4 types are samply's generated models (github.com/samply/golang-fhir-models),
// which marshal resourceType and enumerated codes themselves.
package fhir

import (
	"time"

	"haven/shared/record"
)

// Record is what an export holds of one resident.
type Record struct {
	ID           string    // the record's document ID: every resource ID derives from it
	Exported     time.Time // when the export was made
	ExportedBy   string    // who made it, in words: "Dr Ada Quill, GP, GMC 7000001"
	Organisation string    // the exporting organisation's name: the document's custodian

	Identity record.Identity
	Contacts []record.Contact // removed contacts left out
	// Alerts are the front sheet's alerts: recorded ones (with their ID)
	// and those the record's rules raise (ID "").
	Alerts   []Alert
	CarePlan []record.CarePlanEntry
	Wishes   record.Wishes
	// PlanPublished is the date (YYYY-MM-DD) the end-of-life plan was
	// published, as the record's milestones say; "" when it is not.
	PlanPublished string

	CPR, Focus, Ceiling, ADRT, Allergies, PlaceOfDeath Decision
	// Authority is each attorney's authority over life-sustaining
	// treatment, by contact ID.
	Authority map[string]Decision

	NEWS2 *NEWS2 // the last scored NEWS2; nil when none
	// NotesUnavailable says why the timeline (and so any NEWS2) is not in
	// this export; "" when it was read.
	NotesUnavailable string

	// Altered names rules the record's history breaks outside its
	// decision lists; Problems names parts that could not be read.
	Altered, Problems []string
}

// Alert is one of the front sheet's alerts.
type Alert struct {
	ID, Text string
	Since    string // YYYY-MM-DD, "" when not known
}

// States of a decision, as the application's views name them.
const (
	Settled     = "settled"
	Conflict    = "conflict"
	NotRecorded = "not-recorded"
	Altered     = "altered"
)

// Decision is one safety-critical decision list as read.
type Decision struct {
	Kind  record.Kind
	State string // Settled, Conflict, NotRecorded or Altered
	Text  string // the value in words, or the conflict or alteration in words
	// Entry is the decision when State is Settled: its value, verified
	// author (from the certificate), time and reason.
	Entry      record.Entry
	By         string       // the settled decision's author in words: "Dr Ada Quill, GP, GMC 7000001"
	Sides      []Side       // each current decision of a conflict
	Unverified []Unverified // entries of the list that are not decisions
}

// Side is one side of a conflict.
type Side struct {
	EntryID  string
	Text, By string // the value and its author, in words
	At       string // RFC 3339, as stored
}

// Unverified is an entry that failed verification.
type Unverified struct {
	Text    string // what it claims, in words
	Claimed string // who it claims wrote it, in words
	At      string // RFC 3339, as stored
	Why     string // why it is not a decision, in words
	Code    string // record.EntryCode
}

// Exportable reports whether the decision goes out as a resource: settled,
// and nothing in its list disputes it.
func (d Decision) Exportable() bool { return d.State == Settled && len(d.Unverified) == 0 }

// NEWS2 is the last NEWS2 score recorded with an advice call.
type NEWS2 struct {
	NoteID   string
	Total    int
	Band     string // news2.Band
	Response string // what the band calls for, in words
	At       string // RFC 3339: when the observations were taken
	By       string // who recorded them, in words
}
