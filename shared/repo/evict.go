package repo

import (
	"container/list"
	"runtime"
	"sync"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/store"
)

// Eviction: a bounded Repo (Options.MaxBytes) lets go of documents nobody is
// working on, least recently opened first, and loads them again from the
// store on their next Open.
//
// Nothing is lost by it. A change is stored, durably, before Change, Try or
// Create returns (persist), and a document being changed is locked (h.mu),
// so one with a change not yet stored is never evicted: an evicted document
// has nothing in memory its store does not hold. Nor can two copies of one
// document diverge: an evicted handle still held somewhere is marked so
// (Handle.evicted), and every call on it goes to the document's handle
// now, loading it again if need be.
//
// automerge-go frees a document's Rust memory only from a Go finalizer (on
// the result that owns it); there is no explicit free. So the memory comes
// back once nothing refers to the document any more (this Repo, and whoever
// keeps state tied to it: they hear of the eviction through OnEvict and let
// go too) and the Go collector has run. The Go heap is small next to what
// Automerge holds in C, so the collector seldom runs of its own accord; the
// compactor's goroutine runs it after every quarter of the bound evicted
// (Repo.sweep). A collection costs in proportion to the Go heap, a few
// milliseconds here, not to what it frees.
//
// The bound holds while documents are worked on, not only between calls. A
// document being loaded for a Hold counts for what its load takes
// (loadingCopies), and the load waits until the documents held and being
// loaded leave room for it beside them (makeRoom): otherwise each call in
// flight would add a whole document, and its load's working memory, over
// the bound, which is where a worker's memory peaked. Documents nobody is
// working on are evicted for it first, and collected before it loads. Only
// loads for a Hold wait, and only for other documents held or loading,
// whose holders (one document each) are not waiting for anything the
// waiter has; so a document larger than the bound on its own still loads.
//
// The bound caps memory; Options.IdleAfter keeps it to the working set
// below the cap. A document nobody has opened or held for that long is let
// go as if evicted for room (evictIdle), by the compactor's goroutine, so a
// relay holds what its devices are syncing now, not every document it
// touched since it started. The order of use is the order of the last Open
// or Hold, so the idle documents are the tail of it; one held for longer
// than IdleAfter is passed over while held and goes at the next look after
// its release.

// lru is a Repo's account of its open documents; guarded by Repo.mu.
type lru struct {
	order   list.List // of *Handle: every handle in Repo.handles, most recently opened first
	bytes   int64     // the estimated memory of the handles in order (use.mem)
	unswept int64     // estimated memory evicted since the collector was last asked to run
	hooks   []func(docid.ID, *crdt.Doc)
	// loads is what the documents being loaded for a Hold will take while
	// they load (loadingCopies each); busy counts those loads and the
	// handles held (pins above zero). room is signalled, on Repo.mu, as
	// busy falls: a Hold waiting for room to load (makeRoom) looks again.
	loads int64
	busy  int
	room  sync.Cond
}

// use is a handle's part in its Repo's lru; guarded by Repo.mu.
type use struct {
	elem *list.Element // in lru.order; nil when not counted (evicted, removed)
	pins int           // Holds not yet released: not evicted while above zero
	mem  int64         // estimated memory, counted in lru.bytes while elem is set
	// used is when the handle was last opened (or held: Hold opens);
	// lru.order runs from the latest to the earliest of it.
	used time.Time
}

// Estimating a document's memory. Automerge keeps every change whole in
// the document's history (its bytes uncompressed, its hash, its place in
// the change graph) and every operation in its op set, so a loaded
// document's memory follows its changes and operations; its saved size
// does not, since a save compresses a long history of small changes well
// (a record of 2,000 care-plan updates saves to 21 KB and takes 6 MB). The
// constants are fitted to TestDocMemoryEstimate's documents, which cover
// Haven's shapes (new and long-lived records, timelines, one change of
// thousands of operations, uncompacted chunks); it checks the estimate
// stays within a factor of two of each one measured. The term per saved
// byte covers large values (a long note), which the counts do not see.
const (
	memPerDoc       = 8 << 10
	memPerChange    = 1500
	memPerOp        = 500
	memPerSavedByte = 8
)

// loadingCopies is how many times its estimate a document being loaded
// counts in the bound: the document it builds; Automerge's working memory
// for the build (a quarter of the document more, for a long record), freed
// once it is built; and the memory of the documents evicted to make room,
// which their finalizers free while the load runs.
const loadingCopies = 2

// docMemory estimates the memory a document takes once loaded from saved
// bytes holding shape.
func docMemory(saved int64, shape crdt.Shape) int64 {
	return memPerDoc + memPerChange*shape.Changes + memPerOp*shape.Ops + memPerSavedByte*saved
}

// storedMemory estimates the memory a document takes once loaded from sd.
func storedMemory(sd store.Doc) int64 {
	saved, shape := int64(len(sd.Snapshot)), shapeOf(sd.Snapshot)
	for _, c := range sd.Chunks {
		saved += int64(len(c.Data))
		shape = shape.Add(shapeOf(c.Data))
	}
	return docMemory(saved, shape)
}

// shapeOf counts the changes and operations in saved bytes for docMemory.
// Bytes it cannot read count as far as it read: they came from the store,
// which checked them, and the estimate falls back on their size.
func shapeOf(b []byte) crdt.Shape {
	s, _ := crdt.ShapeOf(b)
	return s
}

// Resident reports whether the repo holds the document in memory now (not
// merely being loaded): whether working on it would cost no load.
func (r *Repo) Resident(id docid.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.handles[id]
	return ok
}

// OnEvict adds fn to what is called after a document is evicted, with the
// document object let go: whoever keeps state tied to that object (a sync
// state, say) drops it, so the memory can come back. fn is called outside
// the Repo's locks and must not block for long.
func (r *Repo) OnEvict(fn func(id docid.ID, doc *crdt.Doc)) {
	r.mu.Lock()
	r.hooks = append(r.hooks, fn)
	r.mu.Unlock()
}

// Usage reports how many documents are open and their estimated memory in
// bytes (see Options.MaxBytes).
func (r *Repo) Usage() (docs int, bytes int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.order.Len(), r.bytes
}

// addLocked counts a handle just put in r.handles as the most recently
// used, pinned if pin. Caller holds r.mu.
func (r *Repo) addLocked(h *Handle, pin bool) {
	h.elem = r.order.PushFront(h)
	h.used = time.Now()
	r.bytes += h.mem
	if pin {
		r.pinLocked(h)
	}
}

// touchLocked makes an open handle the most recently used, pinned if pin.
// Caller holds r.mu.
func (r *Repo) touchLocked(h *Handle, pin bool) {
	if h.elem != nil {
		r.order.MoveToFront(h.elem)
		h.used = time.Now()
	}
	if pin {
		r.pinLocked(h)
	}
}

// pinLocked adds a Hold to h. Caller holds r.mu.
func (r *Repo) pinLocked(h *Handle) {
	if h.pins == 0 {
		r.busy++
	}
	h.pins++
}

// unlinkLocked stops counting a handle taken out of r.handles. Caller
// holds r.mu.
func (r *Repo) unlinkLocked(h *Handle) {
	if h.elem != nil {
		r.order.Remove(h.elem)
		h.elem = nil
		r.bytes -= h.mem
	}
}

// resize estimates h's memory again after what it was saved as changed.
// Caller holds h.mu (or owns h).
func (r *Repo) resize(h *Handle) {
	mem := docMemory(h.base+h.tail, h.baseShape.Add(h.tailShape))
	r.mu.Lock()
	if h.elem != nil {
		r.bytes += mem - h.mem
	}
	h.mem = mem
	r.mu.Unlock()
}

// unpin ends a Hold, evicting if the held document kept the Repo over its
// bound.
func (r *Repo) unpin(h *Handle) {
	r.mu.Lock()
	h.pins--
	if h.pins == 0 {
		r.busy--
		r.room.Broadcast()
	}
	r.mu.Unlock()
	r.shrink()
}

// makeRoom is called before a document estimated at est bytes is loaded
// for a Hold. It evicts documents nobody is working on, least recently used
// first, until the document fits the bound loading (loadingCopies), beside
// the documents open and those being loaded; while it does not fit and
// other documents are held or loading, it waits for them. It then counts
// the load in the bound, returning what it counted, for endLoadLocked.
// If it evicted anything, the collector runs before it returns, so that the
// evicted documents' memory is free before the load takes more. Unbounded,
// it returns 0 at once.
func (r *Repo) makeRoom(est int64) int64 {
	if r.opts.MaxBytes <= 0 {
		return 0
	}
	need := loadingCopies * est
	evicted := false
	r.mu.Lock()
	for {
		if gone := r.evictLocked(need, false); len(gone) > 0 {
			r.mu.Unlock()
			r.letGo(gone)
			evicted = true
			r.mu.Lock()
			continue // what the hooks let go is counted already; look again
		}
		if r.bytes+r.loads+need <= r.opts.MaxBytes || r.busy == 0 {
			break
		}
		r.room.Wait()
	}
	r.loads += need
	r.busy++
	if evicted {
		r.unswept = 0
	}
	r.mu.Unlock()
	if evicted {
		runtime.GC()
	}
	return need
}

// endLoadLocked ends the count of a load makeRoom admitted (counted: what
// it returned; 0 for none). Caller holds r.mu.
func (r *Repo) endLoadLocked(counted int64) {
	if counted == 0 {
		return
	}
	r.loads -= counted
	r.busy--
	r.room.Broadcast()
}

// evicted is a document let go by evictLocked, for letGo.
type evicted struct {
	id  docid.ID
	doc *crdt.Doc
}

// evictLocked evicts documents, least recently used first, until the open
// ones and those being loaded fit the bound with need bytes more. It
// passes over pinned ones (Hold), any whose lock is taken (being changed,
// compacted or reloaded) and, if spareFront, the most recently used.
// Caller holds r.mu, and calls letGo with the result once it has let go.
func (r *Repo) evictLocked(need int64, spareFront bool) []evicted {
	var gone []evicted
	for e := r.order.Back(); e != nil && r.bytes+r.loads+need > r.opts.MaxBytes; {
		if spareFront && e == r.order.Front() {
			break
		}
		prev := e.Prev()
		h := e.Value.(*Handle)
		if g, ok := r.tryEvictLocked(h); ok {
			gone = append(gone, g)
		}
		e = prev
	}
	return gone
}

// tryEvictLocked evicts h unless it is pinned (Hold) or its lock is taken
// (being changed, compacted or reloaded). Caller holds r.mu, and calls
// letGo with what it evicted once it has let go.
func (r *Repo) tryEvictLocked(h *Handle) (evicted, bool) {
	// TryLock under r.mu: the handle's lock is otherwise taken before r.mu
	// (resize), never after, so waiting here could deadlock.
	if h.pins > 0 || !h.mu.TryLock() {
		return evicted{}, false
	}
	defer h.mu.Unlock()
	h.evicted.Store(true)
	delete(r.handles, h.ID)
	r.unlinkLocked(h)
	r.unswept += h.mem
	return evicted{h.ID, h.doc}, true
}

// evictIdle evicts the documents nobody has opened or held since before
// cutoff, passing over those pinned or locked, and reports how many it
// let go.
func (r *Repo) evictIdle(cutoff time.Time) int {
	var gone []evicted
	r.mu.Lock()
	for e := r.order.Back(); e != nil; {
		prev := e.Prev()
		h := e.Value.(*Handle)
		if !h.used.Before(cutoff) {
			break // the rest were used later still
		}
		if g, ok := r.tryEvictLocked(h); ok {
			gone = append(gone, g)
		}
		e = prev
	}
	r.mu.Unlock()
	r.letGo(gone)
	return len(gone)
}

// letGo tells the OnEvict hooks of documents evictLocked let go. Caller
// holds no lock.
func (r *Repo) letGo(gone []evicted) {
	r.mu.Lock()
	hooks := r.hooks
	r.mu.Unlock()
	for _, g := range gone {
		r.log.Debug("document evicted", "doc", g.id.String())
		for _, fn := range hooks {
			fn(g.id, g.doc)
		}
	}
}

// shrink evicts documents, least recently used first, until the open ones
// and those being loaded fit the bound. It passes over the most recently
// used (its caller is about to work on it), pinned ones (Hold) and any
// whose lock is taken: being changed, compacted or reloaded. So the bound
// may be exceeded while those are busy, by their size at most.
func (r *Repo) shrink() {
	if r.opts.MaxBytes <= 0 {
		return
	}
	r.mu.Lock()
	gone := r.evictLocked(0, true)
	sweep := r.unswept > r.opts.MaxBytes/4
	if sweep {
		r.unswept = 0
	}
	r.mu.Unlock()
	r.letGo(gone)
	if sweep {
		select {
		case r.sweep <- struct{}{}:
		default: // one is due already
		}
	}
}

// live returns the handle to use in h's place if h was evicted: the
// document's handle now (loaded again if need be). ok is false when h is
// to be used itself.
func (h *Handle) live() (live *Handle, ok bool) {
	if !h.evicted.Load() {
		return nil, false
	}
	live, err := h.repo.Open(h.ID)
	if err != nil {
		h.repo.log.Warn("evicted document does not open again", "doc", h.ID.String(), "err", err)
		return nil, false
	}
	return live, true
}

// lockUnlessEvicted locks h for a write, unless h was evicted: then it
// returns the document's handle now, unlocked, for the caller to use
// instead.
func (h *Handle) lockUnlessEvicted() (instead *Handle, err error) {
	h.mu.Lock()
	if !h.evicted.Load() {
		return nil, nil
	}
	h.mu.Unlock()
	return h.repo.Open(h.ID)
}
