package app

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"haven/assets/demo"
	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/shared/store"
	"haven/shared/wire"
)

// DemoAccount is a staff account a demo computer is set up with. Demo
// PINs are shown on the demo unlock screen; they protect synthetic data.
type DemoAccount struct {
	Name  string
	Role  record.Role
	RegNo string
	PIN   string
}

// DemoAccounts are the demo staff: one of each kind of user.
var DemoAccounts = []DemoAccount{
	{"Sam Senior", record.SeniorCarer, "", "246810"},
	{"Casey Carer", record.CareWorker, "", "135790"},
	{"Mo Manager", record.HomeManager, "", "314159"},
	{"Dr Ada Quill", record.GP, "GMC 7000001", "271828"},
	{"Dr Priya Shah", record.GP, "GMC 7000002", "577215"},
	{"Nurse Bo Lind", record.AdviceClinician, "NMC 12A3456E", "161803"},
	{"Ivy Gov", record.IGLead, "", "141421"},
}

// demoStaff makes every demo account, sealed with master.
func demoStaff(master []byte) ([]staffRecord, error) {
	var out []staffRecord
	for _, d := range DemoAccounts {
		s, err := newStaff(d.Name, d.Role, d.RegNo, d.PIN, master, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// SeedDemo sets up an offline demo computer in dir: a care home with n
// synthetic residents (each with notes in its timeline), and the demo staff
// accounts. It is for screenshots, UI tests and benchmarks; a demo that
// syncs is enrolled with a relay instead (make run).
func SeedDemo(dir string, n, notes int, now time.Time) error {
	return seedDemo(dir, n, notes, now, false)
}

// SeedDemoAdviceLine sets up an offline demo advice-line computer as it is
// after a night of calls: the residents' records it opened (from one home,
// n of them), each kept for three days from now, and nothing else.
func SeedDemoAdviceLine(dir string, n, notes int, now time.Time) error {
	return seedDemo(dir, n, notes, now, true)
}

func seedDemo(dir string, n, notes int, now time.Time, adviceLine bool) error {
	if _, err := loadDevice(dir); err == nil {
		return errors.New("this folder is already set up")
	}
	master := randomBytes(32)
	staff, err := demoStaff(master)
	if err != nil {
		return err
	}
	cred, _ := seal(master, []byte("offline-demo"))
	home := "home-demo"
	// An offline demo has no relay: a key made here stands in for the
	// organisation key, certifies the demo staff and signs the demo's
	// decisions, and is then forgotten.
	orgPub, orgKey := cert.NewKey()
	anchor, _ := seal(master, orgPub)
	d := &deviceFile{Version: 1, DeviceID: "dev-demo", DeviceName: "Demo computer", Org: home, OrgName: "Larch House (demo)",
		OrgKind: "care-home", RelayURL: "", PeerID: randomID("desktop-"), StorageID: randomID("store-"), Credential: cred,
		LockAfterSeconds: 300, Demo: true, Staff: staff, Anchor: anchor}
	if adviceLine {
		d.OrgKind, d.OrgName = "advice-line", "Night advice line (demo)"
	}
	st, err := store.Open(dir, store.Options{Key: master})
	if err != nil {
		return err
	}
	if err := certifyDemoStaff(st, orgKey, home, staff, now); err == nil {
		// Kept (encrypted, like everything in the store) so that the
		// demonstration helpers can certify the clinicians of the other,
		// imaginary computers whose conflicting decisions they make up.
		err = st.Put(context.Background(), nsDemo, keyDemoOrg, orgKey.Seed())
	}
	if err != nil {
		st.Close()
		return err
	}
	r := repo.New(st, repo.Options{})
	c := demo.NewCertifier(orgKey, home)
	h, err := demo.NewHome(home, d.OrgName, n, notes, 1, now, c)
	if err == nil && !adviceLine {
		// The year's deaths and advice calls, for the reports.
		if err = h.AddFormer(home, max(1, n/10), 1, now, c); err == nil {
			err = h.AddAdviceCalls(1, now, c)
		}
	}
	if err == nil {
		ctx := context.Background()
		put := func(id docid.ID, doc *crdt.Doc) {
			if err == nil {
				_, err = r.Create(ctx, id, doc)
			}
		}
		if !adviceLine {
			err = demo.SetArea(h.Directory, now)
			put(h.DirectoryID, h.Directory)
		}
		// The region's directory of services, as the relay lists it to
		// every computer.
		if sdoc, sid, serr := demo.NewServices(now); serr != nil {
			err = errors.Join(err, serr)
		} else {
			put(sid, sdoc)
			if err == nil {
				err = st.Put(ctx, nsServices, keyServices, []byte(sid.String()))
			}
		}
		if err == nil {
			// The region's care homes, as the relay's trust messages name
			// them: where a resident may move.
			b, _ := json.Marshal(append([]wire.HomeName{{ID: home, Name: d.OrgName}}, demoOtherHomes...))
			err = st.Put(ctx, nsTrust, keyHomes, b)
		}
		for _, res := range h.Residents {
			put(res.RecordID, res.Record)
			put(res.TimelineID, res.Timeline)
			if adviceLine && err == nil {
				b, _ := json.Marshal(opened{Timeline: res.TimelineID.String(), Until: now.Add(adviceRetention)})
				err = st.Put(ctx, nsOpened, res.RecordID.String(), b)
			}
		}
	}
	r.Close()
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("seed demo: %w", err)
	}
	if !adviceLine {
		d.Directory = h.DirectoryID.String()
	}
	return d.save(dir)
}

// nsDemo holds what only an offline demo computer keeps: the organisation
// key standing in for the relay's.
const (
	nsDemo     = "demo"
	keyDemoOrg = "org-key"
)

// demoOrgKey is an offline demo computer's organisation key.
func (a *App) demoOrgKey() (ed25519.PrivateKey, error) {
	a.mu.Lock()
	st := a.st
	a.mu.Unlock()
	if st == nil {
		return nil, ErrLockedScreen
	}
	seed, err := st.Get(nsDemo, keyDemoOrg)
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, errors.New("conflicts are made up only on an offline demo computer (seeded with -seed-demo)")
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// certifyDemoStaff issues each demo account a certificate with the offline
// demo's organisation key and stores them as the relay's would arrive.
func certifyDemoStaff(st *store.Store, orgKey ed25519.PrivateKey, org string, staff []staffRecord, now time.Time) error {
	certs := map[string]cert.Certificate{}
	for _, s := range staff {
		r := s.Request
		certs[s.ID] = cert.Certificate{ID: cert.NewID(), Org: org, Staff: s.ID, Name: r.Name, Role: r.Role, Registration: r.Registration,
			PublicKey: r.PublicKey, ValidFrom: now.AddDate(-1, 0, 0), ValidUntil: now.AddDate(2, 0, 0)}.Sign(orgKey)
	}
	b, _ := json.Marshal(certs)
	return st.Put(context.Background(), nsTrust, keyCerts, b)
}
