package relay

import (
	"bytes"
	"context"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/wire"
)

// A device offering a document it holds exactly as the relay does (as every
// unchanged document is offered on connecting, and by every device coming
// back to a relay that restarted) is answered without a CRDT worker: told
// the two agree if its message does not show it knows, and its sync state
// saved as sharing the heads. Anything more goes to a worker, as does any
// but a peer's first word about the document: a worker that has had the
// peer in a call keeps an Automerge record of it, which an answer beside it
// would leave behind, and a device repeating its offer must not have the
// relay read the store for each.
func TestOffersInStepCostNoWorker(t *testing.T) {
	w := &peerWorker{}
	r := newTestRelay(t, Config{Linger: time.Millisecond}, w)
	s, docID := r.s, r.doc
	ctx := context.Background()
	d := crdt.New()
	set := func(v string) {
		t.Helper()
		if _, err := d.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set(v, "room") }); err != nil {
			t.Fatal(err)
		}
	}
	var seqs []uint64
	keep := func(since []crdt.Hash) {
		t.Helper()
		chunk, err := d.SaveSince(since)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := (host{s}).AppendChunk(ctx, docID, chunk)
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	set("Ward 2")
	keep(nil)
	before := d.Heads()
	set("Ward 3")
	keep(before)
	heads := d.Heads()
	first := func(ss *crdt.SyncState, err error) []byte {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		msg, ok, err := ss.Generate()
		if err != nil || !ok {
			t.Fatalf("Generate = %v, %v", ok, err)
		}
		return msg
	}
	fresh := first(crdt.NewSyncState(d), nil)
	known := first(crdt.SyncStateSharing(d, heads))
	behind, err := d.At(before)
	if err != nil {
		t.Fatal(err)
	}
	older := first(crdt.NewSyncState(behind), nil)

	type peer struct {
		c   *conn
		rec *recorder
	}
	connect := func(name string) peer {
		t.Helper()
		dev, sc := r.device(t, "PC "+name)
		rec := &recorder{}
		c := newConn(s, ctx, rec, dev, sc)
		b, _ := wire.Encode(wire.Message{Type: wire.TypeJoin, SenderID: name, SupportedProtocolVersions: []string{"1"},
			PeerMetadata: &wire.PeerMetadata{StorageID: "storage-" + name}})
		c.onFrame(b)
		return peer{c, rec}
	}
	offer := func(p peer, data []byte) {
		t.Helper()
		b, _ := wire.Encode(wire.Message{Type: wire.TypeSync, SenderID: p.c.clientID, TargetID: "relay", DocumentID: docID, Data: data})
		p.c.onFrame(b)
		s.wg.Wait()
	}
	syncsTo := func(p peer) [][]byte {
		p.rec.mu.Lock()
		defer p.rec.mu.Unlock()
		var out [][]byte
		for _, f := range p.rec.frames {
			m, err := wire.Decode(f)
			if err == nil && m.Type == wire.TypeSync && m.DocumentID == docID {
				out = append(out, m.Data)
			}
		}
		return out
	}
	worked := func() []string {
		w.mu.Lock()
		defer w.mu.Unlock()
		return slices.Clone(w.from)
	}
	saved := func(p peer) []byte {
		t.Helper()
		st, err := s.st.SyncState(p.c.peer.StorageID, docID)
		if err != nil {
			t.Fatalf("the sync state of %s: %v", p.c.clientID, err)
		}
		return st
	}

	a, b, c := connect("a"), connect("b"), connect("c")
	offer(a, fresh)
	if got := worked(); len(got) != 0 {
		t.Fatalf("a's offer in step went to a worker (%q)", got)
	}
	if got := syncsTo(a); len(got) != 1 || !bytes.Equal(got[0], crdt.HeadsMessage(heads)) {
		t.Fatalf("a was sent %x, want one message of the relay's heads alone", got)
	}
	if !bytes.Equal(saved(a), crdt.SavedSharing(heads)) {
		t.Errorf("a's sync state saved as %x, want sharing the heads", saved(a))
	}

	offer(b, known) // it already knows the relay holds them
	if got := worked(); len(got) != 0 {
		t.Fatalf("b's settled offer went to a worker (%q)", got)
	}
	if got := syncsTo(b); len(got) != 0 {
		t.Fatalf("b, which knew the two agree, was sent %x", got)
	}
	if !bytes.Equal(saved(b), crdt.SavedSharing(heads)) {
		t.Errorf("b's sync state saved as %x, want sharing the heads", saved(b))
	}

	// Only a peer's first word is answered in step: b saying it again
	// cannot have the relay read the store for each.
	offer(b, known)
	if got := worked(); !slices.Equal(got, []string{b.c.peer.ID}) {
		t.Fatalf("worked %q, want b's second offer", got)
	}
	offer(c, older) // behind the relay: a worker sends it what it lacks
	if got := worked(); !slices.Equal(got, []string{b.c.peer.ID, c.c.peer.ID}) {
		t.Fatalf("worked %q, want c's offer from behind", got)
	}
	// A worker now keeps a record of c and of its followers (a, b): d's
	// first word is answered in step, and the next word of a follower,
	// even in step, is the worker's.
	d2 := connect("d")
	offer(d2, fresh)
	offer(a, fresh)
	if got := worked(); !slices.Equal(got, []string{b.c.peer.ID, c.c.peer.ID, a.c.peer.ID}) {
		t.Fatalf("worked %q, want d's first offer answered in step and a's next offer worked", got)
	}

	// While a change from another node is being taken in beside the
	// runner, its followers read before f subscribed, f's first word goes
	// to a worker: told the two agree at the heads being moved, f would
	// never hear of the change.
	s.mu.Lock()
	end := s.beginOutsideLocked(docID)
	s.mu.Unlock()
	f := connect("f")
	offer(f, fresh)
	end()
	if got := worked(); !slices.Equal(got, []string{b.c.peer.ID, c.c.peer.ID, a.c.peer.ID, f.c.peer.ID}) {
		t.Fatalf("worked %q, want f's offer made while another node's change was taken in", got)
	}

	// The first chunk damaged and quarantined: what is left names the
	// heads, but the relay no longer holds the history under them, and a
	// device offering them is answered by a worker (which asks it for
	// what is missing), not told the two agree.
	if err := (host{s}).Quarantine(ctx, docID, seqs[0], "test: damaged"); err != nil {
		t.Fatal(err)
	}
	e := connect("e")
	offer(e, fresh)
	if got := worked(); !slices.Equal(got, []string{b.c.peer.ID, c.c.peer.ID, a.c.peer.ID, f.c.peer.ID, e.c.peer.ID}) {
		t.Fatalf("worked %q, want e's offer after the first chunk was quarantined", got)
	}
	if got := syncsTo(e); len(got) != 1 || bytes.Equal(got[0], crdt.HeadsMessage(heads)) {
		t.Fatalf("e was sent %x by the relay, want the worker's one answer", got)
	}

	rec := httptest.NewRecorder()
	s.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), "haven_relay_in_step_answers_total 3\n") {
		t.Errorf("in-step answers counted other than the 3 made:\n%s", rec.Body.String())
	}
}
