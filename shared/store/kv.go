package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/dgraph-io/badger/v4"
)

// Sync states: one opaque state per (peer, document), for the sync engine.

// PutSyncState stores state as peerID's sync state for docID, replacing any earlier one. It is
// durable on return, and batched with other writes like everything else.
func (s *Store) PutSyncState(ctx context.Context, peerID, docID string, state []byte) error {
	if err := checkName("peer ID", peerID); err != nil {
		return err
	}
	if err := checkName("document ID", docID); err != nil {
		return err
	}
	if err := checkSize(len(state)); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	val := encodeFrame(state)
	return s.write(ctx, len(val), set(syncStateKey(peerID, docID), val))
}

// SyncState returns peerID's sync state for docID, or ErrNotFound. A damaged state gives an
// error matching ErrCorrupt; the caller can start that peer afresh.
func (s *Store) SyncState(peerID, docID string) ([]byte, error) {
	if err := checkName("peer ID", peerID); err != nil {
		return nil, err
	}
	if err := checkName("document ID", docID); err != nil {
		return nil, err
	}
	return s.getFramed(syncStateKey(peerID, docID))
}

// DeleteSyncStates deletes every sync state of peerID, durably. States written while it runs
// may survive.
func (s *Store) DeleteSyncStates(peerID string) error {
	if err := checkName("peer ID", peerID); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	var keys [][]byte
	err := s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: syncStatePrefix(peerID)})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Deleting is idempotent, so large sets may go in several transactions.
	for len(keys) > 0 {
		n := min(len(keys), 1000)
		if err := s.write(context.Background(), 0, del(keys[:n]...)); err != nil {
			return err
		}
		keys = keys[n:]
	}
	return nil
}

// Key/values: small metadata (organisations, devices, accounts) in namespaces.

// Put stores val under key in namespace ns, durably. key may be any string, ns any non-empty
// string without a 0x00 byte.
func (s *Store) Put(ctx context.Context, ns, key string, val []byte) error {
	if err := checkName("namespace", ns); err != nil {
		return err
	}
	if err := checkSize(len(val)); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	v := encodeFrame(val)
	return s.write(ctx, len(v), set(kvKey(ns, key), v))
}

// Get returns the value of key in ns, or ErrNotFound; a damaged value gives an error matching
// ErrCorrupt.
func (s *Store) Get(ns, key string) ([]byte, error) {
	if err := checkName("namespace", ns); err != nil {
		return nil, err
	}
	return s.getFramed(kvKey(ns, key))
}

// Delete removes key from ns, durably. Deleting a missing key is not an error.
func (s *Store) Delete(ctx context.Context, ns, key string) error {
	if err := checkName("namespace", ns); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	return s.write(ctx, 0, del(kvKey(ns, key)))
}

// Scan calls fn for each key in ns that starts with prefix, in byte order, with a copy of its
// value that fn may keep. It stops at fn's first error and returns it unchanged. A damaged
// value stops the scan with an error matching ErrCorrupt. fn sees one consistent view and may
// call other methods, but not Close.
func (s *Store) Scan(ns, prefix string, fn func(key string, val []byte) error) error {
	if err := checkName("namespace", ns); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	nsLen := len(kvPrefix(ns))
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: kvKey(ns, prefix), PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			key := string(item.Key()[nsLen:])
			val, err := readFramed(item)
			if err != nil {
				return fmt.Errorf("key %q: %w", key, err)
			}
			if err := fn(key, val); err != nil {
				return err
			}
		}
		return nil
	})
}

// Logs: append-only sequences (audit events and the like).

// AppendLog appends val to log and returns its seq: 1 for a log's first entry, then increasing
// by one. It is durable on return. Entries are never rewritten or deleted.
func (s *Store) AppendLog(ctx context.Context, log string, val []byte) (uint64, error) {
	return s.AppendLogs(ctx, log, [][]byte{val})
}

// AppendLogs appends vals to log in order, in one write (all or none), and returns the seq of
// the first; the rest follow it one by one. It is durable on return.
func (s *Store) AppendLogs(ctx context.Context, log string, vals [][]byte) (uint64, error) {
	if err := checkName("log name", log); err != nil {
		return 0, err
	}
	size := 0
	framed := make([][]byte, len(vals))
	for i, val := range vals {
		if err := checkSize(len(val)); err != nil {
			return 0, err
		}
		framed[i] = encodeFrame(val)
		size += len(framed[i])
	}
	if len(vals) == 0 {
		return 0, nil
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.active.Done()
	var first uint64
	err := s.write(ctx, size, func(b *batch) ([]mutation, error) {
		muts := make([]mutation, len(framed))
		for i, v := range framed {
			seq := b.nextLogSeq(log)
			if i == 0 {
				first = seq
			}
			muts[i] = mutation{key: logKey(log, seq), val: v}
		}
		return muts, nil
	})
	if err != nil {
		return 0, err
	}
	return first, nil
}

// ReadLog calls fn for each entry of log with seq > after, in order, with a copy of its value
// that fn may keep. It stops at fn's first error and returns it unchanged. A damaged entry
// stops it with an error matching ErrCorrupt that names the seq; ReadLog(log, seq, fn) resumes
// after it. fn may call other methods, but not Close.
func (s *Store) ReadLog(log string, after uint64, fn func(seq uint64, val []byte) error) error {
	if err := checkName("log name", log); err != nil {
		return err
	}
	return s.readNumbered(logPrefix(log), after, func(seq uint64, framed []byte) error {
		val, err := decodeFrame(framed)
		if err != nil {
			return fmt.Errorf("log entry %d: %w", seq, err)
		}
		return fn(seq, val)
	})
}

// readNumbered calls fn, in order, with each raw value stored under prefix
// and a number above after (a log's or a chained log's entries), a copy fn
// may keep. A value Badger cannot read stops it with ErrCorrupt naming the
// number.
func (s *Store) readNumbered(prefix []byte, after uint64, fn func(seq uint64, raw []byte) error) error {
	if after == math.MaxUint64 {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	return s.db.View(func(txn *badger.Txn) error {
		it := txn.NewIterator(badger.IteratorOptions{Prefix: prefix, PrefetchValues: true, PrefetchSize: 64})
		defer it.Close()
		for it.Seek(binary.BigEndian.AppendUint64(bytes.Clone(prefix), after+1)); it.Valid(); it.Next() {
			item := it.Item()
			seq := seqSuffix(item.Key())
			raw, err := item.ValueCopy(nil)
			if err != nil {
				return fmt.Errorf("entry %d: %w: %s", seq, ErrCorrupt, unreadable(err))
			}
			if err := fn(seq, raw); err != nil {
				return err
			}
		}
		return nil
	})
}

// getFramed reads one framed value: ErrNotFound if absent, ErrCorrupt if damaged.
func (s *Store) getFramed(key []byte) ([]byte, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.active.Done()
	var val []byte
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(key)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		val, err = readFramed(item)
		return err
	})
	return val, err
}

func readFramed(item *badger.Item) ([]byte, error) {
	raw, err := item.ValueCopy(nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %s", ErrCorrupt, unreadable(err))
	}
	return decodeFrame(raw)
}

// entryOverhead is what Badger adds to each entry's key and value when it
// counts a transaction's size (its version, meta bytes and sizes), rounded up.
const entryOverhead = 32

// PutMany stores several values of one namespace in one write: one sync
// for all of them, all or nothing. Values together larger than one
// transaction holds (a hub's list rows for every document of its homes) are
// written in as few writes as hold them, in order of key, each all or
// nothing. Durable on return, like Put.
func (s *Store) PutMany(ctx context.Context, ns string, vals map[string][]byte) error {
	if err := checkName("namespace", ns); err != nil {
		return err
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	keys := make([]string, 0, len(vals))
	for k, v := range vals {
		if err := checkSize(len(v)); err != nil {
			return err
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var muts []mutation
	size := 0
	flush := func() error {
		if len(muts) == 0 {
			return nil
		}
		m, n := muts, size
		muts, size = nil, 0
		return s.write(ctx, n, func(*batch) ([]mutation, error) { return m, nil })
	}
	for _, k := range keys {
		fv := encodeFrame(vals[k])
		key := kvKey(ns, k)
		// Counted as Badger counts an entry against its transaction, so
		// that each write fits in one.
		n := len(key) + len(fv) + entryOverhead
		if size > 0 && size+n > s.maxBatch {
			if err := flush(); err != nil {
				return err
			}
		}
		muts = append(muts, mutation{key: key, val: fv})
		size += n
	}
	return flush()
}

// LastSeq is the sequence number of the newest chunk ever stored for a
// document (0 if none): a cheap way to tell whether a document changed
// since a cache was made from it.
func (s *Store) LastSeq(docID string) (uint64, error) {
	if err := checkName("document ID", docID); err != nil {
		return 0, err
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.active.Done()
	var last uint64
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(docMetaKey(docID))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) == seqLen {
				last = seqSuffix(v)
			}
			return nil
		})
	})
	return last, err
}

// SyncStateEntry is one sync state to save.
type SyncStateEntry struct {
	Peer, Doc string
	State     []byte
}

// PutSyncStates saves many sync states in one write: one sync for all.
func (s *Store) PutSyncStates(ctx context.Context, states []SyncStateEntry) error {
	if len(states) == 0 {
		return nil
	}
	if err := s.enter(); err != nil {
		return err
	}
	defer s.active.Done()
	size := 0
	muts := make([]mutation, 0, len(states))
	for _, e := range states {
		if err := checkName("peer ID", e.Peer); err != nil {
			return err
		}
		if err := checkName("document ID", e.Doc); err != nil {
			return err
		}
		if err := checkSize(len(e.State)); err != nil {
			return err
		}
		v := encodeFrame(e.State)
		size += len(v)
		muts = append(muts, mutation{key: syncStateKey(e.Peer, e.Doc), val: v})
	}
	return s.write(ctx, size, func(*batch) ([]mutation, error) { return muts, nil })
}
