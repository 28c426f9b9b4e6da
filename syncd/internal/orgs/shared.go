package orgs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"haven/shared/store"
)

// A registry shared by the relay's nodes.
//
// In a cluster (Registry.Cluster set: syncd serve, a node alone included)
// the cluster's copy of each shared key is the authoritative one and this
// node's store a cache of it: every change is a read-modify-write of the
// cluster's copy, written there first, at the cluster's replication, and
// then here (as the relay publishes a document change before keeping it),
// and one that lost a race with another node's write is read again and
// redone (compare-and-set on the key's revision). So a one-time code is
// redeemed once in the whole cluster, a device ID is never handed out
// twice, and a request is approved or refused, not both. Every node hears
// every write (ApplyShared, fed by the cluster's watch of the registry,
// this node's own writes included) and keeps it unless it already holds a
// later revision of the key.
//
// What is shared: sharedNS below. What is not, and why:
//   - seen (last-seen times): written up to once a minute per device on
//     every connection, which would put the whole cluster's connection
//     rate through one bucket; each node lists when it last saw a device.
//   - first (first accesses of an advice-line device to a record): a
//     device that opens a record through a second node is recorded as a
//     first access there too: one more audit event, never one fewer.
//   - the audit log: its own stream, copied into each node's own chain
//     (ApplyAudit); reviews of break-glass events are shared keys.
//
// With no cluster (an admin command on a stopped relay, syncd demo) the
// registry writes this store only, and marks each key it wrote
// (nsUnshared): the next syncd serve puts those in the cluster as the
// latest word on them (ShareUnshared), and the keys the cluster has never
// held, such as a registry made before there were clusters, as new ones
// (ShareMissing).

// Cluster is the relay's nodes' shared copy of the registry and of the
// audit log (package cluster implements it over JetStream).
type Cluster interface {
	// RegistryGet returns the cluster's value of (ns, key) as the latest
	// write left it, and its revision; store.ErrNotFound if never written
	// or deleted (with the delete's revision, else 0).
	RegistryGet(ctx context.Context, ns, key string) (val []byte, rev uint64, err error)
	// RegistryPut and RegistryDelete write (ns, key) if its revision is
	// still rev (0: never written), at the cluster's replication, and
	// return the write's revision; ok false, and nothing written, if
	// another write came first.
	RegistryPut(ctx context.Context, ns, key string, val []byte, rev uint64) (newRev uint64, ok bool, err error)
	RegistryDelete(ctx context.Context, ns, key string, rev uint64) (newRev uint64, ok bool, err error)
	// PublishAudit has the cluster hold audit events (JSON), in order,
	// each of organisation orgs[i] and named ids[i], and returns their
	// numbers in the cluster; a retry with the same id is stored once.
	PublishAudit(ctx context.Context, orgs, ids []string, events [][]byte) ([]uint64, error)
}

// ClusterAudit is an audit event as the cluster's stream holds it, for
// ApplyAudit.
type ClusterAudit struct {
	Seq   uint64 // its number in the cluster
	ID    string // its publication's name
	Event []byte // JSON, as published
}

const (
	// nsUnshared marks a key written with no cluster: "<ns>/<key>" → "".
	nsUnshared = "registry-unshared"
	// nsAuditCopied marks a cluster audit event copied into this node's
	// chain: seqKey(cluster seq) → "", written with the event.
	nsAuditCopied = "audit-copied"
)

// sharedNS are the namespaces the cluster holds.
var sharedNS = map[string]bool{nsOrgs: true, nsDevices: true, nsCodes: true, nsCreds: true, nsStaffReq: true,
	nsCerts: true, nsRevoked: true, nsPreapproved: true, nsReviewed: true}

// errUnchanged, from a change's fn, writes nothing.
var errUnchanged = errors.New("unchanged")

// maxRaces bounds how often a change is redone after losing a race with
// another node's write to the same key.
const maxRaces = 20

// sharing is the registry's state for a cluster.
type sharing struct {
	// mu serialises this node's writes to the cluster and keeping shared
	// keys in the store; revs holds, per key, the revision last kept
	// here, so an older write heard late never overwrites a newer one.
	mu   sync.Mutex
	revs map[string]uint64

	// instance and seq name this process's audit publications.
	instance string
	seq      atomic.Uint64

	// pending are this process's audit publications not yet copied into
	// the chain, by publication ID; guarded by pendingMu.
	pendingMu sync.Mutex
	pending   map[string]*pendingAudit

	// copyMu serialises copying audit events into the chain, the
	// follower's (ApplyAudit) and an AuditAll's own (keepOwnAudit), so an
	// event is copied once.
	copyMu sync.Mutex

	// stopped closes when the follower that copies the audit stream has
	// stopped for good (StopCopyingAudit); stopOnce guards it.
	stopped  chan struct{}
	stopOnce sync.Once
}

// pendingAudit is an AuditAll waiting for its events to reach the chain:
// changes go with its last event; done closes once it is kept.
type pendingAudit struct {
	changes []store.Change
	done    chan struct{}
}

func newSharing() sharing {
	var b [8]byte
	rand.Read(b[:])
	return sharing{revs: map[string]uint64{}, instance: hex.EncodeToString(b[:]), pending: map[string]*pendingAudit{},
		stopped: make(chan struct{})}
}

func revKey(ns, key string) string { return ns + "\x00" + key }

// read returns (ns, key) where it is authoritative, with its revision:
// the cluster's copy, or with no cluster this store's.
func (r *Registry) read(ctx context.Context, ns, key string) ([]byte, uint64, error) {
	if r.Cluster == nil || !sharedNS[ns] {
		b, err := r.st.Get(ns, key)
		return b, 0, err
	}
	return r.Cluster.RegistryGet(ctx, ns, key)
}

// change is a read-modify-write of (ns, key) where it is authoritative:
// fn gets the current value (found false if there is none) and returns
// the next, or del to delete it, errUnchanged to write nothing, or an
// error to give up. In a cluster fn runs again if another node wrote the
// key between the read and the write, so fn must do nothing but decide.
func (r *Registry) change(ctx context.Context, ns, key string, fn func(cur []byte, found bool) (next []byte, del bool, err error)) error {
	for range maxRaces {
		cur, rev, err := r.read(ctx, ns, key)
		found := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		next, del, err := fn(cur, found)
		switch {
		case errors.Is(err, errUnchanged) || del && !found:
			return nil
		case err != nil:
			return err
		}
		ok, err := r.write(ctx, ns, key, next, del, rev)
		if err != nil || ok {
			return err
		}
	}
	return fmt.Errorf("registry %s %q: written elsewhere %d times over", ns, key, maxRaces)
}

// put sets (ns, key) to val, whatever it held.
func (r *Registry) put(ctx context.Context, ns, key string, val []byte) error {
	return r.change(ctx, ns, key, func([]byte, bool) ([]byte, bool, error) { return val, false, nil })
}

// del deletes (ns, key).
func (r *Registry) del(ctx context.Context, ns, key string) error {
	return r.change(ctx, ns, key, func([]byte, bool) ([]byte, bool, error) { return nil, true, nil })
}

// errTaken, from create, is a key someone holds already.
var errTaken = errors.New("taken")

// createKey sets (ns, key) to val if no one holds it: in a cluster, on no
// node. Otherwise errTaken.
func (r *Registry) createKey(ctx context.Context, ns, key string, val []byte) error {
	return r.change(ctx, ns, key, func(_ []byte, found bool) ([]byte, bool, error) {
		if found {
			return nil, false, errTaken
		}
		return val, false, nil
	})
}

// write writes (ns, key) where it is authoritative if its revision is
// still rev, then here; false, and nothing written, if another write came
// first.
func (r *Registry) write(ctx context.Context, ns, key string, val []byte, del bool, rev uint64) (bool, error) {
	if r.Cluster == nil || !sharedNS[ns] {
		if sharedNS[ns] {
			// Marked first: a mark with no write puts the old value in
			// the cluster again, which changes nothing.
			if err := r.st.Put(ctx, nsUnshared, ns+"/"+key, nil); err != nil {
				return false, err
			}
		}
		if del {
			return true, r.st.Delete(context.WithoutCancel(ctx), ns, key)
		}
		return true, r.st.Put(context.WithoutCancel(ctx), ns, key, val)
	}
	// Held from the write to keeping it here, so the watch's echo of this
	// write finds it kept and tells no one: the caller tells the relay
	// itself, and counts what it closed.
	r.share.mu.Lock()
	defer r.share.mu.Unlock()
	var newRev uint64
	var ok bool
	var err error
	if del {
		newRev, ok, err = r.Cluster.RegistryDelete(ctx, ns, key, rev)
	} else {
		newRev, ok, err = r.Cluster.RegistryPut(ctx, ns, key, val, rev)
	}
	if err != nil || !ok {
		return ok, err
	}
	// The cluster holds it: this node keeps it even if ctx ends now.
	_, err = r.keepLocked(context.WithoutCancel(ctx), ns, key, val, del, newRev)
	return true, err
}

// keep writes (ns, key) here as the cluster holds it at revision rev,
// unless this node holds that revision or a later one already; changed
// reports whether the store's value changed.
func (r *Registry) keep(ctx context.Context, ns, key string, val []byte, del bool, rev uint64) (changed bool, err error) {
	r.share.mu.Lock()
	defer r.share.mu.Unlock()
	return r.keepLocked(ctx, ns, key, val, del, rev)
}

// keepLocked is keep; the caller holds r.share.mu.
func (r *Registry) keepLocked(ctx context.Context, ns, key string, val []byte, del bool, rev uint64) (changed bool, err error) {
	k := revKey(ns, key)
	if rev <= r.share.revs[k] {
		return false, nil
	}
	old, gerr := r.st.Get(ns, key)
	switch {
	case gerr != nil && !errors.Is(gerr, store.ErrNotFound):
		return false, gerr
	case del && gerr != nil, !del && gerr == nil && bytes.Equal(old, val):
	case del:
		if err := r.st.Delete(ctx, ns, key); err != nil {
			return false, err
		}
		changed = true
	default:
		if err := r.st.Put(ctx, ns, key, val); err != nil {
			return false, err
		}
		changed = true
	}
	r.share.revs[k] = rev
	return changed, nil
}

// ApplyShared keeps one shared key as the cluster holds it, written on
// this node or another, and tells the relay what it changes: a device
// revoked (OnDeviceRevoked), a certificate revoked or a request decided
// (OnTrustChange), an organisation changed (OnScopesChange). Idempotent:
// a revision already kept changes nothing and tells no one.
func (r *Registry) ApplyShared(ctx context.Context, ns, key string, val []byte, deleted bool, rev uint64) error {
	if !sharedNS[ns] {
		r.log().Warn("a registry namespace this node does not share; skipped", "ns", ns)
		return nil
	}
	changed, err := r.keep(ctx, ns, key, val, deleted, rev)
	if err != nil || !changed || deleted {
		return err
	}
	switch ns {
	case nsDevices:
		var rec deviceRecord
		if json.Unmarshal(val, &rec) == nil && !rec.Revoked.IsZero() && r.OnDeviceRevoked != nil {
			r.OnDeviceRevoked(rec.ID)
		}
	case nsRevoked, nsStaffReq:
		if r.OnTrustChange != nil {
			r.OnTrustChange()
		}
	case nsOrgs:
		if r.OnScopesChange != nil {
			r.OnScopesChange()
		}
	}
	return nil
}

// ShareUnshared puts in the cluster every shared key this store wrote with
// no cluster (see nsUnshared), as the latest word on it, and clears its
// mark. Call it before the cluster's registry is applied here.
func (r *Registry) ShareUnshared(ctx context.Context) error {
	if r.Cluster == nil {
		return errors.New("orgs: no cluster to share with")
	}
	var marks []string
	if err := r.st.Scan(nsUnshared, "", func(k string, _ []byte) error { marks = append(marks, k); return nil }); err != nil {
		return err
	}
	for _, m := range marks {
		ns, key, _ := strings.Cut(m, "/")
		if sharedNS[ns] && key != "" {
			val, err := r.st.Get(ns, key)
			del := errors.Is(err, store.ErrNotFound)
			if err != nil && !del {
				return err
			}
			err = r.change(ctx, ns, key, func([]byte, bool) ([]byte, bool, error) { return val, del, nil })
			if err != nil {
				return fmt.Errorf("sharing %s written with the relay stopped: %w", ns, err)
			}
		}
		if err := r.st.Delete(ctx, nsUnshared, m); err != nil {
			return err
		}
	}
	if len(marks) > 0 {
		r.log().Info("registry written with the relay stopped now shared", "keys", len(marks))
	}
	return nil
}

// ShareMissing puts in the cluster, as new keys, the shared keys this
// store holds that the cluster has never held (a registry made before
// there were clusters, or copied from another node). Call it once the
// cluster's registry has been applied here: a key the cluster deleted is
// gone from this store by then, so a spent code never comes back.
func (r *Registry) ShareMissing(ctx context.Context) error {
	if r.Cluster == nil {
		return errors.New("orgs: no cluster to share with")
	}
	shared := 0
	for ns := range sharedNS {
		var keys []string
		var vals [][]byte
		err := r.st.Scan(ns, "", func(k string, v []byte) error {
			r.share.mu.Lock()
			_, known := r.share.revs[revKey(ns, k)]
			r.share.mu.Unlock()
			if !known {
				keys, vals = append(keys, k), append(vals, v)
			}
			return nil
		})
		if err != nil {
			return err
		}
		for i, k := range keys {
			newRev, ok, err := r.Cluster.RegistryPut(ctx, ns, k, vals[i], 0)
			switch {
			case err != nil:
				return fmt.Errorf("sharing %s: %w", ns, err)
			case ok:
				shared++
				r.share.mu.Lock()
				r.share.revs[revKey(ns, k)] = max(r.share.revs[revKey(ns, k)], newRev)
				r.share.mu.Unlock()
			}
			// !ok: another node shared it first, or the cluster wrote it
			// since; its value reaches this node through ApplyShared.
		}
	}
	if shared > 0 {
		r.log().Info("registry keys the cluster did not hold now shared", "keys", shared)
	}
	return nil
}

// auditAllShared is AuditAll in a cluster: each event goes to the
// cluster's audit stream, and reaches this node's chain, with changes
// beside the last one, through ApplyAudit, in the stream's order. It
// returns once the chain holds them. events is not empty.
func (r *Registry) auditAllShared(ctx context.Context, events []AuditEvent, vals [][]byte, changes []store.Change) (uint64, error) {
	ids, orgIDs := make([]string, len(vals)), make([]string, len(vals))
	for i := range ids {
		ids[i] = r.share.instance + "-" + strconv.FormatUint(r.share.seq.Add(1), 10)
		orgIDs[i] = events[i].Org
	}
	p := &pendingAudit{changes: changes, done: make(chan struct{})}
	last := ids[len(ids)-1]
	r.share.pendingMu.Lock()
	r.share.pending[last] = p
	r.share.pendingMu.Unlock()
	forget := func() {
		r.share.pendingMu.Lock()
		delete(r.share.pending, last)
		r.share.pendingMu.Unlock()
	}
	seqs, err := r.Cluster.PublishAudit(ctx, orgIDs, ids, vals)
	if err != nil {
		forget()
		return 0, err
	}
	first := seqs[0]
	t := time.NewTimer(auditCopyWait)
	defer t.Stop()
	select {
	case <-p.done:
		return first, nil
	case <-r.share.stopped:
		forget()
		return first, r.keepOwnAudit(context.WithoutCancel(ctx), seqs, vals, changes)
	case <-ctx.Done():
		forget()
		return 0, ctx.Err()
	case <-t.C:
		// The follower is behind (a node catching up with a long stream):
		// a break-glass opening or a device's batch does not wait for it.
		forget()
		r.log().Warn("audit events kept in this node's chain ahead of the cluster's earlier ones: the copy of the stream is behind",
			"first", first, "events", len(vals))
		return first, r.keepOwnAudit(context.WithoutCancel(ctx), seqs, vals, changes)
	}
}

// auditCopyWait bounds how long AuditAll waits for its events to reach
// this node's chain through the follower once the cluster holds them,
// which takes milliseconds unless the follower is catching up; then it
// keeps them itself, out of the stream's order in this node's chain (each
// keeps its number).
const auditCopyWait = 2 * time.Second

// ApplyAudit copies audit events of the cluster into this node's chain,
// in one write, with the changes of each AuditAll whose last event is
// among them. Called in stream order; idempotent: an event copied before
// is not copied again.
func (r *Registry) ApplyAudit(ctx context.Context, batch []ClusterAudit) error {
	if err := r.migrateAudit(ctx); err != nil {
		return err
	}
	r.share.copyMu.Lock()
	defer r.share.copyMu.Unlock()
	var vals [][]byte
	var changes []store.Change
	var done []string
	for _, a := range batch {
		r.share.pendingMu.Lock()
		p := r.share.pending[a.ID]
		r.share.pendingMu.Unlock()
		if p != nil {
			done = append(done, a.ID)
		}
		if _, err := r.st.Get(nsAuditCopied, seqKey(a.Seq)); err == nil {
			continue
		}
		var e AuditEvent
		if err := json.Unmarshal(a.Event, &e); err != nil {
			// Not one a node of this relay wrote: kept out of the chain, the
			// mark passes it.
			r.log().Error("an audit event in the cluster's stream does not decode; skipped", "seq", a.Seq, "bytes", len(a.Event))
			continue
		}
		e.ClusterSeq = a.Seq
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		vals = append(vals, b)
		changes = append(changes, store.Change{NS: nsAuditCopied, Key: seqKey(a.Seq), Val: []byte{}})
		if p != nil {
			changes = append(changes, p.changes...)
		}
	}
	if len(vals) > 0 {
		if _, err := r.st.AppendChained(ctx, auditLog, vals, changes); err != nil {
			return err
		}
	}
	for _, id := range done {
		r.share.pendingMu.Lock()
		p := r.share.pending[id]
		delete(r.share.pending, id)
		r.share.pendingMu.Unlock()
		if p != nil {
			close(p.done)
		}
	}
	return nil
}

// StopCopyingAudit says the follower copying the cluster's audit stream
// into this node's chain (ApplyAudit) has stopped for good, as the relay
// shuts down: from now on AuditAll, waiting or new, keeps its own events in
// the chain itself, under the numbers the cluster gave them, rather than
// wait for a copy that will not come. The next start's follower skips
// them. Call it only once ApplyAudit can no longer run.
func (r *Registry) StopCopyingAudit() {
	r.share.stopOnce.Do(func() { close(r.share.stopped) })
}

// keepOwnAudit keeps events the cluster numbered seqs (JSON vals) in this
// node's chain, those the follower has not copied already, with changes
// (which are idempotent: they may have gone with the copy too).
func (r *Registry) keepOwnAudit(ctx context.Context, seqs []uint64, vals [][]byte, changes []store.Change) error {
	if err := r.migrateAudit(ctx); err != nil {
		return err
	}
	r.share.copyMu.Lock()
	defer r.share.copyMu.Unlock()
	var keep [][]byte
	for i, seq := range seqs {
		if _, err := r.st.Get(nsAuditCopied, seqKey(seq)); err == nil {
			continue
		}
		var e AuditEvent
		if err := json.Unmarshal(vals[i], &e); err != nil {
			return err
		}
		e.ClusterSeq = seq
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		keep = append(keep, b)
		changes = append(changes, store.Change{NS: nsAuditCopied, Key: seqKey(seq), Val: []byte{}})
	}
	_, err := r.st.AppendChained(ctx, auditLog, keep, changes)
	return err
}

// AuditHead is the highest audit number this node's chain holds (0 if
// none): the audit stream of a new cluster starts after it.
func (r *Registry) AuditHead() (uint64, error) {
	var head uint64
	err := r.AuditLog(0, func(seq uint64, _ AuditEvent) error {
		head = max(head, seq)
		return nil
	})
	return head, err
}
