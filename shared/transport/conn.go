package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Conn is one websocket connection carrying binary frames.
//
// Ownership: the Conn owns its socket from Upgrade or Dial on. The caller
// must call Run exactly once (even after an early Close): Run is the only
// reader, starts the only writer, and closes the socket before it returns.
// A Conn that is never Run leaks its socket. Send, Close, Done and
// RemoteAddr are safe from any goroutine, including from inside onFrame.
type Conn struct {
	ws        *websocket.Conn
	bc        *batchConn // under ws; nil if the socket could not be wrapped
	lastWrite time.Time  // when writeBatch last flushed; the writer goroutine's own
	opts      Options

	// send holds frames for the writer. It is never closed, so a late Send
	// cannot panic. Invariant: frames enter it only under mu while closing
	// is false, so once closing is set its contents can only shrink, and a
	// graceful close flushes exactly the frames Send accepted.
	send chan []byte

	// closeReq is closed, once, when a graceful close begins (Close, or
	// Run's context ending). The writer then flushes send, writes the close
	// frame and waits for the peer's reply.
	closeReq chan struct{}

	// done is closed when Run returns: both goroutines have exited and the
	// socket is closed.
	done chan struct{}

	// space gets a token whenever the writer takes a frame off send, for
	// SendWait. Capacity 1: a missed token only means one more look.
	space chan struct{}

	mu      sync.Mutex // guards the fields below
	started bool       // Run has been called
	closing bool       // the connection is ending; Send and Close refuse
	byUs    bool       // it is ending through a graceful close we began
	code    int        // with byUs: the code and reason of our close frame
	reason  string
	cause   error // why it ended; the first reason recorded wins; nil after a clean Close
}

func newConn(ws *websocket.Conn, bc *batchConn, opts Options) *Conn {
	c := &Conn{
		ws:       ws,
		bc:       bc,
		opts:     opts,
		send:     make(chan []byte, opts.SendQueue),
		closeReq: make(chan struct{}),
		done:     make(chan struct{}),
		space:    make(chan struct{}, 1),
	}
	ws.SetReadLimit(opts.ReadLimit)
	// The handlers run on Run's goroutine, inside a read, so they may set
	// the read deadline; the pong is written with WriteControl, which
	// gorilla allows concurrently with the writer goroutine.
	ws.SetPongHandler(func(string) error { return c.extendRead() })
	ws.SetPingHandler(func(data string) error {
		if err := c.extendRead(); err != nil {
			return err
		}
		err := ws.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(opts.WriteWait))
		var ne net.Error
		if err == nil || errors.Is(err, websocket.ErrCloseSent) || errors.As(err, &ne) && ne.Timeout() {
			// After our close frame no pong is due; a pong that cannot
			// be written in time means the writer is blocked on a stuck
			// peer, which the writer reports itself.
			return nil
		}
		return err
	})
	return c
}

// Send queues frame for the peer and returns at once. It takes ownership
// of frame: the caller must not modify it afterwards (sharing one frame
// between several Conns is fine). If the queue is full the peer is stuck:
// the connection is dropped and Send returns ErrStuck, as Run will. Once
// the connection is closing or closed Send returns ErrClosed. Frames are
// delivered in the order Send accepted them.
func (c *Conn) Send(frame []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return ErrClosed
	}
	select {
	case c.send <- frame:
		return nil
	default:
	}
	c.closing = true
	c.cause = ErrStuck
	// Closing the socket unblocks the writer, which may sit in a write
	// for up to WriteWait, and the reader; no close frame, since the peer
	// is not reading.
	c.ws.Close()
	return ErrStuck
}

// SendWait queues frame like Send, but when the queue is full it waits for
// room instead of dropping the peer: for bulk transfers (a fresh device's
// download) that must go at the peer's pace. It returns ErrClosed once the
// connection ends (a peer that stops reading is still dropped by the
// writer's WriteWait), or ctx's error.
func (c *Conn) SendWait(ctx context.Context, frame []byte) error {
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return ErrClosed
		}
		select {
		case c.send <- frame:
			c.mu.Unlock()
			return nil
		default:
		}
		c.mu.Unlock()
		select {
		case <-c.space:
		case <-c.done:
			return ErrClosed
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Close begins a graceful close and returns at once: the writer sends the
// frames already queued, then a close frame with code and reason, waits
// for the peer's reply, and Run closes the socket and returns nil. Each
// step is bounded by WriteWait. Done reports the end. Code 0 means
// CloseNormal; a code that may not be sent on the wire (1005, 1006, ...)
// is replaced by CloseInternalError; reason is cut to the 123 bytes a
// close frame holds.
//
// Close returns ErrClosed if the connection is already closing or closed;
// a caller that only wants it gone may ignore that. Called before Run,
// the close happens when Run starts.
func (c *Conn) Close(code int, reason string) error {
	return c.end(code, reason, nil)
}

// Abort ends the connection at once, as a cut link would: frames still
// queued are dropped, no close frame is sent, and Run returns ErrAborted.
// A graceful Close first writes everything queued, which a peer reading
// slowly (a relay shaping a device's reads) can stretch to WriteWait per
// step; Abort never waits on the peer.
func (c *Conn) Abort() {
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		c.byUs = true
		c.cause = ErrAborted
	}
	c.mu.Unlock()
	c.ws.Close() // the reader fails at once, and Run tears down
}

// end starts a graceful close and records cause as Run's result.
func (c *Conn) end(code int, reason string, cause error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return ErrClosed
	}
	c.closing = true
	c.byUs = true
	c.cause = cause
	c.code, c.reason = sendableCode(code), truncateReason(reason)
	close(c.closeReq)
	return nil
}

// Done is closed once Run has returned and the socket is closed.
func (c *Conn) Done() <-chan struct{} { return c.done }

// RemoteAddr is the peer's network address (host:port), for logs.
func (c *Conn) RemoteAddr() string { return c.ws.RemoteAddr().String() }

// Run carries the connection until it ends and returns why:
//   - nil: Close ended it and the queued frames were written;
//   - context.Cause(ctx): ctx ended; the peer was sent CloseGoingAway
//     after the queued frames;
//   - *CloseError: the peer closed it (CloseNormal or CloseGoingAway is
//     an orderly end; CloseAbnormal means the socket just went away);
//   - ErrStuck, ErrTooLarge, ErrNotBinary, ErrTimeout (possibly wrapped),
//     or a wrapped read or write error.
//
// Run reads on the calling goroutine and calls onFrame with each binary
// frame, in order. onFrame owns the slice. It must return quickly (hand
// heavy work to another goroutine): while it runs nothing is read, pongs
// included, so a slow onFrame ends in ErrTimeout. Run starts the writer
// goroutine, which sends queued frames and pings, and does not return until
// that goroutine has exited and the socket is closed. Calling Run twice is
// an error.
func (c *Conn) Run(ctx context.Context, onFrame func(frame []byte)) error {
	if onFrame == nil {
		return errors.New("transport: Run needs an onFrame callback")
	}
	c.mu.Lock()
	if c.started {
		c.mu.Unlock()
		return errors.New("transport: Run called twice")
	}
	c.started = true
	c.mu.Unlock()

	readDone := make(chan struct{})
	writeDone := make(chan struct{})
	go func() {
		defer close(writeDone)
		c.writeLoop(readDone)
	}()
	stop := context.AfterFunc(ctx, func() { c.end(CloseGoingAway, "", context.Cause(ctx)) })

	// teardown stops the writer and closes the socket. It is deferred too,
	// so that a panicking onFrame leaves no goroutine or socket behind.
	tornDown := false
	teardown := func(orderly bool) {
		tornDown = true
		stop()
		close(readDone) // the writer returns, or fails fast once a close frame is out
		if orderly {
			c.linger()
		}
		c.ws.Close() // unblocks a writer still inside a write
		<-writeDone
		close(c.done)
	}
	defer func() {
		if !tornDown { // onFrame panicked
			c.mu.Lock()
			c.closing = true
			c.mu.Unlock()
			teardown(false)
		}
	}()

	err := c.readLoop(onFrame)
	c.mu.Lock()
	if !c.closing {
		c.closing = true
		c.cause = err
	}
	// Otherwise the connection was already ending (Close, ctx, stuck, a
	// write error) and err is only its echo.
	c.mu.Unlock()

	// A close frame went both ways, or we sent one on a protocol
	// violation: worth a lingering close so the peer reads the code.
	var ce *CloseError
	orderly := errors.As(err, &ce) && ce.Code != CloseAbnormal ||
		errors.Is(err, ErrTooLarge) || errors.Is(err, ErrNotBinary)
	teardown(orderly)

	// Read the cause only now: during a graceful close the writer may have
	// recorded a failed flush.
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.cause
}

// readLoop reads frames until the connection fails or closes and returns
// why. It runs on Run's goroutine, the only reader.
func (c *Conn) readLoop(onFrame func([]byte)) error {
	for {
		if err := c.extendRead(); err != nil {
			return c.readError(err)
		}
		typ, r, err := c.ws.NextReader()
		if err != nil {
			return c.readError(err)
		}
		frame, err := c.readFrame(r)
		if err != nil {
			return c.readError(err)
		}
		if typ != websocket.BinaryMessage {
			msg := websocket.FormatCloseMessage(CloseUnsupportedData, "binary frames only")
			c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.opts.WriteWait))
			return ErrNotBinary
		}
		onFrame(frame)
	}
}

// readFrame reads one frame, pushing the read deadline on with every chunk,
// so that a large frame on a slow link fails only if it stops progressing.
func (c *Conn) readFrame(r io.Reader) ([]byte, error) {
	buf := make([]byte, 0, 512)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return nil, err
		}
		if n > 0 {
			if err := c.extendRead(); err != nil {
				return nil, err
			}
		}
	}
}

func (c *Conn) extendRead() error {
	return c.ws.SetReadDeadline(time.Now().Add(c.opts.PongWait))
}

func (c *Conn) readError(err error) error {
	var ce *websocket.CloseError
	var ne net.Error
	switch {
	case errors.Is(err, websocket.ErrReadLimit):
		// gorilla has already sent CloseTooBig.
		return ErrTooLarge
	case errors.As(err, &ce):
		return &CloseError{Code: ce.Code, Reason: ce.Text}
	case errors.As(err, &ne) && ne.Timeout():
		return ErrTimeout
	}
	return fmt.Errorf("transport: read: %w", err)
}

// writeLoop is the only goroutine that writes data frames and pings (the
// reader writes only control frames, with WriteControl). It exits when the
// reader has finished, when a write fails, or after a graceful close.
func (c *Conn) writeLoop(readDone <-chan struct{}) {
	var tick <-chan time.Time
	if c.opts.Ping {
		t := time.NewTicker(c.opts.PingPeriod)
		defer t.Stop()
		tick = t.C
	}
	for {
		var err error
		select {
		case frame := <-c.send:
			err = c.writeBatch(frame)
		case <-tick:
			err = c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.opts.WriteWait))
		case <-c.closeReq:
			c.goodbye(readDone)
			return
		case <-readDone:
			return
		}
		if err != nil {
			c.writeFailed(err)
			return
		}
	}
}

// A burst is gathered while its frames come at most gatherGap apart, for
// at most gatherFor in all: the delay a frame in a burst may take on for
// the sake of fewer packets.
const (
	gatherGap = 2 * time.Millisecond
	gatherFor = 10 * time.Millisecond
)

// nextFrame waits up to d for a queued frame.
func (c *Conn) nextFrame(d time.Duration) ([]byte, bool) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case frame, ok := <-c.send:
		return frame, ok
	case <-t.C:
		return nil, false
	}
}

// writeBatch writes frame and the frames queued behind it, gathered into
// one write to the socket (see batchConn).
func (c *Conn) writeBatch(frame []byte) error {
	start := time.Now()
	deadline := start.Add(c.opts.WriteWait)
	if c.bc != nil {
		c.bc.begin()
	}
	size := 0
	var err error
	for n := 0; ; n++ {
		select {
		case c.space <- struct{}{}:
		default:
		}
		c.ws.SetWriteDeadline(deadline)
		if err = c.ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
			break
		}
		size += len(frame)
		if c.bc == nil || n+1 >= maxBatchFrames || size >= maxBatchBytes {
			break
		}
		var more bool
		select {
		case frame, more = <-c.send:
		default:
			// A burst (two frames or more so far, or a frame hard on the
			// heels of the last write) is often still being made: the
			// relay answers a reconnect's hundred offers as its workers
			// finish each. Wait a moment for the next frame, so that the
			// burst leaves in a few full packets rather than one small
			// packet per frame. A lone frame never waits.
			if (n > 0 || start.Sub(c.lastWrite) < gatherGap) && time.Since(start) < gatherFor {
				frame, more = c.nextFrame(gatherGap)
			}
		}
		if !more {
			break
		}
	}
	if c.bc != nil {
		if ferr := c.bc.flush(deadline); err == nil {
			err = ferr
		}
	}
	c.lastWrite = time.Now()
	return err
}

// goodbye flushes the queue, sends the close frame and waits for the peer
// to answer it (the reader then finishes), at most WriteWait per step.
func (c *Conn) goodbye(readDone <-chan struct{}) {
	c.ws.SetWriteDeadline(time.Now().Add(c.opts.WriteWait))
	for flushed := false; !flushed; {
		select {
		case frame := <-c.send:
			if err := c.ws.WriteMessage(websocket.BinaryMessage, frame); err != nil {
				c.writeFailed(err)
				return
			}
		default:
			flushed = true // see the invariant on send: nothing more can arrive
		}
	}
	c.mu.Lock()
	msg := websocket.FormatCloseMessage(c.code, c.reason)
	c.mu.Unlock()
	if err := c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.opts.WriteWait)); err != nil {
		c.writeFailed(err)
		return
	}
	t := time.NewTimer(c.opts.WriteWait)
	defer t.Stop()
	select {
	case <-readDone:
	case <-t.C:
		c.ws.Close() // the peer did not answer: unblock the reader
	}
}

// writeFailed records a write error as the cause unless one is known, and
// closes the socket so that the reader stops too.
func (c *Conn) writeFailed(err error) {
	if errors.Is(err, websocket.ErrCloseSent) {
		// The reader sent a close frame (an echo, or on a protocol
		// violation) and is about to report why.
		return
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		err = fmt.Errorf("%w: write blocked for %v", ErrStuck, c.opts.WriteWait)
	} else {
		err = fmt.Errorf("transport: write: %w", err)
	}
	c.mu.Lock()
	if c.cause == nil {
		// Either nothing has ended the connection yet, or it is our own
		// graceful close, which this write error spoils.
		c.closing = true
		c.cause = err
	}
	c.mu.Unlock()
	c.ws.Close()
}

// maxLinger bounds the lingering close: a well-behaved peer closes its end
// within a round trip; one that does not costs Run this much, at most.
const maxLinger = 2 * time.Second

// linger half-closes the socket and reads until the peer closes its end
// (or maxLinger, or WriteWait if shorter, passes). Closing a socket with
// unread input makes TCP send a reset, which can destroy our close frame
// before the peer reads it; draining first lets the peer see the code.
func (c *Conn) linger() {
	nc := c.ws.NetConn()
	if cw, ok := nc.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	nc.SetReadDeadline(time.Now().Add(min(maxLinger, c.opts.WriteWait)))
	io.Copy(io.Discard, nc)
}

// sendableCode maps code to one a close frame may carry.
func sendableCode(code int) int {
	switch {
	case code == 0:
		return CloseNormal
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014, code >= 3000 && code <= 4999:
		return code
	}
	return CloseInternalError
}

// truncateReason cuts reason to fit a close frame (125 bytes less the
// 2-byte code) without splitting a UTF-8 sequence, which the peer would
// reject as a protocol error.
func truncateReason(reason string) string {
	const max = 123
	if len(reason) <= max {
		return reason
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut]
}
