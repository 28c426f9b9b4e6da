package loadtest

import (
	"context"
	"fmt"
	"sync"

	"haven/shared/docid"
	"haven/shared/store"
)

// memStorage is a repo.Storage in memory: a load-test client's documents,
// without the encryption and fsync a desktop's store pays for (see the
// package comment). It never compacts; the clients' repos are told not to.
type memStorage struct {
	mu   sync.Mutex // guards docs and seq
	docs map[string]*store.Doc
	seq  uint64
}

func newMemStorage() *memStorage { return &memStorage{docs: map[string]*store.Doc{}} }

func (m *memStorage) AppendChunk(_ context.Context, id string, chunk []byte) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.docs[id]
	if d == nil {
		d = &store.Doc{}
		m.docs[id] = d
	}
	m.seq++
	d.Chunks = append(d.Chunks, store.Chunk{Seq: m.seq, Data: chunk})
	return m.seq, nil
}

func (m *memStorage) LoadDoc(id string) (store.Doc, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.docs[id]
	if d == nil {
		return store.Doc{}, store.ErrNotFound
	}
	return store.Doc{Snapshot: d.Snapshot, UpTo: d.UpTo, Chunks: append([]store.Chunk(nil), d.Chunks...)}, nil
}

// Quarantine is only called for a chunk that fails to load, which cannot
// happen to chunks that never leave memory.
func (m *memStorage) Quarantine(_ context.Context, id string, seq uint64, reason string) error {
	return fmt.Errorf("load test: chunk %d of %s does not load: %s", seq, id, reason)
}

func (m *memStorage) Compact(_ context.Context, id string, snapshot []byte, upTo uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.docs[id]
	if d == nil {
		return store.ErrNotFound
	}
	var keep []store.Chunk
	for _, c := range d.Chunks {
		if c.Seq > upTo {
			keep = append(keep, c)
		}
	}
	d.Snapshot, d.UpTo, d.Chunks = snapshot, upTo, keep
	return nil
}

// ids lists the documents held: what a client offers the server on connect.
func (m *memStorage) ids() []docid.ID {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]docid.ID, 0, len(m.docs))
	for s := range m.docs {
		if id, err := docid.Parse(s); err == nil {
			out = append(out, id)
		}
	}
	return out
}
