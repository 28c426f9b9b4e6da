package relay

import (
	"context"
	"slices"
	"time"

	"haven/shared/crdt"
	"haven/shared/store"
	"haven/shared/wire"
)

// Offers in step.
//
// A device that connects offers the relay every document it holds, a sync
// message each, and a relay that restarts is offered every document of
// every device that comes back to it. Most of those messages say only that
// the device holds the document exactly as the relay does
// (crdt.HoldsExactly). A worker would load each document into Automerge to
// find that out, so a relay of a region coming back would load every
// document once per device before the first edit after it got through. The
// runner answers them itself, from the document's heads: those its last
// batch left, or else those read from the store (crdt.StoredHeads, a read
// and no Automerge).
//
// It answers only a peer's first word about the document on its
// connection (conn.spoken): the offers a device makes on connecting, the
// flood a restart brings. After that, a worker has had the peer in a call
// and keeps an Automerge record of it, which an answer made beside it would
// leave behind (never wrong: the worker would send the peer changes it has,
// which cost it nothing, but on a document being edited every next message
// would be larger); or the relay answered it in step once already, and a
// device repeating the offer gets a worker's answer, so it cannot make the
// relay read the document from the store again and again for a message of
// a few bytes.

// answerInStep answers, without a worker, the messages of batch whose
// sender holds exactly the document's heads and wants nothing. A sender
// whose message does not show that it knows the relay holds them too
// (crdt.KnowsShared) is told so (crdt.HeadsMessage); a sender that keeps
// its sync states has the relay's record of it saved as sharing those
// heads, which is all a worker would have kept of the exchange. It returns
// the messages left for the worker, in order, and the document's heads if
// it learned them. Left for the worker: any but a peer's first word about
// the document, an advice-line device's (its worker audits its access
// first), and every message from a peer after one of its own left, which
// keeps each peer's messages in order.
func (s *Server) answerInStep(doc string, batch []queued) (rest []queued, heads []crdt.Hash, known bool) {
	if !s.anyInStepCandidate(doc, batch) {
		return batch, nil, false
	}
	s.mu.Lock()
	if s.outside[doc] > 0 {
		// Work beside the runner is moving the heads (beginOutsideLocked).
		s.mu.Unlock()
		return batch, nil, false
	}
	if dq := s.queues[doc]; dq != nil && dq.headsKnown {
		heads, known = dq.heads, true
	}
	s.mu.Unlock()
	if !known {
		var err error
		if heads, err = s.storedHeads(doc); err != nil {
			return batch, nil, false
		}
	}
	var save []store.SyncStateEntry
	left := map[*conn]bool{}
	rest = batch[:0:0]
	for _, q := range batch {
		if left[q.from] || !q.from.inStepCandidate(doc, q) || !crdt.HoldsExactly(q.data, heads) {
			left[q.from] = true
			rest = append(rest, q)
			continue
		}
		if !crdt.KnowsShared(q.data, heads) {
			q.from.send(wire.Message{Type: wire.TypeSync, DocumentID: doc, Data: crdt.HeadsMessage(heads)})
		}
		q.from.markSpoken(doc)
		if p := q.from.peer; p.StorageID != "" && !p.Ephemeral {
			save = append(save, store.SyncStateEntry{Peer: p.StorageID, Doc: doc, State: crdt.SavedSharing(heads)})
		}
		s.metrics.inStep.Inc()
		s.metrics.syncLatency.Observe(time.Since(q.at).Seconds())
	}
	if len(save) > 0 {
		if err := s.st.PutSyncStates(context.Background(), save); err != nil {
			// Only the relay's record of the peers is behind: their next
			// exchange about the document says again what they hold.
			s.log.Warn("saving sync states", "doc", doc, "err", err)
		}
	}
	return rest, heads, true
}

// anyInStepCandidate reports whether a message of batch might be answered
// in step, before its document's heads are looked for.
func (s *Server) anyInStepCandidate(doc string, batch []queued) bool {
	if !slices.ContainsFunc(batch, func(q queued) bool { return q.from.inStepCandidate(doc, q) }) {
		return false
	}
	if s.owner(doc) == "" {
		return false // a new document: nothing stored to be in step with
	}
	s.mu.Lock()
	n, known := s.docBytes[doc]
	s.mu.Unlock()
	return !known || n > 0 // else not stored here (yet): a node of a cluster that started empty
}

// inStepCandidate reports whether q, from c, may be answered in step if it
// says c holds the document's heads (see answerInStep). The cheap tests go
// first: on a document being edited, every message fails at spokenOf.
func (c *conn) inStepCandidate(doc string, q queued) bool {
	return !q.force && !c.spokenOf(doc) && !c.sc().AdviceLine() && crdt.CountChanges(q.data) == 0
}

// storedHeads reads doc's heads from the store, without Automerge.
func (s *Server) storedHeads(doc string) ([]crdt.Hash, error) {
	sd, err := s.st.LoadDoc(doc)
	if err != nil {
		return nil, err
	}
	return crdt.StoredHeads(sd.Snapshot, chunkData(sd))
}

// chunkData is the bytes of a stored document's chunks, in order.
func chunkData(sd store.Doc) [][]byte {
	out := make([][]byte, len(sd.Chunks))
	for i, ch := range sd.Chunks {
		out[i] = ch.Data
	}
	return out
}

// markSpoken records that c's peer has had a word about doc.
func (c *conn) markSpoken(doc string) {
	c.spokenMu.Lock()
	if c.spoken == nil {
		c.spoken = map[string]bool{}
	}
	c.spoken[doc] = true
	c.spokenMu.Unlock()
}

// spokenOf reports whether c's peer has had a word about doc.
func (c *conn) spokenOf(doc string) bool {
	c.spokenMu.Lock()
	defer c.spokenMu.Unlock()
	return c.spoken[doc]
}
