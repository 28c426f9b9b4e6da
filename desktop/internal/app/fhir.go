package app

import (
	"errors"
	"io"
	"time"

	"haven/desktop/internal/fhir"
	"haven/shared/docid"
	"haven/shared/record"
)

// AuditExportFHIR is the audit action of a FHIR export: the whole record
// leaves the computer, so it is audited as a view of everything.
const AuditExportFHIR = "export-fhir"

// ExportFHIR writes a resident's FHIR R4 document bundle to w, and audits it.
//
// The bundle is built from what the screens show: each decision as
// decisionView reads it (only entries that verify are decisions), the
// front sheet's alerts, and the last NEWS2 scored again from its
// observations. Package fhir decides how a disputed decision travels.
func (a *App) ExportFHIR(id docid.ID, w io.Writer) error {
	u, rec, _, err := a.view(id, AuditExportFHIR)
	if err != nil {
		return err
	}
	now := a.opts.Now()
	r := &fhir.Record{ID: id.String(), Exported: now, ExportedBy: by(u.author), Organisation: a.Device().OrgName,
		Identity: rec.Identity, CarePlan: rec.CarePlan, Wishes: rec.Wishes, PlanPublished: rec.Milestones().Plan,
		CPR: exportDecision(rec, record.KindCPR, ""), Focus: exportDecision(rec, record.KindFocus, ""),
		Ceiling: exportDecision(rec, record.KindCeiling, ""), ADRT: exportDecision(rec, record.KindADRT, ""),
		Allergies: exportDecision(rec, record.KindAllergies, ""), PlaceOfDeath: exportDecision(rec, record.KindPlaceOfDeath, ""),
		Authority: map[string]fhir.Decision{}, Altered: rec.Altered, Problems: rec.Problems}
	for _, c := range rec.Contacts {
		if c.Removed {
			continue
		}
		r.Contacts = append(r.Contacts, c)
		if c.Role == "attorney" {
			r.Authority[c.ID] = exportDecision(rec, record.KindAttorney, c.ID)
		}
	}
	for _, al := range rec.Alerts {
		if al.Status == "active" {
			r.Alerts = append(r.Alerts, fhir.Alert{ID: al.ID, Text: al.Text, Since: al.Since})
		}
	}
	for _, pa := range planAlerts(rec, now) {
		r.Alerts = append(r.Alerts, fhir.Alert{Text: pa})
	}
	r.NEWS2, r.NotesUnavailable = a.lastNEWS2(id)
	b, err := fhir.Build(r)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// exportDecision is a decision list as the screens show it, with the
// settled entry itself for the coded resources.
func exportDecision(rec *record.Record, k record.Kind, subject string) fhir.Decision {
	v := decisionView(rec, k, subject)
	d := fhir.Decision{Kind: k, Text: v.Text, By: v.By}
	switch v.State {
	case DecisionSettled:
		d.State = fhir.Settled
		d.Entry, _ = rec.Decision(k, subject).Settled()
	case DecisionConflict:
		d.State = fhir.Conflict
	case DecisionAltered:
		d.State = fhir.Altered
	default:
		d.State = fhir.NotRecorded
	}
	// The view's sides and unverified entries are the list's, in order;
	// times go as stored, for the export to write in one zone.
	s := rec.Decision(k, subject)
	for i, side := range v.Sides {
		d.Sides = append(d.Sides, fhir.Side{EntryID: side.EntryID, Text: side.Text, By: side.By, At: s.Current[i].At})
	}
	for i, u := range v.Unverified {
		d.Unverified = append(d.Unverified, fhir.Unverified{Text: u.Text, Claimed: u.Claimed, At: s.Unverified[i].Entry.At, Why: u.Why, Code: u.Code})
	}
	return d
}

// lastNEWS2 is the newest advice call's NEWS2, scored again from the
// observations it stored (CallScore); a note entered in error does not
// count. When the timeline cannot be read, it says why instead.
func (a *App) lastNEWS2(id docid.ID) (*fhir.NEWS2, string) {
	notes, err := a.Notes(id)
	switch {
	case errors.Is(err, ErrNotHeld):
		return nil, "the notes have not reached this computer yet"
	case err != nil:
		return nil, "the notes could not be read on this computer"
	}
	var last *fhir.NEWS2
	var lastAt time.Time
	for _, n := range notes {
		if n.InError || n.Call == nil {
			continue
		}
		s := CallScore(n.Call)
		t, err := time.Parse(time.RFC3339, n.EventAt)
		if !s.Complete || err != nil || (last != nil && !t.After(lastAt)) {
			continue
		}
		last, lastAt = &fhir.NEWS2{NoteID: n.ID, Total: s.Total, Band: string(s.Band), Response: s.Response,
			At: t.UTC().Format(time.RFC3339), By: by(n.Author)}, t
	}
	return last, ""
}
