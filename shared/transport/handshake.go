package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/gorilla/websocket"
)

// writeBufferPool lends gorilla a write buffer only while a frame is being
// written, so the relay's idle connections hold none.
var writeBufferPool = &sync.Pool{}

// Upgrade turns an HTTP request into a Conn (the server side). It takes
// over only this request's connection, and only on success; on failure it
// has already answered the client with an HTTP error, so the caller must
// not write to w again. Authenticate before or after, as the protocol
// needs: Upgrade checks nothing but the websocket handshake.
//
// Any Origin is accepted. An origin check defends against cross-site
// websocket hijacking, where a foreign web page opens a socket and the
// browser attaches the user's cookies. Haven never authenticates a socket
// by cookie: every client presents a token (Authorization header, or a
// token query parameter for browsers and JavaScript clients) that a
// foreign page does not have, and JavaScript automerge-repo clients may be
// served from any origin (Node sends none). Keep it that way: a cookie
// session on this endpoint would need an origin check.
//
// The caller owns the Conn and must Run it; see Conn.
func Upgrade(w http.ResponseWriter, r *http.Request, opts Options) (*Conn, error) {
	opts = opts.withDefaults()
	u := websocket.Upgrader{
		HandshakeTimeout: opts.HandshakeTimeout,
		WriteBufferPool:  writeBufferPool,
		CheckOrigin:      func(*http.Request) bool { return true },
	}
	var bc *batchConn
	if h, ok := w.(http.Hijacker); ok {
		w = &batchHijacker{ResponseWriter: w, h: h}
	}
	ws, err := u.Upgrade(w, r, nil)
	if err != nil {
		return nil, fmt.Errorf("transport: upgrade: %w", err)
	}
	if bh, ok := w.(*batchHijacker); ok {
		bc = bh.conn
	}
	return newConn(ws, bc, opts), nil
}

// Dial opens a websocket to url (ws:// or wss://) with header added to the
// handshake request (Authorization, for one), the client side. ctx bounds
// the handshake only, as does HandshakeTimeout; proxies come from the
// environment (HTTP_PROXY and friends).
//
// On success the response is the server's 101. If the server refuses the
// upgrade, the error wraps ErrBadHandshake and the response is returned so
// the caller can report its status; its body holds at most the first KiB
// and need not be closed. The caller owns the Conn and must Run it.
func Dial(ctx context.Context, url string, header http.Header, opts Options) (*Conn, *http.Response, error) {
	opts = opts.withDefaults()
	bd := &batchDialer{}
	d := websocket.Dialer{
		Proxy:            http.ProxyFromEnvironment,
		HandshakeTimeout: opts.HandshakeTimeout,
		WriteBufferPool:  writeBufferPool,
		NetDialContext:   bd.dial,
	}
	ws, resp, err := d.DialContext(ctx, url, header)
	if errors.Is(err, websocket.ErrBadHandshake) && resp != nil {
		return nil, resp, fmt.Errorf("%w: %s", ErrBadHandshake, resp.Status)
	}
	if err != nil {
		return nil, resp, fmt.Errorf("transport: dial: %w", err)
	}
	return newConn(ws, bd.conn, opts), resp, nil
}
