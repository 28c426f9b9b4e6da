package rig

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

// echoServer answers every connection by echoing what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// sinkServer hands each accepted connection to the test.
func sinkServer(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns := make(chan net.Conn, 16)
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			conns <- c
		}
	}()
	return ln.Addr().String(), conns
}

func newTestLink(t *testing.T, target string, p Profile) *Link {
	t.Helper()
	l, err := NewLink("test", "127.0.0.1:0", target, p, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends msg and reads the echo, returning the time it took.
func roundTrip(t *testing.T, c net.Conn, msg []byte) time.Duration {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	start := time.Now()
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, msg) {
		t.Fatalf("echo = %q, want %q", got, msg)
	}
	return time.Since(start)
}

// TestLinkDelay: a round trip through the link takes its RTT, and no
// more than a little over it; changing the profile applies at once.
func TestLinkDelay(t *testing.T) {
	t.Parallel()
	l := newTestLink(t, echoServer(t), Profile{Name: "slow", RTT: 300 * time.Millisecond})
	c := dial(t, l.Addr())
	for i := 0; i < 3; i++ {
		rtt := roundTrip(t, c, []byte("ping"))
		if rtt < 295*time.Millisecond || rtt > 1500*time.Millisecond { // a busy machine may add, never take away
			t.Errorf("round trip %d took %v through a 300 ms link", i, rtt)
		}
	}
	l.SetProfile(ProfileLAN)
	if rtt := roundTrip(t, c, []byte("ping")); rtt >= 250*time.Millisecond { // well under the slow link's 300 ms
		t.Errorf("round trip on LAN took %v", rtt)
	}
	// Jitter never reorders: a burst of small writes arrives in order.
	l.SetProfile(Profile{Name: "jittery", RTT: 20 * time.Millisecond, Jitter: 30 * time.Millisecond})
	var want bytes.Buffer
	for i := 0; i < 200; i++ {
		b := []byte{byte(i), byte(i >> 8)}
		want.Write(b)
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
	}
	got := make([]byte, want.Len())
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("jittered stream arrived altered or out of order (%v)", err)
	}
}

// TestLinkThrottle: 200 KB each way through a 100 KB/s link take about 2 s
// per direction.
func TestLinkThrottle(t *testing.T) {
	t.Parallel()
	addr, conns := sinkServer(t)
	l := newTestLink(t, addr, Profile{Name: "throttled", RTT: time.Millisecond, Rate: 100_000})
	c := dial(t, l.Addr())
	s := <-conns
	payload := bytes.Repeat([]byte("0123456789"), 20_000)
	for _, dir := range []struct {
		name     string
		from, to net.Conn
	}{{"up", c, s}, {"down", s, c}} {
		start := time.Now()
		go dir.from.Write(payload)
		dir.to.SetReadDeadline(time.Now().Add(10 * time.Second))
		got := make([]byte, len(payload))
		if _, err := io.ReadFull(dir.to, got); err != nil {
			t.Fatalf("%s: %v", dir.name, err)
		}
		took := time.Since(start)
		rate := float64(len(payload)) / took.Seconds()
		t.Logf("%s: %d bytes in %v = %.0f B/s", dir.name, len(payload), took.Round(time.Millisecond), rate)
		if rate > 100_000*1.15 || rate < 100_000*0.3 { // the cap is what matters; a busy machine only slows it
			t.Errorf("%s: throughput %.0f B/s through a 100,000 B/s link", dir.name, rate)
		}
	}
}

// TestLinkLossStalls: lost segments stall their direction for a
// retransmission timeout (longer when the retransmission is lost too); the
// link counts them.
func TestLinkLossStalls(t *testing.T) {
	t.Parallel()
	l := newTestLink(t, echoServer(t), Profile{Name: "lossy", RTT: time.Millisecond, Loss: 0.25, RTOMin: 50 * time.Millisecond, RTOMax: 50 * time.Millisecond})
	c := dial(t, l.Addr())
	began := time.Now()
	var total time.Duration
	const n = 40
	for i := 0; i < n; i++ {
		total += roundTrip(t, c, []byte{byte(i)})
	}
	stalls := l.Stats().Stalls
	// 2n segments, each lost with p=0.25: about n/2 stalls of 50 ms or more.
	if stalls < n/5 || stalls > n {
		t.Errorf("%d stalls for %d segments at 25%% loss", stalls, 2*n)
	}
	if total < time.Duration(stalls)*50*time.Millisecond {
		t.Errorf("%d stalls of 50 ms cost only %v in all", stalls, total)
	}
	// Each stall is in the log, with its time, direction and length.
	log := l.StallLog()
	if int64(len(log)) != stalls {
		t.Errorf("%d stalls counted, %d in the log", stalls, len(log))
	}
	dirs := map[Direction]int{}
	for _, s := range log {
		dirs[s.Dir]++
		if s.Length < 50*time.Millisecond || s.At.Before(began) || s.At.After(time.Now()) {
			t.Errorf("stall %+v: not a stall of this test", s)
		}
	}
	if dirs[Up] == 0 || dirs[Down] == 0 || dirs[Up]+dirs[Down] != len(log) {
		t.Errorf("stalls by direction: %v", dirs)
	}
	t.Logf("%d round trips, %d stalls, %v in all", n, stalls, total.Round(time.Millisecond))
}

// TestLinkProfileChangeEndsAStall: a line made good is good at once. A
// segment already waiting out the bad line's loss stall, and the bytes
// queued behind it, leave on the new line's figures, so a test that sets
// every link to LAN measures LAN, not the tail of the failing line before.
func TestLinkProfileChangeEndsAStall(t *testing.T) {
	t.Parallel()
	// Every segment lost, and each retransmission too: about half an
	// hour's stall.
	dead := Profile{Name: "dead", RTT: time.Millisecond, Loss: 1, RTOMin: 30 * time.Second, RTOMax: 30 * time.Second}
	l := newTestLink(t, echoServer(t), dead)
	c := dial(t, l.Addr())
	if _, err := c.Write([]byte("a")); err != nil {
		t.Fatal(err)
	}
	WaitFor(t, 10*time.Second, "the segment's loss drawn", func() bool { return l.Stats().Stalls >= 1 })
	l.SetProfile(ProfileLAN)
	if _, err := c.Write([]byte("b")); err != nil {
		t.Fatal(err)
	}
	// Both bytes, in order, long before the dead line's stall would end.
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, 2)
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatalf("reading through the link made good: %v", err)
	}
	if string(got) != "ab" {
		t.Errorf("read %q, want \"ab\"", got)
	}
}

// TestLinkCut: a cut resets open connections at once and refuses new ones;
// after Heal connections work again.
func TestLinkCut(t *testing.T) {
	t.Parallel()
	l := newTestLink(t, echoServer(t), ProfileLAN)
	c := dial(t, l.Addr())
	roundTrip(t, c, []byte("before"))
	l.Cut()
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	start := time.Now()
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read on a cut link = %v, want a reset or EOF", err)
	}
	if took := time.Since(start); took > 1500*time.Millisecond {
		t.Errorf("the cut took %v to reach the client", took)
	}
	if c2, err := net.DialTimeout("tcp", l.Addr(), 2*time.Second); err == nil { // else reset before the dial returned
		c2.SetReadDeadline(time.Now().Add(2 * time.Second))
		c2.Write([]byte("x"))
		if _, err := c2.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("a new connection on a cut link read %v, want a reset or EOF", err)
		}
		c2.Close()
	}
	l.Heal()
	c3 := dial(t, l.Addr())
	roundTrip(t, c3, []byte("after"))
	if s := l.Stats(); s.Cuts != 1 || s.Refused < 1 {
		t.Errorf("stats %+v", s)
	}
}

// TestLinkBlackhole: a blackhole holds bytes without closing anything, and
// they arrive after Heal; a one-way blackhole stops only its direction.
func TestLinkBlackhole(t *testing.T) {
	t.Parallel()
	addr, conns := sinkServer(t)
	l := newTestLink(t, addr, ProfileLAN)
	c := dial(t, l.Addr())
	s := <-conns

	expectSilence := func(name string, r net.Conn) {
		t.Helper()
		r.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		if n, err := r.Read(make([]byte, 16)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("%s: read %d bytes, %v through a blackhole; want silence", name, n, err)
		}
	}
	expect := func(name string, r net.Conn, want string) {
		t.Helper()
		r.SetReadDeadline(time.Now().Add(2 * time.Second))
		got := make([]byte, len(want))
		if _, err := io.ReadFull(r, got); err != nil || string(got) != want {
			t.Fatalf("%s: read %q, %v; want %q", name, got, err, want)
		}
	}

	l.Blackhole(Both)
	c.Write([]byte("up-1"))
	s.Write([]byte("down-1"))
	expectSilence("server", s)
	expectSilence("client", c)
	l.Heal()
	expect("server after heal", s, "up-1")
	expect("client after heal", c, "down-1")

	l.Blackhole(Up)
	c.Write([]byte("up-2"))
	s.Write([]byte("down-2"))
	expect("client while only up is blackholed", c, "down-2")
	expectSilence("server while up is blackholed", s)
	l.Heal()
	expect("server after heal", s, "up-2")

	l.Blackhole(Down)
	c.Write([]byte("up-3"))
	s.Write([]byte("down-3"))
	expect("server while only down is blackholed", s, "up-3")
	expectSilence("client while down is blackholed", c)
	l.Heal()
	expect("client after heal", c, "down-3")
}

// TestLinkRelayDown: with nothing listening at the target, the client's
// connection is reset at once.
func TestLinkRelayDown(t *testing.T) {
	t.Parallel()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	l := newTestLink(t, addr, ProfileLAN)
	c, err := net.DialTimeout("tcp", l.Addr(), 2*time.Second)
	if err != nil {
		return // reset before the dial returned: as good
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read with the relay down = %v, want a reset or EOF", err)
	}
}
