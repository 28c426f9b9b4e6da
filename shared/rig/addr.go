package rig

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"testing"
)

// RouteAddr returns a loopback address free a moment ago, for the one port
// a test must name before the process that listens on it starts: a
// cluster node's route port, which every other node is given at its start.
// Another process may take the port meanwhile; a node that cannot bind it
// fails to start, loudly. Everything else starts on port 0 (see Relay).
func RouteAddr(t testing.TB) string {
	t.Helper()
	ln, err := ListenRoute()
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// ListenRoute listens on a free loopback port picked below the kernel's
// ephemeral range (Linux's default starts at 32768), for a port to be
// named before its process starts (RouteAddr): the caller closes it just
// before. A port the kernel hands out for port 0 it also hands out as the
// source port of an outgoing connection, and with a cluster's dozens of
// connections being made, one now and then took a route port in the
// moment between its pick and the node's start.
func ListenRoute() (net.Listener, error) {
	var err error
	for range 100 {
		port := routePortLow + rand.IntN(routePortHigh-routePortLow)
		var ln net.Listener
		if ln, err = net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err == nil {
			return ln, nil
		}
	}
	return nil, fmt.Errorf("no free loopback port between %d and %d: %w", routePortLow, routePortHigh, err)
}

// routePortLow and routePortHigh bound the ports ListenRoute picks: below
// Linux's default ephemeral range, above the ports services commonly take.
const (
	routePortLow  = 20000
	routePortHigh = 32000
)
