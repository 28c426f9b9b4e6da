package orgs_test

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"haven/shared/cert"
	"haven/shared/record"
	"haven/shared/wire"
	"haven/syncd/internal/orgs"
)

var orgKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))

// request is a certificate request as a desktop makes one: a key pair made
// there, the request signed with it.
func request(n int, name string, role record.Role, reg string) (wire.CertRequest, ed25519.PrivateKey) {
	pub, priv := cert.NewKey()
	r := wire.CertRequest{ID: fmt.Sprintf("req-%04d", n), Staff: fmt.Sprintf("staff-%04d", n), Name: name, Role: string(role),
		Registration: reg, PublicKey: pub}
	r.Proof = ed25519.Sign(priv, r.SigningBytes())
	return r, priv
}

// twoHomesWithKey is a registry with an organisation key and two homes,
// Larch House and Birch Court, each with an enrolled computer.
func twoHomesWithKey(t *testing.T) (*fixture, orgs.Device, orgs.Device) {
	t.Helper()
	f := newFixture(t)
	f.reg.Key = orgKey
	home, other := f.home("Larch House"), f.home("Birch Court")
	dev, _, err := f.reg.EnrollDevice(f.ctx, home.ID, "PC", 0)
	if err != nil {
		t.Fatal(err)
	}
	otherDev, _, _ := f.reg.EnrollDevice(f.ctx, other.ID, "PC", 0)
	return f, dev, otherDev
}

// TestStaffRequestsAndWhoGrants: a request is checked (its proof, name,
// role and registration) and kept pending unless a certified manager of the
// same home vouches for a care worker or senior carer, or an administrator
// pre-approved the person; a vouch from anyone else, or for anyone else,
// grants nothing.
func TestStaffRequestsAndWhoGrants(t *testing.T) {
	f, dev, otherDev := twoHomesWithKey(t)

	// Malformed requests.
	bad := map[string]func(r *wire.CertRequest){
		"a proof by another key":     func(r *wire.CertRequest) { _, k := cert.NewKey(); r.Proof = ed25519.Sign(k, r.SigningBytes()) },
		"a role that does not exist": func(r *wire.CertRequest) { r.Role = "surgeon" },
		"a GP without a GMC number":  func(r *wire.CertRequest) { r.Role, r.Registration = "gp", "NMC 12A3456E" },
		"a name with an escape code": func(r *wire.CertRequest) { r.Name = "Dr \x1b[2JEvil" },
		"a staff ID with a slash":    func(r *wire.CertRequest) { r.Staff = "staff-../../x" },
	}
	i := 1
	for name, edit := range bad {
		r, k := request(i, "Casey Carer", record.CareWorker, "")
		i++
		edit(&r)
		if name != "a proof by another key" {
			r.Proof = ed25519.Sign(k, r.SigningBytes())
		}
		if _, err := f.reg.RequestCertificate(f.ctx, dev, r); !errors.Is(err, orgs.ErrBadRequest) {
			t.Errorf("%s: %v, want ErrBadRequest", name, err)
		}
	}

	// The manager's own request waits for an administrator.
	mgrReq, mgrKey := request(100, "Mo Manager", record.HomeManager, "")
	sr, err := f.reg.RequestCertificate(f.ctx, dev, mgrReq)
	if err != nil || sr.State != wire.RequestPending {
		t.Fatalf("manager's request: %+v, %v; want pending", sr.State, err)
	}
	mgrCert, err := f.reg.ApproveRequest(f.ctx, mgrReq.ID)
	if err != nil || mgrCert.Role != string(record.HomeManager) || mgrCert.Verify(orgKey.Public().(ed25519.PublicKey)) != nil {
		t.Fatalf("approve: %+v, %v", mgrCert, err)
	}
	vouch := func(r *wire.CertRequest, c cert.Certificate, k ed25519.PrivateKey) {
		r.By, r.BySig = &c, ed25519.Sign(k, r.SigningBytes())
	}
	state := func(d orgs.Device, r wire.CertRequest) string {
		sr, err := f.reg.RequestCertificate(f.ctx, d, r)
		if err != nil {
			t.Fatalf("request %s: %v", r.ID, err)
		}
		return sr.State
	}
	// Vouched care worker: granted. Vouched GP: pending.
	carer, _ := request(200, "Casey Carer", record.CareWorker, "")
	vouch(&carer, mgrCert, mgrKey)
	if got := state(dev, carer); got != "granted" {
		t.Errorf("a care worker the manager vouches for: %s, want granted", got)
	}
	gp, _ := request(201, "Dr Ada Quill", record.GP, "GMC 7000001")
	vouch(&gp, mgrCert, mgrKey)
	if got := state(dev, gp); got != wire.RequestPending {
		t.Errorf("a GP the manager vouches for: %s, want pending (an administrator checks a registration)", got)
	}
	// A care worker vouching for a senior carer; a manager's vouch for
	// another home's device; a forged vouch signature.
	carerCert, _ := f.reg.ApproveRequest(f.ctx, gp.ID) // any certificate that is not a manager's
	senior, _ := request(202, "Sam Senior", record.SeniorCarer, "")
	_, someKey := cert.NewKey()
	vouch(&senior, carerCert, someKey)
	if got := state(dev, senior); got != wire.RequestPending {
		t.Errorf("a vouch by a GP's certificate (not the home's manager): %s, want pending", got)
	}
	elsewhere, _ := request(203, "Sam Senior", record.SeniorCarer, "")
	vouch(&elsewhere, mgrCert, mgrKey)
	if got := state(otherDev, elsewhere); got != wire.RequestPending {
		t.Errorf("a manager vouching for another home's computer: %s, want pending", got)
	}
	forged, _ := request(204, "Sam Senior", record.SeniorCarer, "")
	vouch(&forged, mgrCert, someKey)
	if got := state(dev, forged); got != wire.RequestPending {
		t.Errorf("a vouch with a signature not the manager's: %s, want pending", got)
	}
	// A revoked manager vouches for nothing.
	if _, err := f.reg.RevokeCertificate(f.ctx, mgrCert.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	late, _ := request(205, "Sam Senior", record.SeniorCarer, "")
	vouch(&late, mgrCert, mgrKey)
	if got := state(dev, late); got != wire.RequestPending {
		t.Errorf("a vouch by a revoked manager: %s, want pending", got)
	}
	// Pre-approved by an administrator: granted when it comes.
	if err := f.reg.PreapproveStaff(f.ctx, dev.Org, "Nurse Kit Amos", "nurse", "NMC 12A3456E"); err != nil {
		t.Fatal(err)
	}
	nurse, _ := request(206, "Nurse Kit Amos", record.Nurse, "NMC 12A3456E")
	if got := state(dev, nurse); got != "granted" {
		t.Errorf("a pre-approved nurse: %s, want granted", got)
	}
	// The device's trust lists its certificates and open requests.
	tr, err := f.reg.TrustFor(dev)
	if err != nil {
		t.Fatal(err)
	}
	if len(tr.Revocations) != 1 || len(tr.Certificates) != 4 {
		t.Errorf("trust for the device: %d revocations, %d certificates; want 1 and 4 (manager, care worker, GP, nurse)", len(tr.Revocations), len(tr.Certificates))
	}
}

// TestLeaverRevokedOnTheManagersWord: a certified home manager's signed
// notice, brought by a device of the home, revokes a certificate of the
// home; a notice from anyone else, about anyone else, altered, or about the
// manager's own certificate revokes nothing.
func TestLeaverRevokedOnTheManagersWord(t *testing.T) {
	f, dev, otherDev := twoHomesWithKey(t)
	n := 200
	certify := func(d orgs.Device, name string, role record.Role, reg string) (cert.Certificate, ed25519.PrivateKey) {
		t.Helper()
		n++
		r, k := request(n, name, role, reg)
		if _, err := f.reg.RequestCertificate(f.ctx, d, r); err != nil {
			t.Fatal(err)
		}
		c, err := f.reg.ApproveRequest(f.ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		return c, k
	}
	mgr, mgrKey := certify(dev, "Mo Manager", record.HomeManager, "")
	nurse, nurseKey := certify(dev, "Nia Nurse", record.Nurse, "NMC 12A3456E")
	otherMgr, otherKey := certify(otherDev, "Olu Other", record.HomeManager, "")
	notice := func(target cert.Certificate, by cert.Certificate, key ed25519.PrivateKey) wire.Leaver {
		l := wire.Leaver{Cert: target.ID, Staff: target.Staff, At: f.clock.Now(), By: by}
		l.Sig = ed25519.Sign(key, l.SigningBytes())
		return l
	}
	revoked := func(c cert.Certificate) bool {
		revs, err := f.reg.Revocations()
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range revs {
			if r.Cert == c.ID {
				return true
			}
		}
		return false
	}
	leaver, _ := certify(dev, "Lee Leaver", record.CareWorker, "")
	refused := map[string]struct {
		dev orgs.Device
		l   wire.Leaver
	}{
		"a nurse's word":                 {dev, notice(leaver, nurse, nurseKey)},
		"another home's manager":         {otherDev, notice(leaver, otherMgr, otherKey)},
		"another home's manager, our PC": {dev, notice(leaver, otherMgr, otherKey)},
		"the manager's own certificate":  {dev, notice(mgr, mgr, mgrKey)},
		"a notice altered after signing": {dev, func() wire.Leaver { l := notice(nurse, mgr, mgrKey); l.Cert = leaver.ID; return l }()},
		"a staff name that does not match": {dev, func() wire.Leaver {
			l := notice(leaver, mgr, mgrKey)
			l.Staff = nurse.Staff
			l.Sig = ed25519.Sign(mgrKey, l.SigningBytes())
			return l
		}()},
		"a certificate of another home": {dev, notice(otherMgr, mgr, mgrKey)},
	}
	for name, tc := range refused {
		if _, err := f.reg.RevokeForLeaver(f.ctx, tc.dev, tc.l); !errors.Is(err, orgs.ErrNotPermitted) {
			t.Errorf("%s: %v; want ErrNotPermitted", name, err)
		}
	}
	for _, c := range []cert.Certificate{leaver, nurse, mgr, otherMgr} {
		if revoked(c) {
			t.Fatalf("%s revoked by a notice that was refused", c.Name)
		}
	}
	if _, err := f.reg.RevokeForLeaver(f.ctx, dev, notice(leaver, mgr, mgrKey)); err != nil || !revoked(leaver) {
		t.Fatalf("the manager's notice: %v, revoked %v", err, revoked(leaver))
	}
	// A manager whose own certificate was revoked revokes no more.
	if _, err := f.reg.RevokeCertificate(f.ctx, mgr.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.reg.RevokeForLeaver(f.ctx, dev, notice(nurse, mgr, mgrKey)); !errors.Is(err, orgs.ErrNotPermitted) || revoked(nurse) {
		t.Fatalf("a revoked manager's notice: %v, revoked %v", err, revoked(nurse))
	}
}
