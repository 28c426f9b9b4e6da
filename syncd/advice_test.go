package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"haven/shared/cert"
	"haven/shared/client"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/wire"
	"haven/syncd/internal/orgs"
)

// claim is a request's claim signed by the device's certified member of
// staff (or unsigned, when the device has none).
func (d *device) claim(enr wire.Enrollment, action, resident, detail string) wire.AuditEvent {
	e := wire.AuditEvent{ID: cert.NewID(), Time: time.Now(), User: d.ed.Author.UserID, Role: string(d.ed.Author.Role),
		Resident: resident, Action: action, Detail: detail}
	if s, ok := d.ed.Signer.(record.KeySigner); ok && s.Cert != nil {
		e.Cert = s.Cert.ID
		e.Sig = s.Sign(e.SigningBytes(enr.Device))
	}
	return e
}

func refusedCode(err error) string {
	var re *client.RefusedError
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

// TestAdviceLineFetchesNotCopies: an advice-line device holds nothing of
// the region until a clinician finds a resident through the relay and
// opens the record with a reason, which the relay records (signed by the
// clinician's certificate) before the record is sent; then it holds that
// record and its timeline, and nothing else, until the retention after its
// last use runs out. A search names a person or is refused; an opening
// without a reason, or without a certified clinician, is refused.
func TestAdviceLineFetchesNotCopies(t *testing.T) {
	p := startRelay(t, t.TempDir(), anyPort, "-advice-retention", "8s")
	homeA := idRE.FindString(p.admin("create-home", "Larch House"))
	line := idRE.FindString(p.admin("create-advice-line", "Night Line"))
	home := newDevice(t, "larch-pc", p.enroll(homeA, "Larch nurses' station"), p.url())
	adviceEnr := p.enroll(line, "Advice desk 1")
	advice := newDevice(t, "advice-desk", adviceEnr, p.url())
	waitFor(t, "online", func() bool { return home.online() && advice.online() })
	// The home admits two residents through its directory, as the desktop
	// does.
	dirID, err := docid.Parse(idOf(t, p.admin("orgs"), homeA))
	if err != nil {
		t.Fatal(err)
	}
	home.client.Request(dirID)
	waitFor(t, "the home to hold its directory", func() bool { return home.has(dirID) })
	admit := func(family, nhsNo string) record.NewDocs {
		var docs record.NewDocs
		home.edit(dirID, func(doc *crdt.Doc) error {
			var err error
			docs, err = home.ed.AddResident(doc, record.Identity{NHSNumber: nhsNo, GivenName: "Edith", FamilyName: family,
				DateOfBirth: "1931-04-02", Sex: "female", Room: "1"})
			return err
		})
		home.addResident(docs)
		return docs
	}
	marlow := admit("Marlow", "9990000018")
	other := admit("Quince", "9990000026")
	third := admit("Rowan", "9990000034")
	waitFor(t, "the relay to hold the records and directory", func() bool {
		return home.client.Synced(marlow.RecordID) && home.client.Synced(other.RecordID) && home.client.Synced(third.RecordID) &&
			home.client.Synced(dirID)
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Nothing by default: no directories, no records, not even by ID.
	if n, err := advice.client.Bootstrap(ctx, nil); err != nil || n != 0 {
		t.Fatalf("a fresh advice-line device downloaded %d documents (%v); want none", n, err)
	}
	advice.requestUnavailable(marlow.RecordID)
	advice.requestUnavailable(dirID)

	// Search: a person, or nothing.
	advice.certify(p)
	res, err := advice.client.Search(ctx, wire.SearchQuery{ID: "q1", NHSNumber: "999 000 0018"})
	if err != nil || len(res.Matches) != 1 || res.Matches[0].Record != marlow.RecordID.String() {
		t.Fatalf("search by NHS number: %+v, %v", res, err)
	}
	res, err = advice.client.Search(ctx, wire.SearchQuery{ID: "q2", FamilyName: "marlow", DateOfBirth: "1931-04-02"})
	if err != nil || len(res.Matches) != 1 || res.Matches[0].Record != marlow.RecordID.String() || res.Matches[0].HomeName != "Larch House" {
		t.Fatalf("search by name and birth date: %+v, %v", res, err)
	}
	if _, err := advice.client.Search(ctx, wire.SearchQuery{ID: "q3", FamilyName: "Marlow"}); refusedCode(err) != wire.CodeBadRequest {
		t.Fatalf("a surname alone: %v; want %s", err, wire.CodeBadRequest)
	}
	if _, err := home.client.Search(ctx, wire.SearchQuery{ID: "q4", NHSNumber: "9990000018"}); refusedCode(err) != wire.CodeNotPermitted {
		t.Fatalf("a care home's device searched the region: %v", err)
	}

	// Opening: a reason and a certified clinician, or nothing.
	open := func(claim wire.AuditEvent) error {
		_, err := advice.client.Open(ctx, wire.OpenRequest{ID: cert.NewID(), Claim: claim})
		return err
	}
	id := marlow.RecordID.String()
	if err := open(advice.claim(adviceEnr, wire.ActionBreakGlass, id, "call")); refusedCode(err) != wire.CodeNeedsReason {
		t.Fatalf("a one-word reason: %v", err)
	}
	unsigned := advice.claim(adviceEnr, wire.ActionBreakGlass, id, "Call from Larch House about a fall at night")
	unsigned.Sig = nil
	if err := open(unsigned); refusedCode(err) != wire.CodeNotPermitted {
		t.Fatalf("an unsigned opening: %v", err)
	}
	if advice.has(marlow.RecordID) {
		t.Fatal("a refused opening sent the record")
	}
	// A person who withdrew consent to share: found, and said so on opening.
	home.edit(other.RecordID, func(doc *crdt.Doc) error {
		ident := home.record(other.RecordID).Identity
		ident.ConsentWithdrawn = true
		return home.ed.UpdateIdentity(doc, ident)
	})
	waitFor(t, "the relay to hold the withdrawal", func() bool { return home.client.Synced(other.RecordID) })
	if err := open(advice.claim(adviceEnr, wire.ActionBreakGlass, other.RecordID.String(), "Call from Larch House about a fall at night")); refusedCode(err) != wire.CodeNotShared {
		t.Fatalf("opening a record whose consent to share was withdrawn: %v; want %s", err, wire.CodeNotShared)
	}
	if advice.has(other.RecordID) {
		t.Fatal("a record whose consent to share was withdrawn reached the advice line")
	}
	found, err := advice.client.Search(ctx, wire.SearchQuery{ID: "q5", NHSNumber: home.record(other.RecordID).Identity.NHSNumber})
	if err != nil || len(found.Matches) != 1 || !found.Matches[0].NotShared {
		t.Fatalf("searching for a person who withdrew consent to share: %+v, %v; want one match, marked not shared", found, err)
	}
	if err := open(advice.claim(adviceEnr, wire.ActionBreakGlass, id, "Call from Larch House about a fall at night")); err != nil {
		t.Fatal(err)
	}
	// Open returns once the device's repo holds both; has reads its disk,
	// which the repo's writer reaches a moment later.
	waitFor(t, "the opened record and timeline on the device's disk", func() bool {
		return advice.has(marlow.RecordID) && advice.has(marlow.TimelineID)
	})
	var access *orgs.AuditEvent
	for _, e := range auditLog(t, p) {
		if e.Action == wire.ActionBreakGlass && e.Resident == id {
			access = &e
		}
	}
	if access == nil || !access.ByRelay || access.Name != advice.ed.Author.Name || access.Owner != homeA ||
		access.Detail != "Call from Larch House about a fall at night" {
		t.Fatalf("the access is not on record as the relay's, with the clinician and reason: %+v", access)
	}
	advice.requestUnavailable(third.RecordID) // one opening, one resident

	// While kept, the record syncs: the home's change reaches the line.
	home.edit(marlow.RecordID, func(doc *crdt.Doc) error {
		_, err := home.ed.AddAlert(doc, record.Alert{Text: "bed rails up at night"})
		return err
	})
	waitFor(t, "the home's change to reach the advice line", func() bool { return len(advice.record(marlow.RecordID).Alerts) == 1 })

	// Another desk of the line (the same device, a fresh store) gets the
	// record while the grant lasts, and neither gets it once the retention after
	// it was opened (eight seconds here): not listed, not served.
	desk2 := newDevice(t, "advice-desk-2", adviceEnr, p.url())
	waitFor(t, "the second desk online", desk2.online)
	desk2.client.Request(marlow.RecordID)
	waitFor(t, "the second desk to get the opened record", func() bool { return desk2.has(marlow.RecordID) })
	waitFor(t, "the record to go out of the advice line's reach", func() bool {
		ids, err := desk2.client.List(ctx)
		return err == nil && len(ids) == 0
	})
	desk3 := newDevice(t, "advice-desk-3", adviceEnr, p.url())
	waitFor(t, "the third desk online", desk3.online)
	desk3.requestUnavailable(marlow.RecordID)
}

// requestUnavailable asks for a document and expects doc-unavailable.
func (d *device) requestUnavailable(id docid.ID) {
	d.t.Helper()
	ch := make(chan struct{})
	d.mu.Lock()
	d.unavailable[id] = ch
	d.mu.Unlock()
	d.client.Request(id)
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		d.t.Fatalf("request for %s got no doc-unavailable", id)
	}
}

// idOf finds an organisation's directory document ID in syncd admin orgs.
func idOf(t *testing.T, orgsOut, org string) string {
	t.Helper()
	for _, line := range strings.Split(orgsOut, "\n") {
		if strings.Contains(line, org) {
			for _, f := range strings.Fields(line) {
				if _, err := docid.Parse(f); err == nil {
					return f
				}
			}
		}
	}
	t.Fatalf("no directory for %s in:\n%s", org, orgsOut)
	return ""
}

// TestIGLeadReviewsBreakGlass: an information-governance lead, signed in
// with a certificate for the role, lists the accesses awaiting review with
// who, when, why and what, and records a review; a clinician of the same
// organisation cannot; a reviewed access is listed no more.
func TestIGLeadReviewsBreakGlass(t *testing.T) {
	p := startRelay(t, t.TempDir(), anyPort)
	homeA := idRE.FindString(p.admin("create-home", "Larch House"))
	line := idRE.FindString(p.admin("create-advice-line", "Night Line"))
	home := newDevice(t, "larch-pc", p.enroll(homeA, "Larch nurses' station"), p.url())
	adviceEnr := p.enroll(line, "Advice desk 1")
	advice := newDevice(t, "advice-desk", adviceEnr, p.url())
	igEnr := p.enroll(line, "Governance office")
	ig := newDevice(t, "ig-office", igEnr, p.url())
	ig.ed.Author.Role, ig.ed.Author.RegNo = record.IGLead, ""
	waitFor(t, "online", func() bool { return home.online() && advice.online() && ig.online() })
	marlow := home.newResident(homeA, "Marlow")
	waitFor(t, "the relay to hold the record", func() bool { return home.client.Synced(marlow.RecordID) })
	advice.certify(p)
	ig.certify(p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reason := "Call from Larch House: found on the floor at 02:40"
	if _, err := advice.client.Open(ctx, wire.OpenRequest{ID: "o1", Claim: advice.claim(adviceEnr, wire.ActionBreakGlass, marlow.RecordID.String(), reason)}); err != nil {
		t.Fatal(err)
	}
	list, err := ig.client.Review(ctx, wire.ReviewRequest{ID: "r1", Claim: ig.claim(igEnr, wire.ActionReviewList, "", "")})
	if err != nil || len(list.Pending) != 1 {
		t.Fatalf("review list: %+v, %v", list, err)
	}
	got := list.Pending[0]
	if got.Staff != advice.ed.Author.Name || got.Reason != reason || got.Resident != marlow.RecordID.String() ||
		got.Home != "Larch House" || !strings.Contains(got.Device, "Advice desk 1") {
		t.Fatalf("pending access reads %+v", got)
	}
	if _, err := advice.client.Review(ctx, wire.ReviewRequest{ID: "r2", Claim: advice.claim(adviceEnr, wire.ActionReviewList, "", "")}); refusedCode(err) != wire.CodeNotPermitted {
		t.Fatalf("a clinician listed accesses for review: %v", err)
	}
	stale := ig.claim(igEnr, wire.ActionReview, "", "call logged")
	stale.Time = time.Now().Add(-time.Hour)
	if _, err := ig.client.Review(ctx, wire.ReviewRequest{ID: "r3", Seq: got.Seq, Claim: stale}); refusedCode(err) != wire.CodeBadRequest {
		t.Fatalf("a review signed an hour ago: %v", err)
	}
	list, err = ig.client.Review(ctx, wire.ReviewRequest{ID: "r4", Seq: got.Seq, Claim: ig.claim(igEnr, wire.ActionReview, "", "call logged on the advice line at 02:41")})
	if err != nil || len(list.Pending) != 0 {
		t.Fatalf("after the review: %+v, %v", list, err)
	}
	if out := p.admin("audit", "-unreviewed"); !strings.Contains(out, "0 break-glass") {
		t.Fatalf("the operator still sees it awaiting review:\n%s", out)
	}
}
