package relay

import (
	"context"
	"errors"
	"fmt"

	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/shared/store"
)

// One person has one record in the region: a second record naming an NHS
// number that another record holds is refused at the relay
// (record.PersonRule), whichever client made it, before anything of it is
// stored or passed on. A person who moves takes their record with them.
//
// The relay keeps which record holds each NHS number. Invariants:
//   - PersonNamespace holds, for every resident's record with a number,
//     record → number, as the record said after its last stored change
//     (the worker reads it: worker.RecordFacts), or as it was stored beside
//     a running relay (admin's demo data: IndexPerson);
//   - in memory, personOf is that namespace and persons its inverse, the
//     first record (by ID) for a number held by more than one: records made
//     before the rule existed keep working, and every new one is refused;
//   - a record may always keep the number it holds: only a new number is
//     checked, so a home is never locked out of a record it already has.
//
// The check and the recording are not one step: two homes admitting the
// same person in the same few milliseconds could both pass. The window is
// a worker call long, and both records are then kept, never lost.

// PersonNamespace maps each resident's record to its NHS number.
const PersonNamespace = "relay-person"

// personIndexed marks a store whose records were all read into
// PersonNamespace (stores older than the rule are read once, at start).
const personIndexed = "person-index"

// IndexPerson records a resident's record stored beside the relay (not
// through it), so the rule knows its number from the start.
func IndexPerson(ctx context.Context, st *store.Store, id docid.ID, nhs string) error {
	if nhs == "" {
		return nil
	}
	return st.Put(ctx, PersonNamespace, id.String(), []byte(nhs))
}

// loadPersons fills personOf and persons from the store, first reading
// every record once into PersonNamespace if the store predates it.
func (s *Server) loadPersons() error {
	if _, err := s.st.Get(nsMeta, personIndexed); errors.Is(err, store.ErrNotFound) {
		if err := s.indexAllPersons(); err != nil {
			return err
		}
	} else if err != nil {
		return err
	}
	return s.st.Scan(PersonNamespace, "", func(doc string, nhs []byte) error {
		s.notePersonLocked(doc, string(nhs))
		return nil
	})
}

// indexAllPersons reads the NHS number of every document the relay owns
// (once, for a store older than the rule). Documents are loaded one at a
// time and let go.
func (s *Server) indexAllPersons() error {
	ctx := context.Background()
	var ids []string
	if err := s.st.Scan(nsOwner, "", func(doc string, _ []byte) error {
		ids = append(ids, doc)
		return nil
	}); err != nil {
		return err
	}
	n := 0
	for _, doc := range ids {
		id, err := docid.Parse(doc)
		if err != nil {
			continue
		}
		r := repo.New(s.st, repo.Options{})
		h, err := r.Open(id)
		if err == nil {
			if t, _, _ := h.Doc().Get("type"); t == record.TypeResident {
				if err := IndexPerson(ctx, s.st, id, record.NHSNumberOf(h.Doc())); err != nil {
					r.Close()
					return err
				}
				n++
			}
		}
		r.Close()
	}
	if err := s.st.Put(ctx, nsMeta, personIndexed, []byte("1")); err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("NHS numbers of existing records indexed", "records", n)
	}
	return nil
}

// notePersonLocked records in memory that doc names nhs; s.mu held (or
// not yet shared, at start).
func (s *Server) notePersonLocked(doc, nhs string) {
	old := s.personOf[doc]
	if old == nhs {
		return
	}
	if nhs == "" {
		delete(s.personOf, doc)
	} else {
		s.personOf[doc] = nhs
	}
	if old != "" && s.persons[old] == doc {
		// The number's holder let it go: another record made before the
		// rule may still hold it (rare: a scan, only on a change of number).
		delete(s.persons, old)
		for d, n := range s.personOf {
			if n == old && (s.persons[old] == "" || d < s.persons[old]) {
				s.persons[old] = d
			}
		}
	}
	if nhs == "" {
		return
	}
	if cur := s.persons[nhs]; cur == "" || doc < cur {
		s.persons[nhs] = doc
	}
}

// notePerson records a stored record's NHS number, as the worker read it
// after the record's change.
func (s *Server) notePerson(ctx context.Context, doc, nhs string) {
	s.mu.Lock()
	same := s.personOf[doc] == nhs
	s.mu.Unlock()
	if same {
		return
	}
	var err error
	if nhs == "" {
		err = s.st.Delete(ctx, PersonNamespace, doc)
	} else {
		err = s.st.Put(ctx, PersonNamespace, doc, []byte(nhs))
	}
	if err != nil {
		s.log.Error("record which record holds an NHS number", "doc", doc, "err", err)
		return
	}
	s.mu.Lock()
	s.notePersonLocked(doc, nhs)
	s.mu.Unlock()
}

// registerPerson reads a document stored beside the running relay into
// memory (see RegisterDocument).
func (s *Server) registerPerson(doc string) {
	b, err := s.st.Get(PersonNamespace, doc)
	if err != nil {
		return
	}
	s.notePersonLocked(doc, string(b))
}

// Person implements the worker's question (worker.Host): may this record,
// held by this home, name nhs? A home other than the owner is a move,
// allowed only to a care home.
func (h host) Person(doc, home, nhs string) (rule, detail string) {
	s := h.s
	if owner := s.owner(doc); owner != "" && home != owner && !s.checkHome(home) {
		return record.RuleTransfer, record.TransferNotCareHome
	}
	if nhs == "" {
		return "", ""
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.personOf[doc] == nhs {
		return "", "" // the number it holds
	}
	holder := s.persons[nhs]
	if holder == "" || holder == doc {
		return "", ""
	}
	owner := s.owners[doc]
	if owner == "" {
		owner = home // a record being created: its home decides
	}
	holderHome := s.owners[holder]
	rule = record.PersonRule(owner, holderHome)
	if rule == record.RulePersonElsewhere {
		detail = holderHome
	}
	return rule, detail
}

// personWords is what a device is told when its record names a person
// another record holds.
func (s *Server) personWords(rule, holderHome string) string {
	if rule == record.RulePersonTwice {
		return "record refused: another resident of this home has this NHS number; nothing of it was stored or passed on"
	}
	name := "another care home"
	if o, err := s.orgs.Org(holderHome); err == nil {
		name = o.Name
	}
	return fmt.Sprintf("record refused: this person has a record at %s; ask them to transfer it. Nothing of it was stored or passed on", name)
}
