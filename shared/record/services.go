package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode"

	"haven/shared/crdt"
	"haven/shared/docid"
)

// The directory of services for the last phase of life: one document for
// the whole region, held by every device so that staff find who to call
// with no connection:
//
//	schema, type "services", id
//	home      Region: the document belongs to the region, not to one
//	          organisation (the field every Haven document's owner is read from)
//	name      the region's name, e.g. "North West London"
//	services  map serviceID → JSON of Service (one value per service, so a
//	          service is written whole and never half-changed)
//
// GP hubs and the advice line keep it; care homes read it. The relay
// enforces that by organisation (RuleReadOnly), whatever a device's own code
// does; a desktop asks Role.EditsServices before it offers the form.

// TypeServices is the directory of services' document type.
const TypeServices = "services"

// Region is the owner of region-wide documents: every organisation's
// devices may hold them. No organisation has this ID (theirs start home-,
// hub- or advice-).
const Region = "region"

// Service kinds, as stored.
const (
	ServiceHospiceLine     = "hospice-advice-line"
	ServicePalliativeTeam  = "palliative-care-team"
	ServiceRapidResponse   = "rapid-response"
	ServiceOutOfHoursGP    = "out-of-hours-gp"
	ServiceDistrictNursing = "district-nursing"
	ServicePharmacy        = "eol-pharmacy"
)

// ServiceKinds lists the kinds in the order a list groups them.
var ServiceKinds = []string{ServiceHospiceLine, ServicePalliativeTeam, ServiceRapidResponse, ServiceOutOfHoursGP,
	ServiceDistrictNursing, ServicePharmacy}

var serviceKindLabels = map[string]string{
	ServiceHospiceLine:     "24-hour hospice advice line",
	ServicePalliativeTeam:  "Community palliative care team",
	ServiceRapidResponse:   "Rapid response / intermediate care",
	ServiceOutOfHoursGP:    "Out-of-hours GP",
	ServiceDistrictNursing: "District nursing",
	ServicePharmacy:        "Pharmacy stocking end-of-life medicines",
}

// ServiceKindLabel is a kind as staff read it.
func ServiceKindLabel(kind string) string {
	if l, ok := serviceKindLabels[kind]; ok {
		return l
	}
	return kind
}

// EditsServices reports whether a role keeps the directory of services:
// the clinicians of GP hubs and the advice line. Care-home staff read it.
func (r Role) EditsServices() bool { return r == GP || r == HubNurse || r == AdviceClinician }

// Weekdays are the days Service.Hours holds, Monday first.
var Weekdays = [7]string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// Hours words. A day's hours are HoursClosed, Hours24, or one or more spans
// "HH:MM-HH:MM" separated by commas; a span whose end is not after its
// start runs past midnight into the next day ("18:30-08:00").
const (
	HoursClosed = "closed"
	Hours24     = "24h"
)

// Service is one service in the directory.
type Service struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Offers string `json:"offers"` // what it offers, in a sentence or two
	// Hours are the opening hours of each weekday, Monday first (see
	// HoursClosed, Hours24 and spans).
	Hours [7]string `json:"hours"`
	// PhoneDay is the number to ring; PhoneNight, if given, the number out
	// of hours (NightFrom to DayFrom).
	PhoneDay   string `json:"phoneDay"`
	PhoneNight string `json:"phoneNight,omitempty"`
	// Areas are the boroughs and postcode districts it covers.
	Areas     []string `json:"areas"`
	Referral  string   `json:"referral"`  // how to refer
	Confirmed string   `json:"confirmed"` // the date its details were last confirmed, YYYY-MM-DD
}

// Services is the directory as read.
type Services struct {
	ID       docid.ID
	Name     string
	Services []Service // by kind (ServiceKinds order), then name
	Problems []string
}

// span is one opening span in minutes from the start of its day; end may
// pass 24h (a span across midnight).
type span struct{ start, end int }

// parseHours reads one day's hours; ok is false when they do not read.
func parseHours(s string) (spans []span, ok bool) {
	s = strings.ToLower(strings.TrimSpace(s))
	switch s {
	case HoursClosed:
		return nil, true
	case Hours24, "24 hours", "00:00-24:00":
		return []span{{0, 24 * 60}}, true
	case "":
		return nil, false
	}
	for _, part := range strings.Split(s, ",") {
		from, to, found := strings.Cut(strings.TrimSpace(part), "-")
		a, okA := clock(from)
		b, okB := clock(to)
		if !found || !okA || !okB || a == 24*60 || a == b {
			return nil, false
		}
		if b <= a {
			b += 24 * 60 // across midnight
		}
		spans = append(spans, span{a, b})
	}
	return spans, true
}

// clock reads "HH:MM" (24:00 allowed, as an end) as minutes.
func clock(s string) (int, bool) {
	s = strings.TrimSpace(s)
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	h, m := 0, 0
	for i, c := range s {
		if i == 2 {
			continue
		}
		if c < '0' || c > '9' {
			return 0, false
		}
		if i < 2 {
			h = h*10 + int(c-'0')
		} else {
			m = m*10 + int(c-'0')
		}
	}
	if m > 59 || h > 24 || (h == 24 && m != 0) {
		return 0, false
	}
	return h*60 + m, true
}

// weekday is t's day as an index of Weekdays.
func weekday(t time.Time) int { return (int(t.Weekday()) + 6) % 7 }

// OpenAt reports whether the service is open at t, read as a wall clock in
// t's own location: a span of today that has begun and not ended, or
// yesterday's span that runs past midnight and has not ended yet. Hours
// that do not read count as closed (validation refuses them).
func (s Service) OpenAt(t time.Time) bool {
	d, m := weekday(t), t.Hour()*60+t.Minute()
	today, _ := parseHours(s.Hours[d])
	for _, sp := range today {
		if m >= sp.start && m < sp.end {
			return true
		}
	}
	yesterday, _ := parseHours(s.Hours[(d+6)%7])
	for _, sp := range yesterday {
		if m+24*60 < sp.end {
			return true
		}
	}
	return false
}

// Night hours: PhoneNight, when given, is the number from NightFrom until
// DayFrom.
const (
	DayFrom   = 8 * 60
	NightFrom = 18*60 + 30
)

// PhoneAt is the number to ring at t: the night number out of hours when
// the service gives one, otherwise the day number.
func (s Service) PhoneAt(t time.Time) string {
	m := t.Hour()*60 + t.Minute()
	if s.PhoneNight != "" && (m < DayFrom || m >= NightFrom) {
		return s.PhoneNight
	}
	return s.PhoneDay
}

// HomeArea is where a care home is: its postcode and borough, as its
// directory holds them.
type HomeArea struct {
	Postcode string
	Borough  string
}

// District is the postcode's outward code ("NW10" of "NW10 9QX"), upper
// case, or "" for no postcode.
func (a HomeArea) District() string {
	p := strings.ToUpper(strings.Join(strings.Fields(a.Postcode), ""))
	if len(p) < 5 {
		return p // a district on its own
	}
	return p[:len(p)-3]
}

// Known reports whether the area says anything a service can cover.
func (a HomeArea) Known() bool { return a.District() != "" || strings.TrimSpace(a.Borough) != "" }

// Covers reports whether the service covers a home's area: one of its
// areas is the home's borough or its postcode district (case and spacing
// aside).
func (s Service) Covers(a HomeArea) bool {
	district, borough := a.District(), areaKey(a.Borough)
	for _, x := range s.Areas {
		k := areaKey(x)
		if k != "" && (k == borough || strings.ReplaceAll(k, " ", "") == strings.ToLower(district)) {
			return true
		}
	}
	return false
}

func areaKey(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }

// UnconfirmedAfter is how long a service's details stay confirmed.
const UnconfirmedAfter = 6 // months

// Unconfirmed reports whether the service's details were last confirmed 6
// months or more before the date of at (or never): shown marked, since a
// number or hours may have changed. Six months after 31 August is the last
// day of February.
func (s Service) Unconfirmed(at time.Time) bool {
	c, err := time.Parse(DateLayout, s.Confirmed)
	if err != nil {
		return true
	}
	due := addMonths(c, UnconfirmedAfter)
	day := time.Date(at.Year(), at.Month(), at.Day(), 0, 0, 0, 0, time.UTC)
	return !day.Before(due)
}

// addMonths adds n months to a date, keeping to the last day of a shorter
// month rather than running into the next.
func addMonths(d time.Time, n int) time.Time {
	first := time.Date(d.Year(), d.Month()+time.Month(n), 1, 0, 0, 0, 0, time.UTC)
	last := first.AddDate(0, 1, -1).Day()
	return time.Date(first.Year(), first.Month(), min(d.Day(), last), 0, 0, 0, 0, time.UTC)
}

// Matches reports whether every word of query appears in the service's
// name, kind, what it offers, its areas or how to refer (case aside).
func (s Service) Matches(query string) bool {
	hay := strings.ToLower(strings.Join([]string{s.Name, ServiceKindLabel(s.Kind), s.Kind, s.Offers,
		strings.Join(s.Areas, " "), s.Referral, s.PhoneDay, s.PhoneNight}, " "))
	for _, w := range strings.Fields(strings.ToLower(query)) {
		if !strings.Contains(hay, w) {
			return false
		}
	}
	return true
}

// ServiceFilter selects services: all its conditions hold.
type ServiceFilter struct {
	Query  string    // words, as Matches
	Area   *HomeArea // covers this area, if set
	OpenAt time.Time // open at this time, if set
}

// FindServices returns the services the filter selects, in their order.
func FindServices(all []Service, f ServiceFilter) []Service {
	var out []Service
	for _, s := range all {
		if (f.Query == "" || s.Matches(f.Query)) && (f.Area == nil || s.Covers(*f.Area)) &&
			(f.OpenAt.IsZero() || s.OpenAt(f.OpenAt)) {
			out = append(out, s)
		}
	}
	return out
}

// ValidateService checks a service, every problem named by field.
func ValidateService(s Service) error {
	c := &checker{}
	c.required("name", s.Name)
	c.maxLen("name", s.Name, shortText)
	c.enum("kind", s.Kind, ServiceKinds, false)
	c.maxLen("offers", s.Offers, shortText*5)
	c.maxLen("referral", s.Referral, shortText*5)
	open := false
	for i, h := range s.Hours {
		spans, ok := parseHours(h)
		switch {
		case strings.TrimSpace(h) == "":
			c.fail(Weekdays[i], "give the hours, %s or %s", HoursClosed, Hours24)
		case !ok:
			c.fail(Weekdays[i], "write the hours as 09:00-17:00 (18:30-08:00 runs past midnight), %s or %s", HoursClosed, Hours24)
		}
		open = open || len(spans) > 0
	}
	if !open && len(c.errs) == 0 {
		c.fail("hours", "the service is closed every day")
	}
	if c.required("phoneDay", s.PhoneDay) && !phone(s.PhoneDay) {
		c.fail("phoneDay", "must be a telephone number")
	}
	if s.PhoneNight != "" && !phone(s.PhoneNight) {
		c.fail("phoneNight", "must be a telephone number")
	}
	if len(s.Areas) == 0 {
		c.fail("areas", "name the boroughs or postcode districts it covers")
	}
	for _, a := range s.Areas {
		if strings.TrimSpace(a) == "" || len(a) > 60 || strings.ContainsFunc(a, func(r rune) bool { return unicode.IsControl(r) }) {
			c.fail("areas", "each area is a borough or postcode district")
			break
		}
	}
	c.date("confirmed", s.Confirmed, false, false)
	return c.err()
}

// RelayAuthor is who the relay's administrator writes as: a home's
// directory when the home is created, the directory of services when a
// file is loaded.
var RelayAuthor = Author{UserID: "syncd", Name: "Haven relay", Role: HomeManager, DeviceID: "syncd"}

// ErrServices is wrapped when a document is not the directory of services.
var ErrServices = errors.New("not the directory of services")

// NewServices creates the region's empty directory of services. Only the
// relay's administrator creates it (no device may create a region's
// document).
func (e *Editor) NewServices(regionName string) (*crdt.Doc, docid.ID, error) {
	if strings.TrimSpace(regionName) == "" {
		return nil, docid.ID{}, errors.New("the directory of services needs the region's name")
	}
	id := docid.New()
	doc := crdt.New()
	err := e.change(doc, "create-services", []string{"services"}, func(w *crdt.Writer) error {
		return setAll(w, map[string]any{
			"schema": int64(SchemaVersion), "type": TypeServices, "id": id.String(), "home": Region,
			"name": regionName, "services": map[string]any{},
		})
	})
	return doc, id, err
}

// PutService adds a service (s.ID empty: a new ID is given) or replaces
// one whole, and returns its ID.
func (e *Editor) PutService(doc *crdt.Doc, s Service) (string, error) {
	if err := ValidateService(s); err != nil {
		return "", err
	}
	if s.ID == "" {
		s.ID = NewID()
	}
	body, _ := json.Marshal(s)
	return s.ID, e.change(doc, "put-service", []string{"services." + s.ID}, func(w *crdt.Writer) error {
		return w.Set(string(body), "services", s.ID)
	})
}

// LoadServices makes the directory hold exactly these services, in one
// change: each is validated first, and nothing is written unless all are
// good. A service whose stored value is the same is not written again.
// It reports how many were written and removed.
func (e *Editor) LoadServices(doc *crdt.Doc, list []Service) (written, removed int, err error) {
	seen := map[string]bool{}
	for i, s := range list {
		if err := ValidateService(s); err != nil {
			return 0, 0, fmt.Errorf("service %d (%s): %w", i+1, s.Name, err)
		}
		if s.ID == "" || seen[s.ID] {
			return 0, 0, fmt.Errorf("service %d (%s): each service needs its own ID", i+1, s.Name)
		}
		seen[s.ID] = true
	}
	cur, _, err := doc.Get("services")
	if err != nil {
		return 0, 0, err
	}
	held := asMap(cur)
	put := map[string]string{}
	var fields []string
	for _, s := range list {
		body, _ := json.Marshal(s)
		if asString(held[s.ID]) != string(body) {
			put[s.ID] = string(body)
			fields = append(fields, "services."+s.ID)
		}
	}
	var gone []string
	for id := range held {
		if !seen[id] {
			gone = append(gone, id)
			fields = append(fields, "services."+id)
		}
	}
	sort.Strings(fields)
	err = e.change(doc, "load-services", fields, func(w *crdt.Writer) error {
		for id, body := range put {
			if err := w.Set(body, "services", id); err != nil {
				return err
			}
		}
		for _, id := range gone {
			if err := w.Delete("services", id); err != nil {
				return err
			}
		}
		return nil
	})
	return len(put), len(gone), err
}

// ReadServices reads the directory of services; like ReadDirectory it
// never fails on content: a service that does not read or validate is
// left out and named in Problems, so one bad entry hides no other.
func ReadServices(doc *crdt.Doc) (*Services, error) {
	root, err := doc.Root()
	if err != nil {
		return nil, fmt.Errorf("read services: %w", err)
	}
	if asString(root["type"]) != TypeServices || asString(root["home"]) != Region {
		return nil, ErrServices
	}
	out := &Services{Name: asString(root["name"])}
	out.ID, _ = docid.Parse(asString(root["id"]))
	for id, v := range asMap(root["services"]) {
		var s Service
		if err := json.Unmarshal([]byte(asString(v)), &s); err != nil {
			out.Problems = append(out.Problems, "services."+id+": unreadable")
			continue
		}
		s.ID = id
		if err := ValidateService(s); err != nil {
			out.Problems = append(out.Problems, "services."+id+": "+err.Error())
			continue
		}
		out.Services = append(out.Services, s)
	}
	rank := map[string]int{}
	for i, k := range ServiceKinds {
		rank[k] = i
	}
	sort.Slice(out.Services, func(i, j int) bool {
		a, b := out.Services[i], out.Services[j]
		if rank[a.Kind] != rank[b.Kind] {
			return rank[a.Kind] < rank[b.Kind]
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})
	sort.Strings(out.Problems)
	return out, nil
}

// SetHomeArea writes a care home's postcode and borough into its
// directory, where every device holding the directory reads them (the
// "who to call" list is the services covering them).
func (e *Editor) SetHomeArea(dir *crdt.Doc, a HomeArea) error {
	if err := ValidateHomeArea(a); err != nil {
		return err
	}
	return e.change(dir, "home-area", []string{"postcode", "borough"}, func(w *crdt.Writer) error {
		if err := w.Set(strings.ToUpper(strings.TrimSpace(a.Postcode)), "postcode"); err != nil {
			return err
		}
		return w.Set(strings.TrimSpace(a.Borough), "borough")
	})
}

// ValidateHomeArea checks a home's postcode and borough (either may be
// left empty).
func ValidateHomeArea(a HomeArea) error {
	c := &checker{}
	if a.Postcode != "" && !postcodeLike(a.Postcode) {
		c.fail("postcode", "must be a UK postcode such as NW10 9QX")
	}
	c.maxLen("borough", a.Borough, 60)
	return c.err()
}

// postcodeLike accepts the shapes of a UK postcode or postcode district:
// letters then a digit, and an inward code of a digit and two letters.
func postcodeLike(s string) bool {
	p := strings.ToUpper(strings.Join(strings.Fields(s), ""))
	if len(p) < 2 || len(p) > 7 || p[0] < 'A' || p[0] > 'Z' {
		return false
	}
	for _, r := range p {
		if !(r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return strings.ContainsAny(p, "0123456789")
}

// AreaOf reads a home's area from its directory.
func AreaOf(dir *crdt.Doc) HomeArea {
	p, _, _ := dir.Get("postcode")
	b, _, _ := dir.Get("borough")
	return HomeArea{Postcode: asString(p), Borough: asString(b)}
}

// ParseArea reads an area as staff type it in a search: a postcode or
// postcode district ("NW10 9QX", "NW10"), or else a borough ("Brent").
func ParseArea(s string) HomeArea {
	s = strings.TrimSpace(s)
	if postcodeLike(s) {
		return HomeArea{Postcode: s}
	}
	return HomeArea{Borough: s}
}
