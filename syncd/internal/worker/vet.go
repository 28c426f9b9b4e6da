package worker

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
	"sync"

	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/syncer"
)

// ErrMalformedChange is a change that does not decode: refused whole.
var ErrMalformedChange = errors.New("malformed change")

// vetter checks every change a peer adds to a document before the engine
// stores or forwards it: the record's rules (record.Guard), read from the
// changes themselves at a cost in proportion to them, and, for documents
// of types Haven does not know, that the document still loads.
//
// It keeps one Guard per document, built from the document's history the
// first time the document changes in this child and advanced with every
// change it accepts. A guard is tied to the document object it was built
// from and to the heads it has seen; when either differs (the repo reloaded
// the document after a failed write), it is built again.
type vetter struct {
	host *rpc.Client

	mu      sync.Mutex
	guards  map[docid.ID]*guarded
	trust   *cert.Trust
	version uint64 // of trust; 0: never fetched
	want    uint64 // the version the parent last announced
}

type guarded struct {
	doc   *crdt.Doc
	heads []crdt.Hash
	g     *record.Guard
}

func newVetter(host *rpc.Client) *vetter {
	return &vetter{host: host, guards: map[docid.ID]*guarded{}}
}

// announce records the trust version the parent holds (sent with each work
// item), so the next check fetches it if it is newer than ours.
func (v *vetter) announce(version uint64) {
	v.mu.Lock()
	if version > v.want {
		v.want = version
	}
	v.mu.Unlock()
}

// currentTrust returns the parent's trust, fetching it when announced newer.
func (v *vetter) currentTrust() (*cert.Trust, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.trust != nil && v.version >= v.want {
		return v.trust, nil
	}
	var r TrustReply
	if err := v.host.Call("Host.Trust", Empty{}, &r); err != nil {
		return nil, fmt.Errorf("fetch trust: %w", err)
	}
	v.trust, v.version = cert.NewTrust(r.Anchor, r.Revocations), r.Version
	if r.Version > v.want {
		v.want = r.Version
	}
	return v.trust, nil
}

// vet is the engine's Vet.
func (v *vetter) vet(ctx context.Context, id docid.ID, doc *crdt.Doc, before []crdt.Hash) error {
	raws, err := doc.RawChangesSince(before)
	if err != nil {
		return err
	}
	news := make([]*crdt.DecodedChange, len(raws))
	for i, raw := range raws {
		if news[i], err = crdt.DecodeChange(raw); err != nil {
			return fmt.Errorf("%w: %v", ErrMalformedChange, err)
		}
	}
	trust, err := v.currentTrust()
	if err != nil {
		return err
	}
	g, err := v.guard(id, doc, before, news)
	if err != nil {
		return err
	}
	if err := g.g.Check(news, trust); err != nil {
		return err
	}
	g.heads = doc.Heads()
	if g.g.Type() == "" {
		// A document Haven does not know may hold anything Automerge can:
		// prove the whole still loads.
		return syncer.RoundTrips(doc)
	}
	return syncer.RoundTrips(doc)
}

// guard returns the document's guard as of before, building it from the
// history that precedes news if the cached one does not match.
func (v *vetter) guard(id docid.ID, doc *crdt.Doc, before []crdt.Hash, news []*crdt.DecodedChange) (*guarded, error) {
	v.mu.Lock()
	g := v.guards[id]
	v.mu.Unlock()
	if g != nil && g.doc == doc && crdt.SameHeads(g.heads, before) {
		return g, nil
	}
	g = &guarded{doc: doc, heads: before, g: record.NewGuard(id)}
	if len(before) > 0 {
		fresh := make(map[crdt.Hash]bool, len(news))
		for _, c := range news {
			fresh[c.Hash] = true
		}
		all, err := doc.RawChangesSince(nil)
		if err != nil {
			return nil, err
		}
		for _, raw := range all {
			c, err := crdt.DecodeChange(raw)
			if err != nil {
				return nil, fmt.Errorf("stored history does not decode: %w", err)
			}
			if !fresh[c.Hash] {
				g.g.Learn(c)
			}
		}
	}
	v.mu.Lock()
	v.guards[id] = g
	v.mu.Unlock()
	return g, nil
}
