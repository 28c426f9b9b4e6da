// Package syncer runs Automerge's sync protocol between this process's
// documents and its peers: one sync state per (document, peer), persisted
// under the peer's storage ID so that a reconnect costs a handshake rather
// than a resend. The relay runs it inside its CRDT workers; the desktop runs
// it in-process with one peer, the relay.
//
// The engine never touches the network. Callers hand it the sync messages a
// peer sent and get back the messages to send; ordering per document is the
// caller's job (the engine also locks per document, so misuse is safe, merely
// unordered).
package syncer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/repo"
	"haven/shared/store"
)

// Peer is a connected peer as the protocol describes it.
type Peer struct {
	ID        string
	StorageID string // stable across reconnects; "" for peers that keep nothing
	Ephemeral bool   // peers that keep nothing get no persisted state
}

// persistent reports whether this peer's sync states are worth keeping.
func (p Peer) persistent() bool { return p.StorageID != "" && !p.Ephemeral }

// StateStore keeps sync states by (peer storage ID, document).
// *store.Store implements it.
type StateStore interface {
	SyncState(storageID, docID string) ([]byte, error) // store.ErrNotFound when none
	PutSyncState(ctx context.Context, storageID, docID string, state []byte) error
}

// Options configure an Engine.
type Options struct {
	// States persists sync states; nil keeps them in memory only.
	States StateStore
	// Admit is asked before a document the engine has never stored is
	// created from what a peer sent; d holds the peer's changes, applied in
	// memory only. An error refuses the document: nothing is stored.
	Admit func(ctx context.Context, from Peer, id docid.ID, d *crdt.Doc) error
	// Check, if set, vets each incoming sync message before Automerge sees
	// it (see crdt.CheckSyncMessage).
	Check func(msg []byte) error
	// AckInSync makes the engine answer a message that does not show its
	// sender knows the two agree (crdt.KnowsShared) with a heads-only
	// message when Automerge has nothing to say: otherwise a peer that
	// reconnects after its confirmation was lost, or begins an exchange
	// afresh, never hears that its copy is confirmed. A peer that already
	// knows gets nothing, so a reconnect with nothing new costs no reply.
	// Set on the relay only: two peers both acking could answer each other
	// for ever.
	AckInSync bool
	// EagerChanges makes the first message about a document to a peer
	// (after a connect or a Restart) carry the changes made since the heads
	// the two were last known to share, instead of waiting a round trip to
	// hear what the peer has, as Automerge does. A reconnecting desktop's
	// notes reach the relay a round trip sooner: 300 ms on a rural line,
	// 2 s on a failing one. The same holds for a state loaded from States
	// (a relay worker that let the document go): the peers following it
	// get the next change in the relay's first message, not after
	// answering it. Changes the peer already has cost it nothing.
	EagerChanges bool
	// Vet, if set, checks what a batch of received messages added to a
	// document before anything is stored or sent: the document as it is
	// now, its heads before the batch (nil for a document new to this
	// engine), and the messages applied (the changes they carry are most
	// often all that was added). An error refuses the batch, and each
	// message of it is then taken alone so only the culprit is refused (a
	// *MessageError wrapping Vet's error). The relay's workers set it to
	// enforce the record's rules and that the document still loads.
	Vet    func(ctx context.Context, id docid.ID, doc *crdt.Doc, before []crdt.Hash, msgs []In) error
	Logger *slog.Logger
}

// Out is one sync message to send.
type Out struct {
	To   string
	Doc  docid.ID
	Data []byte
}

// In is one sync message received.
type In struct {
	From string
	Data []byte
}

// ErrUnknownPeer is returned for a message from a peer not Connected.
var ErrUnknownPeer = errors.New("unknown peer")

// ErrRefused wraps Admit's refusal.
var ErrRefused = errors.New("document refused")

// Engine holds sync states for connected peers.
type Engine struct {
	repo *repo.Repo
	opts Options
	log  *slog.Logger

	mu      sync.Mutex // guards peers, locks, dirty, pending, evicted
	peers   map[string]*peerState
	locks   map[docid.ID]*docLock // documents being worked on, or waited for
	dirty   map[dirtyKey]bool
	pending map[docid.ID]*pendingDoc
	// evicted holds the dirty states of documents the repo let go
	// (evictedDoc), encoded, until TakeDirty hands them over for saving.
	evicted []peerSaved
	// shared counts messages sent to a peer as made for another settled
	// at the same heads (generateAck).
	shared atomic.Int64
}

// docLock serialises the work on one document; refs counts its holder and
// those waiting, and the lock leaves Engine.locks when it drops to zero.
type docLock struct {
	sync.Mutex
	refs int
}

// peerSaved is a sync state to save, and the peer it is with.
type peerSaved struct {
	peer string
	SavedState
}

// pendingDoc is a document a peer has offered but not yet sent changes of
// (Automerge's first message only announces heads). It lives in memory
// until changes arrive and Admit accepts it, or its peers leave.
type pendingDoc struct {
	doc   *crdt.Doc
	peers map[string]bool
}

// MaxPendingPerPeer bounds the documents one peer can have half-offered.
const MaxPendingPerPeer = 10000

type peerState struct {
	Peer
	states map[docid.ID]*docState
}

type docState struct {
	doc   *crdt.Doc // the document object the state was made for
	ss    *crdt.SyncState
	eager bool // no message made from this state yet (see Options.EagerChanges)
}

type dirtyKey struct {
	peer string
	doc  docid.ID
}

// New makes an engine over r.
func New(r *repo.Repo, opts Options) *Engine {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Engine{repo: r, opts: opts, log: log,
		peers: map[string]*peerState{}, locks: map[docid.ID]*docLock{}, dirty: map[dirtyKey]bool{},
		pending: map[docid.ID]*pendingDoc{}}
	r.OnEvict(e.evictedDoc)
	return e
}

// evictedDoc drops the sync states made for a document the repo let go,
// which would otherwise keep it in memory: the next message about it loads
// the document again and its states from the StateStore. A dirty state is
// encoded first, for TakeDirty to hand over with the others, so nothing a
// peer confirmed is forgotten.
func (e *Engine) evictedDoc(id docid.ID, doc *crdt.Doc) {
	type dropped struct {
		peer, storage string
		ss            *crdt.SyncState
	}
	var save []dropped
	e.mu.Lock()
	for peerID, p := range e.peers {
		st := p.states[id]
		if st == nil || st.doc != doc {
			continue // none, or made for the copy loaded since
		}
		delete(p.states, id)
		k := dirtyKey{peerID, id}
		if e.dirty[k] {
			delete(e.dirty, k)
			if p.persistent() {
				save = append(save, dropped{peerID, p.StorageID, st.ss})
			}
		}
	}
	e.mu.Unlock()
	if len(save) == 0 {
		return
	}
	out := make([]peerSaved, len(save))
	for i, d := range save {
		out[i] = peerSaved{d.peer, SavedState{Storage: d.storage, Doc: id.String(), State: d.ss.Save()}}
	}
	e.mu.Lock()
	e.evicted = append(e.evicted, out...)
	e.mu.Unlock()
}

// Connect registers a peer. Connecting an already known ID replaces it
// (a reconnect), dropping its in-memory states.
func (e *Engine) Connect(p Peer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.peers[p.ID] = &peerState{Peer: p, states: map[docid.ID]*docState{}}
}

// Disconnect saves the peer's dirty states and forgets it.
func (e *Engine) Disconnect(ctx context.Context, peerID string) error {
	err := e.save(ctx, e.TakeDirty(peerID))
	e.Forget(peerID)
	return err
}

// Forget drops a peer and its states without saving them (the caller took
// them with TakeDirty).
func (e *Engine) Forget(peerID string) {
	e.mu.Lock()
	delete(e.peers, peerID)
	for k := range e.dirty {
		if k.peer == peerID {
			delete(e.dirty, k)
		}
	}
	for id, p := range e.pending {
		delete(p.peers, peerID)
		if len(p.peers) == 0 {
			delete(e.pending, id)
		}
	}
	e.mu.Unlock()
}

// Flush saves every dirty sync state of persistent peers.
func (e *Engine) Flush(ctx context.Context) error { return e.save(ctx, e.TakeDirty("")) }

// SavedState is one sync state to persist.
type SavedState struct {
	Storage, Doc string
	State        []byte
}

// TakeDirty returns the dirty sync states of persistent peers (of one peer,
// or all for "") encoded for saving, and marks them clean: for a caller that
// saves them in one batch, away from the engine.
func (e *Engine) TakeDirty(only string) []SavedState {
	type item struct {
		storage string
		doc     docid.ID
		ss      *crdt.SyncState
	}
	var items []item
	var out []SavedState
	e.mu.Lock()
	kept := e.evicted[:0]
	for _, s := range e.evicted {
		if only == "" || s.peer == only {
			out = append(out, s.SavedState)
		} else {
			kept = append(kept, s)
		}
	}
	clear(e.evicted[len(kept):])
	e.evicted = kept
	for k := range e.dirty {
		if only != "" && k.peer != only {
			continue
		}
		p := e.peers[k.peer]
		delete(e.dirty, k)
		if p == nil || !p.persistent() {
			continue
		}
		if st := p.states[k.doc]; st != nil {
			items = append(items, item{p.StorageID, k.doc, st.ss})
		}
	}
	e.mu.Unlock()
	for _, it := range items {
		out = append(out, SavedState{Storage: it.storage, Doc: it.doc.String(), State: it.ss.Save()})
	}
	return out
}

func (e *Engine) save(ctx context.Context, states []SavedState) error {
	if e.opts.States == nil {
		return nil
	}
	var errs []error
	for _, st := range states {
		if err := e.opts.States.PutSyncState(ctx, st.Storage, st.Doc, st.State); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (e *Engine) lock(id docid.ID) func() {
	e.mu.Lock()
	l, ok := e.locks[id]
	if !ok {
		l = &docLock{}
		e.locks[id] = l
	}
	l.refs++
	e.mu.Unlock()
	l.Lock()
	return func() {
		l.Unlock()
		e.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(e.locks, id)
		}
		e.mu.Unlock()
	}
}

// Restart begins the exchange about one document with a peer afresh:
// what the state knows the peer holds is kept, anything it believes in
// flight is dropped, so the next Sync sends a message again. For a caller
// that has waited too long for an answer that is not coming (a message
// lost with a connection's send queue, say).
func (e *Engine) Restart(peerID string, id docid.ID) error {
	defer e.lock(id)()
	h, release, err := e.repo.Hold(id)
	if err != nil {
		return err
	}
	defer release()
	doc := h.Doc()
	ss, err := e.state(peerID, id, doc)
	if err != nil {
		return err
	}
	fresh, err := crdt.SyncStateSharing(doc, ss.SharedHeads())
	if err != nil {
		return err
	}
	e.mu.Lock()
	if p, ok := e.peers[peerID]; ok {
		p.states[id] = &docState{doc: doc, ss: fresh, eager: true}
	}
	e.mu.Unlock()
	return nil
}

// state returns the sync state for (peer, doc), loading a persisted one.
// Caller holds the document's lock.
func (e *Engine) state(peerID string, id docid.ID, doc *crdt.Doc) (*crdt.SyncState, error) {
	e.mu.Lock()
	p, ok := e.peers[peerID]
	var st *docState
	if ok {
		st = p.states[id]
	}
	e.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrUnknownPeer, peerID)
	}
	if st != nil && st.doc == doc {
		return st.ss, nil
	}
	ss := crdt.NewSyncState(doc)
	// A state encoded when the document was let go and not yet handed over
	// is newer than whatever the store holds; it is saved later as this
	// state, which is marked dirty for that.
	kept, wasKept := e.takeEvicted(peerID, id)
	if wasKept {
		if loaded, lerr := crdt.LoadSyncState(doc, kept); lerr == nil {
			ss = loaded
		}
	} else if p.persistent() && e.opts.States != nil {
		saved, err := e.opts.States.SyncState(p.StorageID, id.String())
		switch {
		case err == nil:
			if loaded, lerr := crdt.LoadSyncState(doc, saved); lerr == nil {
				ss = loaded
			} else {
				e.log.Warn("discarding unreadable sync state", "peer", peerID, "doc", id.String())
			}
		case !errors.Is(err, store.ErrNotFound):
			return nil, fmt.Errorf("load sync state: %w", err)
		}
	}
	e.mu.Lock()
	if p, ok := e.peers[peerID]; ok {
		p.states[id] = &docState{doc: doc, ss: ss, eager: true}
		if wasKept {
			e.dirty[dirtyKey{peerID, id}] = true
		}
	}
	e.mu.Unlock()
	return ss, nil
}

// takeEvicted removes from those waiting to be handed over (e.evicted) the
// states encoded for (peer, doc) when the document was let go, and returns
// the newest, if any.
func (e *Engine) takeEvicted(peerID string, id docid.ID) ([]byte, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	var newest []byte
	found := false
	kept := e.evicted[:0]
	for _, s := range e.evicted {
		if s.peer == peerID && s.Doc == id.String() {
			newest, found = s.State, true
			continue
		}
		kept = append(kept, s)
	}
	clear(e.evicted[len(kept):])
	e.evicted = kept
	return newest, found
}

func (e *Engine) markDirty(peerID string, id docid.ID) {
	e.mu.Lock()
	e.dirty[dirtyKey{peerID, id}] = true
	e.mu.Unlock()
}

func (e *Engine) peer(id string) (Peer, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.peers[id]
	if !ok {
		return Peer{}, false
	}
	return p.Peer, true
}

// Receive applies the messages in order, generates what each sender needs
// now, and what each peer in notify needs if the document changed, and only
// then stores the result, durably, before returning the messages to send. So if Automerge aborts anywhere in
// handling a message (it can, in generating a reply to a malformed one),
// nothing of it has been stored or sent. A message that fails to apply stops
// the batch: the error says which (MessageError); what came before it is
// kept and answered.
func (e *Engine) Receive(ctx context.Context, id docid.ID, msgs []In, notify []string) (out []Out, err error) {
	defer e.lock(id)()
	// Held, so that the states made below stay tied to the copy the repo
	// keeps (an eviction meanwhile would leave them holding another).
	h, release, err := e.repo.Hold(id)
	if errors.Is(err, repo.ErrNotFound) {
		return e.receiveNew(ctx, id, msgs, notify)
	}
	if err != nil {
		return nil, err
	}
	defer release()
	out, err = e.receiveChecked(ctx, h, id, msgs, notify)
	var verr *verifyError
	if errors.As(err, &verr) && len(msgs) > 1 {
		// One of the batch broke the document: take them one at a time so
		// only the culprit is refused.
		out = nil
		for i, m := range msgs {
			o, err := e.receiveChecked(ctx, h, id, []In{m}, notify)
			out = append(out, o...)
			if err != nil {
				var me *MessageError
				if errors.As(err, &me) {
					me.Index = i
				}
				return out, err
			}
		}
		return out, nil
	}
	return out, err
}

// verifyError marks a batch refused because its result failed the check.
type verifyError struct{ err error }

func (v *verifyError) Error() string { return v.err.Error() }
func (v *verifyError) Unwrap() error { return v.err }

// receiveChecked applies msgs all or nothing: if they changed the document,
// the result must survive a save and reload before anything is stored or
// sent. automerge-go applies some malformed changes (a sequence number that
// skips ahead, corrupted columns with a valid checksum) that leave a
// document it cannot load again, and peers that take such a change abort
// when they next generate a sync message; so the relay refuses them here,
// inside its worker, where an abort costs only the worker.
func (e *Engine) receiveChecked(ctx context.Context, h *repo.Handle, id docid.ID, msgs []In, notify []string) (out []Out, err error) {
	targets := map[string]bool{}
	var failed error
	err = h.Try(ctx, func(doc *crdt.Doc) error {
		before := doc.Heads()
		for i, m := range msgs {
			if err := e.receiveOne(id, doc, m); err != nil {
				failed = &MessageError{Index: i, Peer: m.From, Err: err}
				break
			}
			targets[m.From] = true
		}
		changed := !crdt.SameHeads(before, doc.Heads())
		if changed && e.opts.Vet != nil {
			if err := e.opts.Vet(ctx, id, doc, before, msgs); err != nil {
				return &verifyError{err}
			}
		}
		// Other peers only need a message if the document changed (or
		// nothing was received: an explicit request to sync them).
		// A sender whose message does not show it knows we agree gets
		// told, if Automerge has nothing else to say (see AckInSync).
		senders := map[string]bool{}
		heads := doc.Heads()
		for _, m := range msgs {
			if targets[m.From] {
				senders[m.From] = !crdt.KnowsShared(m.Data, heads)
			}
		}
		if len(msgs) == 0 || changed {
			for _, p := range notify {
				targets[p] = true
			}
		}
		out = e.generateAck(id, doc, keys(targets), senders)
		return nil
	})
	var verr *verifyError
	if errors.As(err, &verr) {
		e.log.Warn("sync message refused", "doc", id.String(), "messages", len(msgs), "why", verr.err)
		// The verifyError stays in the chain: Receive looks for it to take
		// a batch's messages one at a time.
		return nil, &MessageError{Index: 0, Peer: msgs[0].From, Err: err}
	}
	if err != nil {
		return nil, err // not stored: send nothing
	}
	return out, failed
}

// MessageError says which message of a batch failed.
type MessageError struct {
	Index int
	Peer  string
	Err   error
}

func (e *MessageError) Error() string {
	return fmt.Sprintf("sync message %d from %s: %v", e.Index, e.Peer, e.Err)
}
func (e *MessageError) Unwrap() error { return e.Err }

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (e *Engine) check(msg []byte) error {
	if e.opts.Check == nil {
		return nil
	}
	return e.opts.Check(msg)
}

func (e *Engine) receiveOne(id docid.ID, doc *crdt.Doc, m In) error {
	if err := e.check(m.Data); err != nil {
		return err
	}
	ss, err := e.state(m.From, id, doc)
	if err != nil {
		return err
	}
	e.markDirty(m.From, id)
	return ss.Receive(m.Data)
}

// receiveNew handles messages about a document this engine has never
// stored. They are applied to an in-memory pending document; once it holds
// changes, Admit decides and the document is stored. Caller holds the lock.
func (e *Engine) receiveNew(ctx context.Context, id docid.ID, msgs []In, notify []string) ([]Out, error) {
	e.mu.Lock()
	pd, ok := e.pending[id]
	if !ok {
		pd = &pendingDoc{doc: crdt.New(), peers: map[string]bool{}}
	}
	e.mu.Unlock()
	targets := map[string]bool{}
	var admitter string
	for i, m := range msgs {
		p, ok := e.peer(m.From)
		if !ok {
			return nil, &MessageError{Index: i, Peer: m.From, Err: fmt.Errorf("%w %s", ErrUnknownPeer, m.From)}
		}
		if !pd.peers[m.From] && e.pendingCount(m.From) >= MaxPendingPerPeer {
			return nil, &MessageError{Index: i, Peer: m.From, Err: errors.New("too many documents offered at once")}
		}
		if err := e.check(m.Data); err != nil {
			return nil, &MessageError{Index: i, Peer: m.From, Err: err}
		}
		ss, err := e.state(m.From, id, pd.doc)
		if err != nil {
			return nil, &MessageError{Index: i, Peer: m.From, Err: err}
		}
		before := len(pd.doc.Heads())
		if err := ss.Receive(m.Data); err != nil {
			return nil, &MessageError{Index: i, Peer: m.From, Err: err}
		}
		if before == 0 && len(pd.doc.Heads()) > 0 {
			admitter = p.ID
		}
		pd.peers[m.From] = true
		targets[m.From] = true
	}
	if len(pd.doc.Heads()) == 0 {
		// Nothing to store yet: answer the senders, and ask the peers in
		// notify for it (a request, when msgs is empty).
		for _, p := range notify {
			if _, ok := e.peer(p); ok {
				pd.peers[p] = true
				targets[p] = true
			}
		}
		e.mu.Lock()
		if len(pd.peers) > 0 {
			e.pending[id] = pd
		}
		e.mu.Unlock()
		return e.generateFrom(id, pd.doc, keys(targets)), nil
	}
	for _, p := range notify {
		targets[p] = true
	}
	out := e.generateFrom(id, pd.doc, keys(targets))
	e.mu.Lock()
	delete(e.pending, id)
	e.mu.Unlock()
	if e.opts.Vet != nil {
		if err := e.opts.Vet(ctx, id, pd.doc, nil, msgs); err != nil {
			e.forget(id, pd)
			return nil, &MessageError{Peer: admitter, Err: err}
		}
	}
	if e.opts.Admit != nil {
		p, _ := e.peer(admitter)
		if err := e.opts.Admit(ctx, p, id, pd.doc); err != nil {
			e.forget(id, pd)
			return nil, &MessageError{Peer: admitter, Err: fmt.Errorf("%w: %v", ErrRefused, err)}
		}
	}
	// Dirty before the document is in the repo: should it be evicted at
	// once, the states are saved, not dropped.
	for p := range pd.peers {
		e.markDirty(p, id)
	}
	if _, err := e.repo.Create(ctx, id, pd.doc); err != nil {
		e.forget(id, pd)
		return nil, err
	}
	return out, nil
}

// ErrUnloadable reports changes whose saved document does not load again.
var ErrUnloadable = errors.New("changes do not survive a save and reload")

// RoundTrips checks that doc survives a save and reload with the same
// heads: automerge-go applies some malformed changes (a sequence number
// that skips ahead, corrupted columns with a valid checksum) that leave a
// document it cannot load again, and peers that take such a change abort
// when they next generate a sync message. O(document).
func RoundTrips(doc *crdt.Doc) error {
	again, err := crdt.Load(doc.Save())
	if err != nil {
		return fmt.Errorf("%w: %v", ErrUnloadable, err)
	}
	if !crdt.SameHeads(again.Heads(), doc.Heads()) {
		return fmt.Errorf("%w: heads differ", ErrUnloadable)
	}
	return nil
}

func (e *Engine) pendingCount(peer string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, p := range e.pending {
		if p.peers[peer] {
			n++
		}
	}
	return n
}

// forget drops the sync states made for a refused pending document.
func (e *Engine) forget(id docid.ID, pd *pendingDoc) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for p := range pd.peers {
		if ps, ok := e.peers[p]; ok {
			delete(ps.states, id)
		}
	}
}

// Settle takes settled acknowledgements (crdt.SettledAck) of a document
// the repo does not hold in memory, without loading it: each says its peer
// holds the heads it names and knows this side does, and all that
// receiving one would leave once the document is let go again is the
// peer's saved sync state, sharing those heads; so that is saved, for a
// persistent peer, and the message is done with. It reports false, having
// done nothing, when the document is held or offered (the caller receives
// the messages as any others), or a message is not such an
// acknowledgement. The caller vouches that the heads named are the
// document's.
func (e *Engine) Settle(ctx context.Context, id docid.ID, msgs []In) (bool, error) {
	defer e.lock(id)()
	e.mu.Lock()
	_, offered := e.pending[id]
	e.mu.Unlock()
	if offered || e.repo.Resident(id) {
		return false, nil
	}
	type saved struct {
		storage string
		heads   []crdt.Hash
	}
	var save []saved
	for _, m := range msgs {
		heads, ok := crdt.AckedHeads(m.Data)
		if !ok {
			return false, nil
		}
		e.mu.Lock()
		p, known := e.peers[m.From]
		if known {
			delete(p.states, id) // made for a copy let go
			delete(e.dirty, dirtyKey{m.From, id})
		}
		e.mu.Unlock()
		if known && p.persistent() {
			save = append(save, saved{p.StorageID, heads})
		}
	}
	if e.opts.States == nil {
		return true, nil
	}
	var errs []error
	for _, s := range save {
		errs = append(errs, e.opts.States.PutSyncState(ctx, s.storage, id.String(), crdt.SavedSharing(s.heads)))
	}
	return true, errors.Join(errs...)
}

// Sync generates what the given peers need of a document now, e.g. after a
// local change or when a peer subscribes.
func (e *Engine) Sync(ctx context.Context, id docid.ID, peers []string) ([]Out, error) {
	defer e.lock(id)()
	h, release, err := e.repo.Hold(id)
	if err != nil {
		return nil, err
	}
	defer release()
	return e.generate(id, h, peers), nil
}

// generate asks each peer's sync state for its next message. Caller holds
// the document's lock. A peer that disconnected meanwhile is skipped.
func (e *Engine) generate(id docid.ID, h *repo.Handle, peers []string) []Out {
	return e.generateFrom(id, h.Doc(), peers)
}

func (e *Engine) generateFrom(id docid.ID, doc *crdt.Doc, peers []string) []Out {
	return e.generateAck(id, doc, peers, nil)
}

// generateAck is generateFrom, also sending heads-only acknowledgements (see
// Options.AckInSync) to the peers in ack that get nothing else.
//
// Peers whose states are settled at the same heads (crdt.SyncState.SettledAt:
// each confirmed the document as it then was, and has been sent nothing
// since) are sent one message, made once: the subscribers of a document
// edited by one of them, each of which confirmed the last change, get the
// next one for one Automerge call instead of one each.
func (e *Engine) generateAck(id docid.ID, doc *crdt.Doc, peers []string, ack map[string]bool) []Out {
	type made struct {
		msg []byte
		ok  bool
	}
	var out []Out
	var settled map[string]made // by the heads the states are settled at
	for _, p := range peers {
		ss, err := e.state(p, id, doc)
		if err != nil {
			continue
		}
		// A state's first message, carrying changes of its own (see
		// Options.EagerChanges), is made for it alone.
		eager := e.opts.EagerChanges && e.isEager(p, id)
		key := ""
		if !eager {
			key = hashesKey(ss.SettledAt())
		}
		var msg []byte
		ok := false
		if m, found := settled[key]; key != "" && found {
			msg, ok = m.msg, m.ok
			if ok {
				ss.Forwarded()
				e.shared.Add(1)
			}
		} else {
			msg, ok, err = ss.Generate()
			if err != nil {
				e.log.Error("generate sync message", "peer", p, "doc", id.String(), "err", err)
				continue
			}
			if key != "" {
				if settled == nil {
					settled = map[string]made{}
				}
				settled[key] = made{msg, ok}
			}
		}
		if !ok && ack[p] && e.opts.AckInSync {
			msg, ok = crdt.HeadsMessage(doc.Heads()), true
		}
		if ok && eager && e.takeEager(p, id) {
			msg = e.withEagerChanges(p, id, doc, ss, msg)
		}
		if ok {
			e.markDirty(p, id)
			out = append(out, Out{To: p, Doc: id, Data: msg})
		}
	}
	return out
}

// hashesKey is a map key for a set of sorted hashes; "" for none.
func hashesKey(hs []crdt.Hash) string {
	b := make([]byte, 0, len(hs)*len(crdt.Hash{}))
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return string(b)
}

// isEager reports whether no message was made yet from (peer, doc)'s
// state.
func (e *Engine) isEager(peer string, id docid.ID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.peers[peer]
	return ok && p.states[id] != nil && p.states[id].eager
}

// takeEager reports whether no message was made yet from (peer, doc)'s
// state, and records that one is now.
func (e *Engine) takeEager(peer string, id docid.ID) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.peers[peer]; ok {
		if st := p.states[id]; st != nil && st.eager {
			st.eager = false
			return true
		}
	}
	return false
}

// eagerLimit bounds the changes a first message carries unasked.
const eagerLimit = 64 << 10

// withEagerChanges adds to the first message of an exchange the changes
// made since the heads the peer was last known to share (see
// Options.EagerChanges).
func (e *Engine) withEagerChanges(peer string, id docid.ID, doc *crdt.Doc, ss *crdt.SyncState, msg []byte) []byte {
	shared := ss.SharedHeads()
	if len(shared) == 0 || crdt.Covers(shared, doc.Heads()) {
		return msg
	}
	out, added, err := crdt.WithChangesSince(msg, doc, shared, eagerLimit)
	if err != nil {
		e.log.Debug("first message sent without its changes", "peer", peer, "doc", id.String(), "err", err)
		return msg
	}
	if added {
		e.log.Debug("first message carries its changes", "peer", peer, "doc", id.String(), "bytes", len(out)-len(msg))
	}
	return out
}

// InSync reports whether the peer is known to have every change of the
// document this side holds: its sync state's shared heads cover our heads.
func (e *Engine) InSync(peerID string, id docid.ID) bool {
	h, err := e.repo.Open(id)
	if err != nil {
		return false
	}
	doc := h.Doc()
	e.mu.Lock()
	p, ok := e.peers[peerID]
	var st *docState
	if ok {
		st = p.states[id]
	}
	e.mu.Unlock()
	if st == nil || st.doc != doc {
		return false
	}
	return crdt.Covers(st.ss.SharedHeads(), doc.Heads())
}

// Received tells the engine the peer just sent this document whole (a
// download), so it holds at least the document's current heads: the peer's
// sync state starts from there and is saved.
func (e *Engine) Received(ctx context.Context, peerID string, id docid.ID) error {
	defer e.lock(id)()
	h, release, err := e.repo.Hold(id)
	if err != nil {
		return err
	}
	defer release()
	doc := h.Doc()
	ss, err := crdt.SyncStateSharing(doc, doc.Heads())
	if err != nil {
		return err
	}
	e.mu.Lock()
	p, ok := e.peers[peerID]
	if ok {
		p.states[id] = &docState{doc: doc, ss: ss}
	}
	e.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w %s", ErrUnknownPeer, peerID)
	}
	e.markDirty(peerID, id)
	return nil
}
