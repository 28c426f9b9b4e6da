package cert

import (
	"crypto/ed25519"
	"fmt"
	"testing"
)

// A remembered good signature must never make a bad one pass: not a
// changed message, not a changed signature, not another key, however often
// the good one was checked first, and not after the memory was emptied.
func TestVerifyRemembersOnlyGoodSignatures(t *testing.T) {
	key, other := fixedKey(7), fixedKey(8)
	pub := key.Public().(ed25519.PublicKey)
	msg := []byte("cpr: not for resuscitation")
	sig := ed25519.Sign(key, msg)
	for i := range 3 {
		if !Verify(pub, msg, sig) {
			t.Fatalf("check %d: a good signature was refused", i)
		}
	}
	badSig := append([]byte(nil), sig...)
	badSig[10] ^= 1
	cases := map[string]bool{
		"changed message":   Verify(pub, []byte("cpr: for resuscitation"), sig),
		"changed signature": Verify(pub, msg, badSig),
		"another key":       Verify(other.Public().(ed25519.PublicKey), msg, sig),
		"short signature":   Verify(pub, msg, sig[:63]),
		"no key":            Verify(nil, msg, sig),
	}
	for name, ok := range cases {
		if ok {
			t.Errorf("%s: accepted after the good signature was remembered", name)
		}
	}
	// Fill the memory past its bound: it empties and still answers truly.
	for i := range verifiedMax + 10 {
		m := []byte(fmt.Sprint("entry ", i))
		Verify(pub, m, ed25519.Sign(key, m))
	}
	verified.Lock()
	n := len(verified.good)
	verified.Unlock()
	if n > verifiedMax {
		t.Errorf("memory holds %d signatures, bound %d", n, verifiedMax)
	}
	if !Verify(pub, msg, sig) || Verify(pub, msg, badSig) {
		t.Error("after the memory emptied, answers changed")
	}
}
