package app

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"haven/assets/demo"
	"haven/shared/crdt"
	"haven/shared/record"
)

func serviceIDs(vs []ServiceView) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.ID)
	}
	return out
}

// TestServicesOfflineSearchAndWhoToCall: a care home's computer with no
// connection holds the region's directory of services (as it arrives from
// the relay: remoteChange) and the home's area in its directory. Staff
// find a service by a word of what it offers and by area; the front
// sheet's who-to-call panel lists, at 02:30 on a Tuesday, the services
// covering the home that are open then, a night service that opened on
// Monday evening among them, with its night number; at 08:00 the night
// services have closed and the day ones opened. A service confirmed eight
// months ago is marked. Nobody at a care home may change the directory.
func TestServicesOfflineSearchAndWhoToCall(t *testing.T) {
	a, c, h := openApp(t, 2, "Dr Ada Quill", gpPIN)
	c.t = time.Date(2026, 12, 8, 2, 30, 0, 0, time.UTC) // a Tuesday
	if _, err := a.Services(ServicesQuery{}); !errors.Is(err, ErrNoServices) {
		t.Fatalf("before the directory arrives: %v, want ErrNoServices", err)
	}
	// A home whose area is not recorded gets no list, and is told why.
	if w := a.WhoToCall(h.Residents[0].RecordID); w.Missing == "" || len(w.Services) > 0 {
		t.Errorf("who to call with no area recorded: %+v", w)
	}
	dh, err := a.repo.Open(h.DirectoryID)
	if err != nil {
		t.Fatal(err)
	}
	if err := dh.Change(context.Background(), func(doc *crdt.Doc) error { return demo.SetArea(doc, c.t) }); err != nil {
		t.Fatal(err)
	}
	sdoc, sid, err := demo.NewServices(c.t)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.repo.Create(context.Background(), sid, sdoc); err != nil {
		t.Fatal(err)
	}
	a.remoteChange(sid)

	for _, q := range []struct {
		name string
		q    ServicesQuery
		want []string
	}{
		{"a medicine the pharmacy stocks", ServicesQuery{Text: "midazolam"}, []string{"harlesden-ph"}},
		{"a postcode district", ServicesQuery{Area: "nw10"}, []string{"brent-cpct", "brent-rr", "brent-dn", "brent-dn-night", "harlesden-ph"}},
		{"a borough and a word", ServicesQuery{Area: "Ealing", Text: "pharmacy"}, []string{"ealing-ph"}},
		{"a borough, open now", ServicesQuery{Area: "Brent", OpenNow: true}, []string{"stc-line", "nwl-ooh", "brent-dn-night"}},
	} {
		got, err := a.Services(q.q)
		if err != nil {
			t.Fatal(err)
		}
		if ids := serviceIDs(got.Services); !slices.Equal(ids, q.want) {
			t.Errorf("%s: %v, want %v", q.name, ids, q.want)
		}
	}
	all, _ := a.Services(ServicesQuery{})
	for _, s := range all.Services {
		if s.Unconfirmed != (s.ID == "brent-rr") {
			t.Errorf("%s marked unconfirmed = %v (confirmed %s)", s.ID, s.Unconfirmed, s.Confirmed)
		}
	}

	resident := h.Residents[0].RecordID
	w := a.WhoToCall(resident)
	if w.Missing != "" || w.Area.District() != "NW10" {
		t.Fatalf("who to call: %+v", w)
	}
	if ids := serviceIDs(w.Services); !slices.Equal(ids, []string{"stc-line", "nwl-ooh", "brent-dn-night"}) {
		t.Errorf("who to call at 02:30 on Tuesday: %v", ids)
	}
	for _, s := range w.Services {
		if s.ID == "brent-dn-night" && s.PhoneNow != s.PhoneNight {
			t.Errorf("at night ring %q for the night nurses, want their night number %q", s.PhoneNow, s.PhoneNight)
		}
	}
	c.t = time.Date(2026, 12, 8, 8, 0, 0, 0, time.UTC)
	ids := serviceIDs(a.WhoToCall(resident).Services)
	if slices.Contains(ids, "nwl-ooh") || slices.Contains(ids, "brent-dn-night") || !slices.Contains(ids, "brent-dn") || !slices.Contains(ids, "stc-line") {
		t.Errorf("who to call at 08:00: %v; the night services closed, the day nurses opened", ids)
	}

	// A GP signed in at a care home's computer keeps no services here.
	if a.CanEditServices() {
		t.Error("a care home's computer offers to edit the directory of services")
	}
	var p *Problem
	if _, err := a.SaveService(all.Services[0].Service); !errors.As(err, &p) || !errors.Is(err, record.ErrNotPermitted) {
		t.Errorf("SaveService at a care home: %v, want refused as not permitted", err)
	}
}

// TestServicesEditedAtAHub: a GP at a hub's computer corrects a service
// (a new night number, confirmed today) and finds it so at once; a service
// left without a telephone number is refused, naming the field, and the
// directory keeps the service as it was.
func TestServicesEditedAtAHub(t *testing.T) {
	a, c, _ := openApp(t, 1, "Dr Ada Quill", gpPIN)
	a.mu.Lock()
	a.dev.OrgKind = "gp-hub"
	a.mu.Unlock()
	sdoc, sid, err := demo.NewServices(c.t)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.repo.Create(context.Background(), sid, sdoc); err != nil {
		t.Fatal(err)
	}
	a.remoteChange(sid)
	if !a.CanEditServices() {
		t.Fatal("a GP at a hub is not offered the directory to edit")
	}
	found, _ := a.Services(ServicesQuery{Text: "Brent Rapid Response"})
	if len(found.Services) != 1 || !found.Services[0].Unconfirmed {
		t.Fatalf("the demo's unconfirmed service: %+v", found.Services)
	}
	s := found.Services[0].Service
	s.PhoneNight, s.Confirmed = "020 7946 0049", c.t.Format(record.DateLayout)
	if _, err := a.SaveService(s); err != nil {
		t.Fatalf("SaveService: %v", err)
	}
	after, _ := a.Services(ServicesQuery{Text: "Brent Rapid Response"})
	if v := after.Services[0]; v.PhoneNight != "020 7946 0049" || v.Unconfirmed {
		t.Errorf("after the correction: night %q, unconfirmed %v", v.PhoneNight, v.Unconfirmed)
	}
	bad := s
	bad.PhoneDay = " "
	var p *Problem
	if _, err := a.SaveService(bad); !errors.As(err, &p) || p.Fields["phoneDay"] == "" {
		t.Errorf("a service with no telephone number: %v, want the phoneDay field named", err)
	}
	if kept, _ := a.Services(ServicesQuery{Text: "Brent Rapid Response"}); kept.Services[0].PhoneDay != s.PhoneDay {
		t.Errorf("the refused edit changed the directory: %+v", kept.Services[0])
	}
}
