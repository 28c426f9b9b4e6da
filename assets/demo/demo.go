// Package demo makes synthetic care-home residents for demonstrations,
// tests and benchmarks: invented names, NHS numbers from the 999 test range
// (never issued), and plausible care plans, advance wishes and notes. The
// same seed always makes the same people.
package demo

import (
	"crypto/ed25519"
	"fmt"
	"math/rand"
	"sync"
	"time"

	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
)

var (
	givenF   = []string{"Edith", "Margaret", "Dorothy", "Joan", "Irene", "Winifred", "Gladys", "Phyllis", "Elsie", "Mavis", "Nora", "Hilda", "Beryl", "Doreen", "Olive", "Ivy", "Peggy", "Ada", "Vera", "Lilian"}
	givenM   = []string{"Arthur", "Harold", "Albert", "Stanley", "Frank", "Ernest", "Leonard", "Walter", "Cyril", "Reginald", "Sidney", "Wilfred", "Norman", "Dennis", "Percy", "Cecil", "Ronald", "Bernard", "Clifford", "Eric"}
	families = []string{"Marlow", "Ashby", "Penhale", "Quennell", "Thackery", "Brightwell", "Fairclough", "Oakridge", "Pellow", "Kingsmill", "Dunmore", "Hollis", "Westbury", "Carrow", "Lydgate", "Ormsby", "Pennock", "Rudd", "Stallard", "Tremayne", "Vosper", "Whitcombe", "Yelland", "Abernethy", "Blakemore", "Cottrell", "Darrow", "Eldridge", "Fenwick", "Garside"}
	agents   = []string{"Penicillin", "Latex", "Codeine", "Trimethoprim", "Peanuts", "Elastoplast"}
	reacts   = []string{"rash", "swelling of the lips", "nausea", "breathing difficulty", "hives"}
	alerts   = []string{"Swallowing risk: fork-mashable diet, thickened fluids level 2", "DoLS authorisation in force until review", "Key-safe code held by the home manager", "Pacemaker fitted", "High falls risk at night", "Hard of hearing: left ear; hearing aid in room drawer"}
	supports = map[record.Domain][2]string{
		"personal-care":          {"Needs help of one to wash and dress", "I like to choose my clothes the night before and wear my pearls."},
		"eating-and-drinking":    {"Poor appetite; weight falling", "I eat better with small portions and company at the table."},
		"mobility-and-falls":     {"Unsteady when tired; uses a frame", "Please keep my frame within reach and walk beside me to the lounge."},
		"skin":                   {"Fragile skin on heels", "Please check my heels when I go to bed and use my cushion in the chair."},
		"continence":             {"Needs prompting to use the toilet", "Please remind me after meals, quietly."},
		"medication":             {"Takes medicines crushed in yoghurt", "I like to take my tablets with a cup of tea."},
		"cognition-and-dementia": {"Vascular dementia; disorientated in the evening", "Talk to me about my garden and my daughter when I am anxious."},
		"communication":          {"Hard of hearing", "Face me and speak clearly; I lip-read."},
		"mental-health":          {"Low mood in winter", "I enjoy the music group and visits from the church."},
		"sleep":                  {"Wakes at night", "A warm drink and the radio help me settle."},
		"social-and-spiritual":   {"Anglican; enjoys hymns", "I would like the vicar to visit on Sundays."},
		"end-of-life":            {"Wishes discussed with family", "I want to stay here with the people who know me."},
	}
	noteTexts = []string{"Ate most of lunch and enjoyed the soup.", "Settled well after a warm drink; slept through.", "Walked to the garden with support; in good spirits.", "Daughter visited in the afternoon.", "Declined breakfast; will offer again mid-morning.", "Skin on heels checked: intact.", "Joined the music group and sang along.", "A little confused this evening; reassured and settled."}
)

// NHSNumber returns the i-th valid number of the test range 999 000 0000 up.
// (skipping the one in eleven whose check digit is impossible).
func NHSNumber(i int) string {
	for n := i; ; n++ {
		nine := fmt.Sprintf("999%06d", n%1000000)
		if d, ok := nhs.CheckDigit(nine); ok {
			return nine + string('0'+d)
		}
	}
}

// Person is one synthetic resident's identity.
func Person(rng *rand.Rand, i int, now time.Time) record.Identity {
	sex := "female"
	given := givenF[rng.Intn(len(givenF))]
	if rng.Intn(3) == 0 {
		sex, given = "male", givenM[rng.Intn(len(givenM))]
	}
	born := now.AddDate(-(72 + rng.Intn(28)), -rng.Intn(12), -rng.Intn(28))
	id := record.Identity{
		NHSNumber: NHSNumber(i * 11), NHSVerification: "01", GivenName: given, FamilyName: families[rng.Intn(len(families))],
		DateOfBirth: born.Format(record.DateLayout), Sex: sex, Room: fmt.Sprint(1 + i), GPPractice: "Y99999",
		CareCoordinator: "Sam Senior", Language: "English", ConsentBasis: "explicit", ConsentDate: now.AddDate(0, -6, 0).Format(record.DateLayout),
	}
	if rng.Intn(4) == 0 {
		id.PreferredName = given[:3]
	}
	return id
}

// Certifier is the organisation key that signs the demo staff's
// certificates, so the demo's decisions verify wherever that key is
// trusted: the relay's own key for `syncd demo`, a key of the demo
// computer's own for an offline demo. Each demo author is certified once.
type Certifier struct {
	Key ed25519.PrivateKey
	Org string // the organisation named in the certificates

	mu      sync.Mutex
	signers map[string]record.KeySigner
}

// NewCertifier returns a Certifier over key.
func NewCertifier(key ed25519.PrivateKey, org string) *Certifier {
	return &Certifier{Key: key, Org: org, signers: map[string]record.KeySigner{}}
}

// Trust verifies what the certifier's staff sign.
func (c *Certifier) Trust() *cert.Trust {
	return cert.NewTrust(c.Key.Public().(ed25519.PublicKey), nil)
}

// Editor returns a signing editor for a.
func (c *Certifier) Editor(a record.Author) *record.Editor {
	c.mu.Lock()
	s, ok := c.signers[a.UserID]
	if !ok {
		pub, priv := cert.NewKey()
		from := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
		crt := cert.Certificate{ID: cert.NewID(), Org: c.Org, Staff: a.UserID, Name: a.Name, Role: string(a.Role),
			Registration: a.RegNo, PublicKey: pub, ValidFrom: from, ValidUntil: from.AddDate(20, 0, 0)}.Sign(c.Key)
		s = record.KeySigner{Cert: &crt, Key: priv}
		c.signers[a.UserID] = s
	}
	c.mu.Unlock()
	ed, err := record.NewEditor(a, record.Rules{NHS: nhs.Demo, Trust: c.Trust()})
	if err != nil {
		panic(err) // the demo authors are valid
	}
	ed.Signer = s
	return ed
}

// Authors used for demo changes, certified by c.
func Authors(device string, c *Certifier) (carer, senior, gp *record.Editor) {
	carer = c.Editor(record.Author{UserID: "demo-carer", Name: "Casey Carer", Role: record.CareWorker, DeviceID: device})
	senior = c.Editor(record.Author{UserID: "demo-senior", Name: "Sam Senior", Role: record.SeniorCarer, DeviceID: device})
	gp = c.Editor(record.Author{UserID: "demo-gp", Name: "Dr Ada Quill", Role: record.GP, RegNo: "GMC 7000001", DeviceID: device})
	return
}

// Resident is one synthetic resident's two documents.
type Resident = record.NewDocs

// NewResident makes resident i of a home: identity, contacts, care plan,
// advance wishes, decisions and some notes. notes bounds the timeline.
func NewResident(home string, i int, seed int64, notes int, now time.Time, c *Certifier) (Resident, error) {
	rng := rand.New(rand.NewSource(seed*1000 + int64(i)))
	carer, senior, gp := Authors("demo-device", c)
	// The record as the demo finds it was written before the last two
	// shifts (the plan when the GP made it), each note at its own time: a
	// handover of this shift finds this shift's notes, not the whole
	// record.
	at := func(t time.Time) func() time.Time { return func() time.Time { return t } }
	admitted := now.AddDate(0, 0, -2)
	carer.Rules.Now, senior.Rules.Now, gp.Rules.Now = at(admitted), at(admitted), at(admitted)
	ident := Person(rng, i, now)
	// Admitted up to about two and a half years ago, consenting then
	// (drawn from their own source, so that the rest of the resident stays
	// as it was).
	hist := rand.New(rand.NewSource(seed*131 + int64(i)))
	created := now.AddDate(0, 0, -(120 + hist.Intn(800)))
	ident.ConsentDate = created.Format(record.DateLayout)
	senior.Rules.Now = at(created)
	docs, err := senior.NewResident(home, ident)
	senior.Rules.Now = at(admitted)
	if err != nil {
		return docs, err
	}
	rec := docs.Record
	// Contacts: a daughter or son who is attorney, a GP.
	child := []string{"Jane", "Susan", "Peter", "David", "Helen"}[rng.Intn(5)]
	att, err := senior.AddContact(rec, record.Contact{Kind: "personal", Name: child + " " + ident.FamilyName, Relationship: "child",
		Role: "attorney", CallOrder: 1, PhoneDay: fmt.Sprintf("020 7946 %04d", rng.Intn(10000)), PhoneNight: fmt.Sprintf("07700 900%03d", rng.Intn(1000)),
		CallAtNight: rng.Intn(2) == 0, LPARegistered: true, LPACertificate: "Office safe"})
	if err != nil {
		return docs, err
	}
	if _, err := senior.AddContact(rec, record.Contact{Kind: "professional", Name: "Larch Medical Practice", Role: "gp", Organisation: "Y99999",
		PhoneDay: "0118 496 0000"}); err != nil {
		return docs, err
	}
	if rng.Intn(3) > 0 {
		if _, err := senior.AddAlert(rec, record.Alert{Text: alerts[rng.Intn(len(alerts))], Since: now.AddDate(0, -2, 0).Format(record.DateLayout)}); err != nil {
			return docs, err
		}
	}
	// Reviews as a home keeps them: most in date, a few due this week, a
	// few overdue. The care plan is reviewed together, monthly (the
	// "resident of the day"); an overdue resident has a domain or two left
	// behind. The end-of-life plan was made or last reviewed up to three
	// months ago. Drawn from their own source, so that the rest of the
	// resident stays as it was.
	rv := rand.New(rand.NewSource(seed*7919 + int64(i)))
	base, late := 8+rv.Intn(20), -1
	switch roll := rv.Intn(100); {
	case roll < 7:
		late = rv.Intn(len(record.Domains))
	case roll < 20:
		base = rv.Intn(6)
	}
	planAgo := 10 + rv.Intn(65)
	switch roll := rv.Intn(100); {
	case roll < 6:
		planAgo = 93 + rv.Intn(20)
	case roll < 16:
		planAgo = 86 + rv.Intn(5)
	}
	planMade := now.AddDate(0, 0, -planAgo)
	gp.Rules.Now = func() time.Time { return planMade }
	for n, d := range record.Domains {
		s := supports[d]
		days := base + rng.Intn(40)%3 // the domains over three days
		if n == late || n == (late+5)%len(record.Domains) && late%2 == 0 {
			days = -1 - rv.Intn(9)
		}
		due := now.AddDate(0, 0, days).Format(record.DateLayout)
		e := record.CarePlanEntry{Domain: d, Need: s[0], Level: record.NeedLevels[rng.Intn(3)], Goal: "Stay comfortable and safe", Support: s[1],
			PleaseDo: "Ask before helping", PleaseDont: "Rush me", ReviewDue: due, Reviewer: "Sam Senior", AgreedWith: "Resident and " + child}
		if d == "eating-and-drinking" {
			e.ScoreTool, e.Score, e.ScoreDate = "MUST", int64(rng.Intn(3)), now.AddDate(0, 0, -10).Format(record.DateLayout)
		}
		if d == "skin" {
			e.ScoreTool, e.Score, e.ScoreDate = "Waterlow", int64(10+rng.Intn(12)), now.AddDate(0, 0, -10).Format(record.DateLayout)
		}
		if err := senior.UpdateCarePlan(rec, e); err != nil {
			return docs, err
		}
	}
	// Advance wishes and decisions.
	w := record.Wishes{Summary: "Frailty with vascular dementia; two admissions last winter.", Proxy: "present", ProxyType: "LPA health and welfare",
		ProxyWho: child + " " + ident.FamilyName, MostValue: "Being at home here, my family, the garden.", MostFear: "Going back into hospital.",
		PlaceOfCare: "care-home", AnticipatoryMedsAt: "Locked cabinet, nurses' station"}
	if err := senior.UpdateWishes(rec, w); err != nil {
		return docs, err
	}
	w.Capacity, w.Involvement, w.InvolvementDate = "does-not-have", "B", planMade.Format(record.DateLayout)
	w.ClinicianName, w.ClinicianRole, w.ClinicianReg, w.ClinicianAt = "Dr Ada Quill", "GP", "GMC 7000001", planMade.UTC().Format(time.RFC3339)
	w.CPRDecisionDate, w.PlanStatus, w.PlanApprover = planMade.Format(record.DateLayout), "published", "Dr Ada Quill"
	if err := gp.UpdateWishes(rec, w); err != nil {
		return docs, err
	}
	cpr := record.CPRNotRecommended
	focus := record.FocusComfort
	if rng.Intn(4) == 0 {
		cpr, focus = record.CPRRecommended, record.FocusBalance
	}
	if _, err := gp.Decide(rec, record.KindCPR, "", cpr, "Discussed with the resident's attorney; frailty and wishes."); err != nil {
		return docs, err
	}
	if _, err := gp.Decide(rec, record.KindFocus, "", focus, ""); err != nil {
		return docs, err
	}
	if _, err := gp.Decide(rec, record.KindCeiling, "", record.Ceiling{Level: "treat-in-care-home", Guidance: "Oral antibiotics and fluids here; hospital only if comfort cannot be kept."}, ""); err != nil {
		return docs, err
	}
	var al record.Allergies
	if rng.Intn(3) == 0 {
		al.Items = []record.Allergy{{Agent: agents[rng.Intn(len(agents))], Reaction: reacts[rng.Intn(len(reacts))], Severity: "moderate", Certainty: "likely"}}
	} else {
		al.NoneKnown = true
	}
	senior.Rules.Now = at(created.AddDate(0, 0, 7)) // asked in their first week
	if _, err := senior.Decide(rec, record.KindAllergies, "", al, "Asked on admission"); err != nil {
		return docs, err
	}
	if _, err := senior.Decide(rec, record.KindPlaceOfDeath, "", record.PlaceOfDeath{First: "care-home", Second: "hospice"}, "Resident's wish, with family"); err != nil {
		return docs, err
	}
	if _, err := gp.Decide(rec, record.KindAttorney, att, record.AttorneyAuthority{LifeSustaining: rng.Intn(2) == 0}, "LPA seen"); err != nil {
		return docs, err
	}
	if _, err := senior.Decide(rec, record.KindADRT, "", record.ADRT{Exists: "no"}, ""); err != nil {
		return docs, err
	}
	senior.Rules.Now = at(admitted)
	for n := 0; n < notes; n++ {
		when := now.Add(-time.Duration(notes-n)*7*time.Hour + 390*time.Minute)
		carer.Rules.Now = at(when)
		if _, err := carer.AddNote(docs.Timeline, record.Note{Kind: record.NoteKindNote, Text: noteTexts[rng.Intn(len(noteTexts))], EventAt: record.Timestamp(when)}); err != nil {
			return docs, err
		}
	}
	return docs, nil
}

// AddAdviceCalls adds to each resident's timeline up to three calls to the
// advice line over the last year, with the outcomes such calls have: most
// managed in the home, some a GP visit, a few a 999 call or a conveyance.
func (h *Home) AddAdviceCalls(seed int64, now time.Time, c *Certifier) error {
	for i, r := range h.Residents {
		if err := adviceCalls(r, rand.New(rand.NewSource(seed*977+int64(i))), now, c); err != nil {
			return err
		}
	}
	return nil
}

func adviceCalls(docs Resident, rng *rand.Rand, now time.Time, c *Certifier) error {
	nurse := c.Editor(record.Author{UserID: "demo-advice", Name: "Nurse Bo Lind", Role: record.AdviceClinician, RegNo: "NMC 12A3456E", DeviceID: "demo-advice-line"})
	for k := rng.Intn(4); k > 0; k-- {
		when := now.AddDate(0, 0, -1-rng.Intn(360)).Add(-time.Duration(rng.Intn(12)) * time.Hour)
		nurse.Rules.Now = func() time.Time { return when }
		outcome := []string{"self-care", "self-care", "self-care", "self-care", "gp", "gp", "999", "conveyed"}[rng.Intn(8)]
		call := &record.AdviceCall{Method: "phone", Caller: "Sam Senior", CallerRelation: "senior carer",
			Concern: []string{"fall", "more confused", "short of breath", "not eating"}[rng.Intn(4)], Advice: "Observe; call back if worse",
			Outcome: outcome}
		if _, err := nurse.AddNote(docs.Timeline, record.Note{Kind: record.NoteKindAdviceCall, Text: "Call from the home", Call: call,
			EventAt: record.Timestamp(when)}); err != nil {
			return err
		}
	}
	return nil
}

// AddFormer adds k former residents who died in the last year, most where
// they wished to (a home's reports count deaths and their place), to the
// home's directory.
func (h *Home) AddFormer(home string, k int, seed int64, now time.Time, c *Certifier) error {
	_, senior, _ := Authors("demo-device", c)
	senior.Rules.Now = func() time.Time { return now }
	for j := 0; j < k; j++ {
		r, err := NewResident(home, 1000+j, seed, 2, now, c)
		if err != nil {
			return err
		}
		rec, err := record.Read(r.Record, nil)
		if err != nil {
			return err
		}
		ident := rec.Identity
		ident.Status, ident.StatusDate = record.StatusDied, now.AddDate(0, 0, -10-j*45).Format(record.DateLayout)
		ident.PlaceOfDeath = "care-home"
		if j%3 == 2 {
			ident.PlaceOfDeath = "hospital"
		}
		if err := senior.UpdateIdentity(r.Record, ident); err != nil {
			return err
		}
		if _, err := senior.Reconcile(h.Directory, r.Record); err != nil {
			return err
		}
		h.Residents = append(h.Residents, r)
	}
	return nil
}

// Home is a synthetic care home: its directory and residents.
type Home struct {
	DirectoryID docid.ID
	Directory   *crdt.Doc
	Residents   []Resident
}

// NewHome makes a care home's directory with n residents.
func NewHome(home, name string, n, notes int, seed int64, now time.Time, c *Certifier) (*Home, error) {
	_, senior, _ := Authors("demo-device", c)
	senior.Rules.Now = func() time.Time { return now }
	dir, id, err := senior.NewDirectory(home, name)
	if err != nil {
		return nil, err
	}
	h := &Home{DirectoryID: id, Directory: dir}
	for i := 0; i < n; i++ {
		r, err := NewResident(home, i, seed, notes, now, c)
		if err != nil {
			return nil, err
		}
		if _, err := senior.Reconcile(dir, r.Record); err != nil {
			return nil, err
		}
		h.Residents = append(h.Residents, r)
	}
	return h, nil
}
