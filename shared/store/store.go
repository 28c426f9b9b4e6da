// Package store keeps Haven's bytes on disk: Automerge documents as incremental chunks plus one
// snapshot each, per-peer sync states, small namespaced key/values and append-only logs.
//
// It is the only package that imports Badger, and it knows nothing about Automerge: every value
// is opaque bytes. What it guarantees:
//
//   - Encrypted at rest with Badger's own AES-256 (Options.Key); no plaintext value reaches disk.
//   - Durable on return: every write method returns only after its data is synced to disk, so a
//     power cut cannot take back something the store acknowledged. Concurrent writers share one
//     sync (group commit), which keeps that cheap.
//   - Corruption is detected and reported, never hidden: every value carries the store's own
//     length and CRC-32C, and a chunk or snapshot that fails it is moved to a quarantine
//     keyspace and reported by LoadDoc and Quarantined.
//   - One process per data folder: a second Open fails with ErrLocked.
//
// All methods are safe for concurrent use.
package store

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
)

var (
	// ErrNotFound reports that nothing is stored under the requested document, key or state.
	ErrNotFound = errors.New("store: not found")
	// ErrLocked reports that another process (or another Store in this process) has the data
	// folder open. The error Open returns names the folder.
	ErrLocked = errors.New("store: data folder in use")
	// ErrWrongKey reports that the data folder was created with a different encryption key.
	ErrWrongKey = errors.New("store: wrong encryption key")
	// ErrClosed is returned by every method called after (or while) Close runs.
	ErrClosed = errors.New("store: closed")
	// ErrCorrupt reports a stored value that fails its length or checksum check. Chunks and
	// snapshots never surface it (they are quarantined instead); key/values, logs and sync
	// states do.
	ErrCorrupt = errors.New("store: corrupt value")
	// ErrStale is returned by Compact when the stored snapshot already covers more chunks than
	// the one offered: writing it would lose the chunks in between.
	ErrStale = errors.New("store: snapshot older than the stored one")
	// ErrTooLarge is returned for a value longer than MaxValueSize.
	ErrTooLarge = errors.New("store: value too large")
)

// MaxValueSize is the largest chunk, snapshot, state or value the store accepts, in bytes.
// It sits well below Badger's per-value limit (the value log file size) so that the store's
// framing and a quarantine copy always fit.
const MaxValueSize = 32 << 20

// Options configures Open. Only Key is required; the zero values of the tuning fields pick a
// small footprint (a few tens of MiB at most, far less when idle) suited to a desktop and to
// tests that open many stores.
type Options struct {
	// Key is the 32-byte AES-256 master key. Badger encrypts its data keys with it and every
	// table, value log and write-ahead log with those. Opening an existing folder with another
	// key fails with ErrWrongKey.
	Key []byte
	// Logger receives the store's and Badger's diagnostics. It is given IDs and sizes, never
	// values. Nil discards them.
	Logger *slog.Logger

	// MemTableSize is the size of one Badger memtable (and of its write-ahead log). Zero means
	// 8 MiB; one takes writes while up to 3 full ones wait to be flushed. Values under 15% of
	// it (less room for their keys, capped at 1 MiB) are kept inline in the LSM tree, larger
	// ones in the value log. The write that fills a memtable waits while Badger allocates
	// the next, in proportion to its size.
	MemTableSize int64
	// CacheSize is split between Badger's block cache (3/4) and its table-index cache (1/4),
	// which encryption requires. Zero means 16 MiB.
	CacheSize int64
	// GCInterval is how often the value log is garbage-collected (it only holds values above
	// the inline limit, such as large snapshots replaced by Compact). Zero means 10 minutes;
	// negative disables it.
	GCInterval time.Duration
}

const (
	defaultMemTableSize = 8 << 20
	minMemTableSize     = 1 << 20
	defaultCacheSize    = 16 << 20
	defaultGCInterval   = 10 * time.Minute
	// inlineHeadroom is what a transaction holding one inline value keeps for the keys and
	// Badger's per-entry overhead beside it: names are at most maxNameLen bytes each.
	inlineHeadroom = 16 << 10
	// valueLogFileSize bounds one value log file, and so (Badger's rule) one value. Badger
	// maps twice this size while a file is open; the file is sparse and truncated on Close.
	valueLogFileSize = 64 << 20
)

// Store is an open data folder. Open it once per process and Close it when done.
type Store struct {
	db  *badger.DB
	dir string
	log *slog.Logger

	// mu guards closed and orders it against active.Add: once closed is set no call enters,
	// so Close can wait for active to drain and then close ops knowing no sender remains.
	mu     sync.Mutex
	closed bool
	active sync.WaitGroup // calls in progress; every sender on ops is one of them

	// ops carries writes to the writer goroutine, the only goroutine that writes to db.
	// Close closes it after active drains; the writer commits what is left and closes
	// writerDone.
	ops        chan *op
	writerDone chan struct{}
	maxBatch   int // payload bytes the writer gathers into one transaction

	// docSeq and logSeq cache the last sequence number handed out per document and per log.
	// Only the writer goroutine touches them.
	docSeq map[string]uint64
	logSeq map[string]uint64

	// stop ends the value-log GC goroutine, which closes gcDone on exit.
	stop   chan struct{}
	gcDone chan struct{}

	closeOnce sync.Once
	closeErr  error

	commits atomic.Uint64 // badger transactions committed by the writer; tests read it
	mark    uint64        // transactions ever committed, as stored; only the writer goroutine changes it after Open
	witness *os.File      // mirrors mark (see mark.go); only the writer goroutine writes it after Open
	damage  string        // what Open found missing (see mark.go)
	hooks   testHooks
}

// testHooks lets internal tests observe the writer. Set before the first write; nil means none.
type testHooks struct {
	batchStart func() // writer took the first op of a batch and is about to gather the rest
	enqueued   func() // a caller's op is in the queue
}

// lockedError names the folder in plain words; it matches ErrLocked with errors.Is.
type lockedError struct{ dir string }

func (e *lockedError) Error() string {
	return fmt.Sprintf("data folder %s is already in use by another Haven process", e.dir)
}

func (e *lockedError) Is(target error) bool { return target == ErrLocked }

// Open opens (creating if needed) the data folder dir. It fails with an error matching
// ErrLocked if another Store has dir open, and ErrWrongKey if dir was created with another key.
// The caller must Close the Store.
func Open(dir string, opts Options) (*Store, error) {
	if len(opts.Key) != 32 {
		return nil, fmt.Errorf("store: encryption key must be 32 bytes, got %d", len(opts.Key))
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("store: data folder %s: %w", dir, err)
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	bo, maxBatch := badgerOptions(abs, opts, logger)
	if err := checkTables(abs, bo); err != nil {
		return nil, fmt.Errorf("open data folder %s: %w", abs, err)
	}
	db, err := openBadger(bo)
	if err != nil {
		switch {
		case isLockError(err):
			return nil, &lockedError{dir: abs}
		case errors.Is(err, badger.ErrEncryptionKeyMismatch):
			return nil, fmt.Errorf("open data folder %s: %w", abs, ErrWrongKey)
		}
		return nil, fmt.Errorf("open data folder %s: %w", abs, err)
	}
	if err := verifyTables(db); err != nil {
		db.Close()
		return nil, fmt.Errorf("open data folder %s: %w", abs, err)
	}
	s := &Store{
		db:         db,
		dir:        abs,
		log:        logger,
		ops:        make(chan *op, 256),
		writerDone: make(chan struct{}),
		maxBatch:   maxBatch,
		docSeq:     make(map[string]uint64),
		logSeq:     make(map[string]uint64),
		stop:       make(chan struct{}),
		gcDone:     make(chan struct{}),
	}
	if err := s.readMark(); err != nil {
		if s.witness != nil {
			s.witness.Close()
		}
		db.Close()
		return nil, fmt.Errorf("open data folder %s: %w", abs, err)
	}
	go s.writeLoop()
	interval := opts.GCInterval
	if interval == 0 {
		interval = defaultGCInterval
	}
	go s.gcLoop(interval)
	return s, nil
}

// badgerOptions tunes Badger for Haven. Badger's option builders return modified copies, so
// every call below is chained onto the value that is finally returned.
func badgerOptions(dir string, opts Options, logger *slog.Logger) (badger.Options, int) {
	memtable := opts.MemTableSize
	if memtable == 0 {
		memtable = defaultMemTableSize
	}
	memtable = max(memtable, minMemTableSize)
	cache := opts.CacheSize
	if cache <= 0 {
		cache = defaultCacheSize
	}
	// Badger refuses a transaction above 15% of a memtable; an inline value must fit in one
	// with its keys (a value of the whole limit did not, with the smallest memtable), so the
	// inline limit leaves room for them.
	txnLimit := memtable * 15 / 100
	threshold := min(int64(1<<20), txnLimit-inlineHeadroom)

	bo := badger.DefaultOptions(dir).
		// Encryption: Badger panics without a block cache, and an encrypted table's index is
		// decrypted on each use unless an index cache holds it.
		WithEncryptionKey(opts.Key).
		WithBlockCacheSize(cache * 3 / 4).
		WithIndexCacheSize(cache / 4).
		// Durability. We want a sync before acknowledging, but one per batch, not per call.
		// SyncWrites=false plus db.Sync() after each batch is NOT enough: DB.Sync syncs only
		// the current memtable's write-ahead log, so a batch that landed in a memtable which
		// then filled up and was swapped out (but not yet flushed to an SSTable) would sit
		// unsynced. SyncWrites=true makes Badger sync the WAL of the memtable a write went
		// into, and the value log, before the write returns: once per write request. Our
		// writer goroutine folds every queued call into one transaction, which is one
		// request, so the cost is still one sync per batch (see writer.go).
		WithSyncWrites(true).
		// Only the writer goroutine writes, so Badger's conflict detection has nothing to do.
		WithDetectConflicts(false).
		WithMemTableSize(memtable).
		WithNumMemtables(3).
		WithValueThreshold(threshold).
		WithValueLogFileSize(valueLogFileSize).
		WithNumCompactors(2).
		// Badger checks value-log entries against their CRC on read, so a damaged large value
		// is reported (and quarantined) rather than read as garbage. Badger's iterators stop
		// silently at a damaged table block, which would hide chunks; verifying every table
		// at Open (verifyTables) turns that into a loud failure instead, at the cost of
		// reading the tables once at startup, and every block is checked when it is read
		// from disk. Not OnTableRead: Badger's own check at open dereferences a nil block on
		// a damaged one, in a goroutine of its own where no recover can reach, and the
		// whole program dies; verifyTables runs the same check where a recover can.
		WithVerifyValueChecksum(true).
		WithChecksumVerificationMode(options.OnBlockRead).
		WithMetricsEnabled(false).
		WithLogger(badgerLogger{logger.With("component", "badger")})
	// The writer batches up to half the transaction limit, leaving room for keys and metadata.
	return bo, int(txnLimit / 2)
}

// isLockError recognises Badger's directory-lock failure. Badger flattens the underlying error
// to text (y.Wrap), so its message is all there is; every platform's variant says this.
// TestOpenLockedSameProcess fails if a Badger upgrade changes it.
func isLockError(err error) bool {
	return strings.Contains(err.Error(), "Another process is using this Badger database")
}

// Close waits for calls in progress (including writes, which are synced before they return),
// stops the store's goroutines and closes Badger, which flushes its memtables. Calls made after
// Close starts return ErrClosed. Close must not be called from a Scan or ReadLog callback.
// Calling Close again returns the first call's result.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed = true
		s.mu.Unlock()
		close(s.stop)
		s.active.Wait()
		close(s.ops) // safe: every sender was inside active
		<-s.writerDone
		<-s.gcDone
		s.witness.Close()
		if err := s.db.Close(); err != nil {
			s.closeErr = fmt.Errorf("close data folder %s: %w", s.dir, err)
		}
	})
	return s.closeErr
}

// enter registers a call in progress, or reports ErrClosed. Callers defer s.active.Done().
func (s *Store) enter() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.active.Add(1)
	return nil
}

// gcLoop garbage-collects the value log every interval until stop is closed.
func (s *Store) gcLoop(interval time.Duration) {
	defer close(s.gcDone)
	if interval < 0 {
		<-s.stop
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
		}
		// Each successful run rewrites one file; keep going until nothing is worth it.
		for n := 0; ; n++ {
			err := s.db.RunValueLogGC(0.5)
			if err == nil {
				continue
			}
			if !errors.Is(err, badger.ErrNoRewrite) && !errors.Is(err, badger.ErrRejected) {
				s.log.Warn("value log gc failed", "rewritten", n, "err", err)
			} else if n > 0 {
				s.log.Debug("value log gc", "rewritten", n)
			}
			break
		}
	}
}

// badgerLogger sends Badger's messages to slog. Badger logs file numbers, levels and sizes,
// never values. Its Info messages are routine (tables opened, replay) and go to Debug.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any) { b.l.Error(line(f, a)) }
func (b badgerLogger) Warningf(f string, a ...any) {
	msg := line(f, a)
	if strings.Contains(msg, "cache") || strings.Contains(msg, "Cache") {
		b.l.Debug(msg) // cache tuning hints, not faults
		return
	}
	b.l.Warn(msg)
}
func (b badgerLogger) Infof(f string, a ...any)  { b.l.Debug(line(f, a)) }
func (b badgerLogger) Debugf(f string, a ...any) {}

func line(f string, a []any) string { return strings.TrimSpace(fmt.Sprintf(f, a...)) }

// checkName validates a document, peer, namespace or log name: names end at a 0x00 byte in
// keys (see keys.go), so they may not contain one.
func checkName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("store: empty %s", what)
	case len(name) > maxNameLen:
		return fmt.Errorf("store: %s is %d bytes, limit %d", what, len(name), maxNameLen)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("store: %s %q contains a 0x00 byte", what, name)
	}
	return nil
}

func checkSize(n int) error {
	if n > MaxValueSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, MaxValueSize)
	}
	return nil
}

// verifyTables checks every block of every table against its checksum,
// turning damage (and Badger's panic on it) into an error.
func verifyTables(db *badger.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w (%v)", errDamagedFolder, r)
		}
	}()
	if err := db.VerifyChecksum(); err != nil {
		return fmt.Errorf("%w (%v)", errDamagedFolder, err)
	}
	return nil
}

// openBadger opens Badger, turning a panic on a damaged table into an error:
// a data folder whose files are cut short must not take the program down.
func openBadger(bo badger.Options) (db *badger.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%w (%v)", errDamagedFolder, r)
		}
	}()
	return badger.Open(bo)
}
