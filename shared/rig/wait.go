package rig

import (
	"sync"
	"testing"
	"time"
)

// Every is how often Until checks a condition that no event announces
// (a connection coming up in a client, a row reaching a store).
const Every = 10 * time.Millisecond

// Until checks cond at once and then every Every until it holds or within
// passes, and reports whether it held. Use it only for a state with no
// event to wait on; otherwise wait on the event (Recv, Signal).
func Until(within time.Duration, cond func() bool) bool {
	return UntilEvery(within, Every, cond)
}

// UntilEvery is Until checking every every.
func UntilEvery(within, every time.Duration, cond func() bool) bool {
	if cond() {
		return true
	}
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-deadline.C:
			return cond()
		case <-tick.C:
			if cond() {
				return true
			}
		}
	}
}

// WaitFor is Until for a test: it fails the test, naming what it waited
// for, if cond does not hold within.
func WaitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(within, cond) {
		t.Fatalf("timed out after %v waiting for %s", within, what)
	}
}

// Recv waits at most within for a value on ch, or for ch to close (a done
// channel); ok is false only if within passed first.
func Recv[T any](ch <-chan T, within time.Duration) (v T, ok bool) {
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case v = <-ch:
		return v, true
	case <-timer.C:
		return v, false
	}
}

// Signal wakes every waiter at each change of something several
// goroutines watch: Notify closes the channel the waiters hold and hands
// out a fresh one. The zero Signal is ready to use.
type Signal struct {
	mu sync.Mutex
	ch chan struct{} // closed at the next Notify
}

// C returns a channel closed at the next Notify.
func (s *Signal) C() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

// Notify wakes everyone waiting on a channel from C.
func (s *Signal) Notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch != nil {
		close(s.ch)
	}
	s.ch = make(chan struct{})
}

// unreported is how often UntilSignal checks a condition anyway, for
// changes that are not notified (a process exiting).
const unreported = 100 * time.Millisecond

// UntilSignal checks cond at every Notify of s (and every 100 ms, for
// changes nobody notifies) until it holds or within passes, and reports
// whether it held.
func UntilSignal(within time.Duration, s *Signal, cond func() bool) bool {
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	tick := time.NewTicker(unreported)
	defer tick.Stop()
	for {
		ch := s.C() // taken before the check, so a change during it wakes the wait
		if cond() {
			return true
		}
		select {
		case <-ch:
		case <-tick.C:
		case <-deadline.C:
			return cond()
		}
	}
}
