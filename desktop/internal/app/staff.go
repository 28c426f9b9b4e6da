package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"haven/shared/cert"
	"haven/shared/record"
	"haven/shared/wire"
)

// Staff identity on the desktop. What this computer trusts is kept in its
// encrypted store, under nsTrust:
//
//	revocations   JSON []cert.Revocation: every revocation the relay sent
//	certificates  JSON map staff ID → cert.Certificate: this computer's staff
//	requests      JSON map staff ID → wire.RequestStatus: requests not granted
//
// and is checked against the organisation key learnt at enrolment (sealed
// in the device file) every time it is used, so nothing written into the
// store by other means is believed. A member of staff's role is their
// certificate's, and only when the certificate names the public key of the
// signing key their own PIN unseals.

const (
	nsTrust       = "trust"
	keyRevoked    = "revocations"
	keyCerts      = "certificates"
	keyReqStatus  = "requests"
	trustSaveWait = 5 * time.Second
)

// Staff is a member of staff as the screens show them.
type Staff struct {
	ID    string
	Name  string
	Role  record.Role
	RegNo string
	// Certified: a certificate from the organisation key vouches for
	// Name, Role and RegNo. Otherwise they are what was asked for, and
	// the person may write notes but not record decisions.
	Certified bool
	// Status says where an uncertified person's request stands, in words.
	Status string
}

// staffTrust is this computer's view of who is certified. Guarded by App.mu.
type staffTrust struct {
	anchor      ed25519.PublicKey
	revocations []cert.Revocation
	certs       map[string]cert.Certificate   // by staff ID, verified
	requests    map[string]wire.RequestStatus // by staff ID
	trust       *cert.Trust
}

// loadTrust reads the anchor (with the master key) and the store's trust.
// Caller holds a.mu; the store is open.
func (a *App) loadTrustLocked(master []byte) error {
	anchor, err := unseal(master, a.dev.Anchor)
	if err != nil || len(anchor) != ed25519.PublicKeySize {
		return errors.New("this computer's organisation key cannot be read: enrol it again")
	}
	t := staffTrust{anchor: anchor, certs: map[string]cert.Certificate{}, requests: map[string]wire.RequestStatus{}}
	read := func(key string, v any) {
		if b, err := a.st.Get(nsTrust, key); err == nil {
			if err := json.Unmarshal(b, v); err != nil {
				a.log.Warn("unreadable trust entry", "key", key)
			}
		}
	}
	var certs map[string]cert.Certificate
	read(keyRevoked, &t.revocations)
	read(keyCerts, &certs)
	read(keyReqStatus, &t.requests)
	t.trust = cert.NewTrust(anchor, t.revocations)
	for id, c := range certs {
		if c.Verify(anchor) == nil && c.Staff == id {
			t.certs[id] = c
		}
	}
	a.trustState = t
	a.loadHomesLocked()
	return nil
}

// Trust is what this computer checks decisions against; nil before the
// first unlock (nothing verifies).
func (a *App) Trust() *cert.Trust {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.trustState.trust
}

// revocationCount is how many revocations this computer knows: the list's
// cached rows compare it.
func (a *App) revocationCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.trustState.revocations)
}

// onTrust takes a haven-trust message from the relay: new revocations, and
// certificates issued for this computer's staff. A message under another
// organisation key is ignored: this computer trusts only the key it learnt
// at enrolment.
func (a *App) onTrust(t wire.Trust) {
	a.mu.Lock()
	st := a.trustState
	if a.st == nil || !bytes.Equal(t.Anchor, st.anchor) {
		a.mu.Unlock()
		a.log.Warn("trust message under another organisation key ignored")
		return
	}
	a.noteHomesLocked(t.Homes)
	changed := false
	have := map[string]bool{}
	for _, r := range st.revocations {
		have[r.Cert+r.At.String()] = true
	}
	revs := slices.Clone(st.revocations)
	for _, r := range t.Revocations {
		if r.Verify(st.anchor) == nil && !have[r.Cert+r.At.String()] {
			revs = append(revs, r)
			changed = true
		}
	}
	certs := map[string]cert.Certificate{}
	for id, c := range st.certs {
		certs[id] = c
	}
	for _, c := range t.Certificates {
		s := a.staffLocked(c.Staff)
		if s == nil || c.Verify(st.anchor) != nil || !bytes.Equal(c.PublicKey, s.Request.PublicKey) {
			continue
		}
		if old, ok := certs[c.Staff]; !ok || old.ID != c.ID {
			certs[c.Staff] = c
			changed = true
		}
	}
	reqs := map[string]wire.RequestStatus{}
	for _, r := range t.Requests {
		reqs[r.Staff] = r
	}
	if !maps2Equal(reqs, st.requests) {
		changed = true
	}
	a.mu.Unlock()
	if !changed {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), trustSaveWait)
	defer cancel()
	batch := map[string][]byte{}
	for key, v := range map[string]any{keyRevoked: revs, keyCerts: certs, keyReqStatus: reqs} {
		batch[key], _ = json.Marshal(v)
	}
	if err := a.st.PutMany(ctx, nsTrust, batch); err != nil {
		a.log.Error("saving trust", "err", err)
		return
	}
	a.mu.Lock()
	a.trustState.revocations, a.trustState.certs, a.trustState.requests = revs, certs, reqs
	a.trustState.trust = cert.NewTrust(st.anchor, revs)
	a.leaversSeenLocked()
	if u := a.user; u != nil {
		if s := a.staffLocked(u.ID); s != nil {
			a.user = a.resolveLocked(*s, u.signer.Key)
		}
	}
	a.mu.Unlock()
	a.idx.reverify()
	a.emit(Event{Kind: EventList})
	a.emit(Event{Kind: EventStatus})
}

func maps2Equal(a, b map[string]wire.RequestStatus) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// staffLocked finds a staff record. Caller holds a.mu.
func (a *App) staffLocked(id string) *staffRecord {
	for i := range a.dev.Staff {
		if a.dev.Staff[i].ID == id {
			return &a.dev.Staff[i]
		}
	}
	return nil
}

// viewLocked is how a staff record shows, from its certificate if there is
// one that holds now. Caller holds a.mu.
func (a *App) viewLocked(s staffRecord) Staff {
	v := Staff{ID: s.ID, Name: s.Name, Role: record.Role(s.Request.Role), RegNo: s.Request.Registration}
	st := a.trustState
	if st.trust == nil {
		return v // nothing unlocked yet: who is certified is not known
	}
	if c, ok := st.certs[s.ID]; ok && bytes.Equal(c.PublicKey, s.Request.PublicKey) {
		if err := st.trust.Check(c, a.opts.Now()); err == nil {
			v.Name, v.Role, v.RegNo, v.Certified = c.Name, record.Role(c.Role), c.Registration, true
			return v
		} else {
			v.Status = "certificate " + certWords(err)
			return v
		}
	}
	switch r, ok := st.requests[s.ID]; {
	case ok && r.State == wire.RequestRefused:
		v.Status = "certificate refused: " + r.Reason
	default:
		v.Status = "not yet certified"
	}
	return v
}

func certWords(err error) string {
	switch {
	case errors.Is(err, cert.ErrRevoked):
		return "revoked"
	case errors.Is(err, cert.ErrExpired):
		return "expired"
	case errors.Is(err, cert.ErrNotYetValid):
		return "not valid yet"
	}
	return "not valid"
}

// resolveLocked makes the signed-in user from a staff record and the
// signing key their PIN unsealed: certified, with a signer, if a valid
// certificate names that key; else not yet certified. Caller holds a.mu.
func (a *App) resolveLocked(s staffRecord, key ed25519.PrivateKey) *User {
	v := a.viewLocked(s)
	u := &User{Staff: v}
	u.signer.Key = key
	if v.Certified {
		c := a.trustState.certs[s.ID]
		if bytes.Equal(c.PublicKey, key.Public().(ed25519.PublicKey)) {
			u.signer.Cert = &c
		} else {
			u.Certified, u.Status = false, "this account's key does not match its certificate"
		}
	}
	u.author = record.Author{UserID: s.ID, Name: v.Name, Role: u.Acts(), RegNo: v.RegNo, DeviceID: a.dev.DeviceID}
	if !u.Certified {
		// What they write says so: their name as asked for, their role
		// what an uncertified person may do.
		u.author.Name += " (not yet certified as " + strings.ToLower(v.Role.Label()) + ")"
		u.author.RegNo = ""
	}
	return u
}

// Acts is the role the user acts with: their certificate's; without a
// valid certificate, a care worker's (notes only), whatever was asked for.
func (u *User) Acts() record.Role {
	if u == nil {
		return ""
	}
	if !u.Certified {
		return record.CareWorker
	}
	return u.Role
}

// unsealKey opens a staff member's signing key with the PIN key. A key
// that does not match the request made for it means the device file was
// edited: the account is refused, never promoted.
func unsealKey(s staffRecord, pinKey []byte) (ed25519.PrivateKey, error) {
	seed, err := unseal(pinKey, s.SealedKey)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, ErrWrongPIN
	}
	key := ed25519.NewKeyFromSeed(seed)
	if !bytes.Equal(key.Public().(ed25519.PublicKey), s.Request.PublicKey) {
		return nil, fmt.Errorf("this account's signing key does not match its request: the device file was changed; ask the home manager to add the account again")
	}
	return key, nil
}

// pendingRequests are the certificate requests of staff who have no valid
// certificate and have not been refused: sent to the relay on every
// connection until answered.
func (a *App) pendingRequests() []wire.CertRequest {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []wire.CertRequest
	for _, s := range a.dev.Staff {
		if v := a.viewLocked(s); v.Certified {
			continue
		}
		if r, ok := a.trustState.requests[s.ID]; ok && r.State == wire.RequestRefused {
			continue
		}
		out = append(out, s.Request)
	}
	return out
}

// sendRequests offers every pending certificate request to the relay.
func (a *App) sendRequests() {
	if a.client == nil {
		return
	}
	for _, r := range a.pendingRequests() {
		if !a.client.SendCertRequest(r) {
			return
		}
	}
}
