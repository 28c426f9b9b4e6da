package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"haven/assets/demo"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/shared/store"
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
	{"Nurse Bo Lind", record.AdviceClinician, "NMC 12A3456E", "161803"},
}

// demoStaff seals master for every demo account.
func demoStaff(master []byte) ([]Staff, error) {
	var out []Staff
	for _, d := range DemoAccounts {
		s, err := newStaff(d.Name, d.Role, d.RegNo, d.PIN, master)
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
	d := &deviceFile{Version: 1, DeviceID: "dev-demo", DeviceName: "Demo computer", Org: home, OrgName: "Larch House (demo)",
		OrgKind: "care-home", RelayURL: "", PeerID: randomID("desktop-"), StorageID: randomID("store-"), Credential: cred,
		LockAfterSeconds: 300, Demo: true, Staff: staff}
	st, err := store.Open(dir, store.Options{Key: master})
	if err != nil {
		return err
	}
	r := repo.New(st, repo.Options{})
	h, err := demo.NewHome(home, d.OrgName, n, notes, 1, now)
	if err == nil {
		ctx := context.Background()
		put := func(id docid.ID, doc *crdt.Doc) {
			if err == nil {
				_, err = r.Create(ctx, id, doc)
			}
		}
		put(h.DirectoryID, h.Directory)
		for _, res := range h.Residents {
			put(res.RecordID, res.Record)
			put(res.TimelineID, res.Timeline)
		}
	}
	r.Close()
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("seed demo: %w", err)
	}
	d.Directory = h.DirectoryID.String()
	return d.save(dir)
}
