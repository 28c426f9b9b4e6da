package orgs

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"haven/shared/store"
)

// Device is an enrolled (or pending, or revoked) device of an organisation.
type Device struct {
	ID   string
	Org  string
	Name string
	// Created is when the administrator enrolled it and its code was issued.
	Created time.Time
	// CodeExpires is when its one-time code stops working; zero once the code is used or
	// the device revoked.
	CodeExpires time.Time
	// Enrolled is when the code was redeemed for a credential; zero until then.
	Enrolled time.Time
	// Revoked is when it was revoked; zero if it is not.
	Revoked time.Time
	// LastSeen is its last successful Authenticate; zero if never. The stored value lags by up
	// to a minute; Devices reports the latest this process knows.
	LastSeen time.Time
}

// Status is the device's state in a word, for listings: "revoked", "enrolled", "pending" (its
// code may still be redeemed at now) or "expired" (its code was never used and no longer works).
func (d Device) Status(now time.Time) string {
	switch {
	case !d.Revoked.IsZero():
		return "revoked"
	case !d.Enrolled.IsZero():
		return "enrolled"
	case now.Before(d.CodeExpires):
		return "pending"
	}
	return "expired"
}

// deviceRecord is a device as stored: the Device fields (but LastSeen, kept apart so that
// frequent writes of it never race a revocation) and the hashes of its secrets.
type deviceRecord struct {
	ID          string    `json:"id"`
	Org         string    `json:"org"`
	Name        string    `json:"name"`
	Created     time.Time `json:"created"`
	CodeHash    string    `json:"code_hash,omitempty"`
	CodeExpires time.Time `json:"code_expires,omitzero"`
	Enrolled    time.Time `json:"enrolled,omitzero"`
	CredHash    string    `json:"cred_hash,omitempty"`
	Revoked     time.Time `json:"revoked,omitzero"`
}

func (d deviceRecord) device() Device {
	return Device{ID: d.ID, Org: d.Org, Name: d.Name, Created: d.Created, CodeExpires: d.CodeExpires,
		Enrolled: d.Enrolled, Revoked: d.Revoked}
}

// Enrolment codes are typed by a person from a printout or a phone call: 12 characters of
// Crockford's base32 (no I, L, O or U), shown as ABCD-EFGH-JKLM, 60 random bits. Redeem accepts
// them in any case, with or without dashes or spaces, and reads O as 0 and I or L as 1.
//
// A code is stored only as its SHA-256. 60 bits are far beyond online guessing; offline, only
// someone holding the relay's store key could even see the hash, and that person can already
// read every record, so a slow hash would protect nothing.
const (
	codeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	codeLen      = 12
	codeGroup    = 4
)

// Credentials: "hvn1_" and 32 random bytes in unpadded URL-safe base64 (43 characters), so
// they pass unescaped in an Authorization header or a token query parameter, and the prefix
// lets secret scanners and humans recognise them.
//
// A credential is stored only as its SHA-256, and looked up by it. A fast unsalted hash is the
// right one here: with 256 random bits there is nothing to brute-force, so the slow salted
// hashes meant for passwords would only cost time on every connection, and would prevent the
// lookup by hash. Looking up by hash also keeps the comparison free of timing leaks: what
// varies with the input is the hash, which tells an attacker nothing about a stored secret.
const (
	credPrefix   = "hvn1_"
	credBytes    = 32
	credLen      = len(credPrefix) + (credBytes*8+5)/6
	credAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
)

func hashSecret(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func newCode() string {
	c := randomString(codeAlphabet, codeLen)
	var b strings.Builder
	for i := 0; i < codeLen; i += codeGroup {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(c[i : i+codeGroup])
	}
	return b.String()
}

// normaliseCode returns code in canonical form (upper case, no separators), or false if it
// cannot be a code.
func normaliseCode(code string) (string, bool) {
	var b strings.Builder
	for _, c := range strings.ToUpper(code) {
		switch c {
		case '-', ' ':
			continue
		case 'O':
			c = '0'
		case 'I', 'L':
			c = '1'
		}
		if c > 0x7f || strings.IndexByte(codeAlphabet, byte(c)) < 0 {
			return "", false
		}
		b.WriteRune(c)
	}
	if b.Len() != codeLen {
		return "", false
	}
	return b.String(), true
}

func newCredential() string {
	b := make([]byte, credBytes)
	rand.Read(b) // never fails (crypto/rand)
	return credPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// credentialShapeOK reports whether cred looks like a credential, so garbage is refused
// without a store lookup.
func credentialShapeOK(cred string) bool {
	if len(cred) != credLen || !strings.HasPrefix(cred, credPrefix) {
		return false
	}
	for i := len(credPrefix); i < len(cred); i++ {
		if strings.IndexByte(credAlphabet, cred[i]) < 0 {
			return false
		}
	}
	return true
}

// EnrollDevice registers a new device of orgID, named name (for administrators: "Office PC",
// "Night nurse laptop"), and returns it with its one-time enrolment code, grouped for reading
// out as ABCD-EFGH-JKLM. The code works once, until ttl from now (ttl ≤ 0 means
// DefaultCodeTTL; at most MaxCodeTTL). The caller shows the code to the administrator and
// must not log it.
func (r *Registry) EnrollDevice(ctx context.Context, orgID, name string, ttl time.Duration) (Device, string, error) {
	name, err := cleanName("device name", name)
	if err != nil {
		return Device{}, "", err
	}
	switch {
	case ttl <= 0:
		ttl = DefaultCodeTTL
	case ttl > MaxCodeTTL:
		return Device{}, "", invalidf("an enrolment code may last at most %v, not %v", MaxCodeTTL, ttl)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, err := r.Org(orgID); err != nil {
		return Device{}, "", err
	}
	code := newCode()
	norm, _ := normaliseCode(code)
	now := r.now()
	rec := deviceRecord{Org: orgID, Name: name, Created: now, CodeHash: hashSecret(norm), CodeExpires: now.Add(ttl)}
	// The device first, then the code pointing at it: a code never names a missing device.
	id, err := r.createWithID(ctx, nsDevices, "dev", func(id string) any { rec.ID = id; return rec })
	if err != nil {
		return Device{}, "", err
	}
	// 60 random bits: a code another device holds is a curiosity, refused all the same.
	if err := r.createKey(context.WithoutCancel(ctx), nsCodes, rec.CodeHash, []byte(id)); err != nil {
		return Device{}, "", err
	}
	r.log().Info("device enrolment code issued", "device", id, "org", orgID, "ttl", ttl)
	return rec.device(), code, nil
}

// Redeem exchanges an enrolment code for the device's credential. A code works once: a second
// use, even concurrent with the first, an unknown, malformed or expired code all fail with
// ErrBadCode; so does the code of a device revoked before it was redeemed (ErrRevoked if the
// revocation could not delete the code). The credential is durably stored (as a hash) before
// Redeem returns it; it is never shown again.
func (r *Registry) Redeem(ctx context.Context, code string) (Device, string, error) {
	norm, ok := normaliseCode(code)
	if !ok {
		return Device{}, "", ErrBadCode
	}
	codeHash := hashSecret(norm)
	r.mu.Lock()
	defer r.mu.Unlock()
	// Read where they are authoritative: in a cluster a code enrolled on another node a moment
	// ago is found, and one redeemed there is not.
	idb, codeRev, err := r.read(ctx, nsCodes, codeHash)
	if errors.Is(err, store.ErrNotFound) {
		return Device{}, "", ErrBadCode
	}
	if err != nil {
		return Device{}, "", err
	}
	rec, err := r.currentDevice(ctx, string(idb))
	if errors.Is(err, ErrNotFound) {
		return Device{}, "", ErrBadCode
	}
	if err != nil {
		return Device{}, "", err
	}
	now := r.now()
	switch {
	case rec.CodeHash != codeHash || !rec.Enrolled.IsZero():
		err = ErrBadCode // stale entry: EnrollDevice or Redeem was cut short
	case !rec.Revoked.IsZero():
		err = ErrRevoked
	case !now.Before(rec.CodeExpires):
		err = ErrBadCode
	}
	// Spend the code first, durably: from here on it can never be redeemed again, whatever
	// happens next. If the steps below fail or the process dies, the device stays pending
	// with no usable code; the administrator enrols it again. In a cluster the code is spent
	// only if no other node spent it since it was read: of two redeeming at once, one wins.
	switch spent, derr := r.write(ctx, nsCodes, codeHash, nil, true, codeRev); {
	case derr != nil:
		return Device{}, "", derr
	case !spent:
		r.log().Info("enrolment code refused: redeemed on another node at the same moment", "device", rec.ID)
		return Device{}, "", ErrBadCode
	}
	if err != nil {
		r.log().Info("enrolment code refused", "device", rec.ID, "err", err)
		return Device{}, "", err
	}
	// The code is spent: finish even if ctx ends now.
	ctx = context.WithoutCancel(ctx)
	cred := newCredential()
	credHash := hashSecret(cred)
	// The index first, then the device record that makes it valid (Authenticate checks the
	// record names this hash): a crash between them leaves an entry that authenticates nobody.
	if err := r.createKey(ctx, nsCreds, credHash, []byte(rec.ID)); err != nil {
		return Device{}, "", err
	}
	err = r.changeDevice(ctx, rec.ID, func(d *deviceRecord) error {
		if !d.Revoked.IsZero() {
			return ErrRevoked // revoked on another node since it was read
		}
		d.CodeHash, d.CodeExpires = "", time.Time{}
		d.Enrolled, d.CredHash = now, credHash
		rec = *d
		return nil
	})
	if err != nil {
		return Device{}, "", err
	}
	r.log().Info("device enrolled", "device", rec.ID, "org", rec.Org)
	return rec.device(), cred, nil
}

// Authenticate returns the device presenting credential, and its organisation. It fails with
// ErrUnauthorized for a malformed or unknown credential and ErrRevoked for a revoked device
// (returning the device, so the caller can log which). A revocation takes effect at the next
// call. It records the device's LastSeen, writing to the store at most once a minute per
// device; a failed write is logged and retried at a later call, never fails the call.
func (r *Registry) Authenticate(ctx context.Context, credential string) (Device, Org, error) {
	if !credentialShapeOK(credential) {
		return Device{}, Org{}, ErrUnauthorized
	}
	credHash := hashSecret(credential)
	rec, err := r.credDevice(credHash)
	if errors.Is(err, ErrUnauthorized) && r.Cluster != nil {
		// Perhaps redeemed on another node a moment ago, before this one heard of it.
		rec, err = r.fetchCredDevice(ctx, credHash)
	}
	if err != nil {
		return Device{}, Org{}, err
	}
	d := rec.device()
	if !d.Revoked.IsZero() {
		return d, Org{}, ErrRevoked
	}
	org, err := r.Org(d.Org)
	if err != nil {
		return Device{}, Org{}, fmt.Errorf("device %s: %w", d.ID, err)
	}
	d.LastSeen = r.touch(ctx, d.ID)
	return d, org, nil
}

// credDevice is the device record this store holds for a credential hash, or ErrUnauthorized.
func (r *Registry) credDevice(credHash string) (deviceRecord, error) {
	idb, err := r.st.Get(nsCreds, credHash)
	if errors.Is(err, store.ErrNotFound) {
		return deviceRecord{}, ErrUnauthorized
	}
	if err != nil {
		return deviceRecord{}, err
	}
	rec, err := r.deviceRecord(string(idb))
	if errors.Is(err, ErrNotFound) || err == nil && rec.CredHash != credHash {
		return deviceRecord{}, ErrUnauthorized
	}
	return rec, err
}

// fetchCredDevice is credDevice read from the cluster, keeping what it finds here. Only a
// credential of the right shape that this node does not know costs the lookup.
func (r *Registry) fetchCredDevice(ctx context.Context, credHash string) (deviceRecord, error) {
	idb, credRev, err := r.Cluster.RegistryGet(ctx, nsCreds, credHash)
	if errors.Is(err, store.ErrNotFound) {
		return deviceRecord{}, ErrUnauthorized
	}
	if err != nil {
		return deviceRecord{}, err
	}
	b, devRev, err := r.Cluster.RegistryGet(ctx, nsDevices, string(idb))
	if errors.Is(err, store.ErrNotFound) {
		return deviceRecord{}, ErrUnauthorized
	}
	if err != nil {
		return deviceRecord{}, err
	}
	// The device first, as ApplyShared would keep them.
	if err := r.ApplyShared(ctx, nsDevices, string(idb), b, false, devRev); err != nil {
		return deviceRecord{}, err
	}
	if err := r.ApplyShared(ctx, nsCreds, credHash, idb, false, credRev); err != nil {
		return deviceRecord{}, err
	}
	return r.credDevice(credHash)
}

// currentDevice is device id where it is authoritative (see read), or an error matching
// ErrNotFound.
func (r *Registry) currentDevice(ctx context.Context, id string) (deviceRecord, error) {
	b, _, err := r.read(ctx, nsDevices, id)
	if errors.Is(err, store.ErrNotFound) {
		return deviceRecord{}, notFoundf("no device %q", id)
	}
	if err != nil {
		return deviceRecord{}, err
	}
	var rec deviceRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return deviceRecord{}, fmt.Errorf("device %q: %w", id, err)
	}
	return rec, nil
}

// changeDevice is a read-modify-write of device id (see change): fn changes it, or returns
// errUnchanged or an error. An unknown id is an error matching ErrNotFound.
func (r *Registry) changeDevice(ctx context.Context, id string, fn func(d *deviceRecord) error) error {
	return changeJSON(ctx, r, nsDevices, id, notFoundf("no device %q", id), fn)
}

// touch records that device id was seen now and returns now. It writes to the store if the
// last write for the device is at least seenInterval old.
func (r *Registry) touch(ctx context.Context, id string) time.Time {
	now := r.now()
	r.seenMu.Lock()
	t := r.seen[id]
	prev := t.written
	write := t.written.IsZero() || now.Sub(t.written) >= seenInterval
	if write {
		t.written = now // claimed: concurrent calls for this device do not write too
	}
	t.latest = maxTime(t.latest, now)
	r.seen[id] = t
	r.seenMu.Unlock()
	if !write {
		return now
	}
	if err := r.st.Put(ctx, nsSeen, id, []byte(now.Format(time.RFC3339Nano))); err != nil {
		r.log().Warn("recording last seen failed", "device", id, "err", err)
		r.seenMu.Lock()
		if t := r.seen[id]; t.written.Equal(now) {
			t.written = prev
			r.seen[id] = t
		}
		r.seenMu.Unlock()
	}
	return now
}

// Revoke revokes device id: its credential is refused from its next Authenticate, and an
// unused enrolment code stops working. Revoking a revoked device changes nothing. An unknown
// device is an error matching ErrNotFound. Connections already open are the caller's to close.
func (r *Registry) Revoke(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var code, org string
	err := r.changeDevice(ctx, id, func(rec *deviceRecord) error {
		if !rec.Revoked.IsZero() {
			return errUnchanged
		}
		code, org = rec.CodeHash, rec.Org
		rec.Revoked, rec.CodeHash, rec.CodeExpires = r.now(), "", time.Time{}
		return nil
	})
	if err != nil || org == "" {
		return err
	}
	if code != "" {
		// Tidiness only: Redeem refuses the code anyway, the record no longer names it.
		if err := r.del(context.WithoutCancel(ctx), nsCodes, code); err != nil {
			r.log().Warn("deleting a revoked device's code failed", "device", id, "err", err)
		}
	}
	r.log().Info("device revoked", "device", id, "org", org)
	return nil
}

// Device returns device id, or an error matching ErrNotFound.
func (r *Registry) Device(id string) (Device, error) {
	rec, err := r.deviceRecord(id)
	if err != nil {
		return Device{}, err
	}
	d := rec.device()
	d.LastSeen, err = r.lastSeen(id)
	return d, err
}

// Devices returns the devices of orgID, or of every organisation if orgID is empty, ordered
// by organisation ID, then enrolment time, then ID. An unknown orgID is an error matching
// ErrNotFound.
func (r *Registry) Devices(orgID string) ([]Device, error) {
	if orgID != "" {
		if _, err := r.Org(orgID); err != nil {
			return nil, err
		}
	}
	var out []Device
	err := r.st.Scan(nsDevices, "", func(key string, val []byte) error {
		var rec deviceRecord
		if err := json.Unmarshal(val, &rec); err != nil {
			return fmt.Errorf("device %q: %w", key, err)
		}
		if orgID == "" || rec.Org == orgID {
			out = append(out, rec.device())
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		if out[i].LastSeen, err = r.lastSeen(out[i].ID); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, func(a, b Device) int {
		return cmp.Or(cmp.Compare(a.Org, b.Org), a.Created.Compare(b.Created), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// lastSeen is the later of the stored last-seen time of device id and the one in memory.
func (r *Registry) lastSeen(id string) (time.Time, error) {
	r.seenMu.Lock()
	mem := r.seen[id].latest
	r.seenMu.Unlock()
	b, err := r.st.Get(nsSeen, id)
	if errors.Is(err, store.ErrNotFound) {
		return mem, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	t, err := time.Parse(time.RFC3339Nano, string(b))
	if err != nil {
		return time.Time{}, fmt.Errorf("last seen of device %s: %w", id, err)
	}
	return maxTime(t, mem), nil
}

func (r *Registry) deviceRecord(id string) (deviceRecord, error) {
	var rec deviceRecord
	if err := r.getJSON(nsDevices, id, &rec); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return deviceRecord{}, notFoundf("no device %q", id)
		}
		return deviceRecord{}, err
	}
	return rec, nil
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
