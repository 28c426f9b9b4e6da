package repo

import (
	"container/list"

	"haven/shared/crdt"
	"haven/shared/docid"
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

// lru is a Repo's account of its open documents; guarded by Repo.mu.
type lru struct {
	order   list.List // of *Handle: every handle in Repo.handles, most recently opened first
	bytes   int64     // the estimated memory of the handles in order (use.mem)
	unswept int64     // estimated memory evicted since the collector was last asked to run
	hooks   []func(docid.ID, *crdt.Doc)
}

// use is a handle's part in its Repo's lru; guarded by Repo.mu.
type use struct {
	elem *list.Element // in lru.order; nil when not counted (evicted, removed)
	pins int           // Holds not yet released: not evicted while above zero
	mem  int64         // estimated memory, counted in lru.bytes while elem is set
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

// docMemory estimates the memory a document takes once loaded from saved
// bytes holding shape.
func docMemory(saved int64, shape crdt.Shape) int64 {
	return memPerDoc + memPerChange*shape.Changes + memPerOp*shape.Ops + memPerSavedByte*saved
}

// shapeOf counts the changes and operations in saved bytes for docMemory.
// Bytes it cannot read count as far as it read: they came from the store,
// which checked them, and the estimate falls back on their size.
func shapeOf(b []byte) crdt.Shape {
	s, _ := crdt.ShapeOf(b)
	return s
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
	r.bytes += h.mem
	if pin {
		h.pins++
	}
}

// touchLocked makes an open handle the most recently used, pinned if pin.
// Caller holds r.mu.
func (r *Repo) touchLocked(h *Handle, pin bool) {
	if h.elem != nil {
		r.order.MoveToFront(h.elem)
	}
	if pin {
		h.pins++
	}
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
	r.mu.Unlock()
	r.shrink()
}

// shrink evicts documents, least recently used first, until the open ones
// fit the bound. It passes over the most recently used (its caller is about
// to work on it), pinned ones (Hold) and any whose lock is taken: being
// changed, compacted or reloaded. So the bound may be exceeded while those
// are busy, by their size at most.
func (r *Repo) shrink() {
	if r.opts.MaxBytes <= 0 {
		return
	}
	type gone struct {
		id  docid.ID
		doc *crdt.Doc
	}
	var evicted []gone
	r.mu.Lock()
	for e := r.order.Back(); e != nil && e != r.order.Front() && r.bytes > r.opts.MaxBytes; {
		prev := e.Prev()
		h := e.Value.(*Handle)
		// TryLock under r.mu: the handle's lock is otherwise taken before
		// r.mu (resize), never after, so waiting here could deadlock.
		if h.pins == 0 && h.mu.TryLock() {
			h.evicted.Store(true)
			delete(r.handles, h.ID)
			r.unlinkLocked(h)
			r.unswept += h.mem
			evicted = append(evicted, gone{h.ID, h.doc})
			h.mu.Unlock()
		}
		e = prev
	}
	hooks := r.hooks
	sweep := r.unswept > r.opts.MaxBytes/4
	if sweep {
		r.unswept = 0
	}
	r.mu.Unlock()
	for _, g := range evicted {
		r.log.Debug("document evicted", "doc", g.id.String())
		for _, fn := range hooks {
			fn(g.id, g.doc)
		}
	}
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
