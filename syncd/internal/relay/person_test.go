package relay

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"testing"
	"time"

	"haven/assets/demo"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/shared/store"
	"haven/syncd/internal/orgs"
)

// TestPersonRuleKnowsRecordsOlderThanIt: a store written before the relay
// kept NHS numbers (a record and its owner, nothing more) is read once at
// start, so a second record of its person is refused from the first
// moment, in another home or the same one, while the record itself keeps
// its number.
func TestPersonRuleKnowsRecordsOlderThanIt(t *testing.T) {
	dir := t.TempDir()
	key := bytes.Repeat([]byte{5}, 32)
	st, err := store.Open(dir, store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := orgs.New(st)
	reg.Key = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{6}, ed25519.SeedSize))
	ctx := context.Background()
	larch, _ := reg.CreateHome(ctx, "Larch House", "")
	birch, _ := reg.CreateHome(ctx, "Birch Court", "")
	c := demo.NewCertifier(reg.Key, larch.ID)
	res, err := demo.NewResident(larch.ID, 3, 1, 1, time.Now(), c)
	if err != nil {
		t.Fatal(err)
	}
	// As an older relay stored it: the owner, then the document.
	if err := st.Put(ctx, OwnerNamespace, res.RecordID.String(), []byte(larch.ID)); err != nil {
		t.Fatal(err)
	}
	r := repo.New(st, repo.Options{})
	if _, err := r.Create(ctx, res.RecordID, res.Record); err != nil {
		t.Fatal(err)
	}
	r.Close()

	s, err := New(Config{Store: st, Orgs: reg})
	if err != nil {
		t.Fatal(err)
	}
	h := host{s}
	nhsNo := record.NHSNumberOf(res.Record)
	if nhsNo == "" {
		t.Fatal("the demo record has no NHS number")
	}
	if rule, detail := h.Person(docid.New().String(), birch.ID, nhsNo); rule != record.RulePersonElsewhere || detail != larch.ID {
		t.Errorf("another home's second record: rule %q detail %q, want %q naming %s", rule, detail, record.RulePersonElsewhere, larch.ID)
	}
	if rule, _ := h.Person(docid.New().String(), larch.ID, nhsNo); rule != record.RulePersonTwice {
		t.Errorf("a second record in the same home: rule %q, want %q", rule, record.RulePersonTwice)
	}
	if rule, _ := h.Person(res.RecordID.String(), larch.ID, nhsNo); rule != "" {
		t.Errorf("the record itself was refused its own number: %q", rule)
	}
	if rule, _ := h.Person(docid.New().String(), birch.ID, demo.NHSNumber(123456)); rule != "" {
		t.Errorf("a record of someone else was refused: %q", rule)
	}
	// A record made before the rule with the same number holds it when the
	// first changes its own.
	older := docid.New().String()
	for older < res.RecordID.String() { // so the first record is the number's holder
		older = docid.New().String()
	}
	s.mu.Lock()
	s.owners[older] = larch.ID
	s.notePersonLocked(older, nhsNo)
	s.notePersonLocked(res.RecordID.String(), demo.NHSNumber(123467))
	s.mu.Unlock()
	if rule, _ := h.Person(docid.New().String(), birch.ID, nhsNo); rule != record.RulePersonElsewhere {
		t.Errorf("after the first holder changed its number, a second record of the person still held by another: rule %q", rule)
	}
}
