package app

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
)

// Handover: what changed in the home since a time, resident by resident,
// and for the person signed in, which residents changed since they last
// opened them. It is how the care team hears that a plan changed.
//
// Each row keeps when its record and its timeline last changed (Row.Activity,
// from the newest changes' own times), so a handover reads only the
// residents that changed, and of those only the changes since the time
// (record.Recent). What each person last opened is kept in the store, under
// nsSeen, keyed "staff ID/resident ID", as RFC 3339 times.

const nsSeen = "seen"

// Handover item kinds.
const (
	HandoverNote       = "note"
	HandoverCall       = "advice call"
	HandoverDecision   = "decision"
	HandoverAlert      = "alert"
	HandoverCorrection = "details"
	HandoverPlan       = "plan"
)

// HandoverItem is one thing that changed in a resident's record.
type HandoverItem struct {
	At   time.Time
	Who  string // as the change names its author
	Kind string // one of the Handover kinds
	What string // in words
}

// HandoverResident is one resident's changes, newest first.
type HandoverResident struct {
	Row   Row
	Items []HandoverItem
	// Conflicts names the decisions in conflict now, whenever they arose.
	Conflicts []string
}

// ShiftStart is when the shift that now falls in began: care homes change
// shift at 08:00 and 20:00.
func ShiftStart(now time.Time) time.Time {
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, now.Location())
	switch {
	case now.Hour() >= 20:
		return day.Add(20 * time.Hour)
	case now.Hour() >= 8:
		return day.Add(8 * time.Hour)
	}
	return day.Add(-4 * time.Hour)
}

// Handover lists what changed since, in every resident held here: new
// notes and advice calls, decisions, alerts, corrections and plan changes,
// by resident, the residents with the newest changes first; and every
// resident with a conflict, changed or not. Audited as a view of each
// resident it names.
func (a *App) Handover(since time.Time) ([]HandoverResident, error) {
	u := a.CurrentUser()
	if u == nil {
		return nil, ErrLockedScreen
	}
	var out []HandoverResident
	for _, r := range a.Residents(Filter{}) {
		if !r.Held {
			continue
		}
		hr := HandoverResident{Row: r, Conflicts: r.Conflicts}
		if !r.Activity.Before(since) {
			items, err := a.handoverItems(r, since)
			if err != nil {
				return nil, err
			}
			hr.Items = items
		}
		if len(hr.Items) > 0 || len(hr.Conflicts) > 0 {
			out = append(out, hr)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return newest(out[i]).After(newest(out[j])) })
	ids := make([]docid.ID, len(out))
	for i, hr := range out {
		ids[i] = hr.Row.ID
	}
	a.audit.recordEach(u, ids, AuditViewHandover, "")
	return out, nil
}

func newest(hr HandoverResident) time.Time {
	if len(hr.Items) == 0 {
		return time.Time{}
	}
	return hr.Items[0].At
}

// handoverItems reads one resident's changes since: from what the row
// keeps of the last RecentWindow when since is within it (no document is
// opened), else from the record and the timeline themselves.
func (a *App) handoverItems(r Row, since time.Time) ([]HandoverItem, error) {
	var items []HandoverItem
	kept := !since.Before(a.opts.Now().Add(-RecentWindow)) && r.RecentRead &&
		!since.Before(recentFrom(r.RecentRecord)) && !since.Before(recentFrom(r.RecentTimeline))
	if kept {
		for _, it := range append(slices.Clone(r.RecentRecord), r.RecentTimeline...) {
			if !it.At.Before(since) {
				items = append(items, it)
			}
		}
	} else {
		rh, err := a.repo.Open(r.ID)
		if err != nil {
			return nil, err
		}
		if items, err = docItems(rh.Doc(), since, recordItem); err != nil {
			return nil, err
		}
		if tl, err := docid.Parse(r.Timeline); err == nil {
			if th, err := a.repo.Open(tl); err == nil {
				more, err := docItems(th.Doc(), since, timelineItem)
				if err != nil {
					return nil, err
				}
				items = append(items, more...)
			}
		}
	}
	sort.SliceStable(items, func(i, j int) bool { return items[i].At.After(items[j].At) })
	return items, nil
}

// RecentWindow is how far back each row keeps its resident's changes in
// words, so that a handover of the last day opens no document: the
// handover offers at most a day, or the last shift before this one.
const RecentWindow = 36 * time.Hour

// recentItems brings the items of one document a row keeps up to date:
// the changes since heads (when heads is empty, those of the window, found
// by walking back from the document's heads), in words, added to have;
// then all newest first, without those older than the window. It returns
// them with the heads they were read to. The cost follows the changes
// since the last time, not the document's history.
func recentItems(doc *crdt.Doc, heads string, have []HandoverItem, window time.Time,
	word func(*crdt.Doc, record.Change) (HandoverItem, bool)) ([]HandoverItem, string) {
	now := fullHeads(doc.Heads())
	var fresh []HandoverItem
	var err error
	if heads == "" {
		fresh, err = docItems(doc, window, word)
	} else if heads != now {
		var changes []record.Change
		if changes, err = record.After(doc, parseHeads(heads)); err == nil {
			for _, c := range changes {
				if it, ok := word(doc, c); ok && !it.At.Before(window) {
					fresh = append(fresh, it)
				}
			}
		}
	}
	if err != nil {
		return have, heads
	}
	out := append(fresh, have...)
	out = slices.DeleteFunc(out, func(it HandoverItem) bool { return it.At.Before(window) })
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	if len(out) > recentCap {
		out = out[:recentCap]
	}
	return out, now
}

// recentCap bounds the items a row keeps of one document: a home writes a
// handful a resident a shift, and a row is saved at every change, so a
// burst (an import, a script) must not make each save carry thousands.
// A handover reaching further back than a full row keeps reads the
// documents (see handoverItems).
const recentCap = 100

// recentFrom is the earliest time a row's kept items of one document
// answer for: zero while fewer than recentCap are kept.
func recentFrom(items []HandoverItem) time.Time {
	if len(items) < recentCap {
		return time.Time{}
	}
	return items[len(items)-1].At
}

// docItems words a document's changes made at or after since.
func docItems(doc *crdt.Doc, since time.Time, word func(*crdt.Doc, record.Change) (HandoverItem, bool)) ([]HandoverItem, error) {
	changes, err := record.Recent(doc, since)
	if err != nil {
		return nil, err
	}
	var out []HandoverItem
	for _, c := range changes {
		if it, ok := word(doc, c); ok {
			out = append(out, it)
		}
	}
	return out, nil
}

// who names a change's author as the handover shows them.
func who(c record.Change) string {
	if c.By.Name == "" {
		return "another program"
	}
	if l := c.By.Role.Label(); l != "" {
		return c.By.Name + " (" + l + ")"
	}
	return c.By.Name
}

// recordItem words a change to the record; creation and unknown writes
// are left out.
func recordItem(doc *crdt.Doc, c record.Change) (HandoverItem, bool) {
	it := HandoverItem{At: c.At, Who: who(c)}
	var fields []string
	for _, f := range c.Fields {
		fields = append(fields, fieldWords(f))
	}
	switch c.Op {
	case "decide":
		it.Kind = HandoverDecision
		it.What = "Recorded a decision"
		if len(c.Fields) == 1 {
			it.What += ": " + decisionWords(doc, c.Fields[0])
		}
	case "add-alert":
		it.Kind, it.What = HandoverAlert, "Added an alert"
		if len(c.Fields) == 1 {
			if v, ok, _ := doc.Get(append(strings.Split(c.Fields[0], "."), "text")...); ok {
				it.What += ": " + fmt.Sprint(v)
			}
		}
	case "alert-status":
		it.Kind, it.What = HandoverAlert, "Resolved an alert"
	case "identity", "contact", "add-contact":
		it.Kind, it.What = HandoverCorrection, opWords[c.Op]+": "+strings.Join(fields, ", ")
	case "care-plan", "review", "wishes", "respect-review":
		it.Kind, it.What = HandoverPlan, opWords[c.Op]
		if len(fields) > 0 && c.Op != "review" {
			it.What += ": " + strings.Join(fields, ", ")
		}
	default:
		return it, false
	}
	return it, true
}

// decisionWords is a decision entry's kind and value, from its field path
// (decisions.<kind>.<entry>).
func decisionWords(doc *crdt.Doc, field string) string {
	parts := strings.Split(field, ".")
	if len(parts) != 3 {
		return field
	}
	kind := record.Kind(parts[1])
	v, ok, _ := doc.Get(parts...)
	s, _ := v.(string)
	var e record.Entry
	if !ok || json.Unmarshal([]byte(s), &e) != nil {
		return kind.Label()
	}
	if t := record.Label(e.Text()); t != "" {
		return kind.Label() + ": " + t
	}
	return kind.Label()
}

// timelineItem words a note or advice call added, or one marked entered
// in error.
func timelineItem(doc *crdt.Doc, c record.Change) (HandoverItem, bool) {
	it := HandoverItem{At: c.At, Who: who(c)}
	switch c.Op {
	case "add-note":
		if len(c.Fields) != 1 {
			return it, false
		}
		v, ok, _ := doc.Get(strings.Split(c.Fields[0], ".")...)
		s, _ := v.(string)
		var n record.Note
		if !ok || json.Unmarshal([]byte(s), &n) != nil {
			return it, false
		}
		it.Kind, it.What = HandoverNote, n.Text
		if n.Kind == record.NoteKindAdviceCall {
			it.Kind = HandoverCall
			if n.Call != nil && n.Call.Outcome != "" {
				it.What = "Outcome: " + outcomeWords(n.Call.Outcome) + ". " + n.Text
			}
		}
	case "entered-in-error":
		it.Kind, it.What = HandoverNote, "Marked a note entered in error"
	default:
		return it, false
	}
	return it, true
}

// markSeen records that the person signed in has the resident's record
// open now: the list's marker of changes since goes.
func (a *App) markSeen(u *User, resident docid.ID) {
	if u == nil {
		return
	}
	now := a.opts.Now()
	a.mu.Lock()
	if a.seen == nil || a.seenBy != u.ID {
		a.seen, a.seenBy = a.loadSeenLocked(u.ID), u.ID
	}
	a.seen[resident.String()] = now
	key := u.ID + "/" + resident.String()
	// Saved at most once a minute a resident: a busy shift's changes do not
	// each cost a write, and a mark lost to a crash errs towards showing.
	save := now.Sub(a.seenSaved[key]) >= time.Minute
	if save {
		a.seenSaved[key] = now
	}
	st := a.st
	a.mu.Unlock()
	if st != nil && save {
		st.Put(context.Background(), nsSeen, key, []byte(now.UTC().Format(time.RFC3339Nano)))
	}
}

// seenFor is when the person last opened each resident. Caller holds a.mu.
func (a *App) seenForLocked(staffID string) map[string]time.Time {
	if a.seen == nil || a.seenBy != staffID {
		a.seen, a.seenBy = a.loadSeenLocked(staffID), staffID
	}
	return a.seen
}

func (a *App) loadSeenLocked(staffID string) map[string]time.Time {
	out := map[string]time.Time{}
	if a.st == nil {
		return out
	}
	a.st.Scan(nsSeen, staffID+"/", func(key string, val []byte) error {
		if t, err := time.Parse(time.RFC3339Nano, string(val)); err == nil {
			out[strings.TrimPrefix(key, staffID+"/")] = t
		}
		return nil
	})
	return out
}

// outcomeWords says an advice call's outcome (record.CallOutcomes).
func outcomeWords(o string) string {
	switch o {
	case "self-care":
		return "care in the home"
	case "gp":
		return "GP to see"
	case "999":
		return "999 called"
	case "conveyed":
		return "conveyed to hospital"
	case "died":
		return "died"
	}
	return o
}
