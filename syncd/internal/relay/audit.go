package relay

import (
	"context"
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
}

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
	for _, e := range events {
		owner := s.owner(e.Resident)
		if owner == "" || !c.scope.Allows(owner) {
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
	}
	c.send(wire.Message{Type: wire.TypeHavenAuditAck, Count: m.Count})
}
