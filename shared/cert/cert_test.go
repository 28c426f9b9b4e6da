package cert

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"testing"
	"time"
)

// fixedKey is a key derived from a fixed seed, so the vectors below are
// reproducible by any implementation of Ed25519 and of the encoding.
func fixedKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

func TestEncodeVectors(t *testing.T) {
	for _, tc := range []struct {
		fields []string
		want   string
	}{
		{nil, "00"},
		{[]string{""}, "0100"},
		{[]string{"ab", "c"}, "0202616201" + "63"},
		{[]string{string(bytes.Repeat([]byte{'x'}, 200))}, "01c801" + hex.EncodeToString(bytes.Repeat([]byte{'x'}, 200))},
	} {
		got := EncodeStrings(tc.fields...)
		if hex.EncodeToString(got) != tc.want {
			t.Errorf("EncodeStrings(%q) = %x, want %s", tc.fields, got, tc.want)
		}
		back, err := DecodeFields(got)
		if err != nil || len(back) != len(tc.fields) {
			t.Fatalf("DecodeFields(%x) = %q, %v", got, back, err)
		}
		for i := range back {
			if string(back[i]) != tc.fields[i] {
				t.Errorf("field %d decoded as %q, want %q", i, back[i], tc.fields[i])
			}
		}
	}
}

func TestDecodeFieldsRefusesWhatEncodeNeverWrites(t *testing.T) {
	for name, b := range map[string]string{
		"empty":               "",
		"non-minimal count":   "8100",
		"non-minimal length":  "018000",
		"field overruns":      "0105616263",
		"bytes after":         "010161ff",
		"count beyond length": "05",
	} {
		raw, _ := hex.DecodeString(b)
		if _, err := DecodeFields(raw); !errors.Is(err, ErrEncoding) {
			t.Errorf("%s: DecodeFields(%s) = %v, want ErrEncoding", name, b, err)
		}
	}
}

func testCert(t testing.TB, org ed25519.PrivateKey) (Certificate, ed25519.PrivateKey) {
	staff := fixedKey(7)
	from := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := Certificate{ID: "crt-0000000000000001", Org: "hub-test", Staff: "staff-1", Name: "Dr Ada Quill", Role: "gp",
		Registration: "GMC 7000001", PublicKey: staff.Public().(ed25519.PublicKey), ValidFrom: from, ValidUntil: from.AddDate(2, 0, 0)}
	return c.Sign(org), staff
}

// TestCertificateVector pins the certificate's signing bytes and signature:
// a change to the encoding breaks every certificate ever issued, so it
// must show here first.
func TestCertificateVector(t *testing.T) {
	c, _ := testCert(t, fixedKey(1))
	if got := KeyID(fixedKey(1).Public().(ed25519.PublicKey)); c.Issuer != got {
		t.Fatalf("issuer %s, want %s", c.Issuer, got)
	}
	fields, err := DecodeFields(c.SigningBytes())
	if err != nil || len(fields) != 11 || string(fields[0]) != certTag || string(fields[4]) != "Dr Ada Quill" ||
		string(fields[8]) != "2026-01-01T00:00:00Z" || string(fields[9]) != "2028-01-01T00:00:00Z" || len(fields[7]) != 32 {
		t.Fatalf("signing bytes decode as %q, %v", fields, err)
	}
	if got := hex.EncodeToString(c.SigningBytes()); got != certVector {
		t.Errorf("signing bytes changed:\n got %s\nwant %s", got, certVector)
	}
	if got := hex.EncodeToString(c.Signature); got != certSigVector {
		t.Errorf("signature changed:\n got %s\nwant %s", got, certSigVector)
	}
}

// The certificate of testCert signed by fixedKey(1): its canonical
// encoding and Ed25519 signature.
const (
	certVector = "0b1a686176656e207374616666206365727469666963617465207631146372742d30303030303030303030303030303031" +
		"086875622d746573740773746166662d310c447220416461205175696c6c0267700b474d43203730303030303120" +
		"ea4a6c63e29c520abef5507b132ec5f9954776aebebe7b92421eea691446d22c" +
		"14323032362d30312d30315430303a30303a30305a14323032382d30312d30315430303a30303a30305a" +
		"1033343735306639386264353966636663"
	certSigVector = "4c907e3d0a342e131ad47da76544c030c414e80d758b1641cb9b1b6374dd9308" +
		"034ee260abfefa23867dd13459aca69d0d4fb9796f26ab3fb45740d2348e6b03"
)

func TestCertificateVerify(t *testing.T) {
	org := fixedKey(1)
	anchor := org.Public().(ed25519.PublicKey)
	c, _ := testCert(t, org)
	if err := c.Verify(anchor); err != nil {
		t.Fatalf("Verify = %v", err)
	}
	other := fixedKey(2)
	forged, _ := testCert(t, other)
	if err := forged.Verify(anchor); !errors.Is(err, ErrForeignIssuer) {
		t.Errorf("certificate from another organisation key: Verify = %v, want ErrForeignIssuer", err)
	}
	// Same issuer ID, different signer: the signature must fail.
	forged.Issuer = c.Issuer
	if err := forged.Verify(anchor); !errors.Is(err, ErrBadSignature) {
		t.Errorf("re-labelled foreign certificate: Verify = %v, want ErrBadSignature", err)
	}
	for name, edit := range map[string]func(*Certificate){
		"role":  func(c *Certificate) { c.Role = "care-worker" },
		"name":  func(c *Certificate) { c.Name = "Dr Evil" },
		"reg":   func(c *Certificate) { c.Registration = "GMC 7000002" },
		"key":   func(c *Certificate) { c.PublicKey = fixedKey(9).Public().(ed25519.PublicKey) },
		"until": func(c *Certificate) { c.ValidUntil = c.ValidUntil.AddDate(10, 0, 0) },
		"org":   func(c *Certificate) { c.Org = "home-other" },
		"staff": func(c *Certificate) { c.Staff = "staff-2" },
	} {
		x := c
		x.PublicKey = bytes.Clone(c.PublicKey)
		edit(&x)
		if err := x.Verify(anchor); !errors.Is(err, ErrBadSignature) {
			t.Errorf("certificate with %s changed: Verify = %v, want ErrBadSignature", name, err)
		}
	}
}

func TestTrustChecksValidityAndRevocation(t *testing.T) {
	org := fixedKey(1)
	anchor := org.Public().(ed25519.PublicKey)
	c, _ := testCert(t, org)
	revokedAt := c.ValidFrom.AddDate(0, 6, 0)
	rev := Revocation{Cert: c.ID, At: revokedAt}.Sign(org)
	foreign := Revocation{Cert: c.ID, At: c.ValidFrom}.Sign(fixedKey(2))
	tr := NewTrust(anchor, []Revocation{rev, foreign})
	for _, tc := range []struct {
		at   time.Time
		want error
	}{
		{c.ValidFrom.Add(-time.Second), ErrNotYetValid},
		{c.ValidFrom, nil},
		{revokedAt.Add(-time.Second), nil},
		{revokedAt, ErrRevoked},
		{c.ValidUntil, ErrExpired},
	} {
		if err := tr.Check(c, tc.at); !errors.Is(err, tc.want) {
			t.Errorf("Check at %v = %v, want %v", tc.at, err, tc.want)
		}
	}
	if err := NewTrust(anchor, []Revocation{foreign}).Check(c, c.ValidFrom.Add(time.Hour)); err != nil {
		t.Errorf("a revocation signed by another key was believed: %v", err)
	}
	var none *Trust
	if err := none.Check(c, c.ValidFrom); err == nil {
		t.Error("a nil Trust vouched for a certificate")
	}
}

func FuzzDecodeFields(f *testing.F) {
	f.Add(EncodeStrings("haven", "a", ""))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		fields, err := DecodeFields(b)
		if err != nil {
			return
		}
		if again := Encode(fields...); !bytes.Equal(again, b) {
			t.Fatalf("DecodeFields accepted %x, which encodes back as %x: not canonical", b, again)
		}
	})
}
