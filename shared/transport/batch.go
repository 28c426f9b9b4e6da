package transport

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// batchConn sits under the websocket and lets the writer gather the frames
// already queued into one write to the socket: after a reconnect a desktop
// offers every document it holds and the relay answers each, a hundred
// small frames at once. Written one by one they leave as a hundred small
// packets, and on a lossy line each lost packet stalls everything behind
// it; gathered, they leave as a few full ones. Nothing waits to be
// gathered: the writer takes only what is queued already, then flushes.
//
// Outside a batch every write goes straight through, so the handshake,
// pongs and close frames are never held back.
type batchConn struct {
	net.Conn
	mu       sync.Mutex
	batching bool
	buf      []byte
}

// Limits of one batch: frames beyond either go in the next write.
const (
	maxBatchFrames = 256
	maxBatchBytes  = 256 << 10
)

func (b *batchConn) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.batching {
		return b.Conn.Write(p)
	}
	b.buf = append(b.buf, p...)
	return len(p), nil
}

// CloseWrite half-closes the socket beneath, so that a lingering close
// (see Conn.linger) tells the peer at once that nothing more is coming.
// Without it both ends of an orderly close would wait out maxLinger.
func (b *batchConn) CloseWrite() error {
	if cw, ok := b.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

// begin starts gathering writes.
func (b *batchConn) begin() {
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

// flush writes what was gathered in one write, by deadline, and stops
// gathering. The buffer is not kept: an idle connection holds none.
func (b *batchConn) flush(deadline time.Time) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batching = false
	if len(b.buf) == 0 {
		return nil
	}
	buf := b.buf
	b.buf = nil
	b.Conn.SetWriteDeadline(deadline)
	_, err := b.Conn.Write(buf)
	return err
}

// batchDialer dials TCP for gorilla's Dialer and remembers the batchConn
// it made (TLS, when used, goes on top of it, so whole records are gathered).
type batchDialer struct {
	d    net.Dialer
	conn *batchConn
}

func (bd *batchDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := bd.d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	bd.conn = &batchConn{Conn: c}
	return bd.conn, nil
}

// batchHijacker hands gorilla's Upgrader the hijacked connection wrapped in
// a batchConn.
type batchHijacker struct {
	http.ResponseWriter
	h    http.Hijacker
	conn *batchConn
}

func (w *batchHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, rw, err := w.h.Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.conn = &batchConn{Conn: c}
	return w.conn, rw, nil
}
