package store

import "encoding/binary"

// Key layout.
//
// Every key starts with a one-letter keyspace and '/'. Names (document, peer, namespace and log
// IDs) may hold any byte but 0x00, which ends them wherever something follows, so no name's
// keys are a prefix of another name's. Numbers are 8-byte big-endian, so key order is numeric
// order and a prefix scan returns chunks and log entries in sequence.
//
//	m/<doc>                 last sequence number handed out for <doc> (8 bytes). Written with
//	                        every chunk; one per document ever stored, which is what Docs lists.
//	c/<doc> 00 <seq>        chunk <seq> of <doc>: frame(chunk).
//	p/<doc>                 the snapshot of <doc>: frame(upTo (8 bytes) + snapshot), where upTo
//	                        is the last chunk it includes.
//	q/<doc> 00 <id>         a quarantined chunk or snapshot: frame(JSON quarantineRecord).
//	                        <id> is the chunk's seq, or for a snapshot a fresh number taken from
//	                        the document's sequence, so ids never collide.
//	r/<doc> 00 <id>         the quarantined bytes exactly as found (no frame; absent if Badger
//	                        could not read them). Kept apart so listing quarantine stays cheap.
//	s/<peer> 00 <doc>       sync state of <peer> for <doc>: frame(state).
//	k/<ns> 00 <key>         key/value: frame(value). <key> is any bytes.
//	l/<log> 00 <seq>        log entry <seq>: frame(value). Never rewritten or deleted, so the
//	                        last key holds the log's last seq.
//	h/<log> 00 <seq>        chained log entry <seq>: frame(link of entry seq-1 + value); see
//	                        chain.go. Never rewritten or deleted.
//	w/mark                  the number of transactions ever committed (8 bytes), written in
//	                        each; mirrored, after each commit, in the file HAVEN-MARK (see mark.go).
//
// Frames are described in frame.go. Everything here is encrypted by Badger.

// maxNameLen bounds names so keys stay small (Badger's limit is 65000 bytes per key).
const maxNameLen = 512

const seqLen = 8

func docMetaKey(doc string) []byte  { return key2('m', doc) }
func snapshotKey(doc string) []byte { return key2('p', doc) }

func chunkPrefix(doc string) []byte { return prefix('c', doc) }
func chunkKey(doc string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(chunkPrefix(doc), seq)
}

func quarantinePrefix(doc string) []byte { return prefix('q', doc) }
func quarantineKey(doc string, id uint64) []byte {
	return binary.BigEndian.AppendUint64(quarantinePrefix(doc), id)
}
func quarantineDataKey(doc string, id uint64) []byte {
	return binary.BigEndian.AppendUint64(prefix('r', doc), id)
}

func syncStatePrefix(peer string) []byte { return prefix('s', peer) }
func syncStateKey(peer, doc string) []byte {
	return append(syncStatePrefix(peer), doc...)
}

func kvPrefix(ns string) []byte   { return prefix('k', ns) }
func kvKey(ns, key string) []byte { return append(kvPrefix(ns), key...) }
func logPrefix(log string) []byte { return prefix('l', log) }
func logKey(log string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(logPrefix(log), seq)
}

// Prefixes of whole keyspaces, for listings.
var (
	allDocMetaPrefix    = []byte("m/")
	allQuarantinePrefix = []byte("q/")
)

func key2(space byte, name string) []byte {
	k := make([]byte, 0, 2+len(name))
	k = append(k, space, '/')
	return append(k, name...)
}

func prefix(space byte, name string) []byte {
	k := make([]byte, 0, 3+len(name)+seqLen)
	k = append(k, space, '/')
	k = append(k, name...)
	return append(k, 0)
}

// seqSuffix reads the trailing 8-byte number of a c/, q/ or l/ key.
func seqSuffix(key []byte) uint64 {
	if len(key) < seqLen {
		return 0
	}
	return binary.BigEndian.Uint64(key[len(key)-seqLen:])
}

// nameOfSeqKey returns the name inside a "x/<name> 00 <8 bytes>" key.
func nameOfSeqKey(key []byte) string {
	if len(key) < 2+1+seqLen {
		return ""
	}
	return string(key[2 : len(key)-1-seqLen])
}

func putUint64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }
