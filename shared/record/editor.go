package record

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
)

// ChangeMeta is the message of every change Haven writes: who made it and
// which fields it wrote. History reads it back.
type ChangeMeta struct {
	V      int      `json:"v"`
	Op     string   `json:"op"`
	By     Author   `json:"by"`
	Fields []string `json:"f"`
}

// ErrNotPermitted is wrapped when the author's role may not make a change.
var ErrNotPermitted = errors.New("not permitted for this role")

// ErrNotFound is wrapped when a change names a contact, note or alert the
// record does not hold.
var ErrNotFound = errors.New("not found in this record")

// Editor makes changes on behalf of one author. Every method validates its
// input completely before writing, and each successful call is exactly one
// Automerge change.
type Editor struct {
	Author Author
	Rules  Rules
	// Signer signs decisions; an editor without one (a member of staff not
	// yet certified) may write everything but decisions.
	Signer Signer
}

// NewEditor checks the author once.
func NewEditor(a Author, r Rules) (*Editor, error) {
	if err := ValidateAuthor(a); err != nil {
		return nil, err
	}
	return &Editor{Author: a, Rules: r}, nil
}

func (e *Editor) now() time.Time { return e.Rules.now().UTC().Truncate(time.Second) }

// change commits fn as one change whose message names the author and fields.
func (e *Editor) change(doc *crdt.Doc, op string, fields []string, fn func(w *crdt.Writer) error) error {
	msg, _ := json.Marshal(ChangeMeta{V: 1, Op: op, By: e.Author, Fields: fields})
	_, err := doc.Change(string(msg), e.now(), fn)
	if errors.Is(err, crdt.ErrNoChange) {
		return nil
	}
	return err
}

func (e *Editor) require(ok bool, what string) error {
	if ok {
		return nil
	}
	return fmt.Errorf("%s: %w (%s)", what, ErrNotPermitted, e.Author.Role.Label())
}

// Staff who may edit identity, contacts, alerts and the care plan.
func (r Role) editsRecord() bool { return r != CareWorker && r != IGLead && r != "" }

// NewID returns a random ID for a contact, alert, note or decision entry.
func NewID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b[:])
}

// NewDocs are the two documents a new resident starts with.
type NewDocs struct {
	RecordID   docid.ID
	Record     *crdt.Doc
	TimelineID docid.ID
	Timeline   *crdt.Doc
}

// NewResident creates a resident's record, with every container in place,
// and their empty timeline.
func (e *Editor) NewResident(home string, id Identity) (NewDocs, error) {
	var out NewDocs
	if err := e.require(e.Author.Role.editsRecord(), "add a resident"); err != nil {
		return out, err
	}
	if id.Status == "" {
		id.Status = StatusActive
	}
	if err := ValidateIdentity(id, e.Rules); err != nil {
		return out, err
	}
	if strings.TrimSpace(home) == "" {
		return out, errors.New("a resident belongs to a care home")
	}
	out.RecordID, out.TimelineID = docid.New(), docid.New()
	carePlan := map[string]any{}
	for _, d := range Domains {
		carePlan[string(d)] = toFields(CarePlanEntry{})
	}
	decisions := map[string]any{}
	for _, k := range Kinds {
		decisions[string(k)] = map[string]any{}
	}
	wishes := toFields(Wishes{})
	wishes["reviews"] = map[string]any{}
	out.Record = crdt.New()
	err := e.change(out.Record, "create", []string{"identity", "carePlan", "wishes"}, func(w *crdt.Writer) error {
		return setAll(w, map[string]any{
			"schema": int64(SchemaVersion), "type": "resident", "id": out.RecordID.String(), "home": home,
			"identity": toFields(id), "contacts": map[string]any{}, "alerts": map[string]any{},
			"carePlan": carePlan, "wishes": wishes, "decisions": decisions,
			"timeline": out.TimelineID.String(),
		})
	})
	if err != nil {
		return out, err
	}
	out.Timeline = crdt.New()
	err = e.change(out.Timeline, "create-timeline", []string{"notes"}, func(w *crdt.Writer) error {
		return setAll(w, map[string]any{
			"schema": int64(SchemaVersion), "type": "timeline", "id": out.TimelineID.String(),
			"home": home, "resident": out.RecordID.String(), "notes": map[string]any{}, "noteStatus": map[string]any{},
		})
	})
	return out, err
}

func setAll(w *crdt.Writer, fields map[string]any) error {
	for k, v := range fields {
		if err := w.Set(v, k); err != nil {
			return err
		}
	}
	return nil
}

// updateFields writes only the fields of next that differ from what the
// document holds at path, so concurrent edits of other fields merge.
func (e *Editor) updateFields(doc *crdt.Doc, op string, next map[string]any, path ...string) ([]string, error) {
	cur, ok, err := doc.Get(path...)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%s: %w", strings.Join(path, "."), ErrNotFound)
	}
	keys := diff(asMap(cur), next)
	if len(keys) == 0 {
		return nil, nil
	}
	prefix := strings.Join(path, ".")
	fields := make([]string, len(keys))
	for i, k := range keys {
		fields[i] = prefix + "." + k
	}
	return keys, e.change(doc, op, fields, func(w *crdt.Writer) error {
		for _, k := range keys {
			if err := w.Set(next[k], append(path[:len(path):len(path)], k)...); err != nil {
				return err
			}
		}
		return nil
	})
}

// UpdateIdentity writes the identity fields that changed. Callers that hold
// the home's directory use Directory.UpdateResident, which calls this.
func (e *Editor) UpdateIdentity(doc *crdt.Doc, id Identity) error {
	if err := e.require(e.Author.Role.editsRecord(), "change identity"); err != nil {
		return err
	}
	if err := ValidateIdentity(id, e.Rules); err != nil {
		return err
	}
	_, err := e.updateFields(doc, "identity", toFields(id), "identity")
	return err
}

// AddContact adds a contact and returns its ID.
func (e *Editor) AddContact(doc *crdt.Doc, c Contact) (string, error) {
	if err := e.require(e.Author.Role.editsRecord(), "add a contact"); err != nil {
		return "", err
	}
	if err := ValidateContact(c, e.Rules); err != nil {
		return "", err
	}
	c.ID = NewID()
	c.Removed = false
	return c.ID, e.change(doc, "add-contact", []string{"contacts." + c.ID}, func(w *crdt.Writer) error {
		return w.Set(toFields(c), "contacts", c.ID)
	})
}

// UpdateContact writes the fields of a contact that changed.
func (e *Editor) UpdateContact(doc *crdt.Doc, c Contact) error {
	if err := e.require(e.Author.Role.editsRecord(), "change a contact"); err != nil {
		return err
	}
	if err := ValidateContact(c, e.Rules); err != nil {
		return err
	}
	_, err := e.updateFields(doc, "contact", toFields(c), "contacts", c.ID)
	return err
}

// AddAlert adds an active alert and returns its ID.
func (e *Editor) AddAlert(doc *crdt.Doc, a Alert) (string, error) {
	if err := e.require(e.Author.Role.editsRecord(), "add an alert"); err != nil {
		return "", err
	}
	a.ID = NewID()
	if a.Status == "" {
		a.Status = "active"
	}
	if err := ValidateAlert(a, e.Rules); err != nil {
		return "", err
	}
	return a.ID, e.change(doc, "add-alert", []string{"alerts." + a.ID}, func(w *crdt.Writer) error {
		return w.Set(toFields(a), "alerts", a.ID)
	})
}

// SetAlertStatus resolves or reinstates an alert.
func (e *Editor) SetAlertStatus(doc *crdt.Doc, id, status string) error {
	if err := e.require(e.Author.Role.editsRecord(), "change an alert"); err != nil {
		return err
	}
	if !oneOf(status, AlertStatuses) {
		return &ValidationError{Fields: []*FieldError{{"status", "must be active or resolved"}}}
	}
	_, err := e.updateFields(doc, "alert-status", map[string]any{"status": status}, "alerts", id)
	return err
}

// UpdateCarePlan writes the changed fields of one domain and stamps who
// updated it.
func (e *Editor) UpdateCarePlan(doc *crdt.Doc, c CarePlanEntry) error {
	if err := e.require(e.Author.Role.editsRecord(), "change the care plan"); err != nil {
		return err
	}
	if err := ValidateCarePlan(c, e.Rules); err != nil {
		return err
	}
	cur, ok, err := doc.Get("carePlan", string(c.Domain))
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("care plan domain %s: %w", c.Domain, ErrNotFound)
	}
	next := toFields(c)
	if len(diff(asMap(cur), next)) == 0 {
		return nil
	}
	next["updatedBy"] = e.Author.Name
	next["updatedAt"] = Timestamp(e.now())
	_, err = e.updateFields(doc, "care-plan", next, "carePlan", string(c.Domain))
	return err
}

// MarkReviewed records a review of one domain and sets the next review date.
func (e *Editor) MarkReviewed(doc *crdt.Doc, d Domain, nextDue string) error {
	if err := e.require(e.Author.Role.editsRecord(), "review the care plan"); err != nil {
		return err
	}
	c := &checker{rules: e.Rules}
	c.date("reviewDue", nextDue, false, false)
	if err := c.err(); err != nil {
		return err
	}
	if due, _ := time.Parse(DateLayout, nextDue); !due.After(e.now()) {
		return &ValidationError{Fields: []*FieldError{{"reviewDue", "the next review must be after today"}}}
	}
	_, err := e.updateFields(doc, "review", map[string]any{
		"lastReviewed": e.now().Format(DateLayout), "lastReviewedBy": e.Author.Name, "reviewDue": nextDue,
	}, "carePlan", string(d))
	return err
}

// clinicalWishFields are the ReSPECT entries only a clinician may change.
var clinicalWishFields = map[string]bool{
	"interventionGuidance": true, "capacity": true, "capacityHow": true, "involvement": true,
	"clinicianName": true, "clinicianRole": true, "clinicianReg": true, "clinicianAt": true,
	"seniorName": true, "seniorRole": true, "seniorReg": true, "seniorAt": true,
	"cprDecisionDate": true, "cprReviewDate": true, "prognosis": true, "anticipatoryMeds": true,
	"planStatus": true, "planApprover": true,
}

// UpdateWishes writes the changed ordinary fields of the advance wishes.
// Clinical fields need a clinician.
func (e *Editor) UpdateWishes(doc *crdt.Doc, wi Wishes) error {
	if err := e.require(e.Author.Role.editsRecord(), "change advance wishes"); err != nil {
		return err
	}
	if err := ValidateWishes(wi, e.Rules); err != nil {
		return err
	}
	cur, ok, err := doc.Get("wishes")
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("wishes: %w", ErrNotFound)
	}
	next := toFields(wi)
	if !e.Author.Role.Clinician() {
		for _, k := range diff(asMap(cur), next) {
			if clinicalWishFields[k] {
				return fmt.Errorf("change %s: %w (%s; a clinician must)", k, ErrNotPermitted, e.Author.Role.Label())
			}
		}
	}
	_, err = e.updateFields(doc, "wishes", next, "wishes")
	return err
}

// AddReview records a ReSPECT review (section 9); clinicians only.
func (e *Editor) AddReview(doc *crdt.Doc, r Review) (string, error) {
	if err := e.require(e.Author.Role.Clinician(), "review the ReSPECT plan"); err != nil {
		return "", err
	}
	if err := ValidateWishes(Wishes{Reviews: []Review{r}}, e.Rules); err != nil {
		return "", err
	}
	r.ID = NewID()
	return r.ID, e.change(doc, "respect-review", []string{"wishes.reviews." + r.ID}, func(w *crdt.Writer) error {
		return w.Set(toFields(r), "wishes", "reviews", r.ID)
	})
}

// ErrNotCertified is wrapped when the author has no staff certificate that
// can sign a decision now (not yet certified, expired or revoked).
var ErrNotCertified = errors.New("no staff certificate that can sign decisions")

// Decide records a safety-critical decision, signed by the editor's Signer.
// It supersedes every entry that is current on this copy, so it settles a
// conflict shown to the author; an entry made concurrently elsewhere stays
// current beside it and shows as a conflict after sync. Before writing it
// verifies the entry exactly as the relay and every reader will (against
// Rules.Trust), so it never writes an entry that others refuse. It returns
// the new entry's ID.
func (e *Editor) Decide(doc *crdt.Doc, k Kind, subject string, value any, reason string) (string, error) {
	if e.Signer == nil || e.Signer.Certificate() == nil {
		return "", fmt.Errorf("record the %s: %w (not yet certified)", strings.ToLower(k.Label()), ErrNotCertified)
	}
	c := e.Signer.Certificate()
	author := CertificateAuthor(c, e.Author.DeviceID)
	if c.Staff != e.Author.UserID {
		return "", fmt.Errorf("record the %s: %w (the certificate is another person's)", strings.ToLower(k.Label()), ErrNotCertified)
	}
	if err := ValidateDecision(k, subject, value, reason, author, e.Rules); err != nil {
		if !CanDecide(author.Role, k) {
			return "", fmt.Errorf("record the %s: %w (%s)", strings.ToLower(k.Label()), ErrNotPermitted, author.Role.Label())
		}
		return "", err
	}
	if k == KindAttorney {
		v, ok, err := doc.Get("contacts", subject, "role")
		if err != nil {
			return "", err
		}
		if !ok || v != "attorney" {
			return "", fmt.Errorf("attorney %s: %w", subject, ErrNotFound)
		}
	}
	raw, ok, err := doc.Get("decisions", string(k))
	if err != nil {
		return "", err
	}
	if !ok {
		return "", fmt.Errorf("decisions.%s: %w", k, ErrNotFound)
	}
	docID, _, _ := doc.Get("id")
	entries, flagged, _ := readEntries(k, asMap(raw))
	state := newState(e.Rules.Trust, asString(docID), k, subject, entries[subject], flagged)
	val, _ := json.Marshal(value)
	entry := Entry{
		ID: NewID(), Subject: subject, Value: string(val), Author: author,
		At: Timestamp(e.now()), Reason: reason, Supersedes: []string{}, Cert: c,
	}
	for _, c := range state.Current {
		entry.Supersedes = append(entry.Supersedes, c.ID)
	}
	entry.Sig = e.Signer.Sign(EntrySigningBytes(asString(docID), k, entry))
	if _, err := VerifyEntry(e.Rules.Trust, asString(docID), k, entry.ID, entry); err != nil {
		return "", fmt.Errorf("record the %s: %w (%v)", strings.ToLower(k.Label()), ErrNotCertified, err)
	}
	field := "decisions." + string(k) + "." + entry.ID
	body, _ := json.Marshal(entry)
	return entry.ID, e.change(doc, "decide", []string{field}, func(w *crdt.Writer) error {
		return w.Set(string(body), "decisions", string(k), entry.ID)
	})
}

// AddNote adds a note or advice call to a resident's timeline document and
// returns its ID.
func (e *Editor) AddNote(timeline *crdt.Doc, n Note) (string, error) {
	doc := timeline
	if err := e.require(e.Author.Role != IGLead, "add a note"); err != nil {
		return "", err
	}
	if n.Kind == NoteKindAdviceCall {
		if err := e.require(e.Author.Role.Clinician(), "record an advice call"); err != nil {
			return "", err
		}
	}
	if n.EventAt == "" {
		n.EventAt = Timestamp(e.now())
	}
	if err := ValidateNote(n, e.Rules); err != nil {
		return "", err
	}
	n.ID = NewID()
	n.RecordedAt = Timestamp(e.now())
	n.Author = e.Author
	n.Status, n.ErrorReason, n.ErrorBy, n.ErrorAt = "", "", "", ""
	body, _ := json.Marshal(n)
	return n.ID, e.change(doc, "add-note", []string{"notes." + n.ID}, func(w *crdt.Writer) error {
		return w.Set(string(body), "notes", n.ID)
	})
}

// MarkEnteredInError retires a note in a timeline without deleting it; its
// author or a senior member of staff may do so, giving a reason.
func (e *Editor) MarkEnteredInError(timeline *crdt.Doc, noteID, reason string) error {
	doc := timeline
	raw, ok, err := doc.Get("notes", noteID)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("note %s: %w", noteID, ErrNotFound)
	}
	n, _ := readNote(noteID, raw, nil)
	if err := e.require(n.Author.UserID == e.Author.UserID || e.Author.Role.editsRecord(), "mark another person's note entered in error"); err != nil {
		return err
	}
	if strings.TrimSpace(reason) == "" {
		return &ValidationError{Fields: []*FieldError{{"reason", "say why the note was entered in error"}}}
	}
	status, _ := json.Marshal(map[string]string{
		"status": NoteEnteredInError, "errorReason": reason, "errorBy": e.Author.Name, "errorAt": Timestamp(e.now()),
	})
	return e.change(doc, "entered-in-error", []string{"noteStatus." + noteID}, func(w *crdt.Writer) error {
		return w.Set(string(status), "noteStatus", noteID)
	})
}
