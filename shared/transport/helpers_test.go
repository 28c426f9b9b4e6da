package transport_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/transport"
)

// eventWait bounds every wait for an event, so that a broken test fails
// instead of hanging. Nothing waits for it to pass.
const eventWait = 10 * time.Second

// recv waits for one value from ch.
func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(eventWait):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// peer is one end of a connection under test: a Conn whose Run result and
// received frames land on channels.
type peer struct {
	*transport.Conn
	req    *http.Request      // server side only: the upgrade request
	frames chan []byte        // received frames, unless handle takes them
	result chan error         // Run's result
	cancel context.CancelFunc // client side only: ends Run's context
	handle func(p *peer, frame []byte)
}

func newPeer(c *transport.Conn, handle func(*peer, []byte)) *peer {
	return &peer{
		Conn:   c,
		frames: make(chan []byte, 10000),
		result: make(chan error, 1),
		handle: handle,
	}
}

func (p *peer) onFrame(frame []byte) {
	if p.handle != nil {
		p.handle(p, frame)
		return
	}
	select {
	case p.frames <- frame:
	default:
		panic("test peer: frame buffer full")
	}
}

// serve starts a real HTTP server on 127.0.0.1:0 whose handler upgrades
// every request with opts and runs the Conn until the test ends. handle,
// if set, receives the frames; peers yields each server-side peer. It
// returns the ws:// URL. At cleanup every Conn is ended through its
// context and the handlers are awaited (httptest does not wait for
// hijacked connections).
func serve(t testing.TB, opts transport.Options, handle func(*peer, []byte)) (wsURL string, peers <-chan *peer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan *peer, 100)
	var wg sync.WaitGroup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := transport.Upgrade(w, r, opts)
		if err != nil {
			return // Upgrade has answered the client
		}
		wg.Add(1)
		defer wg.Done()
		p := newPeer(c, handle)
		p.req = r
		ch <- p
		p.result <- c.Run(ctx, p.onFrame)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		cancel()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http"), ch
}

// dial connects a client peer and runs it until the test ends.
func dial(t testing.TB, wsURL string, opts transport.Options, handle func(*peer, []byte)) *peer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c, _, err := transport.Dial(ctx, wsURL, nil, opts)
	if err != nil {
		cancel()
		t.Fatalf("Dial(%s) = %v", wsURL, err)
	}
	p := newPeer(c, handle)
	p.cancel = cancel
	go func() { p.result <- c.Run(ctx, p.onFrame) }()
	t.Cleanup(func() {
		cancel()
		recv(t, c.Done(), "client Run to return")
	})
	return p
}

// rawDial opens a TCP connection, performs the websocket handshake by
// hand and returns the socket: a peer that does nothing unless told, with
// a small receive buffer so that it stops the sender soon.
func rawDial(t testing.TB, wsURL string) net.Conn {
	t.Helper()
	u, err := url.Parse(wsURL)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.(*net.TCPConn).SetReadBuffer(4 << 10)
	path := u.Path
	if path == "" {
		path = "/"
	}
	fmt.Fprintf(nc, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", path, u.Host)
	// The reader may buffer bytes past the response; the raw peer ignores
	// them anyway.
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("raw handshake status = %s, want 101", resp.Status)
	}
	return nc
}

// rawSend writes payload (under 126 bytes) as one binary frame from a raw
// client, masked with a zero key as a client must mask.
func rawSend(t testing.TB, nc net.Conn, payload []byte) {
	t.Helper()
	frame := append([]byte{0x82, 0x80 | byte(len(payload)), 0, 0, 0, 0}, payload...)
	if _, err := nc.Write(frame); err != nil {
		t.Fatal(err)
	}
}
