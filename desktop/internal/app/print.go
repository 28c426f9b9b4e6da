package app

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"haven/desktop/internal/printout"
	"haven/shared/docid"
	"haven/shared/record"
)

// What Print can make.
const (
	PrintSummary  = "summary"  // the emergency summary, one A4 page
	PrintTransfer = "transfer" // the hospital transfer pack
	PrintPersonal = "personal" // the person's own copy
)

// PrintKinds are the printouts, in the order the UI offers them.
var PrintKinds = []string{PrintSummary, PrintTransfer, PrintPersonal}

// AuditPrint is a printout made. Its detail is the kind printed, never
// what was on it (the reason for transfer included).
const AuditPrint = "print"

// PrintRequest says what to print.
type PrintRequest struct {
	Kind   string // PrintSummary, PrintTransfer or PrintPersonal
	Reason string // the reason for transfer, typed at print time
}

var (
	// ErrPrintKind is a printout Haven does not make.
	ErrPrintKind = errors.New("choose what to print: summary, transfer or personal")
	// ErrNoTransferReason is a transfer pack asked for without the reason
	// for transfer, which the hospital reads first.
	ErrNoTransferReason = errors.New("the transfer pack needs the reason for transfer: type why the resident is going to hospital")
)

// Print writes a resident's printout as PDF to w, and audits it. It reads
// the record through the same views the screens show (each audited as a
// view), so the paper shows what the screen does: a decision only when it
// verifies and is settled, a conflict naming each side, an unverified
// entry as unverified, and "Not recorded" where nothing is.
//
// The person's own copy leaves out what is for staff only: see
// personalLeavesOut.
func (a *App) Print(id docid.ID, req PrintRequest, w io.Writer) error {
	reason := strings.TrimSpace(req.Reason)
	switch req.Kind {
	case PrintSummary, PrintPersonal:
	case PrintTransfer:
		if reason == "" {
			return ErrNoTransferReason
		}
	default:
		return ErrPrintKind
	}
	u := a.CurrentUser()
	if u == nil {
		return ErrLockedScreen
	}
	fs, err := a.FrontSheet(id)
	if err != nil {
		return err
	}
	now := a.opts.Now().Local()
	d := &printout.Document{Name: fs.Name, NHSNumber: fs.NHSNumber, DateOfBirth: fs.DateOfBirth,
		PrintedBy: by(u.author), PrintedAt: now, AsOf: fs.AsOf, Stale: fs.Stale}
	if fs.PreferredName != "" && !strings.HasPrefix(fs.Name, fs.PreferredName+" ") {
		d.Name += " (known as " + fs.PreferredName + ")"
	}
	switch req.Kind {
	case PrintSummary:
		d.Title, d.OnePage = "Emergency summary", true
		summaryPage(d, fs)
	case PrintTransfer:
		d.Title, d.OnePage = "Hospital transfer pack", true
		summaryPage(d, fs)
		d.Notice = &printout.Notice{Label: "Reason for transfer (typed when printed)", Text: reason}
		v, err := a.printViews(id, true)
		if err != nil {
			return err
		}
		transferSections(d, fs, v)
	case PrintPersonal:
		d.Title, d.Plain = "My own copy of my care plan", true
		d.PrintedBy = withoutRegistration(d.PrintedBy)
		v, err := a.printViews(id, false)
		if err != nil {
			return err
		}
		personalSections(d, fs, v)
	}
	if err := printout.Write(w, d); err != nil {
		return err
	}
	a.audit.record(u, id, AuditPrint, req.Kind)
	return nil
}

// printViews are the views a printout reads beyond the front sheet.
type printViews struct {
	wishes *WishesView
	plan   []CarePlanItem
	ident  record.Identity
	notes  []NoteView // newest first; read only for the transfer pack
}

func (a *App) printViews(id docid.ID, notes bool) (*printViews, error) {
	v := &printViews{}
	var err error
	if v.wishes, err = a.Wishes(id); err != nil {
		return nil, err
	}
	if v.plan, err = a.CarePlan(id); err != nil {
		return nil, err
	}
	if v.ident, err = a.Identity(id); err != nil {
		return nil, err
	}
	if notes {
		if v.notes, err = a.Notes(id); err != nil {
			return nil, err
		}
	}
	return v, nil
}

// summaryPage fills the first page in the order a paramedic reads it: CPR
// with who decided and when, clinical focus, ceiling of treatment (and an
// advance decision to refuse treatment, which bounds it), allergies,
// alerts, attorney and authority, preferred place of death, key contacts
// with numbers.
func summaryPage(d *printout.Document, fs *FrontSheet) {
	d.Lead = &printout.Item{Label: fs.CPR.Label, Decision: decisionPrint(fs.CPR)}
	d.First = []printout.Item{
		decisionItem(fs.Focus), decisionItem(fs.Ceiling), decisionItem(fs.ADRT), decisionItem(fs.Allergies),
		alertsItem(fs), attorneysItem(fs, false), decisionItem(fs.PlaceOfDeath), contactsItem(fs, true),
	}
	if fs.Tampered > 0 || len(fs.Altered) > 0 || len(fs.Problems) > 0 {
		warn := printout.Item{Label: "Record warning", Lines: []printout.Line{{
			Text: "Parts of this record failed its checks on the computer that printed it; they are marked unverified and are not decisions. " +
				"Rely on the paper ReSPECT form and tell the home manager.", Style: printout.Danger}}}
		d.First = append([]printout.Item{warn}, d.First...)
	}
	d.FirstNote = "ReSPECT is a clinical recommendation, not a legal order: the signed paper form travels with the person. " +
		"Last reviewed: " + fs.LastReviewed + "."
}

// decisionPrint is a decision view as the printout takes it.
func decisionPrint(v DecisionView) *printout.Decision {
	state := map[string]string{DecisionSettled: printout.Settled, DecisionConflict: printout.Conflict,
		DecisionNotRecorded: printout.NotRecorded, DecisionAltered: printout.Altered}[v.State]
	if state == "" {
		state = printout.NotRecorded
	}
	p := &printout.Decision{State: state, Text: v.Text, By: v.By, At: v.At, Reason: v.Reason}
	for _, s := range v.Sides {
		p.Sides = append(p.Sides, printout.Side{Text: s.Text, By: s.By, At: s.At, Reason: s.Reason})
	}
	for _, u := range v.Unverified {
		p.Unverified = append(p.Unverified, printout.Unverified{Heading: UnverifiedLabel, Text: u.Text, Claimed: u.Claimed, At: u.At, Why: u.Why})
	}
	return p
}

func decisionItem(v DecisionView) printout.Item {
	return printout.Item{Label: v.Label, Decision: decisionPrint(v)}
}

func alertsItem(fs *FrontSheet) printout.Item {
	it := printout.Item{Label: "Alerts"}
	for _, al := range fs.Alerts {
		it.Lines = append(it.Lines, printout.Line{Text: al, Style: printout.Strong})
	}
	if len(it.Lines) == 0 {
		it.Lines = []printout.Line{{Text: "No alerts recorded", Style: printout.Plain}}
	}
	return it
}

// attorneysItem is each attorney with their numbers, whether the LPA is
// registered, and their authority over life-sustaining treatment (a
// decision, printed as one).
func attorneysItem(fs *FrontSheet, plain bool) printout.Item {
	it := printout.Item{Label: "Attorney (health and welfare LPA)"}
	if plain {
		it.Label = "Who can decide for you (attorney)"
	}
	if len(fs.Attorneys) == 0 {
		it.Lines = []printout.Line{{Text: "No attorney recorded", Style: printout.Plain}}
		return it
	}
	var dec *printout.Decision
	for _, at := range fs.Attorneys {
		who := at.Name
		if at.Relationship != "" {
			who += " (" + at.Relationship + ")"
		}
		it.Lines = append(it.Lines, printout.Line{Text: who, Style: printout.Strong})
		for _, c := range fs.Contacts {
			if c.ID == at.ContactID {
				it.Lines = append(it.Lines, printout.Line{Text: phonesLine(c), Style: printout.Plain})
			}
		}
		if at.Registered {
			it.Lines = append(it.Lines, printout.Line{Text: "LPA registered with the Office of the Public Guardian", Style: printout.Small})
		} else {
			it.Lines = append(it.Lines, printout.Line{Text: "LPA NOT registered with the Office of the Public Guardian: cannot act yet", Style: printout.Warn})
		}
		if at.Authority.State == DecisionSettled {
			who := "By " + at.Authority.By
			if plain {
				who = "Decided by " + withoutRegistration(at.Authority.By)
			}
			it.Lines = append(it.Lines, printout.Line{Text: at.Authority.Text, Style: printout.Strong},
				printout.Line{Text: who + ", " + at.Authority.At, Style: printout.Small})
		} else {
			// An attorney's unsettled authority is the item's decision:
			// shown as the screen shows it, conflict or not recorded.
			it.Lines = append(it.Lines, printout.Line{Text: at.Authority.Label + ":", Style: printout.Plain})
			dec = decisionPrint(at.Authority)
			if plain {
				plainDecision(dec)
			}
		}
	}
	it.Decision = dec
	return it
}

// contactsItem lists the key contacts with their numbers; on the summary
// the attorneys are left out, their numbers being in the attorney row.
func contactsItem(fs *FrontSheet, skipAttorneys bool) printout.Item {
	it := printout.Item{Label: "Key contacts"}
	attorney := map[string]bool{}
	for _, at := range fs.Attorneys {
		attorney[at.ContactID] = skipAttorneys
	}
	for _, c := range fs.Contacts {
		if attorney[c.ID] {
			continue
		}
		who := c.Name
		var about []string
		for _, s := range []string{c.Relationship, roleWords[c.Role], c.Organisation} {
			if s != "" {
				about = append(about, s)
			}
		}
		if len(about) > 0 {
			who += " (" + strings.Join(about, ", ") + ")"
		}
		it.Lines = append(it.Lines, printout.Line{Text: who, Style: printout.Strong}, printout.Line{Text: phonesLine(c), Style: printout.Plain})
	}
	if len(it.Lines) == 0 {
		it.Lines = []printout.Line{{Text: "No other contacts recorded", Style: printout.Warn}}
	}
	return it
}

// roleWords name a contact's role as staff say it.
var roleWords = map[string]string{"next-of-kin": "next of kin", "carer": "carer", "emergency-contact": "emergency contact",
	"attorney": "attorney", "deputy": "deputy", "gp": "GP", "care-coordinator": "care coordinator",
	"palliative-team": "palliative care team", "district-nurse": "district nurse"}

// phonesLine is a contact's numbers as a printout gives them.
func phonesLine(c ContactView) string {
	if p := c.Phones(); p != "" {
		return p
	}
	return "No number recorded"
}

// Phones is a contact's numbers, and for family and friends whether to
// call at night, as every screen and printout words them ("" if none).
func (c ContactView) Phones() string {
	var p []string
	if c.PhoneDay != "" {
		p = append(p, "Day "+c.PhoneDay)
	}
	if c.PhoneNight != "" {
		p = append(p, "Night "+c.PhoneNight)
	}
	if c.Kind == "personal" {
		if c.CallAtNight {
			p = append(p, "call at night: yes")
		} else {
			p = append(p, "call at night: NO")
		}
	}
	if len(p) == 0 && c.Email != "" {
		p = append(p, c.Email)
	}
	return strings.Join(p, " · ")
}

// lastNotes is how many of the newest notes, and of the newest advice
// calls, the transfer pack carries.
const lastNotes = 3

// transferSections are the pages after the summary: what matters to the
// person, communication and mobility, the care plan in brief, the last
// NEWS2, the last notes and advice calls, and every contact.
func transferSections(d *printout.Document, fs *FrontSheet, v *printViews) {
	wv, plan, ident, notes := v.wishes, v.plan, v.ident, v.notes
	domain := func(dm record.Domain) *CarePlanItem {
		for i := range plan {
			if plan[i].Domain == dm {
				return &plan[i]
			}
		}
		return nil
	}
	person := printout.Section{Title: "The person", Items: []printout.Item{
		textItem("What matters to me", wv.MostValue), textItem("What I fear or wish to avoid", wv.MostFear)}}
	comm := []string{}
	if ident.Language != "" {
		l := "Language: " + ident.Language
		if ident.Interpreter {
			l += " (needs an interpreter)"
		}
		comm = append(comm, l)
	}
	if ident.CommunicationNeeds != "" {
		comm = append(comm, ident.CommunicationNeeds)
	}
	if c := domain("communication"); c != nil {
		comm = append(comm, domainWords(c)...)
	}
	person.Items = append(person.Items, textItem("Communication", strings.Join(comm, "\n")))
	if m := domain("mobility-and-falls"); m != nil {
		person.Items = append(person.Items, textItem("Mobility", strings.Join(domainWords(m), "\n")))
	} else {
		person.Items = append(person.Items, textItem("Mobility", ""))
	}
	if ident.Religion != "" || ident.CulturalNeeds != "" {
		person.Items = append(person.Items, textItem("Religion and culture", joinWords("; ", ident.Religion, ident.CulturalNeeds)))
	}

	news := printout.Section{Title: "Last NEWS2", Items: []printout.Item{news2Item(notes, fs)}}

	care := printout.Section{Title: "Care plan in brief"}
	for i := range plan {
		p := &plan[i]
		if p.Need == "" && p.Support == "" {
			care.Items = append(care.Items, textItem(p.Label, ""))
			continue
		}
		care.Items = append(care.Items, printout.Item{Label: p.Label, Lines: []printout.Line{
			{Text: joinWords(" · ", p.Need, levelWords(p.Level)), Style: printout.Strong},
			{Text: p.Support, Style: printout.Plain}}})
	}

	var recent, calls []printout.Item
	for _, n := range notes {
		if n.InError {
			continue
		}
		switch {
		case n.Kind == record.NoteKindAdviceCall && n.Call != nil && len(calls) < lastNotes:
			calls = append(calls, callItem(n))
		case n.Kind != record.NoteKindAdviceCall && len(recent) < lastNotes:
			recent = append(recent, printout.Item{Label: n.When, Lines: []printout.Line{{Text: n.Text, Style: printout.Plain},
				{Text: n.Who, Style: printout.Small}}})
		}
	}
	if len(recent) == 0 {
		recent = []printout.Item{textItem("", "No notes recorded")}
	}
	if len(calls) == 0 {
		calls = []printout.Item{textItem("", "No advice calls recorded")}
	}
	contacts := printout.Section{Title: "Contacts", Items: []printout.Item{attorneysItem(fs, false), contactsItem(fs, true)}}
	end := printout.Section{Title: "End-of-life plan", Items: []printout.Item{
		textItem("Preferred place of care", record.Label(wv.PlaceOfCare)),
		textItem("Anticipatory medicines", joinWords("; kept: ", wv.AnticipatoryMeds, wv.AnticipatoryMedsAt)),
		textItem("Where the ReSPECT form is", wv.FormLocation),
		textItem("Other guidance on treatment", wv.InterventionGuidance),
	}}
	d.Sections = []printout.Section{person, news,
		{Title: fmt.Sprintf("Last %d notes", lastNotes), Items: recent},
		{Title: fmt.Sprintf("Last %d advice calls", lastNotes), Items: calls},
		care, end, contacts}
}

// news2Item is the newest NEWS2 scored from an advice call's observations
// (scored again, as the notes tab does), with its time, shown against the
// ceiling of treatment.
func news2Item(notes []NoteView, fs *FrontSheet) printout.Item {
	for _, n := range notes {
		if n.InError || n.Call == nil {
			continue
		}
		if v := CallScore(n.Call); v.Complete {
			return printout.Item{Label: n.When, Lines: []printout.Line{
				{Text: fmt.Sprintf("NEWS2 %d (%s): %s", v.Total, strings.ReplaceAll(string(v.Band), "-", " "), v.Response), Style: printout.Strong},
				{Text: "Ceiling of treatment: " + fs.Ceiling.Text, Style: printout.Plain},
				{Text: "Taken on an advice call recorded by " + n.Who, Style: printout.Small}}}
		}
	}
	return printout.Item{Label: "NEWS2", Lines: []printout.Line{{Text: "No NEWS2 recorded", Style: printout.Warn}}}
}

func callItem(n NoteView) printout.Item {
	c := n.Call
	lines := []printout.Line{{Text: "Concern: " + c.Concern, Style: printout.Strong}}
	if v := CallScore(c); v.Complete {
		lines = append(lines, printout.Line{Text: fmt.Sprintf("NEWS2 %d (%s)", v.Total, strings.ReplaceAll(string(v.Band), "-", " ")), Style: printout.Plain})
	}
	lines = append(lines, printout.Line{Text: joinWords(" · ", "Advice: "+c.Advice, "Outcome: "+outcomeWords(c.Outcome)), Style: printout.Plain},
		printout.Line{Text: n.Who, Style: printout.Small})
	return printout.Item{Label: n.When, Lines: lines}
}

// domainWords is one care-plan area in brief: the need, how to support
// the person, what to do and not to do.
func domainWords(p *CarePlanItem) []string {
	var out []string
	for _, s := range []string{p.Need, p.Support, prefix("Please do: ", p.PleaseDo), prefix("Please don't: ", p.PleaseDont)} {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func levelWords(l string) string {
	if l == "" {
		return ""
	}
	return l + " need"
}

func prefix(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func joinWords(sep string, parts ...string) string {
	var keep []string
	for _, s := range parts {
		if strings.TrimSpace(s) != "" {
			keep = append(keep, s)
		}
	}
	return strings.Join(keep, sep)
}

// textItem is a labelled text; an empty one says "Not recorded" rather
// than leave a blank a reader might take for "none".
func textItem(label, text string) printout.Item {
	if strings.TrimSpace(text) == "" {
		return printout.Item{Label: label, Lines: []printout.Line{{Text: "Not recorded", Style: printout.Warn}}}
	}
	return printout.Item{Label: label, Lines: []printout.Line{{Text: text, Style: printout.Plain}}}
}

// personalLeavesOut are the staff-only parts of the record the person's
// own copy leaves out (the README lists them too).
var personalLeavesOut = []string{
	"notes, advice calls and NEWS2 observations",
	"alerts (written for staff: they can hold key-safe codes and security notes)",
	"where the ReSPECT form, the LPA certificate and the anticipatory medicines are kept",
	"prognosis, and why the person or family was not told of a decision",
	"assessment scores (MUST, Waterlow, Braden), review dates and reviewers",
	"professional registration numbers, and the technical detail of an unverified entry",
}

// personalSections are the person's own copy, in plain words: their
// decisions, wishes, the people who speak for them and whom the home
// calls, and how they are supported; none of personalLeavesOut.
func personalSections(d *printout.Document, fs *FrontSheet, v *printViews) {
	wv, plan := v.wishes, v.plan
	d.Notice = &printout.Notice{Label: "About this copy",
		Text: "This is your own copy of the plan " + orWords(fs.Home, "your care home") + " keeps for you, to keep or share as you wish. " +
			"If anything in it is wrong or has changed, tell the home manager."}
	plain := func(v DecisionView, label string) printout.Item {
		return printout.Item{Label: label, Decision: plainDecision(decisionPrint(v))}
	}
	d.Lead = &printout.Item{Label: "If your heart stops: cardiopulmonary resuscitation (CPR)", Decision: plain(fs.CPR, "").Decision}
	att := attorneysItem(fs, true)
	d.First = []printout.Item{
		plain(fs.Focus, "What your care aims for"),
		plain(fs.Ceiling, "How far treatment should go"),
		plain(fs.ADRT, "Treatments you have refused in advance"),
		plain(fs.Allergies, "Allergies"),
		plain(fs.PlaceOfDeath, "Where you would prefer to die"),
		textItem("Where you would prefer to be cared for", placeWords(wv.PlaceOfCare)),
		textItem("What matters most to you", wv.MostValue),
		textItem("What you fear or wish to avoid", wv.MostFear),
		att,
	}
	d.FirstNote = "ReSPECT is a recommendation to help the people caring for you in an emergency; it is not a legal order. " +
		"The signed paper form stays with you."
	people := printout.Section{Title: "People the home will contact", Items: []printout.Item{contactsItem(fs, false)}}
	care := printout.Section{Title: "How we support you", Intro: "Your care plan, area by area, in the words agreed with you."}
	for i := range plan {
		p := &plan[i]
		var lines []printout.Line
		for _, s := range domainWords(p) {
			lines = append(lines, printout.Line{Text: s, Style: printout.Plain})
		}
		if len(lines) == 0 {
			continue
		}
		lines[0].Style = printout.Strong
		care.Items = append(care.Items, printout.Item{Label: p.Label, Lines: lines})
	}
	d.Sections = []printout.Section{people, care}
}

// plainDecision leaves the registration numbers out of a decision for
// the person's copy.
func plainDecision(p *printout.Decision) *printout.Decision {
	p.By = withoutRegistration(p.By)
	for i := range p.Sides {
		p.Sides[i].By = withoutRegistration(p.Sides[i].By)
	}
	return p
}

// withoutRegistration drops the professional registration from "Name,
// Role, GMC 7000001": the person's copy names who decided and their role.
func withoutRegistration(by string) string {
	i := strings.LastIndex(by, ", ")
	if i < 0 {
		return by
	}
	for _, reg := range []string{"GMC ", "NMC ", "HCPC "} {
		if strings.HasPrefix(by[i+2:], reg) {
			return by[:i]
		}
	}
	return by
}

func placeWords(p string) string {
	if p == "" {
		return ""
	}
	return record.Label(p)
}

func orWords(s, otherwise string) string {
	if s == "" {
		return otherwise
	}
	return s
}
