package relay

import (
	"bytes"
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/store"
	"haven/shared/wire"
	"haven/syncd/internal/orgs"
	"haven/syncd/internal/worker"
)

// recorder is a connection that keeps what the relay sends.
type recorder struct {
	mu     sync.Mutex
	frames [][]byte
	closed bool
}

func (r *recorder) Send(b []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.frames = append(r.frames, b)
	return nil
}
func (r *recorder) SendWait(_ context.Context, b []byte) error { return r.Send(b) }
func (r *recorder) Close(int, string) error {
	r.mu.Lock()
	r.closed = true
	r.mu.Unlock()
	return nil
}

// echoWorker stands in for the CRDT workers: it answers every message with
// a sync message to its sender, so fan-out paths run without Automerge.
type echoWorker struct{}

func (echoWorker) Work(_ context.Context, a worker.WorkArgs) (worker.WorkReply, error) {
	var r worker.WorkReply
	for _, m := range a.Msgs {
		r.Out = append(r.Out, worker.OutMsg{To: m.From, Doc: a.Doc, Data: []byte{0x42, 0, 0, 0, 0}})
	}
	return r, nil
}
func (echoWorker) Forget(string) {}
func (echoWorker) Flush() error  { return nil }

// FuzzHandleFrames feeds arbitrary frame sequences to a joined device's
// connection. The relay must never panic, must answer a message about a
// document owned by another home exactly as for a missing one, and must
// never send that home's document to this device.
func FuzzHandleFrames(f *testing.F) {
	s, dev, sc, foreign, own := twoHomes(f)
	ctx := context.Background()
	enc := func(m wire.Message) []byte { b, _ := wire.Encode(m); return b }
	join := enc(wire.Message{Type: wire.TypeJoin, SenderID: "p1", SupportedProtocolVersions: []string{"1"}})
	for _, m := range []wire.Message{
		{Type: wire.TypeSync, SenderID: "p1", TargetID: "x", DocumentID: foreign, Data: []byte{0x42, 0, 0, 0, 0}},
		{Type: wire.TypeRequest, SenderID: "p1", TargetID: "x", DocumentID: own, Data: []byte{0x42, 0, 0, 0, 0}},
		{Type: wire.TypeEphemeral, SenderID: "p1", TargetID: "x", DocumentID: own, Data: []byte{1}, Count: 2, SessionID: "s"},
		{Type: wire.TypeHavenFetch, SenderID: "p1", TargetID: "x", DocumentIDs: []string{foreign, own}},
		{Type: wire.TypeHavenAudit, SenderID: "p1", TargetID: "x", Data: []byte(`[{"resident":"` + foreign + `","action":"x"}]`), Count: 1},
	} {
		f.Add(enc(m), []byte{0xa0})
	}
	f.Add([]byte{0xff, 0x00}, []byte("not cbor"))
	f.Fuzz(func(t *testing.T, a, b []byte) {
		rec := &recorder{}
		c := newConn(s, context.Background(), rec, dev, sc)
		c.onFrame(join)
		c.onFrame(a)
		c.onFrame(b)
		close(c.boot)
		c.bootstrap(ctx) // serve any haven requests queued
		s.wg.Wait()      // queued work done
		c.leave()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, fr := range rec.frames {
			m, err := wire.Decode(fr)
			if err != nil {
				t.Fatalf("relay sent an undecodable frame %x", fr)
			}
			// About another home's document the relay may say only what it
			// says of a document it lacks: unavailable, or an empty
			// document's sync message.
			if m.DocumentID == foreign && m.Type != wire.TypeDocUnavailable &&
				!(m.Type == wire.TypeSync && bytes.Equal(m.Data, s.emptyReply)) {
				t.Fatalf("relay sent %s for another home's document", m.Type)
			}
		}
	})
}

// twoHomes starts a relay with an echo worker and two homes, each with one
// document, and enrols a device of the first.
func twoHomes(tb testing.TB) (s *Server, dev orgs.Device, sc orgs.Scope, foreign, own string) {
	st, err := store.Open(tb.TempDir(), store.Options{Key: bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { st.Close() })
	reg := orgs.New(st)
	ctx := context.Background()
	mine, _ := reg.CreateHome(ctx, "Mine", "")
	theirs, _ := reg.CreateHome(ctx, "Theirs", "")
	if dev, _, err = reg.EnrollDevice(ctx, mine.ID, "probe", 0); err != nil {
		tb.Fatal(err)
	}
	if sc, err = reg.Scope(dev); err != nil {
		tb.Fatal(err)
	}
	if s, err = New(Config{Store: st, Orgs: reg}); err != nil {
		tb.Fatal(err)
	}
	s.Start(echoWorker{})
	foreign, own = docid.New().String(), docid.New().String()
	s.RegisterDocument(foreign, theirs.ID)
	s.RegisterDocument(own, mine.ID)
	return s, dev, sc, foreign, own
}

// TestAnotherHomesDocumentLooksMissing: whatever a device asks about
// another home's document without sending changes, the relay's answer is
// byte for byte the one it gives for a document it has never held, so a
// device cannot learn which IDs exist elsewhere. Its own home's document
// is answered by the worker (here an echo), which shows the test can tell.
func TestAnotherHomesDocumentLooksMissing(t *testing.T) {
	s, dev, sc, foreign, own := twoHomes(t)
	enc := func(m wire.Message) []byte { b, _ := wire.Encode(m); return b }
	answers := func(doc string, m wire.Message) []wire.Message {
		rec := &recorder{}
		c := newConn(s, context.Background(), rec, dev, sc)
		c.onFrame(enc(wire.Message{Type: wire.TypeJoin, SenderID: "p1", SupportedProtocolVersions: []string{"1"}}))
		rec.mu.Lock()
		rec.frames = nil // the peer reply
		rec.mu.Unlock()
		m.DocumentID = doc
		c.onFrame(enc(m))
		s.wg.Wait()
		c.leave()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		var out []wire.Message
		for _, fr := range rec.frames {
			a, err := wire.Decode(fr)
			if err != nil {
				t.Fatal(err)
			}
			if a.DocumentID == doc {
				a.DocumentID = "DOC"
			}
			out = append(out, a)
		}
		return out
	}
	empty := crdt.EmptySyncMessage()
	withHeads := crdt.New()
	if _, err := withHeads.Change("x", time.Unix(0, 0), func(w *crdt.Writer) error { return w.Set(int64(1), "x") }); err != nil {
		t.Fatal(err)
	}
	// The first message a peer holding changes sends names its heads but
	// carries none of them.
	heads, _, err := crdt.NewSyncState(withHeads).Generate()
	if err != nil || crdt.CountChanges(heads) != 0 {
		t.Fatalf("first sync message: %v, %d changes", err, crdt.CountChanges(heads))
	}
	probes := map[string]wire.Message{
		"request":           {Type: wire.TypeRequest, SenderID: "p1", TargetID: "relay", Data: empty},
		"sync, empty":       {Type: wire.TypeSync, SenderID: "p1", TargetID: "relay", Data: empty},
		"sync naming heads": {Type: wire.TypeSync, SenderID: "p1", TargetID: "relay", Data: heads},
		"sync, malformed":   {Type: wire.TypeSync, SenderID: "p1", TargetID: "relay", Data: []byte{0x42, 1, 2}},
		"ephemeral":         {Type: wire.TypeEphemeral, SenderID: "p1", TargetID: "relay", Data: []byte{1}, Count: 1, SessionID: "s"},
	}
	for name, m := range probes {
		missing := answers(docid.New().String(), m)
		other := answers(foreign, m)
		if len(missing) == 0 && m.Type != wire.TypeEphemeral { // ephemeral messages get no answer
			t.Errorf("%s: no answer about a missing document", name)
		}
		if !reflect.DeepEqual(missing, other) {
			t.Errorf("%s: another home's document answered %+v, a missing one %+v", name, other, missing)
		}
		if m.Type == wire.TypeSync && name != "sync, malformed" && reflect.DeepEqual(answers(own, m), missing) {
			t.Errorf("%s: the device's own document was answered as a missing one", name)
		}
	}
}

// TestRequestsForMadeUpIDsAreBounded: a connection asking for thousands of
// documents nobody has gets doc-unavailable for each, and the relay
// remembers at most maxAskedPerConn of them for it, and none once it goes.
func TestRequestsForMadeUpIDsAreBounded(t *testing.T) {
	s, dev, sc, _, _ := twoHomes(t)
	rec := &recorder{}
	c := newConn(s, context.Background(), rec, dev, sc)
	enc := func(m wire.Message) []byte { b, _ := wire.Encode(m); return b }
	c.onFrame(enc(wire.Message{Type: wire.TypeJoin, SenderID: "p1", SupportedProtocolVersions: []string{"1"}}))
	const asked = 3 * maxAskedPerConn
	for i := 0; i < asked; i++ {
		c.onFrame(enc(wire.Message{Type: wire.TypeRequest, SenderID: "p1", TargetID: "relay", DocumentID: docid.New().String(), Data: crdt.EmptySyncMessage()}))
	}
	unavailable := 0
	rec.mu.Lock()
	for _, fr := range rec.frames {
		if m, err := wire.Decode(fr); err == nil && m.Type == wire.TypeDocUnavailable {
			unavailable++
		}
	}
	rec.mu.Unlock()
	s.mu.Lock()
	held := len(s.waiting)
	s.mu.Unlock()
	if unavailable != asked || held != maxAskedPerConn {
		t.Fatalf("%d requests: %d answered unavailable, %d remembered; want all answered, %d remembered", asked, unavailable, held, maxAskedPerConn)
	}
	c.leave()
	s.mu.Lock()
	held = len(s.waiting)
	s.mu.Unlock()
	if held != 0 {
		t.Fatalf("%d documents still waited for after the connection left", held)
	}
}
