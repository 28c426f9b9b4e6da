// Package crdttest helps tests build Automerge sync messages from real
// documents.
package crdttest

import (
	"errors"

	"haven/shared/crdt"
)

// FirstChanges syncs from to to in memory and returns the first message
// that carried changes: what a peer holding from sends one holding to.
// to receives it (and the exchange before it).
func FirstChanges(from, to *crdt.Doc) ([]byte, error) {
	sf, st := crdt.NewSyncState(from), crdt.NewSyncState(to)
	for i := 0; i < 10; i++ {
		if m, ok, err := sf.Generate(); err != nil {
			return nil, err
		} else if ok {
			before := to.Heads()
			if err := st.Receive(m); err != nil {
				return nil, err
			}
			if !crdt.SameHeads(before, to.Heads()) {
				return m, nil
			}
		}
		if m, ok, err := st.Generate(); err != nil {
			return nil, err
		} else if ok {
			if err := sf.Receive(m); err != nil {
				return nil, err
			}
		}
	}
	return nil, errors.New("no message carried changes")
}
