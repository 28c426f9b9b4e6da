package app

// What the Fyne screens need beyond the actions in actions.go: forms as
// staff type them (text in, typed record out, with field problems in plain
// words), permissions for showing or hiding buttons, dates in staff's
// formats, and demo conflicts for screenshots and UI tests. Everything
// here is plain Go so that the UI stays a thin layer of widgets.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"haven/assets/demo"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/news2"
	"haven/shared/record"
)

// Permissions says what the signed-in user may do, so that a screen offers
// only what will be accepted. It mirrors the record package's rules, which
// still decide (a refused change comes back as a Problem).
type Permissions struct {
	EditRecord   bool // identity, contacts, alerts, care plan, ordinary wishes; discharge residents
	AddResident  bool // admit a resident (not on the advice line, which makes no records)
	EditClinical bool // clinical ReSPECT sections and ReSPECT reviews (registered clinicians)
	AddNote      bool
	AdviceCall   bool // record an advice call (clinicians)
	ManageStaff  bool // add, reset and remove staff accounts on this computer
	// Transfer: move a resident to another care home (record.CanDecide for
	// KindHome), from a care home's computer.
	Transfer bool
}

// Permissions returns what the signed-in user may do; nothing while locked.
func (a *App) Permissions() Permissions {
	u := a.CurrentUser()
	if u == nil {
		return Permissions{}
	}
	r := u.Acts()
	return Permissions{
		EditRecord:   r != record.CareWorker && r != record.IGLead && r != "",
		AddResident:  r != record.CareWorker && r != record.IGLead && r != "" && !a.AdviceLine(),
		EditClinical: r.Clinician(),
		AddNote:      r != record.IGLead,
		AdviceCall:   r.Clinician(),
		ManageStaff:  r.ManagesStaff(a.careHome()),
		Transfer:     a.careHome() && record.CanDecide(r, record.KindHome),
	}
}

// NormaliseDate reads a date as staff type it (2/4/1931, 02/04/1931,
// 2.4.1931, 1931-04-02, 2 Apr 1931) and returns it as stored (YYYY-MM-DD).
// Text it cannot read comes back trimmed, for validation to name.
func NormaliseDate(s string) string {
	s = strings.TrimSpace(s)
	if d := parseDate(strings.ToLower(s)); d != "" {
		return d
	}
	return s
}

// NormaliseDateTime reads a date and time as staff type it ("2026-11-22
// 03:10", "22/11/2026 03:10", or a date alone, taken as midnight) in local
// time and returns it as stored (RFC 3339). Text it cannot read comes back
// trimmed, for validation to name.
func NormaliseDateTime(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return ""
	}
	if _, err := time.Parse(time.RFC3339, s); err == nil {
		return s
	}
	if i := strings.LastIndex(s, " "); i > 0 {
		if t, err := time.Parse("15:04", s[i+1:]); err == nil {
			if d := parseDate(strings.ToLower(strings.TrimSpace(s[:i]))); d != "" {
				day, _ := time.ParseInLocation(record.DateLayout, d, time.Local)
				return day.Add(time.Duration(t.Hour())*time.Hour + time.Duration(t.Minute())*time.Minute).Format(time.RFC3339)
			}
		}
	}
	if d := parseDate(strings.ToLower(s)); d != "" {
		day, _ := time.ParseInLocation(record.DateLayout, d, time.Local)
		return day.Format(time.RFC3339)
	}
	return s
}

// FormatDate shows a stored date as staff read it ("2 Apr 1931").
func FormatDate(d string) string { return formatDate(d) }

// FormatDateTime shows a stored timestamp as staff read it ("22 Nov 2026 03:10").
func FormatDateTime(ts string) string {
	if ts == "" {
		return ""
	}
	return when(ts)
}

// DateChoice is a ready-made date for a form (next review).
type DateChoice struct {
	Label string // "In 4 weeks (20 Dec 2026)"
	Date  string // YYYY-MM-DD
}

// ReviewDateChoices are the usual next-review dates, counted from today.
func (a *App) ReviewDateChoices() []DateChoice {
	now := a.opts.Now()
	var out []DateChoice
	for _, c := range []struct {
		label         string
		months, weeks int
	}{{"In 1 week", 0, 1}, {"In 2 weeks", 0, 2}, {"In 4 weeks", 0, 4}, {"In 3 months", 3, 0}} {
		d := now.AddDate(0, c.months, 7*c.weeks)
		out = append(out, DateChoice{Label: c.label + " (" + d.Format("2 Jan 2006") + ")", Date: d.Format(record.DateLayout)})
	}
	return out
}

// Now is the application's clock: the computer's, or a test's.
func (a *App) Now() time.Time { return a.opts.Now() }

// Today is the device's date as stored (YYYY-MM-DD), for forms' defaults.
func (a *App) Today() string { return a.opts.Now().Format(record.DateLayout) }

// Admission is the add-resident form as typed.
type Admission struct {
	GivenName, FamilyName, PreferredName string
	NHSNumber                            string // with or without spaces
	DateOfBirth                          string // as staff type dates
	Sex, Room, GPPractice                string
}

// Admit adds a resident from the add-resident form: the NHS number is
// taken with or without spaces, the date of birth in staff's formats.
// Problem.Fields uses the record's field names (nhsNumber, dateOfBirth…).
func (a *App) Admit(home string, f Admission) (docid.ID, Saved, error) {
	return a.AddResident(home, f.apply(record.Identity{}))
}

// apply writes the form's fields, as staff typed them, over ident.
func (f Admission) apply(ident record.Identity) record.Identity {
	digits := strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, f.NHSNumber)
	ident.GivenName, ident.FamilyName = strings.TrimSpace(f.GivenName), strings.TrimSpace(f.FamilyName)
	ident.PreferredName, ident.NHSNumber, ident.DateOfBirth = strings.TrimSpace(f.PreferredName), digits, NormaliseDate(f.DateOfBirth)
	ident.Sex, ident.Room, ident.GPPractice = f.Sex, strings.TrimSpace(f.Room), strings.ToUpper(strings.TrimSpace(f.GPPractice))
	return ident
}

// Correction is the correct-details form: what admission asked, and
// consent to hold and share the record.
type Correction struct {
	Admission
	ConsentBasis     string // one of record.ConsentBases
	ConsentDate      string // as staff type dates
	ConsentWithdrawn bool
}

// CorrectionOf is the form filled with what the record says now.
func (a *App) CorrectionOf(id docid.ID) (Correction, error) {
	ident, err := a.Identity(id)
	if err != nil {
		return Correction{}, err
	}
	return Correction{Admission: Admission{GivenName: ident.GivenName, FamilyName: ident.FamilyName, PreferredName: ident.PreferredName,
		NHSNumber: ident.NHSNumber, DateOfBirth: ident.DateOfBirth, Sex: ident.Sex, Room: ident.Room, GPPractice: ident.GPPractice},
		ConsentBasis: ident.ConsentBasis, ConsentDate: ident.ConsentDate, ConsentWithdrawn: ident.ConsentWithdrawn}, nil
}

// CorrectIdentity saves corrected personal details and consent over what
// the record holds (fields the form does not show are kept): the NHS
// number checked as at admission, and not held by another resident of
// the home.
func (a *App) CorrectIdentity(id docid.ID, f Correction) (Saved, error) {
	ident, err := a.Identity(id)
	if err != nil {
		return Saved{}, err
	}
	ident = f.Admission.apply(ident)
	ident.ConsentBasis, ident.ConsentDate, ident.ConsentWithdrawn = f.ConsentBasis, NormaliseDate(f.ConsentDate), f.ConsentWithdrawn
	return a.UpdateIdentity(id, ident)
}

// CarePlanForm is one care-plan domain as the edit form shows it: text.
type CarePlanForm struct {
	Domain                                  record.Domain
	Need, Level, Goal, Support, PleaseDo    string
	PleaseDont, ScoreTool, Score, ScoreDate string
	AgreedWith, Reviewer, ReviewDue         string
}

// CarePlanFormFor fills the edit form from a domain's entry.
func CarePlanFormFor(e record.CarePlanEntry) CarePlanForm {
	score := ""
	if e.ScoreTool != "" || e.Score != 0 {
		score = strconv.FormatInt(e.Score, 10)
	}
	return CarePlanForm{Domain: e.Domain, Need: e.Need, Level: e.Level, Goal: e.Goal, Support: e.Support, PleaseDo: e.PleaseDo,
		PleaseDont: e.PleaseDont, ScoreTool: e.ScoreTool, Score: score, ScoreDate: e.ScoreDate, AgreedWith: e.AgreedWith,
		Reviewer: e.Reviewer, ReviewDue: e.ReviewDue}
}

// SaveCarePlan saves the edit form over the domain's current entry, so the
// fields the form does not show (last reviewed, updated by) are kept.
func (a *App) SaveCarePlan(id docid.ID, f CarePlanForm) (Saved, error) {
	rec, _, err := a.record(id)
	if err != nil {
		return Saved{}, err
	}
	e := rec.CarePlanFor(f.Domain)
	e.Domain = f.Domain
	var score int64
	if s := strings.TrimSpace(f.Score); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return Saved{}, &Problem{Message: "Not saved: please correct the highlighted fields.", Fields: map[string]string{"score": "must be a whole number"}}
		}
		score = n
	}
	e.Need, e.Level, e.Goal, e.Support, e.PleaseDo, e.PleaseDont = f.Need, f.Level, f.Goal, f.Support, f.PleaseDo, f.PleaseDont
	e.ScoreTool, e.Score, e.ScoreDate = f.ScoreTool, score, NormaliseDate(f.ScoreDate)
	e.AgreedWith, e.Reviewer, e.ReviewDue = f.AgreedWith, f.Reviewer, NormaliseDate(f.ReviewDue)
	return a.UpdateCarePlan(id, e)
}

// ObservationsForm is a set of observations as typed in the advice-call
// form; a blank field was not taken.
type ObservationsForm struct {
	RespRate, SpO2, Systolic, Pulse, Temperature string
	Consciousness                                string // ACVPU value
	Scale2, OnOxygen                             bool
}

// parse reads the typed observations; nil when none were typed. Fields
// names each value that is not a number (keys as the record's: obs.respRate…).
func (f ObservationsForm) parse() (*news2.Observations, map[string]string) {
	o := &news2.Observations{Consciousness: f.Consciousness, Scale2: f.Scale2, OnOxygen: f.OnOxygen}
	bad := map[string]string{}
	typed := f.Consciousness != ""
	for _, v := range []struct {
		field, text string
		into        *int
	}{{"obs.respRate", f.RespRate, &o.RespRate}, {"obs.spo2", f.SpO2, &o.SpO2}, {"obs.systolic", f.Systolic, &o.Systolic}, {"obs.pulse", f.Pulse, &o.Pulse}} {
		s := strings.TrimSpace(v.text)
		if s == "" {
			continue
		}
		typed = true
		n, err := strconv.Atoi(s)
		if err != nil {
			bad[v.field] = "type a whole number"
			continue
		}
		*v.into = n
	}
	if s := strings.TrimSpace(strings.Replace(f.Temperature, ",", ".", 1)); s != "" {
		typed = true
		t, err := strconv.ParseFloat(s, 64)
		if err != nil {
			bad["obs.temp"] = "type a temperature such as 37.2"
		} else {
			o.Temperature = t
		}
	}
	if !typed {
		return nil, bad
	}
	return o, bad
}

// obsLabels name the observations in the words of the form.
var obsLabels = map[string]string{"obs.respRate": "respiration rate", "obs.spo2": "SpO2", "obs.systolic": "systolic blood pressure",
	"obs.pulse": "pulse", "obs.temp": "temperature"}

// ScoreTyped is the live NEWS2 view for observations as they are typed.
func (a *App) ScoreTyped(id docid.ID, f ObservationsForm) NEWS2View {
	o, bad := f.parse()
	if o == nil {
		o = &news2.Observations{}
	}
	v := a.ScoreNEWS2(id, *o)
	if len(bad) > 0 {
		var names []string
		for _, k := range []string{"obs.respRate", "obs.spo2", "obs.systolic", "obs.pulse", "obs.temp"} {
			if bad[k] != "" {
				names = append(names, obsLabels[k])
			}
		}
		v.Complete, v.Missing = false, "Not a number: "+strings.Join(names, ", ")
	} else if !v.Complete {
		v.Missing = missingWords(*o)
	}
	return v
}

// missingWords lists the observations still to take, in plain words.
func missingWords(o news2.Observations) string {
	m := o.Missing()
	if len(m) == 0 {
		return ""
	}
	return "NEWS2 needs all seven observations; still to take: " + strings.Join(m, ", ")
}

// CallScore is an advice call's NEWS2, scored again from the observations
// it stored: a score is only ever computed, never taken from the record,
// so a partial set shows as no score with what was not taken, whatever a
// device wrote beside it.
func CallScore(c *record.AdviceCall) NEWS2View {
	if c == nil || c.Observations == nil {
		return NEWS2View{Missing: "No observations taken"}
	}
	s := c.Observations
	o := news2.Observations{RespRate: int(s.RespRate), SpO2: int(s.SpO2), Scale2: s.SpO2Scale2, OnOxygen: s.OnOxygen,
		Systolic: int(s.Systolic), Pulse: int(s.Pulse), Consciousness: s.Consciousness, Temperature: s.Temperature}
	r, err := news2.Score(o)
	if err != nil {
		if m := o.Missing(); len(m) > 0 {
			return NEWS2View{Missing: "NEWS2 not scored (it needs all seven observations; not taken: " + strings.Join(m, ", ") + ")"}
		}
		return NEWS2View{Missing: "NEWS2 not scored (an observation is not one the chart knows)"}
	}
	return NEWS2View{Complete: true, Total: r.Total, Band: r.Band, Response: r.Band.Response(), Points: r.Points}
}

// AdviceCallForm is the advice-call form as typed.
type AdviceCallForm struct {
	Method, Caller, CallerRelation, Concern string
	SoftSigns                               []string
	Observations                            ObservationsForm
	Advice, Outcome, Actions, FollowUp      string
	Text                                    string
}

// RecordAdviceCall saves the advice-call form. Observations are optional;
// when typed they are stored with the NEWS2 score computed here.
func (a *App) RecordAdviceCall(id docid.ID, f AdviceCallForm) (Saved, error) {
	o, bad := f.Observations.parse()
	if len(bad) > 0 {
		return Saved{}, &Problem{Message: "Not saved: please correct the highlighted fields.", Fields: bad}
	}
	return a.AddAdviceCall(id, AdviceCall{Method: f.Method, Caller: strings.TrimSpace(f.Caller), CallerRelation: f.CallerRelation,
		Concern: f.Concern, SoftSigns: f.SoftSigns, Observations: o, Advice: f.Advice, Outcome: f.Outcome, Actions: f.Actions,
		FollowUp: f.FollowUp, Text: f.Text})
}

// CheckEnrolment checks the first-run form before anything is sent to the
// relay. It returns a *Problem naming each field to correct (relayURL,
// code, name, role, regNo, pin, pinAgain), or nil.
func CheckEnrolment(req EnrollRequest, pinAgain string) error {
	f := map[string]string{}
	u := strings.TrimSpace(req.RelayURL)
	switch {
	case u == "":
		f["relayURL"] = "type the relay address your administrator gave you"
	case !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://"):
		f["relayURL"] = "the address starts with https://"
	}
	if strings.TrimSpace(req.Code) == "" {
		f["code"] = "type the one-time code from your administrator"
	}
	if !req.Demo || req.Name != "" {
		if strings.TrimSpace(req.Name) == "" {
			f["name"] = "type your full name as colleagues know it"
		}
		if req.Role == "" {
			f["role"] = "choose your role"
		}
		if req.Role.Clinician() && strings.TrimSpace(req.RegNo) == "" {
			f["regNo"] = "registered clinicians give their professional registration number (GMC, NMC or HCPC)"
		}
		if err := CheckPIN(req.PIN); err != nil {
			f["pin"] = "at least 6 digits, not all the same and not in sequence (not 123456)"
		} else if req.PIN != pinAgain {
			f["pinAgain"] = "the two PINs are different: type the same PIN twice"
		}
	}
	if len(f) == 0 {
		return nil
	}
	return &Problem{Message: "Not set up yet: please correct the fields marked in red.", Fields: f}
}

// Demo conflicts. A conflict needs two computers that were offline at the
// same time; these helpers make one on a demo computer so that screenshots,
// demonstrations and UI tests can show what staff see. They refuse to run
// on a live computer.

// demoConflictAuthors are the two clinicians on two other computers.
var demoConflictAuthors = []struct {
	author record.Author
	reason string
	ago    time.Duration
}{
	{record.Author{UserID: "demo-hub-gp", Name: "Dr Priya Shah", Role: record.GP, RegNo: "GMC 7000002", DeviceID: "demo-hub-laptop"},
		"Discussed with the resident by video; recorded on the hub laptop while it was offline.", 2 * time.Hour},
	{record.Author{UserID: "demo-ooh-gp", Name: "Dr Tom Reyes", Role: record.GP, RegNo: "GMC 7000003", DeviceID: "demo-ooh-laptop"},
		"Discussed with the attorney by phone; recorded by the out-of-hours GP while offline.", time.Hour},
}

// DemoConflict makes a conflict on a demo computer: two clinicians on two
// other, disconnected computers each record a decision of kind k (first,
// then second) that supersedes what this copy shows, and both changes
// arrive here as a sync would bring them. For demonstrations and tests only.
func (a *App) DemoConflict(id docid.ID, k record.Kind, first, second any) error {
	if !a.Device().Demo {
		return errors.New("conflicts are made up only on a demo computer")
	}
	if a.CurrentUser() == nil {
		return ErrLockedScreen
	}
	orgKey, err := a.demoOrgKey()
	if err != nil {
		return err
	}
	certifier := demo.NewCertifier(orgKey, a.Device().Org)
	h, err := a.repo.Open(id)
	if err != nil {
		return err
	}
	now := a.opts.Now()
	var forks []*crdt.Doc
	for i, v := range []any{first, second} {
		side := demoConflictAuthors[i]
		at := now.Add(-side.ago)
		ed := certifier.Editor(side.author)
		ed.Rules.Now = func() time.Time { return at }
		f, err := h.Doc().Fork()
		if err != nil {
			return err
		}
		if _, err := ed.Decide(f, k, "", v, side.reason); err != nil {
			return fmt.Errorf("demo conflict: %w", err)
		}
		forks = append(forks, f)
	}
	if err := h.Change(context.Background(), func(doc *crdt.Doc) error {
		for _, f := range forks {
			if err := doc.Merge(f); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	if a.client != nil {
		a.client.Changed(id)
	}
	if a.idx.refresh(id) {
		a.emit(Event{Kind: EventList})
	}
	a.emit(Event{Kind: EventResident, Doc: id})
	return nil
}

// AddDemoConflicts gives n residents of a freshly seeded demo folder (see
// SeedDemo) a CPR conflict, starting with the first in list order, so a
// demonstration opens on what a conflict looks like.
func AddDemoConflicts(dir string, n int, now time.Time) error {
	return demoSession(dir, now, func(a *App, rows []Row) error {
		for i := 0; i < n && i < len(rows); i++ {
			if err := a.DemoConflict(rows[i*len(rows)/n].ID, record.KindCPR, record.CPRRecommended, record.CPRNotRecommended); err != nil {
				return err
			}
		}
		return nil
	})
}

// AddDemoTamper plants, in n residents of a freshly seeded demo folder
// (starting with the first in list order), a CPR entry as an altered copy
// of the folder could: the GP's latest entry copied under a new ID with its
// value flipped. For demonstrations and screenshots of the tamper alert:
// the desktop shows it as an unverified entry, never as the decision.
func AddDemoTamper(dir string, n int, now time.Time) error {
	if n <= 0 {
		return nil
	}
	return demoSession(dir, now, func(a *App, rows []Row) error {
		for i := 0; i < n && i < len(rows); i++ {
			id := rows[i].ID
			rec, h, err := a.record(id)
			if err != nil {
				return err
			}
			cur, ok := rec.Decision(record.KindCPR, "").Settled()
			if !ok {
				continue
			}
			forged := cur
			forged.ID, forged.Supersedes = record.NewID(), []string{cur.ID}
			forged.Value = `"` + record.CPRRecommended + `"`
			if cur.Text() == record.CPRRecommended {
				forged.Value = `"` + record.CPRNotRecommended + `"`
			}
			body, _ := json.Marshal(forged)
			if err := h.Change(context.Background(), func(doc *crdt.Doc) error {
				_, err := doc.Change(`{"v":1,"op":"decide"}`, now, func(w *crdt.Writer) error {
					return w.Set(string(body), "decisions", string(record.KindCPR), forged.ID)
				})
				return err
			}); err != nil {
				return err
			}
			a.idx.refresh(id)
		}
		return nil
	})
}

// demoSession opens a demo folder offline as the demo GP, waits for the
// resident list, and runs fn on the rows in list order.
func demoSession(dir string, now time.Time, fn func(a *App, rows []Row) error) error {
	a, err := Open(dir, Options{NoSync: true, Now: func() time.Time { return now }})
	if err != nil {
		return err
	}
	defer a.Close()
	if !a.Device().Demo {
		return errors.New("only on a demo computer")
	}
	listed := make(chan struct{}, 1)
	a.Subscribe(func(e Event) {
		if e.Kind == EventList {
			select {
			case listed <- struct{}{}:
			default:
			}
		}
	})
	var gp DemoAccount
	for _, d := range DemoAccounts {
		if d.Role == record.GP {
			gp = d
			break
		}
	}
	var staff string
	for _, s := range a.StaffList() {
		if s.Name == gp.Name {
			staff = s.ID
		}
	}
	if _, err := a.Unlock(staff, gp.PIN); err != nil {
		return err
	}
	defer a.Lock()
	// The first unlock builds the list in the background; wait for it so
	// that nothing is still writing when Close runs.
	select {
	case <-listed:
	case <-time.After(time.Minute):
		return errors.New("the resident list was not built within a minute")
	}
	return fn(a, a.Residents(Filter{}))
}

// AsOf says how current this copy of a resident's record is, as the front
// sheet's "as of" line, without auditing a view: the UI calls it when the
// connection changes while a record is open.
func (a *App) AsOf(id docid.ID) (text string, stale bool) { return a.asOf(id, a.opts.Now()) }

// CanMarkInError reports whether the signed-in user may mark a note entered
// in error: its author, or senior staff.
func (a *App) CanMarkInError(n NoteView) bool {
	u := a.CurrentUser()
	if u == nil || n.InError {
		return false
	}
	return n.Author.UserID == u.ID || a.Permissions().EditRecord
}
