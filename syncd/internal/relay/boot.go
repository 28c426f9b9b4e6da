package relay

import (
	"context"
	"errors"
	"sort"

	"haven/shared/record"
	"haven/shared/store"
	"haven/shared/wire"
)

// maxFetch bounds the documents one haven-fetch may ask for.
const maxFetch = 1000

// bootstrap serves haven-list and haven-fetch for one connection: a fresh
// device downloads its scope as stored snapshots and chunks, read straight
// from the store (bytes the workers already applied and checked), instead of
// Automerge's first sync, which costs about 100× a document's saved size.
// It runs on its own goroutine and sends with backpressure, so a thousand
// documents never overflow the send queue.
func (c *conn) bootstrap(ctx context.Context) {
	for m := range c.boot {
		c.lowerIfSuspect(&c.bootLowered)
		switch m.Type {
		case wire.TypeHavenList:
			c.s.awaitCatchUp(ctx, c)
			c.send(wire.Message{Type: wire.TypeHavenList, DocumentIDs: c.s.listScope(c)})
		case wire.TypeHavenFetch:
			ids := m.DocumentIDs
			if len(ids) > maxFetch {
				ids = ids[:maxFetch]
			}
			for _, id := range ids {
				if err := c.fetch(ctx, id); err != nil {
					return // the connection is gone
				}
			}
		case wire.TypeHavenAudit:
			c.storeAudit(m)
		case wire.TypeHavenTrust:
			c.sendTrust()
		case wire.TypeHavenCertReq:
			c.certRequest(m)
		case wire.TypeHavenWho:
			c.who(m)
		case wire.TypeHavenLeaver:
			c.leaver(m)
		case wire.TypeHavenSearch:
			c.search(m)
		case wire.TypeHavenOpen:
			c.open(m)
		case wire.TypeHavenReview:
			c.review(m)
		}
	}
}

// listScope returns the documents a device should hold: everything its home
// or hub owns. An advice-line device, whose scope is the region, holds only
// the records it opened and still may (see advice.go), and the region's
// documents (region.go).
func (s *Server) listScope(c *conn) []string {
	var ids []string
	if c.sc().AdviceLine() {
		for _, doc := range s.grantedDocs(c.dev.ID) {
			if !s.isPrivate(doc) {
				ids = append(ids, doc)
			}
		}
	}
	s.mu.Lock()
	for doc, owner := range s.owners {
		if c.listable(doc, owner) {
			ids = append(ids, doc)
		}
	}
	s.mu.Unlock()
	sort.Strings(ids)
	return ids
}

// listable reports whether a device's list (listScope) has doc, owned by
// owner, whatever it opened: for an advice-line device the region's
// documents, for any other everything its organisation may hold.
func (c *conn) listable(doc, owner string) bool {
	if c.sc().AdviceLine() {
		return owner == record.Region
	}
	return c.allows(doc, owner)
}

// fetch sends one stored document whole, or doc-unavailable when it is
// missing or out of scope (indistinguishable), and subscribes the device.
func (c *conn) fetch(ctx context.Context, id string) error {
	s := c.s
	owner := s.owner(id)
	ok := owner != "" && c.mayHold(id, owner)
	s.mu.Lock()
	if ok {
		s.subscribeLocked(id, c.peer.ID)
	}
	s.mu.Unlock()
	var m wire.Message
	if ok {
		sd, err := s.st.LoadDoc(id)
		switch {
		case err == nil:
			m = wire.Message{Type: wire.TypeHavenDoc, DocumentID: id, Snapshot: sd.Snapshot}
			for _, ch := range sd.Chunks {
				m.Chunks = append(m.Chunks, ch.Data)
			}
		case errors.Is(err, store.ErrNotFound):
			ok = false
		default:
			s.log.Error("load document for download", "doc", id, "err", err)
			ok = false
		}
	}
	if !ok {
		m = wire.Message{Type: wire.TypeDocUnavailable, DocumentID: id}
	}
	m.SenderID, m.TargetID = s.peerID, c.clientID
	frame, err := wire.Encode(m)
	if err != nil {
		s.log.Error("encode document for download", "doc", id, "err", err)
		return nil
	}
	if err := c.tc.SendWait(ctx, frame); err != nil {
		return err
	}
	s.metrics.messages.WithLabelValues("out", string(m.Type)).Inc()
	s.metrics.bytes.WithLabelValues("out").Add(float64(len(frame)))
	return nil
}
