package rig

import (
	"bytes"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestClusterIsOneRelay: three nodes started together on fresh folders
// share one signing key and serve on ports of their own; an organisation
// made through node 0's admin is listed by node 2's, a device enrolled at
// node 1 is told every node's address, and a fourth node added later
// learns the registry from the others.
func TestClusterIsOneRelay(t *testing.T) {
	c := StartCluster(t, ClusterConfig{Syncd: MustBinary(t), Nodes: make([]NodeConfig, 3), RelayURLs: true,
		Flags: []string{"-workers", "1", "-log-level", "warn"}})
	nodes := c.Nodes()
	if len(nodes) != 3 {
		t.Fatalf("%d nodes, want 3", len(nodes))
	}
	key, err := os.ReadFile(SigningKeyFile(nodes[0]))
	if err != nil {
		t.Fatal(err)
	}
	var public []string
	for i, n := range nodes {
		if !n.Running() || n.PID() == 0 {
			t.Fatalf("node %d: running %v, PID %d", i, n.Running(), n.PID())
		}
		if k, err := os.ReadFile(SigningKeyFile(n)); err != nil || !bytes.Equal(k, key) {
			t.Errorf("node %d's signing key is not node 0's (%v)", i, err)
		}
		public = append(public, n.HTTP())
	}
	if addrs := c.URLs(); len(slices.Compact(slices.Sorted(slices.Values(addrs)))) != 3 {
		t.Fatalf("the nodes listen on %q, want three addresses", addrs)
	}
	if routes := c.Routes(); len(slices.Compact(slices.Sorted(slices.Values(routes)))) != 3 {
		t.Fatalf("the nodes' routes are %q, want three addresses", routes)
	}

	out, err := nodes[0].Admin("create-home", "Larch House")
	home := ID(out)
	if err != nil || home == "" {
		t.Fatalf("create-home through node 0: %q, %v", out, err)
	}
	lists := func(n *Relay) func() bool {
		return func() bool {
			out, err := n.Admin("orgs")
			return err == nil && strings.Contains(out, home)
		}
	}
	WaitFor(t, 20*time.Second, "node 2 to list the home made through node 0", lists(nodes[2]))
	if enr := nodes[1].MustEnroll(t, home, "Nurses' station"); !slices.Equal(enr.RelayURLs, public) {
		t.Errorf("a device enrolled at node 1 is told %q, want every node's address %q", enr.RelayURLs, public)
	}

	late := c.MustAdd(t, NodeConfig{})
	if c.Node(3) != late || len(c.Routes()) != 4 {
		t.Fatalf("the added node is not node 3 of 4 (routes %q)", c.Routes())
	}
	WaitFor(t, 20*time.Second, "the added node to list the home", lists(late))
}
