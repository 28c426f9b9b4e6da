package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/wire"
	"haven/syncd/internal/admin"
)

const servicesHeader = "id,name,kind,offers,mon,tue,wed,thu,fri,sat,sun,phone_day,phone_night,areas,referral,confirmed\n"

// servicesRow is one line of a services file: a service open every day
// 18:30-08:00 in Brent, with the name given.
func servicesRow(id, name string) string {
	return id + "," + name + ",out-of-hours-gp,Night visits," + strings.Repeat("18:30-08:00,", 7) + "020 7946 0101,,Brent; NW10,Ring,2026-11-01\n"
}

var servicesDocRE = regexp.MustCompile(`directory of services (\S+)`)

// loadServices runs services-load on a file holding body and returns the
// directory's ID, failing the test on an error.
func loadServices(t *testing.T, p *relayProc, body string) docid.ID {
	t.Helper()
	file := filepath.Join(t.TempDir(), "services.csv")
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	m := servicesDocRE.FindStringSubmatch(p.admin("services-load", file))
	if m == nil {
		t.Fatal("services-load named no document")
	}
	id, err := docid.Parse(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fetchAll has a device download what the relay lists for it, as a
// desktop does on each connection.
func fetchAll(t *testing.T, d *device) {
	t.Helper()
	waitFor(t, d.name+" online", d.online)
	if _, err := d.client.Bootstrap(context.Background(), nil); err != nil {
		t.Fatalf("%s: download: %v", d.name, err)
	}
}

func servicesOf(t *testing.T, d *device, id docid.ID) []string {
	t.Helper()
	h, err := d.repo.Open(id)
	if err != nil {
		return nil
	}
	s, err := record.ReadServices(h.Doc())
	if errors.Is(err, record.ErrServices) {
		return nil
	}
	if err != nil {
		t.Fatalf("%s reads the directory of services: %v", d.name, err)
	}
	var names []string
	for _, x := range s.Services {
		names = append(names, x.Name)
	}
	return names
}

// TestServicesReadOnlyForCareHomes: the directory of services reaches
// every device from the list it downloads on connecting, an advice line's
// and another home's included. A care home's device, holding a valid
// credential and writing with its own code, changes it: the relay refuses
// the change with the read-only rule's code, and nothing of it reaches the
// hub, the other home or the relay's copy. A GP hub's and the advice line's
// changes are accepted and reach the care homes.
func TestServicesReadOnlyForCareHomes(t *testing.T) {
	w := setup(t)
	p := w.relay
	advice := idRE.FindString(p.admin("create-advice-line", "Night Line"))
	id := loadServices(t, p, servicesHeader+servicesRow("ooh-1", "Brent out-of-hours GP"))

	home := newDevice(t, "home-pc", p.enroll(w.homeA, "Nurses' station"), p.url())
	other := newDevice(t, "birch-pc", p.enroll(w.homeB, "Birch office"), p.url())
	hub := newDevice(t, "hub-pc", p.enroll(w.hub, "Hub desk"), p.url())
	line := newDevice(t, "line-pc", p.enroll(advice, "Line desk"), p.url())
	for _, d := range []*device{home, other, hub, line} {
		fetchAll(t, d)
		if got := servicesOf(t, d, id); !slices.Equal(got, []string{"Brent out-of-hours GP"}) {
			t.Fatalf("%s holds services %v after its download", d.name, got)
		}
	}

	// The care home's own change: refused by rule, held on the device.
	forged := record.Service{Name: "Forged hospice line", Kind: record.ServiceHospiceLine, Offers: "x",
		Hours: [7]string{"24h", "24h", "24h", "24h", "24h", "24h", "24h"}, PhoneDay: "020 7946 0999",
		Areas: []string{"Brent"}, Referral: "Ring", Confirmed: "2026-11-01"}
	home.edit(id, func(doc *crdt.Doc) error { _, err := home.ed.PutService(doc, forged); return err })
	want := wire.RuleCode(record.RuleReadOnly, "")
	waitFor(t, "the relay to refuse the care home's change", func() bool { return slices.Contains(home.errorCodes(), want) })

	// The hub's and the advice line's changes go through, and reach the
	// homes; the refused one reaches no one.
	hubSvc, lineSvc := forged, forged
	hubSvc.Name, lineSvc.Name = "Brent Rapid Response", "St Columba's Hospice line"
	hub.edit(id, func(doc *crdt.Doc) error { _, err := hub.ed.PutService(doc, hubSvc); return err })
	line.edit(id, func(doc *crdt.Doc) error { _, err := line.ed.PutService(doc, lineSvc); return err })
	// By kind (both written as hospice lines), then name.
	wantNames := []string{"Brent Rapid Response", "St Columba's Hospice line", "Brent out-of-hours GP"}
	waitFor(t, "the hub's and the line's services at the other home", func() bool {
		return slices.Equal(servicesOf(t, other, id), wantNames)
	})
	for _, d := range []*device{hub, line} {
		waitFor(t, d.name+" to hold both writers' services", func() bool { return len(servicesOf(t, d, id)) == 3 })
		if got := servicesOf(t, d, id); !slices.Equal(got, wantNames) {
			t.Errorf("%s holds %v, want %v", d.name, got, wantNames)
		}
	}
	if codes := hub.errorCodes(); len(codes) > 0 {
		t.Errorf("the hub's change was refused: %v", codes)
	}
	if codes := line.errorCodes(); len(codes) > 0 {
		t.Errorf("the advice line's change was refused: %v", codes)
	}
	// Every device holds the directory: the advice line's use of it is no
	// access to a record for the IG lead to review.
	if log := p.admin("audit"); strings.Contains(log, id.String()) {
		t.Errorf("the audit log records an access to the directory of services:\n%s", log)
	}
	// The care home receives the others' services and keeps its own
	// refused one, which went nowhere.
	waitFor(t, "the hub's service at the care home", func() bool { return len(servicesOf(t, home, id)) == 4 })
	if home.client.Synced(id) {
		t.Errorf("the care home's refused change counts as synced")
	}
	// A device arriving now downloads the relay's copy: without it.
	fresh := newDevice(t, "fresh-pc", p.enroll(w.homeB, "Birch laptop"), p.url())
	fetchAll(t, fresh)
	if got := servicesOf(t, fresh, id); !slices.Equal(got, wantNames) {
		t.Errorf("the relay's copy holds %v, want %v", got, wantNames)
	}
}

// TestServicesLoadFromCSV: a care home created with its postcode and
// borough has them in its directory. An administrator's file with bad rows is
// refused whole, naming each row by line, and nothing is made; a good file
// makes the directory; loading again while the relay runs replaces it and
// reaches the connected device at once; with the relay stopped the load
// replaces it in the store, and the device receives it when the relay
// starts.
func TestServicesLoadFromCSV(t *testing.T) {
	data := t.TempDir()
	p := startRelay(t, data, anyPort)
	homeID := idRE.FindString(p.admin("create-home", "Larch House", "-postcode", "nw10 9qx", "-borough", "Brent"))
	bad := servicesHeader + servicesRow("ooh-1", "Brent out-of-hours GP") +
		"ph-1,Harlesden Pharmacy,eol-pharmacy,x," + strings.Repeat("09:00-18:00,", 7) + ",,NW10,Ring,2026-11-01\n" +
		servicesRow("ooh-1", "Twice")
	file := filepath.Join(t.TempDir(), "bad.csv")
	os.WriteFile(file, []byte(bad), 0o600)
	if err := run(context.Background(), []string{"admin", "-data", data, "services-load", file}, io.Discard, io.Discard); err == nil {
		t.Fatal("a file with bad rows was loaded")
	}
	var ce *record.CSVError
	if _, err := (&admin.Admin{}).LoadServices(context.Background(), strings.NewReader(bad), ""); !errors.As(err, &ce) {
		t.Fatalf("a file with bad rows: %v, want a CSVError naming each", err)
	}
	var lines []int
	for _, r := range ce.Rows {
		lines = append(lines, r.Line)
	}
	if !slices.Equal(lines, []int{3, 4}) {
		t.Errorf("problems on lines %v, want 3 (no phone) and 4 (an ID twice)", lines)
	}
	enr := p.enroll(homeID, "Nurses' station")
	d := newDevice(t, "home-pc", enr, p.url())
	fetchAll(t, d)
	ids, _ := d.st.Docs()
	var area record.HomeArea
	for _, s := range ids {
		id, err := docid.Parse(s)
		if err != nil {
			continue
		}
		if servicesOf(t, d, id) != nil {
			t.Fatalf("a refused file made a directory of services")
		}
		if h, err := d.repo.Open(id); err == nil {
			if typ, _, _ := h.Doc().Get("type"); typ == record.TypeDirectory {
				area = record.AreaOf(h.Doc())
			}
		}
	}
	// The home's area, given when it was created, is in its directory.
	if area != (record.HomeArea{Postcode: "NW10 9QX", Borough: "Brent"}) {
		t.Errorf("the home's directory holds the area %+v", area)
	}

	id := loadServices(t, p, servicesHeader+servicesRow("ooh-1", "Brent out-of-hours GP")+servicesRow("ooh-2", "Ealing out-of-hours GP"))
	fetchAll(t, d)
	if got := servicesOf(t, d, id); !slices.Equal(got, []string{"Brent out-of-hours GP", "Ealing out-of-hours GP"}) {
		t.Fatalf("after the first load the device holds %v", got)
	}

	// A reload while the relay runs reaches the connected device at once:
	// one service renamed, one gone.
	if again := loadServices(t, p, servicesHeader+servicesRow("ooh-2", "Ealing out-of-hours GP (renamed)")); again != id {
		t.Fatalf("the reload made another directory, %s", again)
	}
	waitFor(t, "the reloaded directory at the connected device", func() bool {
		return slices.Equal(servicesOf(t, d, id), []string{"Ealing out-of-hours GP (renamed)"})
	})

	// With the relay stopped the load writes the store; the device has it
	// when the relay starts again.
	d.stop()
	p.stop()
	file = filepath.Join(t.TempDir(), "third.csv")
	os.WriteFile(file, []byte(servicesHeader+servicesRow("ooh-3", "Harrow out-of-hours GP")), 0o600)
	var out bytes.Buffer
	if err := run(context.Background(), []string{"admin", "-data", data, "services-load", file}, &out, io.Discard); err != nil {
		t.Fatalf("a load with the relay stopped: %v", err)
	}
	if !strings.Contains(out.String(), id.String()) {
		t.Errorf("the load made another directory: %s", out.String())
	}
	p2 := startRelay(t, data, anyPort)
	d.start(enr, p2.url())
	waitFor(t, "the directory loaded offline at the device", func() bool {
		return slices.Equal(servicesOf(t, d, id), []string{"Harrow out-of-hours GP"})
	})
}
