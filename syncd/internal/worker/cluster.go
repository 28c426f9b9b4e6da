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

// absorb loads chunks another node stored into the document, creating it
// if this node has never held it, stores the result here (marked
// FromCluster) and generates what the peers in notify need now. Nothing is
// vetted: the node that published the chunks vetted them before it stored
// them. Loading happens here, in a worker, like every other Automerge call
// on bytes from outside the process.
func (w *Worker) absorb(ctx context.Context, id docid.ID, chunks [][]byte, notify []string) ([]syncer.Out, error) {
	ctx = FromCluster(ctx)
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
		doc := crdt.New()
		if err := load(doc); err != nil {
			return nil, err
		}
		if _, err := w.repo.Create(ctx, id, doc); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	default:
		if err := h.Try(ctx, load); err != nil {
			return nil, err
		}
	}
	return w.eng.Sync(ctx, id, notify)
}
