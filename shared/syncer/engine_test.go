package syncer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/repo"
	"haven/shared/store"
)

var ctx = context.Background()

type node struct {
	name string
	st   *store.Store
	repo *repo.Repo
	eng  *Engine
}

func newNode(t *testing.T, name string, dir string, opts Options) *node {
	t.Helper()
	st, err := store.Open(dir, store.Options{Key: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	r := repo.New(st, repo.Options{})
	if opts.States == nil {
		opts.States = st
	}
	n := &node{name: name, st: st, repo: r, eng: New(r, opts)}
	t.Cleanup(func() { n.close() })
	return n
}

func (n *node) close() {
	n.repo.Close()
	n.st.Close()
}

// net delivers messages between nodes until nothing more is sent, and
// counts what crossed.
type net struct {
	t        *testing.T
	nodes    map[string]*node
	messages int
	bytes    int
	// lose, if set, says which messages are lost on the way.
	lose func(from string, o Out) bool
}

func (nw *net) pump(from string, outs []Out) {
	nw.t.Helper()
	type hop struct {
		from string
		out  Out
	}
	queue := []hop{}
	for _, o := range outs {
		queue = append(queue, hop{from, o})
	}
	for len(queue) > 0 && nw.messages < 10000 {
		h := queue[0]
		queue = queue[1:]
		if nw.lose != nil && nw.lose(h.from, h.out) {
			continue
		}
		nw.messages++
		nw.bytes += len(h.out.Data)
		to := nw.nodes[h.out.To]
		// the receiving node notifies every other peer it knows
		var notify []string
		to.eng.mu.Lock()
		for p := range to.eng.peers {
			if p != h.from {
				notify = append(notify, p)
			}
		}
		to.eng.mu.Unlock()
		more, err := to.eng.Receive(ctx, h.out.Doc, []In{{From: h.from, Data: h.out.Data}}, notify)
		if err != nil {
			nw.t.Fatalf("%s receiving from %s: %v", h.out.To, h.from, err)
		}
		for _, o := range more {
			queue = append(queue, hop{h.out.To, o})
		}
	}
}

func setValue(t *testing.T, h *repo.Handle, key, value string) {
	t.Helper()
	err := h.Change(ctx, func(doc *crdt.Doc) error {
		_, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set(value, key) })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func value(t *testing.T, n *node, id docid.ID, key string) any {
	t.Helper()
	h, err := n.repo.Open(id)
	if err != nil {
		t.Fatalf("%s: open %s: %v", n.name, id, err)
	}
	v, _, _ := h.Doc().Get(key)
	return v
}

func TestRelayLearnsNewDocumentAndFansOut(t *testing.T) {
	var admitted []string
	relay := newNode(t, "relay", t.TempDir(), Options{Admit: func(_ context.Context, from Peer, id docid.ID, d *crdt.Doc) error {
		admitted = append(admitted, from.ID)
		return nil
	}, Check: crdt.CheckSyncMessage})
	b := newNode(t, "b", t.TempDir(), Options{})
	c := newNode(t, "c", t.TempDir(), Options{})
	nw := &net{t: t, nodes: map[string]*node{"relay": relay, "b": b, "c": c}}
	relay.eng.Connect(Peer{ID: "b", StorageID: "store-b"})
	relay.eng.Connect(Peer{ID: "c", StorageID: "store-c"})
	b.eng.Connect(Peer{ID: "relay", StorageID: "store-relay"})
	c.eng.Connect(Peer{ID: "relay", StorageID: "store-relay"})

	id := docid.New()
	doc := crdt.New()
	if _, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("12", "room") }); err != nil {
		t.Fatal(err)
	}
	hb, err := b.repo.Create(ctx, id, doc)
	if err != nil {
		t.Fatal(err)
	}
	outs, err := b.eng.Sync(ctx, id, []string{"relay"})
	if err != nil {
		t.Fatal(err)
	}
	nw.pump("b", outs)
	if len(admitted) != 1 || admitted[0] != "b" {
		t.Fatalf("Admit calls = %v, want one for b", admitted)
	}
	if got := value(t, relay, id, "room"); got != "12" {
		t.Fatalf("relay has room %v, want 12", got)
	}
	// c asks for the document (it has nothing) and receives it.
	outs, err = c.eng.Receive(ctx, id, nil, []string{"relay"})
	if !errors.Is(err, repo.ErrNotFound) && err != nil {
		t.Fatal(err)
	}
	nw.pump("c", outs)
	if got := value(t, c, id, "room"); got != "12" {
		t.Fatalf("c has room %v, want 12", got)
	}
	// An edit at b reaches c through the relay's fan-out.
	setValue(t, hb, "room", "14")
	outs, _ = b.eng.Sync(ctx, id, []string{"relay"})
	nw.pump("b", outs)
	if got := value(t, c, id, "room"); got != "14" {
		t.Fatalf("c has room %v after b's edit, want 14", got)
	}
	if len(admitted) != 1 {
		t.Fatalf("Admit called again for a known document: %v", admitted)
	}
}

func TestAdmitRefusalStoresNothing(t *testing.T) {
	relay := newNode(t, "relay", t.TempDir(), Options{Admit: func(context.Context, Peer, docid.ID, *crdt.Doc) error {
		return errors.New("out of scope")
	}})
	b := newNode(t, "b", t.TempDir(), Options{})
	relay.eng.Connect(Peer{ID: "b", StorageID: "sb"})
	b.eng.Connect(Peer{ID: "relay"})
	id := docid.New()
	doc := crdt.New()
	doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("x", "k") })
	if _, err := b.repo.Create(ctx, id, doc); err != nil {
		t.Fatal(err)
	}
	outs, _ := b.eng.Sync(ctx, id, []string{"relay"})
	var refused error
	for i := 0; i < 10 && len(outs) > 0 && refused == nil; i++ {
		var next []Out
		for _, o := range outs {
			if o.To == "relay" {
				more, err := relay.eng.Receive(ctx, id, []In{{From: "b", Data: o.Data}}, nil)
				if err != nil {
					refused = err
					break
				}
				next = append(next, more...)
			} else {
				more, _ := b.eng.Receive(ctx, id, []In{{From: "relay", Data: o.Data}}, nil)
				next = append(next, more...)
			}
		}
		outs = next
	}
	if !errors.Is(refused, ErrRefused) {
		t.Fatalf("relay error = %v, want ErrRefused", refused)
	}
	if _, err := relay.st.LoadDoc(id.String()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("refused document stored: %v", err)
	}
}

// After a disconnect the saved sync state makes the reconnect a handshake:
// far fewer bytes cross than for a peer the relay has never seen.
func TestReconnectCostsAHandshake(t *testing.T) {
	relayDir := t.TempDir()
	relay := newNode(t, "relay", relayDir, Options{})
	b := newNode(t, "b", t.TempDir(), Options{})
	nw := &net{t: t, nodes: map[string]*node{"relay": relay, "b": b}}
	relay.eng.Connect(Peer{ID: "b", StorageID: "store-b"})
	b.eng.Connect(Peer{ID: "relay", StorageID: "store-relay"})
	id := docid.New()
	doc := crdt.New()
	for i := 0; i < 200; i++ {
		if _, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error {
			return w.Set(fmt.Sprintf("note %d: slept well after a warm drink", i), "note")
		}); err != nil {
			t.Fatal(err)
		}
	}
	hb, _ := b.repo.Create(ctx, id, doc)
	outs, _ := b.eng.Sync(ctx, id, []string{"relay"})
	nw.pump("b", outs)
	first := nw.bytes
	if h, err := relay.repo.Open(id); err != nil || !crdt.SameHeads(h.Doc().Heads(), hb.Doc().Heads()) {
		t.Fatalf("first sync did not converge: %v", err)
	}

	// Both sides go away (relay restarts), then b makes one change and reconnects.
	if err := relay.eng.Disconnect(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	b.eng.Disconnect(ctx, "relay")
	relay.close()
	relay = newNode(t, "relay", relayDir, Options{})
	nw.nodes["relay"] = relay
	setValue(t, hb, "room", "3")
	resumed := func(storage string) int {
		relay.eng.Connect(Peer{ID: "b", StorageID: storage})
		b.eng.Connect(Peer{ID: "relay", StorageID: "store-relay"})
		nw.bytes = 0
		outs, _ := b.eng.Sync(ctx, id, []string{"relay"})
		nw.pump("b", outs)
		if got := value(t, relay, id, "room"); got != "3" {
			t.Fatalf("relay has room %v, want 3", got)
		}
		relay.eng.Disconnect(ctx, "b")
		b.eng.Disconnect(ctx, "relay")
		return nw.bytes
	}
	handshake := resumed("store-b")
	t.Logf("first sync %d bytes; reconnect with saved state %d bytes", first, handshake)
	if handshake*4 > first {
		t.Fatalf("reconnect moved %d bytes, first sync %d: the saved state did not help", handshake, first)
	}
}

func TestCheckRejectsBeforeAutomerge(t *testing.T) {
	relay := newNode(t, "relay", t.TempDir(), Options{Check: crdt.CheckSyncMessage})
	relay.eng.Connect(Peer{ID: "b"})
	_, err := relay.eng.Receive(ctx, docid.New(), []In{{From: "b", Data: []byte{0x42, 1, 2, 3}}}, nil)
	var me *MessageError
	if !errors.As(err, &me) || !errors.Is(err, crdt.ErrMalformedSync) || me.Peer != "b" {
		t.Fatalf("Receive(malformed) = %v, want a MessageError wrapping ErrMalformedSync", err)
	}
	if _, err := relay.eng.Receive(ctx, docid.New(), []In{{From: "nobody", Data: nil}}, nil); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("Receive from an unknown peer = %v", err)
	}
}

// A device whose copy lost changes it had already shared (a damaged chunk
// quarantined, a disk that lost its last writes) still has a saved sync
// state saying it holds them. The copy must still be made whole: the
// relay sends what is missing, part of the copy lost or all of it.
func TestCopyThatLostSharedChangesIsMadeWhole(t *testing.T) {
	for _, all := range []bool{false, true} {
		t.Run(fmt.Sprintf("lost everything %v", all), func(t *testing.T) { testCopyThatLost(t, all) })
	}
}

func testCopyThatLost(t *testing.T, everything bool) {
	states, err := store.Open(t.TempDir(), store.Options{Key: bytes.Repeat([]byte{1}, 32)})
	if err != nil {
		t.Fatal(err)
	}
	defer states.Close()
	relay := newNode(t, "relay", t.TempDir(), Options{})
	b := newNode(t, "b", t.TempDir(), Options{States: states})
	nw := &net{t: t, nodes: map[string]*node{"relay": relay, "b": b}}
	relay.eng.Connect(Peer{ID: "b", StorageID: "store-b"})
	b.eng.Connect(Peer{ID: "relay", StorageID: "store-relay"})
	id := docid.New()
	doc := crdt.New()
	if _, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("1", "room") }); err != nil {
		t.Fatal(err)
	}
	early := doc.Save()
	hb, err := b.repo.Create(ctx, id, doc)
	if err != nil {
		t.Fatal(err)
	}
	setValue(t, hb, "allergy", "penicillin")
	outs, _ := b.eng.Sync(ctx, id, []string{"relay"})
	nw.pump("b", outs)
	if got := value(t, relay, id, "allergy"); got != "penicillin" {
		t.Fatalf("relay has allergy %v before the loss", got)
	}
	relay.eng.Disconnect(ctx, "b")
	b.eng.Disconnect(ctx, "relay") // saves b's state: it shares the allergy change

	// b comes back with only the early copy, and its saved states.
	lost, err := crdt.Load(early)
	if err != nil {
		t.Fatal(err)
	}
	if everything {
		lost = crdt.New()
	}
	b2 := newNode(t, "b", t.TempDir(), Options{States: states})
	if _, err := b2.repo.Create(ctx, id, lost); err != nil {
		t.Fatal(err)
	}
	nw.nodes["b"] = b2
	relay.eng.Connect(Peer{ID: "b", StorageID: "store-b"})
	b2.eng.Connect(Peer{ID: "relay", StorageID: "store-relay"})
	outs, _ = b2.eng.Sync(ctx, id, []string{"relay"})
	nw.pump("b", outs)
	if got := value(t, b2, id, "allergy"); got != "penicillin" {
		t.Fatalf("after reconnecting, the damaged copy has allergy %v; want the change it lost sent again", got)
	}
}

// A message lost on the way leaves Automerge waiting for an answer that
// never comes: it sends nothing more about the document. Restart begins
// that exchange afresh, and the change gets through.
func TestRestartAfterALostMessage(t *testing.T) {
	relay, b, nw, id, hb := syncedPair(t, Options{})
	outs := changeAndOffer(t, b, hb, id)
	// That message is lost. Asked again, Automerge waits for its answer.
	if outs, _ = b.eng.Sync(ctx, id, []string{"relay"}); len(outs) != 0 {
		t.Fatalf("Automerge sent %d more messages while one was in flight; the premise of Restart changed", len(outs))
	}
	if b.eng.InSync("relay", id) {
		t.Fatal("in sync before the relay has the change")
	}
	outs = restartAndOffer(t, b, id)
	nw.pump("b", outs)
	if got := value(t, relay, id, "allergy"); got != "latex" {
		t.Fatalf("relay has allergy %v after the restarted exchange", got)
	}
	if !b.eng.InSync("relay", id) {
		t.Fatal("the relay's holding the change is not known after the restarted exchange")
	}
}

// changeAndOffer records an allergy on b's copy and returns what b sends
// the relay about it.
func changeAndOffer(t *testing.T, b *node, hb *repo.Handle, id docid.ID) []Out {
	t.Helper()
	setValue(t, hb, "allergy", "latex")
	outs, _ := b.eng.Sync(ctx, id, []string{"relay"})
	if len(outs) == 0 {
		t.Fatal("no message for a new change")
	}
	return outs
}

// restartAndOffer begins b's exchange with the relay afresh and returns
// what b sends.
func restartAndOffer(t *testing.T, b *node, id docid.ID) []Out {
	t.Helper()
	if err := b.eng.Restart("relay", id); err != nil {
		t.Fatal(err)
	}
	outs, _ := b.eng.Sync(ctx, id, []string{"relay"})
	if len(outs) == 0 {
		t.Fatal("Restart did not make the engine send again")
	}
	return outs
}

// syncedPair returns a relay (AckInSync) and a peer b that share one
// document, fully synced.
func syncedPair(t *testing.T, bOpts Options) (relay, b *node, nw *net, id docid.ID, hb *repo.Handle) {
	t.Helper()
	relay = newNode(t, "relay", t.TempDir(), Options{AckInSync: true})
	b = newNode(t, "b", t.TempDir(), bOpts)
	nw = &net{t: t, nodes: map[string]*node{"relay": relay, "b": b}}
	relay.eng.Connect(Peer{ID: "b", StorageID: "store-b"})
	b.eng.Connect(Peer{ID: "relay", StorageID: "store-relay"})
	id = docid.New()
	hb, err := b.repo.Create(ctx, id, crdt.New())
	if err != nil {
		t.Fatal(err)
	}
	setValue(t, hb, "room", "1")
	outs, _ := b.eng.Sync(ctx, id, []string{"relay"})
	nw.pump("b", outs)
	if !b.eng.InSync("relay", id) {
		t.Fatal("not in sync after the first exchange")
	}
	return relay, b, nw, id, hb
}

// The relay's confirmation of a change is lost; the peer, hearing nothing,
// begins the exchange afresh (Restart). Automerge on the relay has nothing
// more to say (it believes it told the peer), so the relay must say it
// agrees, or the change shows as waiting for ever.
func TestLostConfirmationIsAnsweredAfterRestart(t *testing.T) {
	relay, b, nw, id, hb := syncedPair(t, Options{})
	outs := changeAndOffer(t, b, hb, id)
	replies, err := relay.eng.Receive(ctx, id, []In{{From: "b", Data: outs[0].Data}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) == 0 {
		t.Fatal("the relay did not confirm the change")
	}
	// The confirmation is lost.
	if b.eng.InSync("relay", id) {
		t.Fatal("in sync without the relay's confirmation")
	}
	outs = restartAndOffer(t, b, id)
	replies, err = relay.eng.Receive(ctx, id, []In{{From: "b", Data: outs[0].Data}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) == 0 {
		t.Fatal("the relay did not answer an exchange begun afresh: the change would show as waiting for ever")
	}
	nw.pump("relay", replies)
	if !b.eng.InSync("relay", id) {
		t.Fatal("the relay's holding the change is not known after its answer")
	}
}

// A peer that reconnects with nothing new, and whose saved state shows it
// knows the relay agrees, gets no reply at all: a reconnect of a home's
// 121 unchanged documents costs 121 small messages up and nothing down.
func TestReconnectWithNothingNewGetsNoReply(t *testing.T) {
	relay, b, _, id, _ := syncedPair(t, Options{})
	if err := relay.eng.Disconnect(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if err := b.eng.Disconnect(ctx, "relay"); err != nil {
		t.Fatal(err)
	}
	relay.eng.Connect(Peer{ID: "b#2", StorageID: "store-b"})
	b.eng.Connect(Peer{ID: "relay", StorageID: "store-relay"})
	outs, _ := b.eng.Sync(ctx, id, []string{"relay"})
	if len(outs) == 0 {
		t.Fatal("the reconnecting peer offered nothing: it would not hear of the relay's changes")
	}
	if !b.eng.InSync("relay", id) {
		t.Fatal("the saved state does not show the peer in sync")
	}
	replies, err := relay.eng.Receive(ctx, id, []In{{From: "b#2", Data: outs[0].Data}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(replies) != 0 {
		t.Fatalf("the relay answered a reconnect with nothing new with %d messages (%d bytes)", len(replies), len(replies[0].Data))
	}
}

// With EagerChanges, a peer that made changes while away sends them in its
// first message after reconnecting: the relay holds them after one message,
// not after a round trip. The exchange still ends with both sides agreeing.
func TestReconnectSendsChangesAtOnce(t *testing.T) {
	relay, b, nw, id, hb := syncedPair(t, Options{EagerChanges: true})
	relay.eng.Disconnect(ctx, "b")
	b.eng.Disconnect(ctx, "relay")

	setValue(t, hb, "allergy", "latex") // made offline
	relay.eng.Connect(Peer{ID: "b#2", StorageID: "store-b"})
	b.eng.Connect(Peer{ID: "relay", StorageID: "store-relay"})
	outs, _ := b.eng.Sync(ctx, id, []string{"relay"})
	if len(outs) != 1 {
		t.Fatalf("%d first messages, want 1", len(outs))
	}
	if err := crdt.CheckSyncMessage(outs[0].Data); err != nil {
		t.Fatalf("the first message does not parse: %v", err)
	}
	replies, err := relay.eng.Receive(ctx, id, []In{{From: "b#2", Data: outs[0].Data}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := value(t, relay, id, "allergy"); got != "latex" {
		t.Fatalf("after the first message the relay has allergy %v, want the change made offline", got)
	}
	nw.nodes["b#2"] = b
	for _, r := range replies {
		more, err := b.eng.Receive(ctx, id, []In{{From: "relay", Data: r.Data}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range more {
			m.To = "relay"
			nw.pump("b#2", []Out{m})
		}
	}
	if !b.eng.InSync("relay", id) {
		t.Fatal("the change is not confirmed after the exchange")
	}
}

// TestVetRefusesOnlyTheCulprit: a batch holds a good message and, after
// it, one whose change Vet refuses. Only the second is refused (its index
// and sender named); the first is applied, stored and answered, and
// nothing of the second is stored.
func TestVetRefusesOnlyTheCulprit(t *testing.T) {
	var vetted int
	bad := errors.New("a change writes the forbidden key")
	relay := newNode(t, "relay", t.TempDir(), Options{Vet: func(_ context.Context, _ docid.ID, doc *crdt.Doc, _ []crdt.Hash, _ []In) error {
		vetted++
		if _, ok, _ := doc.Get("forbidden"); ok {
			return bad
		}
		return nil
	}})
	id := docid.New()
	base := crdt.New()
	if _, err := base.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("x", "start") }); err != nil {
		t.Fatal(err)
	}
	if _, err := relay.repo.Create(ctx, id, base); err != nil {
		t.Fatal(err)
	}
	msg := func(peer, key string) In {
		d, _ := base.Fork()
		if _, err := d.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("v", key) }); err != nil {
			t.Fatal(err)
		}
		// A message carrying the change: what the peer would send once it
		// knows the relay's heads.
		ss, _ := crdt.SyncStateSharing(d, base.Heads())
		data, ok, err := ss.Generate()
		if err != nil || !ok {
			t.Fatalf("generate: %v %v", ok, err)
		}
		data, added, err := crdt.WithChangesSince(data, d, base.Heads(), 1<<20)
		if err != nil || !added {
			t.Fatalf("adding the change to the message: %v %v", added, err)
		}
		relay.eng.Connect(Peer{ID: peer})
		return In{From: peer, Data: data}
	}
	good, evil := msg("good", "fine"), msg("evil", "forbidden")
	_, err := relay.eng.Receive(ctx, id, []In{good, evil}, nil)
	var me *MessageError
	if !errors.As(err, &me) || me.Index != 1 || me.Peer != "evil" || !errors.Is(err, bad) {
		t.Fatalf("Receive(good, evil) = %v; want the second message refused for Vet's reason", err)
	}
	if value(t, relay, id, "fine") != "v" || value(t, relay, id, "forbidden") != nil {
		t.Fatalf("after the batch the relay holds fine=%v forbidden=%v; want the good change only", value(t, relay, id, "fine"), value(t, relay, id, "forbidden"))
	}
	relay.repo.Close()
	again := repo.New(relay.st, repo.Options{})
	h, err := again.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	if v, _, _ := h.Doc().Get("forbidden"); v != nil {
		t.Fatal("the refused change was stored")
	}
	if vetted < 2 {
		t.Fatalf("Vet ran %d times; the batch should have been vetted whole, then message by message", vetted)
	}
}

// A document's subscribers that each confirmed its last change are sent the
// next one as one message, made once: the message each is sent is the one
// its own state makes (checked by making it afterwards), every copy takes
// the change, and a subscriber that missed one (its confirmation lost, or
// the change itself, then recovered as the relay recovers a lost message)
// still comes level. So too with EagerChanges (a relay's workers), whose
// first message to each subscriber is its own, carrying changes.
func TestSettledPeersShareOneMessage(t *testing.T) {
	for _, eager := range []bool{false, true} {
		t.Run(fmt.Sprintf("eager=%v", eager), func(t *testing.T) {
			settledPeersShareOneMessage(t, Options{AckInSync: true, EagerChanges: eager})
		})
	}
}

func settledPeersShareOneMessage(t *testing.T, opts Options) {
	relay := newNode(t, "relay", t.TempDir(), opts)
	nw := &net{t: t, nodes: map[string]*node{"relay": relay}}
	names := []string{"author", "f1", "f2", "f3", "f4"}
	for _, n := range names {
		nw.nodes[n] = newNode(t, n, t.TempDir(), Options{})
		relay.eng.Connect(Peer{ID: n, StorageID: "store-" + n})
		nw.nodes[n].eng.Connect(Peer{ID: "relay", StorageID: "store-relay"})
	}
	author := nw.nodes["author"]
	id := docid.New()
	ha, err := author.repo.Create(ctx, id, crdt.New())
	if err != nil {
		t.Fatal(err)
	}
	setValue(t, ha, "round", "0")
	outs, _ := author.eng.Sync(ctx, id, []string{"relay"})
	nw.pump("author", outs)
	followers := names[1:]
	for _, f := range followers {
		if got := value(t, nw.nodes[f], id, "round"); got != "0" {
			t.Fatalf("%s holds round %v after the first exchange", f, got)
		}
	}
	for round := 1; round <= 12; round++ {
		want := fmt.Sprint(round)
		compared := 0
		nw.lose = func(from string, o Out) bool {
			if round%4 == 0 && from == "relay" && o.To != "author" && crdt.CountChanges(o.Data) > 0 {
				// Before the peer answers: the message its own state makes
				// now is the one it was sent, but for the state that made it
				// (which has just sent it, and so sends nothing more).
				if msg, ok, err := relay.eng.peers[o.To].states[id].ss.Generate(); err != nil {
					t.Fatal(err)
				} else if ok {
					compared++
					if !bytes.Equal(msg, o.Data) {
						t.Errorf("round %d: %s was sent %x; its own state makes %x", round, o.To, o.Data, msg)
					}
				}
			}
			switch {
			case round%4 == 1 && from == "f3":
				return true // f3's confirmation is lost
			case round%4 == 2 && from == "relay" && o.To == "f4" && crdt.CountChanges(o.Data) > 0:
				return true // the change is lost on its way to f4
			}
			return false
		}
		shared := relay.eng.shared.Load()
		setValue(t, ha, "round", want)
		outs, _ := author.eng.Sync(ctx, id, []string{"relay"})
		nw.pump("author", outs)
		nw.lose = nil
		if round%4 == 0 {
			if n := relay.eng.shared.Load() - shared; n != int64(len(followers)-1) {
				t.Errorf("round %d: %d messages shared among %d settled subscribers, want all but one", round, n, len(followers))
			}
			if compared != len(followers)-1 {
				t.Errorf("round %d: %d shared messages compared with their peers' own, want %d", round, compared, len(followers)-1)
			}
		}
		// The relay recovers a change lost on a live connection by beginning
		// that exchange afresh when the device asks again (Restart).
		for _, f := range followers {
			if value(t, nw.nodes[f], id, "round") != want {
				if err := relay.eng.Restart(f, id); err != nil {
					t.Fatal(err)
				}
				outs, _ := relay.eng.Sync(ctx, id, []string{f})
				nw.pump("relay", outs)
			}
			if got := value(t, nw.nodes[f], id, "round"); got != want {
				t.Fatalf("round %d: %s holds round %v", round, f, got)
			}
		}
	}
}
