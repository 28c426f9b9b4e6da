package cluster

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"haven/shared/rig"
)

// routeHello dials a node's route port as another node would, over TLS
// with tlsCfg if it is not nil, and says who it is with user and pass; it
// returns the node's first answer to the PING after the CONNECT: PONG
// taken, -ERR refused, or why the connection ended.
func routeHello(t *testing.T, addr string, tlsCfg *tls.Config, user, pass string) string {
	t.Helper()
	raw, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	raw.SetDeadline(time.Now().Add(20 * time.Second))
	var c net.Conn = raw
	if tlsCfg != nil { // a route port with TLS begins with the handshake
		tc := tls.Client(raw, tlsCfg)
		if err := tc.Handshake(); err != nil {
			return "closed: " + err.Error()
		}
		c = tc
	}
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "INFO ") {
		return fmt.Sprintf("closed: first line %q, %v", line, err)
	}
	connect, _ := json.Marshal(map[string]any{"verbose": false, "pedantic": false, "tls_required": tlsCfg != nil,
		"name": "rogue", "cluster": "test", "user": user, "pass": pass})
	if _, err := fmt.Fprintf(c, "CONNECT %s\r\nPING\r\n", connect); err != nil {
		return "closed: " + err.Error()
	}
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

// refused reports an answer routeHello got from a node that did not take
// the route.
func refused(answer string) bool {
	return strings.HasPrefix(answer, "-ERR") || strings.HasPrefix(answer, "closed")
}

// routePassword is the password a node of a cluster whose secret is
// testKey presents.
func routePassword() string {
	sum := sha256.Sum256(append([]byte("haven cluster route "), testKey...))
	return hex.EncodeToString(sum[:])
}

// startRouteNode starts the embedded server of one cluster node, alone,
// with its routes on addr; nothing else of the node.
func startRouteNode(t *testing.T, addr string, routeTLS *tls.Config) {
	t.Helper()
	opts, err := serverOptions(Config{Dir: t.TempDir(), Key: testKey, Name: "test", Node: "n0", Listen: addr,
		Peers: []string{rig.RouteAddr(t)}, RouteSecret: testKey, RouteTLS: routeTLS})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	ns.Start()
	t.Cleanup(ns.Shutdown)
	if !ns.ReadyForConnections(30 * time.Second) {
		t.Fatal("the node did not start")
	}
}

// testAuthority is a certificate authority made for one test, which
// issues node certificates for 127.0.0.1.
type testAuthority struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestAuthority(t *testing.T) *testAuthority {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test cluster authority"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testAuthority{cert: cert, key: key, pool: pool}
}

// routeTLS is a node's route TLS with a certificate the authority issued,
// configured as syncd's -cluster-tls-* flags configure it.
func (a *testAuthority) routeTLS(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, &key.PublicKey, a.key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, RootCAs: a.pool, ClientAuth: tls.RequireAndVerifyClientCert,
		ClientCAs: a.pool, MinVersion: tls.VersionTLS12}
}

// A node takes a route only from a process that holds the cluster's
// secret: one that reached the route port without it is refused before it
// can read or publish anything.
func TestRoutesNeedTheClustersSecret(t *testing.T) {
	if _, err := serverOptions(Config{Dir: t.TempDir(), Key: testKey, Name: "test", Listen: rig.RouteAddr(t), Peers: []string{rig.RouteAddr(t)}}); err == nil {
		t.Fatal("a cluster node configured without a route secret")
	}
	addr := rig.RouteAddr(t)
	startRouteNode(t, addr, nil)
	if got := routeHello(t, addr, nil, routeUser, routePassword()); !strings.HasPrefix(got, "PONG") {
		t.Fatalf("a route with the cluster's secret: %q, want PONG", got)
	}
	for name, pass := range map[string]string{"no": "", "another cluster's": strings.Repeat("0", len(routePassword()))} {
		if got := routeHello(t, addr, nil, routeUser, pass); !refused(got) {
			t.Errorf("a route with %s password: %q, want it refused", name, got)
		}
	}
}

// With route TLS, a node takes a route only over TLS, from a process
// presenting a certificate of the cluster's authority (and the secret):
// one in the clear, or certified by another authority, is refused.
func TestRoutesOverTLSNeedTheClustersCertificate(t *testing.T) {
	ca := newTestAuthority(t)
	addr := rig.RouteAddr(t)
	startRouteNode(t, addr, ca.routeTLS(t))
	dial := func(c *tls.Config) *tls.Config {
		c = c.Clone()
		c.ServerName = "127.0.0.1"
		return c
	}
	if got := routeHello(t, addr, dial(ca.routeTLS(t)), routeUser, routePassword()); !strings.HasPrefix(got, "PONG") {
		t.Fatalf("a route over TLS with the authority's certificate: %q, want PONG", got)
	}
	if got := routeHello(t, addr, nil, routeUser, routePassword()); !refused(got) {
		t.Errorf("a route in the clear: %q, want it refused", got)
	}
	other := dial(newTestAuthority(t).routeTLS(t))
	other.RootCAs = ca.pool // it trusts the node; the node must not trust it
	if got := routeHello(t, addr, other, routeUser, routePassword()); !refused(got) {
		t.Errorf("a route with another authority's certificate: %q, want it refused", got)
	}
}
