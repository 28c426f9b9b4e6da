package main

import (
	"context"
	"io"
	"net/url"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/rig"
	"haven/shared/wire"
)

// urls lists the nodes' websocket addresses, in order.
func urls(nodes []*relayProc) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.url())
	}
	return out
}

// holdsAll reports whether d's copy of id holds every change hs names (and so
// every change before them).
func holdsAll(d *device, id docid.ID, hs []crdt.Hash) func() bool {
	return func() bool {
		h, err := d.repo.Open(id)
		if err != nil {
			return false
		}
		for _, x := range hs {
			if !h.Doc().HasChange(x) {
				return false
			}
		}
		return true
	}
}

// roomWriter is a device that knows every node's address, writing a
// resident's room through node A, the first it knows, and a device on node
// C following the resident's record.
type roomWriter struct {
	t     *testing.T
	nodes []*relayProc
	addrs []string
	enrs  []wire.Enrollment
	a, c  *device
	id    docid.ID
	n     int // the room last written
}

func startRoomWriter(t *testing.T) *roomWriter {
	t.Helper()
	home, enrs, nodes := startCluster(t, "Larch office", "Larch lounge")
	w := &roomWriter{t: t, nodes: nodes, addrs: urls(nodes), enrs: enrs}
	w.a = newDevice(t, "carer-a", enrs[0], w.addrs...)
	w.c = newDevice(t, "carer-c", enrs[1], nodes[2].url())
	waitFor(t, "both devices online", func() bool { return w.a.online() && w.c.online() })
	if got := w.a.client.Status().Relay; got != w.addrs[0] {
		t.Fatalf("the device is online at %s, want node A (%s), the first it knows", got, w.addrs[0])
	}
	docs := w.a.newResident(home, "Marlow")
	w.id = docs.RecordID
	waitFor(t, "node A to confirm the new record", func() bool { return w.a.client.Synced(w.id) })
	w.c.client.Request(w.id)
	waitFor(t, "the device on node C to receive the record", func() bool { return w.c.has(w.id) })
	return w
}

// write changes the room, on the device alone: the client sends it.
func (w *roomWriter) write() {
	w.n++
	w.a.edit(w.id, func(doc *crdt.Doc) error {
		id := w.a.record(w.id).Identity
		id.Room = strconv.Itoa(w.n)
		return w.a.ed.UpdateIdentity(doc, id)
	})
}

// writeAcked writes k times, each time waiting until the relay confirms
// the change, and returns the record's heads after each.
func (w *roomWriter) writeAcked(k int) []crdt.Hash {
	var acked []crdt.Hash
	for range k {
		w.write()
		rig.WaitFor(w.t, time.Minute, "the relay to acknowledge a change", func() bool { return w.a.client.Synced(w.id) })
		acked = append(acked, heads(w.a, w.id)...)
	}
	return acked
}

// failOver kills node A, with a change in flight and five more written
// while the device finds another node, after running between (nil: no
// more); it waits for the device to be online at the node at want, then
// writes five more, and checks that they, the change in flight and the
// acknowledged changes all reach node C's device. It logs how long each
// step took after the kill.
func (w *roomWriter) failOver(want string, acked []crdt.Hash, between func()) {
	t := w.t
	t.Helper()
	w.write()
	if between != nil {
		between()
	}
	w.nodes[0].kill()
	killed := time.Now()
	for range 5 {
		w.write()
	}
	waitFor(t, "the device online at another node", func() bool {
		s := w.a.client.Status()
		return s.Online && s.Relay == want
	})
	moved := time.Since(killed)
	for range 5 {
		w.write()
	}
	rig.WaitFor(t, time.Minute, "another node to acknowledge every change", func() bool { return w.a.client.Synced(w.id) })
	confirmed := time.Since(killed)
	rig.WaitFor(t, time.Minute, "the device on node C to hold every change", holdsAll(w.c, w.id, append(acked, heads(w.a, w.id)...)))
	t.Logf("node A killed: the device was online at the next node %v later, the 11 changes since confirmed after %v, all on node C's device after %v",
		moved.Round(time.Millisecond), confirmed.Round(time.Millisecond), time.Since(killed).Round(time.Millisecond))
	if got := w.c.record(w.id).Identity.Room; got != strconv.Itoa(w.n) {
		t.Errorf("node C's device reads room %q, want %q, the last written", got, strconv.Itoa(w.n))
	}
}

// A device that knows the three nodes' addresses, writing through node A,
// carries on through the next node when node A dies mid-exchange, with no
// restart: every change node A acknowledged, the change in flight when it
// died and every change made after reach a device on node C.
func TestFailoverToAnotherNodeLosesNothing(t *testing.T) {
	w := startRoomWriter(t)
	acked := w.writeAcked(5)
	w.failOver(w.addrs[1], acked, nil)
}

// A device whose node dies moves to a node that has not caught up with the
// cluster (it was paused while the device's changes were acknowledged):
// the sync state the device kept says the relay holds changes this node's
// store may lack yet. The exchange finds out and sends them again: nothing
// is lost, and node B's own store ends with every change.
func TestFailoverToANodeBehindLosesNothing(t *testing.T) {
	w := startRoomWriter(t)
	// Node B, the next in the device's list, stops taking anything in:
	// nodes A and C are a majority and go on acknowledging.
	b := w.nodes[1].r.PID()
	if err := syscall.Kill(b, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(b, syscall.SIGCONT) })
	acked := w.writeAcked(5)
	// Node B resumes, behind, as node A dies.
	w.failOver(w.addrs[1], acked, func() {
		if err := syscall.Kill(b, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	})

	// A device new to node B is served every change from its own store.
	d := newDevice(t, "carer-d", w.enrs[0], w.addrs[1])
	waitFor(t, "a device online at node B", d.online)
	d.client.Request(w.id)
	rig.WaitFor(t, time.Minute, "node B to serve every change", holdsAll(d, w.id, heads(w.a, w.id)))
}

// A device whose first address is a node that is down connects through
// the next.
func TestFailoverPastAFirstNodeDownAtStart(t *testing.T) {
	home, enrs, nodes := startCluster(t, "Larch office")
	nodes[0].kill()
	addrs := urls(nodes)
	d := newDevice(t, "carer-a", enrs[0], addrs...)
	waitFor(t, "the device online", d.online)
	if got := d.client.Status().Relay; got != addrs[1] {
		t.Errorf("the device is online at %s, want %s, the next after the node that is down", got, addrs[1])
	}
	docs := d.newResident(home, "Marlow")
	waitFor(t, "the cluster to confirm a new record with node A down", func() bool { return d.client.Synced(docs.RecordID) })
}

// An unmodified automerge-repo client connected to node B sees an edit a
// Go device made through node A.
func TestClusterJavaScriptClientOnAnotherNodeSeesTheEdit(t *testing.T) {
	needInterop(t)
	home, enrs, nodes := startCluster(t, "Larch office", "Browser in the lounge", "Larch garden room")
	a := newDevice(t, "carer-a", enrs[0], nodes[0].url())
	waitFor(t, "the device online at node A", a.online)

	// A plain document naming its home, as the interoperability test's
	// JavaScript client makes.
	id := docid.New()
	doc := crdt.New()
	if _, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error {
		if err := w.Set(home, "home"); err != nil {
			return err
		}
		return w.Set("made in Go", "title")
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.repo.Create(context.Background(), id, doc); err != nil {
		t.Fatal(err)
	}
	a.client.Changed(id)
	waitFor(t, "node A to confirm the document", func() bool { return a.client.Synced(id) })
	// Node B's store catches up from the cluster a moment later; until
	// then it tells a device that asks for the document it has none. A Go
	// device asking there is sent it once it is there.
	b := newDevice(t, "carer-b", enrs[2], nodes[1].url())
	waitFor(t, "a device online at node B", b.online)
	b.client.Request(id)
	waitFor(t, "node B to hold the document", func() bool { return b.has(id) })

	js := startJS(t, "js", "--retry", "200", nodes[1].url()+"?token="+url.QueryEscape(enrs[1].Credential))
	js.expect("connected", 20*time.Second)
	js.run("matched", map[string]any{"cmd": "wait", "id": id.String(), "key": "title", "value": "made in Go"})

	// The JavaScript client now follows the document: an edit through
	// node A reaches it unasked.
	a.edit(id, func(doc *crdt.Doc) error {
		_, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("edited through node A", "fromGo") })
		return err
	})
	got := js.run("matched", map[string]any{"cmd": "wait", "id": id.String(), "key": "fromGo", "value": "edited through node A"})
	if got.Doc["title"] != "made in Go" || got.Doc["home"] != home {
		t.Errorf("the JavaScript client on node B reads %v; want the edit merged into the document", got.Doc)
	}
}

// The relay tells each device it enrols the addresses given with
// -relay-urls, and none without; an address that is not one is refused
// at start.
func TestEnrolmentListsTheRelaysNodes(t *testing.T) {
	nodes := []string{"https://relay-1.example.org", "https://relay-2.example.org:8443"}
	p := startRelay(t, t.TempDir(), anyPort, "-relay-urls", nodes[0]+", "+nodes[1]+"/")
	home := idRE.FindString(p.admin("create-home", "Larch House"))
	if got := p.enroll(home, "Office").RelayURLs; !slices.Equal(got, nodes) {
		t.Errorf("enrolment lists %q, want %q", got, nodes)
	}
	alone := startRelay(t, t.TempDir(), anyPort)
	home = idRE.FindString(alone.admin("create-home", "Larch House"))
	if got := alone.enroll(home, "Office").RelayURLs; len(got) != 0 {
		t.Errorf("enrolment at a relay given no -relay-urls lists %q, want none", got)
	}
	for _, bad := range []string{"relay-1.example.org", "wss://relay-1.example.org/sync", "https://relay-1.example.org/?x=1"} {
		err := run(context.Background(), []string{"serve", "-data", t.TempDir(), "-listen", anyPort, "-relay-urls", bad}, io.Discard, io.Discard)
		if err == nil {
			t.Errorf("syncd serve -relay-urls %s started, want it refused", bad)
		}
	}
}
