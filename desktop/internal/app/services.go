package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/repo"
)

// The region's directory of services, which every computer holds for use
// with no connection (record.TypeServices). The relay lists it to every
// device, so the first download brings it; the index notes its ID when it
// arrives or changes (noteServices). Every rule — open now, which area a
// service covers, when its details are too old — is record's; this file
// only chooses the clock and the home.

// nsServices keeps the directory of services' document ID.
const (
	nsServices  = "app-services"
	keyServices = "doc"
)

// noteServices records id as the region's directory of services if it is
// one, and reports whether it is: the relay's copy arrived or changed.
func (a *App) noteServices(id docid.ID) bool {
	h, err := a.repo.Open(id)
	if err != nil {
		return false
	}
	if t, _, _ := h.Doc().Get("type"); t != record.TypeServices {
		return false
	}
	if a.servicesID() != id {
		if err := a.st.Put(context.Background(), nsServices, keyServices, []byte(id.String())); err != nil {
			a.log.Warn("noting the directory of services", "err", err)
		}
	}
	return true
}

// servicesID is the directory of services' ID, zero if none is held yet.
func (a *App) servicesID() docid.ID {
	b, err := a.st.Get(nsServices, keyServices)
	if err != nil {
		return docid.ID{}
	}
	id, _ := docid.Parse(string(b))
	return id
}

// ErrNoServices: this computer holds no directory of services yet (it
// comes with the first connection to the relay).
var ErrNoServices = errors.New("the directory of services has not reached this computer yet: it comes when the computer next connects to the relay")

// ServiceView is one service as the screens show it, at the time asked.
type ServiceView struct {
	record.Service
	KindLabel   string
	OpenNow     bool
	Unconfirmed bool     // details not confirmed for six months or more
	PhoneNow    string   // the number to ring now
	Hours       []string // the week's hours in words, days alike together
}

// ServicesQuery is what the Services screen asks: words, an area as typed
// (a borough, postcode or district; "" any), and open now only.
type ServicesQuery struct {
	Text    string
	Area    string
	OpenNow bool
}

// ServiceList is the directory as found: the region's name and the
// services the query selects.
type ServiceList struct {
	Region   string
	Total    int // services in the directory
	Services []ServiceView
	Problems int // services that could not be read (left out)
}

// readServices reads the directory of services held here.
func (a *App) readServices() (*record.Services, error) {
	id := a.servicesID()
	if id == (docid.ID{}) {
		return nil, ErrNoServices
	}
	h, err := a.repo.Open(id)
	if errors.Is(err, repo.ErrNotFound) {
		return nil, ErrNoServices
	}
	if err != nil {
		return nil, err
	}
	return record.ReadServices(h.Doc())
}

// Services finds services in the directory held on this computer.
func (a *App) Services(q ServicesQuery) (ServiceList, error) {
	s, err := a.readServices()
	if err != nil {
		return ServiceList{}, err
	}
	f := record.ServiceFilter{Query: q.Text}
	if strings.TrimSpace(q.Area) != "" {
		area := record.ParseArea(q.Area)
		f.Area = &area
	}
	now := a.opts.Now()
	if q.OpenNow {
		f.OpenAt = now
	}
	out := ServiceList{Region: s.Name, Total: len(s.Services), Problems: len(s.Problems)}
	for _, sv := range record.FindServices(s.Services, f) {
		out.Services = append(out.Services, viewService(sv, now))
	}
	return out, nil
}

func viewService(s record.Service, now time.Time) ServiceView {
	v := ServiceView{Service: s, KindLabel: record.ServiceKindLabel(s.Kind), OpenNow: s.OpenAt(now),
		Unconfirmed: s.Unconfirmed(now), PhoneNow: s.PhoneAt(now)}
	// Days in a row with the same hours are one entry: "Mon–Fri 09:00–17:00".
	for i := 0; i < len(record.Weekdays); {
		j := i
		for j+1 < len(record.Weekdays) && strings.EqualFold(strings.TrimSpace(s.Hours[j+1]), strings.TrimSpace(s.Hours[i])) {
			j++
		}
		days := dayLabels[record.Weekdays[i]]
		if j > i {
			days += "–" + dayLabels[record.Weekdays[j]]
		}
		v.Hours = append(v.Hours, fmt.Sprintf("%s %s", days, hoursLabel(s.Hours[i])))
		i = j + 1
	}
	return v
}

var dayLabels = map[string]string{"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"}

// hoursLabel words a day's hours as staff read them.
func hoursLabel(h string) string {
	switch strings.ToLower(strings.TrimSpace(h)) {
	case record.Hours24:
		return "24 hours"
	case record.HoursClosed:
		return "closed"
	}
	return strings.ReplaceAll(strings.ReplaceAll(h, "-", "–"), ",", ", ")
}

// WhoToCall is the front sheet's panel: the services covering a
// resident's home that are open now, with the number to ring.
type WhoToCall struct {
	Area     record.HomeArea // the home's, as its directory holds it
	Services []ServiceView   // open now, covering the area
	// Missing says why the list cannot be made (no directory of services
	// yet, or the home's area not recorded), in words; "" when it can.
	Missing string
}

// WhoToCall lists the services open now that cover the resident's home.
func (a *App) WhoToCall(resident docid.ID) WhoToCall {
	area, held := a.homeAreaOf(resident)
	w := WhoToCall{Area: area}
	switch {
	case !held:
		w.Missing = "This computer does not hold the home's details, so it cannot tell which services cover the home. The Services screen lists every service."
		return w
	case !area.Known():
		w.Missing = "The home's postcode and borough are not recorded, so Haven cannot tell which services cover it: ask the relay's administrator. The Services screen lists every service."
		return w
	}
	s, err := a.readServices()
	if err != nil {
		w.Missing = "The directory of services has not reached this computer yet."
		return w
	}
	now := a.opts.Now()
	for _, sv := range record.FindServices(s.Services, record.ServiceFilter{Area: &area, OpenAt: now}) {
		w.Services = append(w.Services, viewService(sv, now))
	}
	return w
}

// homeAreaOf is the area of the home a resident lives in, from its
// directory; held is false when this computer lacks the directory (an
// advice line's holds records, not homes).
func (a *App) homeAreaOf(resident docid.ID) (area record.HomeArea, held bool) {
	a.idx.mu.RLock()
	var dir docid.ID
	if r := a.idx.rows[resident]; r != nil {
		dir = a.idx.dirs[r.Home]
	}
	a.idx.mu.RUnlock()
	if dir == (docid.ID{}) {
		return record.HomeArea{}, false
	}
	if _, err := a.repo.Open(dir); err != nil {
		return record.HomeArea{}, false
	}
	return a.areaOfDirectory(dir), true
}

// HomeArea is this computer's home's area (a care home's), or zero.
func (a *App) HomeArea() record.HomeArea {
	id, _ := docid.Parse(a.dev.Directory)
	return a.areaOfDirectory(id)
}

func (a *App) areaOfDirectory(dir docid.ID) record.HomeArea {
	if dir == (docid.ID{}) {
		return record.HomeArea{}
	}
	h, err := a.repo.Open(dir)
	if err != nil {
		return record.HomeArea{}
	}
	return record.AreaOf(h.Doc())
}

// CanEditServices reports whether the person signed in keeps the
// directory of services (record's rule; the relay refuses a care home's
// computer whatever it sends).
func (a *App) CanEditServices() bool {
	u := a.CurrentUser()
	return u != nil && u.Acts().EditsServices() && !a.careHome()
}

// SaveService adds a service to the directory or replaces one.
func (a *App) SaveService(s record.Service) (Saved, error) {
	if !a.CanEditServices() {
		return Saved{}, &Problem{Message: "Only GP-hub and advice-line clinicians change the directory of services.", Err: record.ErrNotPermitted}
	}
	id := a.servicesID()
	if id == (docid.ID{}) {
		return Saved{}, &Problem{Message: ErrNoServices.Error(), Err: ErrNoServices}
	}
	return a.change(id, id, "put-service", func(ed *record.Editor, doc *crdt.Doc) error {
		_, err := ed.PutService(doc, s)
		return err
	})
}
