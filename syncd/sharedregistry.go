package main

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"haven/shared/store"
	"haven/syncd/internal/admin"
	"haven/syncd/internal/cluster"
	"haven/syncd/internal/orgs"
	"haven/syncd/internal/relay"
)

// shareRegistry makes this node's registry the cluster's (orgs/shared.go):
// every registry write, made here or on another node, is kept here and
// applied to this relay's live connections (a revoked device cut off, a
// hub's homes changed, a certificate revoked), and every node's audit
// events are copied into this node's chain. A node alone runs it too, a
// cluster of one, so every test of the relay runs the cluster's path.
//
// It returns once this node holds the whole registry as the cluster does,
// so a node that starts empty serves the devices enrolled before it
// existed, and one that was down refuses the devices revoked meanwhile,
// from its first connection; or when ctx ends.
func shareRegistry(ctx context.Context, node *cluster.Node, reg *orgs.Registry, st *store.Store, srv *relay.Server, log *slog.Logger) error {
	reg.Cluster = node
	reg.OnDeviceRevoked = func(device string) { srv.DeviceRevoked(device) }
	reg.OnScopesChange = func() { srv.ScopesChanged() }
	// Written with the relay stopped: the latest word on those keys, so in
	// the cluster before its copy is applied here over them.
	if err := reg.ShareUnshared(ctx); err != nil {
		return err
	}
	caughtUp := make(chan struct{})
	var once sync.Once
	node.WatchRegistry(func(ctx context.Context, e cluster.RegistryEntry) error {
		return reg.ApplyShared(ctx, e.NS, e.Key, e.Val, e.Deleted, e.Rev)
	}, func(ctx context.Context) {
		if err := reg.ShareMissing(ctx); err != nil {
			log.Error("registry keys the cluster does not hold not shared; they are shared at the next start", "err", err)
		}
		once.Do(func() { close(caughtUp) })
	})
	node.FollowAudit(st, func(ctx context.Context, es []cluster.AuditEntry) error {
		return reg.ApplyAudit(ctx, clusterAudit(es))
	})
	select {
	case <-caughtUp:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the cluster's registry: %w", ctx.Err())
	}
}

// shareAdminDocument is the admin commands' OnDocument: a document an
// administrator made on this node (a care home's directory, made with the
// home) is registered here and sent to the other nodes, which absorb it as
// a change from another node, so the home's devices find it on whichever
// node they connect to. Unlike a device's change it is stored here before
// the cluster holds it: the admin command says if the cluster did not
// take it, and nothing was acknowledged to a device.
func shareAdminDocument(node *cluster.Node, st *store.Store, srv *relay.Server) func(doc, owner string) error {
	return func(doc, owner string) error {
		if err := srv.RegisterDocument(doc, owner); err != nil {
			return err
		}
		d, err := st.LoadDoc(doc)
		if err != nil {
			return err
		}
		kept := func() error { return nil }
		parts := make([][]byte, 0, 1+len(d.Chunks))
		if len(d.Snapshot) > 0 {
			parts = append(parts, d.Snapshot)
		}
		for _, c := range d.Chunks {
			parts = append(parts, c.Data)
		}
		for _, p := range parts {
			if err := node.Publish(context.Background(), doc, owner, p, kept); err != nil {
				return fmt.Errorf("document %s stored on this node only: %w", doc, err)
			}
		}
		return nil
	}
}

// shareStoppedDocuments sends the cluster the documents the administrator
// stored or changed with this relay stopped (admin.UnsharedNamespace),
// whole, as share sends a document made with the relay running, and clears
// each mark once the cluster holds it. Before, they stayed on this node: a
// device on another node never found the demo home's residents, and a
// change made to one through this node was lost to the cluster with it.
// A mark not cleared (the cluster did not take it) is tried at the next
// start; the others' absorb of a document they hold already changes nothing.
func shareStoppedDocuments(ctx context.Context, st *store.Store, share func(doc, owner string) error, log *slog.Logger) error {
	marks := map[string]string{}
	if err := st.Scan(admin.UnsharedNamespace, "", func(doc string, owner []byte) error {
		marks[doc] = string(owner)
		return nil
	}); err != nil {
		return err
	}
	for doc, owner := range marks {
		if err := share(doc, owner); err != nil {
			return fmt.Errorf("document stored with the relay stopped: %w", err)
		}
		if err := st.Delete(ctx, admin.UnsharedNamespace, doc); err != nil {
			return err
		}
	}
	if len(marks) > 0 {
		log.Info("documents stored with the relay stopped now in the cluster", "docs", len(marks))
	}
	return nil
}

// clusterAudit is what the cluster hands over as the registry takes it.
func clusterAudit(es []cluster.AuditEntry) []orgs.ClusterAudit {
	out := make([]orgs.ClusterAudit, len(es))
	for i, e := range es {
		out[i] = orgs.ClusterAudit{Seq: e.Seq, ID: e.ID, Event: e.Event}
	}
	return out
}
