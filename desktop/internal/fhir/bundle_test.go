package fhir

import (
	"encoding/json"
	"regexp"
	"testing"
	"time"

	"haven/shared/record"
)

var gp = record.Author{UserID: "u-gp", Name: "Dr Ada Quill", Role: record.GP, RegNo: "GMC 7000001"}

func settled(k record.Kind, id string, value any) Decision {
	b, _ := json.Marshal(value)
	return Decision{Kind: k, State: Settled, Text: "words for " + id, By: "Dr Ada Quill, GP, GMC 7000001",
		Entry: record.Entry{ID: id, Value: string(b), Author: gp, At: "2026-11-20T10:00:00Z", Reason: "discussed"}}
}

// testRecord is a resident with every decision settled; the tests change
// one decision at a time.
func testRecord() *Record {
	return &Record{ID: "2ZtDemoRecordId", Exported: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC), ExportedBy: "Dr Ada Quill, GP",
		Organisation: "Larch House",
		Identity:     record.Identity{NHSNumber: "9990000018", NHSVerification: "01", GivenName: "Edith", FamilyName: "Marlow", Sex: "female", DateOfBirth: "1931-04-02"},
		Contacts:     []record.Contact{{ID: "c-att", Kind: "personal", Name: "Jane Marlow", Relationship: "child", Role: "attorney", PhoneDay: "020 7946 0001", LPARegistered: true}},
		CPR:          settled(record.KindCPR, "e-cpr", record.CPRNotRecommended),
		Focus:        settled(record.KindFocus, "e-focus", record.FocusComfort),
		Ceiling:      settled(record.KindCeiling, "e-ceiling", record.Ceiling{Level: "treat-in-care-home"}),
		ADRT:         settled(record.KindADRT, "e-adrt", record.ADRT{Exists: "yes", TreatmentsRefused: "ventilation"}),
		Allergies:    settled(record.KindAllergies, "e-allergies", record.Allergies{Items: []record.Allergy{{Agent: "Penicillin", Reaction: "rash", Severity: "moderate"}}}),
		PlaceOfDeath: settled(record.KindPlaceOfDeath, "e-pod", record.PlaceOfDeath{First: "care-home"}),
		Authority:    map[string]Decision{"c-att": settled(record.KindAttorney, "e-att", record.AttorneyAuthority{LifeSustaining: true})},
	}
}

type parsed struct {
	Entry []struct {
		Resource map[string]any `json:"resource"`
	} `json:"entry"`
}

func build(t *testing.T, r *Record) (parsed, map[string]map[string]any) {
	t.Helper()
	b, err := Build(r)
	if err != nil {
		t.Fatalf("Build: %v", err)
	}
	var p parsed
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	byID := map[string]map[string]any{}
	for _, e := range p.Entry {
		byID[e.Resource["id"].(string)] = e.Resource
	}
	return p, byID
}

func count(p parsed, typ string) int {
	n := 0
	for _, e := range p.Entry {
		if e.Resource["resourceType"] == typ {
			n++
		}
	}
	return n
}

// provenanceTargets counts the Provenances pointing at resource id.
func provenanceTargets(p parsed, id string) int {
	n := 0
	for _, e := range p.Entry {
		if e.Resource["resourceType"] != "Provenance" {
			continue
		}
		for _, tg := range e.Resource["target"].([]any) {
			if tg.(map[string]any)["reference"] == "urn:uuid:"+id {
				n++
			}
		}
	}
	return n
}

// TestDisputedDecisionsBecomeFlags: for every kind of decision, settled it
// is a resource with a Provenance; in conflict, with an unverified entry
// or altered, it is a Flag and its resource is absent; not recorded, it is
// neither.
func TestDisputedDecisionsBecomeFlags(t *testing.T) {
	r := testRecord()
	p, byID := build(t, r)
	all := map[record.Kind]struct {
		resource string // the resource the settled decision is
		key      string
		subject  string
		of       func(r *Record) *Decision
	}{
		record.KindCPR:          {"Consent", ConsentKey(record.KindCPR), "", func(r *Record) *Decision { return &r.CPR }},
		record.KindFocus:        {"Consent", ConsentKey(record.KindFocus), "", func(r *Record) *Decision { return &r.Focus }},
		record.KindCeiling:      {"Consent", ConsentKey(record.KindCeiling), "", func(r *Record) *Decision { return &r.Ceiling }},
		record.KindADRT:         {"Consent", ConsentKey(record.KindADRT), "", func(r *Record) *Decision { return &r.ADRT }},
		record.KindAllergies:    {"AllergyIntolerance", "allergy/e-allergies/0", "", func(r *Record) *Decision { return &r.Allergies }},
		record.KindPlaceOfDeath: {"CarePlan", KeyEndOfLife, "", func(r *Record) *Decision { return &r.PlaceOfDeath }},
		record.KindAttorney:     {"RelatedPerson", "related/c-att", "c-att", nil},
	}
	for k, c := range all {
		id := ResourceID(r.ID, c.key)
		if byID[id] == nil || byID[id]["resourceType"] != c.resource || provenanceTargets(p, id) != 1 {
			t.Errorf("%s settled: want a %s with one Provenance", k, c.resource)
		}
		if byID[ResourceID(r.ID, DisputeKey(k, c.subject))] != nil {
			t.Errorf("%s settled: a dispute Flag", k)
		}
	}
	side := func(n string) Side {
		return Side{EntryID: n, Text: "value " + n, By: "Dr " + n, At: "2026-11-21T10:00:00Z"}
	}
	for name, state := range map[string]func(Decision) Decision{
		"conflict": func(d Decision) Decision {
			return Decision{Kind: d.Kind, State: Conflict, Sides: []Side{side("a"), side("b")}}
		},
		"unverified entry": func(d Decision) Decision {
			d.Unverified = []Unverified{{Text: "forged", Claimed: "Dr X (claimed)", At: "2026-11-21T10:00:00Z", Code: "bad-signature"}}
			return d
		},
		"altered":      func(d Decision) Decision { return Decision{Kind: d.Kind, State: Altered, Text: "altered list"} },
		"not recorded": func(d Decision) Decision { return Decision{Kind: d.Kind, State: NotRecorded} },
	} {
		for k, c := range all {
			r := testRecord()
			if c.of != nil {
				*c.of(r) = state(*c.of(r))
			} else {
				r.Authority[c.subject] = state(r.Authority[c.subject])
			}
			p, byID := build(t, r)
			id := ResourceID(r.ID, c.key)
			flag := byID[ResourceID(r.ID, DisputeKey(k, c.subject))]
			switch c.resource {
			case "Consent", "AllergyIntolerance":
				if byID[id] != nil {
					t.Errorf("%s %s: exported as a %s", k, name, c.resource)
				}
			default:
				// The plan and the attorney stay; the decision they carried
				// is no longer vouched for.
				if byID[id] == nil || provenanceTargets(p, id) != 0 {
					t.Errorf("%s %s: the %s is missing or still has the decision's Provenance", k, name, c.resource)
				}
			}
			if name == "not recorded" {
				if flag != nil {
					t.Errorf("%s not recorded: a dispute Flag", k)
				}
				continue
			}
			if flag == nil || flag["resourceType"] != "Flag" || flag["status"] != "active" {
				t.Errorf("%s %s: no active Flag", k, name)
			}
		}
	}
}

var uuidV5 = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestResourceIDsAreStableUUIDs: the same record and key give the same
// version 5 UUID; another record or key another one.
func TestResourceIDsAreStableUUIDs(t *testing.T) {
	a := ResourceID("rec-1", KeyPatient)
	if !uuidV5.MatchString(a) {
		t.Fatalf("ResourceID = %q, want a version 5 UUID", a)
	}
	if ResourceID("rec-1", KeyPatient) != a || ResourceID("rec-2", KeyPatient) == a || ResourceID("rec-1", KeyComposition) == a {
		t.Fatal("resource IDs are not a function of record and key alone")
	}
	r := testRecord()
	x, _ := Build(r)
	r.Exported = r.Exported.Add(time.Hour)
	y, _ := Build(r)
	var px, py parsed
	json.Unmarshal(x, &px)
	json.Unmarshal(y, &py)
	if len(px.Entry) != len(py.Entry) {
		t.Fatal("two exports of one record hold different resources")
	}
	for i := range px.Entry {
		if px.Entry[i].Resource["id"] != py.Entry[i].Resource["id"] {
			t.Fatalf("entry %d: %v then %v", i, px.Entry[i].Resource["id"], py.Entry[i].Resource["id"])
		}
	}
}
