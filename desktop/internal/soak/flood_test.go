package soak

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"haven/shared/rig"
	"haven/shared/transport"
)

// flood: every healthy desktop's line drops; meanwhile one enrolled device
// (the home's compromised PC) opens connections until the relay refuses
// more (its cap is global, 1,000); then the lines return, so each desktop
// reconnects to a full relay. Once the flood ends, every desktop must be
// syncing again by itself: a refusal while the relay is full is temporary,
// and a desktop that stops retrying stays silently out of date until
// someone restarts it.
func (h *harness) flood(rep *report, cred string) {
	t := h.t
	rep.floodRan = true
	for _, a := range h.agents {
		a.link.Cut()
	}
	h.waitFor(30*time.Second, func() bool {
		for _, a := range h.agents {
			if a.view().online {
				return false
			}
		}
		return true
	})
	var (
		mu      sync.Mutex
		conns   []*rig.Peer
		refused int
	)
	var wg sync.WaitGroup
	attempts := make(chan struct{}, h.cfg.floodConns)
	for i := 0; i < h.cfg.floodConns; i++ {
		attempts <- struct{}{}
	}
	close(attempts)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range attempts {
				mu.Lock()
				full := refused > 20
				mu.Unlock()
				if full {
					return
				}
				p, joined := floodConn(h.relay.Addr(), cred)
				if p == nil {
					continue
				}
				mu.Lock()
				if joined {
					conns = append(conns, p)
				} else {
					refused++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	rep.floodConns = len(conns)
	h.counts.hostileConnections += len(conns) + refused
	h.logf("flood: %d connections joined, %d refused", len(conns), refused)

	// The lines return while the relay is full: each desktop that is not
	// online must have been told so (a refusal whose code says the relay
	// is busy).
	logs := h.agentLogSizes()
	toldBusy := func(a *agentProc) bool {
		for _, code := range relayCodesSince(a.logPath, logs[a]) {
			if rig.Classify(code) == rig.ClassBusy {
				return true
			}
		}
		return false
	}
	for _, a := range h.agents {
		a.link.Heal()
	}
	h.waitFor(10*time.Second, func() bool {
		for _, a := range h.agents {
			if !a.view().online && !toldBusy(a) {
				return false
			}
		}
		return true
	})
	for _, a := range h.agents {
		if toldBusy(a) {
			rep.floodRefused = append(rep.floodRefused, a.spec.name)
		}
	}

	// The flood ends; every desktop must come back by itself.
	for _, p := range conns {
		p.Conn.Close(transport.CloseNormal, "")
	}
	for _, p := range conns {
		<-p.Done()
	}
	// A desktop whose sync gave up says so in its log ("sync stopped"); one
	// still retrying may wait up to its longest backoff (30 s) to try.
	ended := time.Now()
	gaveUp := func(a *agentProc) bool {
		b, _ := os.ReadFile(a.logPath)
		return bytes.Contains(b, []byte(`"sync stopped"`))
	}
	h.waitFor(45*time.Second, func() bool {
		for _, a := range h.agents {
			if !a.view().online && !gaveUp(a) {
				return false
			}
		}
		return true
	})
	for _, a := range h.agents {
		if !a.view().online {
			s, _ := a.askStatus()
			rep.floodStuck = append(rep.floodStuck, a.spec.name)
			h.logf("flood: %s not syncing %v after the flood ended: %q", a.spec.name, time.Since(ended).Round(time.Second), s.Problem)
		}
	}
	// Recover: the stuck ones need a restart (what staff would have to
	// do); the others are restarted as well, so that the reconnection
	// backoff the flood built up does not slow the phases after this one.
	for _, a := range h.agents {
		if err := a.quit(); err != nil {
			t.Errorf("after the flood: %v", err)
		}
	}
	h.healAll()
	if !h.waitFor(h.cfg.converge, h.converged) {
		t.Errorf("after the flood: no convergence even after restarting the stuck desktops:\n  %s", h.describe())
	}
}

// floodConn opens one websocket and joins; joined is false if the relay
// refused it (and the connection is closed).
func floodConn(addr, cred string) (p *rig.Peer, joined bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	p, err := rig.DialPeer(ctx, "ws://"+addr+"/sync", cred, fmt.Sprintf("flood-%d", floodSeq.Add(1)), nil)
	if err != nil {
		return nil, false
	}
	p.Join()
	if p.WaitJoined(10*time.Second) == nil {
		return p, true
	}
	p.Close()
	return p, false
}

// floodSeq numbers the flood's peers.
var floodSeq atomic.Int64
