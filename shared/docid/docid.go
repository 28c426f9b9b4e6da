// Package docid makes and parses document IDs in automerge-repo's form: the
// bs58check encoding (Bitcoin base58 of the payload followed by the first four
// bytes of its double SHA-256) of a 16-byte UUID. IDs of this form make
// `automerge:<id>` URLs that any automerge-repo client can open.
package docid

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
)

// ID is a parsed document ID: the UUID it encodes.
type ID [16]byte

// URLPrefix starts an automerge URL.
const URLPrefix = "automerge:"

// ErrMalformed is wrapped by every parse failure.
var ErrMalformed = errors.New("malformed document ID")

// New returns a fresh ID from a random version 4 UUID.
func New() ID {
	var id ID
	if _, err := rand.Read(id[:]); err != nil {
		panic(fmt.Sprintf("docid: no randomness: %v", err)) // crypto/rand never fails on Linux
	}
	id[6] = id[6]&0x0f | 0x40 // version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 4122 variant
	return id
}

// String is the bs58check form used on the wire and in URLs.
func (id ID) String() string {
	sum := checksum(id[:])
	return encode58(append(id[:], sum[:]...))
}

// URL is the automerge URL of the document.
func (id ID) URL() string { return URLPrefix + id.String() }

// UUID is the canonical hyphenated UUID text.
func (id ID) UUID() string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:16])
}

// Parse accepts a bs58check document ID or an automerge URL holding one: a
// valid checksum over a 16-byte payload. automerge-repo checks no more than
// the checksum (it does not insist on UUID version bits) and also accepts
// other payload lengths; Haven only ever creates 16-byte IDs, so it accepts
// only those. Anything else is an error wrapping ErrMalformed.
func Parse(s string) (ID, error) {
	var id ID
	raw := strings.TrimPrefix(s, URLPrefix)
	if raw == "" {
		return id, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if len(raw) > 40 { // 20 bytes never need more than 28 characters
		return id, fmt.Errorf("%w: %d characters is too long", ErrMalformed, len(raw))
	}
	b, err := decode58(raw)
	if err != nil {
		return id, err
	}
	if len(b) != len(id)+4 {
		return id, fmt.Errorf("%w: decodes to %d bytes, want %d", ErrMalformed, len(b), len(id)+4)
	}
	payload, sum := b[:len(id)], b[len(id):]
	want := checksum(payload)
	if !bytes.Equal(sum, want[:]) {
		return id, fmt.Errorf("%w: checksum mismatch", ErrMalformed)
	}
	copy(id[:], payload)
	return id, nil
}

// MustParse is Parse for constants in tests and demo data.
func MustParse(s string) ID {
	id, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return id
}

func checksum(payload []byte) [4]byte {
	first := sha256.Sum256(payload)
	second := sha256.Sum256(first[:])
	return [4]byte(second[:4])
}

const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"

var index = func() (t [256]int8) {
	for i := range t {
		t[i] = -1
	}
	for i := 0; i < len(alphabet); i++ {
		t[alphabet[i]] = int8(i)
	}
	return t
}()

// encode58 is base58 by repeated division; inputs here are 20 bytes, so the
// quadratic cost is irrelevant.
func encode58(b []byte) string {
	zeros := 0
	for zeros < len(b) && b[zeros] == 0 {
		zeros++
	}
	digits := make([]byte, 0, len(b)*138/100+1) // base58 digits, least significant first
	for _, c := range b[zeros:] {
		carry := int(c)
		for i := range digits {
			carry += int(digits[i]) << 8
			digits[i] = byte(carry % 58)
			carry /= 58
		}
		for carry > 0 {
			digits = append(digits, byte(carry%58))
			carry /= 58
		}
	}
	out := make([]byte, zeros+len(digits))
	for i := 0; i < zeros; i++ {
		out[i] = alphabet[0]
	}
	for i, d := range digits {
		out[len(out)-1-i] = alphabet[d]
	}
	return string(out)
}

func decode58(s string) ([]byte, error) {
	zeros := 0
	for zeros < len(s) && s[zeros] == alphabet[0] {
		zeros++
	}
	bytesLE := make([]byte, 0, len(s)) // least significant first
	for i := zeros; i < len(s); i++ {
		v := index[s[i]]
		if v < 0 {
			return nil, fmt.Errorf("%w: %q is not a base58 character", ErrMalformed, s[i])
		}
		carry := int(v)
		for j := range bytesLE {
			carry += int(bytesLE[j]) * 58
			bytesLE[j] = byte(carry)
			carry >>= 8
		}
		for carry > 0 {
			bytesLE = append(bytesLE, byte(carry))
			carry >>= 8
		}
	}
	out := make([]byte, zeros+len(bytesLE))
	for i, c := range bytesLE {
		out[len(out)-1-i] = c
	}
	return out, nil
}
