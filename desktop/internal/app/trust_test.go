package app

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"haven/assets/demo"
	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/wire"
)

// plant writes a change straight into this computer's store, as a stolen
// laptop or an altered copy of the folder could, around the relay.
func plant(t *testing.T, a *App, h docid.ID, fn func(w *crdt.Writer) error) {
	t.Helper()
	hd, err := a.repo.Open(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := hd.Change(context.Background(), func(doc *crdt.Doc) error {
		_, err := doc.Change(`{"v":1,"op":"decide"}`, testNow, fn)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	a.idx.refresh(h)
}

// TestPlantedDecisionsShowAsUnverified: every forgery the relay refuses
// (TestJavaScriptTamperingIsRefused in syncd), planted instead straight
// into a desktop's own store, is shown as what it is: never as the
// decision, in the list of unverified entries with its reason, or, where
// the history itself was altered, as an altered list; and the manager's
// tamper count counts it.
func TestPlantedDecisionsShowAsUnverified(t *testing.T) {
	a, _, h := openApp(t, 8, "Dr Ada Quill", gpPIN)
	carer := testCertifier.Editor(record.Author{UserID: "demo-carer", Name: "Casey Carer", Role: record.CareWorker, DeviceID: "x"}).Signer.(record.KeySigner)
	leaver := testCertifier.Editor(record.Author{UserID: "u-leaver", Name: "Dr Gone", Role: record.GP, RegNo: "GMC 7000009", DeviceID: "x"}).Signer.(record.KeySigner)
	rev := cert.Revocation{Cert: leaver.Cert.ID, At: testNow.Add(-time.Hour)}.Sign(testOrgKey)
	a.onTrust(wire.Trust{Anchor: testOrgPub, Revocations: []cert.Revocation{rev}})
	if _, ok := a.Trust().RevokedAt(leaver.Cert.ID); !ok {
		t.Fatal("the relay's revocation was not taken in")
	}
	foreign := func() record.KeySigner {
		pub, priv := cert.NewKey()
		_, other := cert.NewKey()
		c := cert.Certificate{ID: cert.NewID(), Org: "home-1", Staff: "u-x", Name: "Dr Ada Quill", Role: "gp", Registration: "GMC 7000001",
			PublicKey: pub, ValidFrom: testNow.AddDate(-1, 0, 0), ValidUntil: testNow.AddDate(1, 0, 0)}.Sign(other)
		return record.KeySigner{Cert: &c, Key: priv}
	}()
	body := func(e record.Entry) string { b, _ := json.Marshal(e); return string(b) }
	forged := func(id docid.ID, s record.KeySigner, cur record.Entry, value string) record.Entry {
		e := record.Entry{ID: record.NewID(), Value: `"` + value + `"`, At: record.Timestamp(testNow), Reason: "forged",
			Supersedes: []string{cur.ID}, Cert: s.Cert}
		e.Sig = s.Sign(record.EntrySigningBytes(id.String(), record.KindCPR, e))
		return e
	}
	for i, tc := range []struct {
		name    string
		plant   func(id docid.ID, cur record.Entry) func(w *crdt.Writer) error
		code    string // the unverified entry's code; "" for an altered list
		altered string
	}{
		{"the GP's entry copied with the value flipped", func(id docid.ID, cur record.Entry) func(w *crdt.Writer) error {
			e := cur
			e.ID, e.Value, e.Supersedes = record.NewID(), `"`+record.CPRRecommended+`"`, []string{cur.ID}
			return func(w *crdt.Writer) error { return w.Set(body(e), "decisions", "cpr", e.ID) }
		}, "bad-signature", ""},
		{"a revoked certificate", func(id docid.ID, cur record.Entry) func(w *crdt.Writer) error {
			e := forged(id, leaver, cur, record.CPRRecommended)
			return func(w *crdt.Writer) error { return w.Set(body(e), "decisions", "cpr", e.ID) }
		}, "certificate-revoked", ""},
		{"a care worker's certificate", func(id docid.ID, cur record.Entry) func(w *crdt.Writer) error {
			e := forged(id, carer, cur, record.CPRRecommended)
			return func(w *crdt.Writer) error { return w.Set(body(e), "decisions", "cpr", e.ID) }
		}, "role-not-permitted", ""},
		{"another organisation's key", func(id docid.ID, cur record.Entry) func(w *crdt.Writer) error {
			e := forged(id, foreign, cur, record.CPRRecommended)
			return func(w *crdt.Writer) error { return w.Set(body(e), "decisions", "cpr", e.ID) }
		}, "foreign-issuer", ""},
		{"the newest entry deleted", func(id docid.ID, cur record.Entry) func(w *crdt.Writer) error {
			return func(w *crdt.Writer) error { return w.Delete("decisions", "cpr", cur.ID) }
		}, "", record.RuleDecisionDeleted},
		{"the value rewritten inside the entry", func(id docid.ID, cur record.Entry) func(w *crdt.Writer) error {
			e := cur
			e.Value = `"` + record.CPRRecommended + `"`
			return func(w *crdt.Writer) error { return w.Set(body(e), "decisions", "cpr", cur.ID) }
		}, "", record.RuleDecisionRewrite},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := h.Residents[i].RecordID
			// The GP signs a real decision first, so there is one to forge against.
			if _, err := a.Decide(id, record.KindCPR, "", record.CPRNotRecommended, "reviewed today"); err != nil {
				t.Fatal(err)
			}
			before, _ := a.FrontSheet(id)
			rec, _, _ := a.record(id)
			cur, ok := rec.Decision(record.KindCPR, "").Settled()
			if !ok || before.CPR.State != DecisionSettled || before.Tampered != 0 {
				t.Fatalf("before: %+v, tampered %d", before.CPR, before.Tampered)
			}
			plant(t, a, id, tc.plant(id, cur))
			fs, err := a.FrontSheet(id)
			if err != nil {
				t.Fatal(err)
			}
			if tc.altered != "" {
				if fs.CPR.State != DecisionAltered || !strings.Contains(fs.CPR.Text, tc.altered) {
					t.Errorf("CPR shows %+v; want the list shown as altered (%s)", fs.CPR, tc.altered)
				}
			} else {
				if fs.CPR.State != DecisionSettled || !strings.Contains(fs.CPR.Text, "NOT recommended") {
					t.Errorf("CPR shows %+v; want the GP's decision, untouched by the planted entry", fs.CPR)
				}
				if !slices.ContainsFunc(fs.CPR.Unverified, func(u UnverifiedView) bool { return u.Code == tc.code }) {
					t.Errorf("unverified entries %+v; want one with code %s", fs.CPR.Unverified, tc.code)
				}
			}
			if fs.Tampered == 0 {
				t.Error("the tamper count does not count it")
			}
			row := a.Residents(Filter{})
			i := slices.IndexFunc(row, func(r Row) bool { return r.ID == id })
			if row[i].Tampered == 0 {
				t.Error("the resident list's row does not count it")
			}
		})
	}
}

// TestEditedDeviceFileConfersNothing: a care worker with her own PIN edits
// the device file: her entry copied under a new ID, renamed "Dr …", with
// the role GP and a registration asked for; or her entry given the GP's
// staff ID in place of the GP's. Neither signs her in as a GP or lets her
// record a decision.
func TestEditedDeviceFileConfersNothing(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(d *deviceFile) (who string)
	}{
		{"her entry copied and renamed Dr, role GP", func(d *deviceFile) string {
			forged := staffNamed(t, d, "Casey Carer")
			forged.ID, forged.Name = "staff-forged0000", "Dr Casey Carer"
			forged.Request.Name, forged.Request.Role, forged.Request.Registration = "Dr Casey Carer", string(record.GP), "GMC 7000005"
			d.Staff = append(d.Staff, forged)
			return forged.ID
		}},
		{"her entry given the GP's ID", func(d *deviceFile) string {
			gp := staffNamed(t, d, "Dr Ada Quill")
			d.Staff = slices.DeleteFunc(d.Staff, func(s staffRecord) bool { return s.ID == gp.ID })
			for i := range d.Staff {
				if d.Staff[i].Name == "Casey Carer" {
					d.Staff[i].ID, d.Staff[i].Name = gp.ID, gp.Name
				}
			}
			return gp.ID
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			testDevice(t, dir)
			d, err := loadDevice(dir)
			if err != nil {
				t.Fatal(err)
			}
			who := tc.edit(d)
			if err := d.save(dir); err != nil {
				t.Fatal(err)
			}
			a, err := Open(dir, Options{NoSync: true, Now: func() time.Time { return testNow }})
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			u, err := a.Unlock(who, carerPIN)
			if err != nil {
				t.Fatalf("unlock with her own PIN: %v", err)
			}
			if u.Certified || u.Role == record.GP && u.Certified || a.CanDecide(record.KindCPR) {
				t.Fatalf("signed in as %+v (certified %v), may decide CPR %v: the device file conferred a role", u.Staff, u.Certified, a.CanDecide(record.KindCPR))
			}
			hm, err := demoHome(t, a)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Decide(hm, record.KindCPR, "", record.CPRNotRecommended, "forged"); err == nil {
				t.Fatal("she recorded a CPR decision")
			}
			for _, s := range a.StaffList() {
				if s.ID == who && s.Certified {
					t.Errorf("the unlock screen lists %q as certified", s.Name)
				}
			}
		})
	}
}

func staffNamed(t *testing.T, d *deviceFile, name string) staffRecord {
	t.Helper()
	for _, s := range d.Staff {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no staff %q", name)
	return staffRecord{}
}

// demoHome seeds one demo resident into an unlocked app and returns it.
func demoHome(t *testing.T, a *App) (docid.ID, error) {
	t.Helper()
	h, err := demo.NewHome("home-1", "Larch House", 1, 1, 3, testNow, testCertifier)
	if err != nil {
		return docid.ID{}, err
	}
	seed(t, a, h.DirectoryID, h.Directory)
	seed(t, a, h.Residents[0].RecordID, h.Residents[0].Record)
	seed(t, a, h.Residents[0].TimelineID, h.Residents[0].Timeline)
	return h.Residents[0].RecordID, nil
}

// TestWrongPINCountOutlivesACopiedDeviceFile: five wrong PINs lock an
// account for a minute; putting back a copy of the device file taken
// before does not unlock it, because the count is kept in the encrypted
// store while it is open.
func TestWrongPINCountOutlivesACopiedDeviceFile(t *testing.T) {
	dir := t.TempDir()
	testDevice(t, dir)
	c := &clock{t: testNow}
	a, err := Open(dir, Options{NoSync: true, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Unlock(staffID(t, a, "Mo Manager"), managerPIN); err != nil {
		t.Fatal(err)
	}
	a.Lock()
	saved, err := os.ReadFile(filepath.Join(dir, deviceFileName))
	if err != nil {
		t.Fatal(err)
	}
	carer := staffID(t, a, "Casey Carer")
	for i := 0; i < 5; i++ {
		if _, err := a.Unlock(carer, "000000"); !errors.Is(err, ErrWrongPIN) {
			t.Fatalf("wrong PIN %d: %v", i, err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, deviceFileName), saved, 0o600); err != nil {
		t.Fatal(err)
	}
	a.mu.Lock()
	a.dev, _ = loadDevice(dir) // what a restart would read
	a.mu.Unlock()
	if _, err := a.Unlock(carer, carerPIN); !errors.Is(err, ErrTooManyPINs) {
		t.Fatalf("after restoring the device file: %v, want ErrTooManyPINs", err)
	}
	c.t = c.t.Add(61 * time.Second)
	if _, err := a.Unlock(carer, carerPIN); err != nil {
		t.Fatalf("a minute later: %v", err)
	}
}

// TestHistoryIsHonestAboutNames: a decision's author shows as signed (their
// certificate's name); a change without a signature shows its claimed name
// as not verified, with the sending computer not yet confirmed (offline);
// a forged decision entry is not shown as signed by the GP it names.
func TestHistoryIsHonestAboutNames(t *testing.T) {
	a, _, h := openApp(t, 1, "Dr Ada Quill", gpPIN)
	id := h.Residents[0].RecordID
	if _, err := a.Decide(id, record.KindCPR, "", record.CPRNotRecommended, "reviewed today"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.AddAlert(id, "falls risk"); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := a.record(id)
	cur, _ := rec.Decision(record.KindCPR, "").Settled()
	forged := cur
	forged.ID, forged.Value, forged.Supersedes = record.NewID(), `"`+record.CPRRecommended+`"`, []string{cur.ID}
	body, _ := json.Marshal(forged)
	meta, _ := json.Marshal(record.ChangeMeta{V: 1, Op: "decide", By: cur.Author, Fields: []string{"decisions.cpr." + forged.ID}})
	hd, _ := a.repo.Open(id)
	if err := hd.Change(context.Background(), func(doc *crdt.Doc) error {
		_, err := doc.Change(string(meta), testNow, func(w *crdt.Writer) error { return w.Set(string(body), "decisions", "cpr", forged.ID) })
		return err
	}); err != nil {
		t.Fatal(err)
	}
	items, err := a.History(id)
	if err != nil {
		t.Fatal(err)
	}
	var signed, alert, forgedItem *HistoryItem
	for i := range items {
		it := &items[i]
		switch {
		case strings.Contains(it.What, "Added an alert"):
			alert = it
		case strings.Contains(it.What, "Recorded a decision") && it.Verified:
			signed = it
		case strings.Contains(it.What, "Recorded a decision"):
			forgedItem = it
		}
	}
	if signed == nil || !strings.Contains(signed.Who, "Dr Ada Quill, GP, GMC 7000001 · signed") {
		t.Errorf("the GP's decision: %+v; want it shown as signed by her", signed)
	}
	if alert == nil || alert.Verified || !strings.Contains(alert.Who, "(name not verified)") || !strings.Contains(alert.Who, "not yet confirmed by the relay") {
		t.Errorf("the alert: %+v; want the name as not verified and the sender not yet confirmed", alert)
	}
	if forgedItem == nil || forgedItem.Verified || strings.Contains(forgedItem.Who, "signed") {
		t.Errorf("the forged entry: %+v; want it not shown as signed", forgedItem)
	}
	a.onWho(wire.Who{Doc: id.String(), Devices: map[string]wire.DeviceName{hd.Doc().Actor(): {ID: "dev-1", Name: "Nurses' station", Org: "home-1"}}})
	items, _ = a.History(id)
	for _, it := range items {
		if strings.Contains(it.What, "Added an alert") && it.Device != "Nurses' station" {
			t.Errorf("after the relay's answer the alert shows %+v; want it sent by the nurses' station", it)
		}
	}
}
