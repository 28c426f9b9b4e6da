package crdt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// A sync message, in both of Automerge's versions: a type byte (syncV1 or
// syncV2), then uleb128-counted lists of head hashes, needed hashes, "have"
// entries (last-sync hashes and a Bloom filter each) and length-prefixed
// change chunks. Since automerge 0.5.12 a message may end with one more
// length-prefixed section, its sender's capabilities: first a list of
// capability bytes (capV1, capV2), later capV2 followed by a flag byte
// with its high bit set. Older readers, automerge-go's among them, ignore
// the section; newer ones take any chunk of a message to Automerge's
// load_incremental, which reads a whole saved document as well as changes.
// A version 2 message is laid out as version 1; it is how a sender that
// has seen capV2 from its peer may put the whole document, compressed, in
// place of its changes.
const (
	syncV1 = 0x42
	syncV2 = 0x43
	capV2  = 0x02
)

// readsWholeDocuments reports whether sync message b ends with a
// capabilities section that names capV2: its sender reads version 2
// messages. A malformed message reports false.
func readsWholeDocuments(b []byte) bool {
	_, end, _, ok := changesSection(b)
	if !ok || end == len(b) {
		return false
	}
	r := reader{b: b, off: end}
	caps, ok := r.bytes()
	return ok && bytes.IndexByte(caps, capV2) >= 0
}

// changesSection finds the n change chunks of version 1 sync message b:
// from where their count begins to just past the last one.
func changesSection(b []byte) (start, end int, n uint64, ok bool) {
	start, ok = changesOffset(b)
	if !ok {
		return 0, 0, 0, false
	}
	r := reader{b: b, off: start}
	n, ok = r.uleb()
	if !ok || n > uint64(len(b)) {
		return 0, 0, 0, false
	}
	for range n {
		if _, ok := r.bytes(); !ok {
			return 0, 0, 0, false
		}
	}
	return start, r.off, n, true
}

// asWholeDocument rewrites version 1 sync message msg as a version 2
// message carrying saved (a whole document in Automerge's save format) as
// its one chunk, in place of any changes, with the same heads and need. It
// writes no haves: they would tell a peer what to send back, and a peer
// that holds nothing has nothing to send; it would only check every change
// of the document against their Bloom filter. Nor does it write a
// capabilities section: a peer that saw one would send version 2 messages
// back, which automerge-go cannot read. ok is false, and msg returned as
// it was, for a message that does not parse.
func asWholeDocument(msg, saved []byte) (out []byte, ok bool) {
	start, _, ok := haveSection(msg)
	if !ok || len(saved) == 0 {
		return msg, false
	}
	out = make([]byte, 0, start+1+2*binary.MaxVarintLen64+len(saved))
	out = append(out, syncV2)
	out = append(out, msg[1:start]...)
	out = append(out, 0) // no haves
	out = binary.AppendUvarint(out, 1)
	out = binary.AppendUvarint(out, uint64(len(saved)))
	return append(out, saved...), true
}

// namesNoHeads reports whether sync message b announces no heads: its
// sender holds nothing of the document.
func namesNoHeads(b []byte) bool {
	if len(b) < 2 {
		return false
	}
	r := reader{b: b, off: 1}
	n, ok := r.uleb()
	return ok && n == 0
}

// withoutHaves returns a copy of version 1 sync message b with no "have"
// entries, and true; or b and false if it does not parse.
func withoutHaves(b []byte) ([]byte, bool) {
	start, end, ok := haveSection(b)
	if !ok {
		return b, false
	}
	out := make([]byte, 0, start+1+len(b)-end)
	out = append(out, b[:start]...)
	out = append(out, 0) // no haves
	return append(out, b[end:]...), true
}

// haveSection finds the "have" entries of version 1 sync message b: from
// where their count begins to where the changes' count begins.
func haveSection(b []byte) (start, end int, ok bool) {
	end, ok = changesOffset(b) // also checks the type byte
	if !ok {
		return 0, 0, false
	}
	r := reader{b: b, off: 1}
	if r.hashes("heads") != nil || r.hashes("need") != nil {
		return 0, 0, false
	}
	return r.off, end, true
}

// AsksForWhole reports whether sync message b is the word of a peer that
// holds nothing of a document and reads whole documents: no heads, no
// need, no changes, and capabilities naming version 2. Such a peer's
// answer is the whole document (SyncState.Receive), which WholeAnswer
// builds from the bytes stored, without Automerge.
func AsksForWhole(b []byte) bool {
	if !namesNoHeads(b) || !readsWholeDocuments(b) {
		return false
	}
	r := reader{b: b, off: 1}
	if r.hashes("heads") != nil {
		return false
	}
	need, ok := r.uleb()
	_, _, changes, whole := changesSection(b)
	return ok && need == 0 && whole && changes == 0
}

// WholeAnswer is the answer to a peer that asks for the whole document
// (AsksForWhole), made from the document as stored: a saved document (nil
// if none) and the chunks of changes stored after it, in order. The
// message is the one SyncState makes for such a peer: the document's
// heads, and the stored bytes as its one chunk, which Automerge loads as
// it loads a saved document. The heads are read from the bytes (those the
// saved document names, and each change's hash, less every change's
// dependencies), so Automerge is not needed; an error says the bytes are
// not Automerge's chunks, or hold nothing.
func WholeAnswer(snapshot []byte, chunks [][]byte) (msg []byte, heads []Hash, err error) {
	stored, err := joinStored(snapshot, chunks)
	if err != nil {
		return nil, nil, err
	}
	if heads, err = storedHeads(stored); err != nil {
		return nil, nil, err
	}
	msg = make([]byte, 0, 8+len(heads)*32+binary.MaxVarintLen64+len(stored))
	msg = append(msg, syncV2)
	msg = binary.AppendUvarint(msg, uint64(len(heads)))
	for _, h := range heads {
		msg = append(msg, h[:]...)
	}
	msg = append(msg, 0, 0) // no need, no haves (see asWholeDocument)
	msg = binary.AppendUvarint(msg, 1)
	msg = binary.AppendUvarint(msg, uint64(len(stored)))
	return append(msg, stored...), heads, nil
}

// StoredHeads reads the heads of a document as stored (a saved document,
// nil if none, and the chunks of changes stored after it, in order)
// without Automerge, as WholeAnswer does: a relay that only needs to know
// whether a peer holds what it holds need not load the document for it.
func StoredHeads(snapshot []byte, chunks [][]byte) ([]Hash, error) {
	stored, err := joinStored(snapshot, chunks)
	if err != nil {
		return nil, err
	}
	return storedHeads(stored)
}

// joinStored is a document as stored, as Automerge's chunks one after
// another: the saved document, then each chunk's changes (automergeBytes).
func joinStored(snapshot []byte, chunks [][]byte) ([]byte, error) {
	size := len(snapshot)
	for _, c := range chunks {
		size += len(c)
	}
	stored := make([]byte, 0, size)
	stored = append(stored, snapshot...)
	for _, c := range chunks {
		raw, err := automergeBytes(c)
		if err != nil {
			return nil, err
		}
		stored = append(stored, raw...)
	}
	return stored, nil
}

// automergeBytes is a stored chunk as Automerge reads it: a SaveSince
// chunk without the header that lists its changes' hashes, or a saved
// document as it is.
func automergeBytes(chunk []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(chunk, []byte(chunkMagic))
	if !ok {
		return chunk, nil
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k)/32 {
		return nil, badChange("stored chunk's header")
	}
	return rest[k+int(n)*32:], nil
}

// ErrHistoryNotStored says that a change stored depends on one that is not:
// stored bytes lost to damage (a chunk quarantined), or a change that
// depends on one inside the saved document other than its heads, which
// the saved document does not name. The heads the bytes show are then not
// the document's, or cannot be told without Automerge.
var ErrHistoryNotStored = errors.New("crdt: a stored change depends on a change not stored")

// storedHeads reads the heads of b, Automerge chunks one after another: a
// saved document's (type 0: its heads, after its actors) and changes
// (types 1 and 2: each change's hash and dependencies). Sorted, as Heads.
// Every change's dependencies must be among the saved document's heads
// and the changes (ErrHistoryNotStored): heads read from a history with a
// hole in it would be those of changes Automerge cannot apply.
func storedHeads(b []byte) ([]Hash, error) {
	heads := map[Hash]bool{}
	stored := map[Hash]bool{}
	var deps []Hash
	for off := 0; off < len(b); {
		r := reader{b: b, off: off + 8}
		if len(b)-off < 10 || [4]byte(b[off:off+4]) != changeMagic {
			return nil, badChange("stored bytes at %d are not an Automerge chunk", off)
		}
		typ, _ := r.byte()
		n, ok := r.uleb()
		if !ok || n > uint64(len(b)-r.off) {
			return nil, badChange("stored chunk at %d is cut short", off)
		}
		end := r.off + int(n)
		switch typ {
		case 0: // a saved document: its actors, then its heads
			body := reader{b: b[:end], off: r.off}
			actors, ok := body.uleb()
			if !ok || actors > uint64(n) {
				return nil, badChange("saved document's actors")
			}
			for range actors {
				if _, ok := body.bytes(); !ok {
					return nil, badChange("saved document's actors")
				}
			}
			hs, ok := body.hashList()
			if !ok {
				return nil, badChange("saved document's heads")
			}
			for _, h := range hs {
				heads[h], stored[h] = true, true
			}
		case 1, 2:
			c, err := DecodeChange(b[off:end])
			if err != nil {
				return nil, err
			}
			heads[c.Hash], stored[c.Hash] = true, true
			deps = append(deps, c.Deps...)
		default:
			return nil, badChange("stored chunk type %d", typ)
		}
		off = end
	}
	for _, d := range deps {
		if !stored[d] {
			return nil, fmt.Errorf("%w: %x", ErrHistoryNotStored, d[:4])
		}
		delete(heads, d)
	}
	if len(heads) == 0 {
		return nil, badChange("nothing stored")
	}
	out := make([]Hash, 0, len(heads))
	for h := range heads {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i][:]) < string(out[j][:]) })
	return out, nil
}
