package app

import "testing"

// TestServicesThroughTheRelay: `syncd demo` loads the region's directory
// of services and the home's area; a care home's computer and a GP hub's
// laptop each download it on first connecting, without asking for it, and
// the home's front sheet lists who to call. A GP at the hub corrects a
// service's night number and the care home's computer shows the new one.
func TestServicesThroughTheRelay(t *testing.T) {
	r, orgs := demoRelay(t)
	home := r.desktop(orgs["home"], "Nurses' station", account("Sam Senior"))
	hub := r.desktop(orgs["hub"], "Hub laptop", account("Dr Ada Quill"))
	downloaded(t, home, hub)
	total := func(a *App) int {
		l, err := a.Services(ServicesQuery{})
		if err != nil {
			return 0
		}
		return l.Total
	}
	eventually(t, "the directory of services at both computers", func() bool { return total(home) > 0 && total(hub) > 0 }, home, hub)
	if total(home) != total(hub) {
		t.Fatalf("the home holds %d services, the hub %d", total(home), total(hub))
	}
	rows := home.Residents(Filter{})
	if w := home.WhoToCall(rows[0].ID); w.Missing != "" || !w.Area.Known() {
		t.Fatalf("who to call at the home: %+v", w)
	}
	if home.CanEditServices() || !hub.CanEditServices() {
		t.Fatalf("edit offered: home %v, hub %v; want the hub's GP only", home.CanEditServices(), hub.CanEditServices())
	}

	found, err := hub.Services(ServicesQuery{Text: "Brent Rapid Response"})
	if err != nil || len(found.Services) != 1 {
		t.Fatalf("the hub finds %+v, %v", found, err)
	}
	s := found.Services[0].Service
	s.PhoneNight, s.Confirmed = "020 7946 0049", hub.Today()
	if _, err := hub.SaveService(s); err != nil {
		t.Fatal(err)
	}
	night := func() string {
		l, _ := home.Services(ServicesQuery{Text: "Brent Rapid Response"})
		if len(l.Services) != 1 {
			return ""
		}
		return l.Services[0].PhoneNight
	}
	eventually(t, "the hub's correction at the care home", func() bool { return night() == "020 7946 0049" }, home)
	if l, _ := home.Services(ServicesQuery{Text: "Brent Rapid Response"}); l.Services[0].Unconfirmed {
		t.Error("the service confirmed today is still marked at the home")
	}
}
