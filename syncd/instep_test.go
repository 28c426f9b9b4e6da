package main

import (
	"fmt"
	"testing"

	"haven/shared/crdt"
	"haven/shared/docid"
)

// TestRestartedRelayAnswersOffersWithoutLoading: devices coming back to a
// relay that restarted offer it every document they hold. Those they hold
// exactly as the relay does are answered without a CRDT worker loading
// any of them (each would cost a load per device, a region's worth at
// once): the devices are confirmed in step, the workers hold no document,
// and the next edit still reaches the other device, as does one made
// while the relay was down.
func TestRestartedRelayAnswersOffersWithoutLoading(t *testing.T) {
	data := t.TempDir()
	p := startRelay(t, data, anyPort)
	home := idRE.FindString(p.admin("create-home", "Larch House"))
	a := newDevice(t, "a", p.enroll(home, "PC A"), p.url())
	b := newDevice(t, "b", p.enroll(home, "PC B"), p.url())
	waitOnline(t, a, b)
	var ids []docid.ID
	for i := range 4 {
		docs := a.newResident(home, fmt.Sprint("Marlow ", i))
		ids = append(ids, docs.RecordID, docs.TimelineID)
	}
	for _, id := range ids {
		b.client.Request(id)
	}
	waitFor(t, "a's residents confirmed and held by b", func() bool {
		for _, id := range ids {
			if !a.client.Synced(id) || !b.has(id) {
				return false
			}
		}
		return true
	})
	changed := ids[2]
	unchanged := len(ids) - 1

	p.stop()
	waitFor(t, "devices to notice the relay is gone", func() bool { return !a.online() && !b.online() })
	a.edit(changed, func(doc *crdt.Doc) error {
		id := a.record(changed).Identity
		id.Room = "22"
		return a.ed.UpdateIdentity(doc, id)
	})
	p = startRelay(t, data, p.addr)
	waitOnline(t, a, b)
	inStep := func() bool {
		for _, d := range []*device{a, b} {
			for _, id := range ids {
				if !d.client.Synced(id) {
					return false
				}
			}
		}
		return true
	}
	waitFor(t, "both devices confirmed in step", inStep)
	waitFor(t, "b to receive the edit a made while the relay was down", func() bool {
		return b.record(changed).Identity.Room == "22"
	})
	m, err := p.r.Metrics()
	if err != nil {
		t.Fatal(err)
	}
	// Each device's unchanged residents, at least: a device may hold more
	// (its home's directory), and b's copy of the changed one is in step
	// again once the edit reached it.
	if got := m["haven_relay_in_step_answers_total"]; got < float64(2*unchanged) {
		t.Errorf("%v offers answered in step, want at least %d (the two devices' unchanged documents)", got, 2*unchanged)
	}
	if got := m["haven_relay_worker_open_documents"]; got > 1 {
		t.Errorf("the workers hold %v documents after the devices came back, want the changed one at most", got)
	}

	a.edit(ids[0], func(doc *crdt.Doc) error {
		id := a.record(ids[0]).Identity
		id.Room = "7"
		return a.ed.UpdateIdentity(doc, id)
	})
	waitFor(t, "b to receive a's next edit", func() bool { return b.record(ids[0]).Identity.Room == "7" })
}
