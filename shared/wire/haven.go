package wire

import (
	"time"

	"haven/shared/cert"
)

// Haven's own JSON, carried in the Data of its own message types: what the
// relay and the desktop both read and write, defined once here.

// Trust is a haven-trust message's data: what a device checks signatures
// against, and where its own staff's certificate requests stand. The relay
// sends it after join, after a certificate request, and to every
// connection whenever a certificate is revoked.
type Trust struct {
	// Anchor is the organisation key (Ed25519 public key): the device
	// learnt it at enrolment and compares; a Trust with another anchor is
	// refused.
	Anchor []byte `json:"anchor"`
	// Revocations is every certificate revocation the relay has issued.
	Revocations []cert.Revocation `json:"revocations"`
	// Certificates are those issued for requests this device made.
	Certificates []cert.Certificate `json:"certificates,omitempty"`
	// Requests are this device's requests not granted yet.
	Requests []RequestStatus `json:"requests,omitempty"`
	// Homes are the region's care homes, by name: where a resident may
	// move (record.Transfer). Kept by the device for offline use.
	Homes []HomeName `json:"homes,omitempty"`
}

// HomeName is a care home as a transfer names it.
type HomeName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// CertRequest is a haven-cert-request message's data: a desktop asks the
// relay to certify a member of staff whose key pair it made.
//
// Proof is the staff key's signature over SigningBytes (they hold the key).
// A home manager on the desktop vouches for care workers and senior carers
// of their home by adding their own certificate (By) and signature (BySig)
// over the same bytes: the relay grants those at once. Every other request
// waits for an administrator, who checks the registration number.
type CertRequest struct {
	ID           string            `json:"id"` // chosen by the desktop, "req-" and hex
	Staff        string            `json:"staff"`
	Name         string            `json:"name"`
	Role         string            `json:"role"`
	Registration string            `json:"reg,omitempty"`
	PublicKey    []byte            `json:"pub"`
	Proof        []byte            `json:"proof"`
	By           *cert.Certificate `json:"by,omitempty"`
	BySig        []byte            `json:"bySig,omitempty"`
}

const requestTag = "haven certificate request v1"

// SigningBytes is what Proof and BySig sign: "haven certificate request
// v1", ID, Staff, Name, Role, Registration, PublicKey (cert's canonical
// encoding).
func (r CertRequest) SigningBytes() []byte {
	return cert.Encode([]byte(requestTag), []byte(r.ID), []byte(r.Staff), []byte(r.Name), []byte(r.Role),
		[]byte(r.Registration), r.PublicKey)
}

// Leaver asks the relay to revoke a member of staff's certificate: they
// have left, or their PIN was reset and their old key must sign nothing
// more. A home manager of the same organisation signs it with the key of
// the certificate it carries.
type Leaver struct {
	Cert  string           `json:"cert"`  // the certificate to revoke
	Staff string           `json:"staff"` // whose it is
	At    time.Time        `json:"at"`    // when the manager asked
	By    cert.Certificate `json:"by"`
	Sig   []byte           `json:"sig"`
}

const leaverTag = "haven leaver v1"

// SigningBytes is what Sig signs: "haven leaver v1", Cert, Staff, At
// (RFC 3339, nanoseconds, UTC) in cert's canonical encoding.
func (l Leaver) SigningBytes() []byte {
	return cert.Encode([]byte(leaverTag), []byte(l.Cert), []byte(l.Staff), []byte(l.At.UTC().Format(time.RFC3339Nano)))
}

// RequestStatus says where a certificate request stands.
type RequestStatus struct {
	ID    string `json:"id"`
	Staff string `json:"staff"`
	State string `json:"state"` // RequestPending or RequestRefused
	// Reason is why it was refused, in words for the manager.
	Reason string `json:"reason,omitempty"`
}

// Request states.
const (
	RequestPending = "pending"
	RequestRefused = "refused"
)

// Error codes: the ErrorCode of the relay's error messages, stable names
// that clients and tests act on (the text is for people).
const (
	CodeBadRequest    = "bad-request"    // a Haven request the relay could not take
	CodeInternal      = "internal"       // the relay failed; try again later
	CodeRefused       = "refused"        // a sync message whose changes the relay could not apply
	CodeQuarantined   = "quarantined"    // a sync message that crashed a worker, set aside
	CodeOutOfScope    = "out-of-scope"   // a new document for a home outside the device's scope
	CodeDeviceRevoked = "device-revoked" // the device's credential was revoked: it is disconnected
	CodeNotEnrolled   = "not-enrolled"   // no valid credential
	CodeBusy          = "busy"           // the relay is at capacity or starting or stopping: try again shortly
	// Protocol violations: what no well-behaved peer sends.
	CodeMalformed      = "malformed"       // a frame that is not a protocol message: the connection is closed
	CodeInvalidMessage = "invalid-message" // a message without a field its type needs: it is ignored
	CodeProtocol       = "protocol"        // no join first, or no protocol version the relay speaks: the connection is closed
	CodeDisconnected   = "disconnected"    // repeated messages that crashed the relay's workers: the device is disconnected
	// Quotas: one device, or its organisation, asked for more than its
	// share. The device keeps what was refused and offers it again later.
	CodeQuotaConnections = "quota/connections"    // too many connections from this device
	CodeQuotaChanges     = "quota/changes"        // changes faster than the rate allows
	CodeQuotaBytes       = "quota/bytes"          // bytes of changes faster than the rate allows
	CodeQuotaDocuments   = "quota/documents"      // too many new documents this hour
	CodeQuotaDocBytes    = "quota/document-bytes" // the document would grow past its size limit
	CodeQuotaWaiting     = "quota/waiting"        // too many of this connection's messages waiting
	CodeQuotaAudit       = "quota/audit"          // audit events faster than the rate allows
	// Audit batches: the relay stores a device's events in the order the
	// device numbered them, without a gap. Either way nothing of the batch
	// is stored; the haven-audit-ack that follows says where the relay
	// stands.
	CodeAuditGap      = "audit/gap"      // the batch starts past the next event the relay expects
	CodeAuditSequence = "audit/sequence" // numbers out of order within the batch, or wildly far ahead
	CodeQuotaSearch   = "quota/search"   // searches or openings faster than the rate allows
	CodeNeedsReason   = "needs-reason"   // opening a record needs a reason a reviewer will understand
	CodeNotPermitted  = "not-permitted"  // the signed-in member of staff may not do this (unsigned, or the wrong role or organisation)
	CodeNotFound      = "not-found"      // no such record (or none this device may ask for)
	CodeNotShared     = "not-shared"     // the person withdrew consent to share their record beyond their home
	CodeTransferred   = "transferred"    // the record moved to another care home (haven-gone's message names it)
)

// RuleCode is the error code for a change refused because it breaks a
// record rule: "rule/" and the rule's name, and "/" and the detail if there
// is one (e.g. "rule/decision-unverified/role-not-permitted").
func RuleCode(rule, detail string) string {
	if detail == "" {
		return "rule/" + rule
	}
	return "rule/" + rule + "/" + detail
}

// Enrollment is the relay's answer to POST /enroll with a valid one-time
// code: who the device is, and what it must trust.
type Enrollment struct {
	Device     string   `json:"device"`
	DeviceName string   `json:"deviceName"`
	Org        string   `json:"org"`
	OrgName    string   `json:"orgName"`
	OrgKind    string   `json:"orgKind"`
	Homes      []string `json:"homes,omitempty"` // a hub's homes
	Directory  string   `json:"directory,omitempty"`
	Credential string   `json:"credential"`
	// Anchor is the organisation key (Ed25519 public key): the device
	// trusts no certificate or revocation signed by another.
	Anchor []byte `json:"anchor"`
	// RelayURLs are the addresses of every node of a relay that runs as
	// a cluster (http:// or https://, as a device enrols at), for the
	// device to move between; none from a relay that lists none, and then
	// the device keeps the address it enrolled at.
	RelayURLs []string `json:"relayUrls,omitempty"`
	// Error is set instead of the above when the code is refused.
	Error string `json:"error,omitempty"`
}

// WhoRequest is a haven-who message's data from a device: which enrolled
// device first sent each of these actors' changes to a document.
type WhoRequest struct {
	Doc    string   `json:"doc"`
	Actors []string `json:"actors"`
}

// Who is the relay's answer: for the actors it knows, the device. A
// document outside the device's scope, or an actor the relay never saw,
// has no entry.
type Who struct {
	Doc     string                `json:"doc"`
	Devices map[string]DeviceName `json:"devices"`
}

// DeviceName is an enrolled device as History names it.
type DeviceName struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Org  string `json:"org"`
}

// MaxWhoActors bounds the actors one haven-who may ask about.
const MaxWhoActors = 2000

// AuditEvent is one event of a haven-audit batch: who on the device did
// what to which resident's record, as the device says. The relay believes
// only what it can check: the device is the connection's, the time it
// received the event is its own, and the member of staff is the one whose
// certificate signed the event; the rest it stores as the device's claim.
// No health data: an action name, a document ID, and for a few actions a
// short reason typed by staff.
type AuditEvent struct {
	// Seq is the event's place in the device's audit log, from 1 without
	// a gap: the relay stores each once, in order.
	Seq uint64 `json:"seq"`
	// ID is a random name the device gives the event, signed with it, so
	// a signature cannot be replayed for a second event.
	ID       string    `json:"id"`
	Time     time.Time `json:"time"` // on the device's clock
	User     string    `json:"user"` // staff ID
	Role     string    `json:"role"`
	Resident string    `json:"resident"` // the record's document ID
	Action   string    `json:"action"`   // e.g. "view-advance-wishes", "change"
	Detail   string    `json:"detail,omitempty"`
	// Cert and Sig are the signed-in member of staff's certificate ID and
	// signature over SigningBytes; absent for staff not certified yet.
	Cert string `json:"cert,omitempty"`
	Sig  []byte `json:"sig,omitempty"`
}

const auditTag = "haven audit event v1"

// SigningBytes is what Sig signs: "haven audit event v1", the device ID,
// ID, Time (RFC 3339 with nanoseconds, UTC), User, Role, Resident, Action,
// Detail and Cert (cert's canonical encoding). Seq is not signed: the
// device numbers events when it sends them.
func (e AuditEvent) SigningBytes(device string) []byte {
	return cert.EncodeStrings(auditTag, device, e.ID, e.Time.UTC().Format(time.RFC3339Nano), e.User, e.Role,
		e.Resident, e.Action, e.Detail, e.Cert)
}

// SearchQuery is a haven-search message's data from an advice-line device:
// a resident by NHS number, or by family name and date of birth (both
// needed, so a search names a person rather than lists a surname).
type SearchQuery struct {
	ID          string `json:"id"` // echoed in the answer
	NHSNumber   string `json:"nhsNumber,omitempty"`
	FamilyName  string `json:"familyName,omitempty"`
	DateOfBirth string `json:"dateOfBirth,omitempty"` // YYYY-MM-DD
}

// MaxSearchMatches bounds the residents one search returns.
const MaxSearchMatches = 10

// SearchResult is the relay's answer: the residents who match, as their
// home's list shows them, enough to tell two apart and to choose. Nothing
// else of their records.
type SearchResult struct {
	ID      string        `json:"id"`
	Matches []SearchMatch `json:"matches"`
	// Code is an error code when the search was refused (bad-request for
	// a query that names nobody, quota/search over the rate).
	Code string `json:"code,omitempty"`
}

// SearchMatch is one resident found.
type SearchMatch struct {
	Record        string `json:"record"` // the record's document ID
	Home          string `json:"home"`
	HomeName      string `json:"homeName"`
	GivenName     string `json:"givenName"`
	FamilyName    string `json:"familyName"`
	PreferredName string `json:"preferredName,omitempty"`
	DateOfBirth   string `json:"dateOfBirth"`
	NHSNumber     string `json:"nhsNumber"`
	Status        string `json:"status"`
	// NotShared: the person withdrew consent to share the record beyond
	// their home; it will not open here: call the home.
	NotShared bool `json:"notShared,omitempty"`
}

// OpenRequest is a haven-open message's data: an advice-line clinician
// opens a resident's record for a call, with a reason. Claim is the
// break-glass event, signed by the clinician like an audit event (Action
// "break-glass", Resident the record, Detail the reason typed); the relay
// records it in its audit log before it sends a byte of the record.
type OpenRequest struct {
	ID    string     `json:"id"`
	Claim AuditEvent `json:"claim"`
}

// OpenResult is the relay's answer. On success the record and its
// timeline follow as haven-doc messages, and the device may hold them
// until Until, which each use moves on; Code is an error code otherwise.
type OpenResult struct {
	ID       string    `json:"id"`
	Record   string    `json:"record,omitempty"`
	Timeline string    `json:"timeline,omitempty"`
	Until    time.Time `json:"until,omitzero"`
	// KeepSeconds is the same as a span from now, for a device whose
	// clock may not agree with the relay's.
	KeepSeconds int64  `json:"keepSeconds,omitempty"`
	Code        string `json:"code,omitempty"`
}

// ReviewRequest is a haven-review message's data: an information-governance
// lead, signed in on a desktop of their organisation, asks for the
// break-glass accesses awaiting review (Seq 0) or records a review of one.
// Claim is signed by their certificate like an audit event (Action
// "review-list" or "review", Detail the review's note).
type ReviewRequest struct {
	ID    string     `json:"id"`
	Seq   uint64     `json:"seq,omitempty"`
	Claim AuditEvent `json:"claim"`
}

// ReviewList is the relay's answer: the accesses still awaiting review.
type ReviewList struct {
	ID      string          `json:"id"`
	Pending []PendingAccess `json:"pending"`
	Code    string          `json:"code,omitempty"`
}

// PendingAccess is one break-glass access awaiting review, as the relay
// recorded it. Text a device typed has every control character escaped.
type PendingAccess struct {
	Seq      uint64    `json:"seq"`
	Received time.Time `json:"received"`
	Device   string    `json:"device"` // its name and organisation
	Staff    string    `json:"staff"`  // the clinician's name, from their certificate
	Role     string    `json:"role"`
	Resident string    `json:"resident"` // the record's document ID
	Home     string    `json:"home"`     // the home's name
	Reason   string    `json:"reason"`
}

// Actions the relay records for these requests.
const (
	ActionBreakGlass = "break-glass"
	ActionReviewList = "review-list"
	ActionReview     = "review"
	ActionSearch     = "search"
)
