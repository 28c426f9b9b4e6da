// Package client keeps a device's documents in sync with the relay: it
// connects by itself, retries with backoff (moving round the relay's
// addresses when it knows several), sends everything the device
// holds on connect, applies what arrives through the sync engine (durably,
// before anything is acknowledged), and reports its status for the status
// bar: online or not, documents with changes waiting to be sent, and the
// time of the last exchange.
//
// Work arriving from the relay is applied on one goroutine, never on the
// connection's read loop, so keep-alive pings flow while a big change loads.
package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"haven/shared/docid"
	"haven/shared/repo"
	"haven/shared/syncer"
	"haven/shared/transport"
	"haven/shared/wire"
)

// Config configures a Client.
type Config struct {
	// URLs are the relay's addresses (ws://host:port/sync or wss://…), one
	// for each node of a relay that runs as a cluster: any node takes any
	// device. The client uses one at a time and moves to the next, round
	// the list, whenever a connection ends or a dial fails.
	URLs []string
	// URL is a relay's one address: the same as URLs holding it alone. If
	// both are set, URL comes first.
	URL        string
	Credential string // from enrolment; sent as a bearer token
	Repo       *repo.Repo
	// States persists sync states (the device's store); nil keeps them in memory.
	States syncer.StateStore
	// PeerID and StorageID identify this device to the relay; keep them
	// stable across restarts so the relay's saved sync states apply.
	PeerID, StorageID string
	// Docs lists the documents to keep in sync on every connect (the
	// device's whole local store).
	Docs   func() []docid.ID
	Logger *slog.Logger
	// Transport tunes the connection.
	Transport transport.Options
	// Backoff bounds for reconnecting. Defaults 250 ms and 2 s.
	MinBackoff, MaxBackoff time.Duration
	// OnChange is called after a document changed because of the relay.
	OnChange func(id docid.ID)
	// OnStatus is called whenever Status changes.
	OnStatus func(Status)
	// OnError receives error messages from the relay: their code (see
	// wire's Code constants; "" from a relay that sends none) and text.
	OnError func(code, msg string)
	// OnUnavailable is told about documents the relay does not have for us.
	OnUnavailable func(id docid.ID)
	// OnAuditAck is told a batch of audit events is stored.
	OnAuditAck func(count uint64)
	// OnTrust receives the relay's haven-trust messages (the organisation
	// key, revocations, this device's certificates), on the client's work
	// goroutine, in order with the documents' sync messages.
	OnTrust func(wire.Trust)
	// OnWho receives the relay's answers to AskWho.
	OnWho func(wire.Who)
	// OnSettled is told, after each exchange about a document, whether the
	// relay is known to hold all of this device's changes to it.
	OnSettled func(id docid.ID, inSync bool)
	// LetGo keeps the documents the relay told this device it may hold no
	// longer (haven-gone); nil: the client deletes them and remembers
	// nothing, so they may be asked for again.
	LetGo LetGo
}

// LetGo is the device's lasting list of documents it was told to let go,
// with the relay's code and detail (for a move, the receiving home's name).
// The client deletes each copy after Add returns, so a crash in between
// leaves a marked copy, which the device deletes on its next start; it
// drops any later sync message for a marked document and never asks for
// one; and a document the relay lists again (Bootstrap) is unmarked
// before it is fetched.
type LetGo interface {
	Add(ids []docid.ID, code, detail string)
	Marked(id docid.ID) bool
	Remove(ids []docid.ID)
}

// Status is what the status bar shows.
type Status struct {
	Online       bool
	Pending      int       // documents with local changes the relay has not confirmed
	LastExchange time.Time // last message received from the relay
	LastError    string    // why the last connection ended or failed, in plain words
	// Relay is the address of the connection in use or, while offline,
	// of the last one tried.
	Relay string
}

// Client is one device's connection to the relay.
type Client struct {
	cfg    Config
	log    *slog.Logger
	engine *syncer.Engine
	relay  string // the engine's peer ID for the relay
	// addrs are the relay's addresses (Config.URL, then Config.URLs,
	// each once). Every node of a cluster is the one engine peer: what
	// one node acknowledged, the cluster holds, and a node that has not
	// caught up yet says so through the sync protocol (see Run).
	addrs []string

	work *fifo // applied in order by the work goroutine

	mu      sync.Mutex // guards below
	conn    *transport.Conn
	gone    chan struct{} // closed when the current connection ends
	status  Status
	pending map[docid.ID]bool
	heard   map[docid.ID]time.Time // last message sent or received about a document
	waiters map[docid.ID][]chan struct{}
	docMsgs chan wire.Message // haven-doc / doc-unavailable replies for Bootstrap
	// bootWant is what the Bootstrap in progress fetched and has not had
	// yet: only those go to docMsgs. A document the relay sends unasked
	// meanwhile (a record opened for a call, a resident moved in) is stored
	// as any unasked one, and wakes whoever waits for it.
	bootWant map[string]bool
	list     chan []string
	// answers are the requests waiting for the relay's answer, by type and
	// ID (ask.go); storedWait those waiting for a document to arrive.
	answers    map[string]chan []byte
	storedWait map[docid.ID][]chan struct{}
	retrying   map[docid.ID]bool // documents with a retry under way (retryLater)
}

// New makes a client; Run connects it.
func New(cfg Config) *Client {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 250 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		// A line or relay that comes back is found within a second, so a
		// home is synced within seconds of it. An attempt that fails costs
		// the relay a refused connection at most (one at capacity answers a
		// cheap refusal), and jitter spreads a relay restart's
		// reconnections over that second.
		cfg.MaxBackoff = time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Client{cfg: cfg, log: log, relay: "relay", addrs: addresses(cfg), work: newFIFO(),
		pending: map[docid.ID]bool{}, heard: map[docid.ID]time.Time{}, waiters: map[docid.ID][]chan struct{}{},
		storedWait: map[docid.ID][]chan struct{}{}, retrying: map[docid.ID]bool{}}
	c.engine = syncer.New(cfg.Repo, syncer.Options{States: cfg.States, EagerChanges: true, Logger: log})
	return c
}

// Status returns the current status.
func (c *Client) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.status
	s.Pending = len(c.pending)
	return s
}

func (c *Client) setStatus(f func(*Status)) {
	c.mu.Lock()
	f(&c.status)
	s := c.status
	s.Pending = len(c.pending)
	c.mu.Unlock()
	if c.cfg.OnStatus != nil {
		c.cfg.OnStatus(s)
	}
}

// addresses lists cfg's relay addresses in order, each once.
func addresses(cfg Config) []string {
	var out []string
	for _, u := range append([]string{cfg.URL}, cfg.URLs...) {
		if u = strings.TrimSpace(u); u != "" && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// ErrNoAddress is returned by Run for a Config with no relay address.
var ErrNoAddress = errors.New("no relay address")

// Run connects and keeps reconnecting with jittered exponential backoff
// until ctx ends. It returns ctx's error, or an error when the relay refuses
// the credential (retrying cannot help).
//
// Each attempt goes to the next of the relay's addresses, round the list:
// a node that is down costs one failed dial, and the backoff grows with
// every attempt that fails, whichever address it went to, so a relay
// that is down as a whole is tried no faster than one of a single node.
//
// Nothing is lost in moving: every connection begins by offering every
// document from the sync state saved for the relay. Where that state
// believes more than the new node holds yet (its store catches up from the
// cluster), Automerge's own exchange corrects it: the node cannot find the
// heads we say we share, answers with a reset, and we send again whatever
// it lacks; until it confirms them the documents count as pending. What
// the old node acknowledged, the cluster already held.
func (c *Client) Run(ctx context.Context) error {
	if len(c.addrs) == 0 {
		return ErrNoAddress
	}
	go c.worker(ctx)
	backoff := c.cfg.MinBackoff
	for attempt := 0; ; attempt++ {
		start := time.Now()
		joined, err := c.connect(ctx, c.addrs[attempt%len(c.addrs)])
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, errRefused) {
			return err
		}
		if (joined && !permanent(err)) || time.Since(start) > 30*time.Second {
			// The relay was up and took this device: whatever ended the
			// connection (a restart, a dropped line), it is worth trying
			// again at once rather than after the waits that refused dials
			// built up. A relay that is down refuses the dial, and a relay
			// at capacity refuses before joining, so the backoff still
			// grows for them; so it does for a connection another one
			// replaced (a policy close), so two copies of one device do
			// not take turns at full speed.
			backoff = c.cfg.MinBackoff
		}
		wait := backoff/2 + rand.N(backoff/2+1)
		c.log.Debug("reconnecting", "in", wait, "to", c.addrs[(attempt+1)%len(c.addrs)], "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
}

var errRefused = errors.New("the relay refused this device")

// permanent reports whether the relay closed with a refusal that retrying
// cannot cure (a bad or revoked credential): a policy violation. Anything
// else (at capacity, restarting, a dropped line) is worth another try.
func permanent(err error) bool {
	var ce *transport.CloseError
	return errors.As(err, &ce) && ce.Code == transport.ClosePolicyViolation
}

// worker applies incoming work in order until ctx ends.
func (c *Client) worker(ctx context.Context) {
	for {
		f, ok := c.work.pop(ctx)
		if !ok {
			return
		}
		f()
	}
}

// connect runs one connection until it ends, and reports whether the relay
// accepted the join.
//
// The first sync messages go out right behind the join, without waiting
// for the relay's peer reply: the relay reads a connection's frames in
// order, so they arrive after the join, and a relay that refuses the
// device drops them unread (they carry heads, never changes: Automerge
// sends changes only once it knows what the other side has). On a
// 300 ms line that saves a round trip on every reconnect.
func (c *Client) connect(ctx context.Context, url string) (bool, error) {
	h := http.Header{}
	h.Set("Authorization", "Bearer "+c.cfg.Credential)
	tc, resp, err := transport.Dial(ctx, url, h, c.cfg.Transport)
	if err != nil {
		msg := "cannot reach the relay"
		if resp != nil {
			msg = fmt.Sprintf("the relay answered %s", resp.Status)
		}
		c.setStatus(func(s *Status) { s.Online = false; s.LastError = msg; s.Relay = url })
		return false, err
	}
	joined := make(chan struct{})
	var refused error
	var refusal string // the relay's own words for refused, for the status bar
	var once sync.Once
	done := make(chan error, 1)
	go func() {
		done <- tc.Run(ctx, func(frame []byte) {
			m, err := wire.Decode(frame)
			if err != nil || !m.Type.Known() {
				return
			}
			c.setStatus(func(s *Status) { s.LastExchange = time.Now() })
			switch m.Type {
			case wire.TypePeer:
				once.Do(func() { close(joined) })
			case wire.TypeError:
				c.log.Warn("relay error", "message", m.ErrorMessage, "code", m.ErrorCode)
				if m.DocumentID == "" {
					// About the connection; a refusal of one document's
					// message goes to OnError only, and is not why the
					// connection is as it is.
					c.setStatus(func(s *Status) { s.LastError = m.ErrorMessage })
				}
				if c.cfg.OnError != nil {
					c.cfg.OnError(m.ErrorCode, m.ErrorMessage)
				}
				if id, err := docid.Parse(m.DocumentID); err == nil && (strings.HasPrefix(m.ErrorCode, "quota/") || m.ErrorCode == wire.CodeInternal) {
					c.retryLater(ctx, id)
				}
				select {
				case <-joined:
				default:
					refused = fmt.Errorf("%w: %s", errRefused, m.ErrorMessage)
					refusal = m.ErrorMessage
				}
			default:
				c.inbound(ctx, m)
			}
		})
	}()
	join := wire.Message{Type: wire.TypeJoin, SenderID: c.cfg.PeerID, SupportedProtocolVersions: []string{wire.ProtocolV1},
		PeerMetadata: &wire.PeerMetadata{StorageID: c.cfg.StorageID}}
	if frame, err := wire.Encode(join); err == nil {
		tc.Send(frame)
	}
	c.engine.Connect(syncer.Peer{ID: c.relay, StorageID: "relay"})
	gone := make(chan struct{})
	c.mu.Lock()
	c.conn, c.gone = tc, gone
	c.mu.Unlock()
	c.enqueue(func() { c.syncAll(ctx) })
	go c.nudge(ctx, gone)
	// lost says why the connection ended, for the status bar: the relay's
	// own words if it turned the device away ("at its connection limit; try
	// again shortly" is not a verdict on the device).
	lost := func() string {
		if refused != nil {
			return refusal
		}
		return "connection to the relay lost"
	}
	// hangUp ends this connection's part in the client's state.
	hangUp := func(msg string) {
		c.mu.Lock()
		c.conn, c.gone = nil, nil
		c.mu.Unlock()
		close(gone)
		c.engine.Disconnect(context.Background(), c.relay)
		c.setStatus(func(s *Status) { s.Online = false; s.LastError = msg; s.Relay = url })
	}
	select {
	case <-joined:
	case err := <-done:
		hangUp(lost())
		if refused != nil && permanent(err) {
			return false, refused
		}
		if refused != nil {
			return false, fmt.Errorf("refused for now: %w", err)
		}
		return false, err
	case <-ctx.Done():
		tc.Close(transport.CloseGoingAway, "")
		<-done
		hangUp("")
		return false, ctx.Err()
	}
	c.setStatus(func(s *Status) { s.Online = true; s.LastError = ""; s.Relay = url })
	c.log.Info("connected to relay", "relay", url)
	err = <-done
	hangUp(lost())
	if refused != nil {
		return true, refused
	}
	return true, err
}

// enqueue never blocks: the read loop must keep reading (and answering
// pings) however far behind the work goroutine is.
func (c *Client) enqueue(f func()) { c.work.push(f) }

// fifo is an unbounded queue of work.
type fifo struct {
	mu    sync.Mutex
	items []func()
	ready chan struct{} // has a token while items is non-empty
}

func newFIFO() *fifo { return &fifo{ready: make(chan struct{}, 1)} }

func (q *fifo) push(f func()) {
	q.mu.Lock()
	q.items = append(q.items, f)
	q.mu.Unlock()
	select {
	case q.ready <- struct{}{}:
	default:
	}
}

func (q *fifo) pop(ctx context.Context) (func(), bool) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			f := q.items[0]
			q.items[0] = nil
			q.items = q.items[1:]
			more := len(q.items) > 0
			q.mu.Unlock()
			if more {
				select {
				case q.ready <- struct{}{}:
				default:
				}
			}
			return f, true
		}
		q.mu.Unlock()
		select {
		case <-ctx.Done():
			return nil, false
		case <-q.ready:
		}
	}
}

// send queues a frame on the current connection, if any.
func (c *Client) send(m wire.Message) bool {
	m.SenderID, m.TargetID = c.cfg.PeerID, c.relay
	c.mu.Lock()
	tc := c.conn
	c.mu.Unlock()
	if tc == nil {
		return false
	}
	frame, err := wire.Encode(m)
	if err != nil {
		return false
	}
	return tc.Send(frame) == nil
}

// syncAll offers every local document to the relay (sent on each connect),
// a chunk at a time.
func (c *Client) syncAll(ctx context.Context) {
	if c.cfg.Docs == nil {
		return
	}
	began := time.Now()
	ids := c.cfg.Docs()
	for chunk := range slices.Chunk(ids, offerChunk) {
		c.offer(ctx, chunk)
	}
	c.log.Debug("offered documents", "docs", len(ids), "took", time.Since(began))
}

// offerChunk is how many documents' offers are queued at once: well within
// the connection's send queue, which drops a peer it overflows.
const offerChunk = 64

// syncDoc sends the relay whatever it needs of one document.
func (c *Client) syncDoc(ctx context.Context, id docid.ID) { c.offer(ctx, []docid.ID{id}) }

// offer sends the relay whatever it needs of these documents. The messages
// are made first and queued together, so that the writer sends them in a
// few full packets rather than one small packet each: on a lossy line
// every packet risks a stall.
func (c *Client) offer(ctx context.Context, ids []docid.ID) {
	var outs []syncer.Out
	for _, id := range ids {
		o, err := c.engine.Sync(ctx, id, []string{c.relay})
		if err != nil {
			c.log.Warn("cannot offer a document to the relay", "doc", id.String(), "err", err)
			continue
		}
		outs = append(outs, o...)
	}
	c.sendAll(outs)
	for _, id := range ids {
		c.settle(id)
	}
}

// settle marks a document confirmed or waiting from the sync state: the
// relay is known to hold our changes when the shared heads cover ours.
// (A message cannot tell us: when both sides already agree, automerge sends
// no reply at all.)
func (c *Client) settle(id docid.ID) {
	inSync := c.engine.InSync(c.relay, id)
	c.mu.Lock()
	if inSync {
		delete(c.pending, id)
	} else if _, err := c.cfg.Repo.Open(id); err == nil {
		c.pending[id] = true
	}
	c.mu.Unlock()
	c.setStatus(func(*Status) {})
	if c.cfg.OnSettled != nil {
		c.cfg.OnSettled(id, inSync)
	}
}

func (c *Client) sendAll(outs []syncer.Out) {
	for _, o := range outs {
		c.send(wire.Message{Type: wire.TypeSync, DocumentID: o.Doc.String(), Data: o.Data})
		c.touch(o.Doc)
	}
}

// touch notes that a message about id went or came just now.
func (c *Client) touch(id docid.ID) {
	c.mu.Lock()
	c.heard[id] = time.Now()
	c.mu.Unlock()
}

// nudgeAfter is how long a document with changes the relay has not
// confirmed may go with no message about it either way before the client
// asks again. Long enough that a slow line's answer is not overtaken.
const nudgeAfter = 20 * time.Second

// nudge runs while a connection is up: a document still waiting for the
// relay's confirmation, and silent for nudgeAfter, has its exchange begun
// afresh. Automerge's exchange waits for an answer to each message; one
// lost on the way (with a connection's send queue, say) would otherwise
// leave the change unconfirmed until the next reconnect.
func (c *Client) nudge(ctx context.Context, gone <-chan struct{}) {
	since := time.Now()
	t := time.NewTicker(nudgeAfter / 4)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-gone:
			return
		case now := <-t.C:
			var quiet []docid.ID
			c.mu.Lock()
			for id := range c.pending {
				last := c.heard[id]
				if last.Before(since) {
					last = since
				}
				if now.Sub(last) >= nudgeAfter {
					quiet = append(quiet, id)
					c.heard[id] = now
				}
			}
			c.mu.Unlock()
			for _, id := range quiet {
				c.enqueue(func() {
					// A warning, not news: an exchange meant to end in a
					// confirmation did not, and a status bar still showing
					// changes waiting is traced from here.
					c.log.Warn("asking the relay again about changes it has not confirmed", "doc", id.String())
					if err := c.engine.Restart(c.relay, id); err != nil {
						c.log.Warn("cannot begin the exchange afresh", "doc", id.String(), "err", err)
						return
					}
					c.syncDoc(ctx, id)
				})
			}
		}
	}
}

// retryAfter is how long a document the relay held back under a limit
// waits before its exchange begins afresh: long enough for a device's
// bucket to refill a little, short beside the nudge.
const retryAfter = 2 * time.Second

// retryLater begins a document's exchange afresh after retryAfter, while
// the connection lasts: the relay refused its message under a limit, or
// could not store it just then (a cluster node without a quorum), so
// Automerge, which believes the changes sent, would not offer them again
// until the nudge.
func (c *Client) retryLater(ctx context.Context, id docid.ID) {
	c.mu.Lock()
	gone := c.gone
	if gone == nil || c.retrying[id] {
		c.mu.Unlock()
		return // one retry at a time, however many refusals came
	}
	c.retrying[id] = true
	c.mu.Unlock()
	go func() {
		defer func() {
			c.mu.Lock()
			delete(c.retrying, id)
			c.mu.Unlock()
		}()
		t := time.NewTimer(retryAfter)
		defer t.Stop()
		select {
		case <-t.C:
		case <-gone:
			return
		case <-ctx.Done():
			return
		}
		c.enqueue(func() {
			if err := c.engine.Restart(c.relay, id); err == nil {
				c.syncDoc(ctx, id)
			}
		})
	}()
}

// Changed tells the client a document changed locally: it is marked
// waiting and sent if connected. Safe from any goroutine.
func (c *Client) Changed(id docid.ID) {
	c.mu.Lock()
	c.pending[id] = true
	c.mu.Unlock()
	c.setStatus(func(*Status) {})
	c.enqueue(func() { c.syncDoc(context.Background(), id) })
}

// Request asks the relay for a document this device does not hold yet.
func (c *Client) Request(id docid.ID) {
	c.enqueue(func() {
		if c.letGone(id) {
			return
		}
		outs, err := c.engine.Receive(context.Background(), id, nil, []string{c.relay})
		if err != nil && !errors.Is(err, repo.ErrNotFound) {
			return
		}
		if len(outs) == 0 {
			return
		}
		for _, o := range outs {
			c.send(wire.Message{Type: wire.TypeRequest, DocumentID: o.Doc.String(), Data: o.Data})
		}
	})
}

// inbound handles a message from the relay on the read goroutine: it only
// queues work.
func (c *Client) inbound(ctx context.Context, m wire.Message) {
	id, err := docid.Parse(m.DocumentID)
	switch m.Type {
	case wire.TypeSync:
		if err != nil {
			return
		}
		data := m.Data
		c.enqueue(func() { c.applySync(ctx, id, data) })
	case wire.TypeDocUnavailable:
		c.deliverBoot(m)
		if err == nil && c.cfg.OnUnavailable != nil {
			c.cfg.OnUnavailable(id)
		}
	case wire.TypeHavenDoc:
		if !c.deliverBoot(m) {
			// Not asked for by a Bootstrap: a record opened for a call, or
			// sent on a move between homes; never one let go (Bootstrap
			// unmarks what the relay lists before fetching it).
			c.enqueue(func() {
				if err == nil && c.letGone(id) {
					return
				}
				if err := c.storeDownloaded(ctx, m); err != nil {
					c.log.Warn("storing a document the relay sent", "doc", m.DocumentID, "err", err)
				}
			})
		}
	case wire.TypeHavenGone:
		var ids []docid.ID
		for _, s := range m.DocumentIDs {
			if id, err := docid.Parse(s); err == nil {
				ids = append(ids, id)
			}
		}
		code, detail := m.ErrorCode, m.ErrorMessage
		c.enqueue(func() { c.letGo(ctx, ids, code, detail) })
	case wire.TypeHavenSearch, wire.TypeHavenOpen, wire.TypeHavenReview:
		c.answer(m.Type, m.Data)
	case wire.TypeHavenList:
		c.mu.Lock()
		ch := c.list
		c.mu.Unlock()
		if ch != nil {
			select {
			case ch <- m.DocumentIDs:
			default:
			}
		}
	case wire.TypeHavenAuditAck:
		if c.cfg.OnAuditAck != nil {
			c.cfg.OnAuditAck(m.Count)
		}
	case wire.TypeHavenTrust:
		var t wire.Trust
		if err := json.Unmarshal(m.Data, &t); err != nil {
			c.log.Warn("unreadable trust message from the relay", "bytes", len(m.Data))
			return
		}
		if c.cfg.OnTrust != nil {
			c.enqueue(func() { c.cfg.OnTrust(t) })
		}
	case wire.TypeHavenWho:
		var w wire.Who
		if json.Unmarshal(m.Data, &w) == nil && c.cfg.OnWho != nil {
			c.cfg.OnWho(w)
		}
	}
}

func (c *Client) applySync(ctx context.Context, id docid.ID, data []byte) {
	if c.letGone(id) {
		return // sent before the relay told us to let it go
	}
	var before []byte
	if h, err := c.cfg.Repo.Open(id); err == nil {
		before = headsKey(h)
	}
	c.touch(id)
	began := time.Now()
	outs, err := c.engine.Receive(ctx, id, []syncer.In{{From: c.relay, Data: data}}, nil)
	c.log.Debug("applied sync message", "doc", id.String(), "bytes", len(data), "took", time.Since(began), "replies", len(outs))
	if err != nil {
		c.log.Warn("applying a sync message from the relay", "doc", id.String(), "err", err)
		return
	}
	c.sendAll(outs)
	changed := false
	if h, err := c.cfg.Repo.Open(id); err == nil {
		changed = string(before) != string(headsKey(h))
	}
	c.settle(id)
	c.mu.Lock()
	ws := c.waiters[id]
	delete(c.waiters, id)
	c.mu.Unlock()
	for _, w := range ws {
		close(w)
	}
	if changed && c.cfg.OnChange != nil {
		c.cfg.OnChange(id)
	}
}

func headsKey(h *repo.Handle) []byte {
	var b []byte
	for _, x := range h.Doc().Heads() {
		b = append(b, x[:]...)
	}
	return b
}

// PendingDocs lists the documents with changes the relay has not confirmed.
func (c *Client) PendingDocs() []docid.ID {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]docid.ID, 0, len(c.pending))
	for id := range c.pending {
		out = append(out, id)
	}
	return out
}

// Synced reports whether the relay has confirmed every local change of doc.
func (c *Client) Synced(id docid.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.pending[id]
}

// NextExchange returns a channel closed after the next sync message for id
// has been applied, for callers (tests, the UI) waiting on an event.
func (c *Client) NextExchange(id docid.ID) <-chan struct{} {
	ch := make(chan struct{})
	c.mu.Lock()
	c.waiters[id] = append(c.waiters[id], ch)
	c.mu.Unlock()
	return ch
}

// SendAudit sends a batch of audit events (JSON), numbered by seq; the
// relay acknowledges it through OnAuditAck. It reports false when offline.
func (c *Client) SendAudit(seq uint64, events []byte) bool {
	return c.send(wire.Message{Type: wire.TypeHavenAudit, Data: events, Count: seq})
}

// SendCertRequest asks the relay to certify a member of staff; the answer
// comes as a haven-trust message (OnTrust). It reports false when offline.
func (c *Client) SendCertRequest(req wire.CertRequest) bool {
	data, err := json.Marshal(req)
	if err != nil {
		return false
	}
	return c.send(wire.Message{Type: wire.TypeHavenCertReq, Data: data})
}

// SendLeaver asks the relay to revoke a member of staff's certificate on a
// home manager's signed word; the answer comes as a haven-trust message
// carrying the revocation (OnTrust), or an error. It reports false when
// offline.
func (c *Client) SendLeaver(l wire.Leaver) bool {
	data, err := json.Marshal(l)
	if err != nil {
		return false
	}
	return c.send(wire.Message{Type: wire.TypeHavenLeaver, Data: data})
}

// AskWho asks the relay which enrolled devices sent these actors' changes
// to a document; the answer comes to OnWho. It reports false when offline.
func (c *Client) AskWho(doc docid.ID, actors []string) bool {
	if len(actors) > wire.MaxWhoActors {
		actors = actors[:wire.MaxWhoActors]
	}
	data, err := json.Marshal(wire.WhoRequest{Doc: doc.String(), Actors: actors})
	if err != nil {
		return false
	}
	return c.send(wire.Message{Type: wire.TypeHavenWho, Data: data})
}

// deliverBoot hands a document message to a Bootstrap in progress, and
// reports whether one took it.
func (c *Client) deliverBoot(m wire.Message) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.docMsgs == nil || !c.bootWant[m.DocumentID] {
		return false
	}
	select {
	case c.docMsgs <- m:
		delete(c.bootWant, m.DocumentID)
		return true
	default: // cannot happen: docMsgs holds a whole fetch batch
		return false
	}
}

// letGone reports whether the device was told to let id go.
func (c *Client) letGone(id docid.ID) bool {
	return c.cfg.LetGo != nil && c.cfg.LetGo.Marked(id)
}

// letGo deletes the device's copies of documents the relay says it may hold
// no longer, on the work goroutine (so no sync message for one is being
// applied meanwhile), and forgets that they had changes waiting: the relay
// refuses those changes, and the record's home keeps its own.
func (c *Client) letGo(ctx context.Context, ids []docid.ID, code, detail string) {
	if len(ids) == 0 {
		return
	}
	if c.cfg.LetGo != nil {
		c.cfg.LetGo.Add(ids, code, detail)
	}
	// The copies go whatever becomes of the connection that brought the
	// word: a connection lost meanwhile would otherwise leave a marked copy
	// on the disk until the device's next start.
	ctx = context.WithoutCancel(ctx)
	for _, id := range ids {
		if err := c.cfg.Repo.Remove(ctx, id); err != nil {
			c.log.Warn("deleting a document the relay said to let go", "doc", id.String(), "err", err)
		}
		c.mu.Lock()
		delete(c.pending, id)
		delete(c.heard, id)
		c.mu.Unlock()
	}
	c.log.Info("documents let go at the relay's word", "docs", len(ids), "code", code)
	if c.cfg.OnChange != nil {
		for _, id := range ids {
			c.cfg.OnChange(id)
		}
	}
}
