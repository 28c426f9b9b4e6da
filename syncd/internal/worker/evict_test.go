package worker

import (
	"context"
	"strings"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/rig"
	"haven/shared/syncer"
)

// A child bounded by Config.DocMemory keeps the documents it holds open
// within the bound however many it syncs, and a document it let go, then
// changed by a peer, is loaded again and converges.
func TestChildHoldsDocumentsWithinItsBound(t *testing.T) {
	host := newTestHost(t)
	const docs = 16
	clients := make([]*client, docs)
	ids := make([]docid.ID, docs)
	note := strings.Repeat("Ate well, walked to the garden, settled at night. ", 40)

	// An unbounded child holds every document it synced: what one costs.
	unbounded := runPool(t, host, Config{Workers: 1})
	for i := range clients {
		c := newClient("device")
		if _, err := c.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set(note, "note") }); err != nil {
			t.Fatal(err)
		}
		ids[i], clients[i] = docid.New(), c
		c.syncWith(t, unbounded, ids[i])
	}
	all := unbounded.Usage()
	if all.Docs != docs {
		t.Fatalf("the unbounded child holds %d documents open, want all %d", all.Docs, docs)
	}
	unbounded.Close()

	each := all.Bytes / docs
	bound := 4*each + each/2 // room for four, as the repo estimates them
	p := runPool(t, host, Config{Workers: 1, DocMemory: bound * residentPerEstimated})
	for i, c := range clients {
		c.syncWith(t, p, ids[i])
		if u := p.Usage(); u.Bytes > bound || u.Docs == 0 {
			t.Fatalf("after syncing %d documents the child holds %d, %d bytes, want at most %d bytes", i+1, u.Docs, u.Bytes, bound)
		}
	}
	if u := p.Usage(); u.Docs > 4 {
		t.Fatalf("the child holds %d documents open, want at most the 4 its bound holds", u.Docs)
	}

	// The first document, let go long ago, changes and syncs again.
	first := clients[0]
	changeAndReadElsewhere(t, p, first, ids[0])
}

// A child given Config.DocIdle lets go of the documents nobody syncs,
// however much room its bound leaves, and one it let go syncs again whole:
// a device that changed it meanwhile, and another device that holds
// nothing, come level with it.
func TestChildLetsIdleDocumentsGo(t *testing.T) {
	host := newTestHost(t)
	const idle = 200 * time.Millisecond
	p := runPool(t, host, Config{Workers: 1, DocIdle: idle})
	clients := make([]*client, 3)
	ids := make([]docid.ID, len(clients))
	for i := range clients {
		c := newClient("device")
		if _, err := c.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("Settled at night.", "note") }); err != nil {
			t.Fatal(err)
		}
		ids[i], clients[i] = docid.New(), c
		c.syncWith(t, p, ids[i])
	}
	if u := p.Usage(); u.Docs == 0 {
		t.Fatal("the child holds nothing right after syncing")
	}
	rig.WaitFor(t, 20*idle, "the child to let its idle documents go", func() bool { return p.Usage().Docs == 0 })

	first := clients[0]
	changeAndReadElsewhere(t, p, first, ids[0])
}

// changeAndReadElsewhere has c change document id and sync it through p,
// then a device holding nothing of it syncs it and must read the change
// and hold the same heads.
func changeAndReadElsewhere(t *testing.T, p *Pool, c *client, id docid.ID) {
	t.Helper()
	if _, err := c.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("14", "room") }); err != nil {
		t.Fatal(err)
	}
	c.syncWith(t, p, id)
	other := newClient("other")
	other.syncWith(t, p, id)
	if v, _, _ := other.doc.Get("room"); v != "14" {
		t.Fatalf("another device reads room %v, want 14", v)
	}
	if !crdt.SameHeads(other.doc.Heads(), c.doc.Heads()) {
		t.Fatal("the two devices hold different heads")
	}
}

// A device following a document the child let go hears of the next change
// in the child's first message to it, the change included. Its sync state,
// loaded again with the document, knows only the heads the two shared;
// Automerge alone would first ask what the device has, and the change would
// reach it a round trip (and a worker call) later.
func TestFollowerOfADocumentLetGoGetsTheChangeAtOnce(t *testing.T) {
	host := newTestHost(t)
	const idle = 200 * time.Millisecond
	p := runPool(t, host, Config{Workers: 1, DocIdle: idle})
	author, follower := newClient("author"), newClient("follower")
	if _, err := author.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("12", "room") }); err != nil {
		t.Fatal(err)
	}
	id := docid.New()
	author.syncWith(t, p, id)
	follower.syncWith(t, p, id)
	rig.WaitFor(t, 20*idle, "the child to let the document go", func() bool { return p.Usage().Docs == 0 })

	if _, err := author.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("14", "room") }); err != nil {
		t.Fatal(err)
	}
	msg, ok, err := author.ss.Generate()
	if err != nil || !ok {
		t.Fatalf("the author has nothing to send (ok %v, err %v)", ok, err)
	}
	reply, err := p.Work(context.Background(), WorkArgs{Doc: id.String(), Peers: []syncer.Peer{author.peer, follower.peer},
		Msgs: []syncer.In{{From: author.id, Data: msg}}, Notify: []string{follower.id}})
	if err != nil || reply.Failed != nil {
		t.Fatalf("work: %v %+v", err, reply.Failed)
	}
	sent := 0
	for _, o := range reply.Out {
		if o.To != follower.id {
			continue
		}
		sent++
		if n := crdt.CountChanges(o.Data); n != 1 {
			t.Errorf("the follower's message carries %d changes, want the author's 1", n)
		}
		if err := follower.ss.Receive(o.Data); err != nil {
			t.Fatal(err)
		}
	}
	if sent != 1 {
		t.Fatalf("%d messages for the follower, want 1", sent)
	}
	if v, _, _ := follower.doc.Get("room"); v != "14" {
		t.Fatalf("the follower reads room %v after the child's first message, want 14", v)
	}
}
