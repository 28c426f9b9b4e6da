package record

import (
	"encoding/json"
	"fmt"
	"sort"

	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/docid"
)

// Read returns the resident's record held in doc, its decisions verified
// against trust (nil trust: none verifies, so none is shown as settled).
func Read(doc *crdt.Doc, trust *cert.Trust) (*Record, error) {
	root, err := doc.Root()
	if err != nil {
		return nil, fmt.Errorf("read record: %w", err)
	}
	return FromTree(root, trust), nil
}

// FromTree builds a Record from a document's plain tree. It never fails and
// never panics: whatever cannot be read is left out and named in Problems,
// because a document may have been written by another client or version.
// Every decision entry is verified against trust: one that fails is kept
// in its list's Unverified, never current.
func FromTree(root map[string]any, trust *cert.Trust) *Record {
	r := &Record{Decisions: map[string]*DecisionState{}}
	if id, err := docid.Parse(asString(root["id"])); err == nil {
		r.ID = id
	} else {
		r.Problems = append(r.Problems, "id: missing or malformed")
	}
	if v, ok := root["schema"].(int64); ok {
		r.Schema = v
	}
	if t := asString(root["type"]); t != "resident" {
		r.Problems = append(r.Problems, "type: not a resident record")
	}
	r.Home = asString(root["home"])
	var problems []string
	r.CurrentHome, r.Transfers, problems = homeChain(asString(root["id"]), r.Home, asMap(root["transfers"]), trust)
	r.Problems = append(r.Problems, problems...)
	r.Problems = append(r.Problems, fromFields(asMap(root["identity"]), &r.Identity, "identity")...)

	for id, v := range asMap(root["contacts"]) {
		var c Contact
		r.Problems = append(r.Problems, fromFields(asMap(v), &c, "contacts."+id)...)
		c.ID = id
		r.Contacts = append(r.Contacts, c)
	}
	sort.Slice(r.Contacts, func(i, j int) bool {
		a, b := r.Contacts[i], r.Contacts[j]
		if a.CallOrder != b.CallOrder {
			return a.CallOrder < b.CallOrder
		}
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return a.ID < b.ID
	})

	for id, v := range asMap(root["alerts"]) {
		var a Alert
		r.Problems = append(r.Problems, fromFields(asMap(v), &a, "alerts."+id)...)
		a.ID = id
		r.Alerts = append(r.Alerts, a)
	}
	sort.Slice(r.Alerts, func(i, j int) bool {
		if r.Alerts[i].Since != r.Alerts[j].Since {
			return r.Alerts[i].Since < r.Alerts[j].Since
		}
		return r.Alerts[i].ID < r.Alerts[j].ID
	})

	plan := asMap(root["carePlan"])
	for _, d := range Domains {
		e := CarePlanEntry{Domain: d}
		r.Problems = append(r.Problems, fromFields(asMap(plan[string(d)]), &e, "carePlan."+string(d))...)
		e.Domain = d
		r.CarePlan = append(r.CarePlan, e)
	}

	wishes := asMap(root["wishes"])
	r.Problems = append(r.Problems, fromFields(wishes, &r.Wishes, "wishes")...)
	for id, v := range asMap(wishes["reviews"]) {
		var rv Review
		r.Problems = append(r.Problems, fromFields(asMap(v), &rv, "wishes.reviews."+id)...)
		rv.ID = id
		r.Wishes.Reviews = append(r.Wishes.Reviews, rv)
	}
	sort.Slice(r.Wishes.Reviews, func(i, j int) bool {
		if r.Wishes.Reviews[i].Date != r.Wishes.Reviews[j].Date {
			return r.Wishes.Reviews[i].Date > r.Wishes.Reviews[j].Date
		}
		return r.Wishes.Reviews[i].ID < r.Wishes.Reviews[j].ID
	})

	decisions := asMap(root["decisions"])
	for _, k := range Kinds {
		bySubject, flagged, problems := readEntries(k, asMap(decisions[string(k)]))
		r.Problems = append(r.Problems, problems...)
		for subject, entries := range bySubject {
			s := newState(trust, asString(root["id"]), k, subject, entries, flagged)
			r.Decisions[s.Key()] = s
		}
	}

	if id, err := docid.Parse(asString(root["timeline"])); err == nil {
		r.Timeline = id
	} else {
		r.Problems = append(r.Problems, "timeline: missing or malformed")
	}
	sort.Strings(r.Problems)
	return r
}

// readEntries reads one kind's entries, grouped by subject, each with its
// ID set to its key in the document; flagged says why an entry is not a
// decision whatever its signature: it could not be read whole, or it names
// another ID than its key.
func readEntries(k Kind, m map[string]any) (out map[string][]Entry, flagged map[string]error, problems []string) {
	out, flagged = map[string][]Entry{}, map[string]error{}
	for key, v := range m {
		var e Entry
		path := "decisions." + string(k) + "." + key
		if p := fromJSONOrFields(v, &e, path); len(p) > 0 {
			// A decision that cannot be read whole must not be half-shown:
			// it is listed as unverified, with its value marked unreadable.
			problems = append(problems, p...)
			e.Value = `"unreadable"`
			flagged[key] = ErrMalformedEntry
		} else if e.ID != key {
			flagged[key] = ErrWrongKey
		}
		e.ID = key
		if k != KindAttorney {
			e.Subject = ""
		}
		out[e.Subject] = append(out[e.Subject], e)
	}
	return out, flagged, problems
}

// Contact returns the contact with the given ID.
func (r *Record) Contact(id string) (Contact, bool) {
	for _, c := range r.Contacts {
		if c.ID == id {
			return c, true
		}
	}
	return Contact{}, false
}

// CarePlanFor returns one domain's entry.
func (r *Record) CarePlanFor(d Domain) CarePlanEntry {
	for _, e := range r.CarePlan {
		if e.Domain == d {
			return e
		}
	}
	return CarePlanEntry{Domain: d}
}

// TimelineID returns the ID of a resident's timeline document as the record
// names it, reading that one field: what finding the notes needs, without
// reading (and verifying) the whole record.
func TimelineID(doc *crdt.Doc) (docid.ID, bool) {
	v, _, err := doc.Get("timeline")
	if err != nil {
		return docid.ID{}, false
	}
	s, _ := v.(string)
	id, err := docid.Parse(s)
	return id, err == nil
}

// NHSNumberOf returns a resident's NHS number as its ten digits, read from
// the record's one field, or "" when it has none (or not ten digits): the
// key by which one person has one record in a region (PersonRule).
func NHSNumberOf(doc *crdt.Doc) string {
	v, _, err := doc.Get("identity", "nhsNumber")
	if err != nil {
		return ""
	}
	s, _ := v.(string)
	return nhsDigits(s)
}

func nhsDigits(s string) string {
	if d := digits(s); len(d) == 10 {
		return d
	}
	return ""
}

// PersonRule is the rule a record breaks by naming an NHS number that
// another record already holds: one person has one record in the region,
// and a person who moves takes their record with them (a transfer), so a
// second record is refused wherever it is made. home is the new record's
// care home, holderHome the other record's; "" when there is no other.
func PersonRule(home, holderHome string) string {
	switch {
	case holderHome == "":
		return ""
	case holderHome == home:
		return RulePersonTwice
	default:
		return RulePersonElsewhere
	}
}

// ReadTimeline returns the notes held in a timeline document.
func ReadTimeline(doc *crdt.Doc) (*Timeline, error) {
	root, err := doc.Root()
	if err != nil {
		return nil, fmt.Errorf("read timeline: %w", err)
	}
	return TimelineFromTree(root), nil
}

// TimelineFromTree builds a Timeline from a plain tree; like FromTree it
// never fails and names what it could not read.
func TimelineFromTree(root map[string]any) *Timeline {
	tl := &Timeline{Home: asString(root["home"])}
	if asString(root["type"]) != "timeline" {
		tl.Problems = append(tl.Problems, "type: not a timeline")
	}
	if id, err := docid.Parse(asString(root["id"])); err == nil {
		tl.ID = id
	} else {
		tl.Problems = append(tl.Problems, "id: missing or malformed")
	}
	if id, err := docid.Parse(asString(root["resident"])); err == nil {
		tl.Resident = id
	} else {
		tl.Problems = append(tl.Problems, "resident: missing or malformed")
	}
	status := asMap(root["noteStatus"])
	for id, v := range asMap(root["notes"]) {
		n, problems := readNote(id, v, status[id])
		tl.Problems = append(tl.Problems, problems...)
		tl.Notes = append(tl.Notes, n)
	}
	sort.Slice(tl.Notes, func(i, j int) bool {
		if tl.Notes[i].EventAt != tl.Notes[j].EventAt {
			return tl.Notes[i].EventAt > tl.Notes[j].EventAt
		}
		return tl.Notes[i].ID < tl.Notes[j].ID
	})
	sort.Strings(tl.Problems)
	return tl
}

// Note returns the note with the given ID.
func (tl *Timeline) Note(id string) (Note, bool) {
	for _, n := range tl.Notes {
		if n.ID == id {
			return n, true
		}
	}
	return Note{}, false
}

// readNote reads one note and, if it has one, its status entry.
func readNote(id string, body, status any) (Note, []string) {
	var n Note
	problems := fromJSONOrFields(body, &n, "notes."+id)
	n.Status, n.ErrorReason, n.ErrorBy, n.ErrorAt = NoteCurrent, "", "", ""
	if status != nil {
		problems = append(problems, fromJSONOrFields(status, &n, "noteStatus."+id)...)
	}
	n.ID = id
	return n, problems
}

// fromJSONOrFields reads a write-once value stored as a JSON string, or, if
// another client wrote it as a map, from the map's fields.
func fromJSONOrFields(v any, out any, path string) []string {
	switch x := v.(type) {
	case string:
		if err := json.Unmarshal([]byte(x), out); err != nil {
			return []string{path + ": unreadable"}
		}
		return nil
	case map[string]any:
		return fromFields(x, out, path)
	}
	return []string{path + ": missing"}
}
