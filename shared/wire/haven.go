package wire

import (
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
	// Quotas: one device, or its organisation, asked for more than its
	// share. The device keeps what was refused and offers it again later.
	CodeQuotaConnections = "quota/connections"    // too many connections from this device
	CodeQuotaChanges     = "quota/changes"        // changes faster than the rate allows
	CodeQuotaDocuments   = "quota/documents"      // too many new documents this hour
	CodeQuotaDocBytes    = "quota/document-bytes" // the document would grow past its size limit
	CodeQuotaWaiting     = "quota/waiting"        // too many of this connection's messages waiting
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
