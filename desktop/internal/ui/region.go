package ui

import (
	"errors"
	"strings"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/widget"

	"haven/desktop/internal/app"
	"haven/shared/nhs"
)

// matchView is one resident found in the region, as the results show them.
type matchView struct {
	Name   string
	Detail string // date of birth, NHS number
	Where  string // home, and status when not living there
	Opened bool   // opened for a call, still on this computer
}

// NotSharedWords head a search result whose record its person keeps at
// their home; the home's name follows.
const NotSharedWords = "Record not shared beyond the home: call "

// matchFor words a region search result.
func matchFor(r app.RegionMatch) matchView {
	v := matchView{Name: r.Name, Where: r.HomeName, Opened: r.Held}
	var parts []string
	if r.DateOfBirth != "" {
		parts = append(parts, "DOB "+app.FormatDate(r.DateOfBirth))
	}
	if r.NHSNumber != "" {
		parts = append(parts, "NHS "+nhs.Number(r.NHSNumber).String())
	}
	v.Detail = strings.Join(parts, " · ")
	if r.Status != "" && r.Status != "active" {
		v.Where += " · " + words(r.Status)
	}
	return v
}

// regionSearch is the advice line's way in: a call names a resident of any
// home, found here through the relay (by NHS number, or family name and
// date of birth) and opened with the reason for the call. It is the
// right-hand view whenever no record is open, and keeps its results while
// a record is being opened, so Cancel comes back to them.
type regionSearch struct {
	u      *UI
	m      *mainScreen
	form   *fieldForm
	nhs    *widget.Entry
	family *widget.Entry
	dob    *widget.Entry
	search *widget.Button

	offline *fyne.Container // the relay cannot be reached: what still works
	results *fyne.Container
	matches []app.RegionMatch
	obj     fyne.CanvasObject
}

func newRegionSearch(u *UI, m *mainScreen) *regionSearch {
	return &regionSearch{u: u, m: m}
}

func (r *regionSearch) object() fyne.CanvasObject {
	if r.obj == nil {
		r.obj = r.build()
	}
	return r.obj
}

func (r *regionSearch) build() fyne.CanvasObject {
	u := r.u
	submit := func(string) { r.onSearch() }
	r.nhs = u.entry("e.g. 999 000 0018")
	r.family = u.entry("e.g. Marlow")
	r.dob = u.entry("e.g. 2/4/1931")
	for _, e := range []*widget.Entry{r.nhs, r.family, r.dob} {
		e.OnSubmitted = submit
	}
	r.form = newFieldForm()
	r.form.add("nhs", "NHS number", r.nhs)
	r.form.section("or")
	r.form.add("family", "Family name", r.family)
	r.form.add("dob", "Date of birth", r.dob)
	r.search = u.primary("Search the region", r.onSearch)
	r.offline = card(toneWarning, wrapped(sentence(app.ErrRegionOffline.Error()), toneWarning, true))
	r.results = container.NewVBox()
	r.refreshOnline()
	body := container.NewVBox(
		heading("Find a resident in the region"),
		wrapped("Every care home's residents are searched through the relay. Opening a record asks why: "+
			"the relay records your reason before it sends the record, and the information-governance lead reviews it.", toneNeutral, false),
		r.offline,
		r.form.object(),
		container.NewHBox(tall(r.search)),
		r.results,
	)
	return u.scroll(container.NewPadded(body))
}

// refreshOnline shows, while the relay cannot be reached, that the region
// cannot be searched and what is still here.
func (r *regionSearch) refreshOnline() {
	if r.offline == nil {
		return
	}
	if r.u.app.Status().Online {
		r.offline.Hide()
	} else {
		r.offline.Show()
	}
}

func (r *regionSearch) onSearch() {
	nhsNo, family, dob := r.nhs.Text, r.family.Text, r.dob.Text
	r.u.busy(r.search, "Searching…", func() func() {
		found, err := r.u.app.SearchRegion(nhsNo, family, dob)
		return func() { r.searched(found, err) }
	})
}

func (r *regionSearch) searched(found []app.RegionMatch, err error) {
	r.refreshOnline()
	if errors.Is(err, app.ErrRegionOffline) {
		r.form.clear()
		r.offline.Show()
		r.showResults(nil, "Not searched: the relay cannot be reached.")
		return
	}
	r.form.show(err) // nil clears what an earlier search showed
	switch {
	case err != nil:
		r.showResults(nil, "")
	case len(found) == 0:
		r.showResults(nil, "No resident in the region matches. Check the NHS number, or search by family name with the date of birth.")
	default:
		r.showResults(found, "")
	}
}

// showResults lists the matches, or says why there are none (nothing
// when none is "" too).
func (r *regionSearch) showResults(found []app.RegionMatch, none string) {
	r.matches = found
	r.results.RemoveAll()
	if none != "" {
		r.results.Add(wrapped(none, toneNeutral, true))
	}
	if len(found) == 0 {
		return
	}
	r.results.Add(subheading(plural(len(found), "resident", "residents") + " found"))
	for _, x := range found {
		v := matchFor(x)
		var open fyne.CanvasObject = r.u.button("Open for a call…", func() { r.m.open(x.ID, v.Name+" · "+v.Detail+" · "+v.Where) })
		if x.NotShared {
			open = text(NotSharedWords+x.HomeName, toneWarning, true)
		}
		name := container.NewHBox(text(v.Name, toneNeutral, true))
		if v.Opened {
			b := newBadge()
			b.set(badgeView{"OPENED", toneInfo})
			name.Add(container.NewCenter(b.box))
		}
		r.results.Add(card(toneNeutral, container.NewBorder(nil, nil, nil, container.NewCenter(open),
			container.NewVBox(name, text(v.Detail, toneNeutral, false), text(v.Where, toneNeutral, false)))))
	}
}
