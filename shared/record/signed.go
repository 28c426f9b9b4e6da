package record

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"haven/shared/cert"
)

// A decision entry is signed by its author's staff key, over this
// canonical encoding (package cert describes the encoding):
//
//	"haven decision entry v1"
//	resident document ID   (the record's "id", bs58check)
//	kind                   ("cpr", "clinicalFocus", …)
//	subject                (the attorney contact ID for attorney authority, else "")
//	entry ID               (its key in decisions.<kind>)
//	value                  (the entry's value: JSON text exactly as stored)
//	at                     (RFC 3339, UTC, to the second, exactly as stored)
//	reason
//	supersedes             (one field: the canonical encoding of the IDs, sorted)
//	certificate ID
//
// The entry carries the whole certificate beside the signature, so any
// reader can check it with nothing but the organisation key it learnt at
// enrolment and the revocations it has heard of: a record read offline,
// years later, proves itself.

const entryTag = "haven decision entry v1"

// EntrySigningBytes is the canonical encoding an entry's author signs.
func EntrySigningBytes(docID string, k Kind, e Entry) []byte {
	sup := slices.Clone(e.Supersedes)
	slices.Sort(sup)
	certID := ""
	if e.Cert != nil {
		certID = e.Cert.ID
	}
	return cert.Encode([]byte(entryTag), []byte(docID), []byte(k), []byte(e.Subject), []byte(e.ID),
		[]byte(e.Value), []byte(e.At), []byte(e.Reason), cert.EncodeStrings(sup...), []byte(certID))
}

// Signer signs decisions for one member of staff: their certificate and
// their private key, unsealed by their PIN.
type Signer interface {
	Certificate() *cert.Certificate
	Sign(msg []byte) []byte
}

// KeySigner is a Signer over a certificate and its private key.
type KeySigner struct {
	Cert *cert.Certificate
	Key  ed25519.PrivateKey
}

func (s KeySigner) Certificate() *cert.Certificate { return s.Cert }
func (s KeySigner) Sign(msg []byte) []byte         { return ed25519.Sign(s.Key, msg) }

// Why an entry is not a decision. Each is a stable code (see Code), shown
// to staff in words and counted in the tamper alert.
var (
	ErrUnsigned         = errors.New("not signed")
	ErrEntrySignature   = errors.New("signature does not match the entry")
	ErrRoleMayNot       = errors.New("the signer's role may not record this decision")
	ErrBadValue         = errors.New("value not valid for this decision")
	ErrMissingSupersede = errors.New("supersedes an entry this record does not hold")
	ErrMalformedEntry   = errors.New("unreadable entry")
	ErrWrongKey         = errors.New("entry filed under another ID")
)

// EntryCode names why an entry failed, for metrics, logs and tests: one of
// a fixed set, never free text.
func EntryCode(err error) string {
	for _, c := range []struct {
		err  error
		code string
	}{
		{ErrUnsigned, "unsigned"}, {ErrEntrySignature, "bad-signature"}, {ErrRoleMayNot, "role-not-permitted"},
		{ErrBadValue, "bad-value"}, {ErrMissingSupersede, "missing-supersedes"}, {ErrMalformedEntry, "malformed"},
		{ErrWrongKey, "wrong-key"}, {cert.ErrForeignIssuer, "foreign-issuer"}, {cert.ErrBadSignature, "bad-certificate"},
		{cert.ErrMalformed, "bad-certificate"}, {cert.ErrNotYetValid, "certificate-not-yet-valid"},
		{cert.ErrExpired, "certificate-expired"}, {cert.ErrRevoked, "certificate-revoked"},
	} {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "unverified"
}

// CertificateAuthor is the author a certificate names, at a device.
func CertificateAuthor(c *cert.Certificate, device string) Author {
	return Author{UserID: c.Staff, Name: c.Name, Role: Role(c.Role), RegNo: c.Registration, DeviceID: device}
}

// VerifyEntry checks one entry of kind k in the resident document docID,
// stored under key: a signature by a certificate that trust vouches for at
// the entry's time, a role that may record the kind, and a value valid
// for it. On success it returns the entry with its author taken from the
// certificate, so nothing shown about who decided comes from the writer's
// own word. Whether what it supersedes exists needs the whole list: see
// newState.
func VerifyEntry(trust *cert.Trust, docID string, k Kind, key string, e Entry) (Entry, error) {
	if e.ID != key {
		return e, ErrWrongKey
	}
	if e.Cert == nil || len(e.Sig) == 0 {
		return e, ErrUnsigned
	}
	at, err := time.Parse(time.RFC3339, e.At)
	if err != nil || cert.Time(at) != e.At {
		return e, fmt.Errorf("%w: time %q", ErrMalformedEntry, e.At)
	}
	if err := trust.Check(*e.Cert, at); err != nil {
		return e, err
	}
	if !cert.Verify(e.Cert.PublicKey, EntrySigningBytes(docID, k, e), e.Sig) {
		return e, ErrEntrySignature
	}
	e.Author = CertificateAuthor(e.Cert, e.Author.DeviceID)
	if !CanDecide(e.Author.Role, k) {
		return e, ErrRoleMayNot
	}
	value, err := decodeValue(k, e.Value)
	if err != nil {
		return e, fmt.Errorf("%w: %v", ErrBadValue, err)
	}
	// Dates in the value may not lie after the entry (a day's grace for
	// clocks in other time zones).
	rules := Rules{Now: func() time.Time { return at.Add(24 * time.Hour) }}
	if err := ValidateDecision(k, e.Subject, value, e.Reason, e.Author, rules); err != nil {
		return e, fmt.Errorf("%w: %v", ErrBadValue, err)
	}
	return e, nil
}

// decodeValue reads an entry's stored value as its kind's type.
func decodeValue(k Kind, raw string) (any, error) {
	var v any
	switch k {
	case KindCPR, KindFocus:
		var s string
		err := json.Unmarshal([]byte(raw), &s)
		return s, err
	case KindCeiling:
		v = &Ceiling{}
	case KindAllergies:
		v = &Allergies{}
	case KindADRT:
		v = &ADRT{}
	case KindPlaceOfDeath:
		v = &PlaceOfDeath{}
	case KindAttorney:
		v = &AttorneyAuthority{}
	case KindHome:
		v = &Transfer{}
	default:
		return nil, fmt.Errorf("unknown kind %q", k)
	}
	if err := json.Unmarshal([]byte(raw), v); err != nil {
		return nil, err
	}
	switch x := v.(type) {
	case *Ceiling:
		return *x, nil
	case *Allergies:
		return *x, nil
	case *ADRT:
		return *x, nil
	case *PlaceOfDeath:
		return *x, nil
	case *AttorneyAuthority:
		return *x, nil
	case *Transfer:
		return *x, nil
	}
	return nil, errors.New("unreachable")
}

// Unverified is an entry that is not a decision, and why.
type Unverified struct {
	Entry  Entry
	Reason error
}

// Words says why, for staff.
func (u Unverified) Words() string {
	msg := u.Reason.Error()
	if i := strings.Index(msg, ": "); i > 0 && errors.Is(u.Reason, ErrBadValue) {
		msg = msg[:i]
	}
	return msg
}
