// Package relay is syncd's core: it speaks automerge-repo's websocket
// protocol with enrolled devices, enforces per-document scope on every
// message, stores documents in the encrypted store and fans changes out.
//
// The server never listens: Accept owns one connection until it closes, and
// the HTTP handler in http.go is a thin adapter in front. CRDT work happens
// in worker processes (package worker), one queue per document, never on a
// connection's read loop, so pings keep flowing while a large change applies.
package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/store"
	"haven/shared/syncer"
	"haven/shared/transport"
	"haven/syncd/internal/orgs"
	"haven/syncd/internal/worker"
)

// Worker runs CRDT work; *worker.Pool implements it.
type Worker interface {
	Work(ctx context.Context, args worker.WorkArgs) (worker.WorkReply, error)
	Forget(peer string)
	Flush() error
}

// Config wires a Server.
type Config struct {
	Store  *store.Store
	Orgs   *orgs.Registry
	Logger *slog.Logger
	// MaxConns caps concurrent connections; further devices are told to
	// try again later. Default 1000.
	MaxConns int
	// Transport tunes every connection (the server always pings).
	Transport transport.Options
	// QueueLimit caps messages waiting for one document. Default 10000.
	QueueLimit int
	// FlushEvery is how often workers save dirty sync states. Default 5s.
	FlushEvery time.Duration
	// Linger is how long a document's queue runner waits, after a batch,
	// for more messages before it exits: the delay an answer to a fan-out
	// may take on so that it shares one worker call with the answers
	// arriving beside it (a note to 19 subscribers brings 19 answers).
	// A message to an idle document is worked at once. Default 2 ms; at
	// 8 edits/s from 20 clients it cut the relay's CPU by a fifth and let
	// it keep up.
	Linger time.Duration
	// Metrics may be shared with the HTTP handler; nil makes a private set.
	Metrics *Metrics
	// Limits are each device's and organisation's share (limits.go).
	Limits Limits
	// Cluster, if set, holds every change before the relay keeps it and
	// acknowledges it (cluster.go); nil keeps changes in the store alone.
	Cluster Cluster
	// RelayURLs are the public addresses of the relay's nodes, told to
	// each device at enrolment (wire.Enrollment).
	RelayURLs []string
}

// Server is the relay.
type Server struct {
	cfg     Config
	log     *slog.Logger
	st      *store.Store
	orgs    *orgs.Registry
	work    Worker
	metrics *Metrics

	peerID    string // this relay's peer ID in the protocol
	storageID string // stable across restarts: peers key their sync states by it

	mu      sync.Mutex // guards everything below
	conns   map[*conn]bool
	peers   map[string]*conn           // by engine peer ID (one per connection), after join
	clients map[string]*conn           // by device and the client's own peer ID: its current connection
	joins   uint64                     // connections joined so far; numbers engine peer IDs
	subs    map[string]map[string]bool // document → subscribed peer IDs
	waiting map[string]map[string]bool // unknown document → peers that asked for it
	owners  map[string]string          // document → owning organisation
	// personOf and persons: each resident's record's NHS number, and the
	// record holding each number (person.go).
	personOf map[string]string
	persons  map[string]string
	queues   map[string]*docQueue
	seenEph  map[string]uint64 // "sender session" → highest ephemeral count forwarded
	strikes  map[string][]time.Time
	suspect  map[string]time.Time // device → until when it is suspect (queue.go)
	outside  map[string]int       // document → work on it outside its runner in flight (beginOutsideLocked)
	// revocations are every certificate revocation issued (see trust.go).
	revocations []cert.Revocation
	// docBytes caches each document's stored size, for the size limit;
	// filled from the store on first use, kept by the host's writes.
	docBytes map[string]int64
	// private: documents whose person withdrew consent to share them;
	// guarded by privMu, not mu, so checks hold no other lock.
	privMu  sync.RWMutex
	private map[string]bool
	// moved: for each document moved between homes, who held it before
	// (transfer.go). Guarded by mu.
	moved map[string][]string
	// withheld: for each private document, the peers whose subscriptions
	// its withdrawal ended, to give back if consent is given again;
	// guarded by mu.
	withheld map[string]map[string]bool
	quotas   *quotas
	// emptyReply is the sync message an empty document sends a peer: the
	// answer about any document a device may not see or the relay lacks.
	emptyReply []byte
	// auditLocks serialises each device's audit batches; releaseMu the
	// release of events held for a record that arrived (audit.go).
	auditLocks auditLocks
	releaseMu  sync.Mutex
	// grants are what advice-line devices opened (advice.go).
	grants   grants
	closing  bool
	wg       sync.WaitGroup // connections and queue runners
	stop     chan struct{}
	flushers sync.WaitGroup
}

const (
	nsMeta   = "relay-meta"
	nsOwner  = OwnerNamespace
	nsQuaran = "relay-quarantined-msg"
	// nsProvenance: actor (hex) → the ID of the device that first sent its
	// changes; History asks it (haven-who).
	nsProvenance = "relay-provenance"
	// nsPrivate: documents only their own home's devices may hold (see
	// private.go), each with an empty value.
	nsPrivate = "relay-private"
)

// OwnerNamespace is the store namespace mapping each document to the
// organisation that owns it; the scope check reads it (from memory).
const OwnerNamespace = "relay-owner"

// RegisterDocument tells a running relay about a document stored beside it
// (admin creating a home's directory), already recorded under
// OwnerNamespace.
func (s *Server) RegisterDocument(doc, owner string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur := s.owners[doc]; cur != "" && cur != owner {
		return fmt.Errorf("document %s already belongs to %s", doc, cur)
	}
	s.owners[doc] = owner
	s.registerPerson(doc)
	s.metrics.documents.Set(float64(len(s.owners)))
	return nil
}

// New makes a server and loads what it must keep in memory: the owner of
// every document, for the scope check on each message. Start gives it its
// workers (which need the server's Host first).
func New(cfg Config) (*Server, error) {
	if cfg.MaxConns <= 0 {
		cfg.MaxConns = 1000
	}
	if cfg.QueueLimit <= 0 {
		cfg.QueueLimit = 10000
	}
	if cfg.FlushEvery <= 0 {
		cfg.FlushEvery = 5 * time.Second
	}
	if cfg.Linger <= 0 {
		cfg.Linger = 2 * time.Millisecond
	}
	cfg.Transport.Ping = true
	cfg.Limits = cfg.Limits.withDefaults()
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := cfg.Metrics
	if m == nil {
		m = NewMetrics()
	}
	s := &Server{
		cfg: cfg, log: log, st: cfg.Store, orgs: cfg.Orgs, metrics: m,
		conns: map[*conn]bool{}, peers: map[string]*conn{}, clients: map[string]*conn{}, subs: map[string]map[string]bool{},
		waiting: map[string]map[string]bool{}, owners: map[string]string{}, queues: map[string]*docQueue{},
		seenEph: map[string]uint64{}, strikes: map[string][]time.Time{}, stop: make(chan struct{}),
		docBytes: map[string]int64{}, quotas: newQuotas(), private: map[string]bool{},
		withheld: map[string]map[string]bool{}, personOf: map[string]string{}, persons: map[string]string{},
		moved: map[string][]string{}, suspect: map[string]time.Time{}, outside: map[string]int{},
	}
	id, err := s.loadStorageID()
	if err != nil {
		return nil, err
	}
	s.storageID, s.peerID = id, "syncd-"+id
	err = s.st.Scan(nsOwner, "", func(doc string, org []byte) error {
		s.owners[doc] = string(org)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("load document owners: %w", err)
	}
	m.documents.Set(float64(len(s.owners)))
	if err := s.st.Scan(nsPrivate, "", func(doc string, _ []byte) error {
		s.private[doc] = true
		return nil
	}); err != nil {
		return nil, fmt.Errorf("load private documents: %w", err)
	}
	if err := s.loadMoved(); err != nil {
		return nil, fmt.Errorf("load moved documents: %w", err)
	}
	if err := s.loadPersons(); err != nil {
		return nil, fmt.Errorf("load NHS numbers: %w", err)
	}
	if err := s.loadTrust(); err != nil {
		return nil, fmt.Errorf("load revocations: %w", err)
	}
	s.emptyReply = crdt.EmptySyncMessage()
	return s, nil
}

// Start hands the server its workers and starts saving sync states
// periodically. Connections are refused until it is called.
func (s *Server) Start(w Worker) {
	s.mu.Lock()
	s.work = w
	s.mu.Unlock()
	s.flushers.Add(1)
	go s.flushLoop()
}

// StorageID is the relay's stable storage ID, sent in every peer message.
func (s *Server) StorageID() string { return s.storageID }

// PeerID is the relay's protocol peer ID.
func (s *Server) PeerID() string { return s.peerID }

func (s *Server) loadStorageID() (string, error) {
	b, err := s.st.Get(nsMeta, "storage-id")
	if err == nil {
		return string(b), nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	var raw [16]byte
	rand.Read(raw[:])
	id := hex.EncodeToString(raw[:])
	if err := s.st.Put(context.Background(), nsMeta, "storage-id", []byte(id)); err != nil {
		return "", err
	}
	return id, nil
}

func (s *Server) flushLoop() {
	defer s.flushers.Done()
	t := time.NewTicker(s.cfg.FlushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.work.Flush(); err != nil {
				s.log.Warn("saving sync states", "err", err)
			}
		}
	}
}

// Close ends every connection (a close frame, then the socket), waits for
// queued work to finish, and saves sync states. It does not close the store
// or the worker pool: main does, in that order after Close.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return nil
	}
	s.closing = true
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.tc.Close(transport.CloseGoingAway, "relay shutting down")
	}
	s.wg.Wait()
	close(s.stop)
	s.flushers.Wait()
	if s.work == nil {
		return nil
	}
	return s.work.Flush()
}

// storedBytes is a document's stored size (0 for one not stored yet).
func (s *Server) storedBytes(doc string) int64 {
	s.mu.Lock()
	n, ok := s.docBytes[doc]
	s.mu.Unlock()
	if ok {
		return n
	}
	_, chunks, snap, err := s.st.DocStats(doc)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return 0
	}
	s.mu.Lock()
	s.docBytes[doc] = chunks + snap
	s.mu.Unlock()
	return chunks + snap
}

// subscribeLocked has peer hear of doc's changes; s.mu held.
func (s *Server) subscribeLocked(doc, peer string) {
	subs := s.subs[doc]
	if subs == nil {
		subs = map[string]bool{}
		s.subs[doc] = subs
	}
	subs[peer] = true
}

// owner returns a document's owning organisation, "" if unknown.
func (s *Server) owner(doc string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.owners[doc]
}

// host implements worker.Host over the server's store, with Admit deciding
// who owns a document a peer creates.
type host struct{ s *Server }

func (h host) LoadDoc(id string) (store.Doc, error) { return h.s.st.LoadDoc(id) }
func (h host) AppendChunk(ctx context.Context, id string, b []byte) (uint64, error) {
	seq, err := h.s.appendChunk(ctx, id, b)
	if err == nil {
		h.s.mu.Lock()
		if n, ok := h.s.docBytes[id]; ok {
			h.s.docBytes[id] = n + int64(len(b))
		}
		h.s.mu.Unlock()
	}
	return seq, err
}
func (h host) Quarantine(ctx context.Context, id string, seq uint64, reason string) error {
	h.s.metrics.quarantined.WithLabelValues("chunk").Inc()
	// The document's heads move back to what is left: its runner's record
	// of them (answerInStep) is no longer true.
	defer h.s.headsMoved(id)
	return h.s.st.Quarantine(ctx, id, seq, reason)
}
func (h host) Compact(ctx context.Context, id string, snap []byte, upTo uint64) error {
	err := h.s.st.Compact(ctx, id, snap, upTo)
	h.s.mu.Lock()
	delete(h.s.docBytes, id) // read afresh at the next use
	h.s.mu.Unlock()
	return err
}
func (h host) SyncState(storage, id string) ([]byte, error) { return h.s.st.SyncState(storage, id) }
func (h host) PutSyncState(ctx context.Context, storage, id string, state []byte) error {
	return h.s.st.PutSyncState(ctx, storage, id, state)
}
func (h host) PutSyncStates(ctx context.Context, states []store.SyncStateEntry) error {
	return h.s.st.PutSyncStates(ctx, states)
}

// Admit decides whether the peer may create this document and records its
// owner: the care home named in the document's "home" field if the peer's
// scope allows it, or the peer's own organisation for documents without one
// (those a plain automerge-repo client makes).
func (h host) Admit(ctx context.Context, from syncer.Peer, doc, home string) error {
	s := h.s
	s.mu.Lock()
	c := s.peers[from.ID]
	existing := s.owners[doc]
	s.mu.Unlock()
	if c == nil {
		return errors.New("peer gone")
	}
	if existing != "" {
		return errors.New("document already exists")
	}
	owner := c.sc().Org.ID
	if c.sc().AdviceLine() {
		// The advice line opens homes' records; it does not make them.
		return errors.New("an advice line creates no documents")
	}
	if home != "" {
		if _, err := s.orgs.Org(home); err != nil || !c.sc().Allows(home) {
			return fmt.Errorf("home %q is outside this device's scope", home)
		}
		owner = home
	}
	if err := s.st.Put(ctx, nsOwner, doc, []byte(owner)); err != nil {
		return err
	}
	s.mu.Lock()
	s.owners[doc] = owner
	n := len(s.owners)
	s.mu.Unlock()
	s.metrics.documents.Set(float64(n))
	s.log.Info("document created", "doc", doc, "owner", owner, "device", c.dev.ID)
	s.wg.Go(func() { s.releaseHeld(context.WithoutCancel(ctx), doc, owner) })
	return nil
}

// Provenance records, per actor new to a document, the enrolled device
// whose connection first brought its changes (an engine peer ID starts
// with its device's ID). Kept once: the first sender is the author's
// device, and what others relay later does not change that.
func (h host) Provenance(doc string, actors map[string]string) {
	ctx := context.Background()
	for actor, peer := range actors {
		dev, _, ok := strings.Cut(peer, "/")
		if !ok || !validActor(actor) {
			continue
		}
		if _, err := h.s.st.Get(nsProvenance, actor); err == nil {
			continue
		}
		if err := h.s.st.Put(ctx, nsProvenance, actor, []byte(dev)); err != nil {
			h.s.log.Warn("recording which device sent a change", "doc", doc, "err", err)
		}
	}
}

// validActor accepts an Automerge actor ID as hex of 1 to 64 bytes.
func validActor(a string) bool {
	if len(a) == 0 || len(a) > 128 || len(a)%2 != 0 {
		return false
	}
	for _, c := range a {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Trust is what workers check signatures against.
func (h host) Trust() ([]byte, []cert.Revocation, uint64) { return h.s.workerTrust() }

// Host returns the worker.Host the pool's children call back into.
func (s *Server) Host() worker.Host { return host{s} }
