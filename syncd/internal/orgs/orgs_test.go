package orgs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/docid"
	"haven/shared/store"
	"haven/syncd/internal/orgs"
)

var testKey = bytes.Repeat([]byte{0x5a}, 32)

// clock is a hand-set clock for Registry.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// fixture is a registry over a real store in a temporary folder, on a hand-set clock.
type fixture struct {
	t     *testing.T
	ctx   context.Context
	dir   string
	clock *clock
	st    *store.Store
	reg   *orgs.Registry
}

func newFixture(t *testing.T) *fixture {
	f := &fixture{t: t, ctx: t.Context(), dir: t.TempDir(),
		clock: &clock{t: time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)}}
	f.open()
	return f
}

func (f *fixture) open() {
	f.t.Helper()
	st, err := store.Open(f.dir, store.Options{Key: testKey})
	if err != nil {
		f.t.Fatalf("store.Open(%s) = %v", f.dir, err)
	}
	f.t.Cleanup(func() { st.Close() })
	f.st = st
	f.reg = orgs.New(st)
	f.reg.Now = f.clock.Now
}

// reopen closes the store and opens the same folder with a fresh Registry.
func (f *fixture) reopen() {
	f.t.Helper()
	if err := f.st.Close(); err != nil {
		f.t.Fatalf("Close() = %v", err)
	}
	f.open()
}

func (f *fixture) home(name string) orgs.Org {
	f.t.Helper()
	o, err := f.reg.CreateHome(f.ctx, name, "")
	if err != nil {
		f.t.Fatalf("CreateHome(%q) = %v", name, err)
	}
	return o
}

func (f *fixture) hub(name string, homes ...string) orgs.Org {
	f.t.Helper()
	o, err := f.reg.CreateHub(f.ctx, name, homes)
	if err != nil {
		f.t.Fatalf("CreateHub(%q, %v) = %v", name, homes, err)
	}
	return o
}

func (f *fixture) adviceLine(name string) orgs.Org {
	f.t.Helper()
	o, err := f.reg.CreateAdviceLine(f.ctx, name)
	if err != nil {
		f.t.Fatalf("CreateAdviceLine(%q) = %v", name, err)
	}
	return o
}

func (f *fixture) enroll(orgID, name string, ttl time.Duration) (orgs.Device, string) {
	f.t.Helper()
	d, code, err := f.reg.EnrollDevice(f.ctx, orgID, name, ttl)
	if err != nil {
		f.t.Fatalf("EnrollDevice(%s, %q) = %v", orgID, name, err)
	}
	return d, code
}

// device enrols a device of orgID and redeems its code, returning the credential.
func (f *fixture) device(orgID, name string) (orgs.Device, string) {
	f.t.Helper()
	_, code := f.enroll(orgID, name, 0)
	d, cred, err := f.reg.Redeem(f.ctx, code)
	if err != nil {
		f.t.Fatalf("Redeem(code of %s) = %v", name, err)
	}
	return d, cred
}

var (
	codeRE = regexp.MustCompile(`^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`)
	credRE = regexp.MustCompile(`^hvn1_[A-Za-z0-9_-]{43}$`)
)

// TestEnrollmentRoundTrip: an administrator enrols a device, the device redeems the code as
// a person might type it, and its credential then authenticates, also after a restart.
func TestEnrollmentRoundTrip(t *testing.T) {
	f := newFixture(t)
	home := f.home("Rose Court")
	issued, code := f.enroll(home.ID, "Office PC", 0)
	if !codeRE.MatchString(code) {
		t.Errorf("code %q does not look like ABCD-EFGH-JKLM", code)
	}
	if !strings.HasPrefix(issued.ID, "dev-") || issued.Org != home.ID || issued.Name != "Office PC" {
		t.Errorf("EnrollDevice = %+v", issued)
	}
	if want := f.clock.Now().Add(orgs.DefaultCodeTTL); !issued.CodeExpires.Equal(want) {
		t.Errorf("CodeExpires = %v, want %v (default ttl)", issued.CodeExpires, want)
	}
	if got := issued.Status(f.clock.Now()); got != "pending" {
		t.Errorf("Status before redeeming = %q, want pending", got)
	}

	f.clock.Advance(time.Hour)
	typed := strings.ToLower(strings.ReplaceAll(code, "-", " ")) // "abcd efgh jklm"
	d, cred, err := f.reg.Redeem(f.ctx, typed)
	if err != nil {
		t.Fatalf("Redeem(%q) = %v", typed, err)
	}
	if !credRE.MatchString(cred) {
		t.Errorf("credential %q is not hvn1_ and 43 URL-safe base64 characters", cred)
	}
	if d.ID != issued.ID || !d.Enrolled.Equal(f.clock.Now()) || !d.CodeExpires.IsZero() {
		t.Errorf("Redeem device = %+v, want %s enrolled now with no code", d, issued.ID)
	}

	f.clock.Advance(time.Minute)
	got, org, err := f.reg.Authenticate(f.ctx, cred)
	if err != nil {
		t.Fatalf("Authenticate = %v", err)
	}
	if got.ID != d.ID || org.ID != home.ID || !got.LastSeen.Equal(f.clock.Now()) {
		t.Errorf("Authenticate = %+v, %+v; want device %s of %s seen now", got, org, d.ID, home.ID)
	}

	f.reopen()
	got, org, err = f.reg.Authenticate(f.ctx, cred)
	if err != nil || got.ID != d.ID || org.ID != home.ID {
		t.Fatalf("Authenticate after reopen = %+v, %+v, %v", got, org, err)
	}
	list, err := f.reg.Devices(home.ID)
	if err != nil || len(list) != 1 || list[0].Status(f.clock.Now()) != "enrolled" {
		t.Fatalf("Devices after reopen = %+v, %v; want one enrolled device", list, err)
	}
}

// TestCodeSingleUse: a code works once; a second use, an unknown code and garbage all get
// ErrBadCode.
func TestCodeSingleUse(t *testing.T) {
	f := newFixture(t)
	home := f.home("Rose Court")
	_, code := f.enroll(home.ID, "Office PC", 0)
	if _, _, err := f.reg.Redeem(f.ctx, code); err != nil {
		t.Fatalf("first Redeem = %v", err)
	}
	for _, c := range []string{code, strings.ReplaceAll(code, "-", ""), "ABCD-EFGH-JKMN", "", "ABCD", "ABCD-EFGH-JKMN-PQRS", "UUUU-UUUU-UUUU", "ÄBCD-EFGH-JKMN"} {
		if _, _, err := f.reg.Redeem(f.ctx, c); !errors.Is(err, orgs.ErrBadCode) {
			t.Errorf("Redeem(%q) = %v, want ErrBadCode", c, err)
		}
	}
	f.reopen()
	if _, _, err := f.reg.Redeem(f.ctx, code); !errors.Is(err, orgs.ErrBadCode) {
		t.Errorf("Redeem of a used code after reopen = %v, want ErrBadCode", err)
	}
}

// TestCodeExpiry: a code works until its ttl has passed, not at or after it, and an expired
// code stays dead.
func TestCodeExpiry(t *testing.T) {
	f := newFixture(t)
	home := f.home("Rose Court")
	_, early := f.enroll(home.ID, "Laptop 1", time.Hour)
	expiring, late := f.enroll(home.ID, "Laptop 2", time.Hour)

	f.clock.Advance(time.Hour - time.Second)
	if _, _, err := f.reg.Redeem(f.ctx, early); err != nil {
		t.Errorf("Redeem one second before expiry = %v", err)
	}
	f.clock.Advance(time.Second)
	if _, _, err := f.reg.Redeem(f.ctx, late); !errors.Is(err, orgs.ErrBadCode) {
		t.Errorf("Redeem at expiry = %v, want ErrBadCode", err)
	}
	d, err := f.reg.Device(expiring.ID)
	if err != nil || d.Status(f.clock.Now()) != "expired" {
		t.Errorf("Device(%s) = %+v, %v; want status expired", expiring.ID, d, err)
	}
	f.clock.Advance(-time.Minute) // even if the clock steps back, a refused code is spent
	if _, _, err := f.reg.Redeem(f.ctx, late); !errors.Is(err, orgs.ErrBadCode) {
		t.Errorf("Redeem of an expired code again = %v, want ErrBadCode", err)
	}
}

// TestConcurrentRedeem: many simultaneous redemptions of one code yield exactly one
// credential, and it is the one that works.
func TestConcurrentRedeem(t *testing.T) {
	f := newFixture(t)
	home := f.home("Rose Court")
	_, code := f.enroll(home.ID, "Office PC", 0)

	const n = 16
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		creds = make([]string, n)
		errs  = make([]error, n)
	)
	for i := range n {
		wg.Go(func() {
			<-start
			_, creds[i], errs[i] = f.reg.Redeem(f.ctx, code)
		})
	}
	close(start)
	wg.Wait()

	var won []string
	for i, err := range errs {
		switch {
		case err == nil:
			won = append(won, creds[i])
		case !errors.Is(err, orgs.ErrBadCode):
			t.Errorf("Redeem %d = %v, want success or ErrBadCode", i, err)
		}
	}
	if len(won) != 1 {
		t.Fatalf("%d redemptions succeeded, want exactly 1", len(won))
	}
	if _, _, err := f.reg.Authenticate(f.ctx, won[0]); err != nil {
		t.Errorf("Authenticate(winning credential) = %v", err)
	}
}

// TestRevoke: a revoked device is refused at its next Authenticate, also after a restart;
// a pending device's code dies with it; revoking an unknown device is an error.
func TestRevoke(t *testing.T) {
	f := newFixture(t)
	home := f.home("Rose Court")
	d, cred := f.device(home.ID, "Office PC")
	pending, code := f.enroll(home.ID, "Spare laptop", 0)

	if err := f.reg.Revoke(f.ctx, d.ID); err != nil {
		t.Fatalf("Revoke(%s) = %v", d.ID, err)
	}
	got, _, err := f.reg.Authenticate(f.ctx, cred)
	if !errors.Is(err, orgs.ErrRevoked) || got.ID != d.ID {
		t.Errorf("Authenticate after Revoke = %s, %v; want %s, ErrRevoked", got.ID, err, d.ID)
	}
	if err := f.reg.Revoke(f.ctx, d.ID); err != nil {
		t.Errorf("Revoke again = %v, want nil", err)
	}
	if err := f.reg.Revoke(f.ctx, pending.ID); err != nil {
		t.Fatalf("Revoke(pending %s) = %v", pending.ID, err)
	}
	if _, _, err := f.reg.Redeem(f.ctx, code); err == nil {
		t.Error("Redeem of a revoked device's code succeeded")
	}
	if err := f.reg.Revoke(f.ctx, "dev-nosuchthng"); !errors.Is(err, orgs.ErrNotFound) {
		t.Errorf("Revoke(unknown) = %v, want ErrNotFound", err)
	}

	f.reopen()
	if _, _, err := f.reg.Authenticate(f.ctx, cred); !errors.Is(err, orgs.ErrRevoked) {
		t.Errorf("Authenticate after reopen = %v, want ErrRevoked", err)
	}
	list, err := f.reg.Devices(home.ID)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range list {
		if d.Status(f.clock.Now()) != "revoked" || !d.Revoked.Equal(f.clock.Now()) {
			t.Errorf("device %s after reopen: status %s, revoked %v", d.ID, d.Status(f.clock.Now()), d.Revoked)
		}
	}
}

// TestUnknownCredentialRefused: anything but an issued credential gets ErrUnauthorized.
func TestUnknownCredentialRefused(t *testing.T) {
	f := newFixture(t)
	home := f.home("Rose Court")
	_, cred := f.device(home.ID, "Office PC")
	flipped := []byte(cred)
	flipped[len(flipped)-5] ^= 'A' ^ 'B'
	if flipped[len(flipped)-5] == cred[len(cred)-5] {
		t.Fatal("test did not change the credential")
	}
	for _, c := range []string{
		"", "Bearer " + cred, cred + "A", cred[:len(cred)-1], "hvn2_" + cred[5:], strings.ToUpper(cred),
		string(flipped), "hvn1_" + strings.Repeat("A", 43), "hvn1_" + strings.Repeat("+", 43),
	} {
		if c == cred {
			continue // ToUpper may leave it unchanged in theory
		}
		if _, _, err := f.reg.Authenticate(f.ctx, c); !errors.Is(err, orgs.ErrUnauthorized) {
			t.Errorf("Authenticate(%q) = %v, want ErrUnauthorized", c, err)
		}
	}
}

// TestLastSeenWrittenAtMostOncePerMinute: Authenticate keeps LastSeen current in memory but
// writes it to the store only when the stored value is a minute old.
func TestLastSeenWrittenAtMostOncePerMinute(t *testing.T) {
	f := newFixture(t)
	home := f.home("Rose Court")
	d, cred := f.device(home.ID, "Office PC")
	t0 := f.clock.Now()
	stored := func() time.Time { // what a Registry with no memory of this one finds
		t.Helper()
		got, err := orgs.New(f.st).Device(d.ID)
		if err != nil {
			t.Fatal(err)
		}
		return got.LastSeen
	}
	if got := stored(); !got.IsZero() {
		t.Fatalf("LastSeen before any Authenticate = %v, want zero", got)
	}
	auth := func() {
		t.Helper()
		if _, _, err := f.reg.Authenticate(f.ctx, cred); err != nil {
			t.Fatal(err)
		}
	}
	auth()
	f.clock.Advance(30 * time.Second)
	auth()
	if got := stored(); !got.Equal(t0) {
		t.Errorf("stored LastSeen 30s later = %v, want %v (not rewritten yet)", got, t0)
	}
	if got, _ := f.reg.Device(d.ID); !got.LastSeen.Equal(f.clock.Now()) {
		t.Errorf("LastSeen in memory = %v, want %v", got.LastSeen, f.clock.Now())
	}
	f.clock.Advance(30 * time.Second)
	auth()
	if got := stored(); !got.Equal(f.clock.Now()) {
		t.Errorf("stored LastSeen a minute later = %v, want %v", got, f.clock.Now())
	}
}

// TestScope: what each kind of device may see, including a hub whose homes change, which
// takes effect for the next Scope (connection) and not for one already computed.
func TestScope(t *testing.T) {
	f := newFixture(t)
	a, b, c := f.home("Ash House"), f.home("Beech House"), f.home("Cedar House")
	hub := f.hub("North Hub", a.ID, b.ID)
	advice := f.adviceLine("Advice line")
	homeDev, _ := f.device(a.ID, "Ash office")
	hubDev, _ := f.device(hub.ID, "Hub nurse")
	adviceDev, _ := f.device(advice.ID, "Clinician 1")

	owners := []string{a.ID, b.ID, c.ID, hub.ID, advice.ID, "home-unknown00", ""}
	check := func(when string, d orgs.Device, allowed ...string) orgs.Scope {
		t.Helper()
		s, err := f.reg.Scope(d)
		if err != nil {
			t.Fatalf("%s: Scope(%s) = %v", when, d.ID, err)
		}
		checkAllows(t, when, s, owners, allowed)
		return s
	}

	check("initially", homeDev, a.ID)
	hubScope := check("initially", hubDev, hub.ID, a.ID, b.ID)
	s := check("initially", adviceDev, a.ID, b.ID, c.ID, hub.ID, advice.ID, "home-unknown00")
	if !s.AdviceLine() || hubScope.AdviceLine() {
		t.Errorf("AdviceLine() = %v for the advice line, %v for the hub", s.AdviceLine(), hubScope.AdviceLine())
	}
	if got, want := hubScope.OrgIDs(), sorted(hub.ID, a.ID, b.ID); !slices.Equal(got, want) {
		t.Errorf("hub OrgIDs() = %v, want %v", got, want)
	}

	if err := f.reg.SetHubHomes(f.ctx, hub.ID, []string{c.ID}); err != nil {
		t.Fatalf("SetHubHomes = %v", err)
	}
	checkAllows(t, "old scope after SetHubHomes", hubScope, owners, []string{hub.ID, a.ID, b.ID})
	check("after SetHubHomes", hubDev, hub.ID, c.ID)

	f.reopen()
	check("after reopen", homeDev, a.ID)
	check("after reopen", hubDev, hub.ID, c.ID)
	check("after reopen", adviceDev, a.ID, b.ID, c.ID, hub.ID, advice.ID, "home-unknown00")

	if err := f.reg.Revoke(f.ctx, hubDev.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.reg.Scope(hubDev); !errors.Is(err, orgs.ErrRevoked) {
		t.Errorf("Scope(revoked) = %v, want ErrRevoked", err)
	}
	var zero orgs.Scope
	checkAllows(t, "zero Scope", zero, owners, nil)
}

func checkAllows(t *testing.T, when string, s orgs.Scope, owners, allowed []string) {
	t.Helper()
	for _, o := range owners {
		if got, want := s.Allows(o), slices.Contains(allowed, o); got != want {
			t.Errorf("%s: scope of %s (%s) Allows(%q) = %v, want %v", when, s.Device.ID, s.Org.Kind, o, got, want)
		}
	}
}

func sorted(s ...string) []string { slices.Sort(s); return s }

// TestValidation: every refused request says why, and matches ErrInvalid or ErrNotFound.
func TestValidation(t *testing.T) {
	f := newFixture(t)
	home, err := f.reg.CreateHome(f.ctx, "Rose Court", "vm1ab")
	if err != nil || home.ODS != "VM1AB" {
		t.Fatalf("CreateHome with ODS = %+v, %v; want ODS VM1AB", home, err)
	}
	hub := f.hub("North Hub", home.ID)
	advice := f.adviceLine("Advice line")
	doc := docid.New().String()

	tests := []struct {
		name string
		want error
		call func() error
	}{
		{"empty home name", orgs.ErrInvalid, func() error { _, err := f.reg.CreateHome(f.ctx, "  ", ""); return err }},
		{"control character", orgs.ErrInvalid, func() error { _, err := f.reg.CreateHome(f.ctx, "Rose\nCourt", ""); return err }},
		{"long name", orgs.ErrInvalid, func() error { _, err := f.reg.CreateHome(f.ctx, strings.Repeat("x", 201), ""); return err }},
		{"bad ODS", orgs.ErrInvalid, func() error { _, err := f.reg.CreateHome(f.ctx, "Oak", "V-1"); return err }},
		{"duplicate ODS", orgs.ErrInvalid, func() error { _, err := f.reg.CreateHome(f.ctx, "Oak", "VM1AB"); return err }},
		{"empty hub name", orgs.ErrInvalid, func() error { _, err := f.reg.CreateHub(f.ctx, "", nil); return err }},
		{"hub covering unknown home", orgs.ErrNotFound, func() error { _, err := f.reg.CreateHub(f.ctx, "Hub", []string{"home-nosuchhome"}); return err }},
		{"hub covering a hub", orgs.ErrInvalid, func() error { _, err := f.reg.CreateHub(f.ctx, "Hub", []string{hub.ID}); return err }},
		{"hub covering the advice line", orgs.ErrInvalid, func() error { _, err := f.reg.CreateHub(f.ctx, "Hub", []string{advice.ID}); return err }},
		{"hub listing a home twice", orgs.ErrInvalid, func() error { _, err := f.reg.CreateHub(f.ctx, "Hub", []string{home.ID, home.ID}); return err }},
		{"SetHubHomes on a home", orgs.ErrInvalid, func() error { return f.reg.SetHubHomes(f.ctx, home.ID, nil) }},
		{"SetHubHomes on unknown hub", orgs.ErrNotFound, func() error { return f.reg.SetHubHomes(f.ctx, "hub-nosuchhub0", nil) }},
		{"SetHubHomes with a non-home", orgs.ErrInvalid, func() error { return f.reg.SetHubHomes(f.ctx, hub.ID, []string{advice.ID}) }},
		{"empty advice line name", orgs.ErrInvalid, func() error { _, err := f.reg.CreateAdviceLine(f.ctx, ""); return err }},
		{"directory of a hub", orgs.ErrInvalid, func() error { return f.reg.SetDirectory(f.ctx, hub.ID, doc) }},
		{"directory of unknown home", orgs.ErrNotFound, func() error { return f.reg.SetDirectory(f.ctx, "home-nosuchhome", doc) }},
		{"malformed directory ID", orgs.ErrInvalid, func() error { return f.reg.SetDirectory(f.ctx, home.ID, "not-a-doc-id") }},
		{"enrol to unknown org", orgs.ErrNotFound, func() error { _, _, err := f.reg.EnrollDevice(f.ctx, "home-nosuchhome", "PC", 0); return err }},
		{"enrol with empty name", orgs.ErrInvalid, func() error { _, _, err := f.reg.EnrollDevice(f.ctx, home.ID, "", 0); return err }},
		{"enrol with a ttl of a year", orgs.ErrInvalid, func() error { _, _, err := f.reg.EnrollDevice(f.ctx, home.ID, "PC", 365*24*time.Hour); return err }},
		{"unknown org", orgs.ErrNotFound, func() error { _, err := f.reg.Org("home-nosuchhome"); return err }},
		{"empty org ID", orgs.ErrNotFound, func() error { _, err := f.reg.Org(""); return err }},
		{"devices of unknown org", orgs.ErrNotFound, func() error { _, err := f.reg.Devices("hub-nosuchhub0"); return err }},
		{"unknown device", orgs.ErrNotFound, func() error { _, err := f.reg.Device("dev-nosuchdev0"); return err }},
		{"audit without action", orgs.ErrInvalid, func() error {
			_, err := f.reg.Audit(f.ctx, orgs.AuditEvent{Device: "dev-x", Org: home.ID})
			return err
		}},
		{"audit with huge user", orgs.ErrInvalid, func() error {
			_, err := f.reg.Audit(f.ctx, orgs.AuditEvent{Device: "dev-x", Org: home.ID, Action: "view", User: strings.Repeat("u", 300)})
			return err
		}},
		{"first access without document", orgs.ErrInvalid, func() error { _, err := f.reg.FirstAccess(f.ctx, "dev-x", ""); return err }},
	}
	for _, tt := range tests {
		err := tt.call()
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: err = %v, want %v", tt.name, err, tt.want)
		} else {
			t.Logf("%s: %v", tt.name, err)
		}
	}
	orgList, err := f.reg.Orgs()
	if err != nil || len(orgList) != 3 {
		t.Errorf("Orgs() after refused requests = %d orgs, %v; want the 3 created", len(orgList), err)
	}
}

// TestDirectory: a home's directory is set once, idempotently, and persists.
func TestDirectory(t *testing.T) {
	f := newFixture(t)
	home := f.home("Rose Court")
	doc := docid.New()
	if err := f.reg.SetDirectory(f.ctx, home.ID, doc.URL()); err != nil {
		t.Fatalf("SetDirectory(%s) = %v", doc.URL(), err)
	}
	if err := f.reg.SetDirectory(f.ctx, home.ID, doc.String()); err != nil {
		t.Errorf("SetDirectory with the same document = %v, want nil", err)
	}
	if err := f.reg.SetDirectory(f.ctx, home.ID, docid.New().String()); !errors.Is(err, orgs.ErrInvalid) {
		t.Errorf("SetDirectory with another document = %v, want ErrInvalid", err)
	}
	f.reopen()
	got, err := f.reg.Org(home.ID)
	if err != nil || got.Directory != doc.String() {
		t.Errorf("Org after reopen = %+v, %v; want directory %s", got, err, doc)
	}
}

// TestListingsPersistAndAreSorted: Orgs and Devices come back in a stable order, identical
// after a restart, with every field a listing needs.
func TestListingsPersistAndAreSorted(t *testing.T) {
	f := newFixture(t)
	b := f.home("beech House")
	a := f.home("Ash House")
	advice := f.adviceLine("Advice line")
	hub := f.hub("North Hub", b.ID, a.ID)
	for _, o := range []orgs.Org{a, b, hub, advice} {
		if !strings.HasPrefix(o.ID, map[orgs.Kind]string{orgs.KindHome: "home-", orgs.KindHub: "hub-", orgs.KindAdviceLine: "advice-"}[o.Kind]) {
			t.Errorf("%s %q has ID %s", o.Kind, o.Name, o.ID)
		}
	}
	if want := sorted(a.ID, b.ID); !slices.Equal(hub.Homes, want) {
		t.Errorf("hub homes = %v, want %v", hub.Homes, want)
	}
	f.device(a.ID, "Office")
	f.clock.Advance(time.Second)
	f.enroll(hub.ID, "Hub laptop", 0)
	f.clock.Advance(time.Second)
	f.device(a.ID, "Lounge")

	orgList, err := f.reg.Orgs()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range orgList {
		names = append(names, o.Name)
	}
	if want := []string{"Ash House", "beech House", "North Hub", "Advice line"}; !slices.Equal(names, want) {
		t.Errorf("Orgs() names = %q, want %q", names, want)
	}
	devs, err := f.reg.Devices("")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range devs {
		got = append(got, d.Org+"/"+d.Name)
	}
	want := []string{a.ID + "/Office", a.ID + "/Lounge", hub.ID + "/Hub laptop"}
	if a.ID > hub.ID {
		want = []string{hub.ID + "/Hub laptop", a.ID + "/Office", a.ID + "/Lounge"}
	}
	if !slices.Equal(got, want) {
		t.Errorf("Devices(\"\") = %q, want %q", got, want)
	}

	f.reopen()
	orgs2, err := f.reg.Orgs()
	if err != nil || !reflect.DeepEqual(orgs2, orgList) {
		t.Errorf("Orgs() after reopen = %+v, %v\nwant %+v", orgs2, err, orgList)
	}
	devs2, err := f.reg.Devices("")
	if err != nil || !reflect.DeepEqual(devs2, devs) {
		t.Errorf("Devices() after reopen = %+v, %v\nwant %+v", devs2, err, devs)
	}
}

// TestAuditAppendOnly: events get consecutive sequence numbers in the order they were
// appended, concurrent appends included; reading resumes after a given seq; the log and its
// numbering survive a restart.
func TestAuditAppendOnly(t *testing.T) {
	f := newFixture(t)
	home := f.home("Rose Court")
	given := f.clock.Now().Add(-time.Hour)
	for i := 1; i <= 3; i++ {
		e := orgs.AuditEvent{Time: given, Device: "dev-a", Org: home.ID, Owner: home.ID, User: "user-1", Role: "carer",
			Resident: "doc-" + fmt.Sprint(i), Action: "view"}
		if i == 2 {
			e.Received = given
		}
		seq, err := f.reg.Audit(f.ctx, e)
		if err != nil || seq != uint64(i) {
			t.Fatalf("Audit %d = %d, %v; want seq %d", i, seq, err, i)
		}
	}

	const n = 40
	var wg sync.WaitGroup
	seqs := make([]uint64, n)
	for i := range n {
		wg.Go(func() {
			seq, err := f.reg.Audit(f.ctx, orgs.AuditEvent{Device: "dev-b", Org: home.ID, Action: "change", Detail: fmt.Sprint(i)})
			if err != nil {
				t.Errorf("concurrent Audit %d = %v", i, err)
			}
			seqs[i] = seq
		})
	}
	wg.Wait()
	slices.Sort(seqs)
	for i, seq := range seqs {
		if seq != uint64(4+i) {
			t.Fatalf("concurrent seqs = %v, want 4..%d once each", seqs, 3+n)
		}
	}

	f.reopen()
	seq, err := f.reg.Audit(f.ctx, orgs.AuditEvent{Device: "dev-a", Org: home.ID, Action: "view", Detail: strings.Repeat("é", 1000)})
	if err != nil || seq != 4+n {
		t.Fatalf("Audit after reopen = %d, %v; want %d", seq, err, 4+n)
	}

	var all []orgs.AuditEvent
	var last uint64
	err = f.reg.AuditLog(0, func(seq uint64, e orgs.AuditEvent) error {
		if seq != last+1 {
			t.Errorf("AuditLog seq %d after %d", seq, last)
		}
		last = seq
		all = append(all, e)
		return nil
	})
	if err != nil || len(all) != 4+n {
		t.Fatalf("AuditLog = %d events, %v; want %d", len(all), err, 4+n)
	}
	for i, e := range all[:3] {
		if e.Resident != "doc-"+fmt.Sprint(i+1) || !e.Time.Equal(given) || e.Owner != home.ID || e.User != "user-1" || e.Role != "carer" {
			t.Errorf("event %d = %+v", i+1, e)
		}
	}
	if now := f.clock.Now(); !all[0].Received.Equal(now) || !all[1].Received.Equal(given) {
		t.Errorf("Received = %v, %v; want %v (set by Audit), %v (given)", all[0].Received, all[1].Received, now, given)
	}
	if d := all[len(all)-1].Detail; len(d) > 1024 || !strings.HasPrefix(strings.Repeat("é", 1000), d) || d == "" {
		t.Errorf("long Detail stored as %d bytes, want a whole-character prefix of at most 1024", len(d))
	}

	var after []uint64
	if err := f.reg.AuditLog(4+n-2, func(seq uint64, _ orgs.AuditEvent) error { after = append(after, seq); return nil }); err != nil {
		t.Fatal(err)
	}
	if want := []uint64{4 + n - 1, 4 + n}; !slices.Equal(after, want) {
		t.Errorf("AuditLog(after %d) = %v, want %v", 4+n-2, after, want)
	}
}

// TestFirstAccessOnce: true exactly once per (device, document), with many concurrent
// callers, and still false after a restart.
func TestFirstAccessOnce(t *testing.T) {
	f := newFixture(t)
	doc1, doc2 := docid.New().String(), docid.New().String()
	if got := countFirsts(t, 24, func() (bool, error) { return f.reg.FirstAccess(f.ctx, "dev-a", doc1) }); got != 1 {
		t.Errorf("concurrent FirstAccess(dev-a, doc1): %d firsts, want 1", got)
	}
	for _, k := range [][2]string{{"dev-a", doc2}, {"dev-b", doc1}} {
		if first, err := f.reg.FirstAccess(f.ctx, k[0], k[1]); !first || err != nil {
			t.Errorf("FirstAccess(%s, %s) = %v, %v; want true", k[0], k[1], first, err)
		}
	}
	f.reopen()
	for _, k := range [][2]string{{"dev-a", doc1}, {"dev-a", doc2}, {"dev-b", doc1}} {
		if first, err := f.reg.FirstAccess(f.ctx, k[0], k[1]); first || err != nil {
			t.Errorf("FirstAccess(%s, %s) after reopen = %v, %v; want false", k[0], k[1], first, err)
		}
	}
}

// TestAuditFirstAccess: concurrent openings of one record by one device produce one audit
// event; after a restart, none.
func TestAuditFirstAccess(t *testing.T) {
	f := newFixture(t)
	advice := f.adviceLine("Advice line")
	doc := docid.New().String()
	e := orgs.AuditEvent{Device: "dev-a", Org: advice.ID, Resident: doc, Action: "first-access"}
	if got := countFirsts(t, 24, func() (bool, error) { _, first, err := f.reg.AuditFirstAccess(f.ctx, e); return first, err }); got != 1 {
		t.Errorf("concurrent AuditFirstAccess: %d firsts, want 1", got)
	}
	f.reopen()
	if _, first, err := f.reg.AuditFirstAccess(f.ctx, e); first || err != nil {
		t.Errorf("AuditFirstAccess after reopen = %v, %v; want false", first, err)
	}
	if first, err := f.reg.FirstAccess(f.ctx, e.Device, doc); first || err != nil {
		t.Errorf("FirstAccess after AuditFirstAccess = %v, %v; want false", first, err)
	}
	var events int
	if err := f.reg.AuditLog(0, func(uint64, orgs.AuditEvent) error { events++; return nil }); err != nil {
		t.Fatal(err)
	}
	if events != 1 {
		t.Errorf("audit log holds %d events, want 1", events)
	}
}

// countFirsts runs fn from n goroutines at once and counts the true results.
func countFirsts(t *testing.T, n int, fn func() (bool, error)) int {
	t.Helper()
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		firsts int
		start  = make(chan struct{})
	)
	for range n {
		wg.Go(func() {
			<-start
			first, err := fn()
			if err != nil {
				t.Error(err)
			}
			if first {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	return firsts
}
