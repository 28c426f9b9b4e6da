package app

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"slices"
	"time"

	"haven/shared/record"
	"haven/shared/wire"
)

// Managing the team on this computer: a PIN reset with the person present,
// and a leaver's removal. Both end the person's old key: a reset gives them
// a new one (their old PIN may be known to someone else), a leaver none.
// The certificate of the old key is revoked at the relay on a home
// manager's signed word (a wire.Leaver); notices wait in the store, under
// nsTrust, until the relay's trust carries the revocation:
//
//	leavers   JSON []wire.Leaver: revocations asked for and not yet seen

const keyLeavers = "leavers"

// Errors the staff screen shows.
var (
	ErrNotStaffManager = errors.New("only a certified manager may add, reset or remove staff accounts")
	ErrNoSuchStaff     = errors.New("no such member of staff on this computer")
	ErrRemoveSelf      = errors.New("you cannot remove your own account while signed in with it")
	ErrResetSelf       = errors.New("another manager resets your PIN, with you present")
)

// StaffChange says what became of a reset or a removal beyond this
// computer.
type StaffChange struct {
	Staff Staff
	// Revoking: the old certificate's revocation was asked of the relay
	// (sent now, or when next connected).
	Revoking bool
	// AskAdministrator: the person had a certificate and the signed-in
	// manager's word does not revoke it (not a certified home manager):
	// an administrator must.
	AskAdministrator bool
}

// ResetPIN gives a member of staff who forgot their PIN a new one, chosen
// by them, with a manager signed in to authorise it. They keep their staff
// ID; their signing key is new, so their old certificate is revoked and a
// new one requested (at once for care staff a certified home manager
// vouches for; for registered clinicians once an administrator has checked).
func (a *App) ResetPIN(staffID, pin string) (StaffChange, error) {
	if err := CheckPIN(pin); err != nil {
		return StaffChange{}, err
	}
	u := a.CurrentUser()
	a.mu.Lock()
	defer a.mu.Unlock()
	old, err := a.otherStaffLocked(u, staffID, ErrResetSelf)
	if err != nil {
		return StaffChange{}, err
	}
	var voucher *record.KeySigner
	if u.Acts() == record.HomeManager && u.signer.Cert != nil {
		voucher = &u.signer
	}
	s, err := newStaffKey(old.ID, old.Name, record.Role(old.Request.Role), old.Request.Registration, pin, a.master, voucher)
	if err != nil {
		return StaffChange{}, err
	}
	change := a.endCertificateLocked(u, staffID)
	*old = s
	if err := a.dev.save(a.dir); err != nil {
		return StaffChange{}, err
	}
	a.setPinsLocked(staffID, 0, time.Time{})
	change.Staff = a.viewLocked(s)
	if a.client != nil {
		go a.sendRequests()
	}
	return change, nil
}

// RemoveStaff removes a leaver's account from this computer: they can no
// longer sign in here, and their certificate is revoked so nothing they
// sign anywhere from now on is trusted. What they recorded stays, under
// their name.
func (a *App) RemoveStaff(staffID string) (StaffChange, error) {
	u := a.CurrentUser()
	a.mu.Lock()
	defer a.mu.Unlock()
	s, err := a.otherStaffLocked(u, staffID, ErrRemoveSelf)
	if err != nil {
		return StaffChange{}, err
	}
	view := a.viewLocked(*s)
	change := a.endCertificateLocked(u, staffID)
	a.dev.Staff = slices.DeleteFunc(a.dev.Staff, func(x staffRecord) bool { return x.ID == staffID })
	if err := a.dev.save(a.dir); err != nil {
		return StaffChange{}, err
	}
	change.Staff = view
	return change, nil
}

// otherStaffLocked is the account of staffID when u may manage staff and
// it is another person's; self is the error for u's own. Caller holds a.mu.
func (a *App) otherStaffLocked(u *User, staffID string, self error) (*staffRecord, error) {
	switch {
	case !u.Acts().ManagesStaff(a.careHome()):
		return nil, ErrNotStaffManager
	case staffID == u.ID:
		return nil, self
	case a.st == nil:
		return nil, ErrLockedScreen
	}
	s := a.staffLocked(staffID)
	if s == nil {
		return nil, ErrNoSuchStaff
	}
	return s, nil
}

// endCertificateLocked asks for the revocation of staffID's certificate,
// if they have one: a leaver notice signed by u when u is a certified
// home manager, kept until the relay confirms. Caller holds a.mu.
func (a *App) endCertificateLocked(u *User, staffID string) StaffChange {
	c, ok := a.trustState.certs[staffID]
	if !ok {
		return StaffChange{}
	}
	if !u.Acts().RevokesStaff() || u.signer.Cert == nil {
		return StaffChange{AskAdministrator: true}
	}
	l := wire.Leaver{Cert: c.ID, Staff: staffID, At: a.opts.Now().UTC(), By: *u.signer.Cert}
	l.Sig = ed25519.Sign(u.signer.Key, l.SigningBytes())
	pending := append(a.leaversLocked(), l)
	if err := a.putLeaversLocked(pending); err != nil {
		a.log.Error("saving a leaver notice", "err", err)
		return StaffChange{AskAdministrator: true}
	}
	delete(a.trustState.certs, staffID)
	if a.client != nil {
		go a.client.SendLeaver(l)
	}
	return StaffChange{Revoking: true}
}

// leaversLocked are the leaver notices the relay has not yet confirmed.
// Caller holds a.mu; the store is open.
func (a *App) leaversLocked() []wire.Leaver {
	var out []wire.Leaver
	if b, err := a.st.Get(nsTrust, keyLeavers); err == nil {
		if err := json.Unmarshal(b, &out); err != nil {
			a.log.Warn("unreadable leaver notices")
		}
	}
	return out
}

func (a *App) putLeaversLocked(ls []wire.Leaver) error {
	b, err := json.Marshal(ls)
	if err != nil {
		return err
	}
	return a.st.Put(context.Background(), nsTrust, keyLeavers, b)
}

// leaversSeen drops the notices whose revocation the relay's trust now
// carries. Caller holds a.mu; the store is open.
func (a *App) leaversSeenLocked() {
	pending := a.leaversLocked()
	if len(pending) == 0 {
		return
	}
	revoked := map[string]bool{}
	for _, r := range a.trustState.revocations {
		revoked[r.Cert] = true
	}
	left := slices.DeleteFunc(slices.Clone(pending), func(l wire.Leaver) bool { return revoked[l.Cert] })
	if len(left) != len(pending) {
		if err := a.putLeaversLocked(left); err != nil {
			a.log.Error("saving leaver notices", "err", err)
		}
	}
}

// PendingLeavers counts the revocations asked for that the relay has not
// yet confirmed; the staff screen says so.
func (a *App) PendingLeavers() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil {
		return 0
	}
	return len(a.leaversLocked())
}

// sendLeavers offers every unconfirmed leaver notice to the relay.
func (a *App) sendLeavers() {
	if a.client == nil {
		return
	}
	a.mu.Lock()
	var pending []wire.Leaver
	if a.st != nil {
		pending = a.leaversLocked()
	}
	a.mu.Unlock()
	for _, l := range pending {
		if !a.client.SendLeaver(l) {
			return
		}
	}
}
