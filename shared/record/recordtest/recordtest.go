// Package recordtest gives tests an organisation key that certifies staff,
// so they can write signed decisions and read them back verified.
package recordtest

import (
	"crypto/ed25519"
	"time"

	"haven/shared/cert"
	"haven/shared/record"
)

// Org is an organisation key and the Trust that checks against it.
type Org struct {
	Key   ed25519.PrivateKey
	Trust *cert.Trust
}

// NewOrg makes a fresh organisation key.
func NewOrg() *Org {
	pub, priv := cert.NewKey()
	return &Org{Key: priv, Trust: cert.NewTrust(pub, nil)}
}

// Public is the organisation key's public half.
func (o *Org) Public() ed25519.PublicKey { return o.Key.Public().(ed25519.PublicKey) }

// Certify issues a certificate for the author, valid from 2000 to 2100,
// with a fresh staff key.
func (o *Org) Certify(a record.Author) record.KeySigner {
	pub, priv := cert.NewKey()
	c := cert.Certificate{
		ID: cert.NewID(), Org: "org-test", Staff: a.UserID, Name: a.Name, Role: string(a.Role), Registration: a.RegNo,
		PublicKey: pub, ValidFrom: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), ValidUntil: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
	}.Sign(o.Key)
	return record.KeySigner{Cert: &c, Key: priv}
}

// Revoke adds a revocation of c from at to the Trust.
func (o *Org) Revoke(c *cert.Certificate, at time.Time, earlier ...cert.Revocation) cert.Revocation {
	r := cert.Revocation{Cert: c.ID, At: at}.Sign(o.Key)
	o.Trust = cert.NewTrust(o.Public(), append(earlier, r))
	return r
}

// Editor returns an editor for the author, certified by o, whose rules
// verify against o.
func (o *Org) Editor(a record.Author, rules record.Rules) *record.Editor {
	rules.Trust = o.Trust
	ed, err := record.NewEditor(a, rules)
	if err != nil {
		panic(err)
	}
	ed.Signer = o.Certify(a)
	return ed
}
