package record

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
)

// at is a wall-clock time in the week of Monday 7 December 2026.
func at(day string, hhmm string) time.Time {
	d := slices.Index(Weekdays[:], day)
	m, _ := clock(hhmm)
	return time.Date(2026, 12, 7+d, m/60, m%60, 0, 0, time.UTC)
}

func weekOf(h string) [7]string { return [7]string{h, h, h, h, h, h, h} }

// sampleService is a valid service; tests change one thing at a time.
func sampleService() Service {
	return Service{ID: "ooh-brent", Name: "Brent out-of-hours GP", Kind: ServiceOutOfHoursGP,
		Offers: "Home visits and prescriptions overnight", PhoneDay: "020 7946 0101", PhoneNight: "020 7946 0102",
		Hours: [7]string{"18:30-08:00", "18:30-08:00", "18:30-08:00", "18:30-08:00", "18:30-08:00", "24h", "24h"},
		Areas: []string{"Brent", "NW10"}, Referral: "Ring; give the NHS number", Confirmed: "2026-09-01"}
}

func TestServiceOpenAcrossMidnight(t *testing.T) {
	s := sampleService()
	s.Hours = [7]string{"closed", "closed", "closed", "closed", "18:30-08:00", "closed", "09:00-12:00,14:00-16:30"}
	cases := []struct {
		day, clock string
		open       bool
	}{
		{"fri", "18:29", false},
		{"fri", "18:30", true},
		{"fri", "23:59", true},
		{"sat", "00:00", true}, // the span started the day before
		{"sat", "07:59", true},
		{"sat", "08:00", false}, // ends on the minute
		{"sat", "18:30", false}, // Saturday itself is closed
		{"sun", "09:00", true},
		{"sun", "12:00", false}, // between two spans
		{"sun", "14:00", true},
		{"sun", "16:29", true},
		{"mon", "00:30", false}, // Sunday's spans do not cross midnight
		{"thu", "23:00", false},
	}
	for _, c := range cases {
		if got := s.OpenAt(at(c.day, c.clock)); got != c.open {
			t.Errorf("%s %s: open = %v, want %v", c.day, c.clock, got, c.open)
		}
	}
	// Sunday night into Monday morning: the week wraps.
	s.Hours = [7]string{"closed", "closed", "closed", "closed", "closed", "closed", "22:00-06:00"}
	mon := at("mon", "05:59")
	if !s.OpenAt(mon) || !s.OpenAt(mon.AddDate(0, 0, 7)) {
		t.Errorf("Sunday 22:00-06:00 should be open at Monday 05:59")
	}
	if s.OpenAt(at("mon", "06:00")) || s.OpenAt(at("sat", "23:00")) {
		t.Errorf("Sunday 22:00-06:00 open outside its hours")
	}
}

func TestServiceOpen24hAndClosed(t *testing.T) {
	s := sampleService()
	s.Hours = weekOf(Hours24)
	for _, c := range []string{"00:00", "08:00", "23:59"} {
		if !s.OpenAt(at("wed", c)) {
			t.Errorf("24h service closed at %s", c)
		}
	}
	s.Hours = [7]string{"09:00-17:00", "09:00-17:00", "09:00-17:00", "09:00-17:00", "09:00-17:00", "closed", "closed"}
	if s.OpenAt(at("sat", "10:00")) || s.OpenAt(at("mon", "08:59")) || s.OpenAt(at("mon", "17:00")) {
		t.Errorf("a weekday service open on a closed day or outside its hours")
	}
	if !s.OpenAt(at("mon", "09:00")) || !s.OpenAt(at("fri", "16:59")) {
		t.Errorf("a weekday service closed in its hours")
	}
}

func TestServicePhoneAtNight(t *testing.T) {
	s := sampleService()
	if got := s.PhoneAt(at("mon", "03:00")); got != s.PhoneNight {
		t.Errorf("at 03:00 ring %q, want the night number", got)
	}
	if got := s.PhoneAt(at("mon", "10:00")); got != s.PhoneDay {
		t.Errorf("at 10:00 ring %q, want the day number", got)
	}
	s.PhoneNight = ""
	if got := s.PhoneAt(at("mon", "03:00")); got != s.PhoneDay {
		t.Errorf("with no night number ring %q, want the day number", got)
	}
}

func TestServiceCoversArea(t *testing.T) {
	s := sampleService()
	s.Areas = []string{"Brent", "nw 10", "HA0"}
	cases := []struct {
		area HomeArea
		want bool
	}{
		{HomeArea{Postcode: "NW10 9QX"}, true}, // district from the full postcode
		{HomeArea{Postcode: "nw109qx"}, true},  // as typed
		{HomeArea{Borough: "  brent "}, true},  // borough, case and spacing aside
		{HomeArea{Postcode: "NW1 6XE"}, false}, // NW1 is not NW10
		{HomeArea{Postcode: "HA0 4UZ", Borough: "Ealing"}, true},
		{HomeArea{Postcode: "W5 2HL", Borough: "Ealing"}, false},
		{HomeArea{}, false},
	}
	for _, c := range cases {
		if got := s.Covers(c.area); got != c.want {
			t.Errorf("Covers(%+v) = %v, want %v", c.area, got, c.want)
		}
	}
}

func TestServiceUnconfirmedAfterSixMonths(t *testing.T) {
	s := sampleService()
	s.Confirmed = "2026-03-15"
	if s.Unconfirmed(time.Date(2026, 9, 14, 23, 59, 0, 0, time.UTC)) {
		t.Errorf("confirmed 15 March: unconfirmed on 14 September, a day before six months")
	}
	if !s.Unconfirmed(time.Date(2026, 9, 15, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("confirmed 15 March: still confirmed on 15 September, six months on")
	}
	// Six months after 31 August is the last day of February.
	s.Confirmed = "2026-08-31"
	if s.Unconfirmed(time.Date(2027, 2, 27, 12, 0, 0, 0, time.UTC)) || !s.Unconfirmed(time.Date(2027, 2, 28, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("confirmed 31 August: the mark should appear on 28 February, not before")
	}
	s.Confirmed = ""
	if !s.Unconfirmed(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("a service never confirmed is not marked")
	}
}

func TestFindServices(t *testing.T) {
	ooh := sampleService()
	pharm := sampleService()
	pharm.ID, pharm.Name, pharm.Kind = "ph-1", "Harlesden Pharmacy", ServicePharmacy
	pharm.Offers = "Stocks end-of-life medicines: midazolam, morphine"
	pharm.Hours = [7]string{"09:00-18:00", "09:00-18:00", "09:00-18:00", "09:00-18:00", "09:00-18:00", "09:00-13:00", "closed"}
	pharm.Areas = []string{"NW10"}
	ealing := sampleService()
	ealing.ID, ealing.Name, ealing.Areas = "ooh-ealing", "Ealing out-of-hours GP", []string{"Ealing", "W5"}
	all := []Service{ooh, pharm, ealing}
	ids := func(ss []Service) []string {
		var out []string
		for _, s := range ss {
			out = append(out, s.ID)
		}
		return out
	}
	home := &HomeArea{Postcode: "NW10 9QX", Borough: "Brent"}
	cases := []struct {
		name string
		f    ServiceFilter
		want []string
	}{
		{"word in what it offers", ServiceFilter{Query: "MIDAZOLAM"}, []string{"ph-1"}},
		{"every word must match", ServiceFilter{Query: "out-of-hours ealing"}, []string{"ooh-ealing"}},
		{"kind label", ServiceFilter{Query: "pharmacy"}, []string{"ph-1"}},
		{"area", ServiceFilter{Area: home}, []string{"ooh-brent", "ph-1"}},
		{"area and open at 3am", ServiceFilter{Area: home, OpenAt: at("tue", "03:00")}, []string{"ooh-brent"}},
		{"area and open Saturday noon", ServiceFilter{Area: home, OpenAt: at("sat", "12:00")}, []string{"ooh-brent", "ph-1"}},
		{"nothing", ServiceFilter{Query: "dentist"}, nil},
	}
	for _, c := range cases {
		if got := ids(FindServices(all, c.f)); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}

func TestValidateService(t *testing.T) {
	if err := ValidateService(sampleService()); err != nil {
		t.Fatalf("a good service: %v", err)
	}
	cases := []struct {
		name  string
		edit  func(s *Service)
		field string
	}{
		{"no name", func(s *Service) { s.Name = " " }, "name"},
		{"unknown kind", func(s *Service) { s.Kind = "dentist" }, "kind"},
		{"no day phone", func(s *Service) { s.PhoneDay = "" }, "phoneDay"},
		{"night phone not a number", func(s *Service) { s.PhoneNight = "ring the ward" }, "phoneNight"},
		{"hours left blank", func(s *Service) { s.Hours[2] = "" }, "wed"},
		{"hours that do not read", func(s *Service) { s.Hours[0] = "9-5" }, "mon"},
		{"a span of no length", func(s *Service) { s.Hours[0] = "08:00-08:00" }, "mon"},
		{"a minute past 24:00", func(s *Service) { s.Hours[0] = "18:00-24:30" }, "mon"},
		{"closed every day", func(s *Service) { s.Hours = weekOf(HoursClosed) }, "hours"},
		{"no area", func(s *Service) { s.Areas = nil }, "areas"},
		{"confirmed not a date", func(s *Service) { s.Confirmed = "March 2026" }, "confirmed"},
	}
	for _, c := range cases {
		s := sampleService()
		c.edit(&s)
		if got := fieldsOf(t, ValidateService(s)); !slices.Contains(strings.Split(got, ","), c.field) {
			t.Errorf("%s: fields %v, want %q among them", c.name, got, c.field)
		}
	}
}

const goodCSV = `id,name,kind,offers,mon,tue,wed,thu,fri,sat,sun,phone_day,phone_night,areas,referral,confirmed
ooh-brent,Brent out-of-hours GP,out-of-hours-gp,Home visits,18:30-08:00,18:30-08:00,18:30-08:00,18:30-08:00,18:30-08:00,24h,24h,020 7946 0101,020 7946 0102,Brent; NW10,Ring,2026-09-01
ph-1,"Harlesden Pharmacy, High St",eol-pharmacy,"Midazolam, morphine",09:00-18:00,09:00-18:00,09:00-18:00,09:00-18:00,09:00-18:00,09:00-13:00,closed,020 7946 0200,,NW10,Ring first,2026-10-01
`

func TestParseServicesCSV(t *testing.T) {
	list, err := ParseServicesCSV(strings.NewReader(goodCSV))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[1].Name != "Harlesden Pharmacy, High St" || !slices.Equal(list[0].Areas, []string{"Brent", "NW10"}) ||
		list[0].Hours[5] != Hours24 || list[1].PhoneNight != "" {
		t.Fatalf("parsed %+v", list)
	}
	// Columns in another order, phone_night left out.
	reordered := "name,id,kind,offers,sun,sat,fri,thu,wed,tue,mon,phone_day,areas,referral,confirmed\n" +
		"Team,t-1,palliative-care-team,Visits,closed,closed,09:00-17:00,09:00-17:00,09:00-17:00,09:00-17:00,09:00-17:00,020 7946 0300,Brent,Form,2026-10-01\n"
	if list, err := ParseServicesCSV(strings.NewReader(reordered)); err != nil || list[0].ID != "t-1" || list[0].Hours[6] != "closed" || list[0].Hours[0] != "09:00-17:00" {
		t.Fatalf("reordered columns: %+v, %v", list, err)
	}
}

func TestParseServicesCSVRefusesBadRows(t *testing.T) {
	lines := strings.Split(strings.TrimSpace(goodCSV), "\n")
	bad := lines[0] + "\n" + lines[1] + "\n" +
		// line 3: no day phone; line 4: hours that do not read, and line 2's ID again
		"ph-2,Pharmacy,eol-pharmacy,x,09:00-18:00,09:00-18:00,09:00-18:00,09:00-18:00,09:00-18:00,closed,closed,,,NW10,Ring,2026-10-01\n" +
		"ooh-brent,Dup,out-of-hours-gp,x,9am-5pm,24h,24h,24h,24h,24h,24h,020 7946 0101,,NW10,Ring,2026-10-01\n" +
		lines[2] + "\n"
	list, err := ParseServicesCSV(strings.NewReader(bad))
	var ce *CSVError
	if !errors.As(err, &ce) || list != nil {
		t.Fatalf("a file with bad rows: %v, %d services; want a CSVError and none", err, len(list))
	}
	type at struct {
		line  int
		field string
	}
	var got []at
	for _, r := range ce.Rows {
		got = append(got, at{r.Line, r.Field})
	}
	want := []at{{3, "phone_day"}, {4, "id"}, {4, "mon"}}
	if !slices.Equal(got, want) {
		t.Errorf("problems at %v, want %v", got, want)
	}
	// A header that misnames a column is refused before any row.
	_, err = ParseServicesCSV(strings.NewReader(strings.Replace(goodCSV, "phone_day", "phone", 1)))
	if !errors.As(err, &ce) || ce.Rows[0].Line != 1 {
		t.Errorf("misnamed column: %v", err)
	}
}

func TestServicesDocument(t *testing.T) {
	ed := editor(t, "Dr Ada Quill", GP)
	doc, id, err := ed.NewServices("North West London")
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(id)
	if err := g.Check(decoded(t, doc, nil), testTrust); err != nil || g.Type() != TypeServices {
		t.Fatalf("a directory of services made by the editor: %v (type %q)", err, g.Type())
	}
	list, err := ParseServicesCSV(strings.NewReader(goodCSV))
	if err != nil {
		t.Fatal(err)
	}
	heads := doc.Heads()
	if w, r, err := ed.LoadServices(doc, list); err != nil || w != 2 || r != 0 {
		t.Fatalf("LoadServices = %d written, %d removed, %v", w, r, err)
	}
	if err := g.Check(decoded(t, doc, heads), testTrust); err != nil {
		t.Fatalf("loading services refused by the guard: %v", err)
	}
	// Loading again with one service fewer and one changed removes and
	// rewrites only those.
	list[0].PhoneNight = "020 7946 0109"
	heads = doc.Heads()
	if w, r, err := ed.LoadServices(doc, list[:1]); err != nil || w != 1 || r != 1 {
		t.Fatalf("second load = %d written, %d removed, %v", w, r, err)
	}
	if err := g.Check(decoded(t, doc, heads), testTrust); err != nil {
		t.Fatalf("removing a service refused: %v", err)
	}
	got, err := ReadServices(doc)
	if err != nil || len(got.Services) != 1 || got.Services[0].PhoneNight != "020 7946 0109" || got.Name != "North West London" || got.ID != id {
		t.Fatalf("ReadServices = %+v, %v", got, err)
	}
	// A bad service refuses the whole load, and nothing is written.
	list[0].PhoneDay = ""
	heads = doc.Heads()
	if _, _, err := ed.LoadServices(doc, list); !errors.Is(err, ErrInvalid) || !crdt.SameHeads(heads, doc.Heads()) {
		t.Fatalf("a bad service: %v, and the document changed: %v", err, !crdt.SameHeads(heads, doc.Heads()))
	}
	// What a device's own code might write instead of the editor.
	good, _ := json.Marshal(sampleService())
	for _, c := range []struct {
		name string
		fn   func(w *crdt.Writer) error
		rule string
	}{
		{"a good service written by hand", func(w *crdt.Writer) error { return w.Set(string(good), "services", "x1") }, ""},
		{"a service that does not validate", func(w *crdt.Writer) error {
			return w.Set(strings.Replace(string(good), "020 7946 0101", "", 1), "services", "x2")
		}, RuleServiceBad},
		{"a service as a map", func(w *crdt.Writer) error { return w.Set(map[string]any{"name": "x"}, "services", "x3") }, RuleServiceBad},
		{"not JSON", func(w *crdt.Writer) error { return w.Set("ring 999", "services", "x4") }, RuleServiceBad},
		{"the owner changed", func(w *crdt.Writer) error { return w.Set("home-1", "home") }, RuleFixedField},
		{"the list replaced", func(w *crdt.Writer) error { return w.Set(map[string]any{}, "services") }, RuleFixedField},
	} {
		if got := try(t, g, doc, c.fn); got != c.rule {
			t.Errorf("%s: rule %q, want %q", c.name, got, c.rule)
		}
	}
	// A directory of services must belong to the region: one made for a
	// home's own is not Haven's to accept.
	own := crdt.New()
	oid := docid.New()
	if _, err := own.Change("", testNow, func(w *crdt.Writer) error {
		return setAll(w, map[string]any{"schema": int64(1), "type": TypeServices, "id": oid.String(), "home": "home-1",
			"name": "Mine", "services": map[string]any{}})
	}); err != nil {
		t.Fatal(err)
	}
	if got := ruleOf(NewGuard(oid).Check(decoded(t, own, nil), testTrust)); got != RuleSchema {
		t.Errorf("a services document owned by a home: rule %q, want %q", got, RuleSchema)
	}
	if _, err := ReadServices(own); !errors.Is(err, ErrServices) {
		t.Errorf("ReadServices of a home's own: %v, want ErrServices", err)
	}
}

func TestHomeArea(t *testing.T) {
	ed := editor(t, "Mo Manager", HomeManager)
	dir, _, err := ed.NewDirectory("home-1", "Larch House")
	if err != nil {
		t.Fatal(err)
	}
	if err := ed.SetHomeArea(dir, HomeArea{Postcode: "not a postcode!"}); fieldsOf(t, err) != "postcode" {
		t.Errorf("a bad postcode: %v", err)
	}
	if err := ed.SetHomeArea(dir, HomeArea{Postcode: "nw10 9qx", Borough: "Brent"}); err != nil {
		t.Fatal(err)
	}
	if a := AreaOf(dir); a.Postcode != "NW10 9QX" || a.Borough != "Brent" || a.District() != "NW10" {
		t.Errorf("AreaOf = %+v (district %q)", a, a.District())
	}
}

// FuzzServiceHours: hours as any device or file may write them never
// panic, and a day that reads is open only within its spans: never at a
// minute of a closed week, always at every minute of a 24-hour one.
func FuzzServiceHours(f *testing.F) {
	for _, h := range []string{"18:30-08:00", "24h", "closed", "09:00-12:00,14:00-16:30", "00:00-24:00", "23:59-00:00", "9-5", "24:00-01:00", ""} {
		f.Add(h)
	}
	f.Fuzz(func(t *testing.T, h string) {
		spans, ok := parseHours(h)
		for _, sp := range spans {
			if sp.start < 0 || sp.start >= 24*60 || sp.end <= sp.start || sp.end > 48*60 {
				t.Fatalf("parseHours(%q) made the span %+v", h, sp)
			}
		}
		s := sampleService()
		s.Hours = weekOf(h)
		monday := at("mon", "00:00")
		for m := 0; m < 7*24*60; m += 37 {
			open := s.OpenAt(monday.Add(time.Duration(m) * time.Minute))
			if open && (!ok || len(spans) == 0) {
				t.Fatalf("hours %q (closed or unreadable) open at minute %d of the week", h, m)
			}
			if !open && ok && strings.EqualFold(strings.TrimSpace(h), Hours24) {
				t.Fatalf("24h closed at minute %d of the week", m)
			}
		}
	})
}
