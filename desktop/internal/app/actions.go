package app

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/news2"
	"haven/shared/record"
	"haven/shared/repo"
)

// Saved is what the UI tells staff after a change: it is on this computer's
// disk in every case; whether it has reached the relay depends on the line.
type Saved struct {
	Message string
}

const (
	savedOnline  = "Saved. It is being sent to the relay now."
	savedOffline = "Saved on this computer. It will be sent when the connection returns."
)

// Problem is an action refused, in plain words, with what to do next.
type Problem struct {
	Message string            // for the person at the screen
	Fields  map[string]string // field → problem, for highlighting
	Err     error             // for the log (no health data)
}

func (p *Problem) Error() string { return p.Message }
func (p *Problem) Unwrap() error { return p.Err }

// explain turns an error from below into a Problem staff can act on.
func explain(err error) error {
	if err == nil {
		return nil
	}
	var ve *record.ValidationError
	var dup *record.DuplicateError
	switch {
	case errors.As(err, &dup):
		who := strings.TrimSpace(dup.Held.GivenName + " " + dup.Held.FamilyName)
		if dup.Held.Room != "" {
			who += ", room " + dup.Held.Room
		}
		if dup.Held.Status != "" && dup.Held.Status != record.StatusActive {
			who += " (" + record.Label(dup.Held.Status) + ")"
		}
		return &Problem{Message: "Not saved: this home already has a record with that NHS number: " + who + ". One person has one record; open theirs instead.",
			Fields: map[string]string{"nhsNumber": "already held by " + who}, Err: err}
	case errors.As(err, &ve):
		p := &Problem{Message: "Not saved: please correct the highlighted fields.", Fields: map[string]string{}, Err: err}
		for _, f := range ve.Fields {
			p.Fields[f.Field] = f.Problem
		}
		return p
	case errors.Is(err, record.ErrNotPermitted):
		msg := err.Error()
		if i := strings.Index(msg, ":"); i > 0 {
			msg = "You cannot " + msg[:i] + ": your role does not allow it. Ask a senior colleague or clinician."
		}
		return &Problem{Message: msg, Err: err}
	case errors.Is(err, record.ErrTransfer):
		return &Problem{Message: "Not moved: only the home that holds the record can move it, and to another care home.", Err: err}
	case errors.Is(err, ErrLockedScreen), errors.Is(err, ErrNotHeld), errors.Is(err, ErrNotShared), errors.As(err, new(*MovedError)):
		return err
	case errors.Is(err, repo.ErrNotFound), errors.Is(err, record.ErrNotFound):
		return &Problem{Message: "That item is no longer in this record; it may have been changed on another computer. Reopen the record.", Err: err}
	}
	return &Problem{Message: "Not saved: this computer could not write the change to its disk. Try again; if it keeps failing, tell the home manager.", Err: err}
}

// change runs one edit on a document for the signed-in user: durable on
// disk before it returns, then offered to the relay and audited.
func (a *App) change(id, resident docid.ID, op string, fn func(ed *record.Editor, doc *crdt.Doc) error) (Saved, error) {
	u := a.CurrentUser()
	if u == nil {
		return Saved{}, ErrLockedScreen
	}
	ed, err := a.editor()
	if err != nil {
		return Saved{}, explain(err)
	}
	h, err := a.repo.Open(id)
	if errors.Is(err, repo.ErrNotFound) {
		return Saved{}, a.missing(id)
	}
	if err != nil {
		return Saved{}, explain(err)
	}
	if err := h.Change(context.Background(), func(doc *crdt.Doc) error { return fn(ed, doc) }); err != nil {
		a.log.Warn("change refused", "doc", id.String(), "op", op, "err", err)
		return Saved{}, explain(err)
	}
	a.audit.record(u, resident, AuditChange, op)
	a.markSeen(u, resident)
	if a.client != nil {
		a.client.Changed(id)
	}
	if a.idx.refresh(id) {
		a.emit(Event{Kind: EventList})
	}
	a.emit(Event{Kind: EventResident, Doc: resident})
	a.Touch()
	if a.client != nil && a.client.Status().Online {
		return Saved{Message: savedOnline}, nil
	}
	return Saved{Message: savedOffline}, nil
}

// UpdateIdentity changes a resident's details, keeping the home's directory
// in step (a rename or a new room shows in every list).
func (a *App) UpdateIdentity(id docid.ID, ident record.Identity) (Saved, error) {
	rec, _, err := a.record(id)
	if err != nil {
		return Saved{}, err
	}
	if err := a.checkNotHeld(rec.CurrentHome, ident.NHSNumber, id.String()); err != nil {
		return Saved{}, explain(err)
	}
	saved, err := a.change(id, id, "identity", func(ed *record.Editor, doc *crdt.Doc) error {
		return ed.UpdateIdentity(doc, ident)
	})
	if err != nil {
		return saved, err
	}
	a.reconcileDirectory(id)
	return saved, nil
}

// checkNotHeld asks whether another resident of the home has the NHS
// number (record.CheckNotHeldIn, over those with that number), over the
// list's rows: they hold every
// resident of the home's directory, and reading the directory document
// itself for each admission would make an import of n residents cost n².
func (a *App) checkNotHeld(home, nhsNumber, except string) error {
	a.idx.mu.RLock()
	var residents []record.DirectoryEntry
	for _, r := range a.idx.rows {
		if r.Home == home && record.SameNHSNumber(r.NHSNumber, nhsNumber) {
			residents = append(residents, record.DirectoryEntry{ID: r.ID.String(), GivenName: r.GivenName, FamilyName: r.FamilyName,
				NHSNumber: r.NHSNumber, DateOfBirth: r.DateOfBirth, Room: r.Room, Status: r.Status})
		}
	}
	a.idx.mu.RUnlock()
	return record.CheckNotHeldIn(residents, nhsNumber, except)
}

// reconcileDirectory brings the home's directory entry in line with the record.
func (a *App) reconcileDirectory(id docid.ID) {
	rec, rh, err := a.record(id)
	if err != nil {
		return
	}
	a.idx.mu.RLock()
	dirID, ok := a.idx.dirs[rec.CurrentHome]
	a.idx.mu.RUnlock()
	if !ok {
		return
	}
	dh, err := a.repo.Open(dirID)
	if err != nil {
		return
	}
	ed, err := a.editor()
	if err != nil {
		return
	}
	err = dh.Change(context.Background(), func(doc *crdt.Doc) error {
		_, err := ed.Reconcile(doc, rh.Doc())
		return err
	})
	if err == nil && a.client != nil {
		a.client.Changed(dirID)
	}
}

// UpdateCarePlan saves one domain of the care plan.
func (a *App) UpdateCarePlan(id docid.ID, e record.CarePlanEntry) (Saved, error) {
	return a.change(id, id, "care-plan", func(ed *record.Editor, doc *crdt.Doc) error { return ed.UpdateCarePlan(doc, e) })
}

// MarkReviewed records a review of one domain, setting the next date.
func (a *App) MarkReviewed(id docid.ID, d record.Domain, nextDue string) (Saved, error) {
	return a.change(id, id, "review", func(ed *record.Editor, doc *crdt.Doc) error { return ed.MarkReviewed(doc, d, nextDue) })
}

// UpdateWishes saves the advance wishes' ordinary fields.
func (a *App) UpdateWishes(id docid.ID, w record.Wishes) (Saved, error) {
	return a.change(id, id, "wishes", func(ed *record.Editor, doc *crdt.Doc) error { return ed.UpdateWishes(doc, w) })
}

// AddRespectReview records a ReSPECT review (clinicians).
func (a *App) AddRespectReview(id docid.ID, r record.Review) (Saved, error) {
	return a.change(id, id, "respect-review", func(ed *record.Editor, doc *crdt.Doc) error {
		_, err := ed.AddReview(doc, r)
		return err
	})
}

// Decide records a safety-critical decision. On a conflict, the decision
// supersedes every side the user sees: that is how a permitted clinician
// resolves it.
func (a *App) Decide(id docid.ID, k record.Kind, subject string, value any, reason string) (Saved, error) {
	return a.change(id, id, "decide-"+string(k), func(ed *record.Editor, doc *crdt.Doc) error {
		_, err := ed.Decide(doc, k, subject, value, reason)
		return err
	})
}

// CanDecide tells the UI whether to offer recording a kind of decision.
func (a *App) CanDecide(k record.Kind) bool {
	u := a.CurrentUser()
	return u != nil && u.signer.Cert != nil && record.CanDecide(u.Acts(), k)
}

// AddContact adds a contact.
func (a *App) AddContact(id docid.ID, c record.Contact) (Saved, error) {
	return a.change(id, id, "add-contact", func(ed *record.Editor, doc *crdt.Doc) error {
		_, err := ed.AddContact(doc, c)
		return err
	})
}

// UpdateContact changes a contact.
func (a *App) UpdateContact(id docid.ID, c record.Contact) (Saved, error) {
	return a.change(id, id, "contact", func(ed *record.Editor, doc *crdt.Doc) error { return ed.UpdateContact(doc, c) })
}

// AddAlert adds an alert.
func (a *App) AddAlert(id docid.ID, text string) (Saved, error) {
	return a.change(id, id, "add-alert", func(ed *record.Editor, doc *crdt.Doc) error {
		_, err := ed.AddAlert(doc, record.Alert{Text: text, Since: a.opts.Now().Format(record.DateLayout)})
		return err
	})
}

// ResolveAlert marks an alert resolved.
func (a *App) ResolveAlert(id docid.ID, alertID string) (Saved, error) {
	return a.change(id, id, "alert-status", func(ed *record.Editor, doc *crdt.Doc) error {
		return ed.SetAlertStatus(doc, alertID, "resolved")
	})
}

func (a *App) timelineOf(id docid.ID) (docid.ID, error) {
	rec, _, err := a.record(id)
	if err != nil {
		return docid.ID{}, err
	}
	if rec.Timeline == (docid.ID{}) {
		return docid.ID{}, &Problem{Message: "This record has no timeline to add notes to."}
	}
	return rec.Timeline, nil
}

// AddNote adds a note to the resident's timeline.
func (a *App) AddNote(id docid.ID, text string) (Saved, error) {
	tl, err := a.timelineOf(id)
	if err != nil {
		return Saved{}, err
	}
	return a.change(tl, id, "add-note", func(ed *record.Editor, doc *crdt.Doc) error {
		_, err := ed.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: text})
		return err
	})
}

// AdviceCall is the advice-call form.
type AdviceCall struct {
	Method, Caller, CallerRelation, Concern string
	SoftSigns                               []string
	Observations                            *news2.Observations // nil if none taken
	Advice, Outcome, Actions, FollowUp      string
	Text                                    string // free-text summary
}

// AddAdviceCall records an advice call, with its NEWS2 score computed here
// (never typed) and the version of the plan the clinician saw.
func (a *App) AddAdviceCall(id docid.ID, c AdviceCall) (Saved, error) {
	tl, err := a.timelineOf(id)
	if err != nil {
		return Saved{}, err
	}
	_, rh, err := a.record(id)
	if err != nil {
		return Saved{}, err
	}
	call := &record.AdviceCall{
		Method: c.Method, Caller: c.Caller, CallerRelation: c.CallerRelation, Concern: c.Concern, SoftSigns: c.SoftSigns,
		Advice: c.Advice, Outcome: c.Outcome, Actions: c.Actions, FollowUp: c.FollowUp,
		PlanSeen: headsText(rh.Doc().Heads()),
	}
	if o := c.Observations; o != nil {
		call.Observations = &record.Observations{RespRate: int64(o.RespRate), SpO2: int64(o.SpO2), SpO2Scale2: o.Scale2, OnOxygen: o.OnOxygen,
			Systolic: int64(o.Systolic), Pulse: int64(o.Pulse), Consciousness: o.Consciousness, Temperature: o.Temperature}
		if r, err := news2.Score(*o); err == nil {
			call.NEWS2, call.NEWS2Band = int64(r.Total), string(r.Band)
		}
	}
	return a.change(tl, id, "add-advice-call", func(ed *record.Editor, doc *crdt.Doc) error {
		_, err := ed.AddNote(doc, record.Note{Kind: record.NoteKindAdviceCall, Text: c.Text, Call: call})
		return err
	})
}

// MarkEnteredInError retires a note, keeping it visible as such.
func (a *App) MarkEnteredInError(id docid.ID, noteID, reason string) (Saved, error) {
	tl, err := a.timelineOf(id)
	if err != nil {
		return Saved{}, err
	}
	return a.change(tl, id, "entered-in-error", func(ed *record.Editor, doc *crdt.Doc) error {
		return ed.MarkEnteredInError(doc, noteID, reason)
	})
}

// Homes lists the care homes whose directories this computer holds.
func (a *App) Homes() []string {
	a.idx.mu.RLock()
	defer a.idx.mu.RUnlock()
	var out []string
	for h := range a.idx.dirs {
		out = append(out, h)
	}
	return out
}

// AddResident creates a resident in a home: record and timeline first (both
// durable), then the home's directory entry.
func (a *App) AddResident(home string, ident record.Identity) (docid.ID, Saved, error) {
	u := a.CurrentUser()
	if u == nil {
		return docid.ID{}, Saved{}, ErrLockedScreen
	}
	if a.AdviceLine() {
		// The relay refuses documents from the advice line too.
		return docid.ID{}, Saved{}, &Problem{Message: "The advice line opens the homes' records; residents are admitted by their home."}
	}
	ed, err := a.editor()
	if err != nil {
		return docid.ID{}, Saved{}, explain(err)
	}
	a.idx.mu.RLock()
	_, ok := a.idx.dirs[home]
	a.idx.mu.RUnlock()
	if !ok {
		return docid.ID{}, Saved{}, &Problem{Message: "This computer does not hold that home's resident list yet; wait for the download to finish."}
	}
	if err := a.checkNotHeld(home, ident.NHSNumber, ""); err != nil {
		return docid.ID{}, Saved{}, explain(err)
	}
	docs, err := ed.NewResident(home, ident)
	if err != nil {
		return docid.ID{}, Saved{}, explain(err)
	}
	ctx := context.Background()
	for _, d := range []struct {
		id  docid.ID
		doc *crdt.Doc
	}{{docs.RecordID, docs.Record}, {docs.TimelineID, docs.Timeline}} {
		if _, err := a.repo.Create(ctx, d.id, d.doc); err != nil {
			return docid.ID{}, Saved{}, explain(err)
		}
		if a.client != nil {
			a.client.Changed(d.id)
		}
	}
	a.idx.refresh(docs.RecordID)
	a.reconcileDirectory(docs.RecordID)
	a.audit.record(u, docs.RecordID, AuditChange, "add-resident")
	a.emit(Event{Kind: EventList})
	if a.client != nil && a.client.Status().Online {
		return docs.RecordID, Saved{Message: savedOnline}, nil
	}
	return docs.RecordID, Saved{Message: savedOffline}, nil
}

// Discharge marks a resident discharged or died; the record is kept.
func (a *App) Discharge(id docid.ID, status, date, placeOfDeath string) (Saved, error) {
	ident, err := a.Identity(id)
	if err != nil {
		return Saved{}, err
	}
	if status != record.StatusDischarged && status != record.StatusDied {
		return Saved{}, &Problem{Message: fmt.Sprintf("choose discharged or died, not %q", status)}
	}
	ident.Status, ident.StatusDate, ident.PlaceOfDeath = status, date, placeOfDeath
	return a.UpdateIdentity(id, ident)
}
