// Package crdt is Haven's one adapter over automerge-go: the only package that
// imports it. Callers see documents as trees of plain Go values (string,
// int64, float64, bool, nil, []byte, map[string]any, []any), write them through
// a Change that becomes exactly one Automerge change, and sync them through
// SyncState.
//
// Every method converts panics raised inside automerge-go's Go code into
// errors. Aborts inside the Rust library cannot be caught by Go at all; code
// that feeds untrusted bytes to Load, LoadIncremental or Receive must run
// where a crash costs one worker, not the service (see syncd).
package crdt

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/automerge/automerge-go"
)

// Hash identifies a change (SHA-256 of its bytes).
type Hash [32]byte

func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash reads the hex form of a Hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("change hash %q is not 64 hex digits", s)
	}
	copy(h[:], b)
	return h, nil
}

// Doc is one Automerge document. It is safe for concurrent use: a mutex makes
// each Change, merge and sync step atomic with respect to the others.
type Doc struct {
	mu  sync.Mutex // held for every call into am, so no sync step sees a half-made change
	am  *automerge.Doc
	seq uint64 // creation order; Merge locks two documents in this order
	// heads caches Heads until the next change (nil: not known). Asking
	// Automerge costs a cgo call and a finalizer per hash, and a sync step
	// asks several times.
	heads []Hash
}

// changed forgets the cached heads. Every method that can add changes to am
// defers it while holding mu.
func (d *Doc) changed() { d.heads = nil }

var docs atomic.Uint64

func wrap(am *automerge.Doc) *Doc { return &Doc{am: am, seq: docs.Add(1)} }

// New makes an empty document with a random actor ID.
func New() *Doc { return wrap(automerge.New()) }

// Load reads a document saved by Save or a concatenation of saved changes.
func Load(b []byte) (d *Doc, err error) {
	defer recoverTo(&err, "load")
	am, err := automerge.Load(b)
	if err != nil {
		return nil, fmt.Errorf("load document: %w", err)
	}
	return wrap(am), nil
}

// NewActor returns a fresh random actor ID (hex).
func NewActor() string { return automerge.NewActorID() }

// SetActor sets the actor ID used by later changes. Every writer that can
// make changes concurrently with another needs its own actor ID.
func (d *Doc) SetActor(actor string) (err error) {
	defer recoverTo(&err, "set actor")
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.am.SetActorID(actor)
}

// Actor is the actor ID of this copy.
func (d *Doc) Actor() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.am.ActorID()
}

// Save returns the whole document in compressed form.
func (d *Doc) Save() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.am.Save()
}

// chunkMagic starts a chunk written by SaveSince: the magic, a uvarint
// count, that many 32-byte change hashes, then the changes in Automerge's
// binary form. The hashes let LoadIncremental prove every change applied.
const chunkMagic = "HVC1"

// SaveSince returns the changes made since heads (all changes for nil heads)
// as a chunk for LoadIncremental, or nil when there are none. Unlike
// automerge's SaveIncremental it keeps no hidden state, so a Save elsewhere
// cannot make it skip a change.
func (d *Doc) SaveSince(heads []Hash) (b []byte, err error) {
	defer recoverTo(&err, "save since")
	d.mu.Lock()
	defer d.mu.Unlock()
	chs, err := d.changesSince(heads)
	if err != nil {
		return nil, err
	}
	if len(chs) == 0 {
		return nil, nil
	}
	b = append([]byte(chunkMagic), binary.AppendUvarint(nil, uint64(len(chs)))...)
	for _, c := range chs {
		h := c.Hash()
		b = append(b, h[:]...)
	}
	return append(b, automerge.SaveChanges(chs)...), nil
}

// changesSince returns the changes not in the history of heads (all of
// them for nil heads), in causal order. Caller holds d.mu.
func (d *Doc) changesSince(heads []Hash) ([]*automerge.Change, error) {
	since := make([]automerge.ChangeHash, len(heads))
	for i, h := range heads {
		since[i] = automerge.ChangeHash(h)
	}
	return d.am.Changes(since...)
}

// ChunkChanges returns the hashes of the changes a SaveSince chunk holds,
// read from its header; ok is false for anything else (a whole document
// from Save, or bytes that are not a chunk), whose changes it cannot name.
func ChunkChanges(b []byte) (hashes []Hash, ok bool) {
	if !bytes.HasPrefix(b, []byte(chunkMagic)) {
		return nil, false
	}
	rest := b[len(chunkMagic):]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > uint64(len(rest)-k)/32 {
		return nil, false
	}
	rest = rest[k:]
	hashes = make([]Hash, n)
	for i := range hashes {
		copy(hashes[i][:], rest[i*32:])
	}
	return hashes, true
}

// ErrIncomplete reports a chunk whose changes did not all apply.
var ErrIncomplete = errors.New("chunk did not apply whole")

// LoadIncremental applies a chunk from SaveSince, or a whole document from
// Save. It is strict: damaged or truncated bytes are an error, never a
// partial load reported as success. (automerge's own load_incremental on a
// non-empty document keeps what parses before a fault and silently drops the
// rest.) A SaveSince chunk whose changes depend on changes this document
// lacks also fails with ErrIncomplete; its changes wait inside the document
// and apply when the missing ones arrive.
func (d *Doc) LoadIncremental(b []byte) (err error) {
	defer recoverTo(&err, "load incremental")
	if !bytes.HasPrefix(b, []byte(chunkMagic)) {
		whole, err := automerge.Load(b)
		if err != nil {
			return err
		}
		d.mu.Lock()
		defer d.mu.Unlock()
		defer d.changed()
		_, err = d.am.Merge(whole)
		return err
	}
	rest := b[len(chunkMagic):]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > uint64(len(rest))/32 {
		return fmt.Errorf("%w: bad header", ErrIncomplete)
	}
	rest = rest[k:]
	hashes, raw := rest[:n*32], rest[n*32:]
	d.mu.Lock()
	defer d.mu.Unlock()
	defer d.changed()
	if err := d.am.LoadIncremental(raw); err != nil {
		return err
	}
	missing := 0
	for i := 0; i < int(n); i++ {
		var h automerge.ChangeHash
		copy(h[:], hashes[i*32:])
		if _, err := d.am.Change(h); err != nil {
			missing++
		}
	}
	if missing > 0 {
		return fmt.Errorf("%w: %d of %d changes missing", ErrIncomplete, missing, n)
	}
	return nil
}

// Heads are the hashes of the changes nothing else depends on yet, sorted.
func (d *Doc) Heads() []Hash {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.headsLocked())
}

// headsLocked is Heads, not copied. Caller holds d.mu.
func (d *Doc) headsLocked() []Hash {
	if d.heads == nil {
		d.heads = sortHashes(d.am.Heads())
	}
	return d.heads
}

func sortHashes(hs []automerge.ChangeHash) []Hash {
	out := make([]Hash, len(hs))
	for i, h := range hs {
		out[i] = Hash(h)
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i][:]) < string(out[j][:]) })
	return out
}

// SameHeads reports whether two head sets are equal.
func SameHeads(a, b []Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// Fork returns an independent copy with a new actor ID.
func (d *Doc) Fork() (f *Doc, err error) {
	defer recoverTo(&err, "fork")
	d.mu.Lock()
	defer d.mu.Unlock()
	am, err := d.am.Fork()
	if err != nil {
		return nil, err
	}
	return wrap(am), nil
}

// At returns an independent copy of the document as it stood at heads
// (every change they depend on, nothing after), to read what it held then.
func (d *Doc) At(heads []Hash) (f *Doc, err error) {
	defer recoverTo(&err, "fork at heads")
	d.mu.Lock()
	defer d.mu.Unlock()
	hs := make([]automerge.ChangeHash, len(heads))
	for i, h := range heads {
		hs[i] = automerge.ChangeHash(h)
	}
	if len(hs) == 0 {
		return wrap(automerge.New()), nil
	}
	am, err := d.am.Fork(hs...)
	if err != nil {
		return nil, err
	}
	return wrap(am), nil
}

// Merge applies every change of o that d lacks.
func (d *Doc) Merge(o *Doc) (err error) {
	defer recoverTo(&err, "merge")
	if d == o {
		return nil
	}
	// Lock in a fixed order so two merges in opposite directions cannot deadlock.
	first, second := d, o
	if first.seq > second.seq {
		first, second = second, first
	}
	first.mu.Lock()
	defer first.mu.Unlock()
	second.mu.Lock()
	defer second.mu.Unlock()
	defer d.changed()
	_, err = d.am.Merge(o.am)
	return err
}

// ChangeInfo describes one change in a document's history.
type ChangeInfo struct {
	Hash    Hash
	Actor   string
	Seq     uint64
	Time    time.Time
	Message string
	Deps    []Hash
}

// ChangesFrom lists the changes made at or after t, newest first, found by
// walking back from the heads and stopping at each change made before t:
// the cost follows the recent changes, not the whole history. Times are
// the authors' clocks, so a change made before t on a clock that ran
// fast may hide older ones behind it; each is read once.
func (d *Doc) ChangesFrom(t time.Time) (out []ChangeInfo, err error) {
	defer recoverTo(&err, "changes from")
	d.mu.Lock()
	defer d.mu.Unlock()
	seen := map[automerge.ChangeHash]bool{}
	stack := d.am.Heads()
	for len(stack) > 0 {
		h := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[h] {
			continue
		}
		seen[h] = true
		c, err := d.am.Change(h)
		if err != nil {
			return nil, err
		}
		if c.Timestamp().Before(t) {
			continue
		}
		out = append(out, ChangeInfo{Hash: Hash(h), Actor: c.ActorID(), Seq: c.ActorSeq(), Time: c.Timestamp(),
			Message: c.Message(), Deps: sortHashes(c.Dependencies())})
		stack = append(stack, c.Dependencies()...)
	}
	slices.SortFunc(out, func(a, b ChangeInfo) int { return b.Time.Compare(a.Time) })
	return out, nil
}

// HeadsTime is the time of the newest change at the heads (its author's
// clock); zero for a document with none.
func (d *Doc) HeadsTime() (t time.Time) {
	defer func() {
		if recover() != nil {
			t = time.Time{}
		}
	}()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, h := range d.am.Heads() {
		if c, err := d.am.Change(h); err == nil && c.Timestamp().After(t) {
			t = c.Timestamp()
		}
	}
	return t
}

// Changes lists the document's history in causal order.
func (d *Doc) Changes() (out []ChangeInfo, err error) { return d.ChangesAfter(nil) }

// ChangesAfter lists, in causal order, the changes not in the history of
// heads: whatever arrived since the document stood at heads, however old
// its authors' clocks say it is (all of them for nil heads).
func (d *Doc) ChangesAfter(heads []Hash) (out []ChangeInfo, err error) {
	defer recoverTo(&err, "changes")
	d.mu.Lock()
	defer d.mu.Unlock()
	chs, err := d.changesSince(heads)
	if err != nil {
		return nil, err
	}
	out = make([]ChangeInfo, len(chs))
	for i, c := range chs {
		out[i] = ChangeInfo{
			Hash:    Hash(c.Hash()),
			Actor:   c.ActorID(),
			Seq:     c.ActorSeq(),
			Time:    c.Timestamp(),
			Message: c.Message(),
			Deps:    sortHashes(c.Dependencies()),
		}
	}
	return out, nil
}

// ErrNoChange is returned by Change when fn wrote nothing.
var ErrNoChange = errors.New("nothing changed")

// Change runs fn and commits everything it writes as exactly one Automerge
// change carrying message and time at. fn must check its input before it
// writes: automerge-go cannot roll back, so a write made before fn returns an
// error is committed with that error reported (never silently half-kept).
func (d *Doc) Change(message string, at time.Time, fn func(w *Writer) error) (h Hash, err error) {
	defer recoverTo(&err, "change")
	d.mu.Lock()
	defer d.mu.Unlock()
	defer d.changed()
	w := &Writer{am: d.am}
	fnErr := fn(w)
	if w.writes == 0 {
		if fnErr != nil {
			return h, fnErr
		}
		return h, ErrNoChange
	}
	if at.IsZero() {
		at = time.Now()
	}
	ch, err := d.am.Commit(message, automerge.CommitOptions{Time: &at})
	if err != nil {
		return h, fmt.Errorf("commit: %w", err)
	}
	if fnErr != nil {
		return Hash(ch), fmt.Errorf("change partly written: %w", fnErr)
	}
	return Hash(ch), nil
}

// Writer edits a document inside Change. Paths are map keys from the root.
type Writer struct {
	am     *automerge.Doc
	writes int
}

// Set puts v at path. Maps and slices become new Automerge objects, so Set a
// container only where no other copy can create the same one concurrently:
// two maps created at one key on two devices do not merge, one hides the other.
func (w *Writer) Set(v any, path ...string) error {
	if len(path) == 0 {
		return errors.New("set: empty path")
	}
	parent, err := w.existingMap(path[:len(path)-1])
	if err != nil {
		return err
	}
	if err := parent.Set(path[len(path)-1], plain(v)); err != nil {
		return fmt.Errorf("set %v: %w", path, err)
	}
	w.writes++
	return nil
}

// Delete removes the key at path; a missing key is not an error.
func (w *Writer) Delete(path ...string) error {
	if len(path) == 0 {
		return errors.New("delete: empty path")
	}
	parent, err := w.existingMap(path[:len(path)-1])
	if err != nil {
		return err
	}
	if v, err := parent.Get(path[len(path)-1]); err != nil || v.Kind() == automerge.KindVoid {
		return err
	}
	if err := parent.Delete(path[len(path)-1]); err != nil {
		return fmt.Errorf("delete %v: %w", path, err)
	}
	w.writes++
	return nil
}

// EnsureMap creates an empty map at path if nothing is there. Only for
// containers the caller alone can be creating (see Set).
func (w *Writer) EnsureMap(path ...string) error {
	parent, err := w.existingMap(path[:len(path)-1])
	if err != nil {
		return err
	}
	v, err := parent.Get(path[len(path)-1])
	if err != nil {
		return err
	}
	switch v.Kind() {
	case automerge.KindMap:
		return nil
	case automerge.KindVoid:
		return w.Set(map[string]any{}, path...)
	}
	return fmt.Errorf("ensure map %v: holds a %v", path, v.Kind())
}

func (w *Writer) existingMap(path []string) (*automerge.Map, error) {
	m := w.am.RootMap()
	for i, k := range path {
		v, err := m.Get(k)
		if err != nil {
			return nil, err
		}
		if v.Kind() != automerge.KindMap {
			return nil, fmt.Errorf("%v is not a map (%v)", path[:i+1], v.Kind())
		}
		m = v.Map()
	}
	return m, nil
}

// plain converts ints of every width to int64, which automerge-go expects.
func plain(v any) any {
	switch x := v.(type) {
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = s
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = plain(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	}
	return v
}

// Get reads the value at path as plain Go values; ok is false when absent.
func (d *Doc) Get(path ...string) (v any, ok bool, err error) {
	defer recoverTo(&err, "get")
	d.mu.Lock()
	defer d.mu.Unlock()
	cur := d.am.Root()
	for _, k := range path {
		if cur.Kind() != automerge.KindMap {
			return nil, false, nil
		}
		cur, err = cur.Map().Get(k)
		if err != nil {
			return nil, false, err
		}
		if cur.Kind() == automerge.KindVoid {
			return nil, false, nil
		}
	}
	v, err = toPlain(cur)
	return v, err == nil, err
}

// Root reads the whole document as a plain tree.
func (d *Doc) Root() (map[string]any, error) {
	v, _, err := d.Get()
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	return m, nil
}

// toPlain walks an Automerge value. Text reads as a string and a counter as
// its int64, so documents written by JavaScript clients read the same.
func toPlain(v *automerge.Value) (any, error) {
	switch v.Kind() {
	case automerge.KindMap:
		vals, err := v.Map().Values()
		if err != nil {
			return nil, err
		}
		out := make(map[string]any, len(vals))
		for k, e := range vals {
			p, err := toPlain(e)
			if err != nil {
				return nil, err
			}
			out[k] = p
		}
		return out, nil
	case automerge.KindList:
		vals, err := v.List().Values()
		if err != nil {
			return nil, err
		}
		out := make([]any, len(vals))
		for i, e := range vals {
			p, err := toPlain(e)
			if err != nil {
				return nil, err
			}
			out[i] = p
		}
		return out, nil
	case automerge.KindText:
		return v.Text().Get()
	case automerge.KindCounter:
		return v.Counter().Get()
	case automerge.KindStr:
		return v.Str(), nil
	case automerge.KindInt64:
		return v.Int64(), nil
	case automerge.KindUint64:
		return int64(v.Uint64()), nil
	case automerge.KindFloat64:
		return v.Float64(), nil
	case automerge.KindBool:
		return v.Bool(), nil
	case automerge.KindBytes:
		return v.Bytes(), nil
	case automerge.KindTime:
		return v.Time().UTC().Format(time.RFC3339Nano), nil
	}
	return nil, nil // null, void and kinds from future versions read as absent
}

// recoverTo turns a panic inside automerge-go's Go code into an error.
func recoverTo(err *error, op string) {
	if r := recover(); r != nil {
		*err = fmt.Errorf("automerge %s: %v", op, r)
	}
}

// RawChangesSince returns the changes not in the history of heads (all of
// them for nil heads), in causal order, each as the bytes DecodeChange
// reads.
func (d *Doc) RawChangesSince(heads []Hash) (out [][]byte, err error) {
	defer recoverTo(&err, "changes since")
	d.mu.Lock()
	defer d.mu.Unlock()
	chs, err := d.changesSince(heads)
	if err != nil {
		return nil, err
	}
	out = make([][]byte, len(chs))
	for i, c := range chs {
		out[i] = c.Save()
	}
	return out, nil
}

// ApplyChanges applies raw changes (as RawChangesSince returns them), as a
// sync message's changes are applied. Changes whose dependencies are
// missing wait inside the document.
func (d *Doc) ApplyChanges(raws ...[]byte) (err error) {
	defer recoverTo(&err, "apply changes")
	d.mu.Lock()
	defer d.mu.Unlock()
	defer d.changed()
	return d.am.LoadIncremental(bytes.Join(raws, nil))
}

// HasChange reports whether the document holds (has applied) the change.
func (d *Doc) HasChange(h Hash) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	d.mu.Lock()
	defer d.mu.Unlock()
	_, err := d.am.Change(automerge.ChangeHash(h))
	return err == nil
}
