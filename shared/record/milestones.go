package record

import (
	"encoding/json"
	"slices"
	"strings"

	"haven/shared/crdt"
)

// Milestones are the dates a home's reports count from, read from one
// record: when the person's ReSPECT plan was published, their CPR decision
// and preferred place of death first recorded, and how their stay ended.
// Every date is YYYY-MM-DD; "" means never.
type Milestones struct {
	Plan      string `json:"plan,omitempty"`      // the ReSPECT plan published (its CPR decision date)
	CPR       string `json:"cpr,omitempty"`       // a CPR recommendation first recorded
	Preferred string `json:"preferred,omitempty"` // a first preferred place of death first recorded
	// PreferredPlace is the first preferred place now (one of Places);
	// "" when none is settled.
	PreferredPlace string `json:"preferredPlace,omitempty"`
	Ended          string `json:"ended,omitempty"` // discharged or died
	Died           bool   `json:"died,omitempty"`
	// DiedWhere is the place of death recorded at death (one of Places).
	DiedWhere string `json:"diedWhere,omitempty"`
}

// Milestones reads the record's dates for reports. Only verified decision
// entries count, as everywhere.
func (r *Record) Milestones() Milestones {
	var m Milestones
	if r.Wishes.PlanStatus == "published" {
		m.Plan = r.Wishes.CPRDecisionDate
	}
	if s := r.Decision(KindCPR, ""); len(s.Entries) > 0 {
		m.CPR = dateOf(s.Entries[0].At)
	}
	pod := r.Decision(KindPlaceOfDeath, "")
	for _, e := range pod.Entries {
		var p PlaceOfDeath
		if json.Unmarshal([]byte(e.Value), &p) == nil && p.First != "" && p.First != "not-recorded" {
			m.Preferred = dateOf(e.At)
			break
		}
	}
	if e, ok := pod.Settled(); ok {
		var p PlaceOfDeath
		if json.Unmarshal([]byte(e.Value), &p) == nil && p.First != "not-recorded" {
			m.PreferredPlace = p.First
		}
	}
	switch r.Identity.Status {
	case StatusDied:
		m.Ended, m.Died, m.DiedWhere = r.Identity.StatusDate, true, r.Identity.PlaceOfDeath
	case StatusDischarged:
		m.Ended = r.Identity.StatusDate
	}
	return m
}

// DiedInPreferredPlace reports whether a person who died did so where
// they wished to: the place recorded at death is their first preferred
// place. Unknown either way is not.
func (m Milestones) DiedInPreferredPlace() bool {
	return m.Died && m.DiedWhere != "" && m.DiedWhere == m.PreferredPlace
}

// dateOf is a timestamp's date (its first ten characters, YYYY-MM-DD).
func dateOf(ts string) string {
	if len(ts) < len(DateLayout) {
		return ""
	}
	return ts[:len(DateLayout)]
}

// CallSummary is one advice call as a home's reports count it.
type CallSummary struct {
	ID      string `json:"id"`
	Date    string `json:"date"`    // when the call was (YYYY-MM-DD)
	Outcome string `json:"outcome"` // one of CallOutcomes
}

// AdviceCalls brings have (the advice calls of a timeline counted when it
// stood at heads) up to date with the changes since: calls added, and calls
// marked entered in error taken away, whenever their authors made them (a
// call recorded offline yesterday counts when it arrives). With nil heads
// it reads the whole timeline.
func AdviceCalls(timeline *crdt.Doc, heads []crdt.Hash, have []CallSummary) ([]CallSummary, error) {
	all, err := timeline.ChangesAfter(heads)
	if err != nil {
		return nil, err
	}
	out := slices.Clone(have)
	for _, ci := range all { // causal order: a note before its marking in error
		c := changeOf(ci)
		if len(c.Fields) != 1 {
			continue
		}
		parts := strings.Split(c.Fields[0], ".")
		if len(parts) != 2 {
			continue
		}
		switch {
		case c.Op == "add-note" && parts[0] == "notes":
			if slices.ContainsFunc(out, func(s CallSummary) bool { return s.ID == parts[1] }) {
				continue
			}
			v, ok, err := timeline.Get(parts...)
			if err != nil || !ok {
				continue
			}
			s, _ := v.(string)
			var n Note
			if json.Unmarshal([]byte(s), &n) != nil || n.Kind != NoteKindAdviceCall || n.Call == nil {
				continue
			}
			out = append(out, CallSummary{ID: n.ID, Date: dateOf(n.EventAt), Outcome: n.Call.Outcome})
		case c.Op == "entered-in-error" && parts[0] == "noteStatus":
			out = slices.DeleteFunc(out, func(s CallSummary) bool { return s.ID == parts[1] })
		}
	}
	return out, nil
}
