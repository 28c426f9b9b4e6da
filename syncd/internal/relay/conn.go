package relay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"haven/shared/crdt"
	"haven/shared/lowprio"
	"haven/shared/store"
	"haven/shared/syncer"
	"haven/shared/transport"
	"haven/shared/wire"
	"haven/syncd/internal/orgs"
)

// conn is one device's connection. Its fields after join are written once
// on the read goroutine before the peer is registered, then only read.
type conn struct {
	s   *Server
	ctx context.Context // the connection's; ends when it closes
	tc  frameConn
	dev orgs.Device
	// scope is what the device may see now: replaced whole (never
	// changed in place) when its organisation's coverage changes, read by
	// every goroutine through sc.
	scope atomic.Pointer[orgs.Scope]

	clientID string      // the peer ID the client gave in join
	client   string      // the device and clientID: one client, whichever connection it is on
	peer     syncer.Peer // the engine's view: IDs prefixed by the device, so no device can pose as another's peer
	joined   bool

	boot chan wire.Message // haven-list, haven-fetch and haven-audit, served in order by the bootstrap goroutine
	// whole: documents sent whole from the store on this connection, by
	// the heads sent, until the peer next speaks of them (wholeFromStore);
	// wholeQ, requests for whole documents waiting for serveWhole, which
	// runs while wholeRunning. Guarded by wholeMu, the connection's own:
	// the read loop looks at whole for every sync message. wholeFreed has
	// a token when the peer has spoken of one of whole since (answerWhole
	// waits for it).
	wholeMu      sync.Mutex
	whole        map[string][]crdt.Hash
	wholeQ       []wire.Message
	wholeRunning bool
	wholeFreed   chan struct{}
	// spoken: the documents this connection's peer has had a word about
	// since it connected: answered in step, or in a worker's call as a
	// sender or a follower (the worker then keeps an Automerge record of
	// the peer). Only a peer's first word about a document is answered in
	// step (see answerInStep). Guarded by spokenMu.
	spokenMu sync.Mutex
	spoken   map[string]bool
	// listedBehind: the device was listed its documents while this node
	// was behind the cluster (awaitCatchUp), and is sent each document new
	// here that its list would have had.
	listedBehind atomic.Bool
	// waiting counts this connection's messages queued for the workers.
	waiting atomic.Int64
	// asked counts the missing documents this connection waits for (it is
	// sent each if it arrives), at most maxAskedPerConn: requests for
	// made-up IDs cannot grow the relay's memory. Guarded by s.mu.
	asked int
	// readLowered and bootLowered say that the read loop's goroutine and
	// the bootstrap goroutine run at low priority (see lowerIfSuspect);
	// each is touched only by its own goroutine.
	readLowered, bootLowered bool
}

// lowerIfSuspect moves the calling goroutine, one of the connection's own
// (its read loop, its bootstrap, its whole answers), onto a low-priority
// thread for the rest of its life once the device is suspect (see
// markSuspect). The relay
// then reads, decodes and answers a refused device's messages only with
// the CPU the other devices leave: a device sending a burst of bad or
// over-quota messages within its read allowance spends its own share of
// the machine, not the healthy desktops'. done is the goroutine's flag.
func (c *conn) lowerIfSuspect(done *bool) {
	if *done || !c.s.isSuspect(c.dev.ID) {
		return
	}
	lowprio.Lower()
	*done = true
	c.s.metrics.lowered.Inc()
}

// frameConn is what a conn needs of its connection; *transport.Conn in
// production, a recorder in the message-handling fuzz target.
type frameConn interface {
	Send(frame []byte) error
	SendWait(ctx context.Context, frame []byte) error
	Close(code int, reason string) error
}

// Accept serves one authenticated device's connection until it ends. The
// server owns tc from here on and closes it.
func (s *Server) Accept(ctx context.Context, tc *transport.Conn, dev orgs.Device, scope orgs.Scope) error {
	c := newConn(s, ctx, tc, dev, scope)
	s.mu.Lock()
	mine := 0
	for o := range s.conns {
		if o.dev.ID == dev.ID {
			mine++
		}
	}
	switch {
	case s.closing:
		s.mu.Unlock()
		return refuse(ctx, tc, s.peerID, transport.CloseTryAgainLater, "the relay is shutting down; try again shortly", wire.CodeBusy)
	case s.work == nil:
		s.mu.Unlock()
		return refuse(ctx, tc, s.peerID, transport.CloseTryAgainLater, "the relay is starting; try again shortly", wire.CodeBusy)
	case mine >= s.cfg.Limits.ConnsPerDevice:
		s.mu.Unlock()
		s.metrics.refused.WithLabelValues("quota-connections").Inc()
		s.log.Warn("connection refused: the device holds its share", "device", dev.ID, "connections", mine)
		return refuse(ctx, tc, s.peerID, transport.CloseTryAgainLater,
			fmt.Sprintf("this device already has %d connections open, its share; close one or try again shortly", mine), wire.CodeQuotaConnections)
	case len(s.conns) >= s.cfg.MaxConns:
		s.mu.Unlock()
		s.metrics.refused.WithLabelValues("connection-cap").Inc()
		return refuse(ctx, tc, s.peerID, transport.CloseTryAgainLater, "the relay is at its connection limit; try again shortly", wire.CodeBusy)
	}
	s.conns[c] = true
	s.wg.Add(2)
	s.mu.Unlock()
	s.metrics.connections.Inc()

	go func() { // bootstrap: bulk transfers paced by the connection, off the read loop
		defer s.wg.Done()
		c.bootstrap(ctx)
	}()
	defer s.wg.Done()
	err := tc.Run(ctx, c.onFrame)
	close(c.boot)
	c.leave()
	s.metrics.connections.Dec()
	return err
}

// refuse answers an unauthenticated or unwelcome connection the way
// automerge-repo clients understand: an error message, then a close. (A bare
// HTTP 401 makes the JavaScript client throw.) It waits briefly for the join
// so the error can name the client. The close code tells Haven's client
// whether to keep trying: ClosePolicyViolation for a credential that will
// never work, CloseTryAgainLater for a passing refusal.
func refuse(ctx context.Context, tc *transport.Conn, self string, code int, reason, errCode string) error {
	joined := make(chan string, 1)
	go func() {
		<-time.After(2 * time.Second)
		select {
		case joined <- "":
		default:
		}
	}()
	go tc.Run(ctx, func(frame []byte) {
		if m, err := wire.Decode(frame); err == nil && m.Type == wire.TypeJoin {
			select {
			case joined <- m.SenderID:
			default:
			}
		}
	})
	target := <-joined
	if frame, err := wire.Encode(wire.Message{Type: wire.TypeError, SenderID: self, TargetID: target, ErrorMessage: reason, ErrorCode: errCode}); err == nil {
		tc.Send(frame)
	}
	tc.Close(code, reason)
	<-tc.Done()
	return nil
}

func newConn(s *Server, ctx context.Context, tc frameConn, dev orgs.Device, scope orgs.Scope) *conn {
	c := &conn{s: s, ctx: ctx, tc: tc, dev: dev, boot: make(chan wire.Message, 16), wholeFreed: make(chan struct{}, 1)}
	c.scope.Store(&scope)
	return c
}

// maxAskedPerConn bounds the missing documents one connection waits for;
// past it a request is still answered (doc-unavailable), not remembered.
const maxAskedPerConn = 1000

// validPeerID accepts a peer or storage ID before it is used or logged:
// 1 to 128 ASCII letters, digits and . _ : @ - (automerge-repo's peer IDs,
// syncd's, UUIDs).
func validPeerID(id string) bool {
	if len(id) == 0 || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == ':' || c == '@' || c == '-') {
			return false
		}
	}
	return true
}

// hidden answers a sync message about a document the device may not see
// (held, when the relay holds it for another home) as it would answer one
// about a document it lacks, as far as it can: without changes, with the
// sync message an empty document sends (it holds nothing; send yours), and
// no state kept; with changes, which could create a missing document but
// not one of another home's, the refusal a new document for a home
// outside the scope gets.
func (c *conn) hidden(doc string, held bool, changes int) {
	s := c.s
	if changes == 0 {
		if held {
			s.metrics.refused.WithLabelValues("out-of-scope").Inc()
		}
		c.send(wire.Message{Type: wire.TypeSync, DocumentID: doc, Data: s.emptyReply})
		return
	}
	s.metrics.refused.WithLabelValues("create-out-of-scope").Inc()
	c.send(wire.Message{Type: wire.TypeError, ErrorCode: wire.CodeOutOfScope, ErrorMessage: outOfScopeWords, DocumentID: doc})
}

// sc is the device's scope now.
func (c *conn) sc() orgs.Scope { return *c.scope.Load() }

// mayHold reports whether the device may hold document doc, owned by
// owner: one of its scope's, or for an advice-line device (whose scope is
// the region) one it opened and used within the retention period.
func (c *conn) mayHold(doc, owner string) bool {
	if !c.allows(doc, owner) {
		return false
	}
	return !c.sc().AdviceLine() || c.s.granted(c.dev.ID, doc)
}

// send encodes and queues a message; a stuck peer is dropped by transport.
func (c *conn) send(m wire.Message) {
	m.SenderID = c.s.peerID
	m.TargetID = c.clientID
	frame, err := wire.Encode(m)
	if err != nil {
		c.s.log.Error("encode", "msg", m, "err", err)
		return
	}
	if c.tc.Send(frame) == nil {
		c.s.metrics.messages.WithLabelValues("out", string(m.Type)).Inc()
		c.s.metrics.bytes.WithLabelValues("out").Add(float64(len(frame)))
	}
}

// onFrame runs on the read goroutine: decoding, checks against in-memory
// indexes, and queueing. Nothing here touches Automerge or waits for disk.
func (c *conn) onFrame(frame []byte) {
	s := c.s
	c.lowerIfSuspect(&c.readLowered)
	if wait := s.readWait(c, len(frame)); wait > 0 {
		// Over the device's read rate: this connection is read no further
		// until the rate allows (see Limits.ReadBytesPerSecond).
		s.metrics.readWaits.Inc()
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-c.ctx.Done():
			t.Stop()
			return
		}
	}
	s.metrics.bytes.WithLabelValues("in").Add(float64(len(frame)))
	m, err := wire.Decode(frame)
	if err != nil {
		s.metrics.refused.WithLabelValues("malformed-frame").Inc()
		s.log.Warn("malformed frame", "device", c.dev.ID, "bytes", len(frame))
		c.failCode("malformed frame", wire.CodeMalformed, transport.ClosePolicyViolation)
		return
	}
	s.metrics.messages.WithLabelValues("in", metricType(m.Type)).Inc()
	if !m.Type.Known() {
		return // as JavaScript peers do
	}
	if m.Type == wire.TypeJoin {
		c.join(m)
		return
	}
	if !c.joined {
		c.failCode("send join first", wire.CodeProtocol, transport.ClosePolicyViolation)
		return
	}
	if m.SenderID != c.clientID {
		return // the JavaScript server drops these too
	}
	if err := m.Validate(); err != nil {
		s.metrics.refused.WithLabelValues("invalid-message").Inc()
		c.send(wire.Message{Type: wire.TypeError, ErrorCode: wire.CodeInvalidMessage, ErrorMessage: "invalid message: " + string(m.Type)})
		return
	}
	switch m.Type {
	case wire.TypeSync, wire.TypeRequest:
		c.syncMessage(m)
	case wire.TypeEphemeral:
		c.ephemeral(m)
	case wire.TypeHavenList, wire.TypeHavenFetch, wire.TypeHavenAudit, wire.TypeHavenCertReq, wire.TypeHavenWho,
		wire.TypeHavenLeaver, wire.TypeHavenSearch, wire.TypeHavenOpen, wire.TypeHavenReview:
		// Served in order on the connection's bootstrap goroutine (they
		// read or write the store). When it is behind, the reading waits:
		// the device's own connection slows, and nothing it asked for is
		// dropped (a lost haven-list would leave a desktop without the
		// documents made while it was away, until it next reconnects).
		select {
		case c.boot <- m:
		case <-c.ctx.Done():
		}
	}
}

func metricType(t wire.Type) string {
	if t.Known() {
		return string(t)
	}
	return "unknown"
}

func (c *conn) join(m wire.Message) {
	if c.joined {
		return
	}
	if len(m.SupportedProtocolVersions) > 0 && !slices.Contains(m.SupportedProtocolVersions, wire.ProtocolV1) {
		c.failCode("unsupported protocol version", wire.CodeProtocol, transport.ClosePolicyViolation)
		return
	}
	if !validPeerID(m.SenderID) || (m.PeerMetadata != nil && m.PeerMetadata.StorageID != "" && !validPeerID(m.PeerMetadata.StorageID)) {
		s := c.s
		s.metrics.refused.WithLabelValues("bad-peer-id").Inc()
		s.log.Warn("join refused: peer or storage ID malformed", "device", c.dev.ID, "bytes", len(m.SenderID))
		c.failCode("a peer ID and storage ID are 1 to 128 letters, digits and . _ : @ -", wire.CodeBadRequest, transport.ClosePolicyViolation)
		return
	}
	c.clientID = m.SenderID
	c.client = c.dev.ID + "/" + m.SenderID
	s := c.s
	s.mu.Lock()
	s.joins++
	// Each connection is its own peer to the engine: Automerge's sync
	// state belongs to one connection, and a state carried over from the
	// last one (changes it believes in flight, heads it believes the
	// client has) can leave a reconnected client waiting for changes that
	// are never resent. What lasts across connections is saved by storage
	// ID and loaded afresh.
	c.peer = syncer.Peer{ID: fmt.Sprintf("%s#%d", c.client, s.joins)}
	if md := m.PeerMetadata; md != nil {
		c.peer.Ephemeral = md.IsEphemeral
		if md.StorageID != "" {
			c.peer.StorageID = c.dev.ID + "/" + md.StorageID
		}
	}
	old := s.clients[c.client]
	s.clients[c.client] = c
	s.peers[c.peer.ID] = c
	s.mu.Unlock()
	if old != nil && old != c {
		old.tc.Close(transport.ClosePolicyViolation, "replaced by a newer connection")
	}
	c.joined = true
	c.send(wire.Message{Type: wire.TypePeer, SelectedProtocolVersion: wire.ProtocolV1,
		PeerMetadata: &wire.PeerMetadata{StorageID: s.storageID}})
	// The device's trust goes first, before any document: its revocations
	// must be known before it shows a decision it receives.
	select {
	case c.boot <- wire.Message{Type: wire.TypeHavenTrust}:
	default:
	}
	s.log.Info("peer joined", "device", c.dev.ID, "org", c.dev.Org, "peer", c.peer.ID)
}

// leave unregisters the connection and its subscriptions, and has the
// workers save its sync states.
func (c *conn) leave() {
	s := c.s
	s.mu.Lock()
	delete(s.conns, c)
	mine := c.joined
	if mine {
		delete(s.peers, c.peer.ID)
		if s.clients[c.client] == c {
			delete(s.clients, c.client)
		}
		for doc, subs := range s.subs {
			delete(subs, c.peer.ID)
			if len(subs) == 0 {
				delete(s.subs, doc)
			}
		}
		for doc, w := range s.waiting {
			delete(w, c.peer.ID)
			if len(w) == 0 {
				delete(s.waiting, doc)
			}
		}
	}
	s.mu.Unlock()
	if mine && s.work != nil {
		s.work.Forget(c.peer.ID)
	}
}

// syncMessage checks scope and queues the message for its document's worker.
// Out of scope answers exactly as a missing document does, and creates no
// state for the document.
func (c *conn) syncMessage(m wire.Message) {
	s := c.s
	doc := m.DocumentID
	changes := crdt.CountChanges(m.Data) // 0 for a malformed message
	// One read before the lock: a document that appears meanwhile is
	// treated as missing, as it was; one that moves home meanwhile is
	// judged again by its runner (process).
	owner := s.owner(doc)
	visible := owner != "" && c.mayHold(doc, owner)
	if !visible {
		if code := c.letGoCode(doc, owner); code != "" {
			// Refused, whatever it carries: a change to it stays on the
			// device until the device deletes its copy.
			s.metrics.refused.WithLabelValues(code).Inc()
			c.letGo(code, doc)
			return
		}
	}
	s.mu.Lock()
	switch {
	case !visible && m.Type == wire.TypeRequest:
		// Missing or out of scope, the same answer: doc-unavailable. A
		// missing one's asker is remembered in case it arrives.
		if owner == "" && c.asked < maxAskedPerConn {
			w := s.waiting[doc]
			if w == nil {
				w = map[string]bool{}
				s.waiting[doc] = w
			}
			if len(w) < 1000 && !w[c.peer.ID] {
				w[c.peer.ID] = true
				c.asked++
			}
		} else if owner != "" {
			s.metrics.refused.WithLabelValues("out-of-scope").Inc()
		}
		s.mu.Unlock()
		c.send(wire.Message{Type: wire.TypeDocUnavailable, DocumentID: doc})
		return
	case !visible && (owner != "" || changes == 0):
		s.mu.Unlock()
		c.hidden(doc, owner != "", changes)
		return
	case visible:
		s.subscribeLocked(doc, c.peer.ID)
	}
	s.mu.Unlock()
	// owner == "" with a sync message: the device offers a new document;
	// the worker admits it (scope) before anything is stored.
	if code := s.allowChanges(c, changes, len(m.Data)); code != "" {
		s.metrics.refused.WithLabelValues(strings.ReplaceAll(code, "/", "-")).Inc()
		s.log.Warn("changes refused: over the device's rate", "device", c.dev.ID, "doc", doc, "changes", changes, "bytes", len(m.Data), "code", code)
		s.markSuspect(c.dev.ID)
		c.send(wire.Message{Type: wire.TypeError, ErrorCode: code, DocumentID: doc,
			ErrorMessage: "too many changes at once from this device; they stay on it and are sent again shortly"})
		return
	}
	if visible && c.wholeFromStore(m) {
		return
	}
	c.queueSync(doc, m.Data)
}

// queueSync queues a sync message for its document's worker, or tells the
// device to slow down.
func (c *conn) queueSync(doc string, data []byte) {
	s := c.s
	if c.waiting.Load() >= int64(s.cfg.Limits.Waiting) {
		s.metrics.refused.WithLabelValues("quota-waiting").Inc()
		c.send(wire.Message{Type: wire.TypeError, ErrorCode: wire.CodeQuotaWaiting, DocumentID: doc,
			ErrorMessage: "too many of this device's messages are waiting at the relay; slow down"})
		return
	}
	if !s.enqueue(doc, queued{from: c, data: data, at: time.Now()}) {
		c.send(wire.Message{Type: wire.TypeError, ErrorCode: wire.CodeQuotaWaiting, DocumentID: doc,
			ErrorMessage: "too many messages waiting for this document; slow down"})
	}
}

// wholeFromStore takes, away from the workers, the two messages of a peer
// that holds nothing of a stored document and reads whole documents (a
// standard automerge-repo client opening a record): its request, answered
// with the document as stored (answerWhole), and its confirmation that it
// now holds what it was sent, which says no more than the sync state then
// saved for it. A worker would load the document into Automerge for each,
// at a cost that grows with the record's history, and keep it in memory.
// Whatever else the peer says about the document goes to the worker as
// before. It reports whether it took m.
func (c *conn) wholeFromStore(m wire.Message) bool {
	doc := m.DocumentID
	c.wholeMu.Lock()
	heads, sent := c.whole[doc]
	delete(c.whole, doc)
	c.wholeMu.Unlock()
	if sent {
		select {
		case c.wholeFreed <- struct{}{}:
		default:
		}
	}
	switch {
	case sent && crdt.SettledAck(m.Data, heads):
		c.confirmedWhole(doc, heads)
		return true
	case sent:
		return false
	case c.sc().AdviceLine() || !crdt.AsksForWhole(m.Data):
		// An advice-line device's access is audited before it is sent
		// anything (process), by its worker.
		return false
	}
	// Answered in order on a goroutine of their own, which reads the store
	// and waits for the client: never on this one, which must go on
	// reading (the client's confirmations and pongs among it). Past
	// maxWholeQueued the worker answers, as it would anyway.
	c.wholeMu.Lock()
	defer c.wholeMu.Unlock()
	if len(c.wholeQ) >= maxWholeQueued {
		return false
	}
	c.wholeQ = append(c.wholeQ, m)
	if !c.wholeRunning {
		c.wholeRunning = true
		go c.serveWhole()
	}
	return true
}

// maxWholeQueued bounds the requests for whole documents one connection
// may have waiting for their answer.
const maxWholeQueued = maxFetch

// serveWhole answers the queued requests for whole documents, in order,
// until none is left or the connection ends; a suspect device's at low
// priority, as its bootstrap's (lowerIfSuspect).
func (c *conn) serveWhole() {
	lowered := false
	for {
		c.lowerIfSuspect(&lowered)
		c.wholeMu.Lock()
		if len(c.wholeQ) == 0 || c.ctx.Err() != nil {
			c.wholeQ, c.wholeRunning = nil, false
			c.wholeMu.Unlock()
			return
		}
		m := c.wholeQ[0]
		c.wholeQ = c.wholeQ[1:]
		c.wholeMu.Unlock()
		c.answerWhole(c.ctx, m)
	}
}

// answerWhole sends a peer that asked for the whole document (AsksForWhole)
// the document as stored (crdt.WholeAnswer), and remembers the heads it
// sent until the peer next speaks of it. A document not stored here (not
// yet, on a node that started empty), or whose bytes do not read, is left
// to the worker, as is one the device may no longer hold.
func (c *conn) answerWhole(ctx context.Context, m wire.Message) {
	s, doc := c.s, m.DocumentID
	c.waitWholeConfirmed(ctx)
	owner := s.owner(doc)
	if owner == "" || !c.mayHold(doc, owner) {
		c.queueSync(doc, m.Data)
		return
	}
	sd, err := s.st.LoadDoc(doc)
	var msg []byte
	var heads []crdt.Hash
	if err == nil {
		msg, heads, err = crdt.WholeAnswer(sd.Snapshot, chunkData(sd))
	}
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) && !errors.Is(err, crdt.ErrHistoryNotStored) {
			s.log.Warn("a stored document could not be answered whole; its worker answers", "doc", doc, "err", err)
		}
		c.queueSync(doc, m.Data)
		return
	}
	c.wholeMu.Lock()
	if c.whole == nil {
		c.whole = map[string][]crdt.Hash{}
	}
	c.whole[doc] = heads
	c.wholeMu.Unlock()
	frame, err := wire.Encode(wire.Message{Type: wire.TypeSync, SenderID: s.peerID, TargetID: c.clientID, DocumentID: doc, Data: msg})
	if err != nil {
		s.log.Error("encode a document sent whole", "doc", doc, "err", err)
		return
	}
	if err := c.tc.SendWait(ctx, frame); err != nil {
		return
	}
	s.metrics.whole.Inc()
	s.metrics.messages.WithLabelValues("out", string(wire.TypeSync)).Inc()
	s.metrics.bytes.WithLabelValues("out").Add(float64(len(frame)))
}

// maxWholeUnconfirmed is how many documents sent whole a peer may have
// not yet spoken of before the next waits (for at most wholeConfirmWait).
// A client asking for a thousand records at once would otherwise be sent
// them faster than it can load them: its event loop then answers nothing,
// pings included, for longer than the connection's read deadline, and the
// relay drops it. Paced so, each is sent as the client is ready for it.
const (
	maxWholeUnconfirmed = 8
	wholeConfirmWait    = 10 * time.Second
)

// waitWholeConfirmed waits until the peer has fewer than
// maxWholeUnconfirmed documents sent whole that it has not spoken of, or
// wholeConfirmWait has passed (a peer that never answers is not waited on
// for ever), or ctx ends.
func (c *conn) waitWholeConfirmed(ctx context.Context) {
	deadline := time.NewTimer(wholeConfirmWait)
	defer deadline.Stop()
	for {
		c.wholeMu.Lock()
		n := len(c.whole)
		c.wholeMu.Unlock()
		if n < maxWholeUnconfirmed {
			return
		}
		select {
		case <-c.wholeFreed:
		case <-deadline.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// confirmedWhole saves, for a peer that keeps its sync states, that it
// holds doc at heads: what its worker would have kept of its confirmation.
func (c *conn) confirmedWhole(doc string, heads []crdt.Hash) {
	if c.peer.StorageID == "" || c.peer.Ephemeral {
		return
	}
	s := c.s
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.wg.Add(1)
	s.mu.Unlock()
	// Not on the read goroutine, which never waits for the disk.
	go func() {
		defer s.wg.Done()
		if err := s.st.PutSyncState(context.Background(), c.peer.StorageID, doc, crdt.SavedSharing(heads)); err != nil {
			s.log.Warn("saving a sync state", "doc", doc, "err", err)
		}
	}()
}

// ephemeral forwards a presence message to the document's other subscribers,
// keeping the original sender, once per (sender, session, count), never back
// to the sender.
func (c *conn) ephemeral(m wire.Message) {
	s := c.s
	doc := m.DocumentID
	key := c.peer.ID + " " + m.SessionID
	if owner := s.owner(doc); owner == "" || !c.mayHold(doc, owner) {
		return
	}
	s.mu.Lock()
	if m.Count <= s.seenEph[key] {
		s.mu.Unlock()
		return
	}
	if len(s.seenEph) > 100000 {
		clear(s.seenEph)
	}
	s.seenEph[key] = m.Count
	var to []*conn
	for p := range s.subs[doc] {
		if p != c.peer.ID {
			to = append(to, s.peers[p])
		}
	}
	s.mu.Unlock()
	for _, t := range to {
		if t == nil {
			continue
		}
		fwd := m
		fwd.TargetID = t.clientID
		if frame, err := wire.Encode(fwd); err == nil && t.tc.Send(frame) == nil {
			s.metrics.messages.WithLabelValues("out", string(wire.TypeEphemeral)).Inc()
		}
	}
}

// strike counts a quarantined message against the device; a device that
// keeps sending them is disconnected.
func (c *conn) strike() {
	s := c.s
	now := time.Now()
	s.mu.Lock()
	var recent []time.Time
	for _, t := range s.strikes[c.dev.ID] {
		if now.Sub(t) < 10*time.Minute {
			recent = append(recent, t)
		}
	}
	recent = append(recent, now)
	s.strikes[c.dev.ID] = recent
	s.mu.Unlock()
	if len(recent) >= 3 {
		s.log.Warn("disconnecting device after repeated quarantined messages", "device", c.dev.ID, "count", len(recent))
		c.failCode("too many messages the relay could not process; this device is disconnected", wire.CodeDisconnected, transport.ClosePolicyViolation)
	}
}
