package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/repo"
	"haven/shared/rig"
	"haven/shared/store"
	"haven/shared/transport"
	"haven/shared/wire"
)

// fakeRelay is a websocket endpoint whose behaviour each test scripts: it
// hands every accepted connection, with the frames it reads, to serve.
type fakeRelay struct {
	url     string
	mu      sync.Mutex
	conns   []time.Time   // when each connection was accepted
	ends    []time.Time   // when each connection ended
	changed chan struct{} // closed and replaced at each connection and each end
}

// noteLocked records a connection or its end and wakes waiters. Caller holds f.mu.
func (f *fakeRelay) noteLocked(list *[]time.Time) {
	*list = append(*list, time.Now())
	close(f.changed)
	f.changed = make(chan struct{})
}

// waitFor waits until cond holds for the connections accepted and ended so
// far, woken by each of them.
func (f *fakeRelay) waitFor(t *testing.T, what string, cond func(conns, ends int) bool) {
	t.Helper()
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for {
		f.mu.Lock()
		ok, changed := cond(len(f.conns), len(f.ends)), f.changed
		f.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-changed:
		case <-deadline.C:
			t.Fatalf("no %s in 30 s", what)
		}
	}
}

func newFakeRelay(t *testing.T, serve func(tc *transport.Conn, frames <-chan wire.Message)) *fakeRelay {
	t.Helper()
	f := &fakeRelay{changed: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tc, err := transport.Upgrade(w, r, transport.Options{})
		if err != nil {
			return
		}
		f.mu.Lock()
		f.noteLocked(&f.conns)
		f.mu.Unlock()
		frames := make(chan wire.Message, 1024)
		go func() {
			tc.Run(context.Background(), func(frame []byte) {
				if m, err := wire.Decode(frame); err == nil {
					frames <- m
				}
			})
			close(frames)
		}()
		serve(tc, frames)
		<-tc.Done()
		f.mu.Lock()
		f.noteLocked(&f.ends)
		f.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	f.url = "ws" + strings.TrimPrefix(srv.URL, "http")
	return f
}

// gaps returns how long the client waited between one connection's end and
// the next connection.
func (f *fakeRelay) gaps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for i := 1; i < len(f.conns) && i-1 < len(f.ends); i++ {
		out = append(out, f.conns[i].Sub(f.ends[i-1]))
	}
	return out
}

// startClient runs a client against url holding one document, and returns
// it with the document's ID.
func startClient(t *testing.T, url string, minBackoff, maxBackoff time.Duration) (*Client, docid.ID) {
	t.Helper()
	return startClientWith(t, Config{URL: url, MinBackoff: minBackoff, MaxBackoff: maxBackoff})
}

// startClientWith is startClient for a test's own addresses, backoff and
// callbacks, set in cfg.
func startClientWith(t *testing.T, cfg Config) (*Client, docid.ID) {
	t.Helper()
	key := make([]byte, 32)
	rand.Read(key)
	st, err := store.Open(t.TempDir(), store.Options{Key: key})
	if err != nil {
		t.Fatal(err)
	}
	r := repo.New(st, repo.Options{})
	id := docid.New()
	doc := crdt.New()
	if _, err := doc.Change("first", time.Now(), func(w *crdt.Writer) error { return w.Set("Test Resident", "name") }); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(context.Background(), id, doc); err != nil {
		t.Fatal(err)
	}
	cfg.Credential, cfg.Repo, cfg.States, cfg.PeerID, cfg.StorageID = "secret", r, st, "desktop-test", "store-test"
	cfg.Docs = func() []docid.ID { return []docid.ID{id} }
	c := New(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		r.Close()
		st.Close()
	})
	return c, id
}

// The first sync messages travel right behind the join: the client does
// not wait a round trip for the relay's peer reply before offering its
// documents, and it says it is online only once the relay has taken it.
func TestFirstSyncGoesWithTheJoin(t *testing.T) {
	got := make(chan []wire.Message, 1)
	f := newFakeRelay(t, func(tc *transport.Conn, frames <-chan wire.Message) {
		// Never answers the join: everything the client sends, it sends
		// unprompted.
		var seen []wire.Message
		timeout := time.After(10 * time.Second)
		for {
			select {
			case m, ok := <-frames:
				if !ok {
					got <- seen
					return
				}
				seen = append(seen, m)
				if m.Type == wire.TypeSync {
					got <- seen
					return
				}
			case <-timeout:
				got <- seen
				tc.Close(transport.CloseGoingAway, "")
				return
			}
		}
	})
	c, id := startClient(t, f.url, 10*time.Millisecond, 50*time.Millisecond)
	seen := <-got
	var types []string
	for _, m := range seen {
		types = append(types, string(m.Type))
	}
	if len(seen) < 2 || seen[0].Type != wire.TypeJoin || seen[len(seen)-1].Type != wire.TypeSync {
		t.Fatalf("frames before any peer reply: %v; want the join, then the document's sync message", types)
	}
	if seen[len(seen)-1].DocumentID != id.String() {
		t.Errorf("sync message for %s, want %s", seen[len(seen)-1].DocumentID, id)
	}
	if c.Status().Online {
		t.Error("online before the relay answered the join")
	}
}

// A connection the relay took and then lost (a relay restart, a dropped
// line) is retried at once, not after the waits that earlier failed dials
// built up; dials the relay refuses before a join still back off.
func TestReconnectBackoff(t *testing.T) {
	const minBackoff, maxBackoff = 20 * time.Millisecond, 2 * time.Second
	t.Run("joined", func(t *testing.T) {
		f := newFakeRelay(t, func(tc *transport.Conn, frames <-chan wire.Message) {
			// Take the device, then "restart" once its offer has arrived.
			for m := range frames {
				switch m.Type {
				case wire.TypeJoin:
					if frame, err := wire.Encode(wire.Message{Type: wire.TypePeer, SenderID: "relay", TargetID: m.SenderID,
						SelectedProtocolVersion: wire.ProtocolV1}); err == nil {
						tc.Send(frame)
					}
				case wire.TypeSync:
					tc.Close(transport.CloseGoingAway, "restarting")
					return
				}
			}
		})
		startClient(t, f.url, minBackoff, maxBackoff)
		waitEnds(t, f, 10)
		gaps := f.gaps()
		last := slices.Clone(gaps[len(gaps)-5:])
		slices.Sort(last)
		// Doubling from 20 ms would wait at least a second by now.
		if med := last[len(last)/2]; med > 400*time.Millisecond {
			t.Errorf("waits before reconnecting after joined connections: %v; median of the last five %v, want well under a second", gaps, med)
		}
	})
	t.Run("refused before joining", func(t *testing.T) {
		f := newFakeRelay(t, func(tc *transport.Conn, frames <-chan wire.Message) {
			tc.Close(transport.CloseTryAgainLater, "at capacity")
		})
		startClient(t, f.url, minBackoff, maxBackoff)
		waitEnds(t, f, 8)
		gaps := f.gaps()
		// The seventh wait is drawn from [640 ms, 1280 ms].
		if g := gaps[6]; g < 500*time.Millisecond {
			t.Errorf("waits after refusals: %v; the seventh is %v, want the backoff to have grown past 500 ms", gaps, g)
		}
	})
}

// waitEnds waits until n connections have come and gone.
func waitEnds(t *testing.T, f *fakeRelay, n int) {
	t.Helper()
	f.waitFor(t, fmt.Sprintf("%d ended connections", n), func(_, ends int) bool { return ends >= n })
}

// A relay that turns the device away for now says why, and the status bar
// shows its words, not a verdict on the device.
func TestRefusalForNowShowsTheRelaysWords(t *testing.T) {
	const why = "the relay is at its connection limit; try again shortly"
	var mu sync.Mutex
	first := true
	f := newFakeRelay(t, func(tc *transport.Conn, frames <-chan wire.Message) {
		mu.Lock()
		refuse := first
		first = false
		mu.Unlock()
		if !refuse { // later connections hear nothing: the status stays as the refusal left it
			for range frames {
			}
			return
		}
		for m := range frames {
			if m.Type == wire.TypeJoin {
				if frame, err := wire.Encode(wire.Message{Type: wire.TypeError, SenderID: "relay", TargetID: m.SenderID, ErrorMessage: why}); err == nil {
					tc.Send(frame)
				}
				tc.Close(transport.CloseTryAgainLater, "at capacity")
				return
			}
		}
	})
	c, _ := startClient(t, f.url, 20*time.Millisecond, time.Second)
	// The client has hung up on the first connection once it dials again.
	f.waitFor(t, "second connection", func(conns, _ int) bool { return conns >= 2 })
	if st := c.Status(); st.Online || st.LastError != why {
		t.Errorf("status after a refusal for now: online %v, problem %q; want offline with %q", st.Online, st.LastError, why)
	}
}

// A document the relay sends unasked while a Bootstrap is waiting on its
// own list (a record opened for a call, answered at that moment) is stored
// and wakes whoever waits for it; the Bootstrap does not swallow it.
func TestUnaskedDocumentDuringBootstrapIsStored(t *testing.T) {
	opened := docid.New()
	snapshot := residentSnapshot(t, "Opened Resident")
	f := scriptedRelay(t, func(send func(wire.Message), m wire.Message) {
		if m.Type == wire.TypeHavenList {
			// The opened record arrives before the list's answer, as
			// when an opening is answered while the list is asked for.
			send(wire.Message{Type: wire.TypeHavenDoc, DocumentID: opened.String(), Snapshot: snapshot})
			send(wire.Message{Type: wire.TypeHavenList})
		}
	})
	c, _ := startClient(t, f.url, 10*time.Millisecond, 50*time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bootstrapOnline(ctx, t, f, c)
	if err := c.awaitStored(ctx, opened); err != nil {
		t.Fatalf("the document the relay sent during a bootstrap was not stored: %v", err)
	}
}

// residentSnapshot is a saved document naming a resident.
func residentSnapshot(t *testing.T, name string) []byte {
	t.Helper()
	doc := crdt.New()
	if _, err := doc.Change("first", time.Now(), func(w *crdt.Writer) error { return w.Set(name, "name") }); err != nil {
		t.Fatal(err)
	}
	return doc.Save()
}

// scriptedRelay answers each join as a relay does and hands every other
// frame to answer, with a way to send.
func scriptedRelay(t *testing.T, answer func(send func(wire.Message), m wire.Message)) *fakeRelay {
	t.Helper()
	return newFakeRelay(t, func(tc *transport.Conn, frames <-chan wire.Message) {
		send := func(m wire.Message) {
			if frame, err := wire.Encode(m); err == nil {
				tc.Send(frame)
			}
		}
		for m := range frames {
			if m.Type == wire.TypeJoin {
				send(wire.Message{Type: wire.TypePeer, SenderID: "relay", TargetID: m.SenderID, SelectedProtocolVersion: wire.ProtocolV1})
				continue
			}
			answer(send, m)
		}
	})
}

// bootstrapOnline runs a Bootstrap once the client holds its connection
// (a moment after the relay accepts it).
func bootstrapOnline(ctx context.Context, t *testing.T, f *fakeRelay, c *Client) {
	t.Helper()
	f.waitFor(t, "a connection", func(conns, _ int) bool { return conns >= 1 })
	for {
		_, err := c.Bootstrap(ctx, nil)
		if err == nil {
			return
		}
		if !errors.Is(err, ErrOffline) {
			t.Fatalf("bootstrap: %v", err)
		}
	}
}

// memLetGo is a LetGo in memory.
type memLetGo struct {
	mu    sync.Mutex
	marks map[docid.ID]bool
}

func (l *memLetGo) Add(ids []docid.ID, _, _ string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		l.marks[id] = true
	}
}

func (l *memLetGo) Marked(id docid.ID) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.marks[id]
}

func (l *memLetGo) Remove(ids []docid.ID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, id := range ids {
		delete(l.marks, id)
	}
}

// A document the relay listed, then told the device to let go (consent
// withdrawn) before the download it had already sent arrived, is not kept:
// the device holds no copy of it after the bootstrap.
func TestDocumentLetGoDuringBootstrapIsNotKept(t *testing.T) {
	withdrawn := docid.New()
	snapshot := residentSnapshot(t, "Withdrawn Resident")
	f := scriptedRelay(t, func(send func(wire.Message), m wire.Message) {
		switch m.Type {
		case wire.TypeHavenList:
			send(wire.Message{Type: wire.TypeHavenList, DocumentIDs: []string{withdrawn.String()}})
		case wire.TypeHavenFetch:
			// Consent withdrawn between the listing and the fetch's
			// answer: the let-go overtakes the download.
			send(wire.Message{Type: wire.TypeHavenGone, DocumentIDs: []string{withdrawn.String()}, ErrorCode: wire.CodeNotShared})
			send(wire.Message{Type: wire.TypeHavenDoc, DocumentID: withdrawn.String(), Snapshot: snapshot})
		}
	})
	letGo := &memLetGo{marks: map[docid.ID]bool{}}
	c, _ := startClientWith(t, Config{URL: f.url, MinBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond, LetGo: letGo})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	bootstrapOnline(ctx, t, f, c)
	if !letGo.Marked(withdrawn) {
		t.Fatal("the document the relay said to let go is not marked")
	}
	if _, err := c.cfg.Repo.Open(withdrawn); !errors.Is(err, repo.ErrNotFound) {
		t.Fatalf("the device holds the document it was told to let go: Open = %v", err)
	}
}

// The word to let a document go is carried out whatever becomes of the
// connection that brought it: with that connection's context already
// ended, the copy is deleted all the same, not left marked on the disk.
func TestLetGoOutlivesItsConnection(t *testing.T) {
	letGo := &memLetGo{marks: map[docid.ID]bool{}}
	c, id := startClientWith(t, Config{URL: "ws://127.0.0.1:1/sync", MinBackoff: time.Second, MaxBackoff: time.Second, LetGo: letGo})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the connection ended before the work goroutine reached the let-go
	done := make(chan struct{})
	c.enqueue(func() { c.letGo(ctx, []docid.ID{id}, wire.CodeNotShared, ""); close(done) })
	<-done
	if !letGo.Marked(id) {
		t.Fatal("the document is not marked let go")
	}
	if _, err := c.cfg.Repo.Open(id); !errors.Is(err, repo.ErrNotFound) {
		t.Fatalf("a copy is still on the disk after the let-go: Open = %v", err)
	}
}

// A document's change the relay could not store just then (internal: a
// cluster node without a quorum) is offered again shortly on the same
// connection, not only when the device next reconnects.
func TestChangeTheRelayCouldNotStoreIsSentAgain(t *testing.T) {
	var mu sync.Mutex
	syncs := 0
	f := scriptedRelay(t, func(send func(wire.Message), m wire.Message) {
		if m.Type != wire.TypeSync {
			return
		}
		mu.Lock()
		syncs++
		first := syncs == 1
		mu.Unlock()
		if first {
			send(wire.Message{Type: wire.TypeError, DocumentID: m.DocumentID, ErrorCode: wire.CodeInternal, ErrorMessage: "not stored just now"})
		}
	})
	startClient(t, f.url, 10*time.Millisecond, 50*time.Millisecond)
	rig.WaitFor(t, 20*time.Second, "the document's exchange to begin again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return syncs >= 2
	})
	f.mu.Lock()
	conns := len(f.conns)
	f.mu.Unlock()
	if conns != 1 {
		t.Fatalf("the document was sent again over %d connections; want it sent again on the first", conns)
	}
}
