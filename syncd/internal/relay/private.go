package relay

import (
	"context"

	"haven/shared/wire"
	"haven/syncd/internal/worker"
)

// A person may withdraw consent to share their record. The record then
// stays with the home that cares for them: the relay serves it, and its
// timeline, to that home's devices only; a GP hub covering the home and the
// advice line lose it at once (their subscriptions end, their changes to it
// are refused, fetching it is answered as for a missing document) until
// consent is given again. The worker reads the record after each change
// (worker.RecordFacts); the relay keeps the set, on disk and in memory.

// allows reports whether c may hold doc, owned by owner: its scope covers
// the owner, and the document is shared, or c is the owner's own device.
// It takes no lock but privMu.
func (c *conn) allows(doc, owner string) bool {
	sc := c.sc()
	if !sc.Allows(owner) {
		return false
	}
	return !c.s.isPrivate(doc) || sc.Org.ID == owner
}

// A device whose scope covers a record's home but may not hold it (consent
// withdrawn) held it, or could have, and is told to let it go (haven-gone)
// rather than that it is missing, so that its copy is deleted and not
// asked for again (letGoCode, transfer.go). A document outside the scope
// altogether is answered as missing, as ever.

// letGo tells c to delete its copies of docs.
func (c *conn) letGo(code string, docs ...string) {
	c.send(wire.Message{Type: wire.TypeHavenGone, DocumentIDs: docs, ErrorCode: code})
}

func (s *Server) isPrivate(doc string) bool {
	s.privMu.RLock()
	defer s.privMu.RUnlock()
	return s.private[doc]
}

// recordFacts takes what the worker read of a record: when its sharing
// changed, the record and its timeline (when the same home owns it) are
// made private or shared again, and devices that may no longer hold them
// stop hearing of them.
func (s *Server) recordFacts(ctx context.Context, doc string, f *worker.RecordFacts) {
	if f.Home != "" && f.Home != s.owner(doc) {
		s.moveRecord(ctx, doc, f.Timeline, f.Home)
	}
	s.notePerson(ctx, doc, f.NHS)
	owner := s.owner(doc)
	docs := []string{doc}
	if f.Timeline != "" && s.owner(f.Timeline) == owner {
		docs = append(docs, f.Timeline)
	}
	s.privMu.Lock()
	changed := s.private[doc] != f.Withdrawn
	s.privMu.Unlock()
	if !changed {
		return
	}
	for _, d := range docs {
		var err error
		if f.Withdrawn {
			err = s.st.Put(ctx, nsPrivate, d, nil)
		} else {
			err = s.st.Delete(ctx, nsPrivate, d)
		}
		if err != nil {
			s.log.Error("record the sharing of a document", "doc", d, "err", err)
			return
		}
	}
	s.privMu.Lock()
	for _, d := range docs {
		if f.Withdrawn {
			s.private[d] = true
		} else {
			delete(s.private, d)
		}
	}
	s.privMu.Unlock()
	if !f.Withdrawn {
		s.reshare(ctx, doc, docs, owner)
		return
	}
	lost := 0
	told := map[*conn][]string{}
	s.mu.Lock()
	for _, d := range docs {
		for p := range s.subs[d] {
			if c := s.peers[p]; c == nil || !c.allows(d, owner) {
				delete(s.subs[d], p)
				if s.withheld[d] == nil {
					s.withheld[d] = map[string]bool{}
				}
				s.withheld[d][p] = true
				lost++
				if c != nil {
					told[c] = append(told[c], d)
				}
			}
		}
	}
	s.mu.Unlock()
	// After the subscriptions end: nothing of these documents is sent to
	// the devices told (deliver checks allows), though a message already
	// on its way may arrive after this one, and the device ignores it.
	for c, ds := range told {
		c.letGo(wire.CodeNotShared, ds...)
	}
	s.log.Info("consent to share withdrawn: the record stays with its home", "doc", doc, "subscriptions_ended", lost)
}

// reshare gives back the subscriptions a withdrawal ended, to peers still
// connected and in scope, and sends them the record as it is now (the
// timeline follows with its next change, or their next connection). The
// caller is the record's runner, so this is the only work on it now.
func (s *Server) reshare(ctx context.Context, doc string, docs []string, owner string) {
	args := worker.WorkArgs{Doc: doc}
	s.mu.Lock()
	for _, d := range docs {
		for p := range s.withheld[d] {
			c := s.peers[p]
			if c == nil || !c.allows(d, owner) {
				continue
			}
			s.subscribeLocked(d, p)
			if d == doc {
				args.Notify = append(args.Notify, p)
				args.Peers = append(args.Peers, c.peer)
			}
		}
		delete(s.withheld, d)
	}
	s.mu.Unlock()
	s.log.Info("consent to share given again: the record is shared", "doc", doc, "subscriptions_restored", len(args.Notify))
	if len(args.Notify) == 0 {
		return
	}
	reply, err := s.work.Work(ctx, args)
	if err != nil {
		s.log.Error("sending a record shared again", "doc", doc, "err", err)
		return
	}
	s.deliver(reply.Out)
}
