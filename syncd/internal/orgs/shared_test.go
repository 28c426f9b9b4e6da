package orgs_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"haven/shared/rig"
	"haven/shared/store"
	"haven/syncd/internal/cluster"
	"haven/syncd/internal/orgs"
)

// member is one relay node's registry in a cluster: its own store, the
// cluster's registry and audit applied to it as syncd serve wires them.
// Two members sharing one JetStream node alone are two nodes of a cluster
// to the registry: what one writes, the other hears only through it.
type member struct {
	t       *testing.T
	st      *store.Store
	reg     *orgs.Registry
	revoked chan string
}

var signingKey = ed25519.NewKeyFromSeed(testKey)

// openNode is a JetStream node alone, in a temporary folder.
func openNode(t *testing.T) *cluster.Node {
	t.Helper()
	n, err := cluster.Open(t.Context(), cluster.Config{Dir: t.TempDir(), Key: testKey})
	if err != nil {
		t.Fatalf("cluster.Open = %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

// newMember opens a registry over a fresh store, not yet in the cluster.
func newMember(t *testing.T) *member {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "store"), store.Options{Key: testKey})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	reg := orgs.New(st)
	reg.Key = signingKey
	return &member{t: t, st: st, reg: reg, revoked: make(chan string, 10)}
}

// join puts m in node's cluster, as syncd serve does, and returns once m
// holds what the cluster holds.
func (m *member) join(node *cluster.Node) *member {
	m.t.Helper()
	m.reg.Cluster = node
	m.reg.OnDeviceRevoked = func(id string) { m.revoked <- id }
	if err := m.reg.ShareUnshared(m.t.Context()); err != nil {
		m.t.Fatalf("ShareUnshared = %v", err)
	}
	caught := make(chan error, 10)
	node.WatchRegistry(func(ctx context.Context, e cluster.RegistryEntry) error {
		return m.reg.ApplyShared(ctx, e.NS, e.Key, e.Val, e.Deleted, e.Rev)
	}, func(ctx context.Context) { caught <- m.reg.ShareMissing(ctx) })
	node.FollowAudit(m.st, func(ctx context.Context, es []cluster.AuditEntry) error {
		batch := make([]orgs.ClusterAudit, len(es))
		for i, e := range es {
			batch[i] = orgs.ClusterAudit{Seq: e.Seq, ID: e.ID, Event: e.Event}
		}
		return m.reg.ApplyAudit(ctx, batch)
	})
	if err, ok := rig.Recv(caught, 20*time.Second); !ok || err != nil {
		m.t.Fatalf("catching up with the cluster: %v (in time: %v)", err, ok)
	}
	return m
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	rig.WaitFor(t, 20*time.Second, what, cond)
}

// A code enrolled on one node is redeemed on another at once, and only
// once in the cluster; the credential authenticates at once on the first
// node too; a revocation made on one node is heard by the other, which
// then refuses the device.
func TestSharedRegistryOneCodeOneDevice(t *testing.T) {
	node := openNode(t)
	a, b := newMember(t).join(node), newMember(t).join(node)
	ctx := t.Context()
	home, err := a.reg.CreateHome(ctx, "Larch House", "")
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node B to hold the home made on node A", func() bool { _, err := b.reg.Org(home.ID); return err == nil })
	dev, code, err := a.reg.EnrollDevice(ctx, home.ID, "Office PC", 0)
	if err != nil {
		t.Fatal(err)
	}
	got, cred, err := b.reg.Redeem(ctx, code)
	if err != nil || got.ID != dev.ID {
		t.Fatalf("node B Redeem(code node A issued a moment ago) = %s, %v; want %s", got.ID, err, dev.ID)
	}
	if _, _, err := a.reg.Redeem(ctx, code); !errors.Is(err, orgs.ErrBadCode) {
		t.Fatalf("node A Redeem(code node B redeemed) = %v, want %v", err, orgs.ErrBadCode)
	}
	if d, _, err := a.reg.Authenticate(ctx, cred); err != nil || d.ID != dev.ID {
		t.Fatalf("node A Authenticate(credential node B issued a moment ago) = %s, %v", d.ID, err)
	}
	if err := a.reg.Revoke(ctx, dev.ID); err != nil {
		t.Fatal(err)
	}
	if id, ok := rig.Recv(b.revoked, 20*time.Second); !ok || id != dev.ID {
		t.Fatalf("node B heard of revocation %q (in time: %v), want %s", id, ok, dev.ID)
	}
	if _, _, err := b.reg.Authenticate(ctx, cred); !errors.Is(err, orgs.ErrRevoked) {
		t.Fatalf("node B Authenticate(revoked on node A) = %v, want %v", err, orgs.ErrRevoked)
	}
	select {
	case id := <-a.revoked:
		t.Fatalf("node A was told of its own revocation of %s: its caller counts the connections it closes", id)
	default:
	}
}

// Each node's audit events are in every node's chain under one number;
// a break-glass access recorded on one node awaits review on the other,
// and a review on either is the cluster's. Each chain verifies.
func TestSharedAuditNumbersEventsAlike(t *testing.T) {
	node := openNode(t)
	a, b := newMember(t).join(node), newMember(t).join(node)
	ctx := t.Context()
	if _, err := a.reg.Audit(ctx, orgs.AuditEvent{Device: "dev-a", Org: "home-1", Action: "view"}); err != nil {
		t.Fatal(err)
	}
	glass, err := b.reg.Audit(ctx, orgs.AuditEvent{Device: "dev-b", Org: "advice-1", Owner: "home-1", Action: orgs.ActionBreakGlass,
		Detail: "call at 02:40", ByRelay: true})
	if err != nil {
		t.Fatal(err)
	}
	numbers := func(m *member) map[uint64]string {
		out := map[uint64]string{}
		m.reg.AuditLog(0, func(seq uint64, e orgs.AuditEvent) error { out[seq] = e.Device; return nil })
		return out
	}
	waitFor(t, "node A's chain to hold node B's event", func() bool { return len(numbers(a)) == 2 })
	if na, nb := numbers(a), numbers(b); len(nb) != 2 || na[1] != "dev-a" || na[2] != "dev-b" || nb[1] != "dev-a" || nb[2] != "dev-b" {
		t.Fatalf("node A numbers %v, node B %v; want 1 dev-a, 2 dev-b on both", na, nb)
	}
	pending, err := a.reg.Unreviewed("home-1")
	if err != nil || len(pending) != 1 || pending[0].Seq != glass {
		t.Fatalf("node A awaits review of %+v, %v; want node B's access %d", pending, err, glass)
	}
	if err := a.reg.ReviewBreakGlass(ctx, glass, "IG lead", "logged"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "node B to hold the review made on node A", func() bool {
		p, err := b.reg.Unreviewed("")
		return err == nil && len(p) == 0
	})
	for _, m := range []*member{a, b} {
		if n, _, err := m.reg.VerifyAudit(); err != nil || n != 2 {
			t.Fatalf("VerifyAudit = %d events, %v; want 2, nil", n, err)
		}
	}
}

// What a registry wrote with no cluster (an admin command with the relay
// stopped) reaches the cluster when it joins: new keys, and a change to a
// key the cluster held, which is the latest word on it.
func TestRegistryWrittenAloneIsShared(t *testing.T) {
	node := openNode(t)
	a := newMember(t).join(node)
	ctx := t.Context()
	home, err := a.reg.CreateHome(ctx, "Larch House", "")
	if err != nil {
		t.Fatal(err)
	}
	dev, _, err := a.reg.EnrollDevice(ctx, home.ID, "Office PC", 0)
	if err != nil {
		t.Fatal(err)
	}
	b := newMember(t).join(node)
	waitFor(t, "node B to hold the device", func() bool { _, err := b.reg.Device(dev.ID); return err == nil })

	// Node B stopped: its administrator revokes the device and adds a home.
	alone := orgs.New(b.st)
	alone.Key = signingKey
	if err := alone.Revoke(ctx, dev.ID); err != nil {
		t.Fatal(err)
	}
	birch, err := alone.CreateHome(ctx, "Birch Court", "")
	if err != nil {
		t.Fatal(err)
	}
	again := &member{t: t, st: b.st, reg: orgs.New(b.st), revoked: make(chan string, 10)}
	again.reg.Key = signingKey
	again.join(node)
	waitFor(t, "node A to hear of what node B's administrator did while it was stopped", func() bool {
		d, err := a.reg.Device(dev.ID)
		_, herr := a.reg.Org(birch.ID)
		return err == nil && !d.Revoked.IsZero() && herr == nil
	})
	if d, err := again.reg.Device(dev.ID); err != nil || d.Revoked.IsZero() {
		t.Fatalf("node B's own revocation was undone by the cluster's older copy: %+v, %v", d, err)
	}
}

// A device's batch of a thousand events, after a week offline, is held by
// the cluster and in this node's chain, with the changes that go with it,
// when AuditAll returns; the other node copies it too.
func TestSharedAuditTakesADevicesBatch(t *testing.T) {
	node := openNode(t)
	a, b := newMember(t).join(node), newMember(t).join(node)
	events := make([]orgs.AuditEvent, 1000)
	for i := range events {
		events[i] = orgs.AuditEvent{Device: "dev-a", Org: "home-1", Action: "view", DeviceSeq: uint64(i + 1)}
	}
	began := time.Now()
	first, err := a.reg.AuditAll(t.Context(), events, []store.Change{{NS: "audit-seq", Key: "dev-a", Val: []byte("1000")}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a batch of %d events held by the cluster and copied into the chain in %v", len(events), time.Since(began).Round(time.Millisecond))
	if v, err := a.st.Get("audit-seq", "dev-a"); err != nil || string(v) != "1000" {
		t.Fatalf("the batch's change reads %q, %v; want it kept with the events", v, err)
	}
	count := func(m *member) (n int, inOrder bool) {
		inOrder = true
		m.reg.AuditLog(0, func(seq uint64, e orgs.AuditEvent) error {
			inOrder = inOrder && seq == first+uint64(n) && e.DeviceSeq == uint64(n+1)
			n++
			return nil
		})
		return n, inOrder
	}
	if n, ok := count(a); n != len(events) || !ok {
		t.Fatalf("node A's chain holds %d events (in order: %v) when AuditAll returns, want %d", n, ok, len(events))
	}
	waitFor(t, "node B to copy the batch", func() bool { n, ok := count(b); return n == len(events) && ok })
}

// An AuditAll whose events the follower has not copied in time (a node
// catching up with a long stream) keeps them itself, under the cluster's
// numbers; the follower, when it reaches them, copies them no second time.
func TestSharedAuditDoesNotWaitForAFollowerBehind(t *testing.T) {
	node := openNode(t)
	a := newMember(t)
	a.reg.Cluster = node // its follower not started: as far behind as can be
	ctx := t.Context()
	seq, err := a.reg.Audit(ctx, orgs.AuditEvent{Device: "dev-a", Org: "advice-1", Action: orgs.ActionBreakGlass, ByRelay: true})
	if err != nil {
		t.Fatalf("Audit with the follower behind = %v", err)
	}
	a.join(node)
	b := newMember(t).join(node)
	if _, err := b.reg.Audit(ctx, orgs.AuditEvent{Device: "dev-b", Org: "home-1", Action: "view"}); err != nil {
		t.Fatal(err)
	}
	var got []uint64
	waitFor(t, "node A's follower to copy node B's event", func() bool {
		got = got[:0]
		a.reg.AuditLog(0, func(s uint64, _ orgs.AuditEvent) error { got = append(got, s); return nil })
		return len(got) >= 2
	})
	if len(got) != 2 || got[0] != seq || got[1] != seq+1 {
		t.Fatalf("node A's chain numbers %v, want %d then %d, each once", got, seq, seq+1)
	}
	if n, _, err := a.reg.VerifyAudit(); err != nil || n != 2 {
		t.Fatalf("VerifyAudit = %d, %v", n, err)
	}
}
