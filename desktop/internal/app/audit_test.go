package app

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"haven/shared/client"
	"haven/shared/wire"
)

// auditLine is a connection that records the batches it is given and
// answers none of them until told.
type auditLine struct {
	mu   sync.Mutex
	sent []uint64 // the last number of each batch sent
}

func (l *auditLine) Status() client.Status { return client.Status{Online: true} }
func (l *auditLine) SendAudit(seq uint64, events []byte) bool {
	var evs []wire.AuditEvent
	if json.Unmarshal(events, &evs) != nil || len(evs) == 0 || evs[len(evs)-1].Seq != seq {
		panic("a malformed batch")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sent = append(l.sent, seq)
	return true
}
func (l *auditLine) batches() []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]uint64(nil), l.sent...)
}

// TestAuditSendsOneBatchAtATime: views come faster than a slow line's
// answers; the outbox sends its unconfirmed events once and waits for the
// relay's answer (or half a minute) before it sends them again, rather
// than once per view, and a new connection sends at once.
func TestAuditSendsOneBatchAtATime(t *testing.T) {
	a, clk, h := openApp(t, 2, "Casey Carer", carerPIN)
	line := &auditLine{}
	o := a.audit
	o.to = line
	id := h.Residents[0].RecordID
	for range 20 {
		if _, err := a.FrontSheet(id); err != nil {
			t.Fatal(err)
		}
		o.sendBatch()
	}
	if got := line.batches(); len(got) != 1 {
		t.Fatalf("%d batches sent for 20 views without an answer; want 1: %v", len(got), got)
	}
	first := line.batches()[0]
	o.acked(first)
	if _, err := a.FrontSheet(id); err != nil {
		t.Fatal(err)
	}
	o.sendBatch()
	if got := line.batches(); len(got) != 2 || got[1] <= first {
		t.Fatalf("after the answer, batches %v; want the next one sent", got)
	}
	clk.t = clk.t.Add(resendAfter + time.Second)
	o.sendBatch()
	if got := line.batches(); len(got) != 3 || got[2] != got[1] {
		t.Fatalf("half a minute unanswered, batches %v; want the same batch again", got)
	}
	o.reconnected()
	o.sendBatch()
	if got := line.batches(); len(got) != 4 {
		t.Fatalf("on a new connection, batches %v; want it sent at once", got)
	}
}
