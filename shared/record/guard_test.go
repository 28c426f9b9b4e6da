package record

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/docid"
)

// decoded returns the changes doc made since heads, decoded.
func decoded(t testing.TB, doc *crdt.Doc, heads []crdt.Hash) []*crdt.DecodedChange {
	t.Helper()
	raws, err := doc.RawChangesSince(heads)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]*crdt.DecodedChange, len(raws))
	for i, raw := range raws {
		if out[i], err = crdt.DecodeChange(raw); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// guarded is a resident record whose history a guard has checked.
type guarded struct {
	docs  NewDocs
	gp    *Editor
	g     *Guard
	gt    *Guard // the timeline's
	cprID string
}

func newGuarded(t *testing.T) *guarded {
	t.Helper()
	senior := editor(t, "Sam Senior", SeniorCarer)
	gp := editor(t, "Dr Ada Quill", GP)
	docs := newDocs(t, senior)
	first, err := gp.Decide(docs.Record, KindCPR, "", CPRRecommended, "first conversation")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gp.Decide(docs.Record, KindCPR, "", CPRNotRecommended, "frailty; discussed with family"); err != nil {
		t.Fatal(err)
	}
	g, gt := NewGuard(docs.RecordID), NewGuard(docs.TimelineID)
	if err := g.Check(decoded(t, docs.Record, nil), testTrust); err != nil {
		t.Fatalf("honest record history refused: %v", err)
	}
	if _, err := senior.AddNote(docs.Timeline, Note{Kind: NoteKindNote, Text: "settled night"}); err != nil {
		t.Fatal(err)
	}
	if err := gt.Check(decoded(t, docs.Timeline, nil), testTrust); err != nil {
		t.Fatalf("honest timeline history refused: %v", err)
	}
	if g.Type() != TypeResident || gt.Type() != TypeTimeline {
		t.Fatalf("types %q and %q", g.Type(), gt.Type())
	}
	return &guarded{docs: docs, gp: gp, g: g, gt: gt, cprID: first}
}

// try makes a change to a fork of doc and checks it with g; it reports the
// rule broken, or "" if the change passes.
func try(t *testing.T, g *Guard, doc *crdt.Doc, fn func(w *crdt.Writer) error) string {
	t.Helper()
	f, err := doc.Fork()
	if err != nil {
		t.Fatal(err)
	}
	before := f.Heads()
	if _, err := f.Change(`{"v":1,"op":"hostile"}`, testNow, fn); err != nil {
		t.Fatal(err)
	}
	return ruleOf(g.Check(decoded(t, f, before), testTrust))
}

func ruleOf(err error) string {
	var re *RuleError
	if errors.As(err, &re) {
		if re.Detail != "" {
			return re.Rule + "/" + re.Detail
		}
		return re.Rule
	}
	if err != nil {
		return "error: " + err.Error()
	}
	return ""
}

func TestGuardRefusesTampering(t *testing.T) {
	s := newGuarded(t)
	rec := s.docs.Record
	r := read(t, rec)
	cur, _ := r.Decision(KindCPR, "").Settled()
	entryJSON := func(e Entry) string { b, _ := json.Marshal(e); return string(b) }

	flipped := cur
	flipped.ID = NewID()
	flipped.Value = `"` + CPRRecommended + `"`
	flipped.Supersedes = []string{cur.ID}
	rewritten := cur
	rewritten.Value = `"` + CPRRecommended + `"`
	fresh := Entry{ID: NewID(), Value: `"` + CPRRecommended + `"`, At: Timestamp(testNow), Reason: "new", Supersedes: []string{cur.ID}}
	gpSigner := s.gp.Signer.(KeySigner)
	fresh.Cert = gpSigner.Cert
	fresh.Sig = gpSigner.Sign(EntrySigningBytes(idOf(rec), KindCPR, fresh))

	carer := editor(t, "Casey Carer", CareWorker)
	carerSigned := func() Entry {
		s := certify(carer.Author)
		e := Entry{ID: NewID(), Value: `"cpr-not-recommended"`, At: Timestamp(testNow), Reason: "x", Supersedes: []string{cur.ID}, Cert: s.Cert}
		e.Sig = s.Sign(EntrySigningBytes(idOf(rec), KindCPR, e))
		return e
	}()
	foreign := func() Entry {
		pub, priv := cert.NewKey()
		_, orgKey := cert.NewKey()
		c := cert.Certificate{ID: cert.NewID(), Org: "org-other", Staff: "u-x", Name: "Dr Other", Role: "gp", Registration: "GMC 7000003",
			PublicKey: pub, ValidFrom: testNow.AddDate(-1, 0, 0), ValidUntil: testNow.AddDate(1, 0, 0)}.Sign(orgKey)
		e := Entry{ID: NewID(), Value: `"cpr-recommended"`, At: Timestamp(testNow), Reason: "x", Supersedes: []string{cur.ID}, Cert: &c}
		e.Sig = KeySigner{Cert: &c, Key: priv}.Sign(EntrySigningBytes(idOf(rec), KindCPR, e))
		return e
	}()

	for _, tc := range []struct {
		name string
		fn   func(w *crdt.Writer) error
		want string
	}{
		{"delete the newest CPR entry", func(w *crdt.Writer) error { return w.Delete("decisions", "cpr", cur.ID) }, RuleDecisionDeleted},
		{"copy the GP's entry with the value flipped", func(w *crdt.Writer) error {
			return w.Set(entryJSON(flipped), "decisions", "cpr", flipped.ID)
		}, RuleDecisionUnver + "/bad-signature"},
		{"rewrite the value inside the entry", func(w *crdt.Writer) error {
			return w.Set(entryJSON(rewritten), "decisions", "cpr", cur.ID)
		}, RuleDecisionRewrite},
		{"a care worker's certificate signs CPR", func(w *crdt.Writer) error {
			return w.Set(entryJSON(carerSigned), "decisions", "cpr", carerSigned.ID)
		}, RuleDecisionUnver + "/role-not-permitted"},
		{"another organisation's key", func(w *crdt.Writer) error { return w.Set(entryJSON(foreign), "decisions", "cpr", foreign.ID) },
			RuleDecisionUnver + "/foreign-issuer"},
		{"an entry that is not JSON", func(w *crdt.Writer) error { return w.Set("DNACPR", "decisions", "cpr", "x1") }, RuleDecisionBad},
		{"an entry written twice in one change", func(w *crdt.Writer) error {
			return errors.Join(w.Set(entryJSON(fresh), "decisions", "cpr", fresh.ID), w.Set(entryJSON(flipped), "decisions", "cpr", fresh.ID))
		}, RuleDecisionRewrite},
		{"an entry written as a map", func(w *crdt.Writer) error {
			return w.Set(map[string]any{"value": `"cpr-recommended"`}, "decisions", "cpr", "x2")
		}, RuleDecisionBad},
		{"replace the decisions map", func(w *crdt.Writer) error { return w.Set(map[string]any{}, "decisions") }, RuleFixedField},
		{"empty a decision list", func(w *crdt.Writer) error { return w.Set(map[string]any{}, "decisions", "cpr") }, RuleDecisionBad},
		{"move to another home", func(w *crdt.Writer) error { return w.Set("home-2", "home") }, RuleFixedField},
		{"change the type", func(w *crdt.Writer) error { return w.Set("directory", "type") }, RuleFixedField},
		{"delete the identity", func(w *crdt.Writer) error { return w.Delete("identity") }, RuleFixedField},
		{"a list in the record", func(w *crdt.Writer) error { return w.Set([]any{"a"}, "identity", "room") }, RuleSchema},
		// Ordinary fields stay ordinary values.
		{"change the room", func(w *crdt.Writer) error { return w.Set("14", "identity", "room") }, ""},
		{"delete a contact's field", func(w *crdt.Writer) error { return w.Delete("identity", "language") }, ""},
	} {
		if got := try(t, s.g, rec, tc.fn); got != tc.want {
			t.Errorf("%s: rule %q, want %q", tc.name, got, tc.want)
		}
	}
	// A concurrent copy that never saw the entry writes at its key: no pred,
	// but the key was written before.
	same := rewritten
	same.ID = s.cprID
	if got := try(t, s.g, rec, func(w *crdt.Writer) error { return w.Set(entryJSON(same), "decisions", "cpr", s.cprID) }); got != RuleDecisionRewrite {
		t.Errorf("a write at an old entry's key: rule %q, want %q", got, RuleDecisionRewrite)
	}
}

// idOf reads a document's own ID.
func idOf(doc *crdt.Doc) string {
	v, _, _ := doc.Get("id")
	s, _ := v.(string)
	return s
}

func TestGuardTimelineAndHonestEdits(t *testing.T) {
	s := newGuarded(t)
	tl := s.docs.Timeline
	notes := readTimeline(t, tl).Notes
	for _, tc := range []struct {
		name string
		fn   func(w *crdt.Writer) error
		want string
	}{
		{"delete a note", func(w *crdt.Writer) error { return w.Delete("notes", notes[0].ID) }, RuleNoteDeleted},
		{"rewrite a note", func(w *crdt.Writer) error { return w.Set(`{"text":"nothing happened"}`, "notes", notes[0].ID) }, RuleNoteRewrite},
		{"replace the notes", func(w *crdt.Writer) error { return w.Set(map[string]any{}, "notes") }, RuleFixedField},
		{"change the resident", func(w *crdt.Writer) error { return w.Set(docid.New().String(), "resident") }, RuleFixedField},
	} {
		if got := try(t, s.gt, tl, tc.fn); got != tc.want {
			t.Errorf("%s: rule %q, want %q", tc.name, got, tc.want)
		}
	}
	// Honest work through the editor passes, and the guard follows it.
	gp := s.gp
	for _, step := range []func() error{
		func() error {
			_, err := gp.AddNote(tl, Note{Kind: NoteKindNote, Text: "seen on the round"})
			return err
		},
		func() error { return gp.MarkEnteredInError(tl, notes[0].ID, "wrong resident") },
		func() error { return gp.MarkEnteredInError(tl, notes[0].ID, "wrong resident, and wrong day") },
	} {
		before := tl.Heads()
		if err := step(); err != nil {
			t.Fatal(err)
		}
		if err := s.gt.Check(decoded(t, tl, before), testTrust); err != nil {
			t.Fatalf("honest timeline edit refused: %v", err)
		}
	}
	rec := s.docs.Record
	for _, step := range []func() error{
		func() error {
			_, err := gp.AddContact(rec, Contact{Kind: "personal", Name: "Jane Marlow", Role: "attorney", PhoneDay: "020 7946 0001"})
			return err
		},
		func() error {
			_, err := gp.Decide(rec, KindAllergies, "", Allergies{NoneKnown: true}, "asked")
			return err
		},
		func() error { _, err := gp.Decide(rec, KindCPR, "", CPRRecommended, "changed her mind"); return err },
	} {
		before := rec.Heads()
		if err := step(); err != nil {
			t.Fatal(err)
		}
		if err := s.g.Check(decoded(t, rec, before), testTrust); err != nil {
			t.Fatalf("honest record edit refused: %v", err)
		}
	}
	r := read(t, rec)
	att := r.Contacts[0].ID
	before := rec.Heads()
	if _, err := gp.Decide(rec, KindAttorney, att, AttorneyAuthority{LifeSustaining: true}, "LPA seen"); err != nil {
		t.Fatal(err)
	}
	if err := s.g.Check(decoded(t, rec, before), testTrust); err != nil {
		t.Fatalf("attorney decision refused: %v", err)
	}
}

func TestGuardRevokedCertificate(t *testing.T) {
	s := newGuarded(t)
	rec := s.docs.Record
	signer := s.gp.Signer.(KeySigner)
	rev := cert.Revocation{Cert: signer.Cert.ID, At: testNow.Add(time.Minute)}.Sign(testOrgKey)
	revoked := cert.NewTrust(testTrust.Anchor, []cert.Revocation{rev})
	before := rec.Heads()
	cur, _ := read(t, rec).Decision(KindCPR, "").Settled()
	e := Entry{ID: NewID(), Value: `"cpr-recommended"`, At: Timestamp(testNow.Add(time.Hour)), Reason: "after leaving", Supersedes: []string{cur.ID}, Cert: signer.Cert}
	e.Sig = signer.Sign(EntrySigningBytes(idOf(rec), KindCPR, e))
	body, _ := json.Marshal(e)
	if _, err := rec.Change("{}", testNow, func(w *crdt.Writer) error { return w.Set(string(body), "decisions", "cpr", e.ID) }); err != nil {
		t.Fatal(err)
	}
	if got := ruleOf(s.g.Check(decoded(t, rec, before), revoked)); got != RuleDecisionUnver+"/certificate-revoked" {
		t.Errorf("entry signed after revocation: rule %q", got)
	}
	// Entries signed before the revocation stay decisions.
	if _, ok := read(t, rec).Decision(KindCPR, "").Settled(); !ok {
		t.Fatal("no settled CPR before the revocation")
	}
	r, _ := Read(rec, revoked)
	if got := r.Decision(KindCPR, ""); len(got.Current) != 1 || got.Current[0].ID != cur.ID || len(got.Unverified) != 1 {
		t.Errorf("after revocation: current %v, unverified %v; want the earlier entry current and the later one unverified", got.Current, got.Unverified)
	}
}

func TestGuardCreation(t *testing.T) {
	senior := editor(t, "Sam Senior", SeniorCarer)
	docs := newDocs(t, senior)
	g := NewGuard(docs.RecordID)
	if err := g.Check(decoded(t, docs.Record, nil), testTrust); err != nil {
		t.Fatalf("a record made by the editor: %v", err)
	}
	// The same content under another document ID is not this document.
	if got := ruleOf(NewGuard(docid.New()).Check(decoded(t, docs.Record, nil), testTrust)); got != RuleSchema {
		t.Errorf("a copy under another ID: rule %q, want %q", got, RuleSchema)
	}
	// A resident made by hand without its decision lists.
	bare := crdt.New()
	id := docid.New()
	if _, err := bare.Change("", testNow, func(w *crdt.Writer) error {
		return errors.Join(w.Set(int64(1), "schema"), w.Set("resident", "type"), w.Set(id.String(), "id"), w.Set("home-1", "home"),
			w.Set(docid.New().String(), "timeline"), w.Set(map[string]any{}, "identity"))
	}); err != nil {
		t.Fatal(err)
	}
	if got := ruleOf(NewGuard(id).Check(decoded(t, bare, nil), testTrust)); got != RuleSchema {
		t.Errorf("a resident without its containers: rule %q, want %q", got, RuleSchema)
	}
	// A second history merged into a record.
	other := crdt.New()
	if _, err := other.Change("", testNow, func(w *crdt.Writer) error { return w.Set("x", "note") }); err != nil {
		t.Fatal(err)
	}
	before := docs.Record.Heads()
	if err := docs.Record.Merge(other); err != nil {
		t.Fatal(err)
	}
	if got := ruleOf(g.Check(decoded(t, docs.Record, before), testTrust)); got != RuleSecondRoot {
		t.Errorf("a second root change: rule %q, want %q", got, RuleSecondRoot)
	}
	// A plain automerge document may do as it likes, but never become a resident.
	plain := crdt.New()
	if _, err := plain.Change("", testNow, func(w *crdt.Writer) error { return w.Set([]any{"todo"}, "items") }); err != nil {
		t.Fatal(err)
	}
	pg := NewGuard(docid.New())
	if err := pg.Check(decoded(t, plain, nil), testTrust); err != nil || pg.Type() != "" {
		t.Fatalf("a plain document: %v, type %q", err, pg.Type())
	}
	if got := try(t, pg, plain, func(w *crdt.Writer) error { return w.Set("resident", "type") }); got != RuleBecomeHaven {
		t.Errorf("a plain document becoming a resident: rule %q, want %q", got, RuleBecomeHaven)
	}
	if got := try(t, pg, plain, func(w *crdt.Writer) error { return w.Delete("items") }); got != "" {
		t.Errorf("a plain document's own edit: rule %q", got)
	}
}

func TestGuardBatchIsAllOrNothing(t *testing.T) {
	s := newGuarded(t)
	rec := s.docs.Record
	f, _ := rec.Fork()
	before := f.Heads()
	gp := *s.gp
	id, err := gp.Decide(f, KindFocus, "", FocusComfort, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Change("{}", testNow, func(w *crdt.Writer) error { return w.Delete("decisions", "cpr", s.cprID) }); err != nil {
		t.Fatal(err)
	}
	if got := ruleOf(s.g.Check(decoded(t, f, before), testTrust)); got != RuleDecisionDeleted {
		t.Fatalf("batch with a deletion: rule %q", got)
	}
	// The good first change of the refused batch was not taken in: the
	// same entry arriving again on its own is new, not a rewrite.
	f2, _ := rec.Fork()
	b2 := f2.Heads()
	if err := f2.Merge(f); err != nil {
		t.Fatal(err)
	}
	chs := decoded(t, f2, b2)
	if err := s.g.Check(chs[:1], testTrust); err != nil {
		t.Fatalf("entry %s after a refused batch: %v", id, err)
	}
}

// TestGuardProvesHonestChanges: every change Haven's editor makes is proven
// to keep the document loadable (no whole-document check needed); a change
// whose seq skips ahead is not.
func TestGuardProvesHonestChanges(t *testing.T) {
	s := newGuarded(t)
	rec := s.docs.Record
	for _, step := range []func() error{
		func() error {
			return s.gp.UpdateIdentity(rec, Identity{NHSNumber: "9990000018", GivenName: "Edie", FamilyName: "Marlow", DateOfBirth: "1931-04-02", Sex: "female", Status: StatusActive})
		},
		func() error { _, err := s.gp.AddAlert(rec, Alert{Text: "falls risk"}); return err },
		func() error { _, err := s.gp.Decide(rec, KindFocus, "", FocusComfort, ""); return err },
	} {
		before := rec.Heads()
		if err := step(); err != nil {
			t.Fatal(err)
		}
		if err := s.g.Check(decoded(t, rec, before), testTrust); err != nil || !s.g.Proven() {
			t.Fatalf("honest change: %v, proven %v (%s)", err, s.g.Proven(), s.g.unproven)
		}
	}
	// The same guard, a second actor's concurrent change merged in.
	other, _ := rec.Fork()
	if _, err := s.gp.AddAlert(other, Alert{Text: "DoLS in force"}); err != nil {
		t.Fatal(err)
	}
	before := rec.Heads()
	if err := rec.Merge(other); err != nil {
		t.Fatal(err)
	}
	if err := s.g.Check(decoded(t, rec, before), testTrust); err != nil || !s.g.Proven() {
		t.Fatalf("a concurrent change: %v, proven %v (%s)", err, s.g.Proven(), s.g.unproven)
	}
	// A change with its seq rewritten (checksum made good) is not proven.
	f, _ := rec.Fork()
	before = f.Heads()
	if _, err := s.gp.AddAlert(f, Alert{Text: "x"}); err != nil {
		t.Fatal(err)
	}
	c := decoded(t, f, before)[0]
	c.Seq += 3
	if s.g.st.proven(c) == "" {
		t.Fatal("a change whose seq skips ahead is proven")
	}
}

// TestEntrySigningBytesVector pins the canonical encoding a decision entry
// is signed over (documented on EntrySigningBytes): a change to it would
// unmake every decision ever signed, so it must show here first. The
// supersedes IDs are encoded sorted, whatever order the entry lists them in.
func TestEntrySigningBytesVector(t *testing.T) {
	e := Entry{ID: "e1", Value: `"cpr-not-recommended"`, At: "2026-12-06T09:30:00Z", Reason: "frailty",
		Supersedes: []string{"b2", "a1"}, Cert: &cert.Certificate{ID: "crt-0000000000000001"}}
	got := EntrySigningBytes("2MRYccjwdp8aaRmHKUs1dzyF8AGX", KindCPR, e)
	want := cert.Encode([]byte("haven decision entry v1"), []byte("2MRYccjwdp8aaRmHKUs1dzyF8AGX"), []byte("cpr"), []byte(""),
		[]byte("e1"), []byte(`"cpr-not-recommended"`), []byte("2026-12-06T09:30:00Z"), []byte("frailty"),
		cert.EncodeStrings("a1", "b2"), []byte("crt-0000000000000001"))
	if !bytes.Equal(got, want) {
		t.Fatalf("EntrySigningBytes = %x\nwant %x", got, want)
	}
	if hex.EncodeToString(got) != entryVector {
		t.Errorf("the encoding changed:\n got %x\nwant %s", got, entryVector)
	}
}

// entryVector is the test entry's signing bytes, as written when the
// encoding was made.
const entryVector = "0a17686176656e206465636973696f6e20656e7472792076311c324d525963636a776470386161526d484b557331647a794638414758" +
	"036370720002653115226370722d6e6f742d7265636f6d6d656e6465642214323032362d31322d30365430393a33303a30305a07667261696c7479" +
	"0702026131026232146372742d30303030303030303030303030303031"
