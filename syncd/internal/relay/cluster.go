package relay

import (
	"context"
	"errors"
	"time"

	"haven/syncd/internal/worker"
)

// Cluster carries each change this relay stores to the other nodes of the
// relay (package cluster implements it over JetStream). A relay alone
// still runs one, a cluster of one node.
type Cluster interface {
	// Publish has the cluster hold chunk, a change to doc owned by owner,
	// at its replication, then runs keep (this node's own copy). Nil only
	// if both succeeded.
	Publish(ctx context.Context, doc, owner string, chunk []byte, keep func() error) error
	// CaughtUp waits until this node has applied every change the
	// cluster held when asked, and reports whether it did before ctx
	// ended (false also when the cluster cannot say).
	CaughtUp(ctx context.Context) bool
}

// listCatchUpWait is the longest a device's list of its documents waits
// for this node to catch up with the cluster (listScope): a node just
// started, or just healed from a partition, applies what the others took
// meanwhile within a second or two.
const listCatchUpWait = 5 * time.Second

// awaitCatchUp waits, before c is told which documents it should hold,
// until this node has every document the cluster held (listCatchUpWait at
// most). A document this node has not applied yet would be missing from
// the list, and a fresh device, holding nothing that names it (the home's
// resident list is one such), would never ask for it. If the node is still
// behind, c is marked listedBehind, and is sent each document new to this
// node that its list would have had (offerNew).
func (s *Server) awaitCatchUp(ctx context.Context, c *conn) {
	if s.cfg.Cluster == nil {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, listCatchUpWait)
	defer cancel()
	if s.cfg.Cluster.CaughtUp(wctx) {
		return
	}
	if c.listedBehind.Swap(true) {
		return // one watch a connection, however often it asks for its list
	}
	s.log.Info("device listed while this node is behind the cluster; documents new here are sent to it", "device", c.dev.ID)
	// Once the node has applied what the cluster held then, every document
	// the list missed has reached it, and has been offered (Absorb offers
	// before the node counts a change applied).
	s.wg.Go(func() {
		for c.ctx.Err() == nil {
			if s.cfg.Cluster.CaughtUp(c.ctx) {
				c.listedBehind.Store(false)
				return
			}
			t := time.NewTimer(catchUpRetry)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
			}
		}
	})
}

// catchUpRetry is the pause between two asks whether a node that could
// not say how far the cluster holds its changes (no leader) has caught up.
const catchUpRetry = time.Second

// offerNew sends doc, new to this node, whole to each device connected
// here that was listed while this node was behind (awaitCatchUp) and
// whose list would have had it, and is not following it already.
func (s *Server) offerNew(doc, owner string) {
	var to []*conn
	s.mu.Lock()
	for _, c := range s.peers {
		if c.listedBehind.Load() && c.listable(doc, owner) && !s.subs[doc][c.peer.ID] {
			to = append(to, c)
		}
	}
	s.mu.Unlock()
	for _, c := range to {
		s.wg.Go(func() { c.fetch(c.ctx, doc) })
	}
}

// ErrClosing is returned for a change from another node offered while the
// relay shuts down: it was not applied (see Absorb).
var ErrClosing = errors.New("relay shutting down")

// appendChunk stores a chunk a worker made. A change of this relay's own
// (one a device sent here) goes to the cluster first and is kept here only
// once the cluster holds it, so the worker's reply, and the device's
// acknowledgement with it, wait for both: a node lost after answering
// loses nothing it confirmed. Keeping the local copy second means a change
// stored here is always one the cluster holds. A change from another node
// (worker.FromCluster) is only kept.
func (s *Server) appendChunk(ctx context.Context, doc string, chunk []byte) (uint64, error) {
	var seq uint64
	keep := func() (err error) {
		seq, err = s.st.AppendChunk(ctx, doc, chunk)
		return err
	}
	var err error
	if s.cfg.Cluster != nil && !worker.IsFromCluster(ctx) {
		err = s.cfg.Cluster.Publish(ctx, doc, s.owner(doc), chunk, keep)
	} else {
		err = keep()
	}
	return seq, err
}

// Absorb applies a change another node of the cluster stored, as that
// node's worker applied it: the document is created here if this node has
// never held it (owned by owner, as the other node decided), the change is
// stored here, and the peers connected here that follow the document are
// sent what they need, as after a change a device sent (process). It
// returns an error only for a change not applied that a later try may
// apply; one that cannot ever be applied is reported and dropped.
func (s *Server) Absorb(ctx context.Context, doc, owner string, chunk []byte) error {
	s.mu.Lock()
	if s.closing || s.work == nil {
		s.mu.Unlock()
		return ErrClosing
	}
	s.wg.Add(1)
	defer s.wg.Done()
	known := s.owners[doc] != ""
	s.mu.Unlock()
	if !known && owner != "" {
		if err := s.st.Put(ctx, nsOwner, doc, []byte(owner)); err != nil {
			return err
		}
		s.mu.Lock()
		if s.owners[doc] == "" {
			s.owners[doc] = owner
		}
		n := len(s.owners)
		s.mu.Unlock()
		s.metrics.documents.Set(float64(n))
	}
	args := worker.WorkArgs{Doc: doc, Chunks: [][]byte{chunk}, TrustVersion: s.trustVersion()}
	s.mu.Lock()
	s.addFollowersLocked(&args)
	end := s.beginOutsideLocked(doc)
	s.mu.Unlock()
	reply, err := s.work.Work(ctx, args)
	end()
	defer s.forgetDeparted(args.Peers)
	switch {
	case errors.Is(err, worker.ErrQuarantined):
		s.metrics.quarantined.WithLabelValues("chunk").Inc()
		s.log.Error("change from another node quarantined: it crashed a CRDT worker twice", "doc", doc, "bytes", len(chunk))
		return nil
	case err != nil:
		return err
	case reply.Failed != nil:
		s.metrics.quarantined.WithLabelValues("chunk").Inc()
		s.log.Error("change from another node does not load; dropped", "doc", doc, "bytes", len(chunk))
		return nil
	}
	s.deliver(reply.Out)
	if reply.Record != nil {
		s.recordFacts(ctx, doc, reply.Record)
	}
	if !known {
		s.created(ctx, doc, nil) // devices here that asked for it before it existed
		s.syncFollowers(ctx, doc)
		s.offerNew(doc, owner)
	}
	return nil
}

// syncFollowers sends the peers following doc what they need of it now.
// For a document another node created: a device that asked for it while
// this node created it was subscribed after the creating item read its
// followers, and its request, worked before the document existed here,
// was answered with nothing; nothing else would tell it more.
func (s *Server) syncFollowers(ctx context.Context, doc string) {
	args := worker.WorkArgs{Doc: doc}
	s.mu.Lock()
	s.addFollowersLocked(&args)
	s.mu.Unlock()
	if len(args.Notify) == 0 {
		return
	}
	reply, err := s.work.Work(ctx, args)
	defer s.forgetDeparted(args.Peers)
	if err != nil {
		s.log.Error("sending a document another node created", "doc", doc, "err", err)
		return
	}
	s.deliver(reply.Out)
}

// addFollowersLocked has the work item tell the peers connected here that
// follow its document what they need of it. Caller holds s.mu.
func (s *Server) addFollowersLocked(args *worker.WorkArgs) {
	for p := range s.subs[args.Doc] {
		if c := s.peers[p]; c != nil {
			args.Notify = append(args.Notify, p)
			args.Peers = append(args.Peers, c.peer)
		}
	}
}
