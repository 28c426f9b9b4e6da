package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/docid"
)

// The rules a change must keep, whoever wrote it: checked by the relay
// before it stores or forwards a change, by reading the change's own
// operations (crdt.DecodeChange), so the cost is in proportion to the
// change, never to the document.
//
// For the three document types Haven writes:
//
//   - The first change creates the whole schema (SchemaVersion, type, the
//     document's own ID, home, and every container of the type); no later
//     change may write any of those root keys again, nor start a second
//     history (a change with no dependencies).
//   - Only maps and scalar values: no lists, text, counters or marks.
//   - Resident: decisions are only ever added. An operation in
//     decisions.<kind> must put a string at a key never written before,
//     overwriting nothing, and the entry must verify (VerifyEntry), with
//     everything it supersedes already in its list. Nothing may write the
//     decisions map itself.
//   - Timeline: a note is put once at a new key and never overwritten or
//     deleted; a note's status may change but never be deleted.
//   - Directory: a resident is never removed from the list.
//   - Services (the region's directory of services): created only with
//     home set to Region; each service is one JSON string that reads as
//     a valid Service, or is deleted. Who may write it is the relay's to
//     decide by organisation (RuleReadOnly), since a change names no
//     organisation.
//
// A document of any other type (a plain automerge-repo client's) may do as
// it likes, except become a Haven document: its root "type" can never be
// set to one of Haven's.

// Rule codes: stable, machine-readable names of the rules above.
const (
	RuleSchema          = "schema"              // the first change does not create the type's schema, or a later one writes a kind of value Haven documents never hold
	RuleFixedField      = "fixed-field"         // a later change writes type, home, id, schema or a container of the schema
	RuleSecondRoot      = "second-root"         // a change with no dependencies in a document that exists
	RuleBecomeHaven     = "become-haven"        // a document of another type would take one of Haven's types
	RuleDecisionDeleted = "decision-deleted"    // an operation deletes a decision entry
	RuleDecisionRewrite = "decision-rewritten"  // an operation overwrites an entry, or writes at a key already written
	RuleDecisionBad     = "decision-malformed"  // not an entry: not a string, not JSON, or kinds changed
	RuleDecisionUnver   = "decision-unverified" // an entry that does not verify (Detail: EntryCode)
	RuleNoteDeleted     = "note-deleted"        // a note or its status deleted
	RuleNoteRewrite     = "note-rewritten"      // a note overwritten or written at a key already written
	RuleResidentRemoved = "resident-unlisted"   // a resident removed from a home's directory
	// One person, one record in the region (see PersonRule): the relay
	// checks a resident's NHS number against every record it holds.
	RulePersonElsewhere = "person-elsewhere" // another care home holds this person's record (Detail: that home's organisation ID)
	RulePersonTwice     = "person-twice"     // another record of the same home has this NHS number
	// A region's document is written by some organisations and read by
	// the rest: the relay refuses a change brought by a device that may
	// only read it (a care home's, to the directory of services).
	RuleReadOnly   = "read-only"
	RuleServiceBad = "service-malformed" // a service that is not a string of JSON reading as a valid Service
)

// RuleError is a change that breaks a rule. Its text names the rule and
// the document's path, never a value.
type RuleError struct {
	Rule   string
	Detail string // for decision-unverified, the EntryCode; else ""
	Path   string // where in the document, e.g. "decisions.cpr"
	Change crdt.Hash
}

func (e *RuleError) Error() string {
	rule := e.Rule
	if e.Detail != "" {
		rule += " (" + e.Detail + ")"
	}
	return fmt.Sprintf("change %s breaks rule %s at %s", e.Change.String()[:12], rule, e.Path)
}

// ErrRule is wrapped by every RuleError.
var ErrRule = errors.New("change breaks a rule")

func (e *RuleError) Unwrap() error { return ErrRule }

// Document types.
const (
	TypeResident  = "resident"
	TypeTimeline  = "timeline"
	TypeDirectory = "directory"
)

func havenType(t string) bool {
	return t == TypeResident || t == TypeTimeline || t == TypeDirectory || t == TypeServices
}

// schemaKeys are the root keys each type's first change writes, and no
// later change may: scalars, then containers.
var schemaKeys = map[string]struct{ scalars, maps []string }{
	TypeResident:  {[]string{"schema", "type", "id", "home", "timeline"}, []string{"identity", "contacts", "alerts", "carePlan", "wishes", "decisions"}},
	TypeTimeline:  {[]string{"schema", "type", "id", "home", "resident"}, []string{"notes", "noteStatus"}},
	TypeDirectory: {[]string{"schema", "type", "id", "home", "name"}, []string{"residents"}},
	TypeServices:  {[]string{"schema", "type", "id", "home", "name"}, []string{"services"}},
}

// Guard holds what the rules need to know about one document: its type
// and the objects and keys its history made. Feed it the document's
// history once (Learn), then Check each new batch of changes. Not safe for
// concurrent use.
type Guard struct {
	docID string
	// observing: Observe is checking changes already held, whose entries
	// the reader verifies itself; only the structural rules are checked.
	observing bool
	typ       string // "" until the first change is seen
	created   bool
	// containers: the object made for each root container key and for
	// each decision kind, by name ("decisions", "decisions.cpr", "notes"…).
	containers map[string]crdt.OpID
	kinds      map[crdt.OpID]Kind
	// written: keys ever written in the decision lists, notes and note
	// status maps: key → the entry's subject (decision lists) or "".
	written map[crdt.OpID]map[string]string
	undo    []func() // reverses what the batch being checked changed
	// st follows the document's structure, and unproven says why the
	// last batch Check took in is not proven loadable ("" if it is).
	st       *structure
	unproven string
	inChange map[objKey]bool // see check
	// home and homeHead: where the record's chain of transfers has reached
	// and its last entry (transfer.go); "" before the first.
	home, homeHead string
}

// NewGuard returns the guard of document id, knowing nothing yet.
func NewGuard(id docid.ID) *Guard {
	return &Guard{docID: id.String(), containers: map[string]crdt.OpID{}, kinds: map[crdt.OpID]Kind{},
		written: map[crdt.OpID]map[string]string{}, st: newStructure()}
}

// Knows reports whether the guard has taken in the change.
func (g *Guard) Knows(h crdt.Hash) bool {
	_, ok := g.st.maxOps[h]
	return ok
}

// KnowsActor reports whether the guard has taken in a change by actor.
func (g *Guard) KnowsActor(actor string) bool {
	_, ok := g.st.actors[actor]
	return ok
}

// Changes is how many changes the guard has taken in.
func (g *Guard) Changes() int { return len(g.st.maxOps) }

// Proven reports whether every change of the last batch Check took in is
// proven to keep the document loadable (see structure.go), so the
// whole-document check can be skipped; always false for a document of a
// type Haven does not know, which may hold lists and text.
func (g *Guard) Proven() bool { return havenType(g.typ) && g.unproven == "" }

// Type is the document's type as its first change set it ("" for a
// document Haven does not know).
func (g *Guard) Type() string {
	if havenType(g.typ) {
		return g.typ
	}
	return ""
}

// Learn takes in a change already in the document without checking it:
// for building the guard from a stored history, in causal order.
func (g *Guard) Learn(c *crdt.DecodedChange) {
	g.apply(c)
	g.st.learn(c)
	g.undo = nil
}

// Check checks a batch of new changes, in causal order, against the rules
// and, if all keep them, takes them in. If any breaks a rule it returns a
// *RuleError and the guard is as before the call.
func (g *Guard) Check(changes []*crdt.DecodedChange, trust *cert.Trust) error {
	g.undo, g.unproven = g.undo[:0], ""
	g.st.undo = &g.undo
	defer func() { g.st.undo = nil }()
	for _, c := range changes {
		if err := g.check(c, trust); err != nil {
			for i := len(g.undo) - 1; i >= 0; i-- {
				g.undo[i]()
			}
			g.undo = g.undo[:0]
			return err
		}
		if g.unproven == "" {
			g.unproven = g.st.proven(c)
		}
		g.apply(c)
		g.st.learn(c)
	}
	g.undo = g.undo[:0]
	return nil
}

// Observe checks changes a document already holds (read from a local
// store, never offered for storing) in causal order: each is checked
// against the structural rules (a decision or note deleted or rewritten, a
// fixed field written, a second history), then taken in whether it keeps
// them or not, so the next is judged against the document as it is. It
// returns the rules broken. Entries are not verified here: every reader
// verifies them itself (VerifyEntry).
func (g *Guard) Observe(changes []*crdt.DecodedChange) []*RuleError {
	g.observing = true
	defer func() { g.observing = false }()
	var out []*RuleError
	for _, c := range changes {
		g.undo = g.undo[:0]
		var re *RuleError
		if err := g.check(c, nil); errors.As(err, &re) {
			out = append(out, re)
		}
		g.apply(c)
	}
	g.undo = g.undo[:0]
	return out
}

func (g *Guard) setContainer(name string, id crdt.OpID) {
	old, had := g.containers[name]
	g.containers[name] = id
	g.undo = append(g.undo, func() {
		if had {
			g.containers[name] = old
		} else {
			delete(g.containers, name)
		}
	})
}

// setHome moves the chain of transfers on, undoably.
func (g *Guard) setHome(home, head string) {
	oldHome, oldHead := g.home, g.homeHead
	g.home, g.homeHead = home, head
	g.undo = append(g.undo, func() { g.home, g.homeHead = oldHome, oldHead })
}

// Home is the organisation holding the record as the changes taken in
// say: its first home, or where its transfers end.
func (g *Guard) Home() string { return g.home }

func (g *Guard) markWritten(obj crdt.OpID, key, subject string) {
	m := g.written[obj]
	if m == nil {
		m = map[string]string{}
		g.written[obj] = m
	}
	if _, had := m[key]; had {
		return
	}
	m[key] = subject
	g.undo = append(g.undo, func() { delete(m, key) })
}

// apply records what a change made: the schema's containers (from the
// first change, or in a learnt history whichever came last) and the keys
// written in the watched objects.
func (g *Guard) apply(c *crdt.DecodedChange) {
	if !g.created {
		typ, was := g.typ, g.created
		g.created = true
		for _, op := range c.Ops {
			if op.Obj == crdt.Root && op.Key == "type" && op.Action == crdt.ActPut && op.Value.Kind == crdt.ValString {
				g.typ = op.Value.Str
			}
		}
		g.undo = append(g.undo, func() { g.typ, g.created = typ, was })
	}
	for _, op := range c.Ops {
		switch {
		case op.Obj == crdt.Root && op.Action == crdt.ActMakeMap:
			g.setContainer(op.Key, op.ID)
			if op.Key == "transfers" && g.typ == TypeResident {
				g.kinds[op.ID] = KindHome
				g.undo = append(g.undo, func() { delete(g.kinds, op.ID) })
			}
		case op.Obj == crdt.Root && op.Key == "home" && op.Action == crdt.ActPut && op.Value.Kind == crdt.ValString && g.home == "":
			g.setHome(op.Value.Str, "")
		case op.Obj == g.containers["decisions"] && op.Obj != crdt.Root && op.Action == crdt.ActMakeMap:
			g.setContainer("decisions."+op.Key, op.ID)
			k := Kind(op.Key)
			g.kinds[op.ID] = k
			g.undo = append(g.undo, func() { delete(g.kinds, op.ID) })
		case op.Action == crdt.ActPut && g.watched(op.Obj):
			g.markWritten(op.Obj, op.Key, entrySubject(g.kinds[op.Obj], op.Value.Str))
			if g.kinds[op.Obj] == KindHome {
				if e, t, ok := transferEntry(op.Value.Str); ok && transferFollows(g.home, g.homeHead, e, t) == "" {
					g.setHome(t.To, e.ID)
				}
			}
		}
	}
}

// watched reports whether obj is a list whose keys the rules track.
func (g *Guard) watched(obj crdt.OpID) bool {
	if obj == crdt.Root {
		return false
	}
	if _, ok := g.kinds[obj]; ok {
		return true
	}
	return obj == g.containers["notes"] || obj == g.containers["noteStatus"]
}

func entrySubject(k Kind, body string) string {
	if k != KindAttorney {
		return ""
	}
	var e struct {
		Subject string `json:"subject"`
	}
	json.Unmarshal([]byte(body), &e)
	return e.Subject
}

func (g *Guard) check(c *crdt.DecodedChange, trust *cert.Trust) error {
	fail := func(rule, path string) error { return &RuleError{Rule: rule, Path: path, Change: c.Hash} }
	if len(c.Deps) == 0 && g.created && havenType(g.typ) {
		return fail(RuleSecondRoot, "")
	}
	if !g.created {
		return g.checkCreation(c, fail)
	}
	if !havenType(g.typ) {
		for _, op := range c.Ops {
			if op.Obj == crdt.Root && op.Key == "type" && op.Action == crdt.ActPut && havenType(op.Value.Str) {
				return fail(RuleBecomeHaven, "type")
			}
		}
		return nil
	}
	schema := schemaKeys[g.typ]
	// Keys this change writes in the append-only lists: a second write at
	// one of them in the same change rewrites the first.
	g.inChange = map[objKey]bool{}
	for _, op := range c.Ops {
		if err := checkKindOfOp(op); err != "" {
			return fail(RuleSchema, err)
		}
		if op.Obj == crdt.Root {
			if slices.Contains(schema.scalars, op.Key) || slices.Contains(schema.maps, op.Key) {
				return fail(RuleFixedField, op.Key)
			}
			if g.typ == TypeResident && op.Key == "transfers" {
				if _, made := g.containers["transfers"]; made || op.Action != crdt.ActMakeMap || g.inChange[objKey{crdt.Root, op.Key}] {
					return &RuleError{Rule: RuleTransfer, Detail: TransferMapTwice, Path: "transfers", Change: c.Hash}
				}
				g.inChange[objKey{crdt.Root, op.Key}] = true
				// Entries written into it by this same change are
				// checked as entries (apply registers it for good).
				g.kinds[op.ID] = KindHome
				g.undo = append(g.undo, func() { delete(g.kinds, op.ID) })
			}
			continue
		}
		switch {
		case g.typ == TypeResident && op.Obj == g.containers["decisions"]:
			return fail(RuleDecisionBad, "decisions")
		case g.typ == TypeResident && g.isKind(op.Obj):
			if err := g.checkEntry(c, op, trust, fail); err != nil {
				return err
			}
		case g.typ == TypeTimeline && op.Obj == g.containers["notes"]:
			if rule := g.appendOnly(op, RuleNoteDeleted, RuleNoteRewrite, RuleSchema); rule != "" {
				return fail(rule, "notes")
			}
		case g.typ == TypeTimeline && op.Obj == g.containers["noteStatus"]:
			if op.Action == crdt.ActDelete {
				return fail(RuleNoteDeleted, "noteStatus")
			}
			if op.Action != crdt.ActPut || op.Value.Kind != crdt.ValString {
				return fail(RuleSchema, "noteStatus")
			}
		case g.typ == TypeDirectory && op.Obj == g.containers["residents"] && op.Action == crdt.ActDelete:
			return fail(RuleResidentRemoved, "residents")
		case g.typ == TypeServices && op.Obj == g.containers["services"]:
			if op.Action != crdt.ActDelete && !serviceValue(op) {
				return fail(RuleServiceBad, "services")
			}
		}
	}
	return nil
}

// appendOnly checks an operation in a list whose entries are written once:
// it must put a string at a key never written, overwriting nothing. It
// returns the rule broken (deleted, rewritten or malformed), or "".
func (g *Guard) appendOnly(op crdt.Op, deleted, rewritten, malformed string) string {
	switch {
	case op.Action == crdt.ActDelete:
		return deleted
	case len(op.Pred) > 0 || g.wasWritten(op.Obj, op.Key) || g.inChange[objKey{op.Obj, op.Key}]:
		return rewritten
	case op.Action != crdt.ActPut || op.Value.Kind != crdt.ValString:
		return malformed
	}
	g.inChange[objKey{op.Obj, op.Key}] = true
	return ""
}

func (g *Guard) isKind(obj crdt.OpID) bool {
	_, ok := g.kinds[obj]
	return ok
}

func (g *Guard) wasWritten(obj crdt.OpID, key string) bool {
	_, ok := g.written[obj][key]
	return ok
}

// checkKindOfOp refuses what Haven documents never hold; it returns what
// was found, or "".
func checkKindOfOp(op crdt.Op) string {
	switch {
	case op.InList || op.Insert:
		return "a list position"
	case op.Action != crdt.ActMakeMap && op.Action != crdt.ActPut && op.Action != crdt.ActDelete:
		return fmt.Sprintf("operation %d", op.Action)
	case op.Action == crdt.ActPut && (op.Value.Kind == crdt.ValCounter || op.Value.Kind == crdt.ValUnknown):
		return "a counter or unknown value"
	case op.MarkName != "" || op.Expand:
		return "a text mark"
	}
	return ""
}

// checkEntry checks one operation in a decision list.
func (g *Guard) checkEntry(c *crdt.DecodedChange, op crdt.Op, trust *cert.Trust, fail func(string, string) error) error {
	k := g.kinds[op.Obj]
	path := "decisions." + string(k)
	if k == KindHome {
		path = "transfers"
	}
	if rule := g.appendOnly(op, RuleDecisionDeleted, RuleDecisionRewrite, RuleDecisionBad); rule != "" {
		return fail(rule, path)
	}
	var e Entry
	if err := json.Unmarshal([]byte(op.Value.Str), &e); err != nil {
		return fail(RuleDecisionBad, path)
	}
	if k != KindAttorney {
		e.Subject = ""
	}
	if g.observing {
		return nil
	}
	ve, err := VerifyEntry(trust, g.docID, k, op.Key, e)
	if err != nil {
		return &RuleError{Rule: RuleDecisionUnver, Detail: EntryCode(err), Path: path, Change: c.Hash}
	}
	if k == KindHome {
		// One move a change, following the chain as it stands.
		_, t, _ := transferEntry(op.Value.Str)
		why := transferFollows(g.home, g.homeHead, ve, t)
		if why == "" && g.inChange[objKey{op.Obj, ""}] {
			why = TransferNotLatest
		}
		if why != "" {
			return &RuleError{Rule: RuleTransfer, Detail: why, Path: "transfers", Change: c.Hash}
		}
		g.inChange[objKey{op.Obj, ""}] = true
	}
	for _, id := range e.Supersedes {
		if subject, ok := g.written[op.Obj][id]; !ok || subject != e.Subject {
			return &RuleError{Rule: RuleDecisionUnver, Detail: EntryCode(ErrMissingSupersede), Path: path, Change: c.Hash}
		}
	}
	return nil
}

// checkCreation checks a document's first change. Documents of other types
// are free; Haven's must be created whole, as their editors create them.
func (g *Guard) checkCreation(c *crdt.DecodedChange, fail func(string, string) error) error {
	root := map[string]crdt.Op{}
	for _, op := range c.Ops {
		if op.Obj == crdt.Root {
			root[op.Key] = op
		}
	}
	t := root["type"]
	if t.Action != crdt.ActPut || t.Value.Kind != crdt.ValString || !havenType(t.Value.Str) {
		return nil // not a Haven document: nothing to keep
	}
	typ := t.Value.Str
	schema := schemaKeys[typ]
	str := func(k string) (string, bool) {
		op, ok := root[k]
		return op.Value.Str, ok && op.Action == crdt.ActPut && op.Value.Kind == crdt.ValString && op.Value.Str != ""
	}
	if op, ok := root["schema"]; !ok || op.Action != crdt.ActPut || op.Value.Kind != crdt.ValInt || op.Value.Int < 1 {
		return fail(RuleSchema, "schema")
	}
	if id, ok := str("id"); !ok || id != g.docID {
		return fail(RuleSchema, "id")
	}
	for _, k := range schema.scalars {
		if _, ok := str(k); !ok && k != "schema" {
			return fail(RuleSchema, k)
		}
	}
	for _, k := range schema.maps {
		if op, ok := root[k]; !ok || op.Action != crdt.ActMakeMap {
			return fail(RuleSchema, k)
		}
	}
	if h, _ := str("home"); typ == TypeServices && h != Region {
		return fail(RuleSchema, "home")
	}
	if _, ok := root["transfers"]; ok && typ == TypeResident {
		// A record begins at its first home; a move is a later, signed
		// change.
		return &RuleError{Rule: RuleTransfer, Detail: TransferMapTwice, Path: "transfers", Change: c.Hash}
	}
	if typ == TypeResident {
		decisions := root["decisions"].ID
		lists := map[crdt.OpID]string{}
		for _, op := range c.Ops {
			if op.Obj == decisions {
				if op.Action != crdt.ActMakeMap {
					return fail(RuleSchema, "decisions")
				}
				lists[op.ID] = op.Key
			}
		}
		for _, k := range Kinds {
			if !slices.Contains(slices.Collect(maps.Values(lists)), string(k)) {
				return fail(RuleSchema, "decisions."+string(k))
			}
		}
		// The first change holds no entry: Haven's editor never writes one
		// there, so a first change that does was not made by it.
		for _, op := range c.Ops {
			if k, ok := lists[op.Obj]; ok {
				return fail(RuleDecisionUnver, "decisions."+k)
			}
		}
	}
	for _, op := range c.Ops {
		if err := checkKindOfOp(op); err != "" {
			return fail(RuleSchema, err)
		}
	}
	return nil
}

// serviceValue reports whether an operation puts a service that reads and
// validates: what every device will show is checked once, at the relay.
func serviceValue(op crdt.Op) bool {
	if op.Action != crdt.ActPut || op.Value.Kind != crdt.ValString {
		return false
	}
	var s Service
	if json.Unmarshal([]byte(op.Value.Str), &s) != nil {
		return false
	}
	s.ID = op.Key
	return ValidateService(s) == nil
}
