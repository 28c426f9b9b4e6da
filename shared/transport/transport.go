// Package transport carries binary frames over websockets for syncd and its
// clients. It is the only package in Haven that imports gorilla/websocket:
// everything above it sees a Conn that sends and receives whole frames and
// says why it ended.
//
// Each Conn has exactly one reader (the goroutine that calls Run) and one
// writer (a goroutine Run starts), because gorilla/websocket allows one of
// each and panics on concurrent writes. Send only queues; a peer that lets
// the queue fill is dropped rather than allowed to block the caller, so one
// slow reader cannot stall the relay's other connections.
//
// Keep-alive follows the gorilla chat example: the side with Options.Ping set
// pings every PingPeriod; any frame, ping or pong from the peer pushes the
// read deadline PongWait into the future; a peer silent for PongWait is dead.
// Both sides always answer pings. Pings come from the writer goroutine and
// pongs are read by Run's loop, so keep-alive keeps working as long as the
// onFrame callback returns quickly: CRDT work belongs elsewhere.
//
// The server side never listens: Upgrade turns one HTTP request into a Conn
// and the caller (syncd's handler) owns it from then on. net/http's Shutdown
// does not wait for upgraded connections, so the caller tracks its Conns and
// ends them by cancelling Run's context.
package transport

import (
	"errors"
	"fmt"
	"time"
)

// Defaults for the zero fields of Options.
const (
	defaultReadLimit        = 16 << 20
	defaultSendQueue        = 256
	defaultPongWait         = 30 * time.Second
	defaultWriteWait        = 10 * time.Second
	defaultHandshakeTimeout = 10 * time.Second
)

// Options tune one connection. The zero value is usable: a zero (or
// negative) field takes the default given beside it.
type Options struct {
	// ReadLimit is the largest frame accepted from the peer, in bytes. A
	// larger one ends the connection with CloseTooBig and Run returns
	// ErrTooLarge. Default 16 MiB.
	ReadLimit int64

	// SendQueue is how many frames Send may hold for the writer. A peer that
	// lets it fill is stuck: the connection is dropped with ErrStuck. A
	// caller that sends a burst (say, every document on connect) must size
	// the queue for the burst or pace itself. Default 256.
	SendQueue int

	// PongWait is how long the peer may stay silent (no frame, ping or pong)
	// before the connection counts as dead and Run returns ErrTimeout. A side
	// that does not ping relies on the peer's pings, so its PongWait must
	// exceed the peer's PingPeriod. Default 30s.
	PongWait time.Duration

	// PingPeriod is the interval between pings when Ping is set. It must be
	// shorter than PongWait so that a pong can come back in time. Default
	// 9/10 of PongWait.
	PingPeriod time.Duration

	// WriteWait bounds each write to the socket; a write that takes longer
	// means the peer is stuck (ErrStuck). It also bounds each step of a
	// graceful close. Default 10s.
	WriteWait time.Duration

	// HandshakeTimeout bounds the opening handshake in Dial and the reply
	// written by Upgrade. Default 10s.
	HandshakeTimeout time.Duration

	// Ping makes this side send pings. syncd sets it; a client may. Pings
	// are answered whether or not this is set.
	Ping bool
}

func (o Options) withDefaults() Options {
	if o.ReadLimit <= 0 {
		o.ReadLimit = defaultReadLimit
	}
	if o.SendQueue <= 0 {
		o.SendQueue = defaultSendQueue
	}
	if o.PongWait <= 0 {
		o.PongWait = defaultPongWait
	}
	if o.PingPeriod <= 0 {
		o.PingPeriod = o.PongWait * 9 / 10
	}
	if o.WriteWait <= 0 {
		o.WriteWait = defaultWriteWait
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = defaultHandshakeTimeout
	}
	return o
}

// Close codes (RFC 6455 section 7.4.1) that Haven sends or may receive.
const (
	CloseNormal          = 1000 // done; Close(0, ...) sends this
	CloseGoingAway       = 1001 // the endpoint is shutting down (Run's context ended)
	CloseProtocolError   = 1002 // malformed websocket framing
	CloseUnsupportedData = 1003 // a text frame: the protocol is binary only
	CloseAbnormal        = 1006 // never sent: reported when the peer vanished without a close frame
	ClosePolicyViolation = 1008 // e.g. a bad credential or a frame the protocol forbids
	CloseTooBig          = 1009 // a frame over ReadLimit
	CloseInternalError   = 1011 // the endpoint failed
	CloseTryAgainLater   = 1013 // a passing refusal (at capacity, restarting): reconnect later
)

var (
	// ErrClosed is returned by Send and Close once the connection is closing
	// or closed, whatever the reason.
	ErrClosed = errors.New("transport: connection closed")

	// ErrAborted means this end called Abort: the socket was closed without
	// a close frame and without sending what was queued.
	ErrAborted = errors.New("transport: connection aborted")

	// ErrStuck means the peer stopped taking frames: the send queue filled,
	// or a write blocked for WriteWait. The socket is closed without a close
	// frame, since a peer that does not read would not see one.
	ErrStuck = errors.New("transport: peer is not reading")

	// ErrTooLarge means the peer sent a frame over ReadLimit; the peer was
	// sent CloseTooBig.
	ErrTooLarge = errors.New("transport: frame exceeds read limit")

	// ErrNotBinary means the peer sent a text frame; it was sent
	// CloseUnsupportedData.
	ErrNotBinary = errors.New("transport: text frame on a binary protocol")

	// ErrTimeout means nothing (not even a pong) arrived from the peer for
	// PongWait.
	ErrTimeout = errors.New("transport: peer silent for longer than PongWait")

	// ErrBadHandshake means the server answered Dial with something other
	// than 101 Switching Protocols; Dial returns that response.
	ErrBadHandshake = errors.New("transport: server refused the websocket upgrade")
)

// CloseError is Run's result when the peer ended the connection with a
// close frame (Code CloseAbnormal if the socket ended without one). Code
// CloseNormal or CloseGoingAway is an orderly end, not a failure.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("transport: peer closed the connection (%d)", e.Code)
	}
	return fmt.Sprintf("transport: peer closed the connection (%d %q)", e.Code, e.Reason)
}
