package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Badger treats a damaged entry in its write-ahead log as the end of the
// log, as it must after a crash mid-write: it opens with everything before
// the damage and silently without everything after it. A byte flipped in
// the middle of the log therefore loses acknowledged writes without a word.
//
// The store counts its committed transactions in a key written with each
// one, and mirrors the count in a small file beside Badger's, after the
// commit (not synced: it is a witness, not a second copy). On Open, a
// witness ahead of the recovered count means Badger came back without
// writes it had acknowledged: Damage reports it. A crash or power cut never
// puts the witness ahead (it is written after the synced commit and may
// itself be lost), so the report means damage, not an ordinary restart.

const markFile = "HAVEN-MARK"

var markKey = []byte("w/mark")

func (s *Store) markPath() string { return filepath.Join(s.dir, markFile) }

// readMark loads the committed count and compares it with the witness.
func (s *Store) readMark() error {
	err := s.db.View(func(txn *badger.Txn) error {
		item, err := txn.Get(markKey)
		if errors.Is(err, badger.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		return item.Value(func(v []byte) error {
			if len(v) == 8 {
				s.mark = binary.BigEndian.Uint64(v)
			}
			return nil
		})
	})
	if err != nil {
		return err
	}
	// The witness stays open: it is rewritten after every commit, and
	// opening it each time cost the relay more than writing it.
	f, err := os.OpenFile(s.markPath(), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open the commit witness: %w", err)
	}
	s.witness = f
	b, err := io.ReadAll(f)
	if err != nil || len(b) == 0 {
		return nil // no witness yet
	}
	witness, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	if err == nil && witness > s.mark {
		s.damage = fmt.Sprintf("the data folder %s came back without its %d most recent writes (its write-ahead log is damaged); what other copies hold returns when this computer syncs", s.dir, witness-s.mark)
		s.log.Error("store lost acknowledged writes", "dir", s.dir, "missing_commits", witness-s.mark)
		s.writeWitness() // reported once; from here the count is the recovered one
	}
	return nil
}

// nextMark is written in a transaction about to commit.
func (s *Store) nextMark(txn *badger.Txn) (uint64, error) {
	n := s.mark + 1
	return n, txn.Set(markKey, binary.BigEndian.AppendUint64(nil, n))
}

// committed records a commit and updates the witness.
func (s *Store) committed(n uint64) {
	s.mark = n
	s.writeWitness()
}

// writeWitness overwrites the witness in place. It is fixed-width (the
// count right-aligned in 20 columns, the most a uint64 needs, and a
// newline), so each write covers the whole of the last one.
func (s *Store) writeWitness() {
	s.witness.WriteAt(fmt.Appendf(nil, "%20d\n", s.mark), 0)
}

// Damage says what Open found missing, in plain words, or "" if nothing.
func (s *Store) Damage() string { return s.damage }
