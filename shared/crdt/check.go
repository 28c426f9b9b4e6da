package crdt

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformedSync is wrapped by CheckSyncMessage's errors.
var ErrMalformedSync = errors.New("malformed sync message")

// Limits on what a sync message may declare, far above what Automerge
// produces (it uses 10 bits per entry and 7 probes) but low enough that a
// hostile message cannot make the library loop or allocate without bound.
const (
	maxHashes       = 1 << 16
	maxBloomEntries = 1 << 22
	maxBloomBits    = 64
	maxBloomProbes  = 64
)

var changeMagic = [4]byte{0x85, 0x6f, 0x4a, 0x83}

// CheckSyncMessage parses a sync message in Go before Automerge sees it:
// the structure (type byte, head, need and have hash lists, Bloom filters
// whose declared sizes match their bytes) and every change it carries,
// decoded whole (DecodeChange: magic bytes, length, the SHA-256 checksum
// Automerge writes into each change, and every operation column, each
// actor an operation names among those the change lists). automerge-go
// aborts the whole process on some malformed messages, and a checksum is
// no defence against a crafted change: a change whose operation names an
// actor index the change does not list has a valid checksum and panics
// Automerge 0.5 as it applies the change (import_ops indexes the change's
// actors unchecked). This turns such messages into a plain error. What
// only Automerge can judge (a change well formed but wrong for the
// document) it still judges: callers that take messages from the network
// run it where a crash costs one worker.
func CheckSyncMessage(b []byte) error {
	r := reader{b: b}
	if t, ok := r.byte(); !ok || t != 0x42 {
		return fmt.Errorf("%w: not a sync message", ErrMalformedSync)
	}
	if err := r.hashes("heads"); err != nil {
		return err
	}
	if err := r.hashes("need"); err != nil {
		return err
	}
	haves, ok := r.uleb()
	if !ok || haves > maxHashes {
		return fmt.Errorf("%w: have count", ErrMalformedSync)
	}
	for i := uint64(0); i < haves; i++ {
		if err := r.hashes("have"); err != nil {
			return err
		}
		bloom, ok := r.bytes()
		if !ok {
			return fmt.Errorf("%w: bloom filter truncated", ErrMalformedSync)
		}
		if err := checkBloom(bloom); err != nil {
			return err
		}
	}
	changes, ok := r.uleb()
	if !ok || changes > uint64(len(b)) {
		return fmt.Errorf("%w: change count", ErrMalformedSync)
	}
	for i := uint64(0); i < changes; i++ {
		raw, ok := r.bytes()
		if !ok {
			return fmt.Errorf("%w: change %d truncated", ErrMalformedSync, i)
		}
		if _, err := DecodeChange(raw); err != nil {
			return fmt.Errorf("%w: change %d: %v", ErrMalformedSync, i, err)
		}
	}
	// Automerge 3 (JavaScript) appends its capabilities: a count, then one
	// byte each. Older versions, automerge-go's included, ignore them.
	if r.off < len(b) {
		n, ok := r.uleb()
		if !ok || n != uint64(len(b)-r.off) {
			return fmt.Errorf("%w: %d bytes after the message", ErrMalformedSync, len(b)-r.off)
		}
	}
	return nil
}

func checkBloom(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	r := reader{b: b}
	entries, ok1 := r.uleb()
	bits, ok2 := r.uleb()
	probes, ok3 := r.uleb()
	if !ok1 || !ok2 || !ok3 || entries > maxBloomEntries || bits > maxBloomBits || probes > maxBloomProbes {
		return fmt.Errorf("%w: bloom filter parameters", ErrMalformedSync)
	}
	want := (entries*bits + 7) / 8
	if entries > 0 && (bits == 0 || probes == 0) {
		return fmt.Errorf("%w: empty bloom filter with entries", ErrMalformedSync)
	}
	if uint64(len(b)-r.off) != want {
		return fmt.Errorf("%w: bloom filter holds %d bytes, declares %d", ErrMalformedSync, len(b)-r.off, want)
	}
	return nil
}

type reader struct {
	b   []byte
	off int
}

func (r *reader) byte() (byte, bool) {
	if r.off >= len(r.b) {
		return 0, false
	}
	r.off++
	return r.b[r.off-1], true
}

func (r *reader) uleb() (uint64, bool) {
	v, n := binary.Uvarint(r.b[r.off:])
	if n <= 0 {
		return 0, false
	}
	r.off += n
	return v, true
}

func (r *reader) bytes() ([]byte, bool) {
	n, ok := r.uleb()
	if !ok || n > uint64(len(r.b)-r.off) {
		return nil, false
	}
	out := r.b[r.off : r.off+int(n)]
	r.off += int(n)
	return out, true
}

func (r *reader) hashes(what string) error {
	n, ok := r.uleb()
	if !ok || n > maxHashes || n*32 > uint64(len(r.b)-r.off) {
		return fmt.Errorf("%w: %s hashes", ErrMalformedSync, what)
	}
	r.off += int(n) * 32
	return nil
}

// KnowsShared reports whether the sender of sync message b shows that it
// already knows its receiver holds heads: one of the message's "have"
// entries (Automerge builds them on the last heads the two sides were
// known to share) covers them. A peer whose message shows that needs no
// word that the two agree; one whose message does not (a reconnect after
// the confirmation was lost, an exchange begun afresh) does. A malformed
// message reports false.
func KnowsShared(b []byte, heads []Hash) bool {
	knows := false
	readHaves(b, func(lastSync []Hash) bool {
		knows = Covers(lastSync, heads)
		return knows
	})
	return knows
}

// SettledAck reports whether sync message b says no more than that its
// sender holds exactly heads and knows its receiver holds them too: its
// heads are heads, it needs nothing, its one "have" entry names heads as
// last shared and no change since, it carries no change, and nothing
// follows but its sender's capabilities. Such a message is how a peer
// confirms a change it was sent; Automerge, given it, only brings its
// record of the peer up to date (all to the same record, whichever peer
// sent it), and a later message from the same peer says as much again. A
// malformed message, or heads empty, reports false.
func SettledAck(b []byte, heads []Hash) bool {
	theirs, ok := AckedHeads(b)
	return ok && len(heads) > 0 && sameSet(theirs, heads)
}

// AckedHeads returns the heads sync message b confirms, if it has a
// settled acknowledgement's form (SettledAck) for them.
func AckedHeads(b []byte) ([]Hash, bool) {
	r := reader{b: b}
	if t, ok := r.byte(); !ok || t != 0x42 {
		return nil, false
	}
	heads, ok := r.hashList()
	if !ok || len(heads) == 0 {
		return nil, false
	}
	if need, ok := r.uleb(); !ok || need != 0 {
		return nil, false
	}
	if haves, ok := r.uleb(); !ok || haves != 1 {
		return nil, false
	}
	lastSync, ok := r.hashList()
	if !ok || !sameSet(lastSync, heads) {
		return nil, false
	}
	if bloom, ok := r.bytes(); !ok || len(bloom) != 0 {
		return nil, false
	}
	if changes, ok := r.uleb(); !ok || changes != 0 {
		return nil, false
	}
	if r.off < len(b) {
		// The sender's capabilities (see CheckSyncMessage): Automerge 3
		// says them in every message; they change nothing here.
		n, ok := r.uleb()
		if !ok || n != uint64(len(b)-r.off) {
			return nil, false
		}
	}
	return heads, true
}

// HoldsExactly reports whether sync message b says no more than that its
// sender holds exactly heads: its heads are heads, it needs nothing, and it
// carries no change. Its "have" entries, whatever they are, only tell the
// receiver what the sender has, which the heads already say. A receiver
// that holds exactly heads too has nothing to send such a sender; it need
// only tell it that the two agree (HeadsMessage), unless the message shows
// the sender knows (KnowsShared). A device offering a document on connecting
// says this of every document it has not changed since it last synced. A
// malformed message, or heads empty, reports false.
func HoldsExactly(b []byte, heads []Hash) bool {
	r := reader{b: b}
	if t, ok := r.byte(); !ok || t != 0x42 {
		return false
	}
	theirs, ok := r.hashList()
	if !ok || len(heads) == 0 || !sameSet(theirs, heads) {
		return false
	}
	if need, ok := r.uleb(); !ok || need != 0 {
		return false
	}
	_, end, changes, ok := changesSection(b)
	if !ok || changes != 0 {
		return false
	}
	if end < len(b) {
		// The sender's capabilities, as in AckedHeads.
		r := reader{b: b, off: end}
		n, ok := r.uleb()
		if !ok || n != uint64(len(b)-r.off) {
			return false
		}
	}
	return true
}

// sameSet reports whether a and b hold the same hashes.
func sameSet(a, b []Hash) bool {
	return len(a) == len(b) && Covers(a, b) && Covers(b, a)
}

// readHaves reads a sync message up to its changes, calling each for the
// last-sync heads of every "have" entry until it returns true. It returns
// where the reading stopped (where the change count begins, if each never
// stopped it), and false for a malformed message.
func readHaves(b []byte, each func(lastSync []Hash) bool) (int, bool) {
	r := reader{b: b}
	if t, ok := r.byte(); !ok || t != 0x42 {
		return 0, false
	}
	if r.hashes("heads") != nil || r.hashes("need") != nil {
		return 0, false
	}
	haves, ok := r.uleb()
	if !ok || haves > maxHashes {
		return 0, false
	}
	for i := uint64(0); i < haves; i++ {
		lastSync, ok := r.hashList()
		if !ok {
			return 0, false
		}
		if _, ok := r.bytes(); !ok { // the Bloom filter
			return 0, false
		}
		if each != nil && each(lastSync) {
			return r.off, true
		}
	}
	return r.off, true
}

func (r *reader) hashList() ([]Hash, bool) {
	n, ok := r.uleb()
	if !ok || n > maxHashes || n*32 > uint64(len(r.b)-r.off) {
		return nil, false
	}
	out := make([]Hash, n)
	for i := range out {
		copy(out[i][:], r.b[r.off:r.off+32])
		r.off += 32
	}
	return out, true
}

// SyncMessageChanges returns the changes a sync message carries, each as
// the bytes DecodeChange reads, or an error for a malformed message.
func SyncMessageChanges(b []byte) ([][]byte, error) {
	off, ok := readHaves(b, nil)
	if !ok {
		return nil, fmt.Errorf("%w: before its changes", ErrMalformedSync)
	}
	r := reader{b: b, off: off}
	n, ok := r.uleb()
	if !ok || n > uint64(len(b)) {
		return nil, fmt.Errorf("%w: change count", ErrMalformedSync)
	}
	out := make([][]byte, 0, n)
	for i := uint64(0); i < n; i++ {
		raw, ok := r.bytes()
		if !ok {
			return nil, fmt.Errorf("%w: change %d truncated", ErrMalformedSync, i)
		}
		out = append(out, raw)
	}
	return out, nil
}

// CountChanges is how many changes a sync message carries (0 for a
// malformed one, which the workers refuse): cheap enough for a read loop.
func CountChanges(b []byte) int {
	off, ok := readHaves(b, nil)
	if !ok {
		return 0
	}
	r := reader{b: b, off: off}
	n, ok := r.uleb()
	if !ok || n > uint64(len(b)) {
		return 0
	}
	return int(n)
}
