package soak

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"haven/desktop/internal/app"
	"haven/shared/rig"
)

var flagClusterDemo = flag.Bool("soak.cluster-demo", false, "in cluster mode, make the organisations with syncd demo in node 0's folder before the cluster starts (as make run does), instead of through the running cluster's admin")

var flagCluster = flag.Bool("soak.cluster", false, "run the relay as a cluster of three nodes (routes through fault links; node kills and partitions in the chaos phase; no hostile, insider or disk phase)")

// clusterNodes is the number of relay nodes in cluster mode: the fewest
// that keep a quorum with one lost.
const clusterNodes = 3

// cluster is the relay of a cluster-mode run: three syncd nodes, each
// route between two of them through a routeHop and a rig.Link, so one node
// can be partitioned from the others while it keeps serving its desktops.
type cluster struct {
	h     *harness
	rc    *rig.Cluster  // the nodes, started, stopped and keyed together
	nodes []*relayProc  // rc's nodes
	hops  [][]*routeHop // hops[i][k]: node i's way to node k; nil when i == k
	addrs *routeAddrs

	mu          sync.Mutex // guards partitioned
	partitioned []bool
}

// newCluster makes the nodes' routes and hops; nothing runs yet.
func newCluster(h *harness) (*cluster, error) {
	c := &cluster{h: h, partitioned: make([]bool, clusterNodes),
		addrs: &routeAddrs{node: map[int]int{}, reach: make([][]string, clusterNodes)}}
	// The route ports are held until every hop and link listens: a port
	// freed at once (rig.RouteAddr) was handed by the kernel to the next
	// hop's listener, and the node could not bind it.
	routes := make([]string, clusterNodes)
	for i := range routes {
		ln, err := rig.ListenRoute()
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		routes[i] = ln.Addr().String()
		c.addrs.add(portOf(routes[i]), i)
		c.addrs.reach[i] = make([]string, clusterNodes)
	}
	c.hops = make([][]*routeHop, clusterNodes)
	for i := range c.hops {
		c.hops[i] = make([]*routeHop, clusterNodes)
		for k := range c.hops[i] {
			if i == k {
				c.addrs.reach[i][k] = routes[k] // NATS knows itself by ID
				continue
			}
			// Routes carry no line profile: the nodes sit in one machine
			// room; only cuts reach them.
			link, err := rig.NewLink(fmt.Sprintf("route-%d-%d", i, k), "127.0.0.1:0", routes[k], rig.Profile{}, h.cfg.seed*10+uint64(i*clusterNodes+k))
			if err != nil {
				return nil, err
			}
			hp, err := newRouteHop(i, k, link, c.addrs)
			if err != nil {
				link.Close()
				return nil, err
			}
			c.hops[i][k] = hp
			c.addrs.reach[i][k] = hp.Addr()
			c.addrs.add(portOf(hp.Addr()), k)
		}
	}
	nodes := make([]rig.NodeConfig, clusterNodes)
	for i := range nodes {
		data := filepath.Join(h.root, fmt.Sprintf("node-%d", i), "data")
		if err := os.MkdirAll(filepath.Dir(data), 0o700); err != nil {
			return nil, err
		}
		// Each node dials the others through their hops: the peers it is
		// given are not the routes they listen on.
		nodes[i] = rig.NodeConfig{Data: data, Route: routes[i], Peers: c.addrs.reach[i],
			LogPath: filepath.Join(h.root, fmt.Sprintf("node-%d.log", i))}
	}
	rc, err := rig.NewCluster(rig.ClusterConfig{Syncd: rig.MustBinary(h.t), Name: "haven-soak", Nodes: nodes,
		Flags: []string{"-workers", "2", "-log-level", logLevel().String()}})
	if err != nil {
		return nil, err
	}
	c.rc = rc
	for _, n := range rc.Nodes() {
		c.nodes = append(c.nodes, &relayProc{n})
	}
	return c, nil
}

func portOf(addr string) int {
	_, ps, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(ps)
	return p
}

// startStopped starts every stopped node at once: a node serves only once
// a majority is up, so two stopped nodes started one after the other would
// wait on each other.
func (c *cluster) startStopped() error {
	var wg sync.WaitGroup
	errs := make([]error, len(c.nodes))
	for i, n := range c.nodes {
		if n.Running() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			began := time.Now()
			if errs[i] = n.Start(); errs[i] == nil {
				c.h.countNodeStart(time.Since(began))
				c.h.logf("node %d started pid %d on %s", i, n.PID(), n.Addr())
			} else {
				errs[i] = fmt.Errorf("node %d: %w", i, errs[i])
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// allRunning reports whether every node runs and none is partitioned.
func (c *cluster) allRunning() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.nodes {
		if !n.Running() || c.partitioned[i] {
			return false
		}
	}
	return true
}

// partition cuts node i's routes both ways: it keeps serving its desktops
// but reaches no other node.
func (c *cluster) partition(i int) {
	c.mu.Lock()
	c.partitioned[i] = true
	c.mu.Unlock()
	for k := range c.nodes {
		if k != i {
			c.hops[i][k].link.Cut()
			c.hops[k][i].link.Cut()
		}
	}
}

// unpartition heals node i's routes, except those to a node that is itself
// still partitioned.
func (c *cluster) unpartition(i int) {
	c.mu.Lock()
	c.partitioned[i] = false
	parted := append([]bool(nil), c.partitioned...)
	c.mu.Unlock()
	for k := range c.nodes {
		if k != i && !parted[k] {
			c.hops[i][k].link.Heal()
			c.hops[k][i].link.Heal()
		}
	}
}

func (c *cluster) isPartitioned(i int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.partitioned[i]
}

// healRoutes ends every partition.
func (c *cluster) healRoutes() {
	c.mu.Lock()
	clear(c.partitioned)
	c.mu.Unlock()
	for i := range c.hops {
		for _, hp := range c.hops[i] {
			if hp != nil {
				hp.link.Heal()
			}
		}
	}
}

// describe says where each node is, for failure messages.
func (c *cluster) describe() string {
	var parts []string
	for i, n := range c.nodes {
		behind := "not asked"
		if n.Running() {
			behind, _ = n.BehindNote()
		}
		parts = append(parts, fmt.Sprintf("node %d running %v partitioned %v, streams behind (applied/held) %s", i, n.Running(), c.isPartitioned(i), behind))
	}
	return strings.Join(parts, ", ")
}

// kill SIGKILLs every node and closes the routes (the run's end).
func (c *cluster) kill() {
	c.rc.Kill()
	for i := range c.hops {
		for _, hp := range c.hops[i] {
			if hp != nil {
				hp.Close()
			}
		}
	}
}

// stop shuts every node down cleanly.
func (c *cluster) stop() error { return c.rc.Stop() }

// startCluster starts the three nodes and makes the organisations: with
// the cluster running, through node 0's admin, so that nothing waits on a
// node's catch-up; with -soak.cluster-demo, by `syncd demo` in node 0's
// folder before the cluster starts, as `make run` does for one relay. The
// documents the demo stores with the relay stopped (the homes' resident
// lists, the 40 residents, the directory of services) reach the cluster
// only as node 0 starts and sends them; before syncd did that, the other
// nodes had the residents only from desktops and the lists never, and
// every admission was missing at two nodes at the end. probeSeed says
// what node 1 had learnt just after its start.
func (h *harness) startCluster() {
	t := h.t
	c, err := newCluster(h)
	if err != nil {
		t.Fatal(err)
	}
	h.cluster, h.relay = c, c.nodes[0]
	if *flagClusterDemo {
		h.runDemo()
	}
	// The organisation signing key every node shares, as an operator
	// shares it: node 0's (made by its demo run), or one made fresh.
	if err := c.rc.ShareSigningKey(); err != nil {
		t.Fatal(err)
	}
	if err := c.startStopped(); err != nil {
		t.Fatal(err)
	}
	admin := func(args ...string) string {
		out, err := h.relay.Admin(args...)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if !*flagClusterDemo {
		h.home = rig.ID(admin("create-home", "Larch House", "-postcode", "NW10 9QX", "-borough", "Brent"))
		h.hub = rig.ID(admin("create-hub", "Northgate GP Hub", "-homes", h.home))
		h.advice = rig.ID(admin("create-advice-line", "24/7 Care Home Advice Line"))
		// The desktops' staff sign decisions with certificates, which a
		// demo organisation grants at once; these are granted because an
		// administrator pre-approved them.
		for _, s := range agentSpecs(h.cfg.agents) {
			org := h.home
			if s.orgKind == "hub" {
				org = h.hub
			}
			for _, d := range app.DemoAccounts {
				if d.Name == s.account {
					admin("staff", "add", "-org", org, "-name", d.Name, "-role", string(d.Role), "-reg", d.RegNo)
				}
			}
		}
	}
	// With the cluster running, so that the new home's directory is the
	// cluster's (one made in a stopped folder would stay in it).
	h.birch = rig.ID(admin("create-home", "Birch Court"))
	h.logf("cluster started; home %s hub %s birch %s", h.home, h.hub, h.birch)
	h.probeSeed()
}

// probeSeed checks whether node 1, started on an empty folder, learnt the
// organisations (the registry) and the documents made through node 0 or,
// with -soak.cluster-demo, stored in node 0's folder before the cluster
// started: node 1's admin lists the orgs, and its store, opened while it
// is briefly stopped, is counted.
func (h *harness) probeSeed() {
	t := h.t
	c := h.cluster
	n := c.nodes[1]
	orgs, err := n.Admin("orgs")
	if err != nil {
		t.Fatal(err)
	}
	knows := strings.Contains(orgs, h.home) && strings.Contains(orgs, h.hub) && strings.Contains(orgs, h.advice)
	if err := n.Stop(); err != nil {
		t.Fatalf("stopping node 1 to read its store: %v", err)
	}
	key, err := relayKey(n.KeyFile())
	if err != nil {
		t.Fatal(err)
	}
	r, err := openReplica("node-1", n.Data(), key)
	if err != nil {
		t.Fatalf("opening node 1's store: %v", err)
	}
	residents, lists := 0, 0
	for _, v := range r.docs {
		switch {
		case v.typ == "resident" && v.home == h.home:
			residents++
		case v.typ == "directory":
			lists++
		}
	}
	began := time.Now()
	if err := n.Start(); err != nil {
		t.Fatalf("restarting node 1: %v", err)
	}
	h.countNodeStart(time.Since(began))
	h.seedNote = fmt.Sprintf("node 1 (empty folder) knew the orgs: %v; held %d homes' resident lists of 2, %d documents in all", knows, lists, len(r.docs))
	if *flagClusterDemo {
		h.seedNote = fmt.Sprintf("syncd demo in node 0's folder: node 1 (empty folder), just after its start, knew the demo orgs: %v; held %d of the demo's 40 residents, %d homes' resident lists of 3, %d documents in all",
			knows, residents, lists, len(r.docs))
		if residents < 40 {
			h.seedFromNode0 = true
			h.seedNote += "; so every desktop downloaded the home from node 0 first"
		}
	} else {
		h.seedNote += "; the first desktop admitted the home's 60 residents"
	}
	h.logf("seeding: %s", h.seedNote)
}

// directRoutes lists the nodes' TCP connections made straight to another
// node's route port instead of through its hop and link: a partition
// would not cut them. It also counts the nodes' connections to the hops,
// which shows it sees the nodes' sockets at all. Linux only (it reads
// /proc); elsewhere it finds none. A node's own sockets are found by its
// descriptors, so a link's connections to a route port (made by this
// process) never count.
func (c *cluster) directRoutes() (direct []string, hopped int) {
	ports := map[int]int{} // real route port → node
	hops := map[int]bool{}
	c.addrs.mu.Lock()
	for i := range c.nodes {
		ports[portOf(c.addrs.reach[i][i])] = i
		for k, a := range c.addrs.reach[i] {
			if k != i {
				hops[portOf(a)] = true
			}
		}
	}
	c.addrs.mu.Unlock()
	remote := map[string]int{} // socket inode → remote port, established sockets only
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n")[1:] {
			fs := strings.Fields(line)
			if len(fs) < 10 || fs[3] != "01" {
				continue
			}
			_, ph, ok := strings.Cut(fs[2], ":")
			p, err := strconv.ParseInt(ph, 16, 32)
			if ok && err == nil {
				remote[fs[9]] = int(p)
			}
		}
	}
	for i, n := range c.nodes {
		pid := n.PID()
		if pid == 0 {
			continue
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		for _, fd := range fds {
			l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			inode, ok := strings.CutPrefix(l, "socket:[")
			if err != nil || !ok {
				continue
			}
			p := remote[strings.TrimSuffix(inode, "]")]
			if k, ok := ports[p]; ok && k != i {
				direct = append(direct, fmt.Sprintf("node %d → node %d", i, k))
			}
			if hops[p] {
				hopped++
			}
		}
	}
	return direct, hopped
}

// checkRoutes records, once the cluster has converged, whether any route
// bypasses the links.
func (h *harness) checkRoutes(rep *report, when string) {
	if h.cluster == nil {
		return
	}
	direct, hopped := h.cluster.directRoutes()
	rep.routeChecks++
	rep.routesHopped += hopped
	if len(direct) > 0 {
		rep.directRoutes = append(rep.directRoutes, when+": "+strings.Join(direct, ", "))
	}
	h.logf("%s: %d route connections through the hops, %d direct", when, hopped, len(direct))
}
