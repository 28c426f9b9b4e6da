package record

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"haven/shared/crdt"
	"haven/shared/docid"
)

// A care home's directory document lists its residents with the fields a
// list and a search need, so a device learns what to sync from one document:
//
//	schema, type "directory", home (organisation ID), name
//	residents   map residentDocID → DirectoryEntry fields
//
// The resident's own record is the source of truth; Reconcile repairs an
// entry that drifted (a crash between the two writes, or two devices whose
// concurrent renames resolved differently in the two documents).

// DirectoryEntry is one resident as the home's list shows them.
type DirectoryEntry struct {
	ID            string `json:"-"`
	GivenName     string `json:"givenName"`
	FamilyName    string `json:"familyName"`
	PreferredName string `json:"preferredName"`
	NHSNumber     string `json:"nhsNumber"`
	DateOfBirth   string `json:"dateOfBirth"`
	Room          string `json:"room"`
	Status        string `json:"status"`
}

// Directory is a home's directory as read.
type Directory struct {
	Home      string
	Name      string
	Residents []DirectoryEntry // by family name, given name, ID
	Problems  []string
}

func entryFor(id Identity) DirectoryEntry {
	return DirectoryEntry{
		GivenName: id.GivenName, FamilyName: id.FamilyName, PreferredName: id.PreferredName,
		NHSNumber: id.NHSNumber, DateOfBirth: id.DateOfBirth, Room: id.Room, Status: id.Status,
	}
}

// NewDirectory creates a home's empty directory.
func (e *Editor) NewDirectory(home, name string) (*crdt.Doc, docid.ID, error) {
	if strings.TrimSpace(home) == "" || strings.TrimSpace(name) == "" {
		return nil, docid.ID{}, errors.New("a directory needs the home's ID and name")
	}
	id := docid.New()
	doc := crdt.New()
	err := e.change(doc, "create-directory", []string{"residents"}, func(w *crdt.Writer) error {
		for k, v := range map[string]any{
			"schema": int64(SchemaVersion), "type": "directory", "id": id.String(),
			"home": home, "name": name, "residents": map[string]any{},
		} {
			if err := w.Set(v, k); err != nil {
				return err
			}
		}
		return nil
	})
	return doc, id, err
}

// ReadDirectory reads a directory document; like FromTree it never fails on
// content, only on a document it cannot walk.
func ReadDirectory(doc *crdt.Doc) (*Directory, error) {
	root, err := doc.Root()
	if err != nil {
		return nil, fmt.Errorf("read directory: %w", err)
	}
	return DirectoryFromTree(root), nil
}

// DirectoryFromTree builds a Directory from a plain tree, tolerantly.
func DirectoryFromTree(root map[string]any) *Directory {
	d := &Directory{Home: asString(root["home"]), Name: asString(root["name"])}
	if asString(root["type"]) != "directory" {
		d.Problems = append(d.Problems, "type: not a directory")
	}
	for id, v := range asMap(root["residents"]) {
		if _, err := docid.Parse(id); err != nil {
			d.Problems = append(d.Problems, "residents: malformed document ID")
			continue
		}
		var e DirectoryEntry
		d.Problems = append(d.Problems, fromFields(asMap(v), &e, "residents."+id)...)
		e.ID = id
		d.Residents = append(d.Residents, e)
	}
	sort.Slice(d.Residents, func(i, j int) bool {
		a, b := d.Residents[i], d.Residents[j]
		if a.FamilyName != b.FamilyName {
			return a.FamilyName < b.FamilyName
		}
		if a.GivenName != b.GivenName {
			return a.GivenName < b.GivenName
		}
		return a.ID < b.ID
	})
	return d
}

// AddResident creates a resident's record and lists them in the directory.
// The record is written first: if the directory write is lost, Reconcile
// finds the record and adds the entry.
func (e *Editor) AddResident(dir *crdt.Doc, id Identity) (NewDocs, error) {
	home, ok, err := dir.Get("home")
	if err != nil || !ok {
		return NewDocs{}, fmt.Errorf("directory has no home: %v", err)
	}
	if err := CheckNotHeld(dir, id.NHSNumber, ""); err != nil {
		return NewDocs{}, err
	}
	docs, err := e.NewResident(asString(home), id)
	if err != nil {
		return docs, err
	}
	r, err := Read(docs.Record, nil)
	if err != nil {
		return docs, err
	}
	if err := e.putEntry(dir, docs.RecordID.String(), entryFor(r.Identity)); err != nil {
		return docs, fmt.Errorf("resident saved, directory not updated: %w", err)
	}
	return docs, nil
}

func (e *Editor) putEntry(dir *crdt.Doc, id string, entry DirectoryEntry) error {
	if _, ok, err := dir.Get("residents", id); err != nil {
		return err
	} else if !ok {
		return e.change(dir, "list-resident", []string{"residents." + id}, func(w *crdt.Writer) error {
			return w.Set(toFields(entry), "residents", id)
		})
	}
	_, err := e.updateFields(dir, "list-resident", toFields(entry), "residents", id)
	return err
}

// UpdateResident changes a resident's identity (a rename, a new room) in the
// record and then in the directory.
func (e *Editor) UpdateResident(dir, rec *crdt.Doc, id Identity) error {
	r, err := Read(rec, nil)
	if err != nil {
		return err
	}
	if err := CheckNotHeld(dir, id.NHSNumber, r.ID.String()); err != nil {
		return err
	}
	if err := e.UpdateIdentity(rec, id); err != nil {
		return err
	}
	_, err = e.Reconcile(dir, rec)
	return err
}

// Discharge marks a resident discharged (or died) on a date, keeping the
// record: nothing in Haven is deleted.
func (e *Editor) Discharge(dir, rec *crdt.Doc, status, date, placeOfDeath string) error {
	if status != StatusDischarged && status != StatusDied {
		return &ValidationError{Fields: []*FieldError{{"status", "must be discharged or died"}}}
	}
	r, err := Read(rec, nil)
	if err != nil {
		return err
	}
	id := r.Identity
	id.Status, id.StatusDate, id.PlaceOfDeath = status, date, placeOfDeath
	return e.UpdateResident(dir, rec, id)
}

// Reconcile makes the directory entry for rec match the record. It reports
// whether it wrote anything.
func (e *Editor) Reconcile(dir, rec *crdt.Doc) (bool, error) {
	r, err := Read(rec, nil)
	if err != nil {
		return false, err
	}
	if r.ID == (docid.ID{}) {
		return false, errors.New("record has no valid ID")
	}
	home, _, err := dir.Get("home")
	if err != nil {
		return false, err
	}
	if r.CurrentHome != asString(home) {
		return false, fmt.Errorf("resident %s belongs to another home", r.ID)
	}
	want := toFields(entryFor(r.Identity))
	cur, ok, err := dir.Get("residents", r.ID.String())
	if err != nil {
		return false, err
	}
	if ok && len(diff(asMap(cur), want)) == 0 {
		return false, nil
	}
	return true, e.putEntry(dir, r.ID.String(), entryFor(r.Identity))
}

// DuplicateError refuses a second record for a person the home already
// holds: one record per person, with the NHS number as its key (EPaCCS).
// Held is the resident who has the number, discharged or not (a return is
// a readmission of that record).
type DuplicateError struct {
	Held DirectoryEntry
}

func (e *DuplicateError) Error() string {
	return fmt.Sprintf("NHS number already held in this home by %s %s, room %q (%s)", e.Held.GivenName, e.Held.FamilyName, e.Held.Room, e.Held.Status)
}

// CheckNotHeld returns a *DuplicateError if the home's directory lists a
// resident with this NHS number (compared by its digits) other than the
// record except: the one rule for admitting and for changing a number.
func CheckNotHeld(dir *crdt.Doc, nhsNumber, except string) error {
	if digits(nhsNumber) == "" {
		return nil
	}
	d, err := ReadDirectory(dir)
	if err != nil {
		return err
	}
	return CheckNotHeldIn(d.Residents, nhsNumber, except)
}

// CheckNotHeldIn is CheckNotHeld over a home's residents as already read
// (a desktop's list holds them).
func CheckNotHeldIn(residents []DirectoryEntry, nhsNumber, except string) error {
	for _, r := range residents {
		if r.ID != except && SameNHSNumber(r.NHSNumber, nhsNumber) {
			return &DuplicateError{Held: r}
		}
	}
	return nil
}

// SameNHSNumber reports whether two NHS numbers, as stored or as typed
// (with spaces), are the same number.
func SameNHSNumber(a, b string) bool {
	da := digits(a)
	return da != "" && da == digits(b)
}

func digits(s string) string {
	var b strings.Builder
	for _, c := range s {
		if c >= '0' && c <= '9' {
			b.WriteRune(c)
		}
	}
	return b.String()
}
