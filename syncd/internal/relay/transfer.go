package relay

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"haven/shared/wire"
	"haven/syncd/internal/orgs"
)

// A resident who moves to another care home takes their record with them
// (record.Transfer): a signed entry the workers vet like any change, whose
// target the relay confirms is a care home (Person). When the worker
// reports that a stored record's current home differs from its owner, the
// relay makes the receiving home the owner of the record and of its
// timeline, durably, remembers who held them before (nsMoved), audits the
// move, tells the sending home's devices to let both go (haven-gone,
// CodeTransferred) and sends both to the receiving home's connected
// devices. A device of a home that once held them and offers them later is
// told to let them go, like one whose scope lost a record whose consent
// was withdrawn.
//
// Owners change only here; every other path adds owners. A message judged
// against the former owner is judged again against the new one when its
// document's runner takes it (process).

// nsMoved: document → the organisations that held it before (JSON list).
const nsMoved = "relay-moved"

// ActionTransfer is the audit action of a record's move between homes.
const ActionTransfer = "transfer"

func (s *Server) loadMoved() error {
	return s.st.Scan(nsMoved, "", func(doc string, val []byte) error {
		var from []string
		if err := json.Unmarshal(val, &from); err != nil {
			return fmt.Errorf("moved document %s: %w", doc, err)
		}
		s.moved[doc] = from
		return nil
	})
}

// heldBefore reports whether c's scope covers an organisation that held
// doc before its last move.
func (c *conn) heldBefore(doc string) bool {
	c.s.mu.Lock()
	from := c.s.moved[doc]
	c.s.mu.Unlock()
	sc := c.sc()
	return slices.ContainsFunc(from, sc.Allows)
}

// letGoCode is the code under which c is told to let doc go, held by
// owner, or "" when c is answered as for a document it never had: consent
// withdrawn and c's scope covers the home (CodeNotShared), or c's scope
// covered a home that held it before it moved (CodeTransferred).
func (c *conn) letGoCode(doc, owner string) string {
	switch {
	case owner == "" || c.allows(doc, owner):
		return ""
	case c.sc().Allows(owner):
		return wire.CodeNotShared
	case c.heldBefore(doc):
		return wire.CodeTransferred
	}
	return ""
}

// checkHome is the relay's part of the transfer rule: a record may move
// only to a care home the relay knows.
func (s *Server) checkHome(home string) bool {
	o, err := s.orgs.Org(home)
	return err == nil && o.Kind == orgs.KindHome
}

// moveRecord makes to the owner of a record (and of its timeline, when its
// former home owned it too), as the record's verified transfers say.
func (s *Server) moveRecord(ctx context.Context, doc, timeline, to string) {
	from := s.owner(doc)
	if from == "" || from == to || !s.checkHome(to) {
		return
	}
	docs := []string{doc}
	if timeline != "" && s.owner(timeline) == from {
		docs = append(docs, timeline)
	}
	for _, d := range docs {
		s.mu.Lock()
		before := append(slices.Clone(s.moved[d]), from)
		s.mu.Unlock()
		b, _ := json.Marshal(before)
		if err := s.st.Put(ctx, nsMoved, d, b); err != nil {
			s.log.Error("record a document's former owner", "doc", d, "err", err)
			return
		}
		if err := s.st.Put(ctx, nsOwner, d, []byte(to)); err != nil {
			s.log.Error("record a document's new owner", "doc", d, "err", err)
			return
		}
		s.mu.Lock()
		s.moved[d], s.owners[d] = before, to
		s.mu.Unlock()
	}
	toName := to
	if o, err := s.orgs.Org(to); err == nil {
		toName = o.Name
	}
	if _, err := s.orgs.Audit(ctx, orgs.AuditEvent{Device: "relay", Org: from, Owner: to, Resident: doc, Action: ActionTransfer,
		Detail: "record and timeline moved from " + from + " to " + to, ByRelay: true}); err != nil {
		s.log.Error("audit a record's move", "doc", doc, "err", err)
	}

	// The sending side loses them; the receiving side is sent them.
	told := map[*conn][]string{}
	var arrive []*conn
	s.mu.Lock()
	for _, d := range docs {
		for p := range s.subs[d] {
			if c := s.peers[p]; c == nil || !c.allows(d, to) {
				delete(s.subs[d], p)
				if c != nil {
					told[c] = append(told[c], d)
				}
			}
		}
	}
	for c := range s.conns {
		if c.peer.ID != "" && c.allows(doc, to) && !s.subs[doc][c.peer.ID] && !c.sc().AdviceLine() {
			arrive = append(arrive, c)
		}
	}
	s.mu.Unlock()
	for c, ds := range told {
		c.send(wire.Message{Type: wire.TypeHavenGone, DocumentIDs: ds, ErrorCode: wire.CodeTransferred, ErrorMessage: toName})
	}
	for _, c := range arrive {
		// Off the record's runner: a slow device must not hold it.
		go func() {
			for _, d := range docs {
				if err := c.fetch(c.ctx, d); err != nil {
					return // the connection is gone: it lists them when it comes back
				}
			}
		}()
	}
	s.log.Info("record moved to another home", "doc", doc, "from", from, "to", to, "let_go", len(told), "sent_to", len(arrive))
}
