package rig

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// ClusterConfig is a cluster of syncd nodes that are one relay (syncd's
// -cluster-* flags): each node has its own data folder, websocket address
// and route address, and dials every node's route.
type ClusterConfig struct {
	Syncd Syncd
	// Name is -cluster-name; default "haven-test".
	Name  string
	Nodes []NodeConfig
	// Flags are every node's, after the cluster flags and before the
	// node's own (e.g. -workers 1 -log-level warn).
	Flags []string
	// RouteCA, with each node's RouteCert and RouteKey, makes the routes
	// between nodes mutual TLS (-cluster-tls-ca).
	RouteCA string
	// RelayURLs has every node tell the devices it enrols every node's
	// address (-relay-urls http://host:port,…, in node order), so their
	// clients can move to another node. The nodes' websocket addresses are
	// then picked before the first start, as route addresses are. A node
	// serving TLS names its own -relay-urls in its Flags instead.
	RelayURLs bool
	// Prefix is RelayConfig.Prefix, for every node.
	Prefix []string
}

// NodeConfig is one node of a cluster. Only Data is required.
type NodeConfig struct {
	Data string // its data folder
	Name string // -node-name; default node-<index>
	// Listen is RelayConfig.Listen: by default a port the kernel picks.
	Listen string
	// Route is the address the node takes routes on (-cluster-listen);
	// default a loopback port picked by NewCluster (or Add).
	Route string
	// Peers are how this node reaches every node of the cluster, itself
	// included (-cluster-peers); default every node's Route. A test puts a
	// fault link between two nodes by giving one the link's address in
	// place of the other's route.
	Peers []string
	// RouteCert and RouteKey are -cluster-tls-cert and -cluster-tls-key,
	// used with ClusterConfig.RouteCA.
	RouteCert, RouteKey string
	LogPath             string   // RelayConfig.LogPath
	Flags               []string // this node's own, after every other flag
}

// Cluster is syncd nodes run as one relay, each a Relay: stopped until
// Start, each restartable (Relay.Start) on its data folder and address.
// Its methods are safe for concurrent use.
type Cluster struct {
	cfg ClusterConfig

	mu     sync.Mutex // guards the fields below
	nodes  []*Relay
	routes []string // each node's -cluster-listen, in node order
	public []string // each node's -relay-urls entry, when cfg.RelayURLs
}

// NewCluster returns the cluster, every node stopped. Defaults are filled
// in and the free ports picked now, so the route addresses every node is
// given are known before any starts.
func NewCluster(cfg ClusterConfig) (*Cluster, error) {
	if cfg.Name == "" {
		cfg.Name = "haven-test"
	}
	c := &Cluster{cfg: cfg}
	if _, err := c.add(cfg.Nodes); err != nil {
		return nil, err
	}
	return c, nil
}

// add appends nodes to the cluster, stopped, with their defaults; each
// one's peers are by default every node's route, the added ones' included.
func (c *Cluster) add(cfgs []NodeConfig) ([]*Relay, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	nodes := slices.Clone(cfgs)
	if err := c.fill(nodes, len(c.nodes)); err != nil {
		return nil, err
	}
	for _, n := range nodes {
		c.routes = append(c.routes, n.Route)
		if c.cfg.RelayURLs {
			c.public = append(c.public, "http://"+n.Listen)
		}
	}
	var added []*Relay
	for _, n := range nodes {
		if n.Peers == nil {
			n.Peers = c.routes
		}
		added = append(added, c.relay(n))
	}
	c.nodes = append(c.nodes, added...)
	return added, nil
}

// fill gives nodes, numbered from first, their defaults: name, route and
// (with RelayURLs) websocket address.
func (c *Cluster) fill(nodes []NodeConfig, first int) error {
	var unset int
	for i, n := range nodes {
		if n.Data == "" {
			return fmt.Errorf("rig: cluster node %d has no data folder", first+i)
		}
		if n.Route == "" {
			unset++
		}
		if c.cfg.RelayURLs && n.Listen == "" {
			unset++
		}
	}
	free, err := freeAddrs(unset)
	if err != nil {
		return err
	}
	for i := range nodes {
		n := &nodes[i]
		if n.Name == "" {
			n.Name = "node-" + strconv.Itoa(first+i)
		}
		if n.Route == "" {
			n.Route, free = free[0], free[1:]
		}
		if c.cfg.RelayURLs && n.Listen == "" {
			n.Listen, free = free[0], free[1:]
		}
	}
	return nil
}

// freeAddrs returns n loopback addresses free a moment ago (see
// RouteAddr). All n are held until the last is picked, so no two are the
// same port.
func freeAddrs(n int) ([]string, error) {
	var addrs []string
	for range n {
		ln, err := ListenRoute()
		if err != nil {
			return nil, err
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs, nil
}

// relay is the Relay that runs node n.
func (c *Cluster) relay(n NodeConfig) *Relay {
	flags := []string{"-cluster-name", c.cfg.Name, "-node-name", n.Name,
		"-cluster-listen", n.Route, "-cluster-peers", strings.Join(n.Peers, ",")}
	if c.cfg.RouteCA != "" || n.RouteCert != "" || n.RouteKey != "" {
		flags = append(flags, "-cluster-tls-ca", c.cfg.RouteCA, "-cluster-tls-cert", n.RouteCert, "-cluster-tls-key", n.RouteKey)
	}
	if c.cfg.RelayURLs {
		flags = append(flags, "-relay-urls", strings.Join(c.public, ","))
	}
	flags = append(append(flags, c.cfg.Flags...), n.Flags...)
	return NewRelay(RelayConfig{Syncd: c.cfg.Syncd, Data: n.Data, Listen: n.Listen, Flags: flags, LogPath: n.LogPath, Prefix: c.cfg.Prefix})
}

// StartCluster starts a cluster for the test and stops it when the test
// ends (a node that does not stop cleanly fails the test). A node with no
// data folder gets a fresh one, and one with no log a log in the test's
// folder, printed if the test failed.
func StartCluster(t testing.TB, cfg ClusterConfig) *Cluster {
	t.Helper()
	cfg.Nodes = append([]NodeConfig(nil), cfg.Nodes...)
	for i := range cfg.Nodes {
		testNode(t, &cfg.Nodes[i])
	}
	c, err := NewCluster(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.cleanup(t) })
	began := time.Now()
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("the cluster's %d nodes listened %v after their start", len(cfg.Nodes), time.Since(began).Round(time.Millisecond))
	return c
}

// testNode gives n, a test's node, the data folder and log it lacks.
func testNode(t testing.TB, n *NodeConfig) {
	if n.Data == "" {
		n.Data = filepath.Join(t.TempDir(), "data")
	}
	if n.LogPath == "" {
		n.LogPath = filepath.Join(t.TempDir(), "syncd.log")
	}
}

// cleanup stops every node for a test that is ending, and prints their
// logs if it failed.
func (c *Cluster) cleanup(t testing.TB) {
	began := time.Now()
	if err := c.Stop(); err != nil {
		t.Errorf("stopping the cluster: %v", err)
	}
	t.Logf("the cluster's nodes stopped within %v", time.Since(began).Round(time.Millisecond))
	if !t.Failed() {
		return
	}
	for i, n := range c.Nodes() {
		if n.LogPath() == "" {
			continue
		}
		b, err := os.ReadFile(n.LogPath())
		if err != nil {
			t.Logf("node %d's log: %v", i, err)
			continue
		}
		t.Logf("node %d's log %s:\n%s", i, n.LogPath(), b)
	}
}

// Start shares the organisation signing key (ShareSigningKey), then starts
// every stopped node at once and returns once each listens: a node serves
// only once a quorum of nodes is up, so nodes started one after another
// would wait on each other. Running nodes are left as they are.
func (c *Cluster) Start() error {
	if err := c.ShareSigningKey(); err != nil {
		return err
	}
	nodes := c.Nodes()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		if n.Running() {
			continue
		}
		wg.Go(func() {
			if err := n.Start(); err != nil {
				errs[i] = fmt.Errorf("node %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Add starts one more node, which joins the running cluster; its defaults
// are as NewCluster's, its peers by default every node's route, its own
// included.
func (c *Cluster) Add(n NodeConfig) (*Relay, error) {
	added, err := c.add([]NodeConfig{n})
	if err != nil {
		return nil, err
	}
	if err := c.ShareSigningKey(); err != nil {
		return nil, err
	}
	return added[0], added[0].Start()
}

// MustAdd is Add for a test: a node with no data folder or log gets them
// in the test's folder (as StartCluster's), and a failure fails the test.
func (c *Cluster) MustAdd(t testing.TB, n NodeConfig) *Relay {
	t.Helper()
	testNode(t, &n)
	r, err := c.Add(n)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// signingKeySuffix names the organisation signing key's default file,
// beside the data folder (as KeyFile does the store key's).
const signingKeySuffix = ".signing-key"

// ShareSigningKey gives every node's data folder that has none a copy of
// the first node's organisation signing key, made fresh (32 random bytes
// in hex, as syncd makes one) if it has none either. The routes between
// nodes authenticate with it, and a node with a key of its own is refused
// by the others: an operator shares it the same way. Start calls it.
func (c *Cluster) ShareSigningKey() error {
	nodes := c.Nodes()
	if len(nodes) == 0 {
		return nil
	}
	first := SigningKeyFile(nodes[0])
	key, err := os.ReadFile(first)
	if errors.Is(err, os.ErrNotExist) {
		var seed [32]byte
		rand.Read(seed[:])
		key = []byte(hex.EncodeToString(seed[:]) + "\n")
		err = writeNew(first, key)
	}
	if err != nil {
		return fmt.Errorf("rig: the first node's signing key: %w", err)
	}
	for _, n := range nodes[1:] {
		if err := writeNew(SigningKeyFile(n), key); err != nil {
			return fmt.Errorf("rig: sharing the signing key: %w", err)
		}
	}
	return nil
}

// writeNew writes b to path unless the file exists.
func writeNew(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Close())
}

// SigningKeyFile is the organisation signing key's default file, beside
// r's data folder.
func SigningKeyFile(r *Relay) string {
	return strings.TrimRight(r.Data(), string(filepath.Separator)) + signingKeySuffix
}

// Stop shuts every running node down at once (one by one, the last nodes
// would lose their quorum and wait on it) and returns how each ended.
func (c *Cluster) Stop() error {
	nodes := c.Nodes()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Go(func() {
			if err := n.Stop(); err != nil {
				errs[i] = fmt.Errorf("node %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// WaitCaughtUp waits until every running node has applied each of the
// cluster's streams to the end the cluster holds (Relay.Behind), or
// timeout passes; the error then says how far behind each node is. A
// device served by a node still catching up (just restarted, or healed
// from a partition) is served what the node has applied so far.
func (c *Cluster) WaitCaughtUp(timeout time.Duration) error {
	behind := func() []string {
		var out []string
		for i, n := range c.Nodes() {
			if !n.Running() {
				continue
			}
			if note, ok := n.BehindNote(); !ok {
				out = append(out, fmt.Sprintf("node %d: %s", i, note))
			}
		}
		return out
	}
	var last []string
	if UntilEvery(timeout, 100*time.Millisecond, func() bool { last = behind(); return len(last) == 0 }) {
		return nil
	}
	return fmt.Errorf("nodes still behind the cluster's streams after %v (applied/held): %s", timeout, strings.Join(last, "; "))
}

// Kill ends every node, as a power cut would.
func (c *Cluster) Kill() {
	for _, n := range c.Nodes() {
		n.Kill()
	}
}

// Node is node i (numbered as ClusterConfig.Nodes, then Add's).
func (c *Cluster) Node(i int) *Relay {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i]
}

// Nodes lists the nodes in order.
func (c *Cluster) Nodes() []*Relay {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Relay(nil), c.nodes...)
}

// Routes lists the nodes' route addresses (-cluster-listen), in order.
func (c *Cluster) Routes() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.routes...)
}

// URLs lists the nodes' websocket endpoints in order, for a device that
// knows every node (known once each has started).
func (c *Cluster) URLs() []string {
	var out []string
	for _, n := range c.Nodes() {
		out = append(out, n.URL())
	}
	return out
}
