package relay

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"haven/shared/cert"
	"haven/shared/store"
	"haven/shared/wire"
	"haven/syncd/internal/orgs"
)

// The audit a relay can vouch for. A device reports what its staff did
// (views, changes) in numbered batches; the relay stores each event once,
// in the device's order, with what it knows itself (the authenticated
// device, its organisation, the record's owner, the time it received the
// event) and, for the member of staff, only what a certificate-signed
// claim says: an unsigned or badly signed event is stored with the
// device's words apart and a doubt. Nothing a device sends can silence it:
//
//   - numbers run on from the last one stored, without a gap: a batch that
//     starts further on is refused (audit/gap) and the device told where
//     the relay stands, so it sends what is missing; numbers out of order,
//     or a jump past maxAuditAhead, are refused (audit/sequence); nothing
//     of a refused batch is stored, and nothing is acknowledged that was
//     not stored;
//   - an event about a record the relay does not hold yet (made offline)
//     is held until the record arrives, then stored with its owner;
//   - a device gets a bucket of events (Limits.AuditPerSecond, AuditBurst);
//   - a break-glass access is recorded by the relay when it grants one,
//     never taken from a device's report.
//
// The log is a hash chain (orgs.AuditAll); syncd admin audit -verify walks
// it.

// Audit state, in the store:
const (
	nsAuditSeq   = "relay-audit-seq"    // device → the highest event number stored (8 bytes)
	nsAuditIDs   = "relay-audit-ids"    // device "/" event ID → "" for each event stored
	nsAuditHeld  = "relay-audit-held"   // document "/" device "/" number (20 digits) → orgs.AuditEvent JSON
	nsAuditHeldN = "relay-audit-held-n" // device → how many of its events are held (8 bytes)
)

const (
	maxAuditBatch = 1000
	// maxAuditAhead is how far past the last stored number a batch may
	// start and still be a gap (events lost in transit) rather than
	// nonsense: far more than a desktop records between two connections.
	maxAuditAhead = 1 << 20
	// maxHeldPerDevice bounds the events one device may have waiting for
	// records the relay has not received; beyond it they are stored at
	// once, with the doubt record-missing.
	maxHeldPerDevice = 5000
	// clockSlack is how far ahead of the relay a device's clock may be
	// before its events are marked.
	clockSlack = 5 * time.Minute
)

// auditLocks serialises one device's batches (it may have two connections
// while reconnecting), so each sees the number the last one stored.
type auditLocks struct{ m sync.Map }

func (l *auditLocks) lock(device string) func() {
	mu, _ := l.m.LoadOrStore(device, &sync.Mutex{})
	mu.(*sync.Mutex).Lock()
	return mu.(*sync.Mutex).Unlock
}

func readCount(s *Server, ns, key string) uint64 {
	if b, err := s.st.Get(ns, key); err == nil && len(b) == 8 {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func countBytes(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

// storeAudit stores a batch of the device's audit events and acknowledges
// what the relay now holds (the highest number stored; the desktop drops
// its copies up to there and sends on from the next).
func (c *conn) storeAudit(m wire.Message) {
	s := c.s
	var events []wire.AuditEvent
	if err := json.Unmarshal(m.Data, &events); err != nil || len(events) > maxAuditBatch {
		s.metrics.refused.WithLabelValues("audit-unreadable").Inc()
		c.send(wire.Message{Type: wire.TypeError, ErrorCode: wire.CodeBadRequest, ErrorMessage: "audit batch unreadable"})
		return
	}
	unlock := s.auditLocks.lock(c.dev.ID)
	defer unlock()
	stored := readCount(s, nsAuditSeq, c.dev.ID)
	ack := func() { c.send(wire.Message{Type: wire.TypeHavenAuditAck, Count: stored}) }
	// Already stored: copies of a batch sent again.
	for len(events) > 0 && events[0].Seq != 0 && events[0].Seq <= stored {
		events = events[1:]
	}
	if len(events) == 0 {
		ack()
		return
	}
	code := ""
	switch first := events[0].Seq; {
	case first == 0 || first > stored+maxAuditAhead:
		code = wire.CodeAuditSequence
	case first > stored+1:
		code = wire.CodeAuditGap
	}
	for i := 1; i < len(events) && code == ""; i++ {
		if events[i].Seq != events[i-1].Seq+1 {
			code = wire.CodeAuditSequence
		}
	}
	if code != "" {
		s.metrics.refused.WithLabelValues(code).Inc()
		s.log.Warn("audit batch refused", "device", c.dev.ID, "code", code, "stored", stored, "first", events[0].Seq, "events", len(events))
		s.markSuspect(c.dev.ID)
		c.send(wire.Message{Type: wire.TypeError, ErrorCode: code,
			ErrorMessage: fmt.Sprintf("audit events must follow on from number %d, in order; nothing of this batch was stored", stored)})
		ack()
		return
	}
	if !s.allowAudit(c, len(events)) {
		s.metrics.refused.WithLabelValues("quota-audit").Inc()
		s.log.Warn("audit batch refused: over the device's rate", "device", c.dev.ID, "events", len(events))
		s.markSuspect(c.dev.ID)
		c.send(wire.Message{Type: wire.TypeError, ErrorCode: wire.CodeQuotaAudit,
			ErrorMessage: "too many audit events at once from this device; they stay on it and are sent again shortly"})
		ack()
		return
	}
	trust, _, err := s.orgs.Trust()
	if err != nil {
		s.log.Error("audit: read trust", "device", c.dev.ID, "err", err)
		return // no ack: the desktop sends the batch again
	}
	now := time.Now().UTC()
	held := readCount(s, nsAuditHeldN, c.dev.ID)
	var out []orgs.AuditEvent
	var changes []store.Change
	seen, heldDocs := map[string]bool{}, map[string]bool{}
	for _, we := range events {
		e := c.vouch(trust, we, now)
		if we.ID != "" {
			idKey := c.dev.ID + "/" + clip(we.ID)
			if _, err := s.st.Get(nsAuditIDs, idKey); err == nil || seen[idKey] {
				e.Doubts = append(e.Doubts, orgs.DoubtReplayed)
			} else {
				seen[idKey] = true
				changes = append(changes, store.Change{NS: nsAuditIDs, Key: idKey, Val: []byte{}})
			}
		}
		owner := s.owner(e.Resident)
		switch {
		case e.Resident == "":
		case owner == "" && held < maxHeldPerDevice:
			// Made offline, perhaps: kept until the record arrives.
			b, _ := json.Marshal(e)
			changes = append(changes, store.Change{NS: nsAuditHeld, Key: fmt.Sprintf("%s/%s/%020d", e.Resident, c.dev.ID, we.Seq), Val: b})
			held++
			heldDocs[e.Resident] = true
			continue
		case owner == "":
			e.Doubts = append(e.Doubts, orgs.DoubtRecordMissing)
		case !c.mayHold(e.Resident, owner):
			e.Doubts = append(e.Doubts, orgs.DoubtOutOfScope)
		default:
			e.Owner = owner
		}
		out = append(out, e)
	}
	last := events[len(events)-1].Seq
	changes = append(changes,
		store.Change{NS: nsAuditSeq, Key: c.dev.ID, Val: countBytes(last)},
		store.Change{NS: nsAuditHeldN, Key: c.dev.ID, Val: countBytes(held)})
	if _, err := s.orgs.AuditAll(context.Background(), out, changes); err != nil {
		s.log.Error("store audit events", "device", c.dev.ID, "events", len(events), "err", err)
		return // no ack: the desktop sends the batch again
	}
	stored = last
	ack()
	// A record that arrived while this batch was being stored found none
	// of its events held yet: release them now.
	if len(heldDocs) > 0 {
		s.wg.Go(func() {
			for doc := range heldDocs {
				if owner := s.owner(doc); owner != "" {
					s.releaseHeld(context.Background(), doc, owner)
				}
			}
		})
	}
}

// vouch turns a device's event into what the relay stores: the relay's own
// facts, the staff member from a valid signature or else the device's
// claim apart, and doubts for what does not hold.
func (c *conn) vouch(trust *cert.Trust, we wire.AuditEvent, now time.Time) orgs.AuditEvent {
	e := orgs.AuditEvent{
		Time: we.Time, Received: now, Device: c.dev.ID, Org: c.dev.Org,
		Resident: clip(we.Resident), Action: clip(we.Action), Detail: we.Detail,
		DeviceSeq: we.Seq, EventID: clip(we.ID),
	}
	if e.Action == "" {
		e.Action = "unnamed"
	}
	crt, err := c.s.orgs.StaffSigned(trust, c.dev, we.Cert, we.SigningBytes(c.dev.ID), we.Sig, we.Time)
	switch {
	case err == nil:
		e.User, e.Name, e.Role, e.Cert = crt.Staff, crt.Name, crt.Role, crt.ID
	case errors.Is(err, orgs.ErrUnsigned):
		e.Doubts = append(e.Doubts, orgs.DoubtUnsigned)
	case errors.Is(err, orgs.ErrNotFound), errors.Is(err, cert.ErrBadSignature):
		e.Doubts = append(e.Doubts, orgs.DoubtSignature)
	default:
		e.Doubts = append(e.Doubts, orgs.DoubtCertificate)
	}
	if err != nil {
		e.Claimed = clip(strings.TrimSpace(we.User + " " + we.Role))
	}
	switch {
	case we.Time.After(now.Add(clockSlack)):
		e.Doubts = append(e.Doubts, orgs.DoubtClockAhead)
	case !c.dev.Created.IsZero() && we.Time.Before(c.dev.Created.Add(-clockSlack)):
		e.Doubts = append(e.Doubts, orgs.DoubtClockBehind)
	}
	if e.Action == orgs.ActionBreakGlass || e.Action == orgs.ActionFirstAccess {
		e.Doubts = append(e.Doubts, orgs.DoubtNotByRelay)
	}
	return e
}

// clip cuts a device's identifier to what the audit log takes, so a long
// one is kept in part rather than refused with its batch.
func clip(s string) string {
	if len(s) > 256 {
		return strings.ToValidUTF8(s[:256], "")
	}
	return s
}

// releaseHeld stores the events held for a document that has now arrived,
// with its owner, and forgets them. One runs at a time, so no event is
// stored twice.
func (s *Server) releaseHeld(ctx context.Context, doc, owner string) {
	s.releaseMu.Lock()
	defer s.releaseMu.Unlock()
	var events []orgs.AuditEvent
	var changes []store.Change
	perDevice := map[string]uint64{}
	err := s.st.Scan(nsAuditHeld, doc+"/", func(key string, val []byte) error {
		var e orgs.AuditEvent
		if err := json.Unmarshal(val, &e); err != nil {
			return err
		}
		if dev, err := s.orgs.Device(e.Device); err == nil {
			if sc, err := s.orgs.Scope(dev); err == nil && sc.Allows(owner) {
				e.Owner = owner
			}
		}
		if e.Owner == "" {
			e.Doubts = append(e.Doubts, orgs.DoubtOutOfScope)
		}
		events = append(events, e)
		perDevice[e.Device]++
		changes = append(changes, store.Change{NS: nsAuditHeld, Key: key, Delete: true})
		return nil
	})
	if err != nil || len(events) == 0 {
		if err != nil {
			s.log.Error("read held audit events", "doc", doc, "err", err)
		}
		return
	}
	devs := slices.Sorted(maps.Keys(perDevice)) // locked in one order: no deadlock
	for _, dev := range devs {
		n := perDevice[dev]
		unlock := s.auditLocks.lock(dev)
		defer unlock()
		left := readCount(s, nsAuditHeldN, dev)
		changes = append(changes, store.Change{NS: nsAuditHeldN, Key: dev, Val: countBytes(left - min(left, n))})
	}
	if _, err := s.orgs.AuditAll(ctx, events, changes); err != nil {
		s.log.Error("store held audit events", "doc", doc, "events", len(events), "err", err)
	}
}
