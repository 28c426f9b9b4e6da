package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Doc is a stored document as LoadDoc found it.
type Doc struct {
	// Snapshot is the last snapshot stored by Compact, or nil.
	Snapshot []byte
	// UpTo is the seq of the last chunk the snapshot includes (0 without a snapshot).
	UpTo uint64
	// Chunks are the chunks stored since, in seq order.
	Chunks []Chunk
	// Quarantined lists every item of this document ever quarantined, including any this
	// LoadDoc call just moved there. The caller should treat the document as incomplete
	// until a peer has supplied what was lost.
	Quarantined []Quarantine
}

// Chunk is one incremental chunk of a document.
type Chunk struct {
	Seq  uint64
	Data []byte
}

// Quarantine describes a chunk or snapshot that was taken out of its document because it was
// damaged or unusable. The bytes themselves are kept on disk for inspection.
type Quarantine struct {
	DocID    string
	Seq      uint64 // the chunk's seq; 0 for a snapshot
	Snapshot bool
	Size     int // bytes as found, store frame included; 0 if Badger could not read them
	Reason   string
	Time     time.Time
}

// quarantineRecord is the JSON stored under a q/ key.
type quarantineRecord struct {
	Seq      uint64    `json:"seq,omitempty"`
	Snapshot bool      `json:"snapshot,omitempty"`
	Size     int       `json:"size"`
	Reason   string    `json:"reason"`
	Time     time.Time `json:"time"`
}

// AppendChunk stores chunk as the next incremental chunk of docID and returns its sequence
// number. Numbers increase per document and are never reused, across Compact and reopening.
// It returns only once the chunk is synced to disk; concurrent calls share one sync. If ctx
// ends while the chunk is still queued, nothing is written and ctx's error is returned; once
// the chunk is being written the call waits for the outcome.
func (s *Store) AppendChunk(ctx context.Context, docID string, chunk []byte) (uint64, error) {
	if err := checkName("document ID", docID); err != nil {
		return 0, err
	}
	if err := checkSize(len(chunk)); err != nil {
		return 0, err
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.active.Done()
	val := encodeFrame(chunk)
	var seq uint64
	err := s.write(ctx, len(val), func(b *batch) ([]mutation, error) {
		n, err := b.nextDocSeq(docID)
		if err != nil {
			return nil, err
		}
		seq = n
		return []mutation{
			{key: chunkKey(docID, n), val: val},
			{key: docMetaKey(docID), val: putUint64(n)},
		}, nil
	})
	if err != nil {
		return 0, err
	}
	return seq, nil
}

// suspect is a damaged item LoadDoc found.
type suspect struct {
	seq      uint64 // chunk seq; unused for the snapshot
	snapshot bool
	reason   string
}

// LoadDoc returns docID's snapshot and the chunks stored after it. A chunk or snapshot that
// fails its length/checksum check, or that Badger cannot read, is moved durably to quarantine
// before LoadDoc returns and is listed in Doc.Quarantined; the rest of the document loads.
// It returns ErrNotFound if nothing at all is stored for docID.
func (s *Store) LoadDoc(docID string) (Doc, error) {
	if err := checkName("document ID", docID); err != nil {
		return Doc{}, err
	}
	if err := s.enter(); err != nil {
		return Doc{}, err
	}
	defer s.active.Done()

	// Normally one pass. After quarantining, read again: that returns the document as it now
	// stands (a concurrent Compact may have changed it) with the new quarantine records.
	for attempt := 0; ; attempt++ {
		doc, found, suspects, err := s.readDoc(docID)
		if err != nil {
			return Doc{}, err
		}
		if len(suspects) == 0 {
			if !found && len(doc.Quarantined) == 0 {
				return Doc{}, ErrNotFound
			}
			return doc, nil
		}
		if attempt == 2 {
			return Doc{}, fmt.Errorf("store: document %s: %d damaged items could not be quarantined", docID, len(suspects))
		}
		if err := s.quarantineSuspects(docID, suspects); err != nil {
			return Doc{}, fmt.Errorf("quarantine damaged data: %w", err)
		}
	}
}

// readDoc reads docID in one view. found reports a snapshot or chunk, sound or not; suspects
// are the damaged ones, left out of doc.
func (s *Store) readDoc(docID string) (doc Doc, found bool, suspects []suspect, err error) {
	err = s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(snapshotKey(docID))
		switch {
		case errors.Is(err, badger.ErrKeyNotFound):
		case err != nil:
			return err
		default:
			found = true
			if raw, err := item.ValueCopy(nil); err != nil {
				suspects = append(suspects, suspect{snapshot: true, reason: unreadable(err)})
			} else if upTo, snap, err := decodeSnapshot(raw); err != nil {
				suspects = append(suspects, suspect{snapshot: true, reason: err.Error()})
			} else {
				doc.Snapshot, doc.UpTo = snap, upTo
			}
		}

		it := txn.NewIterator(badger.IteratorOptions{
			Prefix: chunkPrefix(docID), PrefetchValues: true, PrefetchSize: 64,
		})
		for it.Rewind(); it.Valid(); it.Next() {
			found = true
			item := it.Item()
			seq := seqSuffix(item.Key())
			if raw, err := item.ValueCopy(nil); err != nil {
				suspects = append(suspects, suspect{seq: seq, reason: unreadable(err)})
			} else if data, err := decodeFrame(raw); err != nil {
				suspects = append(suspects, suspect{seq: seq, reason: err.Error()})
			} else {
				doc.Chunks = append(doc.Chunks, Chunk{Seq: seq, Data: data})
			}
		}
		it.Close()

		doc.Quarantined = readQuarantine(txn, quarantinePrefix(docID))
		return nil
	})
	return doc, found, suspects, err
}

func unreadable(err error) string { return "unreadable: " + err.Error() }

// quarantineSuspects moves what LoadDoc found damaged to quarantine, durably. Each item is
// checked again inside the write transaction and moved only if it is still damaged: a
// concurrent Compact may have replaced the snapshot or removed the chunk meanwhile.
func (s *Store) quarantineSuspects(docID string, suspects []suspect) error {
	var moved []Quarantine
	err := s.write(context.Background(), 0, func(b *batch) ([]mutation, error) {
		moved = moved[:0]
		var muts []mutation
		now := time.Now().UTC()
		for _, sp := range suspects {
			key := chunkKey(docID, sp.seq)
			if sp.snapshot {
				key = snapshotKey(docID)
			}
			raw, found, err := b.get(key)
			if !found {
				if err != nil {
					return nil, err
				}
				continue // gone since LoadDoc read it
			}
			reason := sp.reason
			if err != nil {
				raw, reason = nil, unreadable(err)
			} else {
				var derr error
				if sp.snapshot {
					_, _, derr = decodeSnapshot(raw)
				} else {
					_, derr = decodeFrame(raw)
				}
				if derr == nil {
					continue // replaced by a sound value since LoadDoc read it
				}
				reason = derr.Error()
			}
			q := Quarantine{DocID: docID, Seq: sp.seq, Snapshot: sp.snapshot, Size: len(raw), Reason: reason, Time: now}
			m, err := quarantineMutations(b, key, raw, q)
			if err != nil {
				return nil, err
			}
			muts = append(muts, m...)
			moved = append(moved, q)
		}
		return muts, nil
	})
	if err != nil {
		return err
	}
	for _, q := range moved {
		s.log.Warn("quarantined damaged data", "doc", q.DocID, "seq", q.Seq, "snapshot", q.Snapshot,
			"size", q.Size, "reason", q.Reason)
	}
	return nil
}

// quarantineMutations returns the mutations that move the value at key (raw, nil if
// unreadable) to quarantine as q. A chunk keeps its seq as quarantine id; a snapshot takes a
// fresh number from the document's sequence, which is also recorded in the doc meta key.
func quarantineMutations(b *batch, key, raw []byte, q Quarantine) ([]mutation, error) {
	id := q.Seq
	var muts []mutation
	if q.Snapshot {
		n, err := b.nextDocSeq(q.DocID)
		if err != nil {
			return nil, err
		}
		id = n
		muts = append(muts, mutation{key: docMetaKey(q.DocID), val: putUint64(n)})
	}
	rec, err := json.Marshal(quarantineRecord{Seq: q.Seq, Snapshot: q.Snapshot, Size: q.Size, Reason: q.Reason, Time: q.Time})
	if err != nil {
		return nil, err
	}
	muts = append(muts,
		mutation{key: quarantineKey(q.DocID, id), val: encodeFrame(rec)},
		mutation{key: key, del: true})
	if raw != nil {
		muts = append(muts, mutation{key: quarantineDataKey(q.DocID, id), val: raw})
	}
	return muts, nil
}

// readQuarantine lists the quarantine records under prefix. A damaged record is still listed,
// with what its key tells.
func readQuarantine(txn *badger.Txn, prefix []byte) []Quarantine {
	var out []Quarantine
	it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 16})
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		q := Quarantine{DocID: nameOfSeqKey(item.Key()), Seq: seqSuffix(item.Key())}
		var rec quarantineRecord
		raw, err := item.ValueCopy(nil)
		if err == nil {
			var p []byte
			if p, err = decodeFrame(raw); err == nil {
				err = json.Unmarshal(p, &rec)
			}
		}
		if err != nil {
			q.Reason = "quarantine record damaged: " + err.Error()
		} else {
			q.Seq, q.Snapshot, q.Size, q.Reason, q.Time = rec.Seq, rec.Snapshot, rec.Size, rec.Reason, rec.Time
		}
		out = append(out, q)
	}
	return out
}

// Quarantine moves chunk seq of docID to quarantine with the caller's reason, durably: for a
// chunk that passes the store's checks but that the caller cannot use. LoadDoc no longer
// returns it and lists it in Doc.Quarantined. ErrNotFound if there is no such chunk.
func (s *Store) Quarantine(ctx context.Context, docID string, seq uint64, reason string) error {
	return s.quarantine(ctx, docID, seq, false, reason)
}

// QuarantineSnapshot is Quarantine for docID's snapshot. The chunks after it still load.
func (s *Store) QuarantineSnapshot(ctx context.Context, docID, reason string) error {
	return s.quarantine(ctx, docID, 0, true, reason)
}

func (s *Store) quarantine(ctx context.Context, docID string, seq uint64, snapshot bool, reason string) error {
	if err := checkName("document ID", docID); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	key := chunkKey(docID, seq)
	if snapshot {
		key = snapshotKey(docID)
	}
	var q Quarantine
	err := s.write(ctx, 0, func(b *batch) ([]mutation, error) {
		raw, found, err := b.get(key)
		if !found {
			if err != nil {
				return nil, err
			}
			return nil, ErrNotFound
		}
		if err != nil {
			raw = nil
		}
		q = Quarantine{DocID: docID, Seq: seq, Snapshot: snapshot, Size: len(raw), Reason: reason, Time: time.Now().UTC()}
		return quarantineMutations(b, key, raw, q)
	})
	if err != nil {
		return err
	}
	s.log.Warn("quarantined at caller's request", "doc", docID, "seq", seq, "snapshot", snapshot, "size", q.Size)
	return nil
}

// Quarantined lists every quarantined item of every document, by document and then in the
// order they were quarantined.
func (s *Store) Quarantined() ([]Quarantine, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.active.Done()
	var out []Quarantine
	err := s.db.View(func(txn *badger.Txn) error {
		out = readQuarantine(txn, allQuarantinePrefix)
		return nil
	})
	return out, err
}

// Compact makes snapshot the stored snapshot of docID, covering every chunk up to and
// including seq upTo, and deletes those chunks: one transaction, synced before it returns.
// The caller must have checked that snapshot loads to the same document as the snapshot and
// chunks it replaces. Chunks appended after upTo are kept. Compact with upTo 0 stores a first
// snapshot (for instance one received from a peer) without touching chunks.
//
// It fails with ErrStale if the stored snapshot covers more than upTo (another compaction got
// there first; this snapshot would lose chunks), and with an error if upTo is beyond the last
// chunk ever appended. A stored snapshot that is damaged is quarantined, not overwritten.
func (s *Store) Compact(ctx context.Context, docID string, snapshot []byte, upTo uint64) error {
	if err := checkName("document ID", docID); err != nil {
		return err
	}
	if err := checkSize(seqLen + len(snapshot)); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	val := encodeSnapshot(upTo, snapshot)
	var deleted int
	err := s.write(ctx, len(val), func(b *batch) ([]mutation, error) {
		deleted = 0
		last, err := b.lastDocSeq(docID)
		if err != nil {
			return nil, err
		}
		if upTo > last {
			return nil, fmt.Errorf("store: compaction up to chunk %d, but the last chunk is %d", upTo, last)
		}
		var muts []mutation
		key := snapshotKey(docID)
		raw, found, rerr := b.get(key)
		if !found && rerr != nil {
			return nil, rerr
		}
		if found {
			reason := ""
			if rerr != nil {
				raw, reason = nil, unreadable(rerr)
			} else if old, _, err := decodeSnapshot(raw); err != nil {
				reason = err.Error()
			} else if upTo < old {
				return nil, fmt.Errorf("%w: it covers chunks up to %d, the stored one up to %d", ErrStale, upTo, old)
			}
			if reason != "" {
				q := Quarantine{DocID: docID, Snapshot: true, Size: len(raw), Reason: reason, Time: time.Now().UTC()}
				m, err := quarantineMutations(b, key, raw, q)
				if err != nil {
					return nil, err
				}
				muts = append(muts, m...) // its delete of key is overridden by the set below
			}
		}
		prefix := chunkPrefix(docID)
		it := b.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if seqSuffix(k) > upTo {
				break
			}
			muts = append(muts, mutation{key: k, del: true})
			deleted++
		}
		it.Close()
		last, _ = b.lastDocSeq(docID) // may have moved if the old snapshot was quarantined
		return append(muts,
			mutation{key: key, val: val},
			mutation{key: docMetaKey(docID), val: putUint64(last)}), nil
	})
	if err != nil {
		return err
	}
	s.log.Debug("compacted", "doc", docID, "up_to", upTo, "chunks_deleted", deleted, "snapshot_bytes", len(snapshot))
	return nil
}

// Docs returns the IDs of all stored documents, in byte order.
func (s *Store) Docs() ([]string, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.active.Done()
	var ids []string
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: allDocMetaPrefix})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			ids = append(ids, string(it.Item().Key()[len(allDocMetaPrefix):]))
		}
		return nil
	})
	return ids, err
}

// DocStats reports how many chunks docID has and their total size, and the snapshot's size,
// in payload bytes, so a caller can decide when to Compact. Sizes of values kept in Badger's
// value log are close estimates. ErrNotFound if the document was never stored.
func (s *Store) DocStats(docID string) (chunks int, chunkBytes int64, snapshotBytes int64, err error) {
	if err := checkName("document ID", docID); err != nil {
		return 0, 0, 0, err
	}
	if err := s.enter(); err != nil {
		return 0, 0, 0, err
	}
	defer s.active.Done()
	found := false
	err = s.db.View(func(txn *badger.Txn) error {
		if _, err := txn.Get(docMetaKey(docID)); err == nil {
			found = true
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		if item, err := txn.Get(snapshotKey(docID)); err == nil {
			found = true
			snapshotBytes = max(0, item.ValueSize()-frameHeaderSize-seqLen)
		} else if !errors.Is(err, badger.ErrKeyNotFound) {
			return err
		}
		it := txn.NewIterator(badger.IteratorOptions{Prefix: chunkPrefix(docID)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			found = true
			chunks++
			chunkBytes += max(0, it.Item().ValueSize()-frameHeaderSize)
		}
		return nil
	})
	if err != nil {
		return 0, 0, 0, err
	}
	if !found {
		return 0, 0, 0, ErrNotFound
	}
	return chunks, chunkBytes, snapshotBytes, nil
}

// DeleteDoc removes a document for good: its chunks, snapshot, quarantined
// pieces and every peer's sync state for it, in one durable write. A device
// that may keep a record only for a while (the advice line) deletes it
// when the while is over; nothing else deletes documents.
func (s *Store) DeleteDoc(ctx context.Context, docID string) error {
	if err := checkName("document ID", docID); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	return s.write(ctx, 0, func(b *batch) ([]mutation, error) {
		muts := []mutation{{key: docMetaKey(docID), del: true}, {key: snapshotKey(docID), del: true}}
		each := func(prefix []byte, keep func(key []byte) bool) {
			it := b.txn.NewIterator(badger.IteratorOptions{Prefix: prefix})
			defer it.Close()
			for it.Rewind(); it.Valid(); it.Next() {
				if k := it.Item().KeyCopy(nil); keep(k) {
					muts = append(muts, mutation{key: k, del: true})
				}
			}
		}
		all := func([]byte) bool { return true }
		each(chunkPrefix(docID), all)
		each(quarantinePrefix(docID), all)
		each(prefix('r', docID), all)
		suffix := append([]byte{0}, docID...)
		each([]byte("s/"), func(k []byte) bool { return bytes.HasSuffix(k, suffix) })
		delete(b.s.docSeq, docID)
		return muts, nil
	})
}
