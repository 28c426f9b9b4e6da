package app

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"time"

	"haven/shared/docid"
	"haven/shared/wire"
)

// Audit actions.
const (
	AuditViewFrontSheet = "view-front-sheet"
	AuditViewCarePlan   = "view-care-plan"
	AuditViewWishes     = "view-advance-wishes"
	AuditViewHistory    = "view-history"
	AuditChange         = "change"
	// AuditUnreadable stands for an event this computer recorded but can
	// no longer read (a damaged store).
	AuditUnreadable = "unreadable-on-device"
)

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

// record appends an event durably and nudges the sender. A certified
// member of staff signs it (their key is unsealed while they are signed
// in), so the relay takes who they are from their certificate rather than
// from this computer's word.
func (o *auditOutbox) record(u *User, resident docid.ID, action, detail string) {
	e := wire.AuditEvent{ID: randomID("ev-"), Time: o.a.opts.Now().UTC(), User: u.ID, Role: string(u.Acts()),
		Resident: resident.String(), Action: action, Detail: detail}
	if u.signer.Cert != nil {
		e.Cert = u.signer.Cert.ID
		e.Sig = u.signer.Sign(e.SigningBytes(o.a.dev.DeviceID))
	}
	b, _ := json.Marshal(e)
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

// acked is the client's callback: the relay holds everything up to seq,
// and nothing after it. It answers every batch, also one it refused (a
// gap, its rate), and may so move the mark back: what it lacks is sent
// again from the log, which keeps every event. A mark that did not move
// waits for the next round rather than sending the same batch at once.
func (o *auditOutbox) acked(seq uint64) {
	if seq == o.ackedSeq() {
		return
	}
	o.a.st.Put(context.Background(), nsAuditState, "acked", binary.BigEndian.AppendUint64(nil, seq))
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
	var events []wire.AuditEvent
	var last uint64
	o.a.st.ReadLog(auditLog, o.ackedSeq(), func(seq uint64, v []byte) error {
		if len(events) >= auditBatch {
			return errStop
		}
		var e wire.AuditEvent
		if err := json.Unmarshal(v, &e); err != nil {
			// The relay takes numbers only in order: say the event was
			// lost here rather than leave a gap that stops the rest.
			o.a.log.Error("unreadable audit event sent as such", "seq", seq)
			e = wire.AuditEvent{Action: AuditUnreadable, Time: o.a.opts.Now().UTC()}
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
