package relay

import (
	"bytes"
	"context"
	"sync"
	"testing"

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
	st, err := store.Open(f.TempDir(), store.Options{Key: bytes.Repeat([]byte{3}, 32)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	reg := orgs.New(st)
	ctx := context.Background()
	mine, _ := reg.CreateHome(ctx, "Mine", "")
	theirs, _ := reg.CreateHome(ctx, "Theirs", "")
	s, err := New(Config{Store: st, Orgs: reg})
	if err != nil {
		f.Fatal(err)
	}
	s.Start(echoWorker{})
	foreign := docid.New().String()
	own := docid.New().String()
	s.RegisterDocument(foreign, theirs.ID)
	s.RegisterDocument(own, mine.ID)
	dev := orgs.Device{ID: "dev-fuzz", Org: mine.ID}
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
		sc, err := reg.Scope(dev)
		if err != nil {
			sc = orgs.Scope{Device: dev}
		}
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
			if m.DocumentID == foreign && m.Type != wire.TypeDocUnavailable {
				t.Fatalf("relay sent %s for another home's document", m.Type)
			}
		}
	})
}
