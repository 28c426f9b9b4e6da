package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/rig"
	"haven/shared/wire"
)

// testServeEnv makes the test binary run `syncd serve` with the arguments
// it holds (JSON): a cluster test's node is a process of its own, so that
// it can be killed with SIGKILL.
const testServeEnv = "HAVEN_SYNCD_TEST_SERVE"

// init runs before TestMain, so a node process never runs the tests. The
// variable is cleared first: the node's CRDT workers are this binary too.
func init() {
	v := os.Getenv(testServeEnv)
	if v == "" {
		return
	}
	os.Unsetenv(testServeEnv)
	var args []string
	if err := json.Unmarshal([]byte(v), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, args, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "syncd:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// nodeProc is one relay node running as a process of its own.
type nodeProc struct {
	t      *testing.T
	name   string
	data   string
	addr   string
	cmd    *exec.Cmd
	stderr *lockedBuffer
	exited chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (n *nodeProc) url() string { return "ws://" + n.addr + "/sync" }

// kill ends the node at once, as a power cut or the OOM killer would.
func (n *nodeProc) kill() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// startNodes starts one process per data folder as one cluster, each
// waiting for the others (a cluster node serves once a quorum of nodes is
// up), and returns once every one is listening, and every node's route
// address.
func startNodes(t *testing.T, datas []string) ([]*nodeProc, []string) {
	t.Helper()
	routes := make([]string, len(datas))
	for i := range routes {
		routes[i] = rig.RouteAddr(t)
	}
	nodes := make([]*nodeProc, len(datas))
	listening := make(chan error, len(datas))
	for i, data := range datas {
		nodes[i] = startNode(t, "node-"+strconv.Itoa(i), data, routes[i], routes, listening)
	}
	for range datas {
		waitListening(t, listening)
	}
	return nodes, routes
}

// waitListening waits for one node started with listening to serve.
func waitListening(t *testing.T, listening <-chan error) {
	t.Helper()
	select {
	case err := <-listening:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("a node did not start within a minute")
	}
}

// startNode starts one node process taking routes on route and dialling
// peers; listening gets nil once it serves, or why it did not start.
func startNode(t *testing.T, name, data, route string, peers []string, listening chan<- error) *nodeProc {
	t.Helper()
	n := &nodeProc{t: t, name: name, data: data, addr: rig.RouteAddr(t), stderr: &lockedBuffer{}, exited: make(chan struct{})}
	args, _ := json.Marshal([]string{"serve", "-data", data, "-listen", n.addr, "-workers", "1", "-log-level", "warn",
		"-cluster-name", "haven-test", "-node-name", name, "-cluster-listen", route, "-cluster-peers", strings.Join(peers, ",")})
	n.cmd = exec.Command(os.Args[0], "-test.run=^$")
	n.cmd.Env = append(os.Environ(), testServeEnv+"="+string(args))
	n.cmd.Stderr = n.stderr
	out, err := n.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		r := bufio.NewReader(out)
		line, err := r.ReadString('\n')
		if err == nil && !strings.Contains(line, "listening on ws://"+n.addr) {
			err = fmt.Errorf("%s said %q", n.name, line)
		}
		listening <- err
		io.Copy(io.Discard, r)
	}()
	go func() { n.cmd.Wait(); close(n.exited) }()
	t.Cleanup(func() {
		began := time.Now()
		n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
			t.Logf("%s exited %v after SIGTERM", n.name, time.Since(began).Round(time.Millisecond))
		case <-time.After(15 * time.Second):
			t.Errorf("%s did not stop within 15 s of SIGTERM", n.name)
			n.kill()
		}
		if t.Failed() {
			t.Logf("%s stderr:\n%s", n.name, n.stderr.String())
		}
	})
	return n
}

// copyRelayData copies a stopped relay's data folder and the keys beside
// it, so that another node starts with the same organisations, devices and
// keys. (Until the registry lives in JetStream, a cluster's nodes are
// seeded this way.) The copy leaves out JetStream's files: a relay alone
// keeps its own, which no cluster shares.
func copyRelayData(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			if rel == "cluster" {
				return filepath.SkipDir
			}
			return os.MkdirAll(filepath.Join(to, rel), 0o700)
		}
		if !d.Type().IsRegular() {
			return nil // the admin socket
		}
		return copyFile(path, filepath.Join(to, rel))
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{".key", ".signing-key"} {
		if err := copyFile(from+suffix, to+suffix); err != nil {
			t.Fatal(err)
		}
	}
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// startCluster starts three nodes seeded with one care home and a device
// enrolled for it per name; it returns the home and the enrolments.
func startCluster(t *testing.T, devices ...string) (string, []wire.Enrollment, []*nodeProc) {
	home, enrs, nodes, _, _ := startClusterSeeded(t, devices...)
	return home, enrs, nodes
}

// startClusterSeeded is startCluster, also returning the stopped relay's
// data folder the nodes were copied from, and the nodes' route addresses,
// for a node started later.
func startClusterSeeded(t *testing.T, devices ...string) (string, []wire.Enrollment, []*nodeProc, string, []string) {
	t.Helper()
	seed := filepath.Join(t.TempDir(), "seed")
	p := startRelay(t, seed, rig.RouteAddr(t))
	home := idRE.FindString(p.admin("create-home", "Larch House"))
	var enrs []wire.Enrollment
	for _, name := range devices {
		enrs = append(enrs, p.enroll(home, name))
	}
	p.stop()
	root := t.TempDir()
	datas := make([]string, 3)
	for i := range datas {
		datas[i] = filepath.Join(root, "node"+strconv.Itoa(i))
		copyRelayData(t, seed, datas[i])
	}
	nodes, routes := startNodes(t, datas)
	return home, enrs, nodes, seed, routes
}

// Three relay nodes on loopback are one relay: a change a device makes
// through node A reaches a device connected to node B, and a change node A
// acknowledged survives node A's sudden death: the other nodes hold it.
func TestClusterCarriesChangesAcrossNodes(t *testing.T) {
	home, enrs, nodes, seed, routes := startClusterSeeded(t, "Larch office", "Larch nurses' station", "Larch lounge", "Larch garden room")
	enrA, enrB, enrC, enrD := enrs[0], enrs[1], enrs[2], enrs[3]

	a := newDevice(t, "carer-a", enrA, nodes[0].url())
	b := newDevice(t, "carer-b", enrB, nodes[1].url())
	waitFor(t, "both devices online", func() bool { return a.online() && b.online() })
	docs := a.newResident(home, "Marlow")
	waitFor(t, "node A to confirm the new record", func() bool { return a.client.Synced(docs.RecordID) })
	b.client.Request(docs.RecordID)
	waitFor(t, "the device on node B to receive the record made through node A", func() bool { return b.has(docs.RecordID) })

	// B now follows the record: A's next change reaches it unasked.
	setRoom := func(room string) {
		a.edit(docs.RecordID, func(doc *crdt.Doc) error {
			id := a.record(docs.RecordID).Identity
			id.Room = room
			return a.ed.UpdateIdentity(doc, id)
		})
	}
	setRoom("14")
	waitFor(t, "the device on node B to see the room changed through node A", func() bool {
		return b.record(docs.RecordID).Identity.Room == "14"
	})

	// Changes node A acknowledged, then node A killed with the next one in
	// flight.
	var acked []crdt.Hash
	for i := range 5 {
		setRoom(strconv.Itoa(20 + i))
		waitFor(t, "node A to acknowledge a change", func() bool { return a.client.Synced(docs.RecordID) })
		acked = append(acked, heads(a, docs.RecordID)...)
	}
	setRoom("99")
	nodes[0].kill()

	holds := func(d *device, id docid.ID, hs []crdt.Hash) func() bool {
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
	waitFor(t, "the device on node B to hold every change node A acknowledged", holds(b, docs.RecordID, acked))
	c := newDevice(t, "carer-c", enrC, nodes[2].url())
	waitFor(t, "the device on node C online", c.online)
	c.client.Request(docs.RecordID)
	waitFor(t, "node C to serve every change node A acknowledged", holds(c, docs.RecordID, acked))

	// A node that joins now with no documents catches up from the
	// cluster, and serves them too.
	data := filepath.Join(t.TempDir(), "node3")
	copyRelayData(t, seed, data)
	listening := make(chan error, 1)
	route := rig.RouteAddr(t)
	late := startNode(t, "node-3", data, route, append(routes[1:], route), listening)
	waitListening(t, listening)
	d := newDevice(t, "carer-d", enrD, late.url())
	waitFor(t, "the device on the new node online", d.online)
	d.client.Request(docs.RecordID)
	waitFor(t, "the new node to serve every change node A acknowledged", holds(d, docs.RecordID, acked))
}

// A device revoked through node C's admin socket is cut off node A, where
// it is connected: the revocation goes through the cluster.
func TestRevokeOnOneNodeCutsTheDeviceOnAnother(t *testing.T) {
	_, enrs, nodes := startCluster(t, "Larch office")
	d := newDevice(t, "carer-a", enrs[0], nodes[0].url())
	waitFor(t, "the device online on node A", d.online)
	began := time.Now()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"admin", "-data", nodes[2].data, "revoke", enrs[0].Device}, &out, io.Discard); err != nil {
		t.Fatalf("syncd admin revoke on node C: %v", err)
	}
	waitFor(t, "the device on node A to be cut off", func() bool { return slices.Contains(d.errorCodes(), wire.CodeDeviceRevoked) })
	t.Logf("revoked on node C; the device on node A was told %v later", time.Since(began).Round(time.Millisecond))
}
