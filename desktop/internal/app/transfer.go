package app

import (
	"cmp"
	"context"
	"encoding/json"
	"slices"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/wire"
)

// A resident who moves to another care home takes their record with them
// (record.Transfer): the manager of the home holding it signs the move,
// offline if need be; the relay moves the record and its timeline when it
// takes the change, and this computer lets its copies go. The region's
// care homes come with the relay's trust messages and are kept here, so
// the choice of home works offline too.

// MovedWords head the front sheet's alert of a resident moved from this
// home whose record this computer still holds; the receiving home's name
// follows.
const MovedWords = "Moved to another home: this computer lets the record go when the relay takes the move. Now held by "

// keyHomes (under nsTrust): the region's care homes, as last heard.
const keyHomes = "care-homes"

// noteHomesLocked keeps the care homes a trust message names. Caller holds
// a.mu; a message without them (an older relay) keeps what was known.
func (a *App) noteHomesLocked(hs []wire.HomeName) {
	if len(hs) == 0 || slices.Equal(hs, a.homes) {
		return
	}
	a.homes = slices.Clone(hs)
	b, _ := json.Marshal(hs)
	if err := a.st.Put(context.Background(), nsTrust, keyHomes, b); err != nil {
		a.log.Error("saving the region's care homes", "err", err)
	}
}

// loadHomesLocked reads the care homes kept. Caller holds a.mu.
func (a *App) loadHomesLocked() {
	if b, err := a.st.Get(nsTrust, keyHomes); err == nil {
		json.Unmarshal(b, &a.homes)
	}
}

// TransferHomes are the care homes a resident of this computer's home may
// move to, by name: every other care home the relay named.
func (a *App) TransferHomes() []wire.HomeName {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []wire.HomeName
	for _, h := range a.homes {
		if h.ID != a.dev.Org {
			out = append(out, h)
		}
	}
	slices.SortFunc(out, func(x, y wire.HomeName) int { return cmp.Compare(x.Name, y.Name) })
	return out
}

// Transfer moves a resident to another care home, for a reason. The
// record's history keeps the move, signed; the relay does the rest.
func (a *App) Transfer(id docid.ID, to, reason string) (Saved, error) {
	var name string
	for _, h := range a.TransferHomes() {
		if h.ID == to {
			name = h.Name
		}
	}
	if name == "" {
		return Saved{}, &Problem{Message: "Choose the care home the resident is moving to.", Fields: map[string]string{"home": "not a care home this computer knows"}}
	}
	return a.change(id, id, "transfer", func(ed *record.Editor, doc *crdt.Doc) error {
		_, err := ed.Transfer(doc, to, name, reason)
		return err
	})
}

// demoOtherHomes are the imaginary care homes an offline demonstration
// offers to move a resident to.
var demoOtherHomes = []wire.HomeName{{ID: "home-demo-birch", Name: "Birch Court (demo)"}, {ID: "home-demo-cedar", Name: "Cedar Lodge (demo)"}}
