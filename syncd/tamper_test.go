package main

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/wire"
)

// TestJavaScriptTamperingIsRefused: an unmodified automerge-repo client
// holding a valid credential of the resident's own care home tries, each
// from a fresh copy, every way of making a forged resuscitation decision
// show as settled: deleting the newest CPR entry, adding a copy of the GP's
// entry with the value flipped that supersedes the rest, rewriting the value
// inside an existing entry, an entry signed with a certificate revoked
// before it was signed, a care worker's certificate signing a CPR decision,
// and an entry certified by another organisation's key. The relay refuses
// each with an error naming the rule, counts it, and stores and forwards
// nothing of it: a fresh client then reads exactly the decisions the GP
// signed, and the Go desktop still reads the GP's as settled.
func TestJavaScriptTamperingIsRefused(t *testing.T) {
	needInterop(t)
	w := setup(t)
	p := w.relay
	gp := newDevice(t, "gp-pc", p.enroll(w.homeA, "Nurses' station"), p.url())
	waitFor(t, "online", gp.online)
	gp.certify(p)
	docs := gp.newResident(w.homeA, "Marlow")
	for _, v := range []string{record.CPRRecommended, record.CPRNotRecommended} {
		gp.edit(docs.RecordID, func(doc *crdt.Doc) error {
			_, err := gp.ed.Decide(doc, record.KindCPR, "", v, "discussed with the resident and her daughter")
			return err
		})
	}
	waitFor(t, "the relay to hold the decisions", func() bool { return gp.client.Synced(docs.RecordID) })
	settled, ok := gp.record(docs.RecordID).Decision(record.KindCPR, "").Settled()
	if !ok || settled.Text() != record.CPRNotRecommended {
		t.Fatalf("the GP's decision does not read as settled: %+v", settled)
	}

	// Certificates the attacker might hold: a care worker's, and a GP's
	// that was revoked (a leaver's).
	carer := newDevice(t, "carer-pc", p.enroll(w.homeA, "Office PC"), p.url())
	carer.ed.Author.Role, carer.ed.Author.RegNo = record.CareWorker, ""
	carer.certify(p)
	leaver := newDevice(t, "leaver-pc", p.enroll(w.homeA, "Locum laptop"), p.url())
	leaver.certify(p)
	leaverCert := leaver.ed.Signer.(record.KeySigner).Cert
	p.admin("staff", "revoke", leaverCert.ID)
	// The revocation reaches every connected device at once, not at its
	// next connection.
	waitFor(t, "the revocation to reach the connected desktops", func() bool {
		_, gpKnows := gp.currentTrust().RevokedAt(leaverCert.ID)
		_, carerKnows := carer.currentTrust().RevokedAt(leaverCert.ID)
		return gpKnows && carerKnows
	})

	id := docs.RecordID.String()
	entryJSON := func(e record.Entry) string { b, _ := json.Marshal(e); return string(b) }
	signed := func(s record.KeySigner, value string) record.Entry {
		e := record.Entry{ID: record.NewID(), Value: `"` + value + `"`, At: record.Timestamp(time.Now()), Reason: "forged",
			Supersedes: []string{settled.ID}, Cert: s.Cert}
		e.Sig = s.Sign(record.EntrySigningBytes(id, record.KindCPR, e))
		return e
	}
	flipped := settled
	flipped.ID, flipped.Value, flipped.Supersedes = record.NewID(), `"`+record.CPRRecommended+`"`, []string{settled.ID}
	rewritten := settled
	rewritten.Value = `"` + record.CPRRecommended + `"`
	foreign := func() record.Entry {
		pub, priv := cert.NewKey()
		_, otherOrg := cert.NewKey()
		c := cert.Certificate{ID: cert.NewID(), Org: w.homeA, Staff: "staff-x", Name: "Dr Ada Quill", Role: "gp", Registration: "GMC 7000001",
			PublicKey: pub, ValidFrom: time.Now().Add(-time.Hour), ValidUntil: time.Now().Add(time.Hour)}.Sign(otherOrg)
		return signed(record.KeySigner{Cert: &c, Key: priv}, record.CPRRecommended)
	}()
	afterRevocation := signed(leaver.ed.Signer.(record.KeySigner), record.CPRRecommended)
	byCarer := signed(carer.ed.Signer.(record.KeySigner), record.CPRNotRecommended)
	cpr := func(key string) []string { return []string{"decisions", "cpr", key} }

	for _, tc := range []struct {
		name string
		cmd  map[string]any
		code string
	}{
		{"delete the newest CPR entry", map[string]any{"cmd": "delete", "path": cpr(settled.ID)}, wire.RuleCode(record.RuleDecisionDeleted, "")},
		{"add the GP's entry with the value flipped", map[string]any{"cmd": "set", "scalar": true, "path": cpr(flipped.ID), "value": entryJSON(flipped)},
			wire.RuleCode(record.RuleDecisionUnver, "bad-signature")},
		{"rewrite the value inside the entry", map[string]any{"cmd": "set", "scalar": true, "path": cpr(settled.ID), "value": entryJSON(rewritten)},
			wire.RuleCode(record.RuleDecisionRewrite, "")},
		{"sign with a revoked certificate", map[string]any{"cmd": "set", "scalar": true, "path": cpr(afterRevocation.ID), "value": entryJSON(afterRevocation)},
			wire.RuleCode(record.RuleDecisionUnver, "certificate-revoked")},
		{"sign CPR with a care worker's certificate", map[string]any{"cmd": "set", "scalar": true, "path": cpr(byCarer.ID), "value": entryJSON(byCarer)},
			wire.RuleCode(record.RuleDecisionUnver, "role-not-permitted")},
		{"another organisation's key", map[string]any{"cmd": "set", "scalar": true, "path": cpr(foreign.ID), "value": entryJSON(foreign)},
			wire.RuleCode(record.RuleDecisionUnver, "foreign-issuer")},
		// automerge 3 writes a string as collaborative text by default:
		// Haven's documents hold none.
		{"an entry as collaborative text", map[string]any{"cmd": "set", "path": cpr(flipped.ID), "value": entryJSON(flipped)},
			wire.RuleCode(record.RuleSchema, "")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := startJS(t, "js", tokenURL(p, p.enroll(w.homeA, "JS "+tc.name).Credential))
			js.run("doc", map[string]any{"cmd": "find", "id": id})
			tc.cmd["id"] = id
			js.run("changed", tc.cmd)
			if e := js.expectError(20 * time.Second); e.Code != tc.code {
				t.Errorf("the relay answered %q (%q), want code %q", e.Code, e.Message, tc.code)
			}
		})
	}

	// Nothing of it was stored or passed on.
	fresh := startJS(t, "fresh js", tokenURL(p, p.enroll(w.homeA, "JS reader").Credential))
	got := fresh.run("doc", map[string]any{"cmd": "find", "id": id}).Doc
	want := gp.plainTree(docs.RecordID)
	if !reflect.DeepEqual(got["decisions"], want["decisions"]) {
		t.Errorf("a fresh client reads decisions %v; the GP signed %v", got["decisions"], want["decisions"])
	}
	if s, ok := gp.record(docs.RecordID).Decision(record.KindCPR, "").Settled(); !ok || s.ID != settled.ID {
		t.Errorf("the GP's desktop reads CPR %+v, want the GP's own decision settled", s)
	}
	m := metrics(t, p)
	for rule, n := range map[string]float64{record.RuleDecisionDeleted: 1, record.RuleDecisionRewrite: 1, record.RuleDecisionUnver: 4} {
		if got := m[`haven_relay_refused_total{reason="rule-`+rule+`"}`]; got < n {
			t.Errorf("metric for %s counts %v refusals, want at least %v", rule, got, n)
		}
	}
}

// expectError waits for an error event from the relay.
func (j *jsClient) expectError(within time.Duration) jsEvent {
	j.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e, ok := <-j.events:
			if !ok {
				j.t.Fatalf("%s exited before an error:\n%s", j.name, j.transcript())
			}
			if e.Event == "error" {
				return e
			}
		case <-deadline:
			j.t.Fatalf("%s: no error within %v:\n%s", j.name, within, j.transcript())
		}
	}
}

// plainTree is a document as JSON would carry it, for comparing with what
// a JavaScript client reads.
func (d *device) plainTree(id docid.ID) map[string]any {
	d.t.Helper()
	h, err := d.repo.Open(id)
	if err != nil {
		d.t.Fatal(err)
	}
	root, err := h.Doc().Root()
	if err != nil {
		d.t.Fatal(err)
	}
	b, _ := json.Marshal(root)
	var out map[string]any
	json.Unmarshal(b, &out)
	return out
}

// TestRelayNamesTheDeviceThatSentAChange: History shows a name as verified
// only where a signature binds it; otherwise it says which enrolled device
// sent the change. The relay records, for each actor new to a document, the
// device whose connection first brought its changes, and tells a device in
// the document's scope (haven-who); one outside the scope learns nothing.
func TestRelayNamesTheDeviceThatSentAChange(t *testing.T) {
	w := setup(t)
	p := w.relay
	a := newDevice(t, "a", p.enroll(w.homeA, "Nurses' station"), p.url())
	b := newDevice(t, "b", p.enroll(w.homeA, "Office PC"), p.url())
	birch := newDevice(t, "birch", p.enroll(w.homeB, "Birch office"), p.url())
	waitFor(t, "online", func() bool { return a.online() && b.online() && birch.online() })
	docs := a.newResident(w.homeA, "Marlow")
	waitFor(t, "the relay to hold the record", func() bool { return a.client.Synced(docs.RecordID) })
	h, _ := a.repo.Open(docs.RecordID)
	actor := h.Doc().Actor()
	ask := func(d *device) wire.Who {
		ch := make(chan wire.Who, 1)
		d.mu.Lock()
		d.onWho = func(w wire.Who) { ch <- w }
		d.mu.Unlock()
		if !d.client.AskWho(docs.RecordID, []string{actor, "00ff"}) {
			t.Fatal("not sent")
		}
		select {
		case w := <-ch:
			return w
		case <-time.After(10 * time.Second):
			t.Fatal("no answer")
		}
		return wire.Who{}
	}
	got := ask(b)
	if d, ok := got.Devices[actor]; !ok || d.Name != "Nurses' station" || len(got.Devices) != 1 {
		t.Fatalf("in scope: %+v; want the actor named as sent by the nurses' station, and nothing for an actor never seen", got)
	}
	if got := ask(birch); len(got.Devices) != 0 {
		t.Fatalf("out of scope: %+v; want nothing", got)
	}
}
