package rig

// The fault proxy: one Link per client, listening on loopback and
// forwarding to the relay. It counts the bytes each way (TCP payload:
// HTTP upgrade, websocket framing and messages), and each direction of
// each connection is a pipe that delays, stalls and throttles the byte
// stream the way a poor line does to TCP; with the zero Profile it passes
// bytes straight through and only counts them:
//
//   - latency: every segment is held for half the profile's round-trip time
//     plus a random jitter, and segments leave in order (TCP never reorders
//     what it delivers);
//   - loss: a segment lost on the wire is retransmitted after a
//     retransmission timeout, so what TCP's user feels is a stall of the
//     whole direction (head-of-line blocking) for RTOMin..RTOMax, doubling
//     while the retransmission is lost too;
//   - bandwidth: a token bucket per direction;
//   - cuts: Cut resets every connection and refuses new ones (a line that
//     drops and says so); Blackhole stops one or both directions without
//     closing anything (a line that goes silent: the bytes wait, as TCP's
//     would, and flow again when the line returns, unless an endpoint gave
//     up first).
//
// Network namespaces would make a cut more real, but tc here has no netem,
// so delay and loss must live in the proxy anyway; one mechanism for all
// faults keeps the schedule in one place.

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Profile is a line's quality. Figures apply to each direction; RTT is
// split evenly between the two.
type Profile struct {
	Name string
	// RTT is the round-trip delay the line adds; each direction holds
	// segments for RTT/2.
	RTT time.Duration
	// Jitter is a random extra delay per segment, up to this much.
	Jitter time.Duration
	// Loss is the probability that a segment is lost on the wire.
	Loss float64
	// RTOMin and RTOMax bound the retransmission timeout a lost segment
	// costs (default 200 ms and 1 s).
	RTOMin, RTOMax time.Duration
	// Rate is the bandwidth of each direction in bytes per second; zero
	// means unlimited.
	Rate int64
}

// The line profiles the soak runs. Where no bandwidth was set for them
// (4G, rural broadband) the figures are typical of such lines in England.
var (
	ProfileLAN     = Profile{Name: "LAN", RTT: time.Millisecond}
	Profile4G      = Profile{Name: "4G", RTT: 80 * time.Millisecond, Jitter: 20 * time.Millisecond, Loss: 0.01, Rate: 10_000_000 / 8}
	ProfileRural   = Profile{Name: "rural broadband", RTT: 300 * time.Millisecond, Jitter: 60 * time.Millisecond, Loss: 0.05, Rate: 2_000_000 / 8}
	ProfileFailing = Profile{Name: "failing line", RTT: 2000 * time.Millisecond, Jitter: 200 * time.Millisecond, Loss: 0.20, Rate: 64_000 / 8}
)

// Profiles lists them from best to worst.
var Profiles = []Profile{ProfileLAN, Profile4G, ProfileRural, ProfileFailing}

func (p Profile) String() string {
	return fmt.Sprintf("%s (RTT %v, jitter %v, loss %.0f%%, %s)", p.Name, p.RTT, p.Jitter, p.Loss*100, rateText(p.Rate))
}

func rateText(r int64) string {
	switch {
	case r <= 0:
		return "unthrottled"
	case r*8 >= 1_000_000:
		return fmt.Sprintf("%g Mbit/s", float64(r*8)/1e6)
	}
	return fmt.Sprintf("%g kbit/s", float64(r*8)/1e3)
}

func (p Profile) rto(rng *rand.Rand) time.Duration {
	lo, hi := p.RTOMin, p.RTOMax
	if lo <= 0 {
		lo = 200 * time.Millisecond
	}
	if hi < lo {
		hi = max(lo, time.Second)
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// Direction names one or both directions of a link.
type Direction int

const (
	Up   Direction = 1 << iota // client → relay
	Down                       // relay → client
	Both = Up | Down
)

func (d Direction) String() string {
	switch d {
	case Up:
		return "up"
	case Down:
		return "down"
	case Both:
		return "both ways"
	}
	return "none"
}

// mss is the segment size the pipes cut the stream into: loss and jitter
// apply per segment, as on an Ethernet path.
const mss = 1448

// queueSegments bounds what a pipe holds in flight, so a slow line pushes
// back on the sender as TCP's window does instead of absorbing everything.
const queueSegments = 64

// LinkStats counts what a link did.
type LinkStats struct {
	Accepted   int64 // connections from the client
	Refused    int64 // connections reset because the link was cut or the relay was down
	Cuts       int64 // Cut calls
	Blackholes int64 // Blackhole calls
	Stalls     int64 // segments lost and retransmitted
	BytesUp    int64 // client → relay, counted as the link reads them
	BytesDown  int64 // relay → client
}

// Link is one client's line to the relay: it listens on loopback and
// forwards every connection to the target through two fault pipes.
type Link struct {
	name   string
	target string
	ln     net.Listener
	seed   uint64

	mu      sync.Mutex // guards the fields below
	prof    Profile
	cut     bool
	holes   Direction
	changed chan struct{} // closed and replaced whenever holes or cut change
	pairs   map[*pair]struct{}
	nconns  uint64
	closed  bool

	wg sync.WaitGroup // the accept loop and every pair's goroutines

	stallMu  sync.Mutex
	stallLog []Stall // the latest maxStallLog stalls, oldest first; guarded by stallMu

	accepted, refused, cuts, blackholes, stalls, bytesUp, bytesDown atomic.Int64
	last                                                            atomic.Int64 // when a byte last entered the link, Unix nanoseconds
}

// NewLink listens on listen (e.g. "127.0.0.1:0") and forwards to target.
// seed drives the link's random loss and jitter. Close stops it.
func NewLink(name, listen, target string, p Profile, seed uint64) (*Link, error) {
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	l := &Link{name: name, target: target, ln: ln, seed: seed, prof: p, changed: make(chan struct{}), pairs: map[*pair]struct{}{}}
	l.wg.Add(1)
	go l.acceptLoop()
	return l, nil
}

// Addr is where the client connects.
func (l *Link) Addr() string { return l.ln.Addr().String() }

// Name is the link's name (the client's).
func (l *Link) Name() string { return l.name }

// Profile returns the link's current profile.
func (l *Link) Profile() Profile {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.prof
}

// SetProfile changes the line's quality; segments not yet delivered take
// the new figures, including one already waiting out the old line's delay
// or loss stall (and so every segment queued in order behind it): a line
// made good is good from now, not after a stall the bad line drew.
func (l *Link) SetProfile(p Profile) {
	l.mu.Lock()
	l.prof = p
	l.broadcastLocked()
	l.mu.Unlock()
}

// profileNow returns the current profile and a channel closed at the link's
// next change, taken together so that a change between the two is not
// missed.
func (l *Link) profileNow() (Profile, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.prof, l.changed
}

// Cut resets every connection and refuses new ones until Heal.
func (l *Link) Cut() {
	l.cuts.Add(1)
	l.mu.Lock()
	l.cut = true
	l.broadcastLocked()
	pairs := make([]*pair, 0, len(l.pairs))
	for p := range l.pairs {
		pairs = append(pairs, p)
	}
	l.mu.Unlock()
	for _, p := range pairs {
		p.reset()
	}
}

// Blackhole silences the given directions: bytes stop (and queue, as TCP's
// would) without any connection closing, until Heal.
func (l *Link) Blackhole(d Direction) {
	l.blackholes.Add(1)
	l.mu.Lock()
	l.holes |= d
	l.broadcastLocked()
	l.mu.Unlock()
}

// Heal ends every cut and blackhole.
func (l *Link) Heal() {
	l.mu.Lock()
	l.cut, l.holes = false, 0
	l.broadcastLocked()
	l.mu.Unlock()
}

// Faulty reports whether the link is cut or blackholed.
func (l *Link) Faulty() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cut || l.holes != 0
}

// Stats returns the link's counters.
func (l *Link) Stats() LinkStats {
	return LinkStats{Accepted: l.accepted.Load(), Refused: l.refused.Load(), Cuts: l.cuts.Load(), Blackholes: l.blackholes.Load(),
		Stalls: l.stalls.Load(), BytesUp: l.bytesUp.Load(), BytesDown: l.bytesDown.Load()}
}

// Stall is one lost segment's stall: when the segment entered the line,
// which way, and how long the retransmissions held its direction.
type Stall struct {
	At     time.Time
	Dir    Direction
	Length time.Duration
}

// maxStallLog bounds the stalls a link remembers: a soak's failing line
// draws a few hundred.
const maxStallLog = 10_000

func (l *Link) logStall(s Stall) {
	l.stallMu.Lock()
	if len(l.stallLog) >= maxStallLog {
		l.stallLog = append(l.stallLog[:0], l.stallLog[len(l.stallLog)-maxStallLog/2:]...)
	}
	l.stallLog = append(l.stallLog, s)
	l.stallMu.Unlock()
}

// StallLog returns the link's stalls, oldest first (the latest 10,000 at
// most; a stall timed again after a profile change is there twice, as it
// is counted twice): a slow moment of a test can be laid beside them.
func (l *Link) StallLog() []Stall {
	l.stallMu.Lock()
	defer l.stallMu.Unlock()
	return append([]Stall(nil), l.stallLog...)
}

// LastByte is when a byte last entered the link, either way (zero before
// the first): a load driver waits for the line to go quiet with it.
func (l *Link) LastByte() time.Time {
	n := l.last.Load()
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n)
}

// Conns is how many connections are open through the link.
func (l *Link) Conns() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.pairs)
}

// Close stops listening, resets every connection and waits for the pipes.
func (l *Link) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	pairs := make([]*pair, 0, len(l.pairs))
	for p := range l.pairs {
		pairs = append(pairs, p)
	}
	l.mu.Unlock()
	err := l.ln.Close()
	for _, p := range pairs {
		p.reset()
	}
	l.wg.Wait()
	return err
}

// broadcastLocked wakes every pipe waiting on a fault or a segment's
// release. Caller holds l.mu.
func (l *Link) broadcastLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

// gate reports whether d may flow now, and a channel closed at the next
// change of the link's faults.
func (l *Link) gate(d Direction) (open bool, cut bool, changed <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.holes&d == 0, l.cut, l.changed
}

func (l *Link) acceptLoop() {
	defer l.wg.Done()
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return // listener closed
		}
		l.accepted.Add(1)
		l.mu.Lock()
		cut, closed := l.cut, l.closed
		n := l.nconns
		l.nconns++
		l.mu.Unlock()
		if cut || closed {
			l.refused.Add(1)
			resetConn(c)
			continue
		}
		l.wg.Add(1)
		go l.serve(c, n)
	}
}

// serve dials the relay for one client connection and runs its two pipes.
func (l *Link) serve(client net.Conn, n uint64) {
	defer l.wg.Done()
	server, err := net.DialTimeout("tcp", l.target, 3*time.Second)
	if err != nil {
		// The relay is down: the client sees its connection reset, as it
		// would see a refused connection.
		l.refused.Add(1)
		resetConn(client)
		return
	}
	p := &pair{l: l, client: client, server: server, done: make(chan struct{})}
	l.mu.Lock()
	if l.cut || l.closed {
		l.mu.Unlock()
		l.refused.Add(1)
		resetConn(client)
		server.Close()
		return
	}
	l.pairs[p] = struct{}{}
	l.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(Up, client, server, rand.New(rand.NewPCG(l.seed, n*2))) }()
	go func() { defer wg.Done(); p.pipe(Down, server, client, rand.New(rand.NewPCG(l.seed, n*2+1))) }()
	wg.Wait()
	p.close()
	l.mu.Lock()
	delete(l.pairs, p)
	l.mu.Unlock()
}

// resetConn closes c with a TCP reset rather than an orderly FIN.
func resetConn(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetLinger(0)
	}
	c.Close()
}

// pair is one proxied connection. Either pipe ending ends both.
type pair struct {
	l              *Link
	client, server net.Conn
	once           sync.Once
	done           chan struct{} // closed when the pair is torn down
}

func (p *pair) close() {
	p.once.Do(func() {
		close(p.done)
		p.client.Close()
		p.server.Close()
	})
}

func (p *pair) reset() {
	p.once.Do(func() {
		close(p.done)
		resetConn(p.client)
		resetConn(p.server)
	})
}

type segment struct {
	data []byte
	at   time.Time // when it entered the line
}

// pipe carries one direction: a reader cutting the stream into segments
// and a writer releasing them in order once the line allows. It returns
// when the source ends (after the writer delivered what was read) or the
// pair is torn down.
func (p *pair) pipe(d Direction, src, dst net.Conn, rng *rand.Rand) {
	counter := &p.l.bytesUp
	if d == Down {
		counter = &p.l.bytesDown
	}
	q := make(chan segment, queueSegments)
	go func() { // reader: exits on a read error or when the pair is done
		defer close(q)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			now := time.Now()
			if n > 0 {
				// Counted on the way in, so a byte is counted before its
				// echo can come back the other way.
				counter.Add(int64(n))
				p.l.last.Store(now.UnixNano())
			}
			for off := 0; off < n; off += mss {
				seg := segment{data: append([]byte(nil), buf[off:min(off+mss, n)]...), at: now}
				select {
				case q <- seg:
				case <-p.done:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	var last time.Time   // release time of the previous segment: segments leave in order
	var tokens float64   // token bucket, in bytes
	var refill time.Time // when tokens were last topped up
	for seg := range q {
		prof, changed := p.l.profileNow()
		// in order: a segment waits for a stalled one ahead of it
		release := later(p.release(seg, prof, rng, d), last)
		for {
			done, ok := p.waitUntil(release, changed)
			if !ok {
				p.close()
				return
			}
			if done {
				break
			}
			var now Profile
			if now, changed = p.l.profileNow(); now != prof {
				// The line's quality changed while this segment waited
				// (not a fault, which waitOpen handles): it is timed
				// again on the new line, from when it entered.
				prof = now
				release = later(p.release(seg, prof, rng, d), last)
			}
		}
		if !p.waitOpen(d) {
			p.close()
			return
		}
		if prof.Rate > 0 {
			burst := float64(max(2*mss, prof.Rate/10))
			now := time.Now()
			if refill.IsZero() {
				tokens, refill = burst, now
			}
			tokens = min(burst, tokens+now.Sub(refill).Seconds()*float64(prof.Rate))
			refill = now
			if need := float64(len(seg.data)) - tokens; need > 0 {
				wait := time.Duration(need / float64(prof.Rate) * float64(time.Second))
				if _, ok := p.waitUntil(now.Add(wait), nil); !ok {
					p.close()
					return
				}
				tokens += need
				refill = now.Add(wait)
			}
			tokens -= float64(len(seg.data))
		}
		if _, err := dst.Write(seg.data); err != nil {
			p.close()
			return
		}
		last = time.Now()
	}
	// The source ended and everything read was delivered: end the pair.
	p.close()
}

// release is when seg may leave on a line with prof: half the round trip
// and jitter after it entered, plus a stall if the line loses it.
func (p *pair) release(seg segment, prof Profile, rng *rand.Rand, d Direction) time.Time {
	release := seg.at.Add(prof.RTT / 2)
	if prof.Jitter > 0 {
		release = release.Add(time.Duration(rng.Int64N(int64(prof.Jitter) + 1)))
	}
	if prof.Loss > 0 && rng.Float64() < prof.Loss {
		// Lost: the sender retransmits after an RTO, doubling it while the
		// retransmission is lost too. The retransmission is timed from
		// this segment's own sending, so losses of segments in flight
		// together overlap, as with TCP's selective acknowledgement; they
		// do not queue one behind another.
		p.l.stalls.Add(1)
		rto := prof.rto(rng)
		stall := rto
		for i := 0; i < 5 && rng.Float64() < prof.Loss; i++ {
			rto *= 2
			stall += rto
		}
		release = release.Add(stall)
		p.l.logStall(Stall{At: seg.at, Dir: d, Length: stall})
	}
	return release
}

func later(a, b time.Time) time.Time {
	if a.Before(b) {
		return b
	}
	return a
}

// waitUntil sleeps until t (this timer is the line's delay, not a wait for
// an event). done is false if changed closed first (nil: never); ok is
// false if the pair was torn down meanwhile.
func (p *pair) waitUntil(t time.Time, changed <-chan struct{}) (done, ok bool) {
	d := time.Until(t)
	if d <= 0 {
		select {
		case <-p.done:
			return false, false
		default:
			return true, true
		}
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-tm.C:
		return true, true
	case <-changed:
		return false, true
	case <-p.done:
		return false, false
	}
}

// waitOpen blocks while direction d is blackholed, and reports false if
// the pair was torn down.
func (p *pair) waitOpen(d Direction) bool {
	for {
		open, _, changed := p.l.gate(d)
		if open {
			return true
		}
		select {
		case <-changed:
		case <-p.done:
			return false
		}
	}
}
