package app

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"sync"
	"time"

	"haven/shared/client"
	"haven/shared/docid"
	"haven/shared/wire"
)

// Audit actions.
const (
	AuditViewFrontSheet = "view-front-sheet"
	AuditViewCarePlan   = "view-care-plan"
	AuditViewWishes     = "view-advance-wishes"
	AuditViewHistory    = "view-history"
	AuditViewHandover   = "view-handover"
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

	// One batch at a time: sent up to inFlight at sentAt, and not again
	// until the relay answers or resendAfter passes. Views come faster
	// than a slow line's answers; each would otherwise send the same
	// unconfirmed events again. Guarded by mu.
	mu       sync.Mutex
	inFlight uint64
	sentAt   time.Time

	to auditSender // the connection; nil: the app's client
}

// auditSender is what the outbox needs of the connection to the relay.
type auditSender interface {
	Status() client.Status
	SendAudit(seq uint64, events []byte) bool
}

func (o *auditOutbox) sender() auditSender {
	if o.to != nil {
		return o.to
	}
	if o.a.client == nil {
		return nil
	}
	return o.a.client
}

// resendAfter is how long an unanswered batch waits before it goes again.
const resendAfter = 30 * time.Second

func newAuditOutbox(a *App) *auditOutbox {
	return &auditOutbox{a: a, kick: make(chan struct{}, 1)}
}

// record appends an event durably and nudges the sender. A certified
// member of staff signs it (their key is unsealed while they are signed
// in), so the relay takes who they are from their certificate rather than
// from this computer's word.
func (o *auditOutbox) record(u *User, resident docid.ID, action, detail string) {
	o.recordEach(u, []docid.ID{resident}, action, detail)
}

// recordEach records one event for each resident, in one write: a view
// that shows many residents at once (a handover) names each of them.
func (o *auditOutbox) recordEach(u *User, residents []docid.ID, action, detail string) {
	if len(residents) == 0 {
		return
	}
	now := o.a.opts.Now().UTC()
	vals := make([][]byte, len(residents))
	for i, resident := range residents {
		e := wire.AuditEvent{ID: randomID("ev-"), Time: now, User: u.ID, Role: string(u.Acts()),
			Resident: resident.String(), Action: action, Detail: detail}
		if u.signer.Cert != nil {
			e.Cert = u.signer.Cert.ID
			e.Sig = u.signer.Sign(e.SigningBytes(o.a.dev.DeviceID))
		}
		vals[i], _ = json.Marshal(e)
	}
	if _, err := o.a.st.AppendLogs(context.Background(), auditLog, vals); err != nil {
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

// reconnected forgets the batch in flight (a new connection will not
// answer what the old one carried) and sends again at once.
func (o *auditOutbox) reconnected() {
	o.mu.Lock()
	o.inFlight = 0
	o.mu.Unlock()
	o.nudge()
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
	o.mu.Lock()
	o.inFlight = 0 // answered, whatever it says
	o.mu.Unlock()
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
	c := o.sender()
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
	o.mu.Lock()
	defer o.mu.Unlock()
	now := o.a.opts.Now()
	if o.inFlight != 0 && now.Sub(o.sentAt) < resendAfter {
		return // the batch out there is answered first
	}
	b, _ := json.Marshal(events)
	if c.SendAudit(last, b) {
		o.inFlight, o.sentAt = last, now
	}
}

var errStop = stopErr{}

type stopErr struct{}

func (stopErr) Error() string { return "stop" }
