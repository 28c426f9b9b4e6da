// Package repotest helps tests watch what a bounded repo.Repo evicts.
package repotest

import (
	"runtime"
	"slices"
	"sync"
	"weak"

	"haven/shared/crdt"
	"haven/shared/docid"
)

// Evictions records what a Repo evicts: pass its Hook to Repo.OnEvict. It
// keeps each document let go only weakly, so that a test can check that
// nothing else keeps it either.
type Evictions struct {
	mu   sync.Mutex
	ids  []docid.ID
	docs []weak.Pointer[crdt.Doc]
}

// Hook is the function to give Repo.OnEvict.
func (v *Evictions) Hook(id docid.ID, doc *crdt.Doc) {
	v.mu.Lock()
	v.ids = append(v.ids, id)
	v.docs = append(v.docs, weak.Make(doc))
	v.mu.Unlock()
}

// IDs are the documents evicted so far, in order.
func (v *Evictions) IDs() []docid.ID {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Clone(v.ids)
}

// Has reports whether the document was evicted.
func (v *Evictions) Has(id docid.ID) bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return slices.Contains(v.ids, id)
}

// Kept runs the collector and counts the evicted document objects still
// in memory: those something still refers to.
func (v *Evictions) Kept() int {
	runtime.GC()
	v.mu.Lock()
	defer v.mu.Unlock()
	n := 0
	for _, d := range v.docs {
		if d.Value() != nil {
			n++
		}
	}
	return n
}
