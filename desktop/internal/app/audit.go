package app

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"time"

	"haven/shared/docid"
)

// Audit actions.
const (
	AuditViewFrontSheet = "view-front-sheet"
	AuditViewCarePlan   = "view-care-plan"
	AuditViewWishes     = "view-advance-wishes"
	AuditViewHistory    = "view-history"
	AuditChange         = "change"
)

type auditEvent struct {
	Time     time.Time `json:"time"`
	User     string    `json:"user"`
	Role     string    `json:"role"`
	Resident string    `json:"resident"`
	Action   string    `json:"action"`
	Detail   string    `json:"detail,omitempty"` // an operation name, never health data
	// Seq is the event's place in this computer's audit log, set when it
	// is sent: the relay stores each event once however often it arrives.
	Seq uint64 `json:"seq,omitempty"`
}

const (
	auditLog     = "app-audit"      // append-only: every event, durably, before it is sent
	nsAuditState = "app-audit-sent" // "acked" → the highest sequence the relay confirmed
	auditBatch   = 200
)

// auditOutbox holds audit events until the relay confirms it stored them,
// so that a view or change made offline still reaches the IG lead.
type auditOutbox struct {
	a    *App
	kick chan struct{}
}

func newAuditOutbox(a *App) *auditOutbox {
	return &auditOutbox{a: a, kick: make(chan struct{}, 1)}
}

// record appends an event durably and nudges the sender.
func (o *auditOutbox) record(u *User, resident docid.ID, action, detail string) {
	b, _ := json.Marshal(auditEvent{Time: o.a.opts.Now().UTC(), User: u.ID, Role: string(u.Acts()), Resident: resident.String(), Action: action, Detail: detail})
	if _, err := o.a.st.AppendLog(context.Background(), auditLog, b); err != nil {
		o.a.log.Error("audit event not recorded", "err", err)
		return
	}
	o.nudge()
}

func (o *auditOutbox) nudge() {
	select {
	case o.kick <- struct{}{}:
	default:
	}
}

func (o *auditOutbox) ackedSeq() uint64 {
	b, err := o.a.st.Get(nsAuditState, "acked")
	if err != nil || len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// acked is the client's callback: the relay stored everything up to seq.
func (o *auditOutbox) acked(seq uint64) {
	if seq > o.ackedSeq() {
		o.a.st.Put(context.Background(), nsAuditState, "acked", binary.BigEndian.AppendUint64(nil, seq))
	}
	o.nudge()
}

// Pending counts events not yet confirmed by the relay.
func (o *auditOutbox) pending() int {
	n := 0
	o.a.st.ReadLog(auditLog, o.ackedSeq(), func(uint64, []byte) error { n++; return nil })
	return n
}

// run sends unconfirmed events whenever nudged or every 30 s, until ctx ends.
func (o *auditOutbox) run(ctx context.Context) {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	for {
		o.sendBatch()
		select {
		case <-ctx.Done():
			return
		case <-o.kick:
		case <-t.C:
		}
	}
}

func (o *auditOutbox) sendBatch() {
	c := o.a.client
	if c == nil || !c.Status().Online {
		return
	}
	var events []auditEvent
	var last uint64
	o.a.st.ReadLog(auditLog, o.ackedSeq(), func(seq uint64, v []byte) error {
		if len(events) >= auditBatch {
			return errStop
		}
		var e auditEvent
		if err := json.Unmarshal(v, &e); err != nil {
			o.a.log.Error("unreadable audit event skipped", "seq", seq)
			return nil
		}
		e.Seq = seq
		events = append(events, e)
		last = seq
		return nil
	})
	if len(events) == 0 {
		return
	}
	b, _ := json.Marshal(events)
	c.SendAudit(last, b)
}

var errStop = stopErr{}

type stopErr struct{}

func (stopErr) Error() string { return "stop" }
