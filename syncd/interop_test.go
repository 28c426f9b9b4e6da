package main

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/wire"
)

// These tests hold syncd to the real JavaScript automerge-repo 2.5.x client
// (syncd/interop/client.mjs, unmodified), driven over its stdin and stdout.

const interopDir = "interop"

// needInterop fails, never skips, when Node or the pinned JavaScript client
// is missing: interoperability is part of what `make test` proves.
func needInterop(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node is not on PATH: run `make deps` (it installs Node and syncd/interop/node_modules)")
	}
	for _, pkg := range []string{"@automerge/automerge-repo", "@automerge/automerge-repo-network-websocket", "@automerge/automerge-repo-storage-nodefs"} {
		if _, err := os.Stat(filepath.Join(interopDir, "node_modules", pkg, "package.json")); err != nil {
			t.Fatalf("syncd/interop/node_modules lacks %s: run `make deps` (npm ci || npm install in syncd/interop)", pkg)
		}
	}
	return node
}

// jsEvent is one JSON line client.mjs printed.
type jsEvent struct {
	Event        string         `json:"event"`
	DocumentID   string         `json:"documentId"`
	URL          string         `json:"url"`
	Message      string         `json:"message"`
	Code         string         `json:"code"`
	PeerID       string         `json:"peerId"`
	PeerMetadata *jsPeerMeta    `json:"peerMetadata"`
	Doc          map[string]any `json:"doc"`
	Cmd          string         `json:"cmd"`
	raw          string
}

type jsPeerMeta struct {
	StorageID   string `json:"storageId"`
	IsEphemeral bool   `json:"isEphemeral"`
}

// jsClient is one running `node client.mjs` process.
type jsClient struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan jsEvent // every event, in order; closed at end of output
	exited chan struct{}
	stderr *bytes.Buffer

	mu  sync.Mutex
	log []string // every line, for failure messages
}

// startJS runs client.mjs with args. Without commands in args it reads
// commands from stdin (send); with them it runs them and exits.
func startJS(t *testing.T, name string, args ...string) *jsClient {
	t.Helper()
	return startScript(t, name, "client.mjs", args...)
}

// startScript runs one of the interop scripts, reading its events.
func startScript(t *testing.T, name, script string, args ...string) *jsClient {
	t.Helper()
	node := needInterop(t)
	cmd := exec.Command(node, append([]string{script}, args...)...)
	cmd.Dir = interopDir
	cmd.Env = append(os.Environ(), "DEBUG=") // no automerge-repo debug noise on stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	j := &jsClient{t: t, name: name, cmd: cmd, stdin: stdin, events: make(chan jsEvent, 1000),
		exited: make(chan struct{}), stderr: &bytes.Buffer{}}
	cmd.Stderr = j.stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		defer close(j.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			j.mu.Lock()
			j.log = append(j.log, line)
			j.mu.Unlock()
			var e jsEvent
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				e = jsEvent{Event: "unparsable"}
			}
			e.raw = line
			j.events <- e
		}
	}()
	go func() {
		cmd.Wait() // after stdout reaches EOF
		close(j.exited)
	}()
	t.Cleanup(func() {
		grace := 10 * time.Second
		if t.Failed() {
			grace = 0 // it may be waiting out a command's timeout
		}
		j.stop(grace)
	})
	return j
}

// stop ends the client: end of input makes it flush and exit; it is killed
// if it does not within the grace period.
func (j *jsClient) stop(grace time.Duration) {
	j.stdin.Close()
	if grace == 0 {
		j.cmd.Process.Kill()
	}
	select {
	case <-j.exited:
	case <-time.After(grace):
		j.cmd.Process.Kill()
		<-j.exited
	}
}

func (j *jsClient) transcript() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	s := strings.Join(j.log, "\n")
	if j.stderr.Len() > 0 {
		s += "\nstderr: " + strings.TrimSpace(j.stderr.String())
	}
	return s
}

// send writes one command to the client's stdin.
func (j *jsClient) send(cmd map[string]any) {
	j.t.Helper()
	b, _ := json.Marshal(cmd)
	if _, err := fmt.Fprintf(j.stdin, "%s\n", b); err != nil {
		j.t.Fatalf("%s: write command: %v", j.name, err)
	}
}

// failures are events that mean a command did not do what it should.
var jsFailures = map[string]bool{"timeout": true, "bad-command": true, "unavailable": true, "error": true, "unparsable": true}

// expect reads events until one named want; any failure event first, the
// end of output, or the deadline fails the test.
func (j *jsClient) expect(want string, within time.Duration) jsEvent {
	j.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e, ok := <-j.events:
			if !ok {
				j.t.Fatalf("%s exited before %q:\n%s", j.name, want, j.transcript())
			}
			if e.Event == want {
				return e
			}
			if jsFailures[e.Event] {
				j.t.Fatalf("%s: %s while waiting for %q:\n%s", j.name, e.raw, want, j.transcript())
			}
		case <-deadline:
			j.t.Fatalf("%s: no %q within %v:\n%s", j.name, want, within, j.transcript())
		}
	}
}

// run sends a command and waits for its success event.
func (j *jsClient) run(want string, cmd map[string]any) jsEvent {
	j.t.Helper()
	j.send(cmd)
	return j.expect(want, 20*time.Second)
}

// drain waits for the client to exit and returns every event it printed.
func (j *jsClient) drain(within time.Duration) (events []jsEvent, exitCode int) {
	j.t.Helper()
	deadline := time.After(within)
	for {
		select {
		case e, ok := <-j.events:
			if !ok {
				<-j.exited
				return events, j.cmd.ProcessState.ExitCode()
			}
			events = append(events, e)
		case <-deadline:
			j.t.Fatalf("%s did not exit within %v:\n%s", j.name, within, j.transcript())
		}
	}
}

func tokenURL(p *relayProc, token string) string {
	if token == "" {
		return p.url()
	}
	return p.url() + "?token=" + url.QueryEscape(token)
}

// TestJavaScriptClientInterop: an unmodified automerge-repo client holding a
// device credential creates documents (one naming its care home, one naming
// none) that a Go device of the same home reads and edits; the edits flow
// back to JavaScript; and the relay files each document under the right
// owner, keeps a persistent storageId across restarts, and keeps the
// JavaScript peer's sync state under its storageId.
func TestJavaScriptClientInterop(t *testing.T) {
	needInterop(t)
	w := setup(t)
	p := w.relay
	jsEnr := p.enroll(w.homeA, "Browser in the office")
	goDev := newDevice(t, "larch-pc", p.enroll(w.homeA, "Nurses' station"), p.url())
	birch := newDevice(t, "birch-pc", p.enroll(w.homeB, "Birch office"), p.url())
	hubDev := newDevice(t, "hub", p.enroll(w.hub, "Hub laptop"), p.url())
	waitFor(t, "Go devices online", func() bool { return goDev.online() && birch.online() && hubDev.online() })

	storage := t.TempDir()
	js := startJS(t, "js", "--storage", storage, "--retry", "200", tokenURL(p, jsEnr.Credential))
	hello := js.expect("connected", 20*time.Second)
	if hello.PeerMetadata == nil || hello.PeerMetadata.StorageID == "" {
		t.Fatalf("the relay's peer message carried no storageId: %s", hello.raw)
	}
	relayStorage := hello.PeerMetadata.StorageID

	// 1. A document naming its home.
	created := js.run("created", map[string]any{"cmd": "create", "doc": map[string]any{
		"home": w.homeA, "room": "12", "title": "made in JavaScript", "tags": []any{"a", "b"}, "n": 7}})
	homed := created.DocumentID
	js.run("synced", map[string]any{"cmd": "synced", "id": homed})

	// 2. A document with no "home": a plain automerge-repo client's. It
	// belongs to the device's own organisation.
	created = js.run("created", map[string]any{"cmd": "create", "doc": map[string]any{"title": "no home field", "count": 1}})
	homeless := created.DocumentID
	js.run("synced", map[string]any{"cmd": "synced", "id": homeless})

	for _, tc := range []struct {
		id          string
		key, before string
	}{{homed, "room", "12"}, {homeless, "title", "no home field"}} {
		id, err := docid.Parse(tc.id)
		if err != nil {
			t.Fatalf("docid.Parse(%q) = %v: automerge-repo's document IDs must parse", tc.id, err)
		}
		goDev.client.Request(id)
		waitFor(t, "the Go device to receive the JavaScript document", func() bool { return len(heads(goDev, id)) > 0 })
		if v := goGet(t, goDev, id, tc.key); v != tc.before {
			t.Fatalf("Go reads %s = %v, want %q", tc.key, v, tc.before)
		}
		if tc.id == homed {
			if v := goGet(t, goDev, id, "tags"); fmt.Sprint(v) != "[a b]" {
				t.Fatalf("Go reads tags = %v", v)
			}
			if v := goGet(t, goDev, id, "n"); fmt.Sprint(v) != "7" {
				t.Fatalf("Go reads n = %v (%T)", v, v)
			}
		}
		// The Go edit flows back to the JavaScript client.
		value := "edited in Go " + tc.key
		goDev.edit(id, func(doc *crdt.Doc) error {
			_, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set(value, "fromGo") })
			return err
		})
		got := js.run("matched", map[string]any{"cmd": "wait", "id": tc.id, "key": "fromGo", "value": value})
		if got.Doc[tc.key] != tc.before {
			t.Fatalf("after the Go edit, JavaScript reads %s = %v, want %q (the edit must merge, not replace)", tc.key, got.Doc[tc.key], tc.before)
		}
		// And a JavaScript edit reaches Go.
		js.run("changed", map[string]any{"cmd": "change", "id": tc.id, "key": "fromJS", "value": "reply"})
		waitFor(t, "the JavaScript reply to reach Go", func() bool { return goGet(t, goDev, id, "fromJS") == "reply" })
		waitFor(t, "Go's copy to be confirmed", func() bool { return goDev.client.Synced(id) })

		// A hub covering the home may open it; another home may not, and
		// cannot tell it exists.
		hubDev.client.Request(id)
		waitFor(t, "the hub to receive the JavaScript document", func() bool { return hubDev.has(id) })
		select {
		case <-birch.askUnavailable(id):
		case <-time.After(10 * time.Second):
			t.Fatal("another home's device got no doc-unavailable")
		}
		if birch.has(id) {
			t.Fatalf("a device of another home received %s", tc.id)
		}
	}

	// 3. A document naming a home outside the device's scope is refused:
	// not stored, so even a device of the sender's own home cannot open it.
	js.send(map[string]any{"cmd": "create", "doc": map[string]any{"home": w.homeB, "room": "9"}})
	outside := js.expect("created", 20*time.Second).DocumentID
	refusal := js.expect("error", 20*time.Second)
	if refusal.Code != wire.CodeOutOfScope {
		t.Fatalf("refusing a document for another home, the relay said %q with code %q, want %q", refusal.Message, refusal.Code, wire.CodeOutOfScope)
	}
	outsideID, _ := docid.Parse(outside)
	select {
	case <-goDev.askUnavailable(outsideID):
	case <-time.After(10 * time.Second):
		t.Fatal("the refused document: no doc-unavailable")
	}
	if goDev.has(outsideID) {
		t.Fatal("the relay passed on a document it refused")
	}

	// 4. The JavaScript client quits; a Go edit made while it is away
	// reaches it when it comes back with the same storage, after a relay
	// restart, and the relay's storageId has not changed.
	js.run("synced", map[string]any{"cmd": "synced", "id": homed})
	js.stop(20 * time.Second)
	if code := js.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("JavaScript client exited %d:\n%s", code, js.transcript())
	}
	homedID, _ := docid.Parse(homed)
	goDev.edit(homedID, func(doc *crdt.Doc) error {
		_, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("14", "room") })
		return err
	})
	waitFor(t, "the offline edit confirmed", func() bool { return goDev.client.Synced(homedID) })
	p.stop()
	p2 := startRelay(t, p.data, p.addr)
	js2 := startJS(t, "js-again", "--storage", storage, "--retry", "200", tokenURL(p2, jsEnr.Credential))
	if again := js2.expect("connected", 20*time.Second); again.PeerMetadata == nil || again.PeerMetadata.StorageID != relayStorage {
		t.Fatalf("after a restart the relay's storageId is %+v, want %q (peers key their sync states by it)", again.PeerMetadata, relayStorage)
	}
	got := js2.run("doc", map[string]any{"cmd": "find", "id": homed})
	if got.Doc["fromJS"] != "reply" {
		t.Fatalf("the JavaScript client's own storage lost its edit: %v", got.Doc)
	}
	js2.run("matched", map[string]any{"cmd": "wait", "id": homed, "key": "room", "value": "14"})
	js2.run("synced", map[string]any{"cmd": "synced", "id": homed})
	js2.stop(20 * time.Second)

	// The relay filed the documents under the right owners, stored nothing
	// of the refused one, and kept a sync state for the JavaScript peer
	// under its storageId.
	p2.stop()
	view := openRelayStore(t, p.data)
	if o := view.owner(homed); o != w.homeA {
		t.Errorf("owner of the document naming its home = %q, want %q", o, w.homeA)
	}
	if o := view.owner(homeless); o != w.homeA {
		t.Errorf("owner of the document naming no home = %q, want the device's organisation %q", o, w.homeA)
	}
	if o := view.owner(outside); o != "" {
		t.Errorf("the refused document has owner %q", o)
	}
	if view.hasDoc(outside) {
		t.Error("the relay stored the refused document")
	}
	jsStorage := jsStorageID(t, storage)
	if st := view.syncState(jsEnr.Device+"/"+jsStorage, homed); len(st) == 0 {
		t.Errorf("the relay kept no sync state for the JavaScript peer's storage %s", jsStorage)
	}
	// The JavaScript side likewise keeps the relay's under the relay's storageId.
	if _, err := os.Stat(filepath.Join(storage, homed[:2], homed[2:], "sync-state", relayStorage)); err != nil {
		t.Errorf("the JavaScript client kept no sync state for the relay's storageId: %v", err)
	}
}

// jsStorageID reads the storageId automerge-repo generated for a storage
// folder (NodeFSStorageAdapter files key ["storage-adapter-id"] as
// st/orage-adapter-id).
func jsStorageID(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "st", "orage-adapter-id"))
	if err != nil || len(b) == 0 {
		t.Fatalf("the JavaScript client's storageId: %v", err)
	}
	return string(b)
}

// TestJavaScriptClientRefused: a JavaScript client with no credential, or a
// wrong one, is answered with an error message (the relay then closes, and
// the client retries), never with a document.
func TestJavaScriptClientRefused(t *testing.T) {
	needInterop(t)
	w := setup(t)
	p := w.relay
	owner := newDevice(t, "larch-pc", p.enroll(w.homeA, "Nurses' station"), p.url())
	waitFor(t, "online", owner.online)
	docs := owner.newResident(w.homeA, "Marlow")
	waitFor(t, "the relay to hold the record", func() bool { return owner.client.Synced(docs.RecordID) })

	for _, tc := range []struct{ name, token string }{
		{"no token", ""},
		{"wrong token", "hvn1_" + strings.Repeat("A", 43)},
		{"garbage token", "not-a-credential"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			js := startJS(t, "js "+tc.name, "--connect-timeout", "0", "--retry", "300", tokenURL(p, tc.token),
				fmt.Sprintf(`{"cmd":"find","id":%q,"timeoutMs":3000}`, docs.RecordID.String()))
			js.stdin.Close()
			events, code := js.drain(30 * time.Second)
			var refusals int
			for _, e := range events {
				switch e.Event {
				case "error":
					if e.Code != wire.CodeNotEnrolled {
						t.Errorf("error event %q with code %q, want the relay's refusal with code %q", e.Message, e.Code, wire.CodeNotEnrolled)
					}
					refusals++
				case "connected":
					t.Errorf("the relay accepted a client with %s: %s", tc.name, e.raw)
				case "doc":
					t.Errorf("a client with %s received a document: %s", tc.name, e.raw)
				}
			}
			if refusals == 0 {
				t.Errorf("no error event from the relay:\n%s", js.transcript())
			}
			if code == 0 {
				t.Errorf("the client's find succeeded (exit 0):\n%s", js.transcript())
			}
		})
	}
	waitFor(t, "healthy after refusals", func() bool { return healthz(p) == nil })
}

func goGet(t *testing.T, d *device, id docid.ID, key string) any {
	t.Helper()
	h, err := d.repo.Open(id)
	if err != nil {
		return nil
	}
	v, _, err := h.Doc().Get(key)
	if err != nil {
		t.Fatalf("Get(%s) = %v", key, err)
	}
	return v
}

// TestJavaScriptSyncMessagesPassTheGoCheck: the first sync message the
// pinned JavaScript automerge (3.x) sends a peer must pass
// crdt.CheckSyncMessage, which the relay's workers run on every message
// before Automerge sees it. automerge 3.x appends its capabilities to that
// version-1 message (a count, then one byte each); older Automerge,
// including the automerge-go the relay runs, ignores those trailing bytes.
func TestJavaScriptSyncMessagesPassTheGoCheck(t *testing.T) {
	node := needInterop(t)
	const script = `
import * as A from "@automerge/automerge"
const hex = b => Buffer.from(b).toString("hex")
const [, empty] = A.generateSyncMessage(A.init(), A.initSyncState())
const [, opening] = A.generateSyncMessage(A.from({home: "home-1", room: "12"}), A.initSyncState())
console.log(JSON.stringify({"an empty document": hex(empty), "a document with content": hex(opening)}))
`
	cmd := exec.Command(node, "--input-type=module", "-e", script)
	cmd.Dir = interopDir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var msgs map[string]string
	if err := json.Unmarshal(out, &msgs); err != nil || len(msgs) != 2 {
		t.Fatalf("node printed %q", out)
	}
	for name, h := range msgs {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		if err := crdt.CheckSyncMessage(b); err != nil {
			t.Errorf("CheckSyncMessage(JavaScript's opening message for %s, %s) = %v, want nil: the relay refuses every JavaScript client's first message "+
				"(fix shared/crdt/check.go: after the changes, accept a capability list, a uLEB count then one byte each, as automerge's Message::parse does)", name, h, err)
		}
	}
}

// TestJavaScriptChangesAreCanonical: changes the pinned JavaScript
// automerge (3.x) writes, for the kinds of values an automerge-repo client
// writes into Haven's documents (plain strings, numbers, maps, deletes,
// overwrites), decode in Go and are encoded exactly as automerge-go would
// rebuild them, so the relay's workers check them in proportion to the
// change rather than by saving and reloading the whole document.
func TestJavaScriptChangesAreCanonical(t *testing.T) {
	node := needInterop(t)
	const script = `
import * as A from "@automerge/automerge"
const hex = b => Buffer.from(b).toString("hex")
let d = A.from({type: new A.ImmutableString("resident"), n: 1, m: {a: new A.ImmutableString("x")}})
d = A.change(d, x => { x.m.a = new A.ImmutableString("y"); x.m.b = 2.5; x.f = false })
d = A.change(d, x => { delete x.m.b; x.m.c = {deep: new A.ImmutableString("z")} })
d = A.change(d, x => { x.t = "collaborative text"; x.l = [1, 2, 3] })
console.log(JSON.stringify(A.getAllChanges(d).map(hex)))
`
	cmd := exec.Command(node, "--input-type=module", "-e", script)
	cmd.Dir = interopDir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var changes []string
	if err := json.Unmarshal(out, &changes); err != nil || len(changes) != 4 {
		t.Fatalf("node printed %q", out)
	}
	for i, h := range changes {
		b, _ := hex.DecodeString(h)
		c, err := crdt.DecodeChange(b)
		if err != nil {
			t.Fatalf("change %d from JavaScript does not decode: %v", i, err)
		}
		if !c.IsCanonical() {
			t.Errorf("change %d from JavaScript (%d ops) is not canonical:\n  got %x\n from %s", i, len(c.Ops), c.Canonical(), h)
		}
	}
}

// TestJavaScriptClientGetsAStoredDocumentWhole: a fresh automerge-repo
// client (nothing of the document, its own storage) that opens a document
// with a history is sent it whole, read from the relay's store without a
// CRDT worker, in one message; it holds the document as its writer does,
// edits flow both ways afterwards, and the relay keeps, under the client's
// storageId, that it confirmed the document. A client of another home is
// sent nothing of it.
func TestJavaScriptClientGetsAStoredDocumentWhole(t *testing.T) {
	needInterop(t)
	w := setup(t)
	p := w.relay
	goDev := newDevice(t, "larch-pc", p.enroll(w.homeA, "Nurses' station"), p.url())
	waitFor(t, "the Go device online", goDev.online)
	writer := startJS(t, "writer", "--storage", t.TempDir(), "--retry", "200", tokenURL(p, p.enroll(w.homeA, "Office PC").Credential))
	writer.expect("connected", 20*time.Second)
	id := writer.run("created", map[string]any{"cmd": "create", "doc": map[string]any{"home": w.homeA, "room": "3", "visit": "0"}}).DocumentID
	for i := 1; i <= 5; i++ {
		writer.run("changed", map[string]any{"cmd": "change", "id": id, "key": "visit", "value": fmt.Sprint(i)})
	}
	writer.run("synced", map[string]any{"cmd": "synced", "id": id})
	before := metrics(t, p)["haven_relay_whole_answers_total"]

	storage := t.TempDir()
	enr := p.enroll(w.homeA, "Browser in the office")
	fresh := startJS(t, "fresh", "--storage", storage, "--retry", "200", tokenURL(p, enr.Credential))
	fresh.expect("connected", 20*time.Second)
	got := fresh.run("doc", map[string]any{"cmd": "find", "id": id})
	if got.Doc["visit"] != "5" || got.Doc["room"] != "3" {
		t.Fatalf("the fresh client opened the document as %v", got.Doc)
	}
	if n := metrics(t, p)["haven_relay_whole_answers_total"] - before; n != 1 {
		t.Fatalf("%v documents sent whole from the store, want 1", n)
	}
	fresh.run("synced", map[string]any{"cmd": "synced", "id": id})

	// The exchange goes on from there, both ways, and reaches Go.
	writer.run("changed", map[string]any{"cmd": "change", "id": id, "key": "room", "value": "4"})
	fresh.run("matched", map[string]any{"cmd": "wait", "id": id, "key": "room", "value": "4"})
	fresh.run("changed", map[string]any{"cmd": "change", "id": id, "key": "visit", "value": "from the fresh client"})
	writer.run("matched", map[string]any{"cmd": "wait", "id": id, "key": "visit", "value": "from the fresh client"})
	doc, err := docid.Parse(id)
	if err != nil {
		t.Fatal(err)
	}
	goDev.client.Request(doc)
	waitFor(t, "Go to hold the fresh client's edit", func() bool { return goDev.has(doc) && goGet(t, goDev, doc, "visit") == "from the fresh client" })
	fresh.run("synced", map[string]any{"cmd": "synced", "id": id})
	fresh.stop(20 * time.Second)
	writer.stop(20 * time.Second)

	// A fresh client of another home asking the same is told the document
	// is unavailable, as for one that does not exist, and sent nothing.
	before = metrics(t, p)["haven_relay_whole_answers_total"]
	other := startJS(t, "other home", "--storage", t.TempDir(), "--retry", "200", tokenURL(p, p.enroll(w.homeB, "Birch office").Credential))
	other.expect("connected", 20*time.Second)
	other.run("unavailable", map[string]any{"cmd": "find", "id": id, "timeoutMs": 10000})
	if n := metrics(t, p)["haven_relay_whole_answers_total"] - before; n != 0 {
		t.Fatalf("%v documents sent whole to a device of another home", n)
	}
	other.stop(20 * time.Second)

	p.stop()
	view := openRelayStore(t, p.data)
	if st := view.syncState(enr.Device+"/"+jsStorageID(t, storage), id); len(st) == 0 {
		t.Fatal("the relay kept no sync state for the fresh client")
	}
}
