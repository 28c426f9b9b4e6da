package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Chained logs: append-only logs whose every entry is bound to all before
// it, so that an entry altered, removed or put in the middle shows.
//
//	h/<log> 00 <seq>        entry <seq>: frame(prev (32 bytes) + value)
//
// where prev is the link of entry seq-1 (32 zero bytes for the first), and
// an entry's link is SHA-256(prev || value). The link of the last entry,
// the head, vouches for the whole log: VerifyChain recomputes it. Someone
// who can write the store can rebuild a chain from the point they changed,
// so the head is worth keeping elsewhere too (an operator's notes, a
// signed report); the chain alone still catches a change made by anything
// short of rewriting every later entry, and any gap.

// Link is a chained log entry's link, or the head of a chain.
type Link [sha256.Size]byte

func (l Link) String() string { return fmt.Sprintf("%x", l[:]) }

// ErrChainBroken reports a chained log whose entries do not link up: an
// entry was altered, removed or inserted. VerifyChain returns it as a
// *ChainError naming the entry.
var ErrChainBroken = errors.New("store: chained log broken")

// ChainError is where a chained log breaks: entry Seq does not follow
// entry After, the last good one (a gap if Seq > After+1; otherwise After
// or Seq was altered).
type ChainError struct{ Seq, After uint64 }

func (e *ChainError) Error() string {
	if e.Seq != e.After+1 {
		return fmt.Sprintf("%v: entry %d follows entry %d (entries missing)", ErrChainBroken, e.Seq, e.After)
	}
	return fmt.Sprintf("%v: entry %d does not follow entry %d (one of them altered)", ErrChainBroken, e.Seq, e.After)
}

func (e *ChainError) Unwrap() error { return ErrChainBroken }

// Change is one key-value write applied with a chained append.
type Change struct {
	NS, Key string
	Val     []byte // ignored when Delete
	Delete  bool
}

func chainPrefix(log string) []byte { return prefix('h', log) }
func chainKey(log string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(chainPrefix(log), seq)
}

// chainCounter names a chained log's counter in the batch's log counters;
// no log name holds 0x00, so it cannot meet a plain log's.
func chainCounter(log string) string { return "\x00chain/" + log }

// AppendChained appends vals to the chained log, in order, and applies
// changes, in one atomic durable write. It returns the seq of the first
// entry (seqs run on by one, from 1).
func (s *Store) AppendChained(ctx context.Context, log string, vals [][]byte, changes []Change) (uint64, error) {
	if err := checkName("log name", log); err != nil {
		return 0, err
	}
	size := 0
	for _, v := range vals {
		if err := checkSize(len(v) + sha256.Size); err != nil {
			return 0, err
		}
		size += len(v) + sha256.Size + frameHeaderSize
	}
	for _, c := range changes {
		if err := checkName("namespace", c.NS); err != nil {
			return 0, err
		}
		if err := checkSize(len(c.Val)); err != nil {
			return 0, err
		}
		size += len(c.Val)
	}
	if err := s.enter(); err != nil {
		return 0, err
	}
	defer s.active.Done()
	var first uint64
	err := s.write(ctx, size, func(b *batch) ([]mutation, error) {
		n, ok := b.s.logSeq[chainCounter(log)]
		if !ok {
			n = b.lastSeqUnder(chainPrefix(log))
		}
		prev, err := b.chainLink(log, n)
		if err != nil {
			return nil, err
		}
		muts := make([]mutation, 0, len(vals)+len(changes))
		first = n + 1
		for _, v := range vals {
			n++
			muts = append(muts, mutation{key: chainKey(log, n), val: encodeFrame(append(prev[:len(prev):len(prev)], v...))})
			prev = link(prev, v)
		}
		b.s.logSeq[chainCounter(log)] = n
		for _, c := range changes {
			if c.Delete {
				muts = append(muts, mutation{key: kvKey(c.NS, c.Key), del: true})
			} else {
				muts = append(muts, mutation{key: kvKey(c.NS, c.Key), val: encodeFrame(c.Val)})
			}
		}
		return muts, nil
	})
	if err != nil {
		return 0, err
	}
	return first, nil
}

func link(prev Link, val []byte) Link {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(val)
	var l Link
	h.Sum(l[:0])
	return l
}

// chainLink is the link of entry seq (the zero Link for seq 0), read inside
// the batch, so an append earlier in the same batch is seen.
func (b *batch) chainLink(log string, seq uint64) (Link, error) {
	if seq == 0 {
		return Link{}, nil
	}
	raw, found, err := b.get(chainKey(log, seq))
	if err != nil || !found {
		return Link{}, fmt.Errorf("%w: entry %d of %s unreadable", ErrCorrupt, seq, log)
	}
	prev, val, err := splitChained(raw)
	if err != nil {
		return Link{}, fmt.Errorf("entry %d of %s: %w", seq, log, err)
	}
	return link(prev, val), nil
}

func splitChained(raw []byte) (prev Link, val []byte, err error) {
	p, err := decodeFrame(raw)
	if err != nil {
		return Link{}, nil, err
	}
	if len(p) < len(prev) {
		return Link{}, nil, fmt.Errorf("%w: chained entry of %d bytes", ErrCorrupt, len(p))
	}
	copy(prev[:], p)
	return prev, p[len(prev):], nil
}

// ReadChained calls fn for each entry of the chained log with seq > after,
// in order, with a copy of its value. It stops at fn's first error and
// returns it. It does not check the links (VerifyChain does), so a reader
// may list a damaged log; a damaged entry stops it with ErrCorrupt.
func (s *Store) ReadChained(log string, after uint64, fn func(seq uint64, val []byte) error) error {
	return s.scanChain(log, after, func(seq uint64, _ Link, val []byte) error { return fn(seq, val) })
}

func (s *Store) scanChain(log string, after uint64, fn func(seq uint64, prev Link, val []byte) error) error {
	if err := checkName("log name", log); err != nil {
		return err
	}
	return s.readNumbered(chainPrefix(log), after, func(seq uint64, raw []byte) error {
		prev, val, err := splitChained(raw)
		if err != nil {
			return fmt.Errorf("entry %d: %w", seq, err)
		}
		return fn(seq, prev, val)
	})
}

// VerifyChain walks the whole chained log and checks that each entry
// follows the one before it: seqs without a gap from 1, and each entry's
// prev the link of the one before. It returns the number of entries and
// the head (the last entry's link) so far, or a *ChainError at the first
// entry out of line (or an error matching ErrCorrupt).
func (s *Store) VerifyChain(log string) (n uint64, head Link, err error) {
	err = s.scanChain(log, 0, func(seq uint64, prev Link, val []byte) error {
		if seq != n+1 || prev != head {
			return &ChainError{Seq: seq, After: n}
		}
		n, head = seq, link(prev, val)
		return nil
	})
	return n, head, err
}
