package relay

import (
	"context"
	"errors"
	"fmt"

	"haven/shared/record"
	"haven/shared/syncer"
	"haven/syncd/internal/worker"
)

// A region's document (owner record.Region: the directory of services) is
// every device's to hold, an advice line's included, which otherwise holds
// only what it opened; only GP hubs' and the advice line's devices may
// change it (orgs.Scope.WritesRegion), which the workers enforce by asking
// Writers about each batch that changes it.

// adminPeer is the engine peer the relay's administrator writes as (a
// services load). A device's peers are named "device/client#n", so no
// device's is this.
const adminPeer = "syncd-admin"

// Writers returns those of peers whose devices may change doc, and the
// administrator's; a peer whose connection ended counts as one that may
// not.
func (h host) Writers(doc string, peers []string) []string {
	s := h.s
	region := s.owner(doc) == record.Region
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range peers {
		if c := s.peers[p]; region && (p == adminPeer || c != nil && c.sc().WritesRegion()) {
			out = append(out, p)
		}
	}
	return out
}

// servicesWriter is how the relay has a worker write a services load;
// *worker.Pool implements it.
type servicesWriter interface {
	ServicesChange(ctx context.Context, doc string, list []record.Service) (worker.ServicesReply, error)
}

// LoadServices makes a region's directory of services hold exactly list
// while the relay runs (syncd admin services-load): a worker writes the
// change, which the engine then takes in as it would a device's (vetted,
// stored, and sent to every device subscribed to the directory).
func (s *Server) LoadServices(ctx context.Context, doc string, list []record.Service) (written, removed int, err error) {
	w, ok := s.work.(servicesWriter)
	if !ok || s.owner(doc) != record.Region {
		return 0, 0, errors.New("not a region's directory of services, or no worker to write it")
	}
	change, err := w.ServicesChange(ctx, doc, list)
	if err != nil || change.Msg == nil {
		return change.Written, change.Removed, err
	}
	args := worker.WorkArgs{Doc: doc, TrustVersion: s.trustVersion(), StoredBytes: s.storedBytes(doc), MaxDocBytes: s.cfg.Limits.DocBytes,
		Msgs: []syncer.In{{From: adminPeer, Data: change.Msg}}, Peers: []syncer.Peer{{ID: adminPeer, Ephemeral: true}}}
	s.mu.Lock()
	s.addFollowersLocked(&args)
	end := s.beginOutsideLocked(doc)
	s.mu.Unlock()
	reply, err := s.work.Work(ctx, args)
	end()
	s.work.Forget(adminPeer)
	if err != nil {
		return 0, 0, err
	}
	if f := reply.Failed; f != nil {
		return 0, 0, fmt.Errorf("the relay refused the change: %s", f.Reason)
	}
	s.deliver(reply.Out)
	s.log.Info("directory of services loaded", "doc", doc, "written", change.Written, "removed", change.Removed)
	return change.Written, change.Removed, nil
}
