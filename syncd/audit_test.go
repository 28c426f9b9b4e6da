package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"haven/shared/cert"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/wire"
	"haven/syncd/internal/admin"
	"haven/syncd/internal/orgs"
	"haven/syncd/internal/relay"
)

// auditLog reads the relay's audit log through syncd admin audit -json.
func auditLog(t *testing.T, p *relayProc) []orgs.AuditEvent {
	t.Helper()
	var out []orgs.AuditEvent
	sc := bufio.NewScanner(strings.NewReader(p.admin("audit", "-json")))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var l admin.AuditLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("audit -json line %q: %v", sc.Text(), err)
		}
		out = append(out, l.Event)
	}
	return out
}

// deviceEvents keeps the events a device reported (not the relay's own).
func deviceEvents(all []orgs.AuditEvent, device string) []orgs.AuditEvent {
	var out []orgs.AuditEvent
	for _, e := range all {
		if e.Device == device && e.DeviceSeq != 0 {
			out = append(out, e)
		}
	}
	return out
}

// sendAudit sends a batch of events numbered from first and returns the
// relay's acknowledgement: the highest number it holds.
func (d *device) sendAudit(first uint64, evs ...wire.AuditEvent) uint64 {
	d.t.Helper()
	for i := range evs {
		if evs[i].Seq == 0 {
			evs[i].Seq = first + uint64(i)
		}
	}
	b, _ := json.Marshal(evs)
	// The message's count is the batch's last number, as a desktop sends
	// it; the wire carries counts up to 2^53.
	if !d.client.SendAudit(min(evs[len(evs)-1].Seq, 1<<53-1), b) {
		d.t.Fatal("audit batch not sent")
	}
	select {
	case got := <-d.auditAcks:
		return got
	case <-time.After(10 * time.Second):
		d.t.Fatal("no audit acknowledgement")
	}
	return 0
}

func viewEvent(resident docid.ID, user string) wire.AuditEvent {
	return wire.AuditEvent{ID: cert.NewID(), Time: time.Now(), User: user, Role: "senior-carer", Resident: resident.String(), Action: "view-front-sheet"}
}

// signedBy signs e as the device's certified member of staff.
func (d *device) signedBy(enr wire.Enrollment, e wire.AuditEvent) wire.AuditEvent {
	s := d.ed.Signer.(record.KeySigner)
	e.Cert = s.Cert.ID
	e.Sig = s.Sign(e.SigningBytes(enr.Device))
	return e
}

// auditFixture is a relay with a home, one of its devices online, and a
// resident's record the relay holds.
func auditFixture(t *testing.T) (*world, wire.Enrollment, *device, record.NewDocs) {
	t.Helper()
	w := setup(t)
	enr := w.relay.enroll(w.homeA, "Larch nurses' station")
	d := newDevice(t, "nurse-pc", enr, w.relay.url())
	waitFor(t, "online", d.online)
	docs := d.newResident(w.homeA, "Marlow")
	waitFor(t, "the relay to hold the record", func() bool { return d.client.Synced(docs.RecordID) })
	return w, enr, d, docs
}

// A desktop sends audit events again until the relay confirms them (the
// confirmation may be lost, or a second batch may leave before it comes):
// the relay stores each event once.
func TestResentAuditEventsAreStoredOnce(t *testing.T) {
	w, enr, a, docs := auditFixture(t)
	evs := []wire.AuditEvent{viewEvent(docs.RecordID, "u1"), viewEvent(docs.RecordID, "u2"), viewEvent(docs.RecordID, "u3")}
	for i := 0; i < 3; i++ {
		if got := a.sendAudit(1, evs[0], evs[1]); got != 2 {
			t.Fatalf("ack %d, want 2", got)
		}
	}
	if got := a.sendAudit(2, evs[1], evs[2]); got != 3 {
		t.Fatalf("ack %d, want 3", got)
	}
	got := deviceEvents(auditLog(t, w.relay), enr.Device)
	if len(got) != 3 {
		t.Fatalf("%d events stored, want 3: %+v", len(got), got)
	}
	for i, e := range got {
		if e.DeviceSeq != uint64(i+1) || e.EventID != evs[i].ID || e.Owner != w.homeA {
			t.Errorf("event %d stored as %+v", i+1, e)
		}
	}
}

// TestForgedAuditIsMarked: the relay takes the member of staff only from a
// signature by their certificate. An event a device files under another
// person's name, unsigned, dated 2020, with escape codes in it and posing
// as a break-glass access, is stored as the device's claim with each doubt
// named; it is not a break-glass access awaiting review; and no output
// carries its escape codes. A signed event names its signer whatever the
// device claims; a signature replayed as a second event is marked.
func TestForgedAuditIsMarked(t *testing.T) {
	w, enr, d, docs := auditFixture(t)
	p := w.relay
	d.certify(p)

	forged := wire.AuditEvent{ID: cert.NewID(), Time: time.Date(2020, 1, 1, 3, 0, 0, 0, time.UTC), User: "staff-dr-who\x1b[8m",
		Role: "gp", Resident: docs.RecordID.String(), Action: orgs.ActionBreakGlass,
		Detail: "\x1b[2J\x1b[1;1Hall clear\u202e"}
	signed := d.signedBy(enr, viewEvent(docs.RecordID, "staff-someone-else"))
	badSig := signed
	badSig.ID = cert.NewID() // signature no longer covers the event
	replay := signed
	if got := d.sendAudit(1, forged, signed, badSig, replay); got != 4 {
		t.Fatalf("ack %d, want 4", got)
	}
	got := deviceEvents(auditLog(t, p), enr.Device)
	if len(got) != 4 {
		t.Fatalf("%d events stored, want 4", len(got))
	}
	want := []struct {
		user   string
		doubts []string
	}{
		{"", []string{orgs.DoubtUnsigned, orgs.DoubtClockBehind, orgs.DoubtNotByRelay}},
		{d.ed.Author.UserID, nil},
		{"", []string{orgs.DoubtSignature}},
		{d.ed.Author.UserID, []string{orgs.DoubtReplayed}},
	}
	for i, e := range got {
		if e.User != want[i].user || !slices.Equal(e.Doubts, want[i].doubts) {
			t.Errorf("event %d: user %q doubts %v; want %q %v", i+1, e.User, e.Doubts, want[i].user, want[i].doubts)
		}
		if e.Device != enr.Device || e.Org != w.homeA || e.Received.Before(time.Now().Add(-time.Minute)) {
			t.Errorf("event %d: the relay's own facts wrong: %+v", i+1, e)
		}
	}
	if got[0].Claimed != "staff-dr-who\x1b[8m gp" || got[1].Name != d.ed.Author.Name || got[1].Role != string(d.ed.Author.Role) {
		t.Errorf("claim %q, signer %q %q", got[0].Claimed, got[1].Name, got[1].Role)
	}
	if strings.Contains(p.admin("audit", "-unreviewed"), docs.RecordID.String()) {
		t.Error("a device's claimed break-glass is listed for review")
	}
	for _, out := range []string{p.admin("audit"), p.admin("audit", "-unreviewed")} {
		if strings.ContainsAny(out, "\x1b\u202e") {
			t.Errorf("audit output carries a device's control characters: %q", out)
		}
	}
}

// TestAuditCannotBeSilenced: a batch numbered MaxUint64 is refused and
// stores nothing, and the device's real events after it are all stored; a
// batch that skips numbers is refused, and the relay says where it stands.
func TestAuditCannotBeSilenced(t *testing.T) {
	w, enr, d, docs := auditFixture(t)
	ev := func() wire.AuditEvent { return viewEvent(docs.RecordID, "u") }

	wild := ev()
	wild.Seq = math.MaxUint64
	if got := d.sendAudit(0, wild); got != 0 {
		t.Fatalf("after a wild number the relay holds up to %d, want 0", got)
	}
	waitCode(t, d, wire.CodeAuditSequence)
	if got := d.sendAudit(1, ev(), ev(), ev()); got != 3 {
		t.Fatalf("ack %d, want 3", got)
	}
	if got := d.sendAudit(5, ev(), ev()); got != 3 {
		t.Fatalf("after a gap the relay holds up to %d, want 3", got)
	}
	waitCode(t, d, wire.CodeAuditGap)
	if got := d.sendAudit(4, ev(), ev(), ev()); got != 6 {
		t.Fatalf("ack %d, want 6", got)
	}
	got := deviceEvents(auditLog(t, w.relay), enr.Device)
	var seqs []uint64
	for _, e := range got {
		seqs = append(seqs, e.DeviceSeq)
	}
	if !slices.Equal(seqs, []uint64{1, 2, 3, 4, 5, 6}) {
		t.Fatalf("stored numbers %v, want 1 to 6", seqs)
	}
	if out := w.relay.admin("audit", "-verify"); !strings.Contains(out, fmt.Sprintf("%d events", len(auditLog(t, w.relay)))) {
		t.Fatalf("audit -verify: %q", out)
	}
}

// TestAuditFloodIsLimited: a device reporting far more events than a
// desktop makes is held to its bucket (relay.DefaultAuditBurst at once, at
// most 1,000: storing more at once holds up every device's edits): the
// rest are refused with quota/audit and not stored.
func TestAuditFloodIsLimited(t *testing.T) {
	if relay.DefaultAuditBurst > 1000 {
		t.Fatalf("a device may report %d audit events at once by default; at most 1,000", relay.DefaultAuditBurst)
	}
	w, enr, d, docs := auditFixture(t)
	held := uint64(0)
	for batch := 0; batch < 10; batch++ {
		evs := make([]wire.AuditEvent, 1000)
		for i := range evs {
			evs[i] = viewEvent(docs.RecordID, "u")
		}
		held = d.sendAudit(held+1, evs...)
	}
	if burst := uint64(relay.DefaultAuditBurst); held < burst || held >= burst+1000 {
		t.Fatalf("the relay took %d of 10,000 events; want the %d of the burst and no more than a second's refill", held, burst)
	}
	waitCode(t, d, wire.CodeQuotaAudit)
	if n := len(deviceEvents(auditLog(t, w.relay), enr.Device)); uint64(n) != held {
		t.Fatalf("%d events stored, %d acknowledged", n, held)
	}
}

// TestAuditOfARecordMadeOfflineIsKept: an event about a record the relay
// has not received yet (made offline) is acknowledged and held, and stored
// with the record's owner once the record arrives.
func TestAuditOfARecordMadeOfflineIsKept(t *testing.T) {
	w := setup(t)
	enr := w.relay.enroll(w.homeA, "Larch nurses' station")
	d := newDevice(t, "nurse-pc", enr, w.relay.url())
	waitFor(t, "online", d.online)
	docs := d.draftResident(w.homeA, "Marlow")
	future := docs.RecordID
	if got := d.sendAudit(1, viewEvent(future, "u")); got != 1 {
		t.Fatalf("ack %d, want 1", got)
	}
	if n := len(deviceEvents(auditLog(t, w.relay), enr.Device)); n != 0 {
		t.Fatalf("%d events stored before the record arrived; want them held", n)
	}
	d.addResident(docs)
	waitFor(t, "the relay to hold the record", func() bool { return d.client.Synced(docs.RecordID) })
	waitFor(t, "the held event to be stored", func() bool {
		got := deviceEvents(auditLog(t, w.relay), enr.Device)
		return len(got) == 1 && got[0].Owner == w.homeA && got[0].Resident == future.String()
	})
}
