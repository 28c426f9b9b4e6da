package orgs

import (
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
	"haven/shared/store"
	"haven/shared/wire"
)

// Staff certificates. The relay's organisation key (Registry.Key, kept in a
// file beside the data folder, never in the store) signs a certificate for
// each member of staff whose request is granted, and a revocation for each
// leaver. Key layout:
//
//	staffreq  <device ID>/<request ID>   JSON StaffRequest
//	certs     <certificate ID>           JSON cert.Certificate
//	revoked   <certificate ID>           JSON cert.Revocation
//	preapproved <org ID>/<name>/<role>/<registration>   "" (an administrator's staff add)
//
// Who grants: a request for a care worker or senior carer that a home
// manager of the same home vouches for (their certificate and signature in
// the request) is granted at once; every other request (clinical roles,
// managers, the IG lead) waits for an administrator, who checks the
// registration number against the register, or was pre-approved with
// `staff add`. A demonstration organisation's requests are granted at once.

const (
	nsStaffReq    = "staffreq"
	nsCerts       = "certs"
	nsRevoked     = "revoked"
	nsPreapproved = "preapproved"
)

// CertificateValidity is how long a staff certificate lasts.
const CertificateValidity = 2 * 365 * 24 * time.Hour

// clockGrace backdates a certificate's start, so a desktop whose clock is a
// little behind can use it at once.
const clockGrace = 10 * time.Minute

// StaffRequest is a certificate request as the relay keeps it.
type StaffRequest struct {
	wire.CertRequest
	Device   string    `json:"device"`
	Org      string    `json:"org"`
	Received time.Time `json:"received"`
	State    string    `json:"state"` // pending, granted, refused
	Cert     string    `json:"cert,omitempty"`
	Reason   string    `json:"reason,omitempty"`
}

// Request states beyond wire's.
const requestGranted = "granted"

var (
	// ErrNoKey reports a registry without an organisation key.
	ErrNoKey = errors.New("the relay has no organisation signing key")
	// ErrBadRequest reports a certificate request that is malformed or
	// fails its proof; the error's text says which, for the desktop.
	ErrBadRequest = errors.New("certificate request refused")
)

func badRequest(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, a...))
}

// Anchor is the organisation key's public half, which devices learn at
// enrolment.
func (r *Registry) Anchor() ed25519.PublicKey {
	if r.Key == nil {
		return nil
	}
	return r.Key.Public().(ed25519.PublicKey)
}

// Trust returns the organisation key and every revocation, for checking
// signatures.
func (r *Registry) Trust() (*cert.Trust, []cert.Revocation, error) {
	revs, err := r.Revocations()
	if err != nil {
		return nil, nil, err
	}
	return cert.NewTrust(r.Anchor(), revs), revs, nil
}

// Revocations lists every revocation issued, oldest first.
func (r *Registry) Revocations() ([]cert.Revocation, error) {
	var out []cert.Revocation
	err := r.st.Scan(nsRevoked, "", func(_ string, val []byte) error {
		var rv cert.Revocation
		if err := json.Unmarshal(val, &rv); err != nil {
			return err
		}
		out = append(out, rv)
		return nil
	})
	slices.SortFunc(out, func(a, b cert.Revocation) int { return a.At.Compare(b.At) })
	return out, err
}

// RequestCertificate takes a certificate request from an authenticated
// device and grants it if the rules above allow, else keeps it pending. A
// request ID the device already sent returns the request as it stands.
func (r *Registry) RequestCertificate(ctx context.Context, dev Device, req wire.CertRequest) (StaffRequest, error) {
	if r.Key == nil {
		return StaffRequest{}, ErrNoKey
	}
	if !validID(req.ID, "req-") || !validID(req.Staff, "staff-") {
		return StaffRequest{}, badRequest("request and staff IDs are malformed")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key := dev.ID + "/" + req.ID
	if have, ok, err := r.currentRequest(ctx, key); ok || err != nil {
		return have, err
	}
	name, err := cert.CleanText("name", req.Name, maxNameLen)
	if err != nil || name == "" || name != req.Name {
		return StaffRequest{}, badRequest("the name is empty, too long or holds control characters")
	}
	role := record.Role(req.Role)
	if role.Label() == "" {
		return StaffRequest{}, badRequest("unknown role %q", req.Role)
	}
	reg, err := record.ValidateRegistration(role, req.Registration)
	if err != nil || reg != req.Registration {
		return StaffRequest{}, badRequest("registration: %v", err)
	}
	if len(req.PublicKey) != ed25519.PublicKeySize || !ed25519.Verify(req.PublicKey, req.SigningBytes(), req.Proof) {
		return StaffRequest{}, badRequest("the request is not signed by the key it names")
	}
	org, err := r.Org(dev.Org)
	if err != nil {
		return StaffRequest{}, err
	}
	sr := StaffRequest{CertRequest: req, Device: dev.ID, Org: dev.Org, Received: r.now(), State: wire.RequestPending}
	switch why, ok := r.autoGrant(org, req); {
	case ok:
		c, err := r.issue(ctx, sr)
		if err != nil {
			return StaffRequest{}, err
		}
		sr.State, sr.Cert = requestGranted, c.ID
		r.log().Info("staff certificate granted", "org", org.ID, "device", dev.ID, "cert", c.ID, "role", role, "why", why)
	default:
		r.log().Info("staff certificate requested", "org", org.ID, "device", dev.ID, "request", req.ID, "role", role)
	}
	b, err := json.Marshal(sr)
	if err != nil {
		return StaffRequest{}, err
	}
	if err := r.createKey(ctx, nsStaffReq, key, b); errors.Is(err, errTaken) {
		// The device sent it through another node at the same moment: that one stands.
		have, _, err := r.currentRequest(ctx, key)
		return have, err
	} else if err != nil {
		return StaffRequest{}, err
	}
	return sr, nil
}

// currentRequest is the request stored under key where it is authoritative (see read); false
// if there is none.
func (r *Registry) currentRequest(ctx context.Context, key string) (StaffRequest, bool, error) {
	b, _, err := r.read(ctx, nsStaffReq, key)
	if errors.Is(err, store.ErrNotFound) {
		return StaffRequest{}, false, nil
	}
	if err != nil {
		return StaffRequest{}, false, err
	}
	var sr StaffRequest
	return sr, true, json.Unmarshal(b, &sr)
}

// autoGrant decides whether a request needs no administrator, and why.
func (r *Registry) autoGrant(org Org, req wire.CertRequest) (string, bool) {
	if org.Demo {
		return "demonstration organisation", true
	}
	if _, err := r.st.Get(nsPreapproved, preapprovedKey(org.ID, req.Name, req.Role, req.Registration)); err == nil {
		return "pre-approved by an administrator", true
	}
	role := record.Role(req.Role)
	if (role != record.CareWorker && role != record.SeniorCarer) || req.By == nil || org.Kind != KindHome {
		return "", false
	}
	trust, _, err := r.Trust()
	if err != nil || trust.Check(*req.By, r.now()) != nil {
		return "", false
	}
	if record.Role(req.By.Role) != record.HomeManager || req.By.Org != org.ID ||
		!ed25519.Verify(req.By.PublicKey, req.SigningBytes(), req.BySig) {
		return "", false
	}
	return "vouched for by the home manager", true
}

// issue signs a certificate for a request. The caller holds r.mu.
func (r *Registry) issue(ctx context.Context, sr StaffRequest) (cert.Certificate, error) {
	now := r.now()
	c := cert.Certificate{
		ID: cert.NewID(), Org: sr.Org, Staff: sr.Staff, Name: sr.Name, Role: sr.Role, Registration: sr.Registration,
		PublicKey: sr.PublicKey, ValidFrom: now.Add(-clockGrace), ValidUntil: now.Add(CertificateValidity),
	}.Sign(r.Key)
	b, err := json.Marshal(c)
	if err != nil {
		return c, err
	}
	return c, r.createKey(ctx, nsCerts, c.ID, b)
}

func preapprovedKey(org, name, role, reg string) string {
	return org + "/" + strings.ToLower(name) + "/" + role + "/" + reg
}

// validID checks an ID a device chose: its prefix, then 4 to 64 letters,
// digits or dashes, so it can be stored and logged as it is.
func validID(id, prefix string) bool {
	rest, ok := strings.CutPrefix(id, prefix)
	if !ok || len(rest) < 4 || len(rest) > 64 {
		return false
	}
	for _, c := range rest {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// PreapproveStaff records that an administrator has checked a person's
// registration: a request from a device of org with exactly this name,
// role and registration is granted at once.
func (r *Registry) PreapproveStaff(ctx context.Context, orgID, name, role, reg string) error {
	if _, err := r.Org(orgID); err != nil {
		return err
	}
	name, err := cleanName("name", name)
	if err != nil {
		return err
	}
	if record.Role(role).Label() == "" {
		return invalidf("unknown role %q (one of %s)", role, rolesList())
	}
	if reg, err = record.ValidateRegistration(record.Role(role), reg); err != nil {
		return invalidf("registration: %v", err)
	}
	return r.put(ctx, nsPreapproved, preapprovedKey(orgID, name, role, reg), []byte{})
}

func rolesList() string {
	var out []string
	for _, ro := range record.Roles {
		out = append(out, string(ro))
	}
	return strings.Join(out, ", ")
}

// StaffRequests lists requests (of one organisation, or all), pending
// first, then by time received.
func (r *Registry) StaffRequests(orgID string) ([]StaffRequest, error) {
	var out []StaffRequest
	err := r.st.Scan(nsStaffReq, "", func(_ string, val []byte) error {
		var sr StaffRequest
		if err := json.Unmarshal(val, &sr); err != nil {
			return err
		}
		if orgID == "" || sr.Org == orgID {
			out = append(out, sr)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b StaffRequest) int {
		if (a.State == wire.RequestPending) != (b.State == wire.RequestPending) {
			if a.State == wire.RequestPending {
				return -1
			}
			return 1
		}
		return a.Received.Compare(b.Received)
	})
	return out, err
}

// findRequest finds a request by its ID. The caller holds r.mu.
func (r *Registry) findRequest(id string) (string, StaffRequest, error) {
	var key string
	var found StaffRequest
	err := r.st.Scan(nsStaffReq, "", func(k string, val []byte) error {
		if strings.HasSuffix(k, "/"+id) {
			key = k
			return json.Unmarshal(val, &found)
		}
		return nil
	})
	if err == nil && key == "" {
		err = notFoundf("no certificate request %q", id)
	}
	return key, found, err
}

// ApproveRequest grants a pending request: an administrator has checked who
// the person is and their registration.
func (r *Registry) ApproveRequest(ctx context.Context, id string) (cert.Certificate, error) {
	if r.Key == nil {
		return cert.Certificate{}, ErrNoKey
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key, _, err := r.findRequest(id)
	if err != nil {
		return cert.Certificate{}, err
	}
	// Decided once in the cluster: approved here while refused on another node, one of the
	// two finds the request no longer pending. A certificate issued for an approval that lost
	// is never handed to anyone.
	var c cert.Certificate
	var sr StaffRequest
	err = r.changeRequest(ctx, key, id, func(cur *StaffRequest) error {
		if c.ID == "" {
			if c, err = r.issue(ctx, *cur); err != nil {
				return err
			}
		}
		cur.State, cur.Cert = requestGranted, c.ID
		sr = *cur
		return nil
	})
	if err != nil {
		return cert.Certificate{}, err
	}
	r.log().Info("staff certificate granted", "org", sr.Org, "cert", c.ID, "role", sr.Role, "why", "administrator")
	if r.OnTrustChange != nil {
		r.OnTrustChange() // the requesting desktop, if connected, hears at once
	}
	return c, nil
}

// RefuseRequest refuses a pending request, with a reason the manager reads.
func (r *Registry) RefuseRequest(ctx context.Context, id, reason string) error {
	reason, err := cert.CleanText("reason", reason, 500)
	if err != nil {
		return invalidf("%v", err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	key, _, err := r.findRequest(id)
	if err != nil {
		return err
	}
	err = r.changeRequest(ctx, key, id, func(sr *StaffRequest) error {
		sr.State, sr.Reason = wire.RequestRefused, reason
		return nil
	})
	if err != nil {
		return err
	}
	if r.OnTrustChange != nil {
		r.OnTrustChange()
	}
	return nil
}

// changeRequest is a read-modify-write of the pending request id, stored under key (see
// change): fn decides it. A request no longer pending is ErrInvalid.
func (r *Registry) changeRequest(ctx context.Context, key, id string, fn func(sr *StaffRequest) error) error {
	return changeJSON(ctx, r, nsStaffReq, key, notFoundf("no certificate request %q", id), func(sr *StaffRequest) error {
		if sr.State != wire.RequestPending {
			return invalidf("request %s is %s, not pending", id, sr.State)
		}
		return fn(sr)
	})
}

// Certificates lists issued certificates (of one organisation, or all),
// by name.
func (r *Registry) Certificates(orgID string) ([]cert.Certificate, error) {
	var out []cert.Certificate
	err := r.st.Scan(nsCerts, "", func(_ string, val []byte) error {
		var c cert.Certificate
		if err := json.Unmarshal(val, &c); err != nil {
			return err
		}
		if orgID == "" || c.Org == orgID {
			out = append(out, c)
		}
		return nil
	})
	slices.SortFunc(out, func(a, b cert.Certificate) int { return strings.Compare(a.Name+a.ID, b.Name+b.ID) })
	return out, err
}

// Certificate returns an issued certificate by ID, or ErrNotFound.
func (r *Registry) Certificate(id string) (cert.Certificate, error) {
	var c cert.Certificate
	if id == "" || r.getJSON(nsCerts, id, &c) != nil {
		return c, notFoundf("no certificate %q", id)
	}
	return c, nil
}

// ErrUnsigned reports a claim that no member of staff signed.
var ErrUnsigned = errors.New("no staff signature")

// StaffSigned returns the certificate of the member of staff who signed msg
// on device dev at time at: one this relay issued, for dev's organisation,
// covering at and not revoked by then (trust is Trust's), whose key made
// sig. Otherwise it
// says why: ErrUnsigned, ErrNotFound (no such certificate),
// cert.ErrBadSignature, ErrForeignOrg, or the certificate's own reason
// (cert.ErrExpired, cert.ErrRevoked, ...).
func (r *Registry) StaffSigned(trust *cert.Trust, dev Device, certID string, msg, sig []byte, at time.Time) (cert.Certificate, error) {
	if certID == "" || len(sig) == 0 {
		return cert.Certificate{}, ErrUnsigned
	}
	c, err := r.Certificate(certID)
	if err != nil {
		return c, err
	}
	if c.Org != dev.Org {
		return c, ErrForeignOrg
	}
	if err := trust.Check(c, at); err != nil {
		return c, err
	}
	if !ed25519.Verify(c.PublicKey, msg, sig) {
		return c, cert.ErrBadSignature
	}
	return c, nil
}

// ErrForeignOrg reports a certificate of another organisation than the
// device's: staff sign in on their own organisation's computers.
var ErrForeignOrg = errors.New("certificate of another organisation")

// RevokeCertificate revokes a staff certificate from now: what its key
// signed before stays valid, what it signs from now on does not. Revoking
// twice keeps the first revocation.
func (r *Registry) RevokeCertificate(ctx context.Context, certID string) (cert.Revocation, error) {
	if r.Key == nil {
		return cert.Revocation{}, ErrNoKey
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	var c cert.Certificate
	if err := r.getJSON(nsCerts, certID, &c); err != nil {
		return cert.Revocation{}, notFoundf("no certificate %q", certID)
	}
	var rv cert.Revocation
	if err := r.getJSON(nsRevoked, certID, &rv); err == nil {
		return rv, nil
	}
	rv = cert.Revocation{Cert: certID, At: r.now()}.Sign(r.Key)
	b, err := json.Marshal(rv)
	if err != nil {
		return cert.Revocation{}, err
	}
	// The first revocation is kept, on whichever node it was made.
	switch err := r.createKey(ctx, nsRevoked, certID, b); {
	case errors.Is(err, errTaken):
		var first []byte
		if first, _, err = r.read(ctx, nsRevoked, certID); err != nil {
			return cert.Revocation{}, err
		}
		return rv, json.Unmarshal(first, &rv)
	case err != nil:
		return cert.Revocation{}, err
	}
	r.log().Info("staff certificate revoked", "org", c.Org, "cert", certID)
	if r.OnTrustChange != nil {
		r.OnTrustChange()
	}
	return rv, nil
}

// ErrNotPermitted refuses a leaver notice that is not a valid home
// manager's of the device's own organisation, about a certificate of it.
var ErrNotPermitted = errors.New("not permitted")

// RevokeForLeaver revokes a certificate on a home manager's word, brought
// by one of the organisation's devices: the notice must be signed with the
// key of the manager's certificate, valid now, of the device's
// organisation, and name a certificate of that organisation issued to the
// staff member it names. A manager does not revoke their own certificate
// (the home would be left without one to add staff); an administrator does.
func (r *Registry) RevokeForLeaver(ctx context.Context, dev Device, l wire.Leaver) (cert.Revocation, error) {
	refuse := func(why string) (cert.Revocation, error) {
		return cert.Revocation{}, fmt.Errorf("%w: %s", ErrNotPermitted, why)
	}
	trust, _, err := r.Trust()
	if err != nil {
		return cert.Revocation{}, err
	}
	if err := trust.Check(l.By, r.now()); err != nil {
		return refuse("the manager's certificate does not hold")
	}
	switch {
	case !record.Role(l.By.Role).RevokesStaff():
		return refuse("only a home manager removes staff")
	case l.By.Org != dev.Org:
		return refuse("the manager belongs to another organisation")
	case !ed25519.Verify(l.By.PublicKey, l.SigningBytes(), l.Sig):
		return refuse("the notice is not signed by the manager's key")
	case l.Cert == l.By.ID:
		return refuse("a manager cannot remove themselves")
	}
	var c cert.Certificate
	if err := r.getJSON(nsCerts, l.Cert, &c); err != nil || c.Org != dev.Org || c.Staff != l.Staff {
		return refuse("no such certificate in this organisation")
	}
	rv, err := r.RevokeCertificate(ctx, l.Cert)
	if err == nil {
		r.log().Info("staff certificate revoked by a home manager", "org", dev.Org, "device", dev.ID, "cert", l.Cert, "by", l.By.ID)
	}
	return rv, err
}

// TrustFor is the haven-trust message for a device: the organisation key,
// every revocation, and the certificates and open requests of the
// device's own staff.
func (r *Registry) TrustFor(dev Device) (wire.Trust, error) {
	t := wire.Trust{Anchor: r.Anchor()}
	var err error
	if t.Revocations, err = r.Revocations(); err != nil {
		return t, err
	}
	list, err := r.Orgs()
	if err != nil {
		return t, err
	}
	for _, o := range list {
		if o.Kind == KindHome {
			t.Homes = append(t.Homes, wire.HomeName{ID: o.ID, Name: o.Name})
		}
	}
	var certIDs []string
	err = r.st.Scan(nsStaffReq, dev.ID+"/", func(_ string, val []byte) error {
		var sr StaffRequest
		if err := json.Unmarshal(val, &sr); err != nil {
			return err
		}
		switch sr.State {
		case requestGranted:
			certIDs = append(certIDs, sr.Cert)
		default:
			t.Requests = append(t.Requests, wire.RequestStatus{ID: sr.ID, Staff: sr.Staff, State: sr.State, Reason: sr.Reason})
		}
		return nil
	})
	if err != nil {
		return t, err
	}
	for _, id := range certIDs {
		var c cert.Certificate
		if err := r.getJSON(nsCerts, id, &c); err == nil {
			t.Certificates = append(t.Certificates, c)
		}
	}
	return t, nil
}
