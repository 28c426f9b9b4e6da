package cert

import (
	"crypto/ed25519"
	"crypto/sha256"
	"sync"
)

// A record is read again after every change that reaches it, and reading
// checks every signed decision in it and the certificate behind each: the
// same few signatures, verified over and over, were most of the cost of
// reading a record. Verify remembers the signatures it has found good.
//
// Invariants: only a good signature is remembered, under the SHA-256 of
// key, message and signature together, so a remembered answer is exactly
// the answer ed25519.Verify would give again; a bad one is checked afresh
// every time. The memory is bounded (verifiedMax entries) and forgotten
// whole when full, which costs only time.
const verifiedMax = 1 << 14

var verified = struct {
	sync.Mutex
	good map[[sha256.Size]byte]struct{}
}{good: map[[sha256.Size]byte]struct{}{}}

// Verify reports whether sig is pub's valid signature of msg
// (ed25519.Verify), remembering good signatures.
func Verify(pub ed25519.PublicKey, msg, sig []byte) bool {
	if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
		return false
	}
	h := sha256.New()
	h.Write(pub)
	h.Write(sig)
	h.Write(msg)
	var k [sha256.Size]byte
	h.Sum(k[:0])
	verified.Lock()
	_, ok := verified.good[k]
	verified.Unlock()
	if ok {
		return true
	}
	if !ed25519.Verify(pub, msg, sig) {
		return false
	}
	verified.Lock()
	if len(verified.good) >= verifiedMax {
		clear(verified.good)
	}
	verified.good[k] = struct{}{}
	verified.Unlock()
	return true
}
