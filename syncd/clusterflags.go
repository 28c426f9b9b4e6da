package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"haven/syncd/internal/cluster"
)

// clusterFlags join this relay to others as one relay (package cluster).
// Without a cluster name the relay runs one node of its own, with nothing
// listening beyond its websocket port.
type clusterFlags struct {
	name, node, listen, peers string
	// relayURLs are every node's public address, for devices enrolling.
	relayURLs string
	// tlsCert, tlsKey and tlsCA make the routes between nodes mutual TLS
	// (see routeTLS).
	tlsCert, tlsKey, tlsCA string
}

func (f *clusterFlags) flags(fs *flag.FlagSet) {
	fs.StringVar(&f.name, "cluster-name", env("HAVEN_SYNCD_CLUSTER_NAME", ""), "join the relay nodes started with this name into one relay; empty runs this node alone (HAVEN_SYNCD_CLUSTER_NAME)")
	fs.StringVar(&f.node, "node-name", env("HAVEN_SYNCD_NODE_NAME", ""), "this node's name, unique in its cluster; default: its -cluster-listen address (HAVEN_SYNCD_NODE_NAME)")
	fs.StringVar(&f.listen, "cluster-listen", env("HAVEN_SYNCD_CLUSTER_LISTEN", ""), "host:port the other nodes of the cluster reach this one on; keep it on a private network (HAVEN_SYNCD_CLUSTER_LISTEN)")
	fs.StringVar(&f.peers, "cluster-peers", env("HAVEN_SYNCD_CLUSTER_PEERS", ""), "the other nodes' -cluster-listen addresses, comma-separated (HAVEN_SYNCD_CLUSTER_PEERS)")
	fs.StringVar(&f.tlsCert, "cluster-tls-cert", env("HAVEN_SYNCD_CLUSTER_TLS_CERT", ""), "this node's certificate (PEM) for the routes between nodes; with -cluster-tls-key and -cluster-tls-ca the routes are mutual TLS (HAVEN_SYNCD_CLUSTER_TLS_CERT)")
	fs.StringVar(&f.tlsKey, "cluster-tls-key", env("HAVEN_SYNCD_CLUSTER_TLS_KEY", ""), "the private key (PEM) of -cluster-tls-cert (HAVEN_SYNCD_CLUSTER_TLS_KEY)")
	fs.StringVar(&f.tlsCA, "cluster-tls-ca", env("HAVEN_SYNCD_CLUSTER_TLS_CA", ""), "the certificate authority (PEM) every node's route certificate is checked against, both ways (HAVEN_SYNCD_CLUSTER_TLS_CA)")
	fs.StringVar(&f.relayURLs, "relay-urls", env("HAVEN_SYNCD_RELAY_URLS", ""), "every node's public address (https://host:port), comma-separated: told to each device at enrolment, for it to move to another node when its own goes; empty tells none (HAVEN_SYNCD_RELAY_URLS)")
}

// publicURLs returns -relay-urls as a list. Each is an address a device
// could enrol at: http:// or https://, a host, and nothing after the path.
func (f *clusterFlags) publicURLs() ([]string, error) {
	var out []string
	for _, s := range strings.Split(f.relayURLs, ",") {
		s = strings.TrimRight(strings.TrimSpace(s), "/")
		if s == "" {
			continue
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("-relay-urls: %q is not an address such as https://relay-1.example.org", s)
		}
		out = append(out, s)
	}
	return out, nil
}

// routeTLS builds the routes' TLS from the three files, or returns nil
// when none is named. Each node presents its certificate and checks the
// other's against the authority whichever side dials, so only nodes the
// operator certified take part, and nothing between them is in the clear.
func (f *clusterFlags) routeTLS() (*tls.Config, error) {
	if f.tlsCert == "" && f.tlsKey == "" && f.tlsCA == "" {
		return nil, nil
	}
	if f.tlsCert == "" || f.tlsKey == "" || f.tlsCA == "" {
		return nil, errors.New("-cluster-tls-cert, -cluster-tls-key and -cluster-tls-ca go together")
	}
	if f.name == "" {
		return nil, errors.New("-cluster-tls-cert, -cluster-tls-key and -cluster-tls-ca need -cluster-name")
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("-cluster-tls-cert and -cluster-tls-key: %w", err)
	}
	pem, err := os.ReadFile(f.tlsCA)
	if err != nil {
		return nil, fmt.Errorf("-cluster-tls-ca: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("-cluster-tls-ca: %s holds no PEM certificate", f.tlsCA)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots, ClientCAs: roots,
		ClientAuth: tls.RequireAndVerifyClientCert, MinVersion: tls.VersionTLS12}, nil
}

// openCluster starts this relay's node: JetStream's files go in the data
// folder, encrypted with a key derived from the store key. In a cluster it
// waits for enough other nodes to hold changes at replication 3. auditHead
// is the highest audit number the store holds (the cluster's audit stream,
// if this node makes it, starts after it).
func (c *config) openCluster(ctx context.Context, log *slog.Logger, auditHead func() (uint64, error)) (*cluster.Node, error) {
	f := c.cluster
	if f.name == "" && (f.listen != "" || f.peers != "" || f.node != "") {
		return nil, errors.New("-node-name, -cluster-listen and -cluster-peers need -cluster-name")
	}
	if f.name != "" && (f.listen == "" || f.peers == "") {
		return nil, errors.New("a cluster needs -cluster-listen and -cluster-peers")
	}
	routeTLS, err := f.routeTLS()
	if err != nil {
		return nil, err
	}
	key, err := c.key()
	if err != nil {
		return nil, err
	}
	// The routes between nodes authenticate with the organisation signing
	// key, which every node of a cluster holds already (it certifies staff
	// whichever node they reach): no further secret to hand out, and a
	// node started with a key of its own is refused by the others.
	var routeSecret []byte
	if f.name != "" {
		sk, err := c.signingKey()
		if err != nil {
			return nil, err
		}
		routeSecret = sk.Seed()
	}
	return cluster.Open(ctx, cluster.Config{
		Dir: filepath.Join(c.data, "cluster"), Key: key,
		Name: f.name, Node: f.node, Listen: f.listen, Peers: strings.Split(f.peers, ","), RouteSecret: routeSecret, RouteTLS: routeTLS,
		Logger: log.With("part", "cluster"),
		AuditFirstSeq: func() (uint64, error) {
			head, err := auditHead()
			return head + 1, err
		},
	})
}
