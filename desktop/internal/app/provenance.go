package app

import (
	"context"
	"encoding/json"

	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/wire"
)

// Which enrolled device sent each change (by its Automerge actor), as the
// relay recorded when the change first reached it: History's honest answer
// to "who" where no signature names a person. Kept in the store
// (nsProvenance: actor → wire.DeviceName) so it holds offline.
const nsProvenance = "provenance"

// provenance returns the devices known for the changes' actors, and the
// actors not known yet (to ask the relay about).
func (a *App) provenance(changes []record.Change) (map[string]wire.DeviceName, []string) {
	known := map[string]wire.DeviceName{}
	var unknown []string
	for _, c := range changes {
		if _, done := known[c.Actor]; done || c.Actor == "" {
			continue
		}
		var d wire.DeviceName
		if b, err := a.st.Get(nsProvenance, c.Actor); err == nil && json.Unmarshal(b, &d) == nil {
			known[c.Actor] = d
			continue
		}
		known[c.Actor] = wire.DeviceName{} // asked once per call
		unknown = append(unknown, c.Actor)
	}
	for _, u := range unknown {
		delete(known, u)
	}
	return known, unknown
}

// onWho keeps the relay's answer and tells the open record to redraw.
func (a *App) onWho(w wire.Who) {
	if len(w.Devices) == 0 {
		return
	}
	batch := map[string][]byte{}
	for actor, d := range w.Devices {
		batch[actor], _ = json.Marshal(d)
	}
	if err := a.st.PutMany(context.Background(), nsProvenance, batch); err != nil {
		a.log.Warn("saving which devices sent changes", "err", err)
		return
	}
	if id, err := docid.Parse(w.Doc); err == nil {
		a.emit(Event{Kind: EventResident, Doc: a.residentOf(id)})
	}
}
