package rig

// The hostile kit: what the relay's hostile test and the soak's hostile
// phase both need to attack a relay. A Peer speaks the protocol but may
// send anything; RawConn writes websocket frames the transport never
// would; Mutate damages real sync messages in the ways that matter to
// Automerge and to the relay's Go check.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"haven/shared/crdt"
	"haven/shared/crdt/crdttest"
	"haven/shared/transport"
	"haven/shared/wire"
)

// Peer is a device speaking the sync protocol directly, so that it can
// send anything; every message the relay sends it goes to its handler.
type Peer struct {
	Conn *transport.Conn
	ID   string // its peer ID: the sender of what it sends

	joined chan struct{} // closed at the relay's peer message
	once   sync.Once
	done   chan struct{} // closed when the connection has ended
	err    error         // why it ended; set before done closes
}

// DialPeer connects to the relay's websocket endpoint url with credential
// cred. onMessage, if not nil, gets every frame the relay sends, decoded
// (err set for one that does not decode), on the connection's read
// goroutine. The peer has not joined yet: Join does.
func DialPeer(ctx context.Context, url, cred, id string, onMessage func(m wire.Message, err error)) (*Peer, error) {
	tc, _, err := transport.Dial(ctx, url, http.Header{"Authorization": {"Bearer " + cred}}, transport.Options{})
	if err != nil {
		return nil, err
	}
	p := &Peer{Conn: tc, ID: id, joined: make(chan struct{}), done: make(chan struct{})}
	go func() {
		p.err = tc.Run(context.Background(), func(frame []byte) {
			m, err := wire.Decode(frame)
			if err == nil && m.Type == wire.TypePeer {
				p.once.Do(func() { close(p.joined) })
			}
			if onMessage != nil {
				onMessage(m, err)
			}
		})
		close(p.done)
	}()
	return p, nil
}

// Join sends the join message: protocol version 1, the peer's ID as its
// storage ID too.
func (p *Peer) Join() error {
	return p.Conn.Send(MustEncode(wire.Message{Type: wire.TypeJoin, SenderID: p.ID, SupportedProtocolVersions: []string{wire.ProtocolV1},
		PeerMetadata: &wire.PeerMetadata{StorageID: p.ID}}))
}

// Joined is closed once the relay has admitted the peer (its peer message).
func (p *Peer) Joined() <-chan struct{} { return p.joined }

// Done is closed once the connection has ended; Err then says why.
func (p *Peer) Done() <-chan struct{} { return p.done }

// Err is why the connection ended (a *transport.CloseError for a close
// from the relay); nil while it is open.
func (p *Peer) Err() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// ErrNotAdmitted: the relay closed the connection instead of admitting the
// peer.
var ErrNotAdmitted = errors.New("rig: the relay closed the connection without admitting the peer")

// WaitJoined waits up to within for the relay to admit the peer.
func (p *Peer) WaitJoined(within time.Duration) error {
	timer := time.NewTimer(within)
	defer timer.Stop()
	select {
	case <-p.joined:
		return nil
	case <-p.done:
		return fmt.Errorf("%w: %v", ErrNotAdmitted, p.err)
	case <-timer.C:
		return fmt.Errorf("rig: no peer message within %v", within)
	}
}

// Send encodes m and waits until it is written; an empty sender is the
// peer's own ID, an empty target the relay ("relay") except for a join.
func (p *Peer) Send(ctx context.Context, m wire.Message) error {
	if m.SenderID == "" {
		m.SenderID = p.ID
	}
	if m.TargetID == "" && m.Type != wire.TypeJoin {
		m.TargetID = "relay"
	}
	frame, err := wire.Encode(m)
	if err != nil {
		return err
	}
	return p.Conn.SendWait(ctx, frame)
}

// Close closes the connection normally and waits for its read loop.
func (p *Peer) Close() {
	p.Conn.Close(transport.CloseNormal, "")
	<-p.done
}

// Abort ends the connection at once, dropping what is queued, as a device
// vanishing would, and waits for its read loop.
func (p *Peer) Abort() {
	p.Conn.Abort()
	<-p.done
}

// CloseCode is the websocket close code the relay ended the connection
// with, 1009 for a frame over the read limit, and false for an end
// without a close from the relay.
func CloseCode(err error) (int, bool) {
	var ce *transport.CloseError
	switch {
	case errors.As(err, &ce):
		return ce.Code, true
	case errors.Is(err, transport.ErrTooLarge):
		return transport.CloseTooBig, true
	}
	return 0, false
}

// MustEncode encodes a message the test built; one that does not encode
// is the test's own mistake.
func MustEncode(m wire.Message) []byte {
	b, err := wire.Encode(m)
	if err != nil {
		panic(err)
	}
	return b
}

// --- raw websockets, for frames the transport will not send ---

// RawConn is a websocket upgraded by hand on a plain TCP connection.
type RawConn struct {
	Conn   net.Conn
	Reader *bufio.Reader // the server's frames, after the handshake
}

// DialRaw upgrades a TCP connection to addr's /sync by hand, with
// credential cred. rcvbuf, if positive, shrinks the socket's receive
// buffer (a reader that never reads fills it fast).
func DialRaw(addr, cred string, rcvbuf int) (*RawConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok && rcvbuf > 0 {
		tc.SetReadBuffer(rcvbuf)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	nonce := make([]byte, 16)
	rand.Read(nonce)
	fmt.Fprintf(c, "GET /sync HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer %s\r\n\r\n",
		addr, base64.StdEncoding.EncodeToString(nonce), cred)
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		c.Close()
		return nil, fmt.Errorf("handshake: %s", resp.Status)
	}
	c.SetDeadline(time.Time{})
	return &RawConn{Conn: c, Reader: br}, nil
}

// Write writes bytes as they are (frames made with Frame).
func (w *RawConn) Write(b []byte) error {
	_, err := w.Conn.Write(b)
	return err
}

// WriteFrame writes one masked frame, as a client must.
func (w *RawConn) WriteFrame(opcode byte, payload []byte) error {
	return w.Write(Frame(opcode, payload, true, -1))
}

// Close closes the TCP connection.
func (w *RawConn) Close() error { return w.Conn.Close() }

// CloseCode reads the server's frames until its close frame and returns
// the close code in it (1005 for none).
func (w *RawConn) CloseCode() (int, error) {
	for {
		var hdr [2]byte
		if _, err := io.ReadFull(w.Reader, hdr[:]); err != nil {
			return 0, fmt.Errorf("connection ended without a close frame: %w", err)
		}
		n := uint64(hdr[1] & 0x7f)
		switch n {
		case 126:
			var ext [2]byte
			if _, err := io.ReadFull(w.Reader, ext[:]); err != nil {
				return 0, err
			}
			n = uint64(binary.BigEndian.Uint16(ext[:]))
		case 127:
			var ext [8]byte
			if _, err := io.ReadFull(w.Reader, ext[:]); err != nil {
				return 0, err
			}
			n = binary.BigEndian.Uint64(ext[:])
		}
		if n > 1<<20 {
			return 0, fmt.Errorf("server frame of %d bytes", n)
		}
		payload := make([]byte, n)
		if _, err := io.ReadFull(w.Reader, payload); err != nil {
			return 0, err
		}
		if hdr[0]&0x0f == 0x8 {
			if len(payload) < 2 {
				return 1005, nil
			}
			return int(binary.BigEndian.Uint16(payload)), nil
		}
	}
}

// Frame builds one websocket frame by hand. claimed, if not negative, is
// the payload length its header states whatever the payload's size.
func Frame(opcode byte, payload []byte, masked bool, claimed int64) []byte {
	b := []byte{0x80 | opcode}
	n := int64(len(payload))
	if claimed >= 0 {
		n = claimed
	}
	mask := byte(0)
	if masked {
		mask = 0x80
	}
	switch {
	case n < 126:
		b = append(b, mask|byte(n))
	case n < 1<<16:
		b = append(b, mask|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, mask|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !masked {
		return append(b, payload...)
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// --- mutated sync messages ---

// SyncCorpus makes real sync messages about doc, as a device holding it
// sends them: its opening message (heads and Bloom filter), its whole
// history sent to an empty peer, and, for each edit (applied to a fork),
// the message carrying that one new change. They are the seeds Mutate
// damages. doc itself is not changed.
func SyncCorpus(doc *crdt.Doc, edits ...func(*crdt.Doc) error) ([][]byte, error) {
	f, err := doc.Fork()
	if err != nil {
		return nil, err
	}
	open, ok, err := crdt.NewSyncState(f).Generate()
	if err != nil || !ok {
		return nil, fmt.Errorf("opening message (any %v): %v", ok, err)
	}
	out := [][]byte{open}
	if f, err = doc.Fork(); err != nil {
		return nil, err
	}
	whole, err := crdttest.FirstChanges(f, crdt.New())
	if err != nil {
		return nil, err
	}
	out = append(out, whole)
	for _, edit := range edits {
		x, err := doc.Fork()
		if err != nil {
			return nil, err
		}
		if err := edit(x); err != nil {
			return nil, err
		}
		y, err := doc.Fork()
		if err != nil {
			return nil, err
		}
		m, err := crdttest.FirstChanges(x, y)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// SyncLayout is where the parts of an Automerge sync message lie: the
// byte ranges of its head hashes, of its Bloom filters' bit arrays, and
// of each change chunk.
type SyncLayout struct {
	Heads   [][2]int
	Blooms  [][2]int
	Changes [][2]int
}

// ParseSyncLayout reads a sync message's layout (type byte, heads, need,
// haves with their Bloom filters, then changes); false if it is not well
// formed that far.
func ParseSyncLayout(b []byte) (SyncLayout, bool) {
	var l SyncLayout
	off := 1
	uleb := func() (int, bool) {
		if off >= len(b) {
			return 0, false
		}
		v, n := binary.Uvarint(b[off:])
		if n <= 0 || v > uint64(len(b)) {
			return 0, false
		}
		off += n
		return int(v), true
	}
	hashes := func(keep bool) bool {
		n, ok := uleb()
		if !ok || off+32*n > len(b) {
			return false
		}
		for i := 0; i < n; i++ {
			if keep {
				l.Heads = append(l.Heads, [2]int{off, off + 32})
			}
			off += 32
		}
		return true
	}
	if len(b) == 0 || !hashes(true) || !hashes(false) {
		return l, false
	}
	haves, ok := uleb()
	if !ok {
		return l, false
	}
	for i := 0; i < haves; i++ {
		if !hashes(false) {
			return l, false
		}
		n, ok := uleb()
		if !ok || off+n > len(b) {
			return l, false
		}
		if n > 3 {
			l.Blooms = append(l.Blooms, [2]int{off + 3, off + n}) // after entries, bits, probes (one byte each here)
		}
		off += n
	}
	changes, ok := uleb()
	if !ok {
		return l, false
	}
	for i := 0; i < changes; i++ {
		n, ok := uleb()
		if !ok || off+n > len(b) {
			return l, false
		}
		l.Changes = append(l.Changes, [2]int{off, off + n})
		off += n
	}
	return l, true
}

// The kinds of mutation Mutate makes.
const (
	MutFlip       = "bit flips"
	MutTruncate   = "truncated"
	MutInsert     = "bytes inserted"
	MutChecksum   = "change altered, checksum recomputed"
	MutStructural = "heads or Bloom bits altered"
)

// Mutate returns a damaged copy of a real sync message and the kind of
// damage: bit flips, a truncation, inserted bytes (all refused by the Go
// check or by Automerge), a change chunk altered with its checksum
// recomputed (passes the Go check and reaches Automerge), or altered head
// hashes or Bloom bits.
func Mutate(rng *mrand.Rand, msg []byte) ([]byte, string) {
	b := bytes.Clone(msg)
	if len(b) == 0 {
		return []byte{0x42}, MutInsert
	}
	l, _ := ParseSyncLayout(b)
	switch r := rng.IntN(100); {
	case r < 25:
		for n := 1 + rng.IntN(4); n > 0; n-- {
			b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
		}
		return b, MutFlip
	case r < 35:
		return b[:rng.IntN(len(b))], MutTruncate
	case r < 45:
		at := rng.IntN(len(b) + 1)
		ins := make([]byte, 1+rng.IntN(8))
		for i := range ins {
			ins[i] = byte(rng.Uint32())
		}
		return slices.Insert(b, at, ins...), MutInsert
	case r < 85 && len(l.Changes) > 0:
		span := l.Changes[rng.IntN(len(l.Changes))]
		c := b[span[0]:span[1]]
		body := 9 // magic (4), checksum (4), chunk type (1), then the length
		if len(c) > body {
			if _, n := binary.Uvarint(c[body:]); n > 0 {
				body += n
			}
		}
		if body >= len(c) {
			b[rng.IntN(len(b))] ^= 1 << rng.IntN(8)
			return b, MutFlip
		}
		for n := 1 + rng.IntN(3); n > 0; n-- {
			i := body + rng.IntN(len(c)-body)
			if rng.IntN(2) == 0 {
				c[i] ^= 1 << rng.IntN(8)
			} else {
				c[i] = byte(rng.Uint32())
			}
		}
		sum := sha256.Sum256(c[8:])
		copy(c[4:8], sum[:4])
		return b, MutChecksum
	default:
		spans := append(slices.Clone(l.Heads), l.Blooms...)
		if len(spans) == 0 {
			b[rng.IntN(len(b))] ^= 0xff
			return b, MutFlip
		}
		span := spans[rng.IntN(len(spans))]
		b[span[0]+rng.IntN(span[1]-span[0])] ^= 1 << rng.IntN(8)
		return b, MutStructural
	}
}
