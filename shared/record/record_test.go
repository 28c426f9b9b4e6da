package record

import (
	"errors"
	"strings"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/nhs"
)

var testNow = time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC)

func rules() Rules {
	return Rules{NHS: nhs.Demo, Now: func() time.Time { return testNow }, Trust: testTrust}
}

func editor(t testing.TB, name string, role Role) *Editor {
	t.Helper()
	a := Author{UserID: "u-" + strings.ToLower(strings.ReplaceAll(name, " ", "-")), Name: name, Role: role, DeviceID: "dev-" + name}
	if role.Clinician() {
		a.RegNo = "GMC 7000001"
	}
	e, err := NewEditor(a, rules())
	if err != nil {
		t.Fatalf("NewEditor(%s): %v", name, err)
	}
	e.Signer = certify(a)
	return e
}

func identity() Identity {
	return Identity{
		NHSNumber: "9990000018", NHSVerification: "01", GivenName: "Edith", FamilyName: "Marlow",
		PreferredName: "Edie", DateOfBirth: "1931-04-02", Sex: "female", Room: "12", GPPractice: "E85001",
	}
}

func newResident(t testing.TB, e *Editor) *crdt.Doc {
	return newDocs(t, e).Record
}

func newDocs(t testing.TB, e *Editor) NewDocs {
	t.Helper()
	docs, err := e.NewResident("home-1", identity())
	if err != nil {
		t.Fatalf("NewResident: %v", err)
	}
	return docs
}

func readTimeline(t testing.TB, doc *crdt.Doc) *Timeline {
	t.Helper()
	tl, err := ReadTimeline(doc)
	if err != nil {
		t.Fatal(err)
	}
	if len(tl.Problems) > 0 {
		t.Fatalf("timeline problems: %v", tl.Problems)
	}
	return tl
}

func read(t testing.TB, doc *crdt.Doc) *Record {
	t.Helper()
	r, err := Read(doc, testTrust)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if len(r.Problems) > 0 {
		t.Fatalf("Read problems on a Haven-written record: %v", r.Problems)
	}
	return r
}

func sync(t testing.TB, docs ...*crdt.Doc) {
	t.Helper()
	for _, a := range docs {
		for _, b := range docs {
			if err := a.Merge(b); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestNewResidentReadsBack(t *testing.T) {
	e := editor(t, "Sam Senior", SeniorCarer)
	docs := newDocs(t, e)
	doc := docs.Record
	r := read(t, doc)
	if r.Timeline != docs.TimelineID {
		t.Fatalf("record names timeline %v, want %v", r.Timeline, docs.TimelineID)
	}
	if tl := readTimeline(t, docs.Timeline); tl.Resident != docs.RecordID || tl.ID != docs.TimelineID || tl.Home != "home-1" {
		t.Fatalf("timeline = %+v, want it to name the record and home", tl)
	}
	want := identity()
	want.Status = StatusActive
	if r.Identity != want {
		t.Fatalf("Identity = %+v, want %+v", r.Identity, want)
	}
	if r.Home != "home-1" || r.Schema != SchemaVersion || r.ID.String() == "" {
		t.Fatalf("Home %q schema %d id %v", r.Home, r.Schema, r.ID)
	}
	if len(r.CarePlan) != len(Domains) {
		t.Fatalf("care plan has %d domains, want %d", len(r.CarePlan), len(Domains))
	}
	if s := r.Decision(KindCPR, ""); len(s.Entries) != 0 || s.Conflict() {
		t.Fatalf("new record has CPR entries: %+v", s)
	}
	if len(doc.Heads()) != 1 {
		t.Fatalf("creation made %d heads, want one change", len(doc.Heads()))
	}
}

func TestUpdateWritesOnlyChangedFieldsAsOneChange(t *testing.T) {
	e := editor(t, "Sam Senior", SeniorCarer)
	doc := newResident(t, e)
	id := read(t, doc).Identity
	id.Room = "14"
	id.PreferredName = "Edith"
	before, _ := doc.Changes()
	if err := e.UpdateIdentity(doc, id); err != nil {
		t.Fatal(err)
	}
	after, _ := doc.Changes()
	if len(after) != len(before)+1 {
		t.Fatalf("update made %d changes, want 1", len(after)-len(before))
	}
	h, err := History(doc, "identity.room")
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 2 || h[1].Op != "identity" || h[1].By.Name != "Sam Senior" || h[1].By.Role != SeniorCarer || h[1].By.DeviceID != "dev-Sam Senior" {
		t.Fatalf("History(identity.room) = %+v, want creation then Sam Senior's update", h)
	}
	if got := strings.Join(h[1].Fields, ","); got != "identity.preferredName,identity.room" {
		t.Fatalf("update wrote fields %s, want only the two changed", got)
	}
	if h, _ := History(doc, "identity.dateOfBirth"); len(h) != 1 {
		t.Fatalf("History(identity.dateOfBirth) = %d changes, want only the creation", len(h))
	}
	// No change, no commit.
	if err := e.UpdateIdentity(doc, id); err != nil {
		t.Fatal(err)
	}
	if again, _ := doc.Changes(); len(again) != len(after) {
		t.Fatal("an identical update made a change")
	}
}

func TestConcurrentFieldEditsMerge(t *testing.T) {
	e1 := editor(t, "Sam Senior", SeniorCarer)
	e2 := editor(t, "Mo Manager", HomeManager)
	a := newResident(t, e1)
	b, _ := a.Fork()
	id1 := read(t, a).Identity
	id1.Room = "3"
	id2 := id1
	id2.Room = "12"
	id2.Language = "Welsh"
	if err := e1.UpdateIdentity(a, id1); err != nil {
		t.Fatal(err)
	}
	if err := e2.UpdateIdentity(b, id2); err != nil {
		t.Fatal(err)
	}
	sync(t, a, b)
	ra, rb := read(t, a), read(t, b)
	if ra.Identity != rb.Identity || ra.Identity.Room != "3" || ra.Identity.Language != "Welsh" {
		t.Fatalf("merged identity a=%+v b=%+v, want room 3 and Welsh on both", ra.Identity, rb.Identity)
	}
}

func TestConcurrentCPRDecisionsConflictUntilSuperseded(t *testing.T) {
	gp := editor(t, "Dr Ada Quill", GP)
	other := editor(t, "Dr Sam Okafor", GP)
	a := newResident(t, gp)
	b, _ := a.Fork()
	if _, err := gp.Decide(a, KindCPR, "", CPRNotRecommended, "frailty; discussed with family"); err != nil {
		t.Fatal(err)
	}
	if _, err := other.Decide(b, KindCPR, "", CPRRecommended, "resident's wish on the call"); err != nil {
		t.Fatal(err)
	}
	sync(t, a, b)
	for _, doc := range []*crdt.Doc{a, b} {
		r := read(t, doc)
		s := r.Decision(KindCPR, "")
		if !s.Conflict() {
			t.Fatalf("concurrent CPR decisions merged into %+v, want a conflict", s.Current)
		}
		summary := s.ConflictSummary(func(e Entry) string { return Label(e.Text()) })
		for _, want := range []string{"Dr Ada Quill", "Dr Sam Okafor", "CPR attempts NOT recommended", "CPR attempts recommended"} {
			if !strings.Contains(summary, want) {
				t.Fatalf("conflict summary %q does not name %q", summary, want)
			}
		}
		if _, ok := s.Settled(); ok {
			t.Fatal("a conflicting decision reads as settled")
		}
		if got := r.Conflicts(); len(got) != 1 || got[0].Kind != KindCPR {
			t.Fatalf("Conflicts() = %+v, want just CPR", got)
		}
	}
	// A clinician who sees the conflict resolves it on one copy; after sync both settle.
	id, err := gp.Decide(b, KindCPR, "", CPRNotRecommended, "reviewed with the resident and daughter")
	if err != nil {
		t.Fatal(err)
	}
	sync(t, a, b)
	for _, doc := range []*crdt.Doc{a, b} {
		s := read(t, doc).Decision(KindCPR, "")
		e, ok := s.Settled()
		if !ok || e.ID != id || e.Text() != CPRNotRecommended || len(e.Supersedes) != 2 {
			t.Fatalf("after resolution current = %+v, want the resolving entry superseding both", s.Current)
		}
		if len(s.Entries) != 3 {
			t.Fatalf("history lost entries: %d, want 3", len(s.Entries))
		}
	}
}

func TestRoleRules(t *testing.T) {
	carer := editor(t, "Cam Carer", CareWorker)
	senior := editor(t, "Sam Senior", SeniorCarer)
	gp := editor(t, "Dr Ada Quill", GP)
	ig := editor(t, "Ivy Gov", IGLead)
	docs := newDocs(t, senior)
	doc, tl := docs.Record, docs.Timeline
	cases := []struct {
		name string
		err  error
	}{
		{"care worker records CPR", func() error { _, err := carer.Decide(doc, KindCPR, "", CPRNotRecommended, "x"); return err }()},
		{"senior carer records CPR", func() error { _, err := senior.Decide(doc, KindCPR, "", CPRNotRecommended, "x"); return err }()},
		{"senior carer sets ceiling", func() error {
			_, err := senior.Decide(doc, KindCeiling, "", Ceiling{Level: "ward-based-care"}, "x")
			return err
		}()},
		{"care worker edits identity", carer.UpdateIdentity(doc, identity())},
		{"IG lead adds a note", func() error {
			_, err := ig.AddNote(tl, Note{Kind: NoteKindNote, Text: "x"})
			return err
		}()},
		{"senior carer records an advice call", func() error {
			_, err := senior.AddNote(tl, Note{Kind: NoteKindAdviceCall, Call: &AdviceCall{}})
			return err
		}()},
		{"senior carer changes capacity", func() error {
			w := read(t, doc).Wishes
			w.Capacity = "has"
			return senior.UpdateWishes(doc, w)
		}()},
	}
	for _, c := range cases {
		if !errors.Is(c.err, ErrNotPermitted) {
			t.Errorf("%s: error = %v, want ErrNotPermitted", c.name, c.err)
		}
	}
	if s := read(t, doc).Decision(KindCPR, ""); len(s.Entries) != 0 {
		t.Fatalf("refused decisions reached the document: %+v", s.Entries)
	}
	// What is permitted works.
	if _, err := gp.Decide(doc, KindCPR, "", CPRNotRecommended, "frailty"); err != nil {
		t.Fatalf("GP records CPR: %v", err)
	}
	if _, err := carer.AddNote(tl, Note{Kind: NoteKindNote, Text: "Ate well at lunch."}); err != nil {
		t.Fatalf("care worker adds a note: %v", err)
	}
	if _, err := senior.Decide(doc, KindAllergies, "", Allergies{NoneKnown: true}, "asked on admission"); err != nil {
		t.Fatalf("senior carer records no known allergies: %v", err)
	}
	w := read(t, doc).Wishes
	w.MostValue = "Being in the garden"
	if err := senior.UpdateWishes(doc, w); err != nil {
		t.Fatalf("senior carer records what matters: %v", err)
	}
}

func TestClinicianNeedsRegistration(t *testing.T) {
	_, err := NewEditor(Author{UserID: "u", Name: "Dr No Reg", Role: GP, DeviceID: "d"}, rules())
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "registration") {
		t.Fatalf("NewEditor(GP without registration) = %v, want a registration error", err)
	}
}

func TestNotesAreNeverDeleted(t *testing.T) {
	senior := editor(t, "Sam Senior", SeniorCarer)
	carer := editor(t, "Cam Carer", CareWorker)
	other := editor(t, "Cy Carer", CareWorker)
	doc := newDocs(t, senior).Timeline
	id, err := carer.AddNote(doc, Note{Kind: NoteKindNote, Text: "Wrong resident: fell in corridor."})
	if err != nil {
		t.Fatal(err)
	}
	if err := other.MarkEnteredInError(doc, id, "not mine"); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("another care worker marking it = %v, want ErrNotPermitted", err)
	}
	if err := carer.MarkEnteredInError(doc, id, ""); !errors.Is(err, ErrInvalid) {
		t.Fatalf("no reason = %v, want ErrInvalid", err)
	}
	if err := carer.MarkEnteredInError(doc, id, "written in the wrong record"); err != nil {
		t.Fatal(err)
	}
	n, ok := readTimeline(t, doc).Note(id)
	if !ok || n.Status != NoteEnteredInError || n.Text != "Wrong resident: fell in corridor." || n.ErrorBy != "Cam Carer" {
		t.Fatalf("note after entered-in-error = %+v, %v; want kept with status and who", n, ok)
	}
	if err := carer.MarkEnteredInError(doc, "nope", "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown note = %v, want ErrNotFound", err)
	}
}

func TestAttorneyAuthorityIsPerAttorney(t *testing.T) {
	mgr := editor(t, "Mo Manager", HomeManager)
	doc := newResident(t, mgr)
	att, err := mgr.AddContact(doc, Contact{Kind: "personal", Name: "Jane Marlow", Relationship: "daughter", Role: "attorney", PhoneDay: "020 7946 0000", LPARegistered: true})
	if err != nil {
		t.Fatal(err)
	}
	nok, err := mgr.AddContact(doc, Contact{Kind: "personal", Name: "Tom Marlow", Role: "next-of-kin", PhoneDay: "020 7946 0001"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := mgr.Decide(doc, KindAttorney, nok, AttorneyAuthority{LifeSustaining: true}, "LPA seen"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("authority for a non-attorney = %v, want ErrNotFound", err)
	}
	if _, err := mgr.Decide(doc, KindAttorney, att, AttorneyAuthority{LifeSustaining: true}, "LPA section 5 signed"); err != nil {
		t.Fatal(err)
	}
	r := read(t, doc)
	e, ok := r.Decision(KindAttorney, att).Settled()
	var v AttorneyAuthority
	if !ok || e.Decode(&v) != nil || !v.LifeSustaining {
		t.Fatalf("attorney authority = %+v %v, want life-sustaining", e, ok)
	}
	if len(r.Decision(KindAttorney, nok).Entries) != 0 {
		t.Fatal("authority leaked to another contact")
	}
}

func TestCarePlanReview(t *testing.T) {
	senior := editor(t, "Sam Senior", SeniorCarer)
	doc := newResident(t, senior)
	entry := CarePlanEntry{Domain: "mobility-and-falls", Need: "Unsteady when tired", Goal: "No falls", Support: "I like my frame within reach.", ScoreTool: "MUST", Score: 1, ScoreDate: "2026-11-01", ReviewDue: "2026-12-01"}
	if err := senior.UpdateCarePlan(doc, entry); err != nil {
		t.Fatal(err)
	}
	if err := senior.MarkReviewed(doc, "mobility-and-falls", "2026-11-01"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("review due in the past = %v, want ErrInvalid", err)
	}
	if err := senior.MarkReviewed(doc, "mobility-and-falls", "2026-12-22"); err != nil {
		t.Fatal(err)
	}
	got := read(t, doc).CarePlanFor("mobility-and-falls")
	if got.Goal != "No falls" || got.UpdatedBy != "Sam Senior" || got.LastReviewed != "2026-11-22" || got.ReviewDue != "2026-12-22" || got.LastReviewedBy != "Sam Senior" {
		t.Fatalf("care plan entry = %+v", got)
	}
}

func TestDirectoryStaysConsistent(t *testing.T) {
	mgr := editor(t, "Mo Manager", HomeManager)
	dir, _, err := mgr.NewDirectory("home-1", "Larch House")
	if err != nil {
		t.Fatal(err)
	}
	docs, err := mgr.AddResident(dir, identity())
	if err != nil {
		t.Fatal(err)
	}
	rec, id := docs.Record, docs.RecordID
	d, _ := ReadDirectory(dir)
	if len(d.Residents) != 1 || d.Residents[0].ID != id.String() || d.Residents[0].FamilyName != "Marlow" || d.Residents[0].Status != StatusActive {
		t.Fatalf("directory after add = %+v", d.Residents)
	}
	ident := read(t, rec).Identity
	ident.FamilyName = "Marlow-Hughes"
	ident.Room = "7"
	if err := mgr.UpdateResident(dir, rec, ident); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Discharge(dir, rec, StatusDischarged, "2026-11-20", ""); err != nil {
		t.Fatal(err)
	}
	d, _ = ReadDirectory(dir)
	if e := d.Residents[0]; e.FamilyName != "Marlow-Hughes" || e.Room != "7" || e.Status != StatusDischarged {
		t.Fatalf("directory after rename and discharge = %+v", e)
	}
	// Two devices rename concurrently: each document resolves the conflict on
	// its own, so the directory may disagree with the record until Reconcile.
	a2, b2 := dir, mustFork(t, dir)
	ra, rb := rec, mustFork(t, rec)
	i1, i2 := read(t, ra).Identity, read(t, rb).Identity
	i1.FamilyName, i2.FamilyName = "Hughes", "Marlowe"
	if err := mgr.UpdateResident(a2, ra, i1); err != nil {
		t.Fatal(err)
	}
	if err := editor(t, "Sam Senior", SeniorCarer).UpdateResident(b2, rb, i2); err != nil {
		t.Fatal(err)
	}
	sync(t, a2, b2)
	sync(t, ra, rb)
	if _, err := mgr.Reconcile(a2, ra); err != nil {
		t.Fatal(err)
	}
	sync(t, a2, b2)
	d, _ = ReadDirectory(b2)
	if got, want := d.Residents[0].FamilyName, read(t, rb).Identity.FamilyName; got != want {
		t.Fatalf("after reconcile directory says %q, record says %q", got, want)
	}
	if changed, err := mgr.Reconcile(b2, rb); err != nil || changed {
		t.Fatalf("second Reconcile = %v, %v; want nothing to do", changed, err)
	}
	// A record from another home is refused.
	other, _ := mgr.NewResident("home-2", identity())
	if _, err := mgr.Reconcile(dir, other.Record); err == nil {
		t.Fatal("Reconcile listed another home's resident")
	}
}

func mustFork(t testing.TB, d *crdt.Doc) *crdt.Doc {
	t.Helper()
	f, err := d.Fork()
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestReadToleratesForeignDocuments(t *testing.T) {
	doc := crdt.New()
	_, err := doc.Change("from a JS client", testNow, func(w *crdt.Writer) error {
		if err := w.Set("resident", "type"); err != nil {
			return err
		}
		if err := w.Set(map[string]any{"givenName": int64(7), "familyName": "Lowe", "room": []any{"a"}}, "identity"); err != nil {
			return err
		}
		return w.Set(map[string]any{"cpr": map[string]any{"e1": map[string]any{"value": `"cpr-recommended"`, "supersedes": "oops"}}}, "decisions")
	})
	if err != nil {
		t.Fatal(err)
	}
	r, err := Read(doc, testTrust)
	if err != nil {
		t.Fatal(err)
	}
	if r.Identity.FamilyName != "Lowe" {
		t.Fatalf("good field lost: %+v", r.Identity)
	}
	want := []string{"decisions.cpr.e1.supersedes: wrong type", "id: missing or malformed", "identity.givenName: wrong type", "identity.room: wrong type", "timeline: missing or malformed"}
	if strings.Join(r.Problems, "|") != strings.Join(want, "|") {
		t.Fatalf("Problems = %q, want %q", r.Problems, want)
	}
	s := r.Decision(KindCPR, "")
	if len(s.Current) != 0 || len(s.Unverified) != 1 || !errors.Is(s.Unverified[0].Reason, ErrMalformedEntry) {
		t.Fatalf("unreadable decision shown as current %+v, unverified %+v; it must be listed as unverified only", s.Current, s.Unverified)
	}
	h, err := History(doc, "")
	if err != nil || len(h) != 1 || h[0].Op != "external" || !strings.HasPrefix(h[0].Who(doc.Actor()), "unknown client") {
		t.Fatalf("History of a foreign change = %+v, %v", h, err)
	}
}
