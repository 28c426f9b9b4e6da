package soak

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"time"

	"haven/shared/rig"
)

// final heals everything, waits for convergence, stops every process
// cleanly and compares the stores.
func (h *harness) final(rep *report) {
	t := h.t
	for _, a := range h.agents {
		a.eachLink(func(l *rig.Link) { l.SetProfile(a.spec.profile) })
	}
	h.healAll()
	start := time.Now()
	rep.finalConverged = h.waitConverged(2 * h.cfg.converge)
	rep.finalConverge = time.Since(start)
	if !rep.finalConverged {
		t.Errorf("no final convergence within %v:\n  %s", time.Since(start).Round(time.Second), h.describe())
	} else if u := h.unsettled(settleWithin); len(u) > 0 {
		rep.unsettled = append(rep.unsettled, "final: "+strings.Join(u, ", "))
		rep.unsettledFinal = true
	}
	if h.cluster != nil {
		// The desktops converged through whichever nodes they reached; a
		// node that restarted or was cut off last may still be applying
		// what the others took meanwhile. Its store is judged once it says
		// it has caught up.
		start := time.Now()
		if err := h.cluster.rc.WaitCaughtUp(2 * h.cfg.converge); err != nil {
			rep.behind = err.Error()
			t.Error(err)
		} else {
			rep.caughtUp, rep.nodesCaughtUp = true, time.Since(start)
		}
	}
	for _, a := range h.agents {
		if err := a.quit(); err != nil {
			t.Errorf("stopping %s: %v", a.spec.name, err)
		}
	}
	names, relays := []string{"relay"}, []*relayProc{h.relay}
	if h.cluster != nil {
		if err := h.cluster.stop(); err != nil {
			t.Errorf("stopping the nodes: %v", err)
		}
		names, relays = nil, h.cluster.nodes
		for i := range relays {
			names = append(names, fmt.Sprintf("node-%d", i))
		}
	} else {
		h.relay.Stop()
	}

	var reps []*replica
	for i, r := range relays {
		name := names[i]
		key, err := relayKey(r.KeyFile())
		if err != nil {
			t.Fatalf("%s key: %v", name, err)
		}
		rr, err := openReplica(name, r.Data(), key)
		if err != nil {
			t.Fatalf("opening %s's store: %v", name, err)
		}
		rr.relay = true
		reps = append(reps, rr)
	}
	for _, a := range h.agents {
		key, err := desktopKey(a.dir, a.spec.account, accountPIN(a.spec.account))
		if err != nil {
			t.Fatalf("%s's store key: %v", a.spec.name, err)
		}
		r, err := openReplica(a.spec.name, a.dir, key)
		if err != nil {
			t.Fatalf("opening %s's store: %v", a.spec.name, err)
		}
		reps = append(reps, r)
	}
	if h.cluster != nil {
		for _, a := range h.agents {
			b, _ := os.ReadFile(a.logPath)
			rep.internalRefusals += bytes.Count(b, []byte(`"code":"internal"`))
		}
	}
	rep.verified = true
	rep.replicas = len(reps)
	acks := h.ackList()
	rep.acks = len(acks)
	rep.ackKinds = map[string]int{}
	for _, k := range acks {
		rep.ackKinds[k.Kind]++
	}
	rep.lost = lostAcks(acks, reps)
	rep.scopeDocs, rep.diverged = divergence(reps)
	for _, r := range reps {
		rep.docsTotal += len(r.docs) + len(r.loadErrs)
		rep.docsLoaded += len(r.docs)
		for id, e := range r.loadErrs {
			rep.loadErrors = append(rep.loadErrors, fmt.Sprintf("%s at %s: %s", id, r.name, e))
		}
	}
	for i := range rep.damaged {
		d := &rep.damaged[i]
		for _, r := range reps {
			if r.name != d.replica {
				continue
			}
			for _, q := range r.atOpen {
				if q.DocID == d.doc && q.Seq == d.seq && !q.Snapshot {
					d.inQuarantine = true
				}
			}
		}
		if d.inQuarantine {
			rep.quarantinedFound++
		}
	}
	h.logf("final: %d acks, %d lost, %d docs in scope, %d diverged", len(acks), len(rep.lost), rep.scopeDocs, len(rep.diverged))
	if len(rep.lost) > 0 {
		h.logf("lost:\n  %s", strings.Join(rep.lost, "\n  "))
	}
}
