package relay

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"haven/shared/docid"
	"haven/shared/rig"
	"haven/shared/store"
	"haven/shared/wire"
	"haven/syncd/internal/worker"
)

// fakeCluster holds what it is given, or refuses it while down.
type fakeCluster struct {
	mu        sync.Mutex
	down      bool
	behind    bool     // CaughtUp says this node has not caught up
	published []string // "doc/owner/chunk" of each publication held
}

func (c *fakeCluster) CaughtUp(context.Context) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.behind
}

var errNoQuorum = errors.New("no quorum")

func (c *fakeCluster) Publish(_ context.Context, doc, owner string, chunk []byte, keep func() error) error {
	c.mu.Lock()
	if c.down {
		c.mu.Unlock()
		return errNoQuorum
	}
	c.published = append(c.published, doc+"/"+owner+"/"+string(chunk))
	c.mu.Unlock()
	return keep()
}

// A change a worker stores goes to the cluster first and is kept here only
// once the cluster holds it; while the cluster cannot hold it, the worker
// is told the change was not stored (so the device is never told it was)
// and nothing of it is kept here. A change from another node is kept here
// without going back to the cluster.
func TestChangesAreKeptOnlyOnceTheClusterHoldsThem(t *testing.T) {
	cl := &fakeCluster{down: true}
	r := newTestRelay(t, Config{Cluster: cl}, echoWorker{})
	h := r.s.Host()
	ctx := context.Background()

	if _, err := h.AppendChunk(ctx, r.doc, []byte("first")); !errors.Is(err, errNoQuorum) {
		t.Fatalf("AppendChunk with the cluster down = %v, want %v", err, errNoQuorum)
	}
	if _, err := r.s.st.LoadDoc(r.doc); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("after a change the cluster did not hold, the store has the document (%v)", err)
	}

	cl.mu.Lock()
	cl.down = false
	cl.mu.Unlock()
	if _, err := h.AppendChunk(ctx, r.doc, []byte("second")); err != nil {
		t.Fatalf("AppendChunk = %v", err)
	}
	if _, err := h.AppendChunk(worker.FromCluster(ctx), r.doc, []byte("from another node")); err != nil {
		t.Fatalf("AppendChunk(from another node) = %v", err)
	}
	d, err := r.s.st.LoadDoc(r.doc)
	if err != nil || len(d.Chunks) != 2 || string(d.Chunks[0].Data) != "second" || string(d.Chunks[1].Data) != "from another node" {
		t.Fatalf("store holds %+v, %v; want the two changes held by the cluster", d.Chunks, err)
	}
	cl.mu.Lock()
	defer cl.mu.Unlock()
	if want := r.doc + "/" + r.home + "/second"; len(cl.published) != 1 || cl.published[0] != want {
		t.Fatalf("cluster holds %q, want only %q", cl.published, want)
	}
}

// A device listed its documents while this node was behind the cluster is
// sent, whole, each document that reaches this node afterwards and that
// its list would have had: a fresh device holds nothing that names the
// home's resident list, and would otherwise never ask for it. A device of
// another home is not sent it; nor, once the node has caught up, is any
// device sent a new document unasked.
func TestDeviceListedBehindTheClusterIsSentWhatArrives(t *testing.T) {
	cl := &fakeCluster{behind: true}
	r := newTestRelay(t, Config{Cluster: cl}, echoWorker{})
	s, ctx := r.s, context.Background()
	other, err := r.reg.CreateHome(ctx, "Birch Court", "")
	if err != nil {
		t.Fatal(err)
	}
	enc := func(m wire.Message) []byte { b, _ := wire.Encode(m); return b }
	list := func(name, home string) (*conn, *recorder) {
		dev, _, err := r.reg.EnrollDevice(ctx, home, name, 0)
		if err != nil {
			t.Fatal(err)
		}
		sc, err := r.reg.Scope(dev)
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		c := newConn(s, ctx, rec, dev, sc)
		c.onFrame(enc(wire.Message{Type: wire.TypeJoin, SenderID: name, SupportedProtocolVersions: []string{"1"}}))
		c.onFrame(enc(wire.Message{Type: wire.TypeHavenList, SenderID: name, TargetID: "relay"}))
		close(c.boot)
		c.bootstrap(ctx)
		return c, rec
	}
	// arrives is another node's new document of the home, as this node's
	// worker stores it.
	arrives := func(what string) string {
		doc := docid.New().String()
		if _, err := s.st.AppendChunk(ctx, doc, []byte(what)); err != nil {
			t.Fatal(err)
		}
		if err := s.Absorb(ctx, doc, r.home, []byte(what)); err != nil {
			t.Fatal(err)
		}
		return doc
	}
	sent := func(rec *recorder, doc string) bool {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, fr := range rec.frames {
			if m, err := wire.Decode(fr); err == nil && m.Type == wire.TypeHavenDoc && m.DocumentID == doc {
				return true
			}
		}
		return false
	}

	behindConn, behind := list("listed-behind", r.home)
	_, stranger := list("other-home", other.ID)
	first := arrives("the home's resident list")
	rig.WaitFor(t, 20*time.Second, "the device listed behind to be sent the home's new document", func() bool { return sent(behind, first) })
	if sent(stranger, first) {
		t.Error("a device of another home was sent the new document")
	}

	cl.mu.Lock()
	cl.behind = false
	cl.mu.Unlock()
	rig.WaitFor(t, 20*time.Second, "the mark to go once the node has caught up", func() bool { return !behindConn.listedBehind.Load() })
	_, caughtUp := list("listed-caught-up", r.home)
	second := arrives("a new resident's record")
	s.wg.Wait()
	if sent(behind, second) || sent(caughtUp, second) {
		t.Error("once the node had caught up, a device was sent a new document unasked")
	}
}
