package crdt

import (
	"bytes"
	"encoding/binary"
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
