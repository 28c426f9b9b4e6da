package record

import (
	"encoding/json"
	"strings"
	"time"

	"haven/shared/crdt"
)

// Change is one entry of a record's history.
type Change struct {
	Hash   crdt.Hash
	Actor  string // the Automerge actor that made it
	At     time.Time
	By     Author // Name is empty for changes Haven did not write
	Op     string
	Fields []string
}

// Who names the author for display; changes from other clients show their
// actor, which is all that is known about them.
func (c Change) Who(actor string) string {
	if c.By.Name != "" {
		return c.By.Name + " (" + c.By.Role.Label() + ")"
	}
	return "unknown client " + actor
}

// History lists the changes that wrote field (a dotted path such as
// "identity.room", "carePlan.skin" or "decisions.cpr"; a prefix matches
// everything beneath it; "" matches every change), oldest first.
func History(doc *crdt.Doc, field string) ([]Change, error) {
	all, err := doc.Changes()
	if err != nil {
		return nil, err
	}
	var out []Change
	for _, c := range all {
		var meta ChangeMeta
		if json.Unmarshal([]byte(c.Message), &meta) != nil {
			meta = ChangeMeta{Op: "external", By: Author{DeviceID: c.Actor}}
		}
		if field != "" && !touches(meta.Fields, field) {
			continue
		}
		out = append(out, Change{Hash: c.Hash, Actor: c.Actor, At: c.Time, By: meta.By, Op: meta.Op, Fields: meta.Fields})
	}
	return out, nil
}

func touches(fields []string, field string) bool {
	for _, f := range fields {
		if f == field || strings.HasPrefix(f, field+".") || strings.HasPrefix(field, f+".") {
			return true
		}
	}
	return false
}
