// Package cert is Haven's staff identity: certificates that the relay's
// organisation key issues for members of staff, revocations of them, and
// the canonical encoding that every signature in Haven covers.
//
// A certificate binds a staff member's Ed25519 public key (made on their
// desktop; the private key never leaves it unsealed) to their
// organisation, staff ID, name, role and professional registration, for a
// period. The relay signs it with the organisation key in its data folder;
// every device learns that key's public half at enrolment and trusts no
// certificate or revocation signed by another. Roles mean nothing here:
// package record decides what each role may sign.
//
// # Canonical encoding
//
// Every signed value is signed over its canonical encoding: a list of
// byte strings, written as
//
//	uLEB128(number of fields) || for each field: uLEB128(length) || bytes
//
// whose first field is a tag naming what is signed and its version (for
// example "haven staff certificate v1"), so a signature over one kind of
// value can never be read as another. Text is UTF-8 as given (no
// normalisation: the signer and the reader encode the same stored
// string); times are RFC 3339 in UTC to the second ("2026-12-06T09:30:00Z");
// keys are their raw 32 bytes. The encoding is unambiguous (every field is
// length-prefixed) and unique (DecodeFields accepts only minimal lengths
// and nothing after the last field), so one value has exactly one
// encoding. The fields of each signed type are listed beside it.
package cert

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Encode returns the canonical encoding of fields.
func Encode(fields ...[]byte) []byte {
	n := binary.MaxVarintLen64
	for _, f := range fields {
		n += binary.MaxVarintLen64 + len(f)
	}
	out := make([]byte, 0, n)
	out = binary.AppendUvarint(out, uint64(len(fields)))
	for _, f := range fields {
		out = binary.AppendUvarint(out, uint64(len(f)))
		out = append(out, f...)
	}
	return out
}

// EncodeStrings is Encode over text fields.
func EncodeStrings(fields ...string) []byte {
	bs := make([][]byte, len(fields))
	for i, f := range fields {
		bs[i] = []byte(f)
	}
	return Encode(bs...)
}

// ErrEncoding is wrapped by DecodeFields's errors.
var ErrEncoding = errors.New("not a canonical encoding")

// maxFields bounds what DecodeFields reads from untrusted bytes.
const maxFields = 1 << 16

// DecodeFields reads a canonical encoding back into its fields. It refuses
// anything Encode would not have written: a non-minimal length, a field
// longer than the bytes left, or bytes after the last field.
func DecodeFields(b []byte) ([][]byte, error) {
	off := 0
	read := func() (uint64, bool) {
		v, n := binary.Uvarint(b[off:])
		if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
			return 0, false
		}
		off += n
		return v, true
	}
	count, ok := read()
	if !ok || count > maxFields || count > uint64(len(b)) {
		return nil, fmt.Errorf("%w: field count", ErrEncoding)
	}
	out := make([][]byte, count)
	for i := range out {
		l, ok := read()
		if !ok || l > uint64(len(b)-off) {
			return nil, fmt.Errorf("%w: field %d", ErrEncoding, i)
		}
		out[i] = b[off : off+int(l)]
		off += int(l)
	}
	if off != len(b) {
		return nil, fmt.Errorf("%w: %d bytes after the last field", ErrEncoding, len(b)-off)
	}
	return out, nil
}

// Time formats t as signed: RFC 3339, UTC, whole seconds.
func Time(t time.Time) string { return t.UTC().Truncate(time.Second).Format(time.RFC3339) }

// KeyID names an organisation key: the first 8 bytes of the SHA-256 of
// its public key, in hex. Certificates carry it so a reader can say
// "signed by another organisation's key" rather than merely "bad
// signature".
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// NewKey makes an Ed25519 key pair.
func NewKey() (ed25519.PublicKey, ed25519.PrivateKey) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return pub, priv
}

// NewID returns a random certificate ID: "crt-" and 16 hex digits.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return "crt-" + hex.EncodeToString(b[:])
}

// Certificate vouches that a public key is a member of staff's.
//
// Signed fields, in order: "haven staff certificate v1", ID, Org, Staff,
// Name, Role, Registration, PublicKey (32 bytes), ValidFrom, ValidUntil,
// Issuer.
type Certificate struct {
	ID           string            `json:"id"`
	Org          string            `json:"org"`
	Staff        string            `json:"staff"`
	Name         string            `json:"name"`
	Role         string            `json:"role"`
	Registration string            `json:"reg,omitempty"`
	PublicKey    ed25519.PublicKey `json:"pub"`
	ValidFrom    time.Time         `json:"from"`
	ValidUntil   time.Time         `json:"until"`
	Issuer       string            `json:"iss"` // KeyID of the organisation key
	Signature    []byte            `json:"sig"`
}

const certTag = "haven staff certificate v1"

// SigningBytes is the canonical encoding the issuer signs.
func (c Certificate) SigningBytes() []byte {
	return Encode([]byte(certTag), []byte(c.ID), []byte(c.Org), []byte(c.Staff), []byte(c.Name),
		[]byte(c.Role), []byte(c.Registration), c.PublicKey, []byte(Time(c.ValidFrom)),
		[]byte(Time(c.ValidUntil)), []byte(c.Issuer))
}

// Sign fills in Issuer and Signature with the organisation key. Times are
// truncated to the second, as they are signed.
func (c Certificate) Sign(key ed25519.PrivateKey) Certificate {
	c.ValidFrom, c.ValidUntil = c.ValidFrom.UTC().Truncate(time.Second), c.ValidUntil.UTC().Truncate(time.Second)
	c.Issuer = KeyID(key.Public().(ed25519.PublicKey))
	c.Signature = ed25519.Sign(key, c.SigningBytes())
	return c
}

// Reasons a certificate, revocation or signature fails. Each is a stable
// code: readers show it, tests and metrics match it.
var (
	ErrForeignIssuer = errors.New("signed by another organisation's key")
	ErrBadSignature  = errors.New("signature does not match")
	ErrMalformed     = errors.New("malformed certificate")
	ErrNotYetValid   = errors.New("certificate not yet valid at that time")
	ErrExpired       = errors.New("certificate expired at that time")
	ErrRevoked       = errors.New("certificate revoked before that time")
)

// Verify checks the certificate's shape and that the organisation key
// anchor signed it.
func (c Certificate) Verify(anchor ed25519.PublicKey) error {
	if len(anchor) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: no organisation key to check against", ErrForeignIssuer)
	}
	if len(c.PublicKey) != ed25519.PublicKeySize || c.ID == "" || c.Staff == "" || c.Role == "" ||
		!c.ValidUntil.After(c.ValidFrom) || len(c.Signature) != ed25519.SignatureSize {
		return ErrMalformed
	}
	if c.Issuer != KeyID(anchor) {
		return ErrForeignIssuer
	}
	if !Verify(anchor, c.SigningBytes(), c.Signature) {
		return ErrBadSignature
	}
	return nil
}

// ValidAt reports why the certificate does not cover time t, or nil.
func (c Certificate) ValidAt(t time.Time) error {
	switch {
	case t.Before(c.ValidFrom):
		return ErrNotYetValid
	case !t.Before(c.ValidUntil):
		return ErrExpired
	}
	return nil
}

// Revocation withdraws a certificate from a moment on: what its key signed
// before At stays valid, what it signed at or after At does not.
//
// Signed fields, in order: "haven certificate revocation v1", Cert, At,
// Issuer.
type Revocation struct {
	Cert      string    `json:"cert"`
	At        time.Time `json:"at"`
	Issuer    string    `json:"iss"`
	Signature []byte    `json:"sig"`
}

const revocationTag = "haven certificate revocation v1"

// SigningBytes is the canonical encoding the issuer signs.
func (r Revocation) SigningBytes() []byte {
	return EncodeStrings(revocationTag, r.Cert, Time(r.At), r.Issuer)
}

// Sign fills in Issuer and Signature.
func (r Revocation) Sign(key ed25519.PrivateKey) Revocation {
	r.At = r.At.UTC().Truncate(time.Second)
	r.Issuer = KeyID(key.Public().(ed25519.PublicKey))
	r.Signature = ed25519.Sign(key, r.SigningBytes())
	return r
}

// Verify checks that the organisation key anchor signed the revocation.
func (r Revocation) Verify(anchor ed25519.PublicKey) error {
	if len(anchor) != ed25519.PublicKeySize || r.Issuer != KeyID(anchor) {
		return ErrForeignIssuer
	}
	if !ed25519.Verify(anchor, r.SigningBytes(), r.Signature) {
		return ErrBadSignature
	}
	return nil
}

// Trust is what a reader checks signatures against: the organisation key
// it learnt at enrolment and the revocations it has heard of. The zero
// Trust verifies nothing, so a reader that forgot to load it shows every
// decision as unverified, never as settled.
type Trust struct {
	Anchor  ed25519.PublicKey
	revoked map[string]time.Time
}

// NewTrust returns a Trust over anchor with the given revocations; those
// not signed by anchor are ignored.
func NewTrust(anchor ed25519.PublicKey, revocations []Revocation) *Trust {
	t := &Trust{Anchor: anchor, revoked: map[string]time.Time{}}
	for _, r := range revocations {
		if r.Verify(anchor) != nil {
			continue
		}
		if at, ok := t.revoked[r.Cert]; !ok || r.At.Before(at) {
			t.revoked[r.Cert] = r.At
		}
	}
	return t
}

// RevokedAt reports when a certificate was revoked.
func (t *Trust) RevokedAt(certID string) (time.Time, bool) {
	if t == nil {
		return time.Time{}, false
	}
	at, ok := t.revoked[certID]
	return at, ok
}

// Check reports why c cannot vouch for something its key signed at time
// at, or nil: it must be signed by the anchor, cover at, and not be
// revoked at or before at.
func (t *Trust) Check(c Certificate, at time.Time) error {
	if t == nil {
		return fmt.Errorf("%w: no organisation key to check against", ErrForeignIssuer)
	}
	if err := c.Verify(t.Anchor); err != nil {
		return err
	}
	if err := c.ValidAt(at); err != nil {
		return err
	}
	if r, ok := t.revoked[c.ID]; ok && !at.Before(r) {
		return ErrRevoked
	}
	return nil
}

// CleanText checks a name or other short text for a certificate: UTF-8,
// no control characters (they could rewrite a terminal that prints it),
// at most n runes. It returns the text trimmed.
func CleanText(what, s string, n int) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case !utf8.ValidString(s):
		return "", fmt.Errorf("%s is not valid UTF-8", what)
	case strings.ContainsFunc(s, unicode.IsControl):
		return "", fmt.Errorf("%s contains a control character", what)
	case utf8.RuneCountInString(s) > n:
		return "", fmt.Errorf("%s is longer than %d characters", what, n)
	}
	return s, nil
}
