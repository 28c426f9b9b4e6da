package record

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"haven/shared/cert"
	"haven/shared/crdt"
)

// staffOf is an editor for a member of staff of organisation org.
func staffOf(t *testing.T, name string, role Role, org string) *Editor {
	t.Helper()
	e := editor(t, name, role)
	pub, priv := cert.NewKey()
	c := cert.Certificate{ID: cert.NewID(), Org: org, Staff: e.Author.UserID, Name: name, Role: string(role),
		Registration: e.Author.RegNo, PublicKey: pub, ValidFrom: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		ValidUntil: time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)}.Sign(testOrgKey)
	e.Signer = KeySigner{Cert: &c, Key: priv}
	return e
}

// transferBody is a transfer entry as e would sign it, to write by hand:
// what another client could send.
func transferBody(t *testing.T, e *Editor, docID, to string, supersedes ...string) (string, string) {
	t.Helper()
	val, _ := json.Marshal(Transfer{To: to, ToName: "Home " + to})
	c := e.Signer.Certificate()
	entry := Entry{ID: NewID(), Value: string(val), Author: CertificateAuthor(c, e.Author.DeviceID), At: Timestamp(testNow),
		Reason: "moving nearer family", Supersedes: append([]string{}, supersedes...), Cert: c}
	entry.Sig = e.Signer.Sign(EntrySigningBytes(docID, KindHome, entry))
	body, _ := json.Marshal(entry)
	return entry.ID, string(body)
}

// TestTransferFollowsOneChain: a record moves home by home, each move
// signed by a manager of the home holding it; every reader and the guard
// agree where it is. Anyone else (another role, another home's manager)
// cannot move it, and the editor says so.
func TestTransferFollowsOneChain(t *testing.T) {
	senior := staffOf(t, "Sam Senior", SeniorCarer, "home-1")
	docs := newDocs(t, senior)
	g := NewGuard(docs.RecordID)
	if err := g.Check(decoded(t, docs.Record, nil), testTrust); err != nil {
		t.Fatal(err)
	}
	if g.Home() != "home-1" {
		t.Fatalf("guard home %q before any move", g.Home())
	}
	gp := staffOf(t, "Dr Ada Quill", GP, "home-1")
	if _, err := gp.Transfer(docs.Record, "home-2", "Birch House", "moving nearer family"); !errors.Is(err, ErrNotPermitted) {
		t.Fatalf("a GP moved the record: %v", err)
	}
	other := staffOf(t, "Ola Other", HomeManager, "home-2")
	if _, err := other.Transfer(docs.Record, "home-3", "Cedar Court", "moving nearer family"); !errors.Is(err, ErrTransfer) {
		t.Fatalf("another home's manager moved the record: %v", err)
	}
	mgr1 := staffOf(t, "Mo Manager", HomeManager, "home-1")
	if _, err := mgr1.Transfer(docs.Record, "home-1", "Larch House", "moving nearer family"); !errors.Is(err, ErrTransfer) {
		t.Fatalf("a move to the home that holds the record: %v", err)
	}
	if _, err := mgr1.Transfer(docs.Record, "home-2", "Birch House", ""); err == nil {
		t.Fatal("a move without a reason")
	}

	heads := docs.Record.Heads()
	first, err := mgr1.Transfer(docs.Record, "home-2", "Birch House", "moving nearer family")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Check(decoded(t, docs.Record, heads), testTrust); err != nil {
		t.Fatalf("an honest move refused: %v", err)
	}
	heads = docs.Record.Heads()
	if _, err := other.Transfer(docs.Record, "home-3", "Cedar Court", "needs nursing care"); err != nil {
		t.Fatalf("the receiving home's manager moves it on: %v", err)
	}
	if err := g.Check(decoded(t, docs.Record, heads), testTrust); err != nil {
		t.Fatalf("an honest second move refused: %v", err)
	}
	rec, err := Read(docs.Record, testTrust)
	if err != nil {
		t.Fatal(err)
	}
	if rec.Home != "home-1" || rec.CurrentHome != "home-3" || g.Home() != "home-3" || CurrentHome(docs.Record, nil) != "home-3" ||
		CurrentHome(docs.Record, testTrust) != "home-3" {
		t.Fatalf("first home %q, current %q, guard %q, CurrentHome %q; want home-1 then home-3 everywhere",
			rec.Home, rec.CurrentHome, g.Home(), CurrentHome(docs.Record, nil))
	}
	if len(rec.Transfers) != 2 || rec.Transfers[0].EntryID != first || rec.Transfers[0].From != "home-1" ||
		rec.Transfers[0].By.Name != "Mo Manager" || rec.Transfers[1].From != "home-2" || rec.Transfers[1].ToName != "Cedar Court" {
		t.Fatalf("transfers %+v", rec.Transfers)
	}
	if len(rec.Problems) > 0 {
		t.Fatalf("problems reading an honest record: %v", rec.Problems)
	}
}

// TestGuardRefusesBadTransfers: what a device with a valid credential and
// its own code could write into a record's transfers, refused with the
// rule it breaks; and a copy altered on a device moves nothing for its
// reader.
func TestGuardRefusesBadTransfers(t *testing.T) {
	senior := staffOf(t, "Sam Senior", SeniorCarer, "home-1")
	docs := newDocs(t, senior)
	id := docs.RecordID.String()
	mgr1 := staffOf(t, "Mo Manager", HomeManager, "home-1")
	mgr2 := staffOf(t, "Ola Other", HomeManager, "home-2")
	gp := staffOf(t, "Dr Ada Quill", GP, "home-1")
	guard := func() *Guard {
		g := NewGuard(docs.RecordID)
		if err := g.Check(decoded(t, docs.Record, nil), testTrust); err != nil {
			t.Fatal(err)
		}
		return g
	}
	put := func(bodies ...string) func(w *crdt.Writer) error {
		return func(w *crdt.Writer) error {
			if err := w.EnsureMap("transfers"); err != nil {
				return err
			}
			for _, b := range bodies {
				var e Entry
				json.Unmarshal([]byte(b), &e)
				if err := w.Set(b, "transfers", e.ID); err != nil {
					return err
				}
			}
			return nil
		}
	}
	_, byGP := transferBody(t, gp, id, "home-2")
	_, byOther := transferBody(t, mgr2, id, "home-3")
	_, toSelf := transferBody(t, mgr1, id, "home-1")
	_, stale := transferBody(t, mgr1, id, "home-2", "no-such-entry")
	_, twoA := transferBody(t, mgr1, id, "home-2")
	_, twoB := transferBody(t, mgr1, id, "home-3")
	var e Entry
	json.Unmarshal([]byte(twoA), &e)
	e.Sig = nil
	b, _ := json.Marshal(e)
	unsigned := string(b)
	for _, c := range []struct {
		name, want string
		fn         func(w *crdt.Writer) error
	}{
		{"signed by a GP", RuleDecisionUnver + "/role-not-permitted", put(byGP)},
		{"signed by another home's manager", RuleTransfer + "/" + TransferNotHolder, put(byOther)},
		{"to the home that holds it", RuleTransfer + "/" + TransferSameHome, put(toSelf)},
		{"superseding what is not the last move", RuleTransfer + "/" + TransferNotLatest, put(stale)},
		{"two moves in one change", RuleTransfer + "/" + TransferNotLatest, put(twoA, twoB)},
		{"unsigned", RuleDecisionUnver + "/unsigned", put(unsigned)},
		{"transfers as a value", RuleTransfer + "/" + TransferMapTwice, func(w *crdt.Writer) error { return w.Set("home-2", "transfers") }},
	} {
		if got := try(t, guard(), docs.Record, c.fn); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}

	// After an honest move: the map cannot be made again, the move cannot
	// be deleted or rewritten, and the next must follow it.
	heads, g := docs.Record.Heads(), guard()
	first, err := mgr1.Transfer(docs.Record, "home-2", "Birch House", "moving nearer family")
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Check(decoded(t, docs.Record, heads), testTrust); err != nil {
		t.Fatal(err)
	}
	_, notAfter := transferBody(t, mgr2, id, "home-3")
	_, byOldHome := transferBody(t, mgr1, id, "home-3", first)
	for _, c := range []struct {
		name, want string
		fn         func(w *crdt.Writer) error
	}{
		{"the map made again", RuleTransfer + "/" + TransferMapTwice, func(w *crdt.Writer) error { return w.Set(map[string]any{}, "transfers") }},
		{"the move deleted", RuleDecisionDeleted, func(w *crdt.Writer) error { return w.Delete("transfers", first) }},
		{"the move rewritten", RuleDecisionRewrite, func(w *crdt.Writer) error { return w.Set(toSelf, "transfers", first) }},
		{"a move not following the last", RuleTransfer + "/" + TransferNotLatest, put(notAfter)},
		{"the old home moving it on", RuleTransfer + "/" + TransferNotHolder, put(byOldHome)},
	} {
		if got := try(t, guard(), docs.Record, c.fn); got != c.want {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}

	// A copy altered on a device: a forged move does not count for its
	// reader, and is named as a problem.
	forged, err := docs.Record.Fork()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := forged.Change(`{"v":1,"op":"hostile"}`, testNow, put(byOther)); err != nil {
		t.Fatal(err)
	}
	rec, err := Read(forged, testTrust)
	if err != nil {
		t.Fatal(err)
	}
	if rec.CurrentHome != "home-2" || len(rec.Problems) == 0 {
		t.Fatalf("a forged move read as current home %q (problems %v); want home-2 and a problem", rec.CurrentHome, rec.Problems)
	}
}

// TestGuardRefusesARecordBornMoved: a record's first change cannot carry
// transfers: it begins at its first home.
func TestGuardRefusesARecordBornMoved(t *testing.T) {
	mgr := staffOf(t, "Mo Manager", HomeManager, "home-1")
	docs, err := mgr.NewResident("home-1", identity())
	if err != nil {
		t.Fatal(err)
	}
	forged := crdt.New()
	root, err := docs.Record.Root()
	if err != nil {
		t.Fatal(err)
	}
	_, body := transferBody(t, mgr, docs.RecordID.String(), "home-2")
	if _, err := forged.Change(`{"v":1,"op":"create-resident"}`, testNow, func(w *crdt.Writer) error {
		for k, v := range root {
			if err := w.Set(v, k); err != nil {
				return err
			}
		}
		var e Entry
		json.Unmarshal([]byte(body), &e)
		return w.Set(map[string]any{e.ID: body}, "transfers")
	}); err != nil {
		t.Fatal(err)
	}
	g := NewGuard(docs.RecordID)
	if got := ruleOf(g.Check(decoded(t, forged, nil), testTrust)); got != RuleTransfer+"/"+TransferMapTwice {
		t.Fatalf("a record created already moved: %q", got)
	}
}
