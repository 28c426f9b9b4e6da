package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Group commit.
//
// Every write goes through one goroutine (writeLoop). It takes the first queued op, gathers
// whatever else is already queued (up to maxBatchOps ops and s.maxBatch payload bytes), applies
// them all in ONE Badger transaction and commits it. With SyncWrites set, Badger syncs the
// write-ahead log and value log once for that transaction before Commit returns (see
// badgerOptions for why that, and not DB.Sync, is the sync we rely on). Then every op of the
// batch is answered. While one batch is being synced, new callers queue up and form the next
// batch, so N concurrent writers cost about one sync per round rather than N.
//
// Being the only writer also lets the goroutine hand out sequence numbers (docSeq, logSeq)
// without locks, and lets an op read the state it is about to change without racing anyone.

// maxBatchOps bounds one batch so no caller waits behind an unbounded transaction.
const maxBatchOps = 1024

// slowCommit is how long a batch's commit and sync may take before the store logs it.
const slowCommit = 100 * time.Millisecond

// Op states. The caller may abandon a pending op when its ctx ends; once the writer has
// claimed it, the caller waits for the outcome, so a write is never reported failed after it
// was in fact made durable.
const (
	opPending int32 = iota
	opClaimed
	opAbandoned
)

// mutation is one key to set (or delete) in the batch transaction.
type mutation struct {
	key []byte
	val []byte
	del bool
}

// op is one call's write. build runs on the writer goroutine inside the batch transaction: it
// may read (seeing earlier ops of the same batch) and returns the mutations to apply. If build
// fails, that op alone fails and none of it is written. build may run twice (see commitBatch),
// so it must not keep state between runs except through the batch.
type op struct {
	size  int // payload bytes, for sizing batches
	build func(b *batch) ([]mutation, error)
	state atomic.Int32
	err   error         // written by the writer before done is closed
	done  chan struct{} // closed by the writer once err (and whatever build captured) is final
}

// write queues build and waits until it has been committed and synced, or has failed. The
// caller must hold s.enter. ctx can end the wait only while the op is still queued.
func (s *Store) write(ctx context.Context, size int, build func(*batch) ([]mutation, error)) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	o := &op{size: size, build: build, done: make(chan struct{})}
	select {
	case s.ops <- o:
	case <-ctx.Done():
		return ctx.Err()
	}
	if h := s.hooks.enqueued; h != nil {
		h()
	}
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		if o.state.CompareAndSwap(opPending, opAbandoned) {
			return ctx.Err()
		}
		<-o.done
		return o.err
	}
}

// writeLoop is the writer goroutine. It exits when Close closes s.ops, after committing every
// op still queued; it closes s.writerDone on the way out.
func (s *Store) writeLoop() {
	defer close(s.writerDone)
	var carry *op // drawn from the queue but too big for the previous batch
	for {
		first := carry
		carry = nil
		if first == nil {
			o, ok := <-s.ops
			if !ok {
				return
			}
			first = o
		}
		if h := s.hooks.batchStart; h != nil {
			h()
		}
		batch := []*op{first}
		size := first.size
	gather:
		for len(batch) < maxBatchOps {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break gather // Close: commit this batch, then the receive above returns
				}
				if size+o.size > s.maxBatch {
					carry = o
					break gather
				}
				batch = append(batch, o)
				size += o.size
			default:
				break gather
			}
		}
		s.commitBatch(batch)
	}
}

// commitBatch commits the claimed ops of batch and answers them.
func (s *Store) commitBatch(batch []*op) {
	ops := make([]*op, 0, len(batch))
	for _, o := range batch {
		// An abandoned op's caller has gone; nobody waits on it.
		if o.state.CompareAndSwap(opPending, opClaimed) {
			ops = append(ops, o)
		}
	}
	if len(ops) == 0 {
		return
	}
	began := time.Now()
	err := s.runTxn(ops)
	if took := time.Since(began); took > slowCommit {
		// Every caller of the batch waited this long for its write to be
		// durable: worth an operator's look (a slow or failing disk, or one
		// writer's large batch holding up the small ones).
		size := 0
		for _, o := range ops {
			size += o.size
		}
		s.log.Warn("slow commit", "took", took.Round(time.Millisecond), "ops", len(ops), "bytes", size)
	}
	if errors.Is(err, badger.ErrTxnTooBig) && len(ops) > 1 {
		// Our size estimate let through more than one transaction holds (it cannot see
		// Badger's per-entry overhead). Give each op its own transaction, and its own sync.
		for _, o := range ops {
			o.err = nil
			if err := s.runTxn([]*op{o}); o.err == nil {
				o.err = txnError(err)
			}
			close(o.done)
		}
		return
	}
	err = txnError(err)
	for _, o := range ops {
		if o.err == nil {
			o.err = err
		}
		close(o.done)
	}
}

func txnError(err error) error {
	if errors.Is(err, badger.ErrTxnTooBig) {
		return fmt.Errorf("%w: more changes than one transaction holds", ErrTooLarge)
	}
	return err
}

// runTxn applies ops in one transaction and commits it. A failing build sets that op's err;
// the returned error concerns the transaction, and so every op without its own error.
func (s *Store) runTxn(ops []*op) (err error) {
	txn := s.db.NewTransaction(true)
	defer txn.Discard()
	defer func() {
		if err != nil {
			// The numbers this transaction took were not written: forget the cached
			// counters so they are read back from disk, and logs stay gapless.
			clear(s.docSeq)
			clear(s.logSeq)
		}
	}()
	b := &batch{s: s, txn: txn}
	wrote := false
	for _, o := range ops {
		muts, err := o.build(b)
		if err != nil {
			o.err = err
			continue
		}
		for _, m := range muts {
			if m.del {
				err = txn.Delete(m.key)
			} else {
				err = txn.Set(m.key, m.val)
			}
			if err != nil {
				return err
			}
			wrote = true
		}
	}
	if !wrote {
		return nil
	}
	mark, err := s.nextMark(txn)
	if err != nil {
		return err
	}
	if err := txn.Commit(); err != nil {
		return err
	}
	s.committed(mark)
	s.commits.Add(1)
	return nil
}

// batch is what an op's build sees: the open transaction and the sequence counters.
type batch struct {
	s   *Store
	txn *badger.Txn
}

// get returns a copy of key's value. found is false if the key is absent. If found is true and
// err is not nil, the key exists but Badger could not read its value.
func (b *batch) get(key []byte) (val []byte, found bool, err error) {
	item, err := b.txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	val, err = item.ValueCopy(nil)
	return val, true, err
}

// lastDocSeq returns the last sequence number handed out for doc. The first time in this
// process it derives it from disk: the counter key, and, should that be damaged, the highest
// chunk, quarantine id and snapshot coverage, each of which was once taken from the counter.
func (b *batch) lastDocSeq(doc string) (uint64, error) {
	if n, ok := b.s.docSeq[doc]; ok {
		return n, nil
	}
	var last uint64
	if v, found, err := b.get(docMetaKey(doc)); err == nil && found && len(v) == seqLen {
		last = seqSuffix(v)
	} else if err != nil && !found {
		return 0, err
	}
	for _, p := range [][]byte{chunkPrefix(doc), quarantinePrefix(doc)} {
		last = max(last, b.lastSeqUnder(p))
	}
	if v, found, err := b.get(snapshotKey(doc)); found && err == nil {
		if upTo, _, err := decodeSnapshot(v); err == nil {
			last = max(last, upTo)
		}
	} else if err != nil && !found {
		return 0, err
	}
	b.s.docSeq[doc] = last
	return last, nil
}

// nextDocSeq takes the next sequence number of doc. If the transaction then fails, runTxn
// resets the counters, so a failed write leaves no gap.
func (b *batch) nextDocSeq(doc string) (uint64, error) {
	n, err := b.lastDocSeq(doc)
	if err != nil {
		return 0, err
	}
	n++
	b.s.docSeq[doc] = n
	return n, nil
}

// nextLogSeq takes the next sequence number of log; logs are never rewritten, so the last
// key holds the last number.
func (b *batch) nextLogSeq(log string) uint64 {
	n, ok := b.s.logSeq[log]
	if !ok {
		n = b.lastSeqUnder(logPrefix(log))
	}
	n++
	b.s.logSeq[log] = n
	return n
}

// lastSeqUnder returns the number at the end of the last key under prefix, or 0.
func (b *batch) lastSeqUnder(prefix []byte) uint64 {
	it := b.txn.NewIterator(badger.IteratorOptions{Reverse: true, Prefix: prefix})
	defer it.Close()
	it.Seek(append(bytes.Clone(prefix), bytes.Repeat([]byte{0xff}, seqLen+1)...))
	if !it.Valid() {
		return 0
	}
	return seqSuffix(it.Item().Key())
}

// set and del build ops that need no reads.
func set(key, val []byte) func(*batch) ([]mutation, error) {
	return func(*batch) ([]mutation, error) { return []mutation{{key: key, val: val}}, nil }
}

func del(keys ...[]byte) func(*batch) ([]mutation, error) {
	return func(*batch) ([]mutation, error) {
		muts := make([]mutation, len(keys))
		for i, k := range keys {
			muts[i] = mutation{key: k, del: true}
		}
		return muts, nil
	}
}
