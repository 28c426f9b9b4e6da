package client

import (
	"sync"
	"testing"
	"time"

	"haven/shared/rig"
	"haven/shared/transport"
	"haven/shared/wire"
)

// takeDevice answers the join, as a relay that accepts the device does,
// and returns the frames that follow it.
func takeDevice(tc *transport.Conn, frames <-chan wire.Message) <-chan wire.Message {
	for m := range frames {
		if m.Type != wire.TypeJoin {
			continue
		}
		if frame, err := wire.Encode(wire.Message{Type: wire.TypePeer, SenderID: "relay", TargetID: m.SenderID,
			SelectedProtocolVersion: wire.ProtocolV1}); err == nil {
			tc.Send(frame)
		}
		break
	}
	return frames
}

// A client that knows several addresses of one relay goes round them: an
// address that refuses the dial leads to the next, and so does a
// connection that ends; the status names the address in use.
func TestMovesToTheNextAddress(t *testing.T) {
	dead := "ws://" + rig.RouteAddr(t) + "/sync" // free a moment ago: a dial there is refused
	closing := newFakeRelay(t, func(tc *transport.Conn, frames <-chan wire.Message) {
		// Takes the device, then goes, as a node that is stopped.
		for m := range takeDevice(tc, frames) {
			if m.Type == wire.TypeSync {
				tc.Close(transport.CloseGoingAway, "restarting")
				return
			}
		}
	})
	holding := newFakeRelay(t, func(tc *transport.Conn, frames <-chan wire.Message) {
		for range takeDevice(tc, frames) {
		}
	})
	// online gets each address the client is online at, when it changes.
	online := make(chan string, 10)
	var mu sync.Mutex
	last := ""
	startClientWith(t, Config{URLs: []string{dead, closing.url, holding.url}, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
		OnStatus: func(s Status) {
			mu.Lock()
			defer mu.Unlock()
			if s.Online && s.Relay != last {
				last = s.Relay
				online <- s.Relay
			}
		}})
	var used []string
	for len(used) < 2 {
		select {
		case u := <-online:
			used = append(used, u)
		case <-time.After(30 * time.Second):
			t.Fatalf("online at %v within 30 s; want %s, then %s", used, closing.url, holding.url)
		}
	}
	if used[0] != closing.url || used[1] != holding.url {
		t.Errorf("online at %v; want %s (past the dead address), then %s (the next after it closed)", used, closing.url, holding.url)
	}
	closing.waitFor(t, "the closing address's connection to end", func(conns, ends int) bool { return ends >= 1 })
	holding.mu.Lock()
	n := len(holding.conns)
	holding.mu.Unlock()
	if n != 1 {
		t.Errorf("%d connections to the address that kept the device, want 1", n)
	}
}

// A relay that is down at every address is not dialled faster than one
// with a single address: the backoff grows with each attempt, whichever
// address it went to.
func TestBacksOffRoundAllAddresses(t *testing.T) {
	refuse := func(tc *transport.Conn, frames <-chan wire.Message) {
		tc.Close(transport.CloseTryAgainLater, "at capacity")
	}
	a, b := newFakeRelay(t, refuse), newFakeRelay(t, refuse)
	startClientWith(t, Config{URLs: []string{a.url, b.url}, MinBackoff: 20 * time.Millisecond, MaxBackoff: 2 * time.Second})
	waitEnds(t, a, 5)
	gaps := a.gaps()
	// a's fourth and fifth connections are the client's seventh and ninth
	// attempts: between them it waited after the seventh, drawn from
	// [640 ms, 1280 ms], and after the eighth (at b).
	if g := gaps[3]; g < 500*time.Millisecond {
		t.Errorf("waits between connections to one of two refusing addresses: %v; the fourth is %v, want the backoff to have grown past 500 ms", gaps, g)
	}
	if n := len(b.gaps()); n < 3 {
		t.Errorf("%d reconnections to the second address, want it tried in turn", n)
	}
}
