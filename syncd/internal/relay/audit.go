package relay

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"time"

	"haven/shared/wire"
	"haven/syncd/internal/orgs"
)

// ClientAuditEvent is one event a desktop reports: who did what to which
// resident's record, on the device's clock. No health data: an action name
// and document ID.
type ClientAuditEvent struct {
	Time     time.Time `json:"time"`
	User     string    `json:"user"`
	Role     string    `json:"role"`
	Resident string    `json:"resident"` // document ID
	Action   string    `json:"action"`   // e.g. "view-wishes", "change", "break-glass"
	Detail   string    `json:"detail,omitempty"`
	// Seq is the event's place in the device's own audit log. A desktop
	// sends unconfirmed events again (the confirmation may be lost, or a
	// second batch may leave before it arrives), so events at or below the
	// highest Seq stored from the device are skipped. Zero: no dedup.
	Seq uint64 `json:"seq,omitempty"`
}

// nsAuditSeq maps a device to the highest Seq of its events stored.
const nsAuditSeq = "relay-audit-seq"

const maxAuditBatch = 1000

// storeAudit appends a batch of audit events durably, stamped with the
// device, its organisation, the record's owner and the time received, and
// then acknowledges the batch so the desktop can drop it from its outbox.
// Events about records outside the device's scope are refused, not stored.
func (c *conn) storeAudit(m wire.Message) {
	s := c.s
	var events []ClientAuditEvent
	if err := json.Unmarshal(m.Data, &events); err != nil || len(events) > maxAuditBatch {
		c.send(wire.Message{Type: wire.TypeError, ErrorMessage: "audit batch unreadable"})
		return
	}
	now := time.Now().UTC()
	ctx := context.Background()
	var stored uint64
	if b, err := s.st.Get(nsAuditSeq, c.dev.ID); err == nil && len(b) == 8 {
		stored = binary.BigEndian.Uint64(b)
	}
	for _, e := range events {
		if e.Seq != 0 && e.Seq <= stored {
			continue // stored from an earlier copy of this batch
		}
		owner := s.owner(e.Resident)
		if owner == "" || !c.sc().Allows(owner) {
			continue
		}
		_, err := s.orgs.Audit(ctx, orgs.AuditEvent{
			Time: e.Time, Received: now, Device: c.dev.ID, Org: c.dev.Org, Owner: owner,
			User: e.User, Role: e.Role, Resident: e.Resident, Action: e.Action, Detail: e.Detail,
		})
		if err != nil {
			s.log.Error("store audit event", "device", c.dev.ID, "err", err)
			return // no ack: the desktop sends the batch again
		}
		stored = max(stored, e.Seq)
	}
	// One write for the batch: a crash before it means a resent batch is
	// stored twice, which an audit can bear; never an event lost.
	if err := s.st.Put(ctx, nsAuditSeq, c.dev.ID, binary.BigEndian.AppendUint64(nil, stored)); err != nil {
		s.log.Error("store audit sequence", "device", c.dev.ID, "err", err)
		return
	}
	c.send(wire.Message{Type: wire.TypeHavenAuditAck, Count: m.Count})
}
