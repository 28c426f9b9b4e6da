package record

import (
	"encoding/json"
	"fmt"
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
	Deps   []crdt.Hash // the changes it was made on top of
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
		ch := changeOf(c)
		if field != "" && !touches(ch.Fields, field) {
			continue
		}
		out = append(out, ch)
	}
	return out, nil
}

// changeOf reads a change's message: who made it, the operation and the
// fields; a change Haven did not write is "external".
func changeOf(c crdt.ChangeInfo) Change {
	var meta ChangeMeta
	if json.Unmarshal([]byte(c.Message), &meta) != nil {
		meta = ChangeMeta{Op: "external", By: Author{DeviceID: c.Actor}}
	}
	return Change{Hash: c.Hash, Actor: c.Actor, At: c.Time, By: meta.By, Op: meta.Op, Fields: meta.Fields, Deps: c.Deps}
}

// After lists the changes that came after heads (whatever their authors'
// clocks say), in causal order, reading only those.
func After(doc *crdt.Doc, heads []crdt.Hash) ([]Change, error) {
	return changesOf(doc.ChangesAfter(heads))
}

// Recent lists the changes made at or after since, newest first, reading
// only those (crdt.Doc.ChangesFrom): what a handover reports.
func Recent(doc *crdt.Doc, since time.Time) ([]Change, error) {
	return changesOf(doc.ChangesFrom(since))
}

func changesOf(cs []crdt.ChangeInfo, err error) ([]Change, error) {
	if err != nil {
		return nil, err
	}
	out := make([]Change, len(cs))
	for i, c := range cs {
		out[i] = changeOf(c)
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

// FieldChange is one field a change wrote: what it held before the change
// and after it, as text ("" for nothing).
type FieldChange struct {
	Field, Before, After string
}

// correctable are the operations that rewrite fields in place, whose
// history shows each field before and after: personal details and consent,
// a contact, an alert's status.
var correctable = map[string]bool{"identity": true, "contact": true, "alert-status": true}

// Corrections lists, for a change that rewrote fields in place, what each
// field it names held before it and after it, read from the document as it
// stood on the change's dependencies and at the change. Other changes
// (creations, decisions, notes, which add and never rewrite) have none.
func Corrections(doc *crdt.Doc, c Change) ([]FieldChange, error) {
	if !correctable[c.Op] || len(c.Fields) == 0 {
		return nil, nil
	}
	before, err := doc.At(c.Deps)
	if err != nil {
		return nil, err
	}
	after, err := doc.At([]crdt.Hash{c.Hash})
	if err != nil {
		return nil, err
	}
	out := make([]FieldChange, 0, len(c.Fields))
	for _, f := range c.Fields {
		path := strings.Split(f, ".")
		b, _, err := before.Get(path...)
		if err != nil {
			return nil, err
		}
		a, _, err := after.Get(path...)
		if err != nil {
			return nil, err
		}
		out = append(out, FieldChange{Field: f, Before: valueText(b), After: valueText(a)})
	}
	return out, nil
}

func valueText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		if x {
			return "yes"
		}
		return "no"
	}
	return fmt.Sprint(v)
}
