package main

import (
	"testing"
	"time"

	"haven/assets/demo"
	"haven/shared/crdt"
	"haven/shared/record"
	"haven/shared/wire"
)

// TestOnePersonOneRecordInTheRegion: a record naming an NHS number that
// another record holds is refused at the relay, whichever device (or
// client: the devices here write their documents directly, as the plain
// JavaScript client could, with no desktop check) makes it; by a new
// record or by correcting a number; in another home or the same one; and
// still after the relay restarts. A record keeps the number it has.
func TestOnePersonOneRecordInTheRegion(t *testing.T) {
	data := t.TempDir()
	p := startRelay(t, data, anyPort)
	larch := idRE.FindString(p.admin("create-home", "Larch House"))
	birch := idRE.FindString(p.admin("create-home", "Birch Court"))
	a := newDevice(t, "larch-pc", p.enroll(larch, "Larch office"), p.url())
	b := newDevice(t, "birch-pc", p.enroll(birch, "Birch office"), p.url())
	b2 := newDevice(t, "birch-pc-2", p.enroll(birch, "Birch lounge"), p.url())
	waitFor(t, "devices online", func() bool { return a.online() && b.online() && b2.online() })

	person, other := demo.NHSNumber(910000), demo.NHSNumber(910011)
	marlow := a.draftPerson(larch, "Marlow", person)
	a.addResident(marlow)
	waitFor(t, "the relay to hold Larch's record", func() bool { return a.client.Synced(marlow.RecordID) })

	elsewhere, twice := wire.RuleCode(record.RulePersonElsewhere, ""), wire.RuleCode(record.RulePersonTwice, "")
	count := func(d *device, code string) int {
		n := 0
		for _, c := range d.errorCodes() {
			if c == code {
				n++
			}
		}
		return n
	}
	refused := func(d *device, code string) func() bool {
		n := count(d, code)
		return func() bool { return count(d, code) > n }
	}
	absent := func(what string, rec record.NewDocs) {
		t.Helper()
		select {
		case <-b2.askUnavailable(rec.RecordID):
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: the relay passed on a second record of one person", what)
		}
	}

	// Another home makes a record of the same person.
	second := b.draftPerson(birch, "Marlow", person)
	wait := refused(b, elsewhere)
	b.addResident(second)
	waitFor(t, "the relay to refuse Birch's record of Larch's resident", wait)
	absent("another home", second)

	// The same home makes a second record of its own resident.
	dup := a.draftPerson(larch, "Marlowe", person)
	wait = refused(a, twice)
	a.addResident(dup)
	waitFor(t, "the relay to refuse a second record in one home", wait)

	// A record of someone else, then "corrected" to the person's number.
	quince := b.draftPerson(birch, "Quince", other)
	b.addResident(quince)
	waitFor(t, "the relay to hold Birch's own resident", func() bool { return b.client.Synced(quince.RecordID) })
	wait = refused(b, elsewhere)
	b.edit(quince.RecordID, func(doc *crdt.Doc) error {
		id := b.record(quince.RecordID).Identity
		id.NHSNumber = person
		return b.ed.UpdateIdentity(doc, id)
	})
	waitFor(t, "the correction refused", wait)
	b2.client.Request(quince.RecordID)
	waitFor(t, "a second Birch computer to hold the record", func() bool { return b2.has(quince.RecordID) })
	if got := b2.record(quince.RecordID).Identity.NHSNumber; got != other {
		t.Fatalf("the relay passed on a correction to another home's resident's number: Birch's second computer reads %s", got)
	}

	// A record keeps its own number through every other change.
	a.edit(marlow.RecordID, func(doc *crdt.Doc) error {
		id := a.record(marlow.RecordID).Identity
		id.Room = "14"
		return a.ed.UpdateIdentity(doc, id)
	})
	waitFor(t, "Larch's change to its own resident confirmed", func() bool { return a.client.Synced(marlow.RecordID) })

	// After a restart the relay still knows who holds the number.
	p.stop()
	p = startRelay(t, data, p.addr)
	waitFor(t, "devices back online", func() bool { return b.online() && b2.online() })
	again := b.draftPerson(birch, "Marlow", person)
	wait = refused(b, elsewhere)
	b.addResident(again)
	waitFor(t, "a second record refused after a restart", wait)
	absent("after a restart", again)
}
