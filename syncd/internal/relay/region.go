package relay

import (
	"sort"

	"haven/shared/record"
)

// A region's document (owner record.Region: the directory of services) is
// every device's to hold, an advice line's included, which otherwise holds
// only what it opened; only GP hubs' and the advice line's devices may
// change it (orgs.Scope.WritesRegion), which the workers enforce by asking
// Writers about each batch that changes it.

// regionDocs lists the region's documents, sorted.
func (s *Server) regionDocs() []string {
	s.mu.Lock()
	var out []string
	for doc, owner := range s.owners {
		if owner == record.Region {
			out = append(out, doc)
		}
	}
	s.mu.Unlock()
	sort.Strings(out)
	return out
}

// Writers returns those of peers whose devices may change doc; a peer
// whose connection ended counts as one that may not.
func (h host) Writers(doc string, peers []string) []string {
	s := h.s
	region := s.owner(doc) == record.Region
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, p := range peers {
		if c := s.peers[p]; c != nil && region && c.sc().WritesRegion() {
			out = append(out, p)
		}
	}
	return out
}
