package record

import (
	"crypto/ed25519"
	"time"

	"haven/shared/cert"
)

// testOrg certifies every test editor; testTrust verifies against it. (The
// recordtest package does this for other packages; it imports record, so
// record's own tests cannot use it.)
var testOrgKey, testTrust = func() (ed25519.PrivateKey, *cert.Trust) {
	pub, priv := cert.NewKey()
	return priv, cert.NewTrust(pub, nil)
}()

// certify issues a test certificate for a, valid for this century.
func certify(a Author) KeySigner {
	pub, priv := cert.NewKey()
	c := cert.Certificate{ID: cert.NewID(), Org: "org-test", Staff: a.UserID, Name: a.Name, Role: string(a.Role),
		Registration: a.RegNo, PublicKey: pub, ValidFrom: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		ValidUntil: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}.Sign(testOrgKey)
	return KeySigner{Cert: &c, Key: priv}
}
