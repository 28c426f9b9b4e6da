package cluster

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"haven/shared/rig"
)

// routeHello dials a node's route port as another node would and says
// who it is with user and pass; it returns the node's first answer to the
// PING after the CONNECT: PONG taken, -ERR refused.
func routeHello(t *testing.T, addr, user, pass string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(20 * time.Second))
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		t.Fatalf("the route port's first line = %q, %v; want INFO", line, err)
	}
	connect, _ := json.Marshal(map[string]any{"verbose": false, "pedantic": false, "tls_required": false,
		"name": "rogue", "cluster": "test", "user": user, "pass": pass})
	fmt.Fprintf(c, "CONNECT %s\r\nPING\r\n", connect)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "closed: " + err.Error()
		}
		if strings.HasPrefix(line, "PONG") || strings.HasPrefix(line, "-ERR") {
			return strings.TrimSpace(line)
		}
	}
}

// A node takes a route only from a process that holds the cluster's
// secret: one that reached the route port without it is refused before it
// can read or publish anything.
func TestRoutesNeedTheClustersSecret(t *testing.T) {
	if _, err := serverOptions(Config{Dir: t.TempDir(), Key: testKey, Name: "test", Listen: rig.RouteAddr(t), Peers: []string{rig.RouteAddr(t)}}); err == nil {
		t.Fatal("a cluster node configured without a route secret")
	}
	addr := rig.RouteAddr(t)
	opts, err := serverOptions(Config{Dir: t.TempDir(), Key: testKey, Name: "test", Node: "n0", Listen: addr,
		Peers: []string{rig.RouteAddr(t)}, RouteSecret: testKey})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	defer ns.Shutdown()
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("the node did not start")
	}
	sum := sha256.Sum256(append([]byte("haven cluster route "), testKey...))
	right := hex.EncodeToString(sum[:])
	if got := routeHello(t, addr, routeUser, right); !strings.HasPrefix(got, "PONG") {
		t.Fatalf("a route with the cluster's secret: %q, want PONG", got)
	}
	for name, pass := range map[string]string{"no": "", "another cluster's": strings.Repeat("0", len(right))} {
		if got := routeHello(t, addr, routeUser, pass); !strings.HasPrefix(got, "-ERR") && !strings.HasPrefix(got, "closed") {
			t.Errorf("a route with %s password: %q, want it refused", name, got)
		}
	}
}
