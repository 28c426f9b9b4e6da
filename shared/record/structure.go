package record

import (
	"slices"

	"haven/shared/crdt"
)

// The structure a Guard follows, so the relay can prove a change to one of
// Haven's documents keeps the document loadable without saving and
// reloading the whole document. automerge-rs 0.5 applies some changes that
// leave a document it cannot load again, and a peer then aborts when it
// next generates a sync message; loading fails exactly when the changes it
// rebuilds from the saved document differ from those it holds. For a
// document of maps and scalar values (what the rules allow Haven's to
// hold), that cannot happen to a change that
//
//   - is encoded exactly as automerge rebuilds it (crdt.DecodedChange.Canonical);
//   - continues its actor: the next seq, operations numbered after the
//     actor's last and after every change it depends on;
//   - acts only on objects the document has made;
//   - overwrites (preds) only operations made at the same key of the same
//     object, named in order, and deletes only what it overwrites;
//   - gives a value only to a put.
//
// A change that is not proven so is not refused for that: the caller
// falls back to the whole-document check (syncer.RoundTrips), which decides.

// structure is what the proof needs of a document's history. Its maps grow
// with the document's operations (one entry per key written); the relay
// keeps it only while it keeps the document.
type structure struct {
	actors  map[string]actorState  // by actor: its last change
	maxOps  map[crdt.Hash]uint64   // by change: its last operation's counter
	objects map[crdt.OpID]bool     // maps the document made
	ops     map[objKey][]crdt.OpID // by object and key: every operation made there
	// undo, when set, collects how to reverse each learn (the Guard's
	// batch being checked); nil while learning a stored history.
	undo *[]func()
}

type actorState struct{ seq, maxOp uint64 }

type objKey struct {
	obj crdt.OpID
	key string
}

func newStructure() *structure {
	return &structure{actors: map[string]actorState{}, maxOps: map[crdt.Hash]uint64{}, objects: map[crdt.OpID]bool{},
		ops: map[objKey][]crdt.OpID{}}
}

func (s *structure) onUndo(f func()) {
	if s.undo != nil {
		*s.undo = append(*s.undo, f)
	}
}

// proven reports why c is not proven loadable on top of what the
// structure holds, or "" if it is.
func (s *structure) proven(c *crdt.DecodedChange) string {
	if !c.IsCanonical() {
		return "not canonically encoded"
	}
	last := s.actors[c.Actor]
	if c.Seq != last.seq+1 || c.StartOp <= last.maxOp {
		return "does not continue its actor"
	}
	for _, d := range c.Deps {
		m, ok := s.maxOps[d]
		if !ok || c.StartOp <= m {
			return "numbered before a change it depends on"
		}
	}
	made := map[crdt.OpID]bool{}
	for _, op := range c.Ops {
		if op.InList || op.Insert {
			return "a list position"
		}
		if op.Obj != crdt.Root && !s.objects[op.Obj] && !made[op.Obj] {
			return "an object the document never made"
		}
		// A saved document keeps a deletion only as what it deleted (the
		// preds' successors), and an object's creation only as the object:
		// a deletion of nothing, or either carrying a value, is not rebuilt.
		if (op.Action == crdt.ActDelete && len(op.Pred) == 0) || (op.Action != crdt.ActPut && op.Value.Kind != crdt.ValNull) {
			return "an operation a saved document cannot hold"
		}
		have := s.ops[objKey{op.Obj, op.Key}]
		for i, p := range op.Pred {
			if !slices.Contains(have, p) || (i > 0 && !opBefore(op.Pred[i-1], p)) || !opBefore(p, op.ID) {
				return "overwrites an operation it cannot"
			}
		}
		if op.Action == crdt.ActMakeMap {
			made[op.ID] = true
		}
	}
	return ""
}

// opBefore is Automerge's order of operation IDs: counter, then actor.
func opBefore(a, b crdt.OpID) bool {
	if a.Counter != b.Counter {
		return a.Counter < b.Counter
	}
	return a.Actor < b.Actor
}

// learn takes in what c made.
func (s *structure) learn(c *crdt.DecodedChange) {
	actor := c.Actor
	old, had := s.actors[actor]
	s.actors[actor] = actorState{seq: c.Seq, maxOp: c.MaxOp()}
	s.maxOps[c.Hash] = c.MaxOp()
	h := c.Hash
	s.onUndo(func() {
		if had {
			s.actors[actor] = old
		} else {
			delete(s.actors, actor)
		}
		delete(s.maxOps, h)
	})
	for _, op := range c.Ops {
		k := objKey{op.Obj, op.Key}
		s.ops[k] = append(s.ops[k], op.ID)
		s.onUndo(func() { s.ops[k] = s.ops[k][:len(s.ops[k])-1] })
		if op.Action == crdt.ActMakeMap {
			id := op.ID
			s.objects[id] = true
			s.onUndo(func() { delete(s.objects, id) })
		}
	}
}
