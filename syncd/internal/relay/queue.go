package relay

import (
	"context"
	"errors"
	"fmt"
	"time"

	"haven/shared/crdt"
	"haven/shared/record"
	"haven/shared/syncer"
	"haven/shared/wire"
	"haven/syncd/internal/orgs"
	"haven/syncd/internal/worker"
)

// queued is one sync or request message waiting for its document's worker.
type queued struct {
	from *conn
	data []byte
	at   time.Time
	// force: worked as it is, never held back (docQueue.holdAck).
	force bool
}

// docQueue holds one document's waiting messages. At most one runner works
// on a document at a time, which keeps each peer's messages in order.
//
// It also holds back settled acknowledgements (crdt.SettledAck): the
// answer each subscriber sends once it has a change the relay forwarded,
// saying only that it now holds the document's heads and knows the relay
// does. Worked at once, the answers to a note cost a worker call of their
// own, and a sync message generated for each subscriber that says nothing
// new. Held back, at most one a peer (a later message from the peer says
// all it said, so it replaces the one held, and is dropped when the peer
// sends anything else), they go with the next batch worked on the document,
// ahead of it, or on their own once held for settledAckWait. Nothing waits
// on them: the peer has the document, and the relay's record of the peer
// merely catches up later. A message that is anything more (changes, a
// need, heads other than the document's, or a connection begun afresh,
// whose "have" does not cover them) is worked as before.
type docQueue struct {
	items   []queued
	running bool
	// heads are the document's heads after the last batch the runner had
	// worked, if headsKnown: work on the document outside the runner
	// (another node's changes, say) clears it (headsMoved), since it can
	// move the heads.
	heads      []crdt.Hash
	headsKnown bool
	// gen counts headsMoved calls, so a batch's heads are not recorded
	// over work that ran beside it.
	gen uint64
	// acks are the settled acknowledgements held back, by peer ID; ackTimer
	// works them once they have waited settledAckWait with no batch to go
	// with.
	acks     map[string]queued
	ackTimer *time.Timer
}

// settledAckWait is the longest a settled acknowledgement is held back for
// a batch to go with: it only brings the relay's record of its peer up to
// date, so a document edited every few seconds or more often carries its
// subscribers' answers in the next edit's worker call.
const settledAckWait = 2 * time.Second

// holdAck keeps q, a settled acknowledgement, in place of any earlier one
// from its peer, and reports true; false if q is not one, or not from a
// peer to hold it for. Caller holds s.mu.
func (dq *docQueue) holdAck(q queued) bool {
	if q.force || !dq.headsKnown || !crdt.SettledAck(q.data, dq.heads) {
		return false
	}
	if dq.acks == nil {
		dq.acks = map[string]queued{}
	}
	dq.acks[q.from.peer.ID] = q
	q.from.waiting.Add(-1)
	return true
}

// takeAcksLocked returns the acknowledgements held back for peers still
// connected, to be worked now, first in a batch. Caller holds s.mu.
func (s *Server) takeAcksLocked(dq *docQueue) []queued {
	if dq.ackTimer != nil {
		dq.ackTimer.Stop()
		dq.ackTimer = nil
	}
	var out []queued
	for id, q := range dq.acks {
		if s.peers[id] == q.from {
			q.force = true
			q.from.waiting.Add(1)
			out = append(out, q)
		}
	}
	dq.acks = nil
	return out
}

// headsMoved tells the runner's record of doc's heads that work beside it
// may have moved them (a quarantine, say).
func (s *Server) headsMoved(doc string) {
	s.mu.Lock()
	s.headsMovedLocked(doc)
	s.mu.Unlock()
}

func (s *Server) headsMovedLocked(doc string) {
	if dq := s.queues[doc]; dq != nil {
		dq.headsKnown, dq.heads = false, nil
		dq.gen++
	}
}

// beginOutsideLocked marks work on doc outside its runner as begun: a
// change from another node (Absorb), a services load. Such work tells the
// followers it read, in the same hold of s.mu, what it changed. Until the
// returned end is called, the runner's record of the heads is not kept,
// and no offer is answered in step (answerInStep): a peer that subscribed
// after the work read its followers would be told the two agree at heads
// the work is about to move, and never hear of the change. Caller holds
// s.mu; end takes it.
func (s *Server) beginOutsideLocked(doc string) (end func()) {
	s.outside[doc]++
	s.headsMovedLocked(doc)
	return func() {
		s.mu.Lock()
		if s.outside[doc]--; s.outside[doc] <= 0 {
			delete(s.outside, doc)
		}
		s.headsMovedLocked(doc)
		s.mu.Unlock()
	}
}

// workAcks works the acknowledgements held back for doc once they have
// waited settledAckWait with no batch to go with.
func (s *Server) workAcks(doc string, dq *docQueue) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queues[doc] != dq {
		return
	}
	dq.ackTimer = nil
	if dq.running || len(dq.acks) == 0 {
		return // the runner takes them, or sets the timer again as it ends
	}
	if s.closing {
		dq.acks = nil
		delete(s.queues, doc)
		return
	}
	dq.items = append(s.takeAcksLocked(dq), dq.items...)
	if len(dq.items) == 0 {
		delete(s.queues, doc)
		return
	}
	dq.running = true
	s.wg.Add(1)
	go s.run(doc, dq)
}

const maxBatch = 64

// bulkMessageBytes: a batch with a message larger than this (hundreds of
// changes, or a large value) is bulk work, as is every new document's first
// batch: the worker runs it behind everyone's small edits (worker.WorkArgs.Bulk).
// A note or a decision is a few kilobytes.
const bulkMessageBytes = 64 << 10

// enqueue adds a message for doc and starts a runner if none is working on
// it. It reports false when the document's queue is full.
func (s *Server) enqueue(doc string, q queued) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	dq := s.queues[doc]
	if dq == nil {
		dq = &docQueue{}
		s.queues[doc] = dq
	}
	if len(dq.items) >= s.cfg.QueueLimit {
		s.metrics.refused.WithLabelValues("queue-full").Inc()
		return false
	}
	dq.items = append(dq.items, q)
	q.from.waiting.Add(1)
	if !dq.running {
		dq.running = true
		s.wg.Add(1)
		go s.run(doc, dq)
	}
	return true
}

// run works through a document's queue in batches, then exits.
func (s *Server) run(doc string, dq *docQueue) {
	defer s.wg.Done()
	lingered := true // a message to an idle document is worked at once
	for {
		s.mu.Lock()
		if len(dq.items) == 0 && !lingered {
			// The document is busy: a change just went out to its
			// subscribers, and their answers are on the way. Wait a
			// moment so that they share one call to the worker instead
			// of one call each.
			s.mu.Unlock()
			lingered = true
			time.Sleep(s.cfg.Linger)
			continue
		}
		if len(dq.items) == 0 {
			dq.running = false
			if len(dq.acks) == 0 || s.closing {
				delete(s.queues, doc)
			} else if dq.ackTimer == nil {
				dq.ackTimer = time.AfterFunc(settledAckWait, func() { s.workAcks(doc, dq) })
			}
			s.mu.Unlock()
			return
		}
		lingered = false
		n := min(len(dq.items), maxBatch)
		var batch, suspect []queued
		for _, q := range dq.items[:n] {
			switch {
			case s.suspectLocked(q.from.dev.ID):
				delete(dq.acks, q.from.peer.ID)
				suspect = append(suspect, q)
			case dq.holdAck(q):
			default:
				delete(dq.acks, q.from.peer.ID) // this message says all it said
				batch = append(batch, q)
			}
		}
		dq.items = dq.items[n:]
		if len(batch) > 0 && len(dq.acks) > 0 {
			batch = append(s.takeAcksLocked(dq), batch...)
		}
		gen := dq.gen
		s.mu.Unlock()
		// Each peer's messages keep their order; a suspect device's go
		// after the others', in a batch of their own at low priority.
		var heads []crdt.Hash
		known := false
		if len(batch) > 0 {
			heads, known = s.process(doc, batch)
		}
		if len(suspect) > 0 {
			heads, known = s.process(doc, suspect)
		}
		if len(batch)+len(suspect) > 0 {
			s.mu.Lock()
			if dq.gen == gen {
				dq.heads, dq.headsKnown = heads, known
			}
			s.mu.Unlock()
		}
	}
}

// A device whose message the workers refused (it could not be applied, or
// it breaks a record rule), or that went over a quota of its own (changes,
// bytes, new documents, audit events, or audit numbers out of order), is
// suspect for suspectFor: its messages are worked after everyone else's to
// the same document, and at low priority (worker.WorkArgs.Bulk), and its
// connections' own goroutines move to low-priority threads
// (lowerIfSuspect), so a device sending a stream of bad messages spends its
// own share of the workers and of the relay, not the other devices'. An
// honest device refused now and then loses nothing but a little speed.
// Refusals that depend on other organisations' documents (out of scope)
// do not make a device suspect: its speed would tell it what exists.
const suspectFor = time.Minute

// markSuspect makes a device suspect from now.
func (s *Server) markSuspect(dev string) {
	s.mu.Lock()
	s.suspect[dev] = time.Now().Add(suspectFor)
	s.mu.Unlock()
}

// isSuspect reports whether a device is suspect.
func (s *Server) isSuspect(dev string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.suspectLocked(dev)
}

// suspectLocked reports whether a device is suspect. Caller holds s.mu.
func (s *Server) suspectLocked(dev string) bool {
	until, ok := s.suspect[dev]
	if ok && time.Now().After(until) {
		delete(s.suspect, dev)
		return false
	}
	return ok
}

// process sends one batch to the worker and delivers what came back. It
// returns the document's heads after the batch, known false if they are
// not (the batch failed, or part of it was worked again).
func (s *Server) process(doc string, batch []queued) (heads []crdt.Hash, known bool) {
	ctx := context.Background()
	for _, q := range batch {
		q.from.waiting.Add(-1)
	}
	// A message queued before its sender's scope shrank is answered as one
	// arriving now would be, and not worked on.
	if owner := s.owner(doc); owner != "" {
		kept := batch[:0:0]
		for _, q := range batch {
			switch {
			case q.from.allows(doc, owner):
				kept = append(kept, q)
			case q.from.letGoCode(doc, owner) != "":
				q.from.letGo(q.from.letGoCode(doc, owner), doc)
			default:
				q.from.hidden(doc, true, crdt.CountChanges(q.data))
			}
		}
		if batch = kept; len(batch) == 0 {
			return nil, false
		}
	}
	batch, heads, known = s.answerInStep(doc, batch)
	if len(batch) == 0 {
		return heads, known
	}
	s.auditAccess(ctx, doc, batch)
	wasKnown := s.owner(doc) != ""
	release := func() {}
	if !wasKnown {
		// A new document: only from a device (and organisation) with a
		// document left this hour.
		kept := batch[:0:0]
		for _, q := range batch {
			if s.mayCreate(q.from, doc) {
				kept = append(kept, q)
				continue
			}
			s.metrics.refused.WithLabelValues("quota-documents").Inc()
			s.log.Warn("new document refused: over the device's hourly share", "device", q.from.dev.ID, "doc", doc)
			s.markSuspect(q.from.dev.ID)
			q.from.send(wire.Message{Type: wire.TypeError, ErrorCode: wire.CodeQuotaDocuments, DocumentID: doc,
				ErrorMessage: "this device has created its share of new documents this hour; they stay on it and are sent later"})
		}
		if batch = kept; len(batch) == 0 {
			return nil, false
		}
		// A new document's first batch comes from one device but for a
		// race; that device waits its turn, given back as soon as the
		// worker answers (the calls below may create it again).
		turn := s.creating(batch[0].from)
		turn <- struct{}{}
		release = func() { <-turn }
	}
	args := worker.WorkArgs{Doc: doc, TrustVersion: s.trustVersion(), StoredBytes: s.storedBytes(doc), MaxDocBytes: s.cfg.Limits.DocBytes, Bulk: !wasKnown}
	// Held-back acknowledgements worked on their own (workAcks): a worker
	// that has let the document go saves what they say without loading it.
	args.Settled = wasKnown
	for _, q := range batch {
		args.Settled = args.Settled && q.force
	}
	peers := map[string]syncer.Peer{}
	s.mu.Lock()
	for _, q := range batch {
		args.Msgs = append(args.Msgs, syncer.In{From: q.from.peer.ID, Data: q.data})
		peers[q.from.peer.ID] = q.from.peer
		args.Bulk = args.Bulk || len(q.data) > bulkMessageBytes || s.suspectLocked(q.from.dev.ID)
		q.from.markSpoken(doc)
	}
	for p := range s.subs[doc] {
		if c := s.peers[p]; c != nil {
			args.Notify = append(args.Notify, p)
			peers[p] = c.peer
			c.markSpoken(doc)
		}
	}
	s.mu.Unlock()
	for _, p := range peers {
		args.Peers = append(args.Peers, p)
	}

	began := time.Now()
	reply, err := s.work.Work(ctx, args)
	release()
	defer s.forgetDeparted(args.Peers)
	s.log.Debug("sync work", "doc", doc, "messages", len(batch), "waited", began.Sub(batch[0].at), "took", time.Since(began), "out", len(reply.Out))
	switch {
	case errors.Is(err, worker.ErrQuarantined):
		if len(batch) > 1 {
			// Find the culprit: one message at a time.
			for _, q := range batch {
				s.process(doc, []queued{q})
			}
			return nil, false
		}
		s.quarantine(ctx, doc, batch[0])
		return nil, false
	case errors.Is(err, worker.ErrClosed):
		// Shutting down, the pool closed under the queue: nothing of the
		// batch was answered, so none of its changes was confirmed, and
		// each device sends them again when it reconnects.
		return nil, false
	case err != nil:
		s.log.Error("CRDT work failed", "doc", doc, "messages", len(batch), "err", err)
		for _, q := range batch {
			// Named, so the device sends the document's changes again
			// shortly on this connection: a cluster node without a quorum
			// answers this way, and the device may stay connected to it.
			q.from.send(wire.Message{Type: wire.TypeError, ErrorCode: wire.CodeInternal, DocumentID: doc,
				ErrorMessage: "the relay could not store a change just now; it is sent again shortly"})
		}
		return nil, false
	}
	s.deliver(reply.Out)
	if reply.Record != nil {
		s.recordFacts(ctx, doc, reply.Record)
	}
	now := time.Now()
	applied := batch
	if f := reply.Failed; f != nil {
		applied = batch[:f.Index]
		q := batch[f.Index]
		// A connection that ended while its message waited had the worker
		// forget its peer, which fails the message: nothing was wrong with
		// it, and there is no one to tell.
		if !s.gone(q.from) {
			s.refuse(doc, q, f)
		}
		if rest := batch[f.Index+1:]; len(rest) > 0 {
			defer s.process(doc, rest) // those after the failure were not applied
		}
	}
	for _, q := range applied {
		if !q.force { // a held-back acknowledgement waited on purpose
			s.metrics.syncLatency.Observe(now.Sub(q.at).Seconds())
		}
	}
	if !wasKnown {
		s.created(ctx, doc, batch)
	}
	return reply.Heads, reply.Failed == nil && reply.Heads != nil
}

// outOfScopeWords answers changes to a document the device may not hold,
// whether the document is new (for a home outside its scope) or exists.
const outOfScopeWords = "document refused: it belongs to a care home outside this device's scope"

// refuse tells a device that the worker refused its message, and why: a
// record rule its changes break (by name), a document outside its scope, or
// a message that could not be applied. Nothing of the message was stored
// or forwarded. The log names device, document and rule, never content.
func (s *Server) refuse(doc string, q queued, f *worker.Failure) {
	reason, code := "sync message refused: "+f.Reason, wire.CodeRefused
	switch {
	case f.TooLarge:
		code = wire.CodeQuotaDocBytes
		reason = "change refused: the document would grow past its size limit; nothing of it was stored or passed on"
		s.metrics.refused.WithLabelValues("quota-document-bytes").Inc()
	case f.Rule == record.RulePersonElsewhere || f.Rule == record.RulePersonTwice:
		code, reason = wire.RuleCode(f.Rule, ""), s.personWords(f.Rule, f.Detail)
		s.metrics.refused.WithLabelValues("rule-" + f.Rule).Inc()
	case f.Rule != "":
		code = wire.RuleCode(f.Rule, f.Detail)
		reason = "change refused: it breaks the record rule " + code[len("rule/"):] + "; nothing of it was stored or passed on"
		s.metrics.refused.WithLabelValues("rule-" + f.Rule).Inc()
	case f.Refused:
		s.metrics.refused.WithLabelValues("create-out-of-scope").Inc()
		reason, code = outOfScopeWords, wire.CodeOutOfScope
	default:
		s.metrics.refused.WithLabelValues("bad-sync-message").Inc()
	}
	if !f.TooLarge {
		s.markSuspect(q.from.dev.ID)
	}
	s.log.Warn("sync message refused", "doc", doc, "device", q.from.dev.ID, "peer", q.from.peer.ID, "bytes", len(q.data),
		"rule", f.Rule, "detail", f.Detail, "out_of_scope", f.Refused)
	q.from.send(wire.Message{Type: wire.TypeError, ErrorMessage: reason, ErrorCode: code, DocumentID: doc})
}

// gone reports whether c's connection has ended.
func (s *Server) gone(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peers[c.peer.ID] != c
}

// forgetDeparted has the workers drop the states of peers whose connection
// ended while their message was being worked on: the worker took them up
// again after the connection's leave had it forget them.
func (s *Server) forgetDeparted(peers []syncer.Peer) {
	s.mu.Lock()
	var gone []string
	for _, p := range peers {
		if s.peers[p.ID] == nil {
			gone = append(gone, p.ID)
		}
	}
	s.mu.Unlock()
	for _, p := range gone {
		s.work.Forget(p)
	}
}

// deliver sends the worker's messages to connected peers that may still
// see the document (a scope can shrink while a message is worked on). A
// document with no owner yet is one a device is offering: the worker
// answers only the peers that sent its messages.
func (s *Server) deliver(out []worker.OutMsg) {
	s.mu.Lock()
	to := make([]*conn, len(out))
	for i, o := range out {
		owner := s.owners[o.Doc]
		if c := s.peers[o.To]; c != nil && (owner == "" || c.allows(o.Doc, owner)) {
			to[i] = c
		}
	}
	s.mu.Unlock()
	for i, o := range out {
		if to[i] != nil {
			to[i].markSpoken(o.Doc)
			to[i].send(wire.Message{Type: wire.TypeSync, DocumentID: o.Doc, Data: o.Data})
		}
	}
}

// created subscribes the creator, and those who asked for the document
// before it existed and may see it, once a new document has an owner; the
// latter are sent it at once.
func (s *Server) created(ctx context.Context, doc string, batch []queued) {
	s.mu.Lock()
	owner := s.owners[doc]
	if owner == "" {
		s.mu.Unlock()
		return
	}
	for _, q := range batch {
		if q.from.allows(doc, owner) {
			s.subscribeLocked(doc, q.from.peer.ID)
		}
	}
	args := worker.WorkArgs{Doc: doc}
	for p := range s.waiting[doc] {
		if c := s.peers[p]; c != nil {
			c.asked-- // the document came: no longer waited for
		}
		if c := s.peers[p]; c != nil && c.allows(doc, owner) {
			s.subscribeLocked(doc, p)
			args.Notify = append(args.Notify, p)
			args.Peers = append(args.Peers, c.peer)
		}
	}
	delete(s.waiting, doc)
	s.mu.Unlock()
	if len(args.Notify) == 0 {
		return
	}
	reply, err := s.work.Work(ctx, args)
	if err != nil {
		s.log.Error("sending a new document to waiting peers", "doc", doc, "err", err)
		return
	}
	s.deliver(reply.Out)
}

// quarantine keeps a message that crashed a worker twice (encrypted at rest,
// for inspection), logs who sent it and its size (never its content), and
// tells the device.
func (s *Server) quarantine(ctx context.Context, doc string, q queued) {
	s.metrics.quarantined.WithLabelValues("message").Inc()
	key := fmt.Sprintf("%s %s %s", time.Now().UTC().Format(time.RFC3339Nano), q.from.dev.ID, doc)
	if err := s.st.Put(ctx, nsQuaran, key, q.data); err != nil {
		s.log.Error("storing a quarantined message", "err", err)
	}
	s.log.Error("sync message quarantined: it crashed a CRDT worker twice", "doc", doc, "device", q.from.dev.ID, "peer", q.from.peer.ID, "bytes", len(q.data))
	s.markSuspect(q.from.dev.ID)
	q.from.send(wire.Message{Type: wire.TypeError, ErrorCode: wire.CodeQuarantined,
		ErrorMessage: "a sync message for document " + doc + " could not be processed and was set aside; it was not stored or passed on"})
	q.from.strike()
}

// auditAccess writes an advice-line device's first access to each
// document: a resident's record, not a region's document (the directory of
// services), which every device holds.
func (s *Server) auditAccess(ctx context.Context, doc string, batch []queued) {
	owner := s.owner(doc)
	for _, q := range batch {
		if !q.from.sc().AdviceLine() || owner == "" || owner == record.Region {
			continue
		}
		_, _, err := s.orgs.AuditFirstAccess(ctx, orgs.AuditEvent{
			Time: q.at, Device: q.from.dev.ID, Org: q.from.dev.Org, Owner: owner, Resident: doc, Action: "first-access",
		})
		if err != nil {
			s.log.Error("audit first access", "doc", doc, "device", q.from.dev.ID, "err", err)
		}
	}
}
