package soak

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"

	"haven/shared/rig"
)

// A cluster node's routes to the other nodes go through rig.Links, so the
// chaos phase can cut one node off from the others. That alone leaks: NATS
// gossips each node's real route address (its INFO's ip and port) to the
// nodes it is connected to, and a node told of a node it has no route to
// at that moment dials the real address itself (an implicit route). After
// a partition heals that happens almost every time (one node's retry gets
// through first and the others hear of it before their own retries), and
// a route dialled that way bypasses the links, so a later partition would
// not cut it. A routeHop sits in front of each link and rewrites every
// node's address in the INFO lines it passes into the address the
// receiving node reaches that node at through its own link, which the
// receiver has configured: NATS then makes no implicit route at all.
//
// The route protocol is text lines, and only RMSG and HMSG carry a payload
// (its size is the line's last field), copied through untouched; routes
// between syncd's nodes are not compressed (both sides "accept") nor TLS.

// routeHop is node from's way to node to: it listens on loopback, and
// forwards each connection through the link to node to's route port.
type routeHop struct {
	from, to int
	ln       net.Listener
	link     *rig.Link
	addrs    *routeAddrs

	mu     sync.Mutex // guards conns and closed
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // the accept loop and every connection's pumps
}

// routeAddrs knows every address of every node's route (its real port and
// each hop to it), and which address each node reaches another at.
type routeAddrs struct {
	mu    sync.Mutex
	node  map[int]int // port → node
	reach [][]string  // reach[i][k]: the address node i dials to reach node k
}

func (r *routeAddrs) add(port, node int) {
	r.mu.Lock()
	r.node[port] = node
	r.mu.Unlock()
}

// rewrite turns one INFO line bound for node dest into the same INFO with
// the described node's address as dest reaches it. Anything it does not
// understand passes as it was.
func (r *routeAddrs) rewrite(line []byte, dest int) []byte {
	body := bytes.TrimSpace(line[len("INFO "):])
	var info map[string]json.RawMessage
	if json.Unmarshal(body, &info) != nil {
		return line
	}
	var port int
	if json.Unmarshal(info["port"], &port) != nil {
		return line
	}
	r.mu.Lock()
	k, ok := r.node[port]
	to := ""
	if ok && k != dest {
		to = r.reach[dest][k]
	}
	r.mu.Unlock()
	if to == "" {
		return line
	}
	_, ps, _ := net.SplitHostPort(to)
	p, _ := strconv.Atoi(ps)
	info["port"], _ = json.Marshal(p)
	if _, ok := info["ip"]; ok {
		info["ip"], _ = json.Marshal("nats-route://" + to + "/")
	}
	if _, ok := info["host"]; ok {
		h, _, _ := net.SplitHostPort(to)
		info["host"], _ = json.Marshal(h)
	}
	b, err := json.Marshal(info)
	if err != nil {
		return line
	}
	return append(append([]byte("INFO "), b...), '\r', '\n')
}

func newRouteHop(from, to int, link *rig.Link, addrs *routeAddrs) (*routeHop, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	hp := &routeHop{from: from, to: to, ln: ln, link: link, addrs: addrs, conns: map[net.Conn]struct{}{}}
	hp.wg.Add(1)
	go hp.acceptLoop()
	return hp, nil
}

func (hp *routeHop) Addr() string { return hp.ln.Addr().String() }

func (hp *routeHop) acceptLoop() {
	defer hp.wg.Done()
	for {
		c, err := hp.ln.Accept()
		if err != nil {
			return // closed
		}
		up, err := net.Dial("tcp", hp.link.Addr())
		if err != nil {
			c.Close()
			continue
		}
		if !hp.track(c, up) {
			return
		}
		hp.wg.Add(2)
		// Either pump ending closes both sides, so a link's cut or reset
		// reaches the node as a closed route, and the other pump exits.
		done := func() {
			c.Close()
			up.Close()
			hp.untrack(c, up)
			hp.wg.Done()
		}
		go func() { defer done(); pumpRoute(up, c, hp.addrs, hp.to) }()
		go func() { defer done(); pumpRoute(c, up, hp.addrs, hp.from) }()
	}
}

func (hp *routeHop) track(cs ...net.Conn) bool {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	if hp.closed {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		hp.conns[c] = struct{}{}
	}
	return true
}

func (hp *routeHop) untrack(cs ...net.Conn) {
	hp.mu.Lock()
	defer hp.mu.Unlock()
	for _, c := range cs {
		delete(hp.conns, c)
	}
}

// Close stops listening, closes every connection and waits for the pumps.
func (hp *routeHop) Close() {
	hp.mu.Lock()
	hp.closed = true
	for c := range hp.conns {
		c.Close()
	}
	hp.mu.Unlock()
	hp.ln.Close()
	hp.wg.Wait()
	hp.link.Close()
}

// pumpRoute copies the route protocol from src to dst (bound for node
// dest), rewriting INFO lines; it returns when either side fails.
func pumpRoute(dst io.Writer, src io.Reader, addrs *routeAddrs, dest int) {
	r := bufio.NewReaderSize(src, 64<<10)
	w := bufio.NewWriterSize(dst, 64<<10)
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			op := strings.ToUpper(string(line[:min(5, len(line))]))
			if strings.HasPrefix(op, "INFO ") {
				line = addrs.rewrite(line, dest)
			}
			if _, werr := w.Write(line); werr != nil {
				return
			}
			if strings.HasPrefix(op, "RMSG ") || strings.HasPrefix(op, "HMSG ") {
				f := strings.Fields(string(line))
				n, perr := strconv.ParseInt(f[len(f)-1], 10, 64)
				if perr != nil {
					return // not a protocol this pump knows: end the route rather than garble it
				}
				if _, cerr := io.CopyN(w, r, n+2); cerr != nil {
					return
				}
			}
		}
		if err != nil {
			w.Flush()
			return
		}
		// Flush before blocking on the next read, so nothing waits in the
		// buffer for bytes that may not come.
		if r.Buffered() == 0 {
			if w.Flush() != nil {
				return
			}
		}
	}
}
