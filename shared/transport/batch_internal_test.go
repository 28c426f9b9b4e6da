package transport

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// countedServer serves one websocket whose socket writes are counted:
// queue runs before the connection runs, send while it runs (echoing what
// it reads). counted yields the counter once send returns.
func countedServer(t *testing.T, opts Options, queue, send func(c *Conn)) (url string, counted <-chan *countingConn) {
	t.Helper()
	ch := make(chan *countingConn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := Upgrade(w, r, opts)
		if err != nil {
			return
		}
		if c.bc == nil {
			t.Error("the server's socket was not wrapped for batching")
			return
		}
		cc := &countingConn{Conn: c.bc.Conn}
		c.bc.Conn = cc
		queue(c)
		go func() {
			send(c)
			ch <- cc
		}()
		c.Run(r.Context(), func(frame []byte) { c.Send(frame) }) // echo
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http"), ch
}

// sendNumbered sends frames numbered from 0. With trickle, each frame is
// sent only once the writer has taken the one before it off the queue: a
// burst that is still being made, never queued ahead of the writer.
func sendNumbered(c *Conn, frames int, trickle bool) {
	for i := 0; i < frames; i++ {
		if trickle {
			select { // a token left by an earlier take
			case <-c.space:
			default:
			}
		}
		c.Send([]byte(fmt.Sprintf("frame %03d %s", i, strings.Repeat("x", 100))))
		if trickle {
			select {
			case <-c.space: // the writer took it
			case <-c.done:
				return
			}
		}
	}
}

// readNumbered dials url and checks that frames numbered frames arrive
// complete and in order; it returns the connection and its frames.
func readNumbered(t *testing.T, ctx context.Context, url string, frames int) (*Conn, <-chan []byte) {
	t.Helper()
	c, _, err := Dial(ctx, url, nil, Options{})
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, frames+1)
	go c.Run(ctx, func(frame []byte) { got <- frame })
	for i := 0; i < frames; i++ {
		select {
		case f := <-got:
			if want := fmt.Sprintf("frame %03d ", i); !strings.HasPrefix(string(f), want) {
				t.Fatalf("frame %d = %.12q, want %q first", i, f, want)
			}
		case <-ctx.Done():
			t.Fatalf("only %d of %d frames arrived", i, frames)
		}
	}
	return c, got
}

// Frames queued together leave in a few socket writes, complete and in
// order; a frame sent alone is not held back waiting for company.
func TestQueuedFramesShareAWrite(t *testing.T) {
	const frames = 200
	url, counted := countedServer(t, Options{SendQueue: 1000}, func(c *Conn) { sendNumbered(c, frames, false) }, func(*Conn) {})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, got := readNumbered(t, ctx, url, frames)
	cc := <-counted
	if n := cc.writes.Load(); n > 4 {
		t.Errorf("%d queued frames took %d socket writes; want them gathered into a few", frames, n)
	}
	// A lone frame goes at once: the echo comes back.
	before := cc.writes.Load()
	c.Send([]byte("alone"))
	select {
	case f := <-got:
		if string(f) != "alone" {
			t.Fatalf("echo = %q", f)
		}
	case <-ctx.Done():
		t.Fatal("a lone frame was held back")
	}
	if cc.writes.Load() != before+1 {
		t.Errorf("a lone frame took %d writes, want 1", cc.writes.Load()-before)
	}
	c.Close(CloseNormal, "")
}

// A burst whose frames are still being made (the relay answering a
// reconnect's offers as each is worked out) is gathered too: frames sent
// one at a time, each only after the writer took the one before, leave in
// far fewer writes than frames, all of them complete and in order. (Written
// as they come, each would be a write of its own.)
func TestTricklingBurstSharesWrites(t *testing.T) {
	const frames = 100
	url, counted := countedServer(t, Options{}, func(*Conn) {}, func(c *Conn) { sendNumbered(c, frames, true) })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, _ := readNumbered(t, ctx, url, frames)
	cc := <-counted
	if n := cc.writes.Load(); n > frames/3 {
		t.Errorf("%d frames made one after another took %d socket writes; want them gathered", frames, n)
	} else {
		t.Logf("%d frames made one after another took %d socket writes", frames, n)
	}
	c.Close(CloseNormal, "")
}
