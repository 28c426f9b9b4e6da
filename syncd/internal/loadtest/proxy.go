package loadtest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// countingProxy forwards loopback TCP connections to a server and counts the
// bytes each way: the bytes a client puts on the wire, as TCP payload (HTTP
// upgrade, websocket framing and messages; not TCP/IP headers). It stands in
// for a counter inside the client, which shared/transport does not expose.
type countingProxy struct {
	ln     net.Listener
	target string
	up     atomic.Int64 // client → server
	down   atomic.Int64 // server → client
	last   atomic.Int64 // when the latest byte passed, Unix nanoseconds
	wg     sync.WaitGroup

	mu    sync.Mutex // guards conns
	conns map[net.Conn]bool
}

// startProxy listens on a free loopback port and forwards to target.
func startProxy(target string) (*countingProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &countingProxy{ln: ln, target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	return p, nil
}

// Addr is where clients dial.
func (p *countingProxy) Addr() string { return p.ln.Addr().String() }

// Bytes returns the counts so far: client to server, server to client.
func (p *countingProxy) Bytes() (up, down int64) { return p.up.Load(), p.down.Load() }

// Close stops listening, cuts every forwarded connection and waits for the
// forwarding goroutines.
func (p *countingProxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// serve accepts until the listener closes.
func (p *countingProxy) serve() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			p.forward(c)
		}()
	}
}

// forward copies both ways until either side ends, then closes both.
func (p *countingProxy) forward(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.conns[client], p.conns[server] = true, true
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, n *atomic.Int64) {
		io.Copy(dst, countingReader{src, n, &p.last})
		done <- struct{}{}
	}
	go pipe(server, client, &p.up)
	go pipe(client, server, &p.down)
	<-done
	client.Close()
	server.Close()
	<-done
	p.mu.Lock()
	delete(p.conns, client)
	delete(p.conns, server)
	p.mu.Unlock()
}

// countingReader adds what it reads to n and notes the time in last. It
// counts on the way in, so a byte is counted before its echo can return.
type countingReader struct {
	r    io.Reader
	n    *atomic.Int64
	last *atomic.Int64
}

func (c countingReader) Read(b []byte) (int, error) {
	k, err := c.r.Read(b)
	if k > 0 {
		c.n.Add(int64(k))
		c.last.Store(time.Now().UnixNano())
	}
	return k, err
}
