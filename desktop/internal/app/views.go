package app

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"haven/shared/docid"
	"haven/shared/news2"
	"haven/shared/nhs"
	"haven/shared/record"
	"haven/shared/repo"
)

// ErrNotHeld means the record is not on this computer yet; it has been
// asked for and the UI will hear (EventResident) when it arrives.
var ErrNotHeld = errors.New("this record is being downloaded from the relay; it will open when it arrives")

// DecisionView is a safety-critical value as every screen shows it.
type DecisionView struct {
	Kind   record.Kind
	Label  string // "CPR recommendation"
	State  string // DecisionSettled, DecisionConflict or DecisionNotRecorded
	Text   string // the value in words
	By     string // "Dr Ada Quill, GP, GMC 7000001"
	At     string // "22 Nov 2026 03:00"
	Reason string
	// Sides of a conflict: each decision nothing supersedes yet.
	Sides []DecisionSide
	// Unverified are entries in this list that are not decisions: shown
	// apart, in red, never as the value.
	Unverified []UnverifiedView
}

// UnverifiedView is an entry that failed verification, as staff see it.
type UnverifiedView struct {
	Text    string // what it claims, in words
	Claimed string // who it claims wrote it: the writer's own word
	At      string
	Why     string // why it is not a decision
	Code    string // record.EntryCode
}

// UnverifiedLabel heads every unverified entry wherever it is shown.
const UnverifiedLabel = "Unverified entry — not a decision"

// DecisionSide is one side of a conflict.
type DecisionSide struct {
	EntryID, Text, By, At, Reason string
}

const (
	DecisionSettled     = "settled"
	DecisionConflict    = "conflict"
	DecisionNotRecorded = "not-recorded"
	DecisionAltered     = "altered" // the list's history breaks the rules: not shown as a decision
)

// FrontSheet is the emergency summary on one screen.
type FrontSheet struct {
	ID            docid.ID
	Name          string
	PreferredName string
	NHSNumber     string // 3-3-4
	DateOfBirth   string // "2 Apr 1931 (aged 95)"
	Sex, Room     string
	Home          string
	GPPractice    string
	Status        string
	CPR           DecisionView
	Focus         DecisionView
	Ceiling       DecisionView
	Allergies     DecisionView
	ADRT          DecisionView
	PlaceOfDeath  DecisionView
	Attorneys     []AttorneyView
	Alerts        []string
	// AlertIDs[i] is the recorded alert Alerts[i] shows, to resolve; ""
	// for an alert the record's rules raise (a review due, a blank first
	// preferred place), which goes when its cause does.
	AlertIDs     []string
	Contacts     []ContactView
	LastReviewed string
	AsOf         string // when this copy was last confirmed with the relay, in words
	Stale        bool   // the copy may be out of date: offline and not confirmed recently
	Conflicts    int
	// Tampered counts entries that are not decisions and rules the
	// record's history breaks: the tamper alert.
	Tampered int
	// Altered names rules the record's history breaks outside its
	// decision lists (its home or type changed on this computer).
	Altered  []string
	Problems []string // parts of the record that could not be read
}

// AttorneyView is an attorney and whether they may decide on
// life-sustaining treatment.
type AttorneyView struct {
	ContactID, Name, Relationship, Phone string
	Registered                           bool
	Authority                            DecisionView
}

// ContactView is a key contact with phone numbers.
type ContactView struct {
	ID, Name, Role, Relationship, Organisation, PhoneDay, PhoneNight, Email string
	CallAtNight                                                             bool
	Kind                                                                    string
}

func when(ts string) string {
	t, err := time.Parse(time.RFC3339, ts)
	if err != nil {
		return ts
	}
	return t.Local().Format("2 Jan 2006 15:04")
}

func by(a record.Author) string {
	parts := []string{a.Name}
	if l := a.Role.Label(); l != "" {
		parts = append(parts, l)
	}
	if a.RegNo != "" {
		parts = append(parts, a.RegNo)
	}
	return strings.Join(parts, ", ")
}

// describe puts a decision entry's value in words.
func describe(k record.Kind, e record.Entry) string {
	switch k {
	case record.KindCPR, record.KindFocus:
		return record.Label(e.Text())
	case record.KindCeiling:
		var v record.Ceiling
		if e.Decode(&v) != nil {
			return "unreadable"
		}
		s := record.Label(v.Level)
		if v.Guidance != "" {
			s += ": " + v.Guidance
		}
		return s
	case record.KindAllergies:
		var v record.Allergies
		if e.Decode(&v) != nil {
			return "unreadable"
		}
		if v.NoneKnown {
			return "No known allergies"
		}
		var parts []string
		for _, al := range v.Items {
			p := al.Agent
			var detail []string
			if al.Severity != "" {
				detail = append(detail, al.Severity)
			}
			if al.Reaction != "" {
				detail = append(detail, al.Reaction)
			}
			if len(detail) > 0 {
				p += " (" + strings.Join(detail, ", ") + ")"
			}
			parts = append(parts, p)
		}
		return strings.Join(parts, "; ")
	case record.KindADRT:
		var v record.ADRT
		if e.Decode(&v) != nil {
			return "unreadable"
		}
		switch v.Exists {
		case "yes":
			s := "ADRT in place: refuses " + v.TreatmentsRefused
			if v.EvenIfLifeAtRisk {
				s += ", even if life is at risk"
			}
			if v.Location != "" {
				s += "; kept " + v.Location
			}
			return s
		case "no":
			return "No ADRT"
		}
		return "Not known whether an ADRT exists"
	case record.KindPlaceOfDeath:
		var v record.PlaceOfDeath
		if e.Decode(&v) != nil {
			return "unreadable"
		}
		s := "1st: " + record.Label(v.First)
		if v.Second != "" {
			s += "; 2nd: " + record.Label(v.Second)
		}
		return s
	case record.KindAttorney:
		var v record.AttorneyAuthority
		if e.Decode(&v) != nil {
			return "unreadable"
		}
		if v.LifeSustaining {
			return "Holds authority over life-sustaining treatment"
		}
		return "No authority over life-sustaining treatment"
	}
	return e.Value
}

func decisionView(rec *record.Record, k record.Kind, subject string) DecisionView {
	s := rec.Decision(k, subject)
	v := DecisionView{Kind: k, Label: k.Label()}
	for _, u := range s.Unverified {
		v.Unverified = append(v.Unverified, UnverifiedView{Text: describe(k, u.Entry), Claimed: by(u.Entry.Author) + " (claimed)",
			At: when(u.Entry.At), Why: u.Words(), Code: record.EntryCode(u.Reason)})
	}
	if len(s.Altered) > 0 {
		// The list's history breaks the rules on this computer: nothing
		// in it is shown as the decision.
		v.State = DecisionAltered
		v.Text = "Unverified: this decision list was altered on this computer outside Haven's rules (" + strings.Join(s.Altered, ", ") +
			"). Use the paper form and ask the home manager to report it."
		return v
	}
	switch e, ok := s.Settled(); {
	case s.Conflict():
		v.State = DecisionConflict
		var texts []string
		for _, c := range s.Current {
			side := DecisionSide{EntryID: c.ID, Text: describe(k, c), By: by(c.Author), At: when(c.At), Reason: c.Reason}
			v.Sides = append(v.Sides, side)
			texts = append(texts, side.Text+" ("+c.Author.Name+")")
		}
		v.Text = "CONFLICT: " + strings.Join(texts, " versus ")
	case ok:
		v.State = DecisionSettled
		v.Text, v.By, v.At, v.Reason = describe(k, e), by(e.Author), when(e.At), e.Reason
	default:
		v.State = DecisionNotRecorded
		v.Text = "Not recorded"
	}
	return v
}

// record opens a resident's record, asking the relay for it if absent.
func (a *App) record(id docid.ID) (*record.Record, *repo.Handle, error) {
	if a.repo == nil {
		return nil, nil, ErrLockedScreen
	}
	h, err := a.repo.Open(id)
	if errors.Is(err, repo.ErrNotFound) {
		return nil, nil, a.missing(id)
	}
	if err != nil {
		return nil, nil, err
	}
	rec, err := record.Read(h.Doc(), a.Trust())
	if err == nil {
		rec.MarkAltered(a.historyCheck(id, h.Doc()))
	}
	if err == nil && rec.ID != id {
		// A document that names another ID is not this resident's record:
		// its signatures were made for that other one.
		rec.Problems = append(rec.Problems, "id: this document claims to be another record")
		for _, s := range rec.Decisions {
			for _, e := range s.Entries {
				s.Unverified = append(s.Unverified, record.Unverified{Entry: e, Reason: record.ErrWrongKey})
			}
			s.Entries, s.Current = nil, nil
		}
	}
	return rec, h, err
}

// view opens a resident's record for the signed-in user to read: it checks
// the screen is unlocked and any break-glass reason given, and audits the
// view as action.
func (a *App) view(id docid.ID, action string) (*User, *record.Record, *repo.Handle, error) {
	u := a.CurrentUser()
	if u == nil {
		return nil, nil, nil, ErrLockedScreen
	}
	if err := a.checkGlass(id); err != nil {
		return nil, nil, nil, err
	}
	rec, h, err := a.record(id)
	if err != nil {
		return nil, nil, nil, err
	}
	a.audit.record(u, id, action, "")
	return u, rec, h, nil
}

// FrontSheet returns a resident's emergency summary and audits the view.
func (a *App) FrontSheet(id docid.ID) (*FrontSheet, error) {
	u, rec, _, err := a.view(id, AuditViewFrontSheet)
	if err != nil {
		return nil, err
	}
	a.markSeen(u, id)
	now := a.opts.Now()
	ident := rec.Identity
	fs := &FrontSheet{
		ID: id, Name: ident.FullName(), PreferredName: ident.PreferredName, Sex: ident.Sex, Room: ident.Room,
		GPPractice: ident.GPPractice, Status: ident.Status, Problems: rec.Problems,
		NHSNumber: nhs.Number(ident.NHSNumber).String(), DateOfBirth: dob(ident.DateOfBirth, now),
		CPR: decisionView(rec, record.KindCPR, ""), Focus: decisionView(rec, record.KindFocus, ""),
		Ceiling: decisionView(rec, record.KindCeiling, ""), Allergies: decisionView(rec, record.KindAllergies, ""),
		ADRT: decisionView(rec, record.KindADRT, ""), PlaceOfDeath: decisionView(rec, record.KindPlaceOfDeath, ""),
		Conflicts: len(rec.Conflicts()), Tampered: rec.TamperCount(), Altered: rec.Altered,
	}
	a.idx.mu.RLock()
	if r := a.idx.rows[id]; r != nil {
		fs.Home = r.HomeName
	}
	a.idx.mu.RUnlock()
	if rec.Identity.ConsentWithdrawn {
		fs.Alerts = append(fs.Alerts, ConsentWithdrawnWords)
		fs.AlertIDs = append(fs.AlertIDs, "")
	}
	if n := len(rec.Transfers); n > 0 && a.careHome() && rec.CurrentHome != a.dev.Org {
		// Moved from here, and not yet let go (offline, or the relay has
		// not taken the move yet).
		fs.Alerts = append(fs.Alerts, MovedWords+rec.Transfers[n-1].ToName)
		fs.AlertIDs = append(fs.AlertIDs, "")
	}
	for _, al := range rec.Alerts {
		if al.Status == "active" {
			fs.Alerts = append(fs.Alerts, al.Text)
			fs.AlertIDs = append(fs.AlertIDs, al.ID)
		}
	}
	for _, pa := range planAlerts(rec, now) {
		fs.Alerts = append(fs.Alerts, pa)
		fs.AlertIDs = append(fs.AlertIDs, "")
	}
	for _, c := range rec.Contacts {
		if c.Removed {
			continue
		}
		cv := ContactView{ID: c.ID, Name: c.Name, Role: c.Role, Relationship: c.Relationship, Organisation: c.Organisation,
			PhoneDay: c.PhoneDay, PhoneNight: c.PhoneNight, Email: c.Email, CallAtNight: c.CallAtNight, Kind: c.Kind}
		fs.Contacts = append(fs.Contacts, cv)
		if c.Role == "attorney" {
			phone := c.PhoneDay
			if phone == "" {
				phone = c.PhoneNight
			}
			fs.Attorneys = append(fs.Attorneys, AttorneyView{ContactID: c.ID, Name: c.Name, Relationship: c.Relationship,
				Phone: phone, Registered: c.LPARegistered, Authority: decisionView(rec, record.KindAttorney, c.ID)})
		}
	}
	var last, lastBy string
	for _, e := range rec.CarePlan {
		if e.LastReviewed > last {
			last, lastBy = e.LastReviewed, e.LastReviewedBy
		}
	}
	for _, r := range rec.Wishes.Reviews {
		if r.Date > last {
			last, lastBy = r.Date, r.Clinician
		}
	}
	if last != "" {
		fs.LastReviewed = formatDate(last) + " by " + lastBy
	} else {
		fs.LastReviewed = "No review recorded"
	}
	fs.AsOf, fs.Stale = a.asOf(id, now)
	return fs, nil
}

// staleAfter is how long an unconfirmed copy may be shown without a
// warning while offline.
const staleAfter = time.Hour

// asOf says how current this copy of a document is.
func (a *App) asOf(id docid.ID, now time.Time) (string, bool) {
	a.mu.Lock()
	t, ok := a.lastSync[id]
	online := a.online
	a.mu.Unlock()
	if a.client != nil && online && a.client.Synced(id) {
		return "Up to date with the relay (" + now.Local().Format("15:04") + ")", false
	}
	if !ok {
		return "Not confirmed with the relay since this computer started: it may be out of date", true
	}
	stale := now.Sub(t) > staleAfter
	s := "As of " + t.Local().Format("2 Jan 15:04") + ", the last exchange with the relay"
	if stale {
		s += ": it may be out of date"
	}
	return s, stale
}

func dob(d string, now time.Time) string {
	t, err := time.Parse(record.DateLayout, d)
	if err != nil {
		return d
	}
	age := now.Year() - t.Year()
	if now.YearDay() < t.YearDay() {
		age--
	}
	return fmt.Sprintf("%s (aged %d)", t.Format("2 Jan 2006"), age)
}

func formatDate(d string) string {
	t, err := time.Parse(record.DateLayout, d)
	if err != nil {
		return d
	}
	return t.Format("2 Jan 2006")
}

// CarePlanItem is one domain as the care plan tab shows it.
type CarePlanItem struct {
	record.CarePlanEntry
	Label  string
	Review string // ReviewOverdue, ReviewDue, ReviewSoon, ReviewOK, ReviewNotSet
}

// Review states, as record.ReviewState says them.
const (
	ReviewOverdue = record.ReviewOverdue
	ReviewDue     = record.ReviewDue  // today
	ReviewSoon    = record.ReviewSoon // within record.SoonDays
	ReviewOK      = record.ReviewOK
	ReviewNotSet  = record.ReviewNotSet
)

// CarePlan returns the care plan by domain and audits the view.
func (a *App) CarePlan(id docid.ID) ([]CarePlanItem, error) {
	_, rec, _, err := a.view(id, AuditViewCarePlan)
	if err != nil {
		return nil, err
	}
	now := a.opts.Now()
	var out []CarePlanItem
	for _, e := range rec.CarePlan {
		out = append(out, CarePlanItem{CarePlanEntry: e, Label: e.Domain.Label(), Review: record.ReviewState(e.ReviewDue, now)})
	}
	return out, nil
}

// DueReview is one review overdue or due soon, for the manager's list:
// the end-of-life plan, or the care-plan areas of one resident due the
// same day (a home reviews a resident's plan together).
type DueReview struct {
	Resident Row
	What     string // "End-of-life plan (ReSPECT)", an area's label, or "Care plan: 12 areas"
	Due      string // YYYY-MM-DD
	State    string // ReviewOverdue, ReviewDue or ReviewSoon
}

// ReviewsDue lists the reviews of the residents in care that are overdue
// or due within record.SoonDays, as of now, most overdue first: the
// manager's week. It reads the list's rows, not the records.
func (a *App) ReviewsDue() []DueReview {
	day := record.DayOf(a.opts.Now())
	var out []DueReview
	for _, r := range a.Residents(Filter{DueSoon: true}) {
		areas := map[string][]string{} // due date → care-plan areas
		for _, it := range r.Reviews {
			st := day.State(it.Due)
			if st != ReviewOverdue && st != ReviewDue && st != ReviewSoon {
				continue
			}
			if it.What == record.PlanReviewItem {
				out = append(out, DueReview{Resident: r, What: "End-of-life plan (ReSPECT)", Due: it.Due, State: st})
				continue
			}
			areas[it.Due] = append(areas[it.Due], record.Domain(it.What).Label())
		}
		for due, labels := range areas {
			what := "Care plan: " + strings.Join(labels, ", ")
			if len(labels) > 3 {
				what = fmt.Sprintf("Care plan: %d areas", len(labels))
			}
			out = append(out, DueReview{Resident: r, What: what, Due: due, State: day.State(due)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Due != out[j].Due {
			return out[i].Due < out[j].Due
		}
		return out[i].Resident.sortKey < out[j].Resident.sortKey
	})
	return out
}

// WishesView is the advance wishes tab.
type WishesView struct {
	record.Wishes
	CPR, Focus, Ceiling, ADRT, PlaceOfDeath, Allergies DecisionView
	// CanEditClinical: the signed-in user may change the clinical sections
	// (a registered clinician; their registration is recorded with each change).
	CanEditClinical bool
	CanEdit         bool
}

// Wishes returns the advance wishes and audits the view.
func (a *App) Wishes(id docid.ID) (*WishesView, error) {
	u, rec, _, err := a.view(id, AuditViewWishes)
	if err != nil {
		return nil, err
	}
	return &WishesView{
		Wishes: rec.Wishes, CPR: decisionView(rec, record.KindCPR, ""), Focus: decisionView(rec, record.KindFocus, ""),
		Ceiling: decisionView(rec, record.KindCeiling, ""), ADRT: decisionView(rec, record.KindADRT, ""),
		PlaceOfDeath: decisionView(rec, record.KindPlaceOfDeath, ""), Allergies: decisionView(rec, record.KindAllergies, ""),
		CanEditClinical: u.Acts().Clinician(), CanEdit: u.Acts() != record.CareWorker && u.Acts() != record.IGLead,
	}, nil
}

// Identity returns the resident's identity for editing.
func (a *App) Identity(id docid.ID) (record.Identity, error) {
	rec, _, err := a.record(id)
	if err != nil {
		return record.Identity{}, err
	}
	return rec.Identity, nil
}

// Contacts returns the resident's contacts.
func (a *App) Contacts(id docid.ID) ([]record.Contact, error) {
	rec, _, err := a.record(id)
	if err != nil {
		return nil, err
	}
	return rec.Contacts, nil
}

// NoteView is one timeline entry.
type NoteView struct {
	record.Note
	When, Who string
	InError   bool
}

// Notes returns the timeline, newest first.
func (a *App) Notes(id docid.ID) ([]NoteView, error) {
	if err := a.checkGlass(id); err != nil {
		return nil, err
	}
	if a.repo == nil {
		return nil, ErrLockedScreen
	}
	rh, err := a.repo.Open(id)
	if errors.Is(err, repo.ErrNotFound) {
		return nil, a.missing(id)
	}
	if err != nil {
		return nil, err
	}
	tid, ok := record.TimelineID(rh.Doc())
	if !ok {
		return nil, nil
	}
	h, err := a.repo.Open(tid)
	if errors.Is(err, repo.ErrNotFound) {
		return nil, a.missing(tid)
	}
	if err != nil {
		return nil, err
	}
	tl, err := record.ReadTimeline(h.Doc())
	if err != nil {
		return nil, err
	}
	out := make([]NoteView, len(tl.Notes))
	for i, n := range tl.Notes {
		out[i] = NoteView{Note: n, When: when(n.EventAt), Who: by(n.Author), InError: n.Status == record.NoteEnteredInError}
	}
	return out, nil
}

// HistoryItem is one change, for the history tab. Who is honest about
// what is known: a name is verified only where a signature binds that
// member of staff to the change (a decision entry); every other name is
// the sending computer's word, shown with the enrolled device the relay
// saw send it.
type HistoryItem struct {
	At, Who, What string
	// Changes are, for a correction (personal details, consent, a
	// contact, an alert), each field as it was and as it became:
	// "room: 12 → 14".
	Changes  []string
	Verified bool   // a signature binds the named person to the change
	Device   string // the enrolled device that sent it, as the relay recorded; "" not known yet
}

var opWords = map[string]string{
	"create": "Created the record", "identity": "Changed personal details", "add-contact": "Added a contact",
	"contact": "Changed a contact", "add-alert": "Added an alert", "alert-status": "Changed an alert",
	"care-plan": "Changed the care plan", "review": "Reviewed the care plan", "wishes": "Changed advance wishes",
	"respect-review": "Reviewed the ReSPECT plan", "decide": "Recorded a decision", "external": "Changed by another program",
}

// History lists who changed what, newest first, by name, and audits the view.
func (a *App) History(id docid.ID) ([]HistoryItem, error) {
	_, rec, h, err := a.view(id, AuditViewHistory)
	if err != nil {
		return nil, err
	}
	changes, err := record.History(h.Doc(), "")
	if err != nil {
		return nil, err
	}
	verified := map[string]record.Entry{} // entry ID → the verified entry
	for _, s := range rec.Decisions {
		for _, e := range s.Entries {
			verified[e.ID] = e
		}
	}
	devices, unknown := a.provenance(changes)
	if len(unknown) > 0 && a.client != nil {
		a.client.AskWho(id, unknown)
	}
	out := make([]HistoryItem, 0, len(changes))
	for _, c := range changes {
		what := opWords[c.Op]
		if what == "" {
			what = c.Op
		}
		var fields []string
		for _, f := range c.Fields {
			fields = append(fields, fieldWords(f))
		}
		if len(fields) > 0 && c.Op != "create" {
			what += ": " + strings.Join(fields, ", ")
		}
		it := HistoryItem{At: c.At.Local().Format("2 Jan 2006 15:04"), What: what}
		fcs, err := record.Corrections(h.Doc(), c)
		if err != nil {
			a.log.Warn("reading a correction's before and after", "err", err)
		}
		for _, fc := range fcs {
			it.Changes = append(it.Changes, fmt.Sprintf("%s: %s → %s", fieldWords(fc.Field), orNothing(fc.Before), orNothing(fc.After)))
		}
		if e, ok := signedBy(c, verified); ok {
			it.Who, it.Verified = by(e.Author)+" · signed", true
		} else {
			it.Who = "unknown"
			if c.By.Name != "" {
				it.Who = c.By.Name + " (name not verified)"
			}
		}
		if d, ok := devices[c.Actor]; ok {
			it.Device = d.Name
			it.Who += " · sent by " + d.Name
		} else if !it.Verified {
			it.Who += " · sending computer not yet confirmed by the relay"
		}
		out = append(out, it)
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil // reversed above: newest first
}

// signedBy finds the verified decision entry a change wrote, if its
// signature names the author the change claims.
func signedBy(c record.Change, verified map[string]record.Entry) (record.Entry, bool) {
	if c.Op != "decide" || len(c.Fields) != 1 {
		return record.Entry{}, false
	}
	parts := strings.Split(c.Fields[0], ".")
	if len(parts) != 3 || parts[0] != "decisions" {
		return record.Entry{}, false
	}
	e, ok := verified[parts[2]]
	if !ok || e.Author.UserID != c.By.UserID {
		return record.Entry{}, false
	}
	return e, true
}

// fieldWords turns a stored path into words ("carePlan.skin.goal" →
// "Skin: goal").
// ConsentWithdrawnWords head the front sheet's alerts of a person who has
// withdrawn consent to share their record.
const ConsentWithdrawnWords = "Consent to share this record has been withdrawn: share nothing of it outside the home without a new decision"

// orNothing shows an empty value in a before-and-after line.
func orNothing(v string) string {
	if v == "" {
		return "(nothing)"
	}
	return "“" + v + "”"
}

func fieldWords(f string) string {
	parts := strings.Split(f, ".")
	switch {
	case len(parts) == 3 && parts[0] == "contacts":
		return "contact " + parts[2]
	case len(parts) == 3 && parts[0] == "alerts":
		return "alert " + parts[2]
	case len(parts) >= 2 && parts[0] == "decisions":
		return record.Kind(parts[1]).Label()
	case len(parts) >= 3 && parts[0] == "carePlan":
		return record.Domain(parts[1]).Label() + ": " + parts[2]
	case len(parts) == 2 && parts[0] == "identity":
		return parts[1]
	case len(parts) == 2 && parts[0] == "wishes":
		return parts[1]
	}
	return parts[0]
}

// NEWS2View is a live NEWS2 score shown against the ceiling of treatment.
type NEWS2View struct {
	Complete bool
	Missing  string
	Total    int
	Band     news2.Band
	Response string
	Ceiling  string // the plan's ceiling of treatment, or a conflict, or "not recorded"
	Points   map[string]int
}

// ScoreNEWS2 scores observations as they are typed in the advice-call form.
func (a *App) ScoreNEWS2(id docid.ID, o news2.Observations) NEWS2View {
	v := NEWS2View{Ceiling: "Ceiling of treatment not recorded"}
	if rec, _, err := a.record(id); err == nil {
		c := decisionView(rec, record.KindCeiling, "")
		if c.State != DecisionNotRecorded {
			v.Ceiling = "Ceiling of treatment: " + c.Text
		}
	}
	r, err := news2.Score(o)
	if err != nil {
		v.Missing = err.Error()
		return v
	}
	v.Complete, v.Total, v.Band, v.Response, v.Points = true, r.Total, r.Band, r.Band.Response(), r.Points
	return v
}

// planAlertWords say each of record.PlanAlerts in the words of the front
// sheet.
var planAlertWords = map[string]string{
	record.AlertNoPlaceOfDeath: "First preferred place of death is blank: ask the resident, or those who speak for them, and record their wish (or \"not recorded\")",
}

// planAlerts are the front sheet's alerts about the end-of-life plan: what
// it lacks, and a review overdue or due today.
func planAlerts(rec *record.Record, now time.Time) []string {
	var out []string
	for _, k := range rec.PlanAlerts() {
		out = append(out, planAlertWords[k])
	}
	due := rec.PlanReviewDue()
	switch record.ReviewState(due, now) {
	case record.ReviewOverdue:
		out = append(out, "End-of-life plan review overdue: it was due "+formatDate(due))
	case record.ReviewDue:
		out = append(out, "End-of-life plan review due today")
	}
	return out
}
