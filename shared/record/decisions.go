package record

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"haven/shared/cert"
)

// Kind names a safety-critical value held as a decision list.
type Kind string

const (
	KindCPR          Kind = "cpr"
	KindFocus        Kind = "clinicalFocus"
	KindCeiling      Kind = "ceiling"
	KindAllergies    Kind = "allergies"
	KindADRT         Kind = "adrt"
	KindPlaceOfDeath Kind = "placeOfDeath"
	KindAttorney     Kind = "attorneyAuthority" // one list per attorney contact (the subject)
)

// Kinds in the order an emergency summary shows them.
var Kinds = []Kind{KindCPR, KindFocus, KindCeiling, KindAllergies, KindADRT, KindPlaceOfDeath, KindAttorney}

var kindLabels = map[Kind]string{
	KindCPR: "CPR recommendation", KindFocus: "Clinical focus", KindCeiling: "Ceiling of treatment",
	KindAllergies: "Allergies", KindADRT: "Advance decision to refuse treatment",
	KindPlaceOfDeath: "Preferred place of death", KindAttorney: "Attorney authority over life-sustaining treatment",
	KindHome: "Transfer to another care home",
}

// Label is the kind as staff read it.
func (k Kind) Label() string { return kindLabels[k] }

// CanDecide reports whether a role may record a decision of this kind. It
// is the one place this is decided: the editor asks it before signing, the
// relay before storing, every reader before showing an entry as a decision.
//
//   - CPR: the GP alone. DOMAIN: a DNACPR is recorded only by the senior
//     responsible clinician; of Haven's roles only the GP is a doctor who
//     holds the person's care (a hub nurse or home nurse may hold the
//     conversation; the GP signs).
//   - Clinical focus and ceiling of treatment (ReSPECT section 4): the GP
//     or a GP-hub nurse (advanced nurse practitioners in the hubs lead
//     ReSPECT conversations). Not an advice-line clinician, who knows the
//     person only through a telephone call, nor a home's nurse.
//   - Allergies, ADRT and preferred place of death record facts and wishes
//     that senior care staff collect: any registered clinician, a senior
//     carer or the home manager. Care workers report them to a senior.
//   - Attorney authority (an LPA seen): a registered clinician or the home
//     manager.
func CanDecide(r Role, k Kind) bool {
	switch k {
	case KindCPR:
		return r == GP
	case KindFocus, KindCeiling:
		return r == GP || r == HubNurse
	case KindAllergies, KindADRT, KindPlaceOfDeath:
		return r.Clinician() || r == SeniorCarer || r == HomeManager
	case KindAttorney:
		return r.Clinician() || r == HomeManager
	case KindHome:
		// A move between homes is the sending home's decision, made by
		// its registered manager (transfer.go).
		return r == HomeManager
	}
	return false
}

// Entry is one decision: immutable once written, and signed (see
// EntrySigningBytes).
type Entry struct {
	ID         string   `json:"id"`
	Subject    string   `json:"subject,omitempty"` // the attorney's contact ID for KindAttorney
	Value      string   `json:"value"`             // JSON of the kind's value type
	Author     Author   `json:"by"`                // as written; a verified entry's comes from Cert
	At         string   `json:"at"`
	Reason     string   `json:"reason"`
	Supersedes []string `json:"supersedes"`
	// Cert is the author's staff certificate and Sig their signature.
	Cert *cert.Certificate `json:"cert,omitempty"`
	Sig  []byte            `json:"sig,omitempty"`
}

// Value types, one per kind. CPR, clinical focus are bare enumerations.

// Ceiling is the ceiling of treatment.
type Ceiling struct {
	Level    string `json:"level"`
	Guidance string `json:"guidance"`
}

// Allergy is one agent the resident reacts to.
type Allergy struct {
	Agent     string `json:"agent"`
	Reaction  string `json:"reaction"`
	Severity  string `json:"severity"`
	Certainty string `json:"certainty"`
	Date      string `json:"date"`
	Verified  bool   `json:"verified"` // confirmed by a clinician
}

// Allergies is the full statement: either no known allergies, or a list.
type Allergies struct {
	NoneKnown bool      `json:"noneKnown"`
	Items     []Allergy `json:"items"`
}

// ADRT records an advance decision to refuse treatment.
type ADRT struct {
	Exists            string `json:"exists"`
	TreatmentsRefused string `json:"treatmentsRefused"`
	EvenIfLifeAtRisk  bool   `json:"evenIfLifeAtRisk"`
	SignedWitnessed   bool   `json:"signedWitnessed"`
	Date              string `json:"date"`
	Location          string `json:"location"`
}

// PlaceOfDeath holds first and second choice.
type PlaceOfDeath struct {
	First  string `json:"first"`
	Second string `json:"second"`
	Notes  string `json:"notes"`
}

// AttorneyAuthority says whether an attorney holds authority over
// life-sustaining treatment (only if the LPA says so).
type AttorneyAuthority struct {
	LifeSustaining bool `json:"lifeSustaining"`
}

// DecisionState is one decision list as read: every verified entry, the
// current ones (those no verified entry supersedes), and the entries that
// are not decisions. More than one current entry is a conflict; an
// unverified entry is never current and supersedes nothing.
type DecisionState struct {
	Kind       Kind
	Subject    string
	Entries    []Entry      // verified, oldest first
	Current    []Entry      // oldest first
	Unverified []Unverified // oldest first
	// Altered names the rules this list's history breaks (an entry
	// deleted or rewritten on this computer, outside the relay): see
	// Record.MarkAltered. An altered list is neither settled nor a
	// conflict: what it shows cannot be trusted.
	Altered []string
}

// Key is the map key a Record uses for this list.
func (s *DecisionState) Key() string { return decisionKey(s.Kind, s.Subject) }

func decisionKey(k Kind, subject string) string {
	if subject == "" {
		return string(k)
	}
	return string(k) + "/" + subject
}

// Conflict reports concurrent decisions that nothing supersedes yet.
func (s *DecisionState) Conflict() bool { return s != nil && len(s.Current) > 1 && len(s.Altered) == 0 }

// Settled returns the single current entry; ok is false when there is none,
// there is a conflict, or the list was altered.
func (s *DecisionState) Settled() (e Entry, ok bool) {
	if s == nil || len(s.Current) != 1 || len(s.Altered) > 0 {
		return Entry{}, false
	}
	return s.Current[0], true
}

// MarkAltered records rules a document's history breaks (Guard.Observe):
// a decision list's against that list (every subject of its kind), the
// rest against the record as a whole.
func (r *Record) MarkAltered(violations []*RuleError) {
	for _, v := range violations {
		rule := v.Rule
		kind, ok := strings.CutPrefix(v.Path, "decisions.")
		if !ok {
			r.Altered = append(r.Altered, rule+" ("+v.Path+")")
			continue
		}
		found := false
		for _, st := range r.Decisions {
			if string(st.Kind) == kind {
				st.Altered = append(st.Altered, rule)
				found = true
			}
		}
		if !found {
			st := &DecisionState{Kind: Kind(kind), Altered: []string{rule}}
			r.Decisions[st.Key()] = st
		}
	}
}

// ConflictSummary names each current decision and its author, for the
// places a conflict is shown.
func (s *DecisionState) ConflictSummary(describe func(Entry) string) string {
	parts := make([]string, len(s.Current))
	for i, e := range s.Current {
		parts[i] = fmt.Sprintf("%s (%s, %s, %s)", describe(e), e.Author.Name, e.Author.Role.Label(), e.At)
	}
	return strings.Join(parts, " versus ")
}

// Decode reads the entry's value into v (a pointer to the kind's type).
func (e Entry) Decode(v any) error {
	if err := json.Unmarshal([]byte(e.Value), v); err != nil {
		return fmt.Errorf("decision %s value: %w", e.ID, err)
	}
	return nil
}

// Text returns a plain string value (CPR, clinical focus), or "" if the value is not one.
func (e Entry) Text() string {
	var s string
	if json.Unmarshal([]byte(e.Value), &s) != nil {
		return ""
	}
	return s
}

// newState verifies every entry of one list (each with its ID set to its
// key in the document; flagged are those readEntries already found wanting)
// and computes Current from the verified ones.
func newState(trust *cert.Trust, docID string, k Kind, subject string, entries []Entry, flagged map[string]error) *DecisionState {
	sort.Slice(entries, func(i, j int) bool {
		if entries[i].At != entries[j].At {
			return entries[i].At < entries[j].At
		}
		return entries[i].ID < entries[j].ID
	})
	held := map[string]bool{}
	for _, e := range entries {
		held[e.ID] = true
	}
	s := &DecisionState{Kind: k, Subject: subject}
	for _, e := range entries {
		v, err := VerifyEntry(trust, docID, k, e.ID, e)
		if ferr := flagged[e.ID]; ferr != nil {
			err = ferr
		}
		for _, id := range e.Supersedes {
			if err == nil && !held[id] {
				err = fmt.Errorf("%w (%s)", ErrMissingSupersede, id)
			}
		}
		if err != nil {
			s.Unverified = append(s.Unverified, Unverified{Entry: e, Reason: err})
			continue
		}
		s.Entries = append(s.Entries, v)
	}
	superseded := map[string]bool{}
	for _, e := range s.Entries {
		for _, id := range e.Supersedes {
			superseded[id] = true
		}
	}
	for _, e := range s.Entries {
		if !superseded[e.ID] {
			s.Current = append(s.Current, e)
		}
	}
	return s
}

// TamperCount is what a manager's tamper alert counts: entries that are
// not decisions, and rules the record's history breaks.
func (r *Record) TamperCount() int {
	n := len(r.Tampered()) + len(r.Altered)
	for _, s := range r.Decisions {
		n += len(s.Altered)
	}
	return n
}

// Tampered lists every entry of the record that is not a decision, in
// Kinds order.
func (r *Record) Tampered() []Unverified {
	var out []Unverified
	for _, k := range Kinds {
		var keys []string
		for key, s := range r.Decisions {
			if s.Kind == k && len(s.Unverified) > 0 {
				keys = append(keys, key)
			}
		}
		sort.Strings(keys)
		for _, key := range keys {
			out = append(out, r.Decisions[key].Unverified...)
		}
	}
	return out
}

// Decision returns the list for kind (and subject, for attorneys); never nil.
func (r *Record) Decision(k Kind, subject string) *DecisionState {
	if s, ok := r.Decisions[decisionKey(k, subject)]; ok {
		return s
	}
	return &DecisionState{Kind: k, Subject: subject}
}

// Conflicts lists every decision list in conflict, in Kinds order.
func (r *Record) Conflicts() []*DecisionState {
	var out []*DecisionState
	for _, s := range r.Decisions {
		if s.Conflict() {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		oi, oj := kindOrder(out[i].Kind), kindOrder(out[j].Kind)
		if oi != oj {
			return oi < oj
		}
		return out[i].Subject < out[j].Subject
	})
	return out
}

func kindOrder(k Kind) int {
	for i, x := range Kinds {
		if x == k {
			return i
		}
	}
	return len(Kinds)
}
