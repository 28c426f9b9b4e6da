package transport_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"haven/shared/transport"
)

func echo(p *peer, frame []byte) {
	if err := p.Send(frame); err != nil {
		panic(fmt.Sprintf("echo Send = %v", err))
	}
}

// Frames cross in both directions, and many goroutines on both sides may
// Send at once (gorilla panics on concurrent writes; -race checks the
// rest): every frame arrives exactly once, intact.
func TestRoundTripConcurrentSenders(t *testing.T) {
	const senders, each = 8, 200
	// The queues hold every frame that can be in flight, so that the burst
	// cannot count as a stuck peer.
	opts := transport.Options{SendQueue: 4 * senders * each}
	wsURL, peers := serve(t, opts, echo)
	client := dial(t, wsURL, opts, nil)
	server := recv(t, peers, "server conn")

	want := make(map[string]bool)
	var wg sync.WaitGroup
	for g := range senders {
		for i := range each {
			want[fmt.Sprintf("client %d/%d", g, i)] = true // echoed back
			want[fmt.Sprintf("server %d/%d", g, i)] = true // pushed by the server
		}
		wg.Go(func() {
			for i := range each {
				if err := client.Send([]byte(fmt.Sprintf("client %d/%d", g, i))); err != nil {
					t.Errorf("client Send = %v", err)
				}
			}
		})
		wg.Go(func() {
			for i := range each {
				if err := server.Send([]byte(fmt.Sprintf("server %d/%d", g, i))); err != nil {
					t.Errorf("server Send = %v", err)
				}
			}
		})
	}
	wg.Wait()
	for range len(want) {
		f := string(recv(t, client.frames, "frame"))
		if !want[f] {
			t.Fatalf("unexpected or duplicate frame %q", f)
		}
		delete(want, f)
	}
}

// A frame over ReadLimit ends the connection: the receiver's Run returns
// ErrTooLarge and the sender learns CloseTooBig, even when most of the
// frame is still unread (the lingering close keeps TCP from resetting
// the close frame away). A frame of exactly ReadLimit is fine.
func TestReadLimit(t *testing.T) {
	for _, size := range []int{1025, 4 << 20} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			wsURL, peers := serve(t, transport.Options{ReadLimit: 1024}, nil)
			client := dial(t, wsURL, transport.Options{}, nil)
			server := recv(t, peers, "server conn")

			client.Send(make([]byte, 1024))
			if got := recv(t, server.frames, "frame at the limit"); len(got) != 1024 {
				t.Fatalf("got a %d-byte frame, want 1024", len(got))
			}
			client.Send(make([]byte, size))
			if err := recv(t, server.result, "server Run"); !errors.Is(err, transport.ErrTooLarge) {
				t.Errorf("server Run = %v, want ErrTooLarge", err)
			}
			var ce *transport.CloseError
			if err := recv(t, client.result, "client Run"); !errors.As(err, &ce) || ce.Code != transport.CloseTooBig {
				t.Errorf("client Run = %v, want CloseError %d", err, transport.CloseTooBig)
			}
		})
	}
}

// The protocol is binary: a text frame is refused with
// CloseUnsupportedData.
func TestTextFrameRefused(t *testing.T) {
	wsURL, peers := serve(t, transport.Options{}, nil)
	ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	server := recv(t, peers, "server conn")
	ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"join"}`))
	_, _, err = ws.ReadMessage()
	if !websocket.IsCloseError(err, transport.CloseUnsupportedData) {
		t.Errorf("client read = %v, want close %d", err, transport.CloseUnsupportedData)
	}
	ws.Close() // gorilla has echoed the close frame; this ends the server's linger
	if err := recv(t, server.result, "server Run"); !errors.Is(err, transport.ErrNotBinary) {
		t.Errorf("server Run = %v, want ErrNotBinary", err)
	}
}

// A peer that stops reading never blocks Send: the writer drains into the
// socket until TCP pushes back, then the queue fills and the connection is
// dropped with ErrStuck. Another connection on the same server does a
// round trip between every one of those Sends and after the drop.
func TestStuckPeerDropped(t *testing.T) {
	// A long WriteWait, so that it is the full queue, not a write timeout,
	// that gives the stuck peer away.
	opts := transport.Options{SendQueue: 16, WriteWait: time.Minute}
	wsURL, peers := serve(t, opts, func(p *peer, frame []byte) {
		if p.req.URL.Path == "/stuck" {
			p.frames <- frame
			return
		}
		echo(p, frame)
	})
	healthy := dial(t, wsURL, transport.Options{}, nil)
	recv(t, peers, "healthy server conn")
	roundTrip := func(i int) {
		t.Helper()
		want := fmt.Sprint(i)
		healthy.Send([]byte(want))
		if got := string(recv(t, healthy.frames, "echo")); got != want {
			t.Fatalf("echo = %q, want %q", got, want)
		}
	}

	raw := rawDial(t, wsURL+"/stuck") // never reads
	stuck := recv(t, peers, "stuck server conn")
	// Once the server has read a frame, its Run (and writer) are going:
	// from here on nothing but the peer can hold up the writer.
	rawSend(t, raw, []byte("hello"))
	recv(t, stuck.frames, "the stuck peer's hello")
	frame := make([]byte, 64<<10)
	var accepted int
	var slowest time.Duration
	for {
		start := time.Now()
		err := stuck.Send(frame)
		slowest = max(slowest, time.Since(start))
		if errors.Is(err, transport.ErrStuck) {
			break
		}
		if err != nil {
			t.Fatalf("Send #%d = %v, want nil or ErrStuck", accepted, err)
		}
		accepted++
		if accepted > 100000 {
			t.Fatal("6 GB accepted: the peer never counted as stuck")
		}
		roundTrip(accepted)
	}
	// The whole queue was taken before the peer counted as stuck (how many
	// more the writer put into the socket depends on the kernel's buffers
	// and on when a busy machine runs the writer, so it is only logged).
	if accepted < opts.SendQueue {
		t.Errorf("ErrStuck after %d frames, want at least the queue of %d", accepted, opts.SendQueue)
	}
	t.Logf("ErrStuck after %d frames of %d KiB; slowest Send %v", accepted, len(frame)>>10, slowest)
	if slowest > opts.WriteWait/2 {
		t.Errorf("slowest Send took %v: Send blocked", slowest)
	}
	if err := recv(t, stuck.result, "stuck Run"); !errors.Is(err, transport.ErrStuck) {
		t.Errorf("stuck Run = %v, want ErrStuck", err)
	}
	recv(t, stuck.Done(), "stuck Done")
	if err := stuck.Send(frame); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Send after drop = %v, want ErrClosed", err)
	}
	for i := range 10 {
		roundTrip(-i)
	}
}

// A side that pings notices a peer that stops answering, whether the peer
// has gone silent entirely, keeps reading but swallows pings, or is the
// server; a peer that vanishes without a close frame is reported as
// CloseAbnormal.
func TestKeepAliveDetectsDeadPeer(t *testing.T) {
	fast := transport.Options{Ping: true, PingPeriod: 20 * time.Millisecond, PongWait: 200 * time.Millisecond}

	t.Run("silent client", func(t *testing.T) {
		wsURL, peers := serve(t, fast, nil)
		rawDial(t, wsURL)
		server := recv(t, peers, "server conn")
		if err := recv(t, server.result, "server Run"); !errors.Is(err, transport.ErrTimeout) {
			t.Errorf("server Run = %v, want ErrTimeout", err)
		}
	})

	t.Run("client swallows pings", func(t *testing.T) {
		wsURL, peers := serve(t, fast, nil)
		ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer ws.Close()
		ws.SetPingHandler(func(string) error { return nil })
		go func() {
			// Reads (and so handles control frames) until the server
			// drops the connection.
			for {
				if _, _, err := ws.ReadMessage(); err != nil {
					return
				}
			}
		}()
		server := recv(t, peers, "server conn")
		if err := recv(t, server.result, "server Run"); !errors.Is(err, transport.ErrTimeout) {
			t.Errorf("server Run = %v, want ErrTimeout", err)
		}
	})

	t.Run("silent server", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
			if err != nil {
				return
			}
			defer ws.Close()
			<-release // never reads, so never answers a ping
		}))
		defer srv.Close()
		defer close(release)
		client := dial(t, "ws"+strings.TrimPrefix(srv.URL, "http"), fast, nil)
		if err := recv(t, client.result, "client Run"); !errors.Is(err, transport.ErrTimeout) {
			t.Errorf("client Run = %v, want ErrTimeout", err)
		}
	})

	t.Run("client vanishes", func(t *testing.T) {
		wsURL, peers := serve(t, transport.Options{}, nil)
		raw := rawDial(t, wsURL)
		server := recv(t, peers, "server conn")
		raw.Close()
		var ce *transport.CloseError
		if err := recv(t, server.result, "server Run"); !errors.As(err, &ce) || ce.Code != transport.CloseAbnormal {
			t.Errorf("server Run = %v, want CloseError %d", err, transport.CloseAbnormal)
		}
	})
}

// Pings flow from the writer goroutine whatever onFrame's consumers are
// doing: a worker that onFrame hands a frame to stays busy for many times
// PongWait (until the client has counted enough pings), the connection
// survives, and the worker's reply arrives.
func TestBusyConsumerKeepsConnection(t *testing.T) {
	const pingPeriod, pongWait = 20 * time.Millisecond, 200 * time.Millisecond
	const busyPings = 50 // 50 pings ≥ 1s = 5 × PongWait of busy work
	enoughPings := make(chan struct{})
	work := make(chan []byte, 1)
	wsURL, peers := serve(t, transport.Options{Ping: true, PingPeriod: pingPeriod, PongWait: pongWait},
		func(_ *peer, frame []byte) { work <- frame }) // onFrame only hands off

	ws, _, err := websocket.DefaultDialer.Dial(wsURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	pings := 0
	ws.SetPingHandler(func(data string) error {
		// Runs on the client's read loop below.
		if pings++; pings == busyPings {
			close(enoughPings)
		}
		return ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(time.Second))
	})
	replies := make(chan []byte, 1)
	go func() {
		for {
			_, f, err := ws.ReadMessage()
			if err != nil {
				return
			}
			replies <- f
		}
	}()
	server := recv(t, peers, "server conn")

	// The worker: heavy work away from the read loop.
	go func() {
		frame := <-work
		<-enoughPings
		server.Send(append([]byte("done "), frame...))
	}()
	ws.WriteMessage(websocket.BinaryMessage, []byte("job"))
	if got := string(recv(t, replies, "the worker's reply")); got != "done job" {
		t.Fatalf("reply = %q, want %q", got, "done job")
	}
	select {
	case err := <-server.result:
		t.Fatalf("server Run ended while the worker was busy: %v", err)
	default:
	}
}

// Close is graceful from either side, even from inside onFrame: frames
// sent just before it arrive, in order, before the close frame; the
// closer's Run returns nil and the other side's a CloseError with the code
// and reason; Done closes; later Send and Close report ErrClosed.
func TestGracefulClose(t *testing.T) {
	const n = 100
	frame := func(i int) []byte { return []byte(fmt.Sprintf("frame %d", i)) }
	checkFrames := func(t *testing.T, frames chan []byte) {
		t.Helper()
		if len(frames) != n {
			t.Fatalf("%d frames before the close, want %d", len(frames), n)
		}
		for i := range n {
			if got := <-frames; !bytes.Equal(got, frame(i)) {
				t.Fatalf("frame #%d = %q, want %q", i, got, frame(i))
			}
		}
	}
	checkClosed := func(t *testing.T, p *peer) {
		t.Helper()
		recv(t, p.Done(), "Done")
		if err := p.Send(frame(0)); !errors.Is(err, transport.ErrClosed) {
			t.Errorf("Send after close = %v, want ErrClosed", err)
		}
		if err := p.Close(transport.CloseNormal, ""); !errors.Is(err, transport.ErrClosed) {
			t.Errorf("second Close = %v, want ErrClosed", err)
		}
	}
	checkCloseError := func(t *testing.T, err error, code int, reason string) {
		t.Helper()
		var ce *transport.CloseError
		if !errors.As(err, &ce) || ce.Code != code || ce.Reason != reason {
			t.Errorf("Run = %v, want CloseError %d %q", err, code, reason)
		}
	}

	t.Run("client closes", func(t *testing.T) {
		wsURL, peers := serve(t, transport.Options{}, nil)
		client := dial(t, wsURL, transport.Options{}, nil)
		server := recv(t, peers, "server conn")
		for i := range n {
			client.Send(frame(i))
		}
		if err := client.Close(transport.CloseNormal, "bye"); err != nil {
			t.Fatalf("Close = %v", err)
		}
		if err := recv(t, client.result, "client Run"); err != nil {
			t.Errorf("client Run = %v, want nil", err)
		}
		checkClosed(t, client)
		checkCloseError(t, recv(t, server.result, "server Run"), transport.CloseNormal, "bye")
		checkFrames(t, server.frames)
	})

	t.Run("server closes from onFrame", func(t *testing.T) {
		wsURL, peers := serve(t, transport.Options{}, func(p *peer, f []byte) {
			for i := range n {
				p.Send(frame(i))
			}
			p.Close(4000, "done")
		})
		client := dial(t, wsURL, transport.Options{}, nil)
		server := recv(t, peers, "server conn")
		client.Send([]byte("quit"))
		if err := recv(t, server.result, "server Run"); err != nil {
			t.Errorf("server Run = %v, want nil", err)
		}
		checkClosed(t, server)
		checkCloseError(t, recv(t, client.result, "client Run"), 4000, "done")
		checkFrames(t, client.frames)
	})

	t.Run("context ends", func(t *testing.T) {
		wsURL, peers := serve(t, transport.Options{}, nil)
		client := dial(t, wsURL, transport.Options{}, nil)
		server := recv(t, peers, "server conn")
		for i := range n {
			client.Send(frame(i))
		}
		client.cancel()
		if err := recv(t, client.result, "client Run"); !errors.Is(err, context.Canceled) {
			t.Errorf("client Run = %v, want context.Canceled", err)
		}
		checkClosed(t, client)
		checkCloseError(t, recv(t, server.result, "server Run"), transport.CloseGoingAway, "")
		checkFrames(t, server.frames)
	})

	t.Run("peer never answers", func(t *testing.T) {
		// The close frame gets no reply: the closer gives up after
		// WriteWait, and it is still a clean close on its side.
		wsURL, peers := serve(t, transport.Options{WriteWait: 100 * time.Millisecond}, nil)
		rawDial(t, wsURL)
		server := recv(t, peers, "server conn")
		server.Close(transport.CloseNormal, "")
		if err := recv(t, server.result, "server Run"); err != nil {
			t.Errorf("server Run = %v, want nil", err)
		}
		checkClosed(t, server)
	})

	t.Run("close before Run", func(t *testing.T) {
		wsURL, peers := serve(t, transport.Options{}, nil)
		c, _, err := transport.Dial(context.Background(), wsURL, nil, transport.Options{})
		if err != nil {
			t.Fatal(err)
		}
		server := recv(t, peers, "server conn")
		for i := range n {
			c.Send(frame(i))
		}
		c.Close(transport.CloseNormal, "")
		if err := c.Run(context.Background(), func([]byte) {}); err != nil {
			t.Errorf("Run after Close = %v, want nil", err)
		}
		checkCloseError(t, recv(t, server.result, "server Run"), transport.CloseNormal, "")
		checkFrames(t, server.frames)
		if err := c.Run(context.Background(), func([]byte) {}); err == nil {
			t.Error("second Run = nil, want an error")
		}
	})
}

// Close sends only what a close frame may carry: an unsendable code
// becomes CloseInternalError and a long reason is cut on a rune boundary.
func TestCloseFrameLimits(t *testing.T) {
	wsURL, peers := serve(t, transport.Options{}, nil)
	client := dial(t, wsURL, transport.Options{}, nil)
	server := recv(t, peers, "server conn")
	client.Close(transport.CloseAbnormal, strings.Repeat("é", 100)) // 200 bytes
	recv(t, client.result, "client Run")
	var ce *transport.CloseError
	err := recv(t, server.result, "server Run")
	if !errors.As(err, &ce) {
		t.Fatalf("server Run = %v, want a CloseError", err)
	}
	if ce.Code != transport.CloseInternalError || len(ce.Reason) != 122 || !utf8.ValidString(ce.Reason) {
		t.Errorf("close = %d with a %d-byte reason (valid UTF-8: %v), want %d and 122 bytes",
			ce.Code, len(ce.Reason), utf8.ValidString(ce.Reason), transport.CloseInternalError)
	}
}

// Dial's headers reach the server's request; a refused upgrade returns
// the server's response so that the caller can report it.
func TestDial(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer good" {
			http.Error(w, "bad token", http.StatusUnauthorized)
			return
		}
		c, err := transport.Upgrade(w, r, transport.Options{})
		if err != nil {
			return
		}
		c.Send([]byte(r.Header.Get("Authorization")))
		c.Close(transport.CloseNormal, "")
		c.Run(context.Background(), func([]byte) {})
	}))
	defer srv.Close()
	wsURL := "ws" + strings.TrimPrefix(srv.URL, "http")

	t.Run("header reaches the server", func(t *testing.T) {
		c, resp, err := transport.Dial(context.Background(), wsURL,
			http.Header{"Authorization": {"Bearer good"}}, transport.Options{})
		if err != nil {
			t.Fatalf("Dial = %v", err)
		}
		if resp.StatusCode != http.StatusSwitchingProtocols {
			t.Errorf("status %s, want 101", resp.Status)
		}
		var got []byte
		c.Run(context.Background(), func(f []byte) { got = f })
		if string(got) != "Bearer good" {
			t.Errorf("server saw Authorization %q, want %q", got, "Bearer good")
		}
	})

	t.Run("refused", func(t *testing.T) {
		c, resp, err := transport.Dial(context.Background(), wsURL,
			http.Header{"Authorization": {"Bearer bad"}}, transport.Options{})
		if c != nil || !errors.Is(err, transport.ErrBadHandshake) {
			t.Fatalf("Dial = %v, %v, want nil, ErrBadHandshake", c, err)
		}
		if resp == nil || resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("response = %v, want 401", resp)
		}
		if body, _ := io.ReadAll(resp.Body); !strings.Contains(string(body), "bad token") {
			t.Errorf("body = %q, want the server's message", body)
		}
	})
}

// Upgrade on a plain HTTP request fails and has already answered it.
func TestUpgradeRefusesPlainHTTP(t *testing.T) {
	upgradeErr := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, err := transport.Upgrade(w, r, transport.Options{})
		upgradeErr <- err
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %s, want 400", resp.Status)
	}
	if err := recv(t, upgradeErr, "Upgrade"); err == nil {
		t.Error("Upgrade = nil, want an error")
	}
}

// A panicking onFrame propagates out of Run but leaves nothing behind: the
// writer has exited, the socket is closed, Done is closed.
func TestOnFramePanicReleasesConn(t *testing.T) {
	wsURL, peers := serve(t, transport.Options{}, nil)
	c, _, err := transport.Dial(context.Background(), wsURL, nil, transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	server := recv(t, peers, "server conn")
	server.Send([]byte("boom"))
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Run returned without the panic")
			}
		}()
		c.Run(context.Background(), func([]byte) { panic("boom") })
	}()
	recv(t, c.Done(), "Done")
	if err := c.Send([]byte("x")); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("Send after panic = %v, want ErrClosed", err)
	}
	var ce *transport.CloseError
	if err := recv(t, server.result, "server Run"); !errors.As(err, &ce) || ce.Code != transport.CloseAbnormal {
		t.Errorf("server Run = %v, want CloseError %d", err, transport.CloseAbnormal)
	}
}

// SendWait paces a burst far larger than the queue to the peer's reading
// speed: every frame arrives, in order, and the connection is never dropped
// as stuck.
func TestSendWaitPacesABurst(t *testing.T) {
	const n = 2000
	wsURL, peers := serve(t, transport.Options{SendQueue: 4}, nil)
	client := dial(t, wsURL, transport.Options{}, nil)
	srv := recv(t, peers, "server peer")
	go func() {
		for i := 0; i < n; i++ {
			frame := []byte(fmt.Sprintf("frame %05d %s", i, strings.Repeat("x", 4000)))
			if err := srv.SendWait(context.Background(), frame); err != nil {
				t.Errorf("SendWait %d: %v", i, err)
				return
			}
		}
	}()
	for i := 0; i < n; i++ {
		got := recv(t, client.frames, "frame")
		if want := fmt.Sprintf("frame %05d", i); string(got[:11]) != want {
			t.Fatalf("frame %d is %q", i, got[:11])
		}
	}
}

// An orderly close between two of our own ends is over as soon as both
// close frames have crossed: each end half-closes its socket beneath the
// batching writer, so neither waits out the lingering close's bound
// (2 s) for the other's FIN.
func TestOrderlyCloseIsPrompt(t *testing.T) {
	wsURL, peers := serve(t, transport.Options{}, nil)
	client := dial(t, wsURL, transport.Options{}, nil)
	server := recv(t, peers, "server conn")
	start := time.Now()
	server.Close(transport.CloseGoingAway, "restarting")
	recv(t, client.result, "client Run")
	recv(t, server.result, "server Run")
	if took := time.Since(start); took > time.Second {
		t.Errorf("an orderly close took %v on loopback, want it done well before the 2 s linger bound", took)
	}
}

// Abort ends a connection at once even with frames queued behind a peer
// that is not reading, where a graceful Close would first try to write
// them: Run returns ErrAborted, queued frames are dropped, and the other
// end sees the connection end without a close frame.
func TestAbortDropsTheQueueAndEndsAtOnce(t *testing.T) {
	release := make(chan struct{})
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	t.Cleanup(let)
	wsURL, peers := serve(t, transport.Options{}, func(p *peer, frame []byte) { <-release })
	client := dial(t, wsURL, transport.Options{SendQueue: 4, WriteWait: time.Hour}, nil)
	server := recv(t, peers, "server conn")
	// Fill the socket buffers and the queue: the server reads one frame and
	// then holds its read loop, so the writer blocks and SendWait waits.
	frame := bytes.Repeat([]byte("x"), 64<<10)
	sent := make(chan int, 1000)
	senderDone := make(chan error, 1)
	go func() {
		for i := range 1000 {
			if err := client.SendWait(context.Background(), frame); err != nil {
				senderDone <- err
				return
			}
			sent <- i
		}
		senderDone <- nil
	}()
	for i := 0; i < 8; i = recv(t, sent, "frames queued") { // past the queue of 4
	}
	client.Abort()
	if err := recv(t, client.result, "client Run after Abort"); !errors.Is(err, transport.ErrAborted) {
		t.Errorf("client Run = %v; want ErrAborted", err)
	}
	if err := recv(t, senderDone, "the waiting sender"); !errors.Is(err, transport.ErrClosed) {
		t.Errorf("SendWait across Abort = %v; want ErrClosed", err)
	}
	let() // the server reads on, to the end of what reached it
	var ce *transport.CloseError
	if err := recv(t, server.result, "server Run"); errors.As(err, &ce) && ce.Code != transport.CloseAbnormal {
		t.Errorf("server Run = %v; want the connection lost, not closed with a code", err)
	}
}
