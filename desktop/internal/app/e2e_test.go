package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"haven/shared/cert"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/rig"
)

// relay is a real syncd process built from this checkout (the rig's),
// with a fresh data folder, on a loopback port it picks at its first start.
type relay struct {
	t *testing.T
	*rig.Relay
}

// newRelay is a stopped relay; flags are added to syncd serve's. Its log
// is kept beside its data, and a failed start or stop quotes its end.
func newRelay(t *testing.T, flags ...string) *relay {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "relay.log")
	r := rig.NewRelay(rig.RelayConfig{Syncd: rig.MustBinary(t), Data: filepath.Join(dir, "data"), LogPath: logPath,
		Flags: append([]string{"-workers", "2", "-log-level", "info"}, flags...)})
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("relay log:\n%s", b)
			}
		}
	})
	return &relay{t: t, Relay: r}
}

// syncd runs `syncd COMMAND -data DATA ARGS…` and returns what it printed.
func (r *relay) syncd(args ...string) string {
	r.t.Helper()
	out, err := r.Command(args[0], args[1:]...)
	if err != nil {
		r.t.Fatalf("syncd %v: %v\n%s", args, err, out)
	}
	return out
}

// start runs the relay (again on the same address after a stop).
func (r *relay) start() {
	r.t.Helper()
	if err := r.Start(); err != nil {
		r.t.Fatal(err)
	}
}

func (r *relay) stop() {
	if err := r.Stop(); err != nil {
		r.t.Errorf("stopping the relay: %v", err)
	}
}

var codeRE = regexp.MustCompile(`one-time code: (\S+)`)

// desktop enrols a new computer for org and signs in a demo account.
func (r *relay) desktop(org, name string, account DemoAccount) *App {
	r.t.Helper()
	code := codeRE.FindStringSubmatch(r.syncd("admin", "enroll", org, "-name", name))
	if code == nil {
		r.t.Fatal("no enrolment code")
	}
	dir := r.t.TempDir()
	if err := Enroll(context.Background(), dir, EnrollRequest{RelayURL: r.HTTP(), Code: code[1], Demo: true}); err != nil {
		r.t.Fatal(err)
	}
	a, err := Open(dir, Options{})
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(func() { a.Close() })
	if _, err := a.Unlock(staffID(r.t, a, account.Name), account.PIN); err != nil {
		r.t.Fatal(err)
	}
	// A demonstration organisation's certificates are granted at once; they
	// arrive with the relay's first trust message.
	eventually(r.t, account.Name+" to be certified", func() bool {
		u := a.CurrentUser()
		return u != nil && u.Certified
	}, a)
	return a
}

var lastState string

// eventually waits for cond, re-checking on every event the app emits.
func eventually(t *testing.T, what string, cond func() bool, apps ...*App) {
	t.Helper()
	wake := make(chan struct{}, 1)
	for _, a := range apps {
		a.Subscribe(func(Event) {
			select {
			case wake <- struct{}{}:
			default:
			}
		})
	}
	deadline := time.After(60 * time.Second)
	for !cond() {
		select {
		case <-wake:
		case <-time.After(250 * time.Millisecond): // some conditions change without an event (a peer's status)
		case <-deadline:
			t.Fatalf("timed out waiting for %s (last: %s)", what, lastState)
		}
	}
}

// demoRelay starts a relay with the demonstration organisations and
// returns it with their IDs by kind, as `syncd demo` prints them ("home",
// "hub", "advice").
func demoRelay(t *testing.T) (*relay, map[string]string) {
	r := newRelay(t)
	orgs := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^(\w+)=(\S+)$`).FindAllStringSubmatch(r.syncd("demo"), -1) {
		orgs[m[1]] = m[2]
	}
	r.start()
	t.Cleanup(r.stop)
	return r, orgs
}

// downloaded waits for each desktop to hold the demo home's 40 records.
func downloaded(t *testing.T, apps ...*App) {
	t.Helper()
	eventually(t, "the desktops to download the home", func() bool {
		for _, a := range apps {
			n := 0
			for _, r := range a.Residents(Filter{}) {
				if r.Held {
					n++
				}
			}
			if n != 40 {
				return false
			}
		}
		return true
	}, apps...)
}

func account(name string) DemoAccount {
	for _, a := range DemoAccounts {
		if a.Name == name {
			return a
		}
	}
	panic(name)
}

// TestOfflineConflictEndToEnd: a real relay and two desktop application
// layers (the care home's computer and the GP hub's laptop). Both download
// the home; both go offline; a GP on each records a different CPR decision
// for the same resident; both come back; both show the conflict naming both
// decisions; one resolves it; both converge on the resolution.
func TestOfflineConflictEndToEnd(t *testing.T) {
	r, orgs := demoRelay(t)
	home, hub := orgs["home"], orgs["hub"]

	careHome := r.desktop(home, "Larch nurses' station", account("Dr Ada Quill"))
	hubLaptop := r.desktop(hub, "Hub laptop", account("Dr Priya Shah"))
	downloaded(t, careHome, hubLaptop)
	resident := careHome.Residents(Filter{})[7]
	if _, err := hubLaptop.FrontSheet(resident.ID); err != nil {
		t.Fatalf("hub opens the resident: %v", err)
	}

	r.stop()
	eventually(t, "both desktops to see they are offline", func() bool {
		return !careHome.Status().Online && !hubLaptop.Status().Online
	}, careHome, hubLaptop)
	s1, err := careHome.Decide(resident.ID, record.KindCPR, "", record.CPRRecommended, "resident asked for full treatment today")
	if err != nil || !strings.Contains(s1.Message, "when the connection returns") {
		t.Fatalf("offline decision at the home: %+v, %v", s1, err)
	}
	if _, err := hubLaptop.Decide(resident.ID, record.KindCPR, "", record.CPRNotRecommended, "advice call: deteriorating, frailty"); err != nil {
		t.Fatal(err)
	}
	if n := careHome.Status().Pending; n == 0 {
		t.Fatal("the offline decision is not shown as waiting to be sent")
	}

	r.start()
	// The front sheet reads the record itself; the list and the conflicts
	// inbox read the index, which catches up just after the record changes.
	conflicted := func(a *App) bool {
		fs, err := a.FrontSheet(resident.ID)
		return err == nil && fs.CPR.State == DecisionConflict && len(a.Conflicts()) == 1
	}
	eventually(t, "both desktops to show the CPR conflict, on the front sheet and in the conflicts inbox", func() bool {
		ok := conflicted(careHome) && conflicted(hubLaptop)
		if !ok {
			lastState = fmt.Sprintf("conflicts inbox: home %d, hub %d", len(careHome.Conflicts()), len(hubLaptop.Conflicts()))
		}
		return ok
	}, careHome, hubLaptop)
	for _, a := range []*App{careHome, hubLaptop} {
		fs, _ := a.FrontSheet(resident.ID)
		if !strings.Contains(fs.CPR.Text, "Dr Ada Quill") || !strings.Contains(fs.CPR.Text, "Dr Priya Shah") {
			t.Fatalf("conflict %q does not name both decisions", fs.CPR.Text)
		}
		if c := a.Conflicts(); len(c) != 1 || c[0].Resident != resident.ID {
			t.Fatalf("conflicts inbox lists %+v, want the resident", c)
		}
	}
	if _, err := careHome.Decide(resident.ID, record.KindCPR, "", record.CPRNotRecommended, "reviewed with the attorney and the hub: DNACPR stands"); err != nil {
		t.Fatal(err)
	}
	settled := func(a *App) bool {
		fs, err := a.FrontSheet(resident.ID)
		return err == nil && fs.CPR.State == DecisionSettled && fs.CPR.Text == record.Label(record.CPRNotRecommended) &&
			strings.Contains(fs.CPR.Reason, "DNACPR stands")
	}
	eventually(t, "both desktops to converge on the resolution", func() bool {
		ok := settled(careHome) && settled(hubLaptop) && careHome.Status().Pending == 0 && hubLaptop.Status().Pending == 0
		if !ok {
			f1, _ := careHome.FrontSheet(resident.ID)
			f2, _ := hubLaptop.FrontSheet(resident.ID)
			lastState = fmt.Sprintf("home %s %q pending %v; hub %s %q pending %v (resident %s)", f1.CPR.State, f1.CPR.Text, careHome.client.PendingDocs(),
				f2.CPR.State, f2.CPR.Text, hubLaptop.client.PendingDocs(), resident.ID)
			for _, id := range hubLaptop.client.PendingDocs() {
				h, err := hubLaptop.repo.Open(id)
				if err == nil {
					typ, _, _ := h.Doc().Get("type")
					lastState += fmt.Sprintf(" [%s type %v heads %d]", id, typ, len(h.Doc().Heads()))
				}
			}
		}
		return ok
	}, careHome, hubLaptop)
	h1, _ := careHome.repo.Open(resident.ID)
	h2, _ := hubLaptop.repo.Open(resident.ID)
	if headsText(h1.Doc().Heads()) != headsText(h2.Doc().Heads()) {
		t.Fatal("the two copies did not converge to the same heads")
	}
	// The advice line opens the resident with a typed reason; the IG lead
	// sees the access awaiting review at the relay.
	advice := orgs["advice"]
	adviceLine := r.desktop(advice, "Advice line console", account("Nurse Bo Lind"))
	if _, err := adviceLine.FrontSheet(resident.ID); !errors.Is(err, ErrNeedsReason) {
		t.Fatalf("advice line opened a record without a reason: %v", err)
	}
	// Opening goes through the relay: on a loaded machine the new desktop
	// may be between connections a moment after its certificate came.
	eventually(t, "the advice line online", func() bool { return adviceLine.Status().Online }, adviceLine)
	if err := adviceLine.BreakGlass(resident.ID, "Call from Larch House about a fall at night"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the advice line to fetch the record", func() bool {
		fs, err := adviceLine.FrontSheet(resident.ID)
		return err == nil && fs.CPR.State == DecisionSettled
	}, adviceLine)
	// The audit events of every desktop reached the relay.
	eventually(t, "audit outboxes to drain", func() bool {
		return careHome.Status().PendingAudit == 0 && hubLaptop.Status().PendingAudit == 0 && adviceLine.Status().PendingAudit == 0
	}, careHome, hubLaptop, adviceLine)
	r.stop()
	audit := r.syncd("admin", "audit")
	if !strings.Contains(audit, resident.ID.String()) || !strings.Contains(audit, "decide-cpr") && !strings.Contains(audit, "change") {
		t.Fatalf("relay audit log lacks the desktops' events:\n%s", audit)
	}
	pending := r.syncd("admin", "audit", "-unreviewed")
	if !strings.Contains(pending, "about a fall at night") || !strings.Contains(pending, "1 break-glass") {
		t.Fatalf("break-glass access not awaiting IG review:\n%s", pending)
	}
	seq := strings.Fields(pending)[0]
	r.syncd("admin", "review", seq, "-by", "Ivy Gov (IG lead)", "-note", "call logged on the advice line")
	if after := r.syncd("admin", "audit", "-unreviewed"); !strings.Contains(after, "0 break-glass") {
		t.Fatalf("after review:\n%s", after)
	}
	_ = docid.ID{}
}

// TestStaffCertifiedThroughTheRelay: a real relay and a care home that is
// not a demonstration. The manager enrols the home's computer and signs in
// as not yet certified; an administrator approves her request; she adds a
// care worker, whom her signature vouches for, certified at once, and a GP,
// who waits for an administrator (and may write notes only) until approved.
func TestStaffCertifiedThroughTheRelay(t *testing.T) {
	r := newRelay(t)
	home := regexp.MustCompile(`(home-\S+)`).FindStringSubmatch(r.syncd("admin", "create-home", "Rowan House"))[1]
	r.start()
	t.Cleanup(r.stop)
	code := codeRE.FindStringSubmatch(r.syncd("admin", "enroll", home, "-name", "Office PC"))[1]
	dir := t.TempDir()
	if err := Enroll(context.Background(), dir, EnrollRequest{RelayURL: r.HTTP(), Code: code,
		Name: "Rosa Reyes", Role: record.HomeManager, PIN: "428571"}); err != nil {
		t.Fatal(err)
	}
	a, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	u, err := a.Unlock(staffID(t, a, "Rosa Reyes"), "428571")
	if err != nil {
		t.Fatal(err)
	}
	if u.Certified {
		t.Fatal("a manager is certified before an administrator approved her")
	}
	if _, err := a.AddStaff("Casey Carer", record.CareWorker, "", carerPIN); err == nil {
		t.Fatal("an uncertified manager added staff")
	}
	pending := regexp.MustCompile(`(req-\S+)\s+pending\s+\S+\s+Rosa Reyes`)
	var req []string
	eventually(t, "the manager's request to reach the relay", func() bool {
		req = pending.FindStringSubmatch(r.syncd("admin", "staff", "list"))
		return req != nil
	}, a)
	r.syncd("admin", "staff", "approve", req[1])
	eventually(t, "the manager's certificate, pushed to her desktop", func() bool {
		u := a.CurrentUser()
		return u != nil && u.Certified && u.Role == record.HomeManager
	}, a)

	carer, err := a.AddStaff("Casey Carer", record.CareWorker, "", carerPIN)
	if err != nil {
		t.Fatal(err)
	}
	gp, err := a.AddStaff("Dr Sam Okafor", record.GP, "GMC 7000004", gpPIN)
	if err != nil {
		t.Fatal(err)
	}
	certified := func(id string) bool {
		for _, s := range a.StaffList() {
			if s.ID == id {
				return s.Certified
			}
		}
		return false
	}
	eventually(t, "the care worker's certificate, granted on the manager's word", func() bool { return certified(carer.ID) }, a)
	if certified(gp.ID) {
		t.Fatal("a GP was certified without an administrator")
	}
	a.Lock()
	if u, err := a.Unlock(gp.ID, gpPIN); err != nil || u.Certified || a.CanDecide(record.KindCPR) || !a.Permissions().AddNote {
		t.Fatalf("the GP before approval: %+v, %v; want notes only", u, err)
	}
	req = regexp.MustCompile(`(req-\S+)\s+pending\s+\S+\s+Dr Sam Okafor\s+gp\s+GMC 7000004`).FindStringSubmatch(r.syncd("admin", "staff", "list"))
	if req == nil {
		t.Fatal("the GP's request is not pending at the relay")
	}
	r.syncd("admin", "staff", "approve", req[1])
	eventually(t, "the GP's certificate", func() bool {
		u := a.CurrentUser()
		return u != nil && u.Certified && a.CanDecide(record.KindCPR)
	}, a)
}

// TestRelayLimitIsShownAndChangesKept: a desktop whose changes come faster
// than the relay's limit for a device shows the relay's words on the status
// bar, keeps its changes, and sends them once the limit allows; then the
// words go.
func TestRelayLimitIsShownAndChangesKept(t *testing.T) {
	r := newRelay(t, "-max-change-burst", "2", "-max-changes-per-second", "0.5")
	home := regexp.MustCompile(`home=(\S+)`).FindStringSubmatch(r.syncd("demo"))[1]
	r.start()
	t.Cleanup(r.stop)
	a := r.desktop(home, "Larch nurses' station", account("Dr Ada Quill"))
	eventually(t, "the download", func() bool {
		held := 0
		for _, r := range a.Residents(Filter{}) {
			if r.Held {
				held++
			}
		}
		st := a.Status()
		return held == 40 && st.Pending == 0 && st.Download.Total > 0 && st.Download.Done == st.Download.Total && !st.Download.Active
	}, a)
	id := a.Residents(Filter{})[0].ID
	// One note at a time, each sent before the next is written: six notes
	// written at once can travel as one message, which a full bucket lets
	// through whole (a week's offline work must pass).
	heldBack := func() bool {
		st := a.Status()
		lastState = fmt.Sprintf("%+v", st)
		return st.HeldBack && st.Problem != "" && st.Pending > 0
	}
	saw := false
	for i := 0; i < 6; i++ {
		if _, err := a.AddNote(id, fmt.Sprintf("night round %d: settled, no concerns", i)); err != nil {
			t.Fatal(err)
		}
		if !saw {
			eventually(t, "the note sent or held back", func() bool {
				saw = saw || heldBack()
				return saw || a.Status().Pending == 0
			}, a)
		}
	}
	if !saw {
		eventually(t, "the status bar to say the relay holds changes back", heldBack, a)
	}
	eventually(t, "the notes to reach the relay and the words to go", func() bool {
		st := a.Status()
		lastState = fmt.Sprintf("%+v pending %v", st, a.client.PendingDocs())
		return st.Pending == 0 && !st.HeldBack && st.Problem == ""
	}, a)
	notes, err := a.Notes(id)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, nv := range notes {
		if strings.HasPrefix(nv.Text, "night round") {
			n++
		}
	}
	if n != 6 {
		t.Fatalf("%d of 6 notes kept", n)
	}
}

// TestLeaverAndPINResetThroughTheRelay: a home manager removes a leaver
// (the account goes from this computer, and the relay revokes the
// certificate on her signed word, which every desktop then holds) and
// resets a forgotten PIN with the person present (the old PIN opens
// nothing, the new one does, the old certificate is revoked and a new one
// granted for the new key). Nobody else may do either.
func TestLeaverAndPINResetThroughTheRelay(t *testing.T) {
	r := newRelay(t)
	home := regexp.MustCompile(`home=(\S+)`).FindStringSubmatch(r.syncd("demo"))[1]
	r.start()
	t.Cleanup(r.stop)
	office := r.desktop(home, "Office PC", account("Mo Manager"))
	station := r.desktop(home, "Nurses' station", account("Dr Ada Quill"))
	certOf := func(id string) (cert.Certificate, bool) {
		office.mu.Lock()
		defer office.mu.Unlock()
		c, ok := office.trustState.certs[id]
		return c, ok
	}
	certified := func(id string) bool {
		for _, s := range office.StaffList() {
			if s.ID == id {
				return s.Certified
			}
		}
		return false
	}
	leaver, err := office.AddStaff("Lee Leaver", record.CareWorker, "", "582931")
	if err != nil {
		t.Fatal(err)
	}
	forgetful, err := office.AddStaff("Pat Forgetful", record.SeniorCarer, "", "730164")
	if err != nil {
		t.Fatal(err)
	}
	eventually(t, "both new accounts certified", func() bool { return certified(leaver.ID) && certified(forgetful.ID) }, office)
	leaverCert, _ := certOf(leaver.ID)
	oldCert, _ := certOf(forgetful.ID)

	// Nobody but a manager: the GP on the other computer, and a carer here.
	if _, err := station.RemoveStaff(staffID(t, station, "Casey Carer")); !errors.Is(err, ErrNotStaffManager) {
		t.Fatalf("a GP removed staff: %v", err)
	}

	ch, err := office.RemoveStaff(leaver.ID)
	if err != nil || !ch.Revoking {
		t.Fatalf("RemoveStaff = %+v, %v; want the revocation asked for", ch, err)
	}
	if _, err := office.Unlock(leaver.ID, "582931"); err == nil {
		t.Fatal("a removed leaver still signs in")
	}
	if _, err := office.Unlock(staffID(t, office, "Mo Manager"), account("Mo Manager").PIN); err != nil {
		t.Fatal(err)
	}
	revokedOn := func(a *App, c cert.Certificate) bool { _, ok := a.Trust().RevokedAt(c.ID); return ok }
	eventually(t, "the leaver's certificate revoked on both computers", func() bool {
		return revokedOn(office, leaverCert) && revokedOn(station, leaverCert) && office.PendingLeavers() == 0
	}, office, station)

	if _, err := office.ResetPIN(forgetful.ID, "123456"); !errors.Is(err, ErrWeakPIN) {
		t.Fatalf("a weak new PIN: %v", err)
	}
	ch, err = office.ResetPIN(forgetful.ID, "918273")
	if err != nil || !ch.Revoking {
		t.Fatalf("ResetPIN = %+v, %v", ch, err)
	}
	eventually(t, "the old certificate revoked and a new one granted for the new key", func() bool {
		c, ok := certOf(forgetful.ID)
		return revokedOn(office, oldCert) && ok && c.ID != oldCert.ID && certified(forgetful.ID)
	}, office)
	office.Lock()
	if _, err := office.Unlock(forgetful.ID, "730164"); !errors.Is(err, ErrWrongPIN) {
		t.Fatalf("the forgotten PIN: %v; want ErrWrongPIN", err)
	}
	u, err := office.Unlock(forgetful.ID, "918273")
	if err != nil || !u.Certified || u.ID != forgetful.ID {
		t.Fatalf("the new PIN: %+v, %v; want Pat, certified, same staff ID", u, err)
	}
	if _, err := office.RemoveStaff(leaver.ID); !errors.Is(err, ErrNotStaffManager) {
		t.Fatalf("a senior carer removed staff: %v", err)
	}
}
