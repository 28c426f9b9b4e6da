package rig

import (
	"net"
	"testing"
)

// RouteAddr returns a loopback address free a moment ago, for the one port
// a test must name before the process that listens on it starts: a
// cluster node's route port, which every other node is given at its start.
// Another process may take the port meanwhile; a node that cannot bind it
// fails to start, loudly. Everything else starts on port 0 (see Relay).
func RouteAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
