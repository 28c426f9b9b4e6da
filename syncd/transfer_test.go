package main

import (
	"slices"
	"testing"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/wire"
)

// manager makes a device's member of staff a certified home manager.
func (d *device) manager(p *relayProc) {
	d.t.Helper()
	d.ed.Author.Role, d.ed.Author.RegNo = record.HomeManager, ""
	d.certify(p)
}

// TestTransferMovesTheRecordBetweenHomes: a resident moves from Larch House
// to Birch Court. The relay refuses a move to what is not a care home. On
// the Larch manager's signed transfer, the relay makes Birch Court the
// owner of the record and its timeline: Birch's connected computer is sent
// both and writes to them; every Larch computer, and the hub covering
// Larch only, lets them go (at once, or when it next connects, its own
// change refused); nothing of the record reaches Larch afterwards.
func TestTransferMovesTheRecordBetweenHomes(t *testing.T) {
	w := setup(t)
	larch := newDevice(t, "larch-office", w.relay.enroll(w.homeA, "Larch office"), w.relay.url())
	awayEnr := w.relay.enroll(w.homeA, "Larch nurses' station")
	away := newDevice(t, "larch-station", awayEnr, w.relay.url())
	hub := newDevice(t, "hub-laptop", w.relay.enroll(w.hub, "Hub laptop"), w.relay.url())
	birch := newDevice(t, "birch-office", w.relay.enroll(w.homeB, "Birch office"), w.relay.url())
	waitFor(t, "devices online", func() bool { return larch.online() && away.online() && hub.online() && birch.online() })
	larch.manager(w.relay)
	away.manager(w.relay)

	docs := larch.newResident(w.homeA, "Marlow")
	waitFor(t, "the relay to hold the record", func() bool { return larch.client.Synced(docs.RecordID) && larch.client.Synced(docs.TimelineID) })
	both := []docid.ID{docs.RecordID, docs.TimelineID}
	for _, d := range []*device{away, hub} {
		for _, id := range both {
			d.client.Request(id)
		}
	}
	waitFor(t, "the other Larch computer and the hub to hold both", func() bool {
		return away.has(docs.RecordID) && away.has(docs.TimelineID) && hub.has(docs.RecordID) && hub.has(docs.TimelineID)
	})

	// A move to the hub (no care home) is refused, and moves nothing.
	away.edit(docs.RecordID, func(doc *crdt.Doc) error {
		_, err := away.ed.Transfer(doc, w.hub, "North Hub", "moving nearer family")
		return err
	})
	waitFor(t, "the relay to refuse a move to what is not a care home", func() bool {
		return slices.Contains(away.errorCodes(), wire.RuleCode(record.RuleTransfer, record.TransferNotCareHome))
	})
	away.stop() // away, with its copy and its refused change

	larch.edit(docs.RecordID, func(doc *crdt.Doc) error {
		_, err := larch.ed.Transfer(doc, w.homeB, "Birch Court", "moving nearer family")
		return err
	})
	waitFor(t, "Birch Court's computer to be sent the record and its timeline", func() bool {
		return birch.has(docs.RecordID) && birch.has(docs.TimelineID)
	})
	if got := birch.record(docs.RecordID).CurrentHome; got != w.homeB {
		t.Fatalf("Birch reads the record as held by %q", got)
	}
	waitFor(t, "the sending computer and the hub covering Larch only to let both go", func() bool {
		return !larch.has(docs.RecordID) && !larch.has(docs.TimelineID) && !hub.has(docs.RecordID) && !hub.has(docs.TimelineID)
	})
	for _, d := range []*device{larch, hub} {
		if code := d.letGo.code(docs.RecordID); code != wire.CodeTransferred {
			t.Errorf("%s let the record go with code %q; want %q", d.name, code, wire.CodeTransferred)
		}
	}

	// Birch Court writes to both; the relay takes it.
	birch.edit(docs.RecordID, func(doc *crdt.Doc) error {
		_, err := birch.ed.AddAlert(doc, record.Alert{Text: "new room: 4, ground floor"})
		return err
	})
	birch.edit(docs.TimelineID, func(doc *crdt.Doc) error {
		_, err := birch.ed.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: "arrived by car; settled well"})
		return err
	})
	waitFor(t, "the relay to confirm Birch's changes", func() bool {
		return birch.client.Synced(docs.RecordID) && birch.client.Synced(docs.TimelineID)
	})

	// The Larch computer that was away offers its copy: told to let it go;
	// nothing of it reached Birch.
	away.start(awayEnr, w.relay.url())
	waitFor(t, "the Larch computer that was away to let both go", func() bool {
		return !away.has(docs.RecordID) && !away.has(docs.TimelineID)
	})
	<-birch.askUnavailable(docid.New())
	if rec := birch.record(docs.RecordID); len(rec.Transfers) != 1 || rec.Transfers[0].To != w.homeB || len(rec.Alerts) != 1 {
		t.Fatalf("Birch's record: transfers %+v, %d alerts; want the one move and Birch's alert", rec.Transfers, len(rec.Alerts))
	}
	larch.client.Request(docs.RecordID)
	<-larch.askUnavailable(docid.New())
	if larch.has(docs.RecordID) {
		t.Fatal("the record came back to Larch after its move")
	}
}
