package soak

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"haven/shared/transport"
	"haven/shared/wire"
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
		conns   []*transport.Conn
		dones   []chan error
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
				tc, joined, done := floodConn(h.relay.addr, cred)
				if tc == nil {
					continue
				}
				mu.Lock()
				if joined {
					conns = append(conns, tc)
					dones = append(dones, done)
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

	// The lines return while the relay is full.
	for _, a := range h.agents {
		a.link.Heal()
	}
	h.waitFor(10*time.Second, func() bool {
		for _, a := range h.agents {
			if a.view().online {
				continue
			}
			if s, err := a.askStatus(); err != nil || !strings.Contains(s.Problem, "limit") {
				return false
			}
		}
		return true
	})
	for _, a := range h.agents {
		if s, err := a.askStatus(); err == nil && strings.Contains(s.Problem, "limit") {
			rep.floodRefused = append(rep.floodRefused, a.spec.name)
		}
	}

	// The flood ends; every desktop must come back by itself.
	for _, tc := range conns {
		tc.Close(transport.CloseNormal, "")
	}
	for _, d := range dones {
		<-d
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
// refused it.
func floodConn(addr, cred string) (tc *transport.Conn, joined bool, done chan error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tc, _, err := transport.Dial(ctx, "ws://"+addr+"/sync", http.Header{"Authorization": {"Bearer " + cred}}, transport.Options{})
	if err != nil {
		return nil, false, nil
	}
	peer := make(chan bool, 1)
	done = make(chan error, 1)
	go func() {
		done <- tc.Run(context.Background(), func(frame []byte) {
			if m, err := wire.Decode(frame); err == nil {
				switch m.Type {
				case wire.TypePeer:
					select {
					case peer <- true:
					default:
					}
				case wire.TypeError:
					select {
					case peer <- false:
					default:
					}
				}
			}
		})
	}()
	tc.Send(mustEncode(wire.Message{Type: wire.TypeJoin, SenderID: fmt.Sprintf("flood-%p", tc), SupportedProtocolVersions: []string{wire.ProtocolV1}}))
	select {
	case ok := <-peer:
		if ok {
			return tc, true, done
		}
	case err := <-done:
		done <- err
	case <-ctx.Done():
	}
	tc.Close(transport.CloseNormal, "")
	<-done
	return tc, false, nil
}
