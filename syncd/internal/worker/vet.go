package worker

import (
	"context"
	"errors"
	"fmt"
	"net/rpc"
	"slices"
	"sync"
	"sync/atomic"

	"haven/shared/cert"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/syncer"
)

// ErrMalformedChange is a change that does not decode: refused whole.
var ErrMalformedChange = errors.New("malformed change")

// ErrTooLarge refuses changes that would take a document past its size
// limit.
var ErrTooLarge = errors.New("the document would grow past its size limit")

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
	// proven and reloaded count batches checked in proportion to the
	// change and by saving and reloading the whole document.
	proven, reloaded atomic.Int64

	mu      sync.Mutex
	guards  map[docid.ID]*guarded
	limits  map[docid.ID][2]int64 // stored bytes and the limit, from the work item being done
	trust   *cert.Trust
	version uint64 // of trust; 0: never fetched
	want    uint64 // the version the parent last announced
}

type guarded struct {
	doc   *crdt.Doc
	heads []crdt.Hash
	g     *record.Guard
	// nhs and home are the NHS number and holding home the parent last
	// allowed this record (checkPerson), so it is asked again only when
	// either changes (a new number, or a move to another home).
	nhs, home string
}

func newVetter(host *rpc.Client) *vetter {
	return &vetter{host: host, guards: map[docid.ID]*guarded{}, limits: map[docid.ID][2]int64{}}
}

// setLimit records a document's stored size and size limit for the work
// item about it (one at a time per document).
func (v *vetter) setLimit(id docid.ID, stored, max int64) {
	v.mu.Lock()
	v.limits[id] = [2]int64{stored, max}
	v.mu.Unlock()
}

// clearLimit forgets a document's limits once its work item is done, so
// that the vetter keeps nothing for documents no longer worked on.
func (v *vetter) clearLimit(id docid.ID) {
	v.mu.Lock()
	delete(v.limits, id)
	v.mu.Unlock()
}

// evicted drops the guard built from a document the repo let go (see
// repo.Repo.OnEvict): it refers to the document, and its own record of the
// history can be as large. It is built again when the document next
// changes.
func (v *vetter) evicted(id docid.ID, doc *crdt.Doc) {
	v.mu.Lock()
	if g := v.guards[id]; g != nil && g.doc == doc {
		delete(v.guards, id)
	}
	v.mu.Unlock()
}

// forget drops a document's guard whatever it was built from.
func (v *vetter) forget(id docid.ID) {
	v.mu.Lock()
	delete(v.guards, id)
	v.mu.Unlock()
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
func (v *vetter) vet(ctx context.Context, id docid.ID, doc *crdt.Doc, before []crdt.Hash, msgs []syncer.In) error {
	trust, err := v.currentTrust()
	if err != nil {
		return err
	}
	news, g, err := v.added(id, doc, before, msgs)
	if err != nil {
		return err
	}
	v.mu.Lock()
	lim := v.limits[id]
	v.mu.Unlock()
	if lim[1] > 0 {
		grow := lim[0]
		for _, c := range news {
			grow += int64(c.Size())
		}
		if grow > lim[1] {
			return fmt.Errorf("%w (%d bytes, limit %d)", ErrTooLarge, grow, lim[1])
		}
	}
	var newActors []*crdt.DecodedChange
	for _, c := range news {
		if !g.g.KnowsActor(c.Actor) {
			newActors = append(newActors, c)
		}
	}
	if err := g.g.Check(news, trust); err != nil {
		return err
	}
	if err := v.checkPerson(id, doc, g, news); err != nil {
		return err
	}
	if err := v.checkWriters(id, g, news, msgs); err != nil {
		return err
	}
	g.heads = doc.Heads()
	if len(newActors) > 0 {
		v.tellProvenance(id, newActors, msgs)
	}
	if g.g.Proven() {
		// Each change is proven to keep the document loadable, in
		// proportion to the change (see record's structure.go).
		v.proven.Add(1)
		return nil
	}
	// A document Haven does not know may hold anything Automerge can, and
	// a change not proven may be malformed: prove the whole still loads.
	v.reloaded.Add(1)
	if err := syncer.RoundTrips(doc); err != nil {
		v.mu.Lock()
		delete(v.guards, id) // it took in what is now refused: the document is reloaded
		v.mu.Unlock()
		return err
	}
	return nil
}

// checkPerson refuses a resident's record that names an NHS number another
// record holds (record.PersonRule): asked of the parent, which knows every
// record's number, whenever the number differs from the one last allowed.
// It runs before the changes are stored, so a second record of one person
// goes nowhere, whichever client made it.
func (v *vetter) checkPerson(id docid.ID, doc *crdt.Doc, g *guarded, news []*crdt.DecodedChange) error {
	if t, _, _ := doc.Get("type"); t != record.TypeResident {
		return nil
	}
	nhs, h := record.NHSNumberOf(doc), g.g.Home()
	if (nhs == "" || nhs == g.nhs) && h == g.home {
		return nil
	}
	var r PersonReply
	if err := v.host.Call("Host.Person", PersonArgs{Doc: id.String(), Home: h, NHS: nhs}, &r); err != nil {
		return fmt.Errorf("ask who holds the NHS number: %w", err)
	}
	if r.Rule != "" {
		e := &record.RuleError{Rule: r.Rule, Detail: r.Detail, Path: "identity.nhsNumber"}
		if r.Rule == record.RuleTransfer {
			e.Path = "transfers"
		}
		if len(news) > 0 {
			e.Change = news[len(news)-1].Hash
		}
		return e
	}
	g.nhs, g.home = nhs, h
	return nil
}

// checkWriters refuses a change to a region's document (the directory of
// services) unless a message from a peer that may write it carried the
// change: the parent names which peers may (Host.Writers), by their
// device's organisation. A change no message of the batch carried (held
// back earlier for want of its dependencies) is refused too, since who
// sent it is not known; its sender sends it again.
func (v *vetter) checkWriters(id docid.ID, g *guarded, news []*crdt.DecodedChange, msgs []syncer.In) error {
	if g.g.Type() != record.TypeServices || len(news) == 0 {
		return nil
	}
	args := WritersArgs{Doc: id.String()}
	for _, m := range msgs {
		if !slices.Contains(args.Peers, m.From) {
			args.Peers = append(args.Peers, m.From)
		}
	}
	var r WritersReply
	if err := v.host.Call("Host.Writers", args, &r); err != nil {
		return fmt.Errorf("ask who may write the document: %w", err)
	}
	byWriter := map[crdt.Hash]bool{}
	for _, m := range msgs {
		if !slices.Contains(r.Writers, m.From) {
			continue
		}
		raws, _ := crdt.SyncMessageChanges(m.Data)
		for _, raw := range raws {
			if c, err := crdt.DecodeChange(raw); err == nil {
				byWriter[c.Hash] = true
			}
		}
	}
	for _, c := range news {
		if !byWriter[c.Hash] {
			return &record.RuleError{Rule: record.RuleReadOnly, Path: "services", Change: c.Hash}
		}
	}
	return nil
}

// added returns the changes the messages added to doc since before, in
// causal order, and the document's guard as of before. They are read from
// the messages themselves (the cost of the change) when the messages
// account for everything added: every head of the document, and every
// dependency of an added change, is either added or known to the guard.
// Otherwise (a change held back earlier for want of its dependencies, now
// applied) they are asked of Automerge, at the cost of the history.
func (v *vetter) added(id docid.ID, doc *crdt.Doc, before []crdt.Hash, msgs []syncer.In) ([]*crdt.DecodedChange, *guarded, error) {
	g, fresh, err := v.guard(id, doc, before)
	if err != nil {
		return nil, nil, err
	}
	if !fresh && len(before) > 0 {
		if news, ok := g.fromMessages(doc, msgs); ok {
			return news, g, nil
		}
	}
	raws, err := doc.RawChangesSince(before)
	if err != nil {
		return nil, nil, err
	}
	news := make([]*crdt.DecodedChange, len(raws))
	for i, raw := range raws {
		if news[i], err = crdt.DecodeChange(raw); err != nil {
			return nil, nil, fmt.Errorf("%w: %v", ErrMalformedChange, err)
		}
	}
	if fresh && len(before) > 0 {
		if err := g.learnUpTo(doc, news); err != nil {
			return nil, nil, err
		}
	}
	return news, g, nil
}

// fromMessages finds the changes the messages carried that doc now holds
// and the guard has not taken in, in causal order; ok is false when they
// may not be all the document added.
func (g *guarded) fromMessages(doc *crdt.Doc, msgs []syncer.In) ([]*crdt.DecodedChange, bool) {
	byHash := map[crdt.Hash]*crdt.DecodedChange{}
	var order []crdt.Hash
	for _, m := range msgs {
		raws, err := crdt.SyncMessageChanges(m.Data)
		if err != nil {
			return nil, false
		}
		for _, raw := range raws {
			c, err := crdt.DecodeChange(raw)
			if err != nil {
				return nil, false // the slow path reports it
			}
			if g.g.Knows(c.Hash) || byHash[c.Hash] != nil || !doc.HasChange(c.Hash) {
				continue
			}
			byHash[c.Hash] = c
			order = append(order, c.Hash)
		}
	}
	accounted := func(h crdt.Hash) bool { return byHash[h] != nil || g.g.Knows(h) }
	for _, h := range doc.Heads() {
		if !accounted(h) {
			return nil, false
		}
	}
	for _, c := range byHash {
		for _, d := range c.Deps {
			if !accounted(d) {
				return nil, false
			}
		}
	}
	// Causal order: a change after everything it depends on.
	var out []*crdt.DecodedChange
	done := map[crdt.Hash]bool{}
	var visit func(h crdt.Hash)
	visit = func(h crdt.Hash) {
		c := byHash[h]
		if c == nil || done[h] {
			return
		}
		done[h] = true
		for _, d := range c.Deps {
			visit(d)
		}
		out = append(out, c)
	}
	for _, h := range order {
		visit(h)
	}
	return out, true
}

// tellProvenance tells the parent which peer's message first brought each
// new actor's changes: the relay keeps, for History, which enrolled device
// sent what (a change's own message names whoever the sender claims).
func (v *vetter) tellProvenance(id docid.ID, changes []*crdt.DecodedChange, msgs []syncer.In) {
	carried := map[crdt.Hash]string{}
	for _, m := range msgs {
		raws, err := crdt.SyncMessageChanges(m.Data)
		if err != nil {
			continue
		}
		for _, raw := range raws {
			if c, err := crdt.DecodeChange(raw); err == nil {
				if _, ok := carried[c.Hash]; !ok {
					carried[c.Hash] = m.From
				}
			}
		}
	}
	args := ProvenanceArgs{Doc: id.String(), Actors: map[string]string{}}
	for _, c := range changes {
		if peer, ok := carried[c.Hash]; ok {
			if _, seen := args.Actors[c.Actor]; !seen {
				args.Actors[c.Actor] = peer
			}
		}
	}
	if len(args.Actors) > 0 {
		v.host.Go("Host.Provenance", args, &Empty{}, nil) // not waited for: it is for History, never for safety
	}
}

// guard returns the document's guard. fresh reports a guard just made,
// which has taken in nothing yet: the caller has it learn the history that
// precedes the new changes (learnUpTo).
func (v *vetter) guard(id docid.ID, doc *crdt.Doc, before []crdt.Hash) (g *guarded, fresh bool, err error) {
	v.mu.Lock()
	g = v.guards[id]
	v.mu.Unlock()
	if g != nil && g.doc == doc && crdt.SameHeads(g.heads, before) {
		return g, false, nil
	}
	g = &guarded{doc: doc, heads: before, g: record.NewGuard(id)}
	v.mu.Lock()
	v.guards[id] = g
	v.mu.Unlock()
	return g, true, nil
}

// learnUpTo has a fresh guard take in the document's history but news.
func (g *guarded) learnUpTo(doc *crdt.Doc, news []*crdt.DecodedChange) error {
	fresh := make(map[crdt.Hash]bool, len(news))
	for _, c := range news {
		fresh[c.Hash] = true
	}
	all, err := doc.RawChangesSince(nil)
	if err != nil {
		return err
	}
	for _, raw := range all {
		c, err := crdt.DecodeChange(raw)
		if err != nil {
			return fmt.Errorf("stored history does not decode: %w", err)
		}
		if !fresh[c.Hash] {
			g.g.Learn(c)
		}
	}
	return nil
}
