// Package repo keeps open Automerge documents in step with their stored
// form: it loads a document from its snapshot and chunks, persists every
// change as a durable incremental chunk before reporting success, and
// compacts chunks into a verified snapshot in the background.
//
// Memory and disk never disagree about what was saved: if persisting a
// change fails, the handle reloads the document from disk, so the failed
// change is gone from memory too, and the caller was told it failed.
//
// A Repo may be bounded (Options.MaxBytes): documents nobody is working on
// are then let go, least recently used first, and loaded again on their
// next Open (evict.go).
package repo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/lowprio"
	"haven/shared/store"
)

// Storage is what a Repo needs from a document store. *store.Store
// implements it; syncd's CRDT worker implements it by asking its parent.
type Storage interface {
	// AppendChunk stores chunk durably and returns its sequence number.
	AppendChunk(ctx context.Context, docID string, chunk []byte) (uint64, error)
	// LoadDoc returns the snapshot and chunks (store.ErrNotFound if none).
	LoadDoc(docID string) (store.Doc, error)
	// Quarantine takes a chunk that passed the store's checks but cannot be
	// applied out of the document.
	Quarantine(ctx context.Context, docID string, seq uint64, reason string) error
	// Compact replaces chunks up to upTo by snapshot, durably.
	Compact(ctx context.Context, docID string, snapshot []byte, upTo uint64) error
}

// ErrNotFound is returned by Open for a document that was never stored.
var ErrNotFound = errors.New("document not found")

// Options tunes a Repo.
type Options struct {
	// CompactAfter is how many chunks a document gathers before it is
	// compacted into a snapshot. Zero means 64. Each document waits a
	// further random part of it (up to half), drawn afresh after every
	// compaction: computers that hold the same document and see the same
	// changes then compact it at different moments, not all at once.
	CompactAfter int
	// Logger gets document IDs and sizes, never content. Nil discards.
	Logger *slog.Logger
	// OnChange, if set, is called after a change to a document is durable
	// (by Change or Apply), outside any lock.
	OnChange func(id docid.ID)
	// MaxBytes bounds the memory of the documents held open, as estimated
	// from their changes, operations and saved size (see docMemory). Past
	// it, the least recently used documents that nobody is working on are
	// evicted and loaded again on their next Open. Zero or less: no bound,
	// nothing is evicted.
	MaxBytes int64
	// IdleAfter, if above zero, lets go of a document nobody has opened
	// or held for that long, whatever the bound (evict.go): memory then
	// follows the documents in use, and one used again is loaded again.
	IdleAfter time.Duration
}

// Repo holds the open documents of one store.
type Repo struct {
	st   Storage
	opts Options
	log  *slog.Logger

	mu      sync.Mutex // guards handles, loading, closed and what evict.go lists
	handles map[docid.ID]*Handle
	loading map[docid.ID]chan struct{} // documents being loaded or removed; closed when done
	closed  bool
	lru     // the open documents' order of use and estimated memory

	compact chan docid.ID  // documents due for compaction
	sweep   chan struct{}  // evicted memory awaits a collection (evict.go)
	done    chan struct{}  // closed by Close to stop the compactor
	wg      sync.WaitGroup // the compactor goroutine
}

// New starts a Repo over st. Close stops its compactor; it does not close st.
func New(st Storage, opts Options) *Repo {
	if opts.CompactAfter <= 0 {
		opts.CompactAfter = 64
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Repo{
		st: st, opts: opts, log: log,
		handles: map[docid.ID]*Handle{},
		loading: map[docid.ID]chan struct{}{},
		compact: make(chan docid.ID, 256),
		sweep:   make(chan struct{}, 1),
		done:    make(chan struct{}),
	}
	r.room.L = &r.mu
	r.wg.Add(1)
	go r.compactor()
	return r
}

// Close waits for a compaction in progress and stops the compactor. Changes
// already acknowledged are on disk whatever Close does.
func (r *Repo) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	r.mu.Unlock()
	close(r.done)
	r.wg.Wait()
	return nil
}

// Handle is one open document. Reads go straight to Doc; writes go through
// Change or Apply so that they are persisted in order.
type Handle struct {
	ID   docid.ID
	repo *Repo

	mu      sync.Mutex // serialises write+persist, so chunks are stored in the order changes were made
	doc     *crdt.Doc
	current atomic.Pointer[crdt.Doc] // doc, for readers that must not wait on mu
	saved   []crdt.Hash              // heads of what is on disk
	lastSeq uint64                   // the newest chunk the in-memory doc includes
	pending int                      // chunks stored since the last snapshot
	due     int                      // pending at which the document is compacted
	report  LoadReport
	queued  bool // waiting in the compaction queue
	// base and tail are the saved size of what the in-memory document was
	// loaded or compacted from, and of the chunks stored since, and
	// baseShape and tailShape the changes and operations each holds: what
	// its memory is estimated from (docMemory).
	base, tail           int64
	baseShape, tailShape crdt.Shape
	// evicted is set, holding mu, when the Repo lets the document go
	// (evict.go); it never clears. Whoever still holds the handle is sent
	// to the document's handle now, so there is only ever one copy to
	// write to.
	evicted atomic.Bool
	use     // the Repo's bookkeeping, guarded by repo.mu
}

// LoadReport says what loading a document found wrong; empty is healthy.
type LoadReport struct {
	Quarantined []store.Quarantine
}

// Doc is the document for reading. Do not write to it directly: use Change.
// It never waits for a writer, so it is safe inside a Change callback too.
// On a handle evicted since it was opened it opens the document again,
// which may read the store (if that fails, it returns the copy it had).
func (h *Handle) Doc() *crdt.Doc {
	if live, ok := h.live(); ok {
		return live.Doc()
	}
	return h.current.Load()
}

// Seq is the sequence number of the newest stored chunk the document in
// memory includes (store.LastSeq says the same of the disk).
func (h *Handle) Seq() uint64 {
	if live, ok := h.live(); ok {
		return live.Seq()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.lastSeq
}

// Report is what the last load found.
func (h *Handle) Report() LoadReport {
	if live, ok := h.live(); ok {
		return live.Report()
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.report
}

// Create stores a new document and returns its handle. The whole document
// is written as the first chunk, durably.
func (r *Repo) Create(ctx context.Context, id docid.ID, doc *crdt.Doc) (*Handle, error) {
	r.mu.Lock()
	// Someone is looking for it (Open of a document not yet here, often):
	// wait for their answer rather than fail.
	r.waitLoadLocked(id)
	if _, ok := r.handles[id]; ok {
		r.mu.Unlock()
		return nil, fmt.Errorf("document %s is already open", id)
	}
	h := &Handle{ID: id, repo: r, doc: doc}
	h.current.Store(doc)
	// Locked before anyone can see it: an Open meanwhile waits for the
	// document to be stored before writing, and it cannot be evicted.
	h.mu.Lock()
	r.handles[id] = h
	r.addLocked(h, false)
	r.mu.Unlock()

	data := doc.Save()
	h.saved = doc.Heads()
	seq, err := r.st.AppendChunk(ctx, id.String(), data)
	if err != nil {
		r.mu.Lock()
		delete(r.handles, id)
		r.unlinkLocked(h)
		r.mu.Unlock()
		h.mu.Unlock()
		return nil, fmt.Errorf("store new document %s: %w", id, err)
	}
	h.lastSeq, h.pending = seq, 1
	h.base, h.baseShape = int64(len(data)), shapeOf(data)
	r.resize(h)
	h.mu.Unlock()
	r.shrink()
	return h, nil
}

// Open returns the document's handle, loading it on first use (or first
// use since it was evicted).
func (r *Repo) Open(id docid.ID) (*Handle, error) { return r.open(id, false) }

// Hold is Open for a caller about to work on the document: until release
// is called, the handle is not evicted (Options.MaxBytes). Whatever the
// caller builds on the document (a sync state, say) then stays tied to the
// copy the Repo holds. release may be called more than once.
//
// In a bounded Repo, a Hold that must load the document first waits, if
// need be, until the documents others hold leave room for it (see
// evict.go): a caller must not wait on another Hold while holding a
// document, nor hold two documents at once.
func (r *Repo) Hold(id docid.ID) (h *Handle, release func(), err error) {
	h, err = r.open(id, true)
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	return h, func() { once.Do(func() { r.unpin(h) }) }, nil
}

// waitLoadLocked returns once no load or removal of id is under way.
// Caller holds r.mu, which it releases while it waits.
func (r *Repo) waitLoadLocked(id docid.ID) {
	for {
		wait, loading := r.loading[id]
		if !loading {
			return
		}
		r.mu.Unlock()
		<-wait
		r.mu.Lock()
	}
}

// open is Open, pinning the handle if pin (see Hold).
func (r *Repo) open(id docid.ID, pin bool) (*Handle, error) {
	for {
		r.mu.Lock()
		if h, ok := r.handles[id]; ok {
			r.touchLocked(h, pin)
			r.mu.Unlock()
			return h, nil
		}
		if wait, ok := r.loading[id]; ok {
			// Another caller is loading it: one load, not two racing to
			// quarantine the same damaged chunk.
			r.mu.Unlock()
			<-wait
			continue
		}
		done := make(chan struct{})
		r.loading[id] = done
		r.mu.Unlock()

		h := &Handle{ID: id, repo: r}
		sd, err := h.fetch()
		var counted int64
		if err == nil && pin {
			counted = r.makeRoom(storedMemory(sd))
		}
		if err == nil {
			err = h.build(sd)
		}
		r.mu.Lock()
		delete(r.loading, id)
		r.endLoadLocked(counted)
		if err == nil {
			r.handles[id] = h
			r.addLocked(h, pin)
		}
		r.mu.Unlock()
		close(done)
		if err != nil {
			return nil, err
		}
		r.shrink()
		return h, nil
	}
}

// load (re)reads the document from storage. Caller holds h.mu or owns h.
func (h *Handle) load() error {
	sd, err := h.fetch()
	if err != nil {
		return err
	}
	return h.build(sd)
}

// fetch reads the document's stored form.
func (h *Handle) fetch() (store.Doc, error) {
	sd, err := h.repo.st.LoadDoc(h.ID.String())
	if errors.Is(err, store.ErrNotFound) {
		return sd, fmt.Errorf("%s: %w", h.ID, ErrNotFound)
	}
	if err != nil {
		return sd, fmt.Errorf("load %s: %w", h.ID, err)
	}
	return sd, nil
}

// build makes the document from its stored form sd. Caller holds h.mu or
// owns h.
func (h *Handle) build(sd store.Doc) error {
	r := h.repo
	report := LoadReport{Quarantined: sd.Quarantined}
	doc := crdt.New()
	if sd.Snapshot != nil {
		if d, err := crdt.Load(sd.Snapshot); err == nil {
			doc = d
		} else {
			// The store's checksum passed, so these bytes are what was
			// written: report loudly, keep the chunks.
			r.log.Error("snapshot does not load", "doc", h.ID.String(), "bytes", len(sd.Snapshot), "err", err)
			report.Quarantined = append(report.Quarantined, store.Quarantine{DocID: h.ID.String(), Snapshot: true, Size: len(sd.Snapshot), Reason: err.Error()})
		}
	}
	last := sd.UpTo
	var tail int64
	var tailShape crdt.Shape
	for i, c := range sd.Chunks {
		last = c.Seq
		tail += int64(len(c.Data))
		tailShape = tailShape.Add(shapeOf(c.Data))
		if i == 0 && sd.Snapshot == nil {
			// A document not yet compacted begins with its creation, saved
			// whole (Create). Loaded as a document rather than applied as
			// changes to an empty one, it takes half the memory: Automerge
			// keeps what an incremental load built beside the document.
			if d, err := crdt.Load(c.Data); err == nil {
				doc = d
				continue
			}
		}
		if err := doc.LoadIncremental(c.Data); err != nil {
			reason := "chunk does not apply: " + err.Error()
			r.log.Error("quarantining chunk", "doc", h.ID.String(), "seq", c.Seq, "bytes", len(c.Data))
			if qerr := r.st.Quarantine(context.Background(), h.ID.String(), c.Seq, reason); qerr != nil && !errors.Is(qerr, store.ErrNotFound) {
				return fmt.Errorf("quarantine chunk %d of %s: %w", c.Seq, h.ID, qerr)
			}
			report.Quarantined = append(report.Quarantined, store.Quarantine{DocID: h.ID.String(), Seq: c.Seq, Size: len(c.Data), Reason: reason})
		}
	}
	h.saved = doc.Heads()
	h.doc, h.lastSeq, h.pending, h.report = doc, last, len(sd.Chunks), report
	h.base, h.tail = int64(len(sd.Snapshot)), tail
	h.baseShape, h.tailShape = shapeOf(sd.Snapshot), tailShape
	h.current.Store(doc)
	r.resize(h)
	if len(report.Quarantined) > 0 {
		r.log.Warn("document loaded with quarantined parts", "doc", h.ID.String(), "quarantined", len(report.Quarantined))
	}
	return nil
}

// Change runs fn on the document and returns once whatever fn changed is on
// disk. If fn changes nothing, nothing is stored.
func (h *Handle) Change(ctx context.Context, fn func(doc *crdt.Doc) error) error {
	instead, err := h.lockUnlessEvicted()
	if err != nil {
		return err
	}
	if instead != nil {
		return instead.Change(ctx, fn)
	}
	fnErr := fn(h.doc)
	err = h.persist(ctx)
	h.mu.Unlock()
	h.repo.shrink()
	if err != nil {
		return err
	}
	return fnErr
}

// Try runs fn like Change, but all or nothing: if fn returns an error,
// whatever it changed is thrown away (the document is reloaded from disk)
// and nothing is stored. For changes that must be checked before they are
// kept, such as a peer's.
func (h *Handle) Try(ctx context.Context, fn func(doc *crdt.Doc) error) error {
	instead, err := h.lockUnlessEvicted()
	if err != nil {
		return err
	}
	if instead != nil {
		return instead.Try(ctx, fn)
	}
	defer h.repo.shrink() // after the unlock below: it may evict others
	defer h.mu.Unlock()
	if err := fn(h.doc); err != nil {
		if lerr := h.load(); lerr != nil {
			return fmt.Errorf("%w (and reloading failed: %v)", err, lerr)
		}
		return err
	}
	return h.persist(ctx)
}

// persist stores the changes made since the last persist. Caller holds h.mu.
func (h *Handle) persist(ctx context.Context) error {
	r := h.repo
	heads := h.doc.Heads()
	if crdt.SameHeads(heads, h.saved) {
		return nil
	}
	chunk, err := h.doc.SaveSince(h.saved)
	if err != nil {
		return fmt.Errorf("not saved: %w", err)
	}
	seq, err := r.st.AppendChunk(ctx, h.ID.String(), chunk)
	if err != nil {
		// Drop the unsaved change from memory too, so nothing shows a
		// change that a restart would lose.
		if lerr := h.load(); lerr != nil {
			r.log.Error("reload after failed save", "doc", h.ID.String(), "err", lerr)
		}
		return fmt.Errorf("not saved: %w", err)
	}
	h.saved, h.lastSeq = heads, seq
	h.pending++
	h.tail += int64(len(chunk))
	h.tailShape = h.tailShape.Add(shapeOf(chunk))
	r.resize(h)
	if h.due == 0 {
		h.due = r.compactDue()
	}
	if h.pending >= h.due && !h.queued {
		select {
		case r.compact <- h.ID:
			h.queued = true
		default: // queue full: the next change will offer it again
		}
	}
	if r.opts.OnChange != nil {
		go r.opts.OnChange(h.ID)
	}
	return nil
}

// compactDue draws a document's next compaction point (see
// Options.CompactAfter).
func (r *Repo) compactDue() int {
	n := r.opts.CompactAfter
	return n + rand.IntN(n/2+1)
}

// compactor compacts the documents queued for it, lets go of idle ones
// (Options.IdleAfter) and, for a bounded Repo, runs the Go collector when
// asked (see evict.go). It exits when the Repo
// closes.
func (r *Repo) compactor() {
	defer r.wg.Done()
	var idle <-chan time.Time
	if r.opts.IdleAfter > 0 {
		// A document is let go between IdleAfter and a quarter more after
		// its last use.
		t := time.NewTicker(r.opts.IdleAfter / 4)
		defer t.Stop()
		idle = t.C
	}
	for {
		select {
		case <-r.done:
			return
		case <-r.sweep:
			runtime.GC()
		case <-idle:
			if r.evictIdle(time.Now().Add(-r.opts.IdleAfter)) > 0 {
				r.mu.Lock()
				r.unswept = 0
				r.mu.Unlock()
				runtime.GC()
			}
		case id := <-r.compact:
			// By ID, not handle: the queue must not keep an evicted
			// document in memory. One evicted meanwhile is compacted
			// when it is next due.
			r.mu.Lock()
			h := r.handles[id]
			r.mu.Unlock()
			if h == nil {
				continue
			}
			if err := h.Compact(context.Background()); err != nil {
				r.log.Error("compaction failed", "doc", id.String(), "err", err)
			}
		}
	}
}

// Compact replaces the document's chunks by one snapshot, after checking the
// snapshot reloads to the same heads.
func (h *Handle) Compact(ctx context.Context) error {
	// Take a consistent snapshot under the lock, then verify and store it
	// without holding writers up: chunks appended meanwhile have seqs above
	// upTo and are kept.
	h.mu.Lock()
	h.queued = false
	if h.evicted.Load() {
		// Its chunks are on disk; the next copy loaded compacts them.
		h.mu.Unlock()
		return nil
	}
	snap, heads, upTo, covered, coveredBytes, coveredShape := h.doc.Save(), h.doc.Heads(), h.lastSeq, h.pending, h.tail, h.tailShape
	h.due = h.repo.compactDue()
	h.mu.Unlock()

	// Reloading the snapshot costs more than saving it and nothing waits on
	// it, so it yields the core to the computer's other work.
	var check *crdt.Doc
	var err error
	lowprio.Run(func() { check, err = crdt.Load(snap) })
	if err != nil {
		return fmt.Errorf("snapshot of %s does not reload: %w", h.ID, err)
	}
	if got := check.Heads(); !crdt.SameHeads(got, heads) {
		return fmt.Errorf("snapshot of %s reloads to other heads (%d vs %d)", h.ID, len(got), len(heads))
	}
	if err := h.repo.st.Compact(ctx, h.ID.String(), snap, upTo); err != nil {
		return fmt.Errorf("compact %s: %w", h.ID, err)
	}
	h.mu.Lock()
	h.pending -= covered
	h.base, h.tail = int64(len(snap)), max(h.tail-coveredBytes, 0)
	h.baseShape, h.tailShape = shapeOf(snap), h.tailShape.Sub(coveredShape)
	h.repo.resize(h)
	h.mu.Unlock()
	h.repo.log.Debug("compacted", "doc", h.ID.String(), "bytes", len(snap), "chunks", covered)
	return nil
}

// Remove deletes a document from the store and forgets it here, for a
// device that may keep a document only for a while. The store must delete
// documents (a *store.Store does). A Handle still held elsewhere keeps its
// copy in memory; a change made through it stores the document afresh.
//
// A load of the document under way (an Open by a screen, say) is waited
// for and its handle dropped, and an Open meanwhile waits until the
// deletion is done: before, a load that began first put its copy here
// after the deletion, and the device showed a document it had let go.
func (r *Repo) Remove(ctx context.Context, id docid.ID) error {
	d, ok := r.st.(interface {
		DeleteDoc(context.Context, string) error
	})
	if !ok {
		return errors.New("repo: this store cannot delete documents")
	}
	r.mu.Lock()
	r.waitLoadLocked(id)
	if h := r.handles[id]; h != nil {
		r.unlinkLocked(h)
	}
	delete(r.handles, id)
	done := make(chan struct{})
	r.loading[id] = done // an Open waits for the deletion (see open)
	r.mu.Unlock()
	err := d.DeleteDoc(ctx, id.String())
	r.mu.Lock()
	delete(r.loading, id)
	r.mu.Unlock()
	close(done)
	return err
}
