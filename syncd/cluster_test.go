package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"haven/shared/crdt"
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

// admin runs an admin command through the node's admin socket.
func (n *nodeProc) admin(args ...string) string {
	n.t.Helper()
	var out bytes.Buffer
	if err := run(context.Background(), append([]string{"admin", "-data", n.data}, args...), &out, io.Discard); err != nil {
		n.t.Fatalf("syncd admin %v on %s: %v", args, n.name, err)
	}
	return out.String()
}

var codeRE = regexp.MustCompile(`one-time code: (\S+)`)

// enrollCode makes a device for org through the node's admin, and returns
// its ID and one-time code.
func (n *nodeProc) enrollCode(org, name string) (string, string) {
	n.t.Helper()
	out := n.admin("enroll", org, "-name", name)
	m := codeRE.FindStringSubmatch(out)
	if m == nil {
		n.t.Fatalf("enroll on %s printed %q", n.name, out)
	}
	return rig.ID(out), m[1]
}

// redeem exchanges a one-time code at the node, as a desktop's first run
// does; the HTTP status says whether the node took it (0: no answer). It
// may be called from any goroutine.
func (n *nodeProc) redeem(code string) (wire.Enrollment, int) {
	body, _ := json.Marshal(map[string]string{"code": code})
	resp, err := http.Post("http://"+n.addr+"/enroll", "application/json", bytes.NewReader(body))
	if err != nil {
		n.t.Errorf("POST /enroll on %s: %v", n.name, err)
		return wire.Enrollment{}, 0
	}
	defer resp.Body.Close()
	var enr wire.Enrollment
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&enr); err != nil || enr.Credential == "" {
			n.t.Errorf("POST /enroll on %s: no credential (%v)", n.name, err)
		}
	}
	return enr, resp.StatusCode
}

// enroll makes a device for org through the node's admin and redeems its
// code there.
func (n *nodeProc) enroll(org, name string) wire.Enrollment {
	n.t.Helper()
	_, code := n.enrollCode(org, name)
	enr, status := n.redeem(code)
	if status != http.StatusOK {
		n.t.Fatalf("POST /enroll on %s: status %d", n.name, status)
	}
	return enr
}

// newNodeData makes an empty data folder for a node, with the
// organisation signing key every node of the cluster shares beside it
// (never in the registry: a copy of the cluster's data certifies no one);
// the node makes its own store key.
func newNodeData(t *testing.T, signingKey string) string {
	t.Helper()
	data := filepath.Join(t.TempDir(), "node")
	if err := copyFile(signingKey, data+".signing-key"); err != nil {
		t.Fatal(err)
	}
	return data
}

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o600)
}

// startCluster starts three nodes on empty data folders, creates one care
// home through node A's admin and enrols a device for it there per name;
// it returns the home and the enrolments. Every node learns them from the
// cluster.
func startCluster(t *testing.T, devices ...string) (string, []wire.Enrollment, []*nodeProc) {
	home, enrs, nodes, _, _ := startClusterKeyed(t, devices...)
	return home, enrs, nodes
}

// startClusterKeyed is startCluster, also returning the file of the
// organisation signing key the nodes share and the nodes' route
// addresses, for a node started later.
func startClusterKeyed(t *testing.T, devices ...string) (string, []wire.Enrollment, []*nodeProc, string, []string) {
	t.Helper()
	signingKey := filepath.Join(t.TempDir(), "signing-key")
	if err := os.WriteFile(signingKey, []byte(hex.EncodeToString(bytes.Repeat([]byte{0x5a}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	datas := make([]string, 3)
	for i := range datas {
		datas[i] = newNodeData(t, signingKey)
	}
	nodes, routes := startNodes(t, datas)
	home := idRE.FindString(nodes[0].admin("create-home", "Larch House"))
	var enrs []wire.Enrollment
	for _, name := range devices {
		enrs = append(enrs, nodes[0].enroll(home, name))
	}
	return home, enrs, nodes, signingKey, routes
}

// Three relay nodes on loopback are one relay: a change a device makes
// through node A reaches a device connected to node B, and a change node A
// acknowledged survives node A's sudden death: the other nodes hold it.
func TestClusterCarriesChangesAcrossNodes(t *testing.T) {
	home, enrs, nodes, signingKey, routes := startClusterKeyed(t, "Larch office", "Larch nurses' station", "Larch lounge", "Larch garden room")
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

	holds := holdsAll
	waitFor(t, "the device on node B to hold every change node A acknowledged", holds(b, docs.RecordID, acked))
	c := newDevice(t, "carer-c", enrC, nodes[2].url())
	waitFor(t, "the device on node C online", c.online)
	c.client.Request(docs.RecordID)
	waitFor(t, "node C to serve every change node A acknowledged", holds(c, docs.RecordID, acked))

	// A node that joins now on an empty data folder catches up from the
	// cluster, registry and documents, and serves a device enrolled before
	// it existed.
	data := newNodeData(t, signingKey)
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
