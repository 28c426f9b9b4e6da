package ui

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/dialog"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/record"
)

// servicesScreen is the region's directory of services for the last phase
// of life, searchable with no connection: words, an area (the home's by
// default) and open now. Each service shows whether it is open now, the
// number to ring now, its hours, what it offers, how to refer and when its
// details were confirmed; details not confirmed for six months are marked.
type servicesScreen struct {
	u       *UI
	m       *mainScreen
	search  *widget.Entry
	area    *widget.Entry
	openNow *widget.Check
	head    *widget.Label
	body    *fyne.Container
	// shown is what the cards show, for the query asked: load rebuilds
	// them only when either differs (it runs on every list event).
	shown   *app.ServiceList
	shownOf app.ServicesQuery
}

func newServicesScreen(u *UI, m *mainScreen) *servicesScreen { return &servicesScreen{u: u, m: m} }

func (s *servicesScreen) build() fyne.CanvasObject {
	u := s.u
	s.search = u.entry("Search: a name, a medicine, what it offers")
	s.area = u.entry("Area: borough or postcode, e.g. Brent or NW10")
	if a := u.app.HomeArea(); a.Known() {
		s.area.SetText(areaWords(a))
	}
	s.search.OnChanged = func(string) { u.touch(); s.load() }
	s.area.OnChanged = func(string) { u.touch(); s.load() }
	s.openNow = u.check("Open now only", func(bool) { u.touch(); s.load() })
	s.head = wrapped("", toneNeutral, false)
	s.body = container.NewVBox()
	s.load()
	filters := container.NewBorder(nil, nil, nil, s.openNow, container.NewGridWithColumns(2, s.search, s.area))
	top := container.NewVBox(heading("Services for the last phase of life"), filters, s.head)
	return container.NewBorder(container.NewPadded(top), nil, nil, nil, u.scroll(container.NewPadded(s.body)))
}

// areaWords is an area as the filter takes it: the borough if known,
// else the postcode district.
func areaWords(a record.HomeArea) string {
	if strings.TrimSpace(a.Borough) != "" {
		return a.Borough
	}
	return a.District()
}

// load asks the directory for what the filters select.
func (s *servicesScreen) load() {
	if s.body == nil || s.openNow == nil {
		return // still building
	}
	q := app.ServicesQuery{Text: s.search.Text, Area: s.area.Text, OpenNow: s.openNow.Checked}
	list, err := s.u.app.Services(q)
	if err == nil && s.shown != nil && q == s.shownOf && reflect.DeepEqual(list, *s.shown) {
		return
	}
	s.shown, s.shownOf = &list, q
	s.body.RemoveAll()
	if err != nil {
		s.shown = nil
		setLabel(s.head, err.Error(), toneWarning)
		s.body.Refresh()
		return
	}
	now := s.u.app.Now()
	head := fmt.Sprintf("%s of the %d in the %s directory, as of %s.", plural(len(list.Services), "service", "services"),
		list.Total, list.Region, now.Format("Mon 2 Jan 15:04"))
	if list.Problems > 0 {
		head += fmt.Sprintf(" %s could not be read and are left out: tell the advice line.", plural(list.Problems, "service", "services"))
	}
	setLabel(s.head, head, toneNeutral)
	if len(list.Services) == 0 {
		s.body.Add(wrapped("No service matches. Clear the search or the area, or untick Open now.", toneNeutral, false))
	}
	for _, v := range list.Services {
		s.body.Add(s.card(v))
	}
	s.body.Refresh()
}

// card is one service in full.
func (s *servicesScreen) card(v app.ServiceView) fyne.CanvasObject {
	state, t := "Closed now", toneNeutral
	if v.OpenNow {
		state, t = "OPEN NOW", toneSuccess
	}
	title := container.NewBorder(nil, nil, nil, text(state, t, true), text(v.Name+" · "+v.KindLabel, toneNeutral, true))
	ring := "Ring " + v.PhoneNow
	if v.PhoneNight != "" {
		ring += fmt.Sprintf("   (day %s · night %s–%s %s)", v.PhoneDay, clockWords(record.NightFrom), clockWords(record.DayFrom), v.PhoneNight)
	}
	objs := []fyne.CanvasObject{title}
	if v.Unconfirmed {
		objs = append(objs, confirmedLine(v)) // first, before the number it casts doubt on
	}
	objs = append(objs, text(ring, toneNeutral, true),
		wrapped(v.Offers, toneNeutral, false),
		wrapped("Hours: "+strings.Join(v.Hours, " · ")+"   ·   Covers: "+strings.Join(v.Areas, ", "), toneNeutral, false),
		wrapped("How to refer: "+v.Referral, toneNeutral, false))
	if !v.Unconfirmed {
		objs = append(objs, confirmedLine(v))
	}
	if s.u.app.CanEditServices() {
		sv := v.Service
		objs = append(objs, container.NewHBox(s.u.button("Edit…", func() { s.edit(sv) })))
	}
	ct := toneNeutral
	if v.Unconfirmed {
		ct = toneWarning
	}
	return card(ct, objs...)
}

// confirmedLine says when the service's details were confirmed, marked
// when that was six months ago or more.
func confirmedLine(v app.ServiceView) fyne.CanvasObject {
	on := v.Confirmed
	if d, err := time.Parse(record.DateLayout, on); err == nil {
		on = d.Format("2 Jan 2006")
	}
	if v.Unconfirmed {
		return wrapped("NOT CONFIRMED FOR 6 MONTHS: details last confirmed "+on+". Check the number and hours before relying on them.", toneWarning, true)
	}
	return caption("Details confirmed " + on)
}

func clockWords(minutes int) string { return fmt.Sprintf("%02d:%02d", minutes/60, minutes%60) }

// edit opens the form for one service, for those who keep the directory.
func (s *servicesScreen) edit(sv record.Service) {
	u := s.u
	f := newFieldForm()
	name, offers, refer := u.entry(""), u.multiline("", 2), u.multiline("", 2)
	day, night, areas, confirmed := u.entry(""), u.entry(""), u.entry("Borough or postcode district; separate with ;"), u.entry("YYYY-MM-DD")
	name.SetText(sv.Name)
	offers.SetText(sv.Offers)
	refer.SetText(sv.Referral)
	day.SetText(sv.PhoneDay)
	night.SetText(sv.PhoneNight)
	areas.SetText(strings.Join(sv.Areas, "; "))
	confirmed.SetText(u.app.Today())
	kind := u.choice(record.ServiceKinds, record.ServiceKindLabel, nil)
	kind.SetValue(sv.Kind)
	f.add("name", "Name", name)
	f.add("kind", "Kind", kind)
	f.add("offers", "What it offers", offers)
	var hours [7]*widget.Entry
	for i, d := range record.Weekdays {
		hours[i] = u.entry("09:00-17:00, 18:30-08:00, 24h or closed")
		hours[i].SetText(sv.Hours[i])
		f.add(d, dayName(d), hours[i])
	}
	f.add("phoneDay", "Telephone", day)
	f.add("phoneNight", "Night telephone", night)
	f.add("areas", "Areas covered", areas)
	f.add("referral", "How to refer", refer)
	f.add("confirmed", "Details confirmed on", confirmed)
	var d dialog.Dialog
	save := u.primary("Save", func() {
		next := sv
		next.Name, next.Kind, next.Offers, next.Referral = name.Text, kind.Value(), offers.Text, refer.Text
		next.PhoneDay, next.PhoneNight, next.Confirmed = day.Text, night.Text, confirmed.Text
		next.Areas = nil
		for _, a := range strings.Split(areas.Text, ";") {
			if a = strings.TrimSpace(a); a != "" {
				next.Areas = append(next.Areas, a)
			}
		}
		for i := range hours {
			next.Hours[i] = hours[i].Text
		}
		saved, err := u.app.SaveService(next)
		if err != nil {
			f.show(err)
			return
		}
		d.Hide()
		s.m.say(saved.Message, toneSuccess)
		s.load()
	})
	buttons := container.NewHBox(save, u.button("Cancel", func() { d.Hide() }))
	d = u.showDialog("Edit service: "+sv.Name, container.NewBorder(nil, buttons, nil, nil, u.scroll(f.object())), fyne.NewSize(720, 600))
}

func dayName(d string) string {
	return map[string]string{"mon": "Monday", "tue": "Tuesday", "wed": "Wednesday", "thu": "Thursday", "fri": "Friday",
		"sat": "Saturday", "sun": "Sunday"}[d]
}

// whoToCall is the front sheet's compact panel: the services covering the
// resident's home that are open now, each with the number to ring now.
func whoToCall(w app.WhoToCall) fyne.CanvasObject {
	title := "WHO TO CALL NOW"
	if w.Area.Known() {
		title += " · " + strings.Trim(w.Area.District()+", "+w.Area.Borough, " ,")
	}
	objs := []fyne.CanvasObject{blockTitle(title)}
	switch {
	case w.Missing != "":
		objs = append(objs, wrapped(w.Missing, toneWarning, false))
	case len(w.Services) == 0:
		objs = append(objs, wrapped("No service in the directory that covers this home is open now. The Services screen lists them all.", toneWarning, false))
	}
	for _, v := range w.Services {
		line, t := v.PhoneNow+" · "+v.Name, toneNeutral
		if v.Unconfirmed {
			line, t = line+" (NOT CONFIRMED FOR 6 MONTHS: check the number)", toneWarning
		}
		objs = append(objs, wrapped(line, t, false))
	}
	return card(toneNeutral, objs...)
}
