package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/rig"
	"haven/shared/wire"
)

// testSyncdEnv marks the processes this test binary starts: one run with
// a command first (serve, admin…) runs as syncd. A cluster node is a
// process of its own, so that it can be killed with SIGKILL, and the rig
// runs it, and its admin commands, as it would the syncd binary.
const testSyncdEnv = "HAVEN_SYNCD_TEST_SYNCD"

// clusterSyncd is syncd for a cluster's nodes: this test binary.
var clusterSyncd = rig.Exec(os.Args[0])

// init runs before TestMain, so a node never runs the tests. The test
// binary itself sets the variable for its children. A child started with
// a flag first is a test run of its own; one with no arguments is a CRDT
// worker, which TestMain runs as one.
func init() {
	if os.Getenv(testSyncdEnv) == "" {
		os.Setenv(testSyncdEnv, "1")
		return
	}
	if len(os.Args) < 2 || strings.HasPrefix(os.Args[1], "-") {
		return
	}
	main()
	os.Exit(0)
}

// clusterConfig is n nodes of a test cluster on fresh data folders.
func clusterConfig(n int) rig.ClusterConfig {
	return rig.ClusterConfig{Syncd: clusterSyncd, Nodes: make([]rig.NodeConfig, n), Flags: []string{"-workers", "1", "-log-level", "warn"}}
}

// asNode is a node of a cluster as the single-relay helpers see a relay.
func asNode(t *testing.T, r *rig.Relay) *relayProc {
	return &relayProc{t: t, r: r, data: r.Data(), addr: r.Addr()}
}

// startNodes starts nodes as one cluster and returns them, in order.
func startNodes(t *testing.T, cfg rig.ClusterConfig) (*rig.Cluster, []*relayProc) {
	t.Helper()
	c := rig.StartCluster(t, cfg)
	var nodes []*relayProc
	for _, r := range c.Nodes() {
		nodes = append(nodes, asNode(t, r))
	}
	return c, nodes
}

// addNode starts one more node on an empty data folder, which joins the
// cluster through peers (nil: every node's route and its own).
func addNode(t *testing.T, c *rig.Cluster, peers func(own string) []string) *relayProc {
	t.Helper()
	n := rig.NodeConfig{Route: rig.RouteAddr(t)}
	if peers != nil {
		n.Peers = peers(n.Route)
	}
	return asNode(t, c.MustAdd(t, n))
}

// kill ends the node at once, as a power cut or the OOM killer would.
func (p *relayProc) kill() { p.r.Kill() }

var codeRE = regexp.MustCompile(`one-time code: (\S+)`)

// enrollCode makes a device for org through the node's admin, and returns
// its ID and one-time code.
func (p *relayProc) enrollCode(org, name string) (string, string) {
	p.t.Helper()
	out := p.admin("enroll", org, "-name", name)
	m := codeRE.FindStringSubmatch(out)
	if m == nil {
		p.t.Fatalf("enroll on %s printed %q", p.addr, out)
	}
	return rig.ID(out), m[1]
}

// redeem exchanges a one-time code at the node, as a desktop's first run
// does; the HTTP status says whether the node took it (0: no answer). It
// may be called from any goroutine.
func (p *relayProc) redeem(code string) (wire.Enrollment, int) {
	body, _ := json.Marshal(map[string]string{"code": code})
	resp, err := http.Post(p.r.HTTP()+"/enroll", "application/json", bytes.NewReader(body))
	if err != nil {
		p.t.Errorf("POST /enroll on %s: %v", p.addr, err)
		return wire.Enrollment{}, 0
	}
	defer resp.Body.Close()
	var enr wire.Enrollment
	if resp.StatusCode == http.StatusOK {
		if err := json.NewDecoder(resp.Body).Decode(&enr); err != nil || enr.Credential == "" {
			p.t.Errorf("POST /enroll on %s: no credential (%v)", p.addr, err)
		}
	}
	return enr, resp.StatusCode
}

// startCluster starts three nodes on empty data folders, sharing one
// organisation signing key, creates one care home through node A's admin
// and enrols a device for it there per name; it returns the home and the
// enrolments. Every node learns them from the cluster.
func startCluster(t *testing.T, devices ...string) (string, []wire.Enrollment, []*relayProc) {
	home, enrs, _, nodes := startClusterOf(t, devices...)
	return home, enrs, nodes
}

// startClusterOf is startCluster, also returning the cluster, for a node
// started later.
func startClusterOf(t *testing.T, devices ...string) (string, []wire.Enrollment, *rig.Cluster, []*relayProc) {
	t.Helper()
	c, nodes := startNodes(t, clusterConfig(3))
	home := idRE.FindString(nodes[0].admin("create-home", "Larch House"))
	var enrs []wire.Enrollment
	for _, name := range devices {
		enrs = append(enrs, nodes[0].enroll(home, name))
	}
	return home, enrs, c, nodes
}

// Three relay nodes on loopback are one relay: a change a device makes
// through node A reaches a device connected to node B, and a change node A
// acknowledged survives node A's sudden death: the other nodes hold it.
func TestClusterCarriesChangesAcrossNodes(t *testing.T) {
	home, enrs, cl, nodes := startClusterOf(t, "Larch office", "Larch nurses' station", "Larch lounge", "Larch garden room")
	enrA, enrB, enrC, enrD := enrs[0], enrs[1], enrs[2], enrs[3]

	a := newDevice(t, "carer-a", enrA, nodes[0].url())
	b := newDevice(t, "carer-b", enrB, nodes[1].url())
	waitOnline(t, a, b)
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
	waitOnline(t, c)
	c.client.Request(docs.RecordID)
	waitFor(t, "node C to serve every change node A acknowledged", holds(c, docs.RecordID, acked))

	// A node that joins now on an empty data folder catches up from the
	// cluster, registry and documents, and serves a device enrolled before
	// it existed.
	late := addNode(t, cl, func(own string) []string { return append(cl.Routes()[1:], own) })
	d := newDevice(t, "carer-d", enrD, late.url())
	waitOnline(t, d)
	d.client.Request(docs.RecordID)
	waitFor(t, "the new node to serve every change node A acknowledged", holds(d, docs.RecordID, acked))
	// Node A's restart aside, every node says it has applied what the
	// cluster holds (its metrics), the one that started empty included.
	if err := cl.WaitCaughtUp(20 * time.Second); err != nil {
		t.Fatal(err)
	}
}

// A device revoked through node C's admin socket is cut off node A, where
// it is connected: the revocation goes through the cluster.
func TestRevokeOnOneNodeCutsTheDeviceOnAnother(t *testing.T) {
	_, enrs, nodes := startCluster(t, "Larch office")
	d := newDevice(t, "carer-a", enrs[0], nodes[0].url())
	waitOnline(t, d)
	began := time.Now()
	var out bytes.Buffer
	if err := run(context.Background(), []string{"admin", "-data", nodes[2].data, "revoke", enrs[0].Device}, &out, io.Discard); err != nil {
		t.Fatalf("syncd admin revoke on node C: %v", err)
	}
	waitFor(t, "the device on node A to be cut off", func() bool { return slices.Contains(d.errorCodes(), wire.CodeDeviceRevoked) })
	t.Logf("revoked on node C; the device on node A was told %v later", time.Since(began).Round(time.Millisecond))
}
