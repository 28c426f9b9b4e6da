package worker

import (
	"context"
	"errors"
	"fmt"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/repo"
	"haven/shared/syncer"
)

// fromClusterKey marks a context whose appends carry changes another relay
// node stored.
type fromClusterKey struct{}

// FromCluster marks ctx: the chunks appended under it hold changes another
// relay node stored and published, which the Host stores without
// publishing them again (each would otherwise go round the cluster for
// ever, a copy at each pass).
func FromCluster(ctx context.Context) context.Context {
	return context.WithValue(ctx, fromClusterKey{}, true)
}

// IsFromCluster reports whether ctx was marked by FromCluster.
func IsFromCluster(ctx context.Context) bool {
	v, _ := ctx.Value(fromClusterKey{}).(bool)
	return v
}

// errUnloadable marks chunks from another node that do not load here.
var errUnloadable = errors.New("changes from another relay node do not load")

// errHeldBack marks an absorb that applied more than the other node's
// changes: Automerge holds back, inside the document, a peer's change
// whose dependencies it lacks, and applies it the moment they arrive. If
// they arrive from another node, the peer's change would be stored with
// them, marked as that node's: never vetted here, never published, and yet
// confirmed to the peer. The document is reloaded from the store instead,
// which drops what was held back; the peer's sync exchange sends it again,
// and it is vetted and published like any other.
var errHeldBack = errors.New("another node's changes released changes held back for a peer")

// absorb loads chunks another node stored into the document, creating it
// if this node has never held it, stores the result here (marked
// FromCluster) and generates what the peers in notify need now. Nothing of
// the chunks is vetted: the node that published them vetted them before it
// stored them; nothing else is stored with them (errHeldBack). Loading
// happens here, in a worker, like every other Automerge call on bytes from
// outside the process.
func (w *Worker) absorb(ctx context.Context, id docid.ID, chunks [][]byte, notify []string) ([]syncer.Out, error) {
	ctx = FromCluster(ctx)
	// theirs are the changes the chunks name; named is false if a chunk
	// (a whole document) does not name them.
	theirs, named := map[crdt.Hash]bool{}, true
	for _, c := range chunks {
		hs, ok := crdt.ChunkChanges(c)
		named = named && ok
		for _, h := range hs {
			theirs[h] = true
		}
	}
	load := func(doc *crdt.Doc) error {
		for _, c := range chunks {
			if err := doc.LoadIncremental(c); err != nil {
				return fmt.Errorf("%w: %v", errUnloadable, err)
			}
		}
		return nil
	}
	h, err := w.repo.Open(id)
	switch {
	case errors.Is(err, repo.ErrNotFound):
		doc := crdt.New() // holds nothing back
		if err := load(doc); err != nil {
			return nil, err
		}
		if _, err := w.repo.Create(ctx, id, doc); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		err := h.Try(ctx, func(doc *crdt.Doc) error {
			before := doc.Heads()
			if err := load(doc); err != nil {
				return err
			}
			if !named {
				return errHeldBack // cannot tell: absorb into the stored document, which holds nothing back
			}
			added, err := doc.ChangesAfter(before)
			if err != nil {
				return err
			}
			for _, c := range added {
				if !theirs[c.Hash] {
					return errHeldBack
				}
			}
			return nil
		})
		if errors.Is(err, errHeldBack) {
			// Try reloaded the document from the store: nothing is held
			// back in it now.
			err = h.Try(ctx, load)
		}
		if err != nil {
			return nil, err
		}
	}
	return w.eng.Sync(ctx, id, notify)
}
