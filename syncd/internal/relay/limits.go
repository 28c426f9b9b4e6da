package relay

import (
	"net"
	"sync"
	"time"

	"haven/shared/wire"
)

// One device gets its share and no more. Every limit has a safe default
// and a flag (syncd serve -help); each refusal is an error to the device
// with a code (wire.CodeQuota…), a metric (haven_relay_refused_total) and a
// log line with IDs. A refused message is not stored: the device keeps its
// changes and offers them again later.
type Limits struct {
	// ConnsPerDevice caps one device's connections at once (a desktop
	// needs one; a reconnect briefly overlaps the old). Default 4.
	ConnsPerDevice int
	// DocsPerHour caps the documents one device creates in an hour, and
	// OrgDocsPerHour those one organisation's devices create. A resident is
	// two documents; admitting a home of 120 at once is 240. A quarter of
	// the hour's share may come at once, the rest at the hour's pace (a
	// refused document stays on the desktop, which offers it again).
	// Defaults 600 and 2,000.
	DocsPerHour, OrgDocsPerHour int
	// DocBytes caps a document's stored size. A five-year record with its
	// notes is about 0.35 MB; the default, 16 MiB, leaves room for decades
	// and for what other clients write. Default 16 MiB.
	DocBytes int64
	// ChangesPerSecond and ChangeBurst are a token bucket per device for
	// the changes its messages carry: the burst lets a desktop back from a
	// day offline send its day at once; the rate is far above what staff
	// type. Defaults 50/s and 10,000; per organisation four times those.
	ChangesPerSecond float64
	ChangeBurst      int
	// ChangeBytesPerSecond and ChangeBytesBurst are a token bucket per
	// device for the bytes of the changes it sends, so a device cannot
	// fill its home's scope with large documents every new desktop then
	// downloads. A care home's day of notes is a few megabytes; moving a
	// home of 120 residents in is a few tens, which then takes under an
	// hour. Each large document is worker time everyone else waits for, so
	// the burst is small. Defaults 16 KiB/s (about 56 MiB an hour) and 4
	// MiB; per organisation four times those.
	ChangeBytesPerSecond float64
	ChangeBytesBurst     int
	// ReadBytesPerSecond and ReadBurst shape what the relay reads from one
	// device's connections together: past the burst, the relay reads its
	// next frame only when the rate allows, so the socket fills and the
	// device waits. Whatever a device sends (refused changes, requests by
	// the thousand, audit batches), the relay spends no more than this
	// rate's worth of work reading it. A desktop's busiest minute is far
	// below. Defaults 256 KiB/s and 8 MiB.
	ReadBytesPerSecond float64
	ReadBurst          int
	// AuditPerSecond and AuditBurst are a token bucket per device for the
	// audit events it reports. Defaults 2/s and DefaultAuditBurst.
	AuditPerSecond float64
	AuditBurst     int
	// SearchesPerHour caps an advice-line device's searches and record
	// openings together: a busy line takes a call every few minutes per
	// desk. A burst of a quarter of it passes at once. Default 120.
	SearchesPerHour int
	// AdviceRetention is how long an advice-line device may keep a record
	// after it was last opened for a call (each opening records a reason),
	// for a call-back while the line is down. Default 72 hours.
	AdviceRetention time.Duration
	// Waiting caps one connection's messages queued for the workers.
	// Default 5,000.
	Waiting int
	// PreAuthReadLimit is the largest frame read from a connection whose
	// credential was refused (enough for a join). Default 4 KiB.
	PreAuthReadLimit int64
	// UnauthPerAddr caps the refused connections one address may hold open
	// at once. Default 8.
	UnauthPerAddr int
}

// DefaultAuditBurst is how many audit events one device may report at
// once: five of a desktop's batches of 200. Storing an event (the relay's
// chain, JetStream, the copy each node follows) is work every device's
// edits share, and at 5,000 at once a busy two-core relay was taken for
// about a second, every healthy desktop's notes arriving 30 to 90 ms late.
// A desktop back from a week offline with a few thousand views sends the
// rest at the bucket's rate; they wait on it, acknowledged only when
// stored, so nothing is lost and no care waits on them.
const DefaultAuditBurst = 1000

func (l Limits) withDefaults() Limits {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&l.ConnsPerDevice, 4)
	def(&l.DocsPerHour, 600)
	def(&l.OrgDocsPerHour, 2000)
	def(&l.ChangeBurst, 10000)
	def(&l.Waiting, 5000)
	def(&l.AuditBurst, DefaultAuditBurst)
	def(&l.SearchesPerHour, 120)
	if l.AdviceRetention <= 0 {
		l.AdviceRetention = 72 * time.Hour
	}
	def(&l.UnauthPerAddr, 8)
	if l.DocBytes <= 0 {
		l.DocBytes = 16 << 20
	}
	if l.ChangesPerSecond <= 0 {
		l.ChangesPerSecond = 50
	}
	def(&l.ChangeBytesBurst, 4<<20)
	def(&l.ReadBurst, 8<<20)
	if l.ReadBytesPerSecond <= 0 {
		l.ReadBytesPerSecond = 256 << 10
	}
	if l.ChangeBytesPerSecond <= 0 {
		l.ChangeBytesPerSecond = 16 << 10
	}
	if l.AuditPerSecond <= 0 {
		l.AuditPerSecond = 2
	}
	if l.PreAuthReadLimit <= 0 {
		l.PreAuthReadLimit = 4 << 10
	}
	return l
}

// bucket is a token bucket: it holds up to burst tokens and gains rate a
// second.
type bucket struct {
	tokens float64
	last   time.Time
}

// refill adds what the time since the last use earned, up to burst; a
// bucket first used is full. A clock that went back earns nothing.
func (b *bucket) refill(now time.Time, rate float64, burst int) {
	if b.last.IsZero() {
		b.tokens = float64(burst)
	} else {
		b.tokens = min(float64(burst), b.tokens+max(0, now.Sub(b.last).Seconds())*rate)
	}
	b.last = now
}

// take removes n tokens if there are that many, refilling first. More
// than a whole burst at once (a week offline in one message) passes when
// the bucket is full and leaves it in debt, so it is never refused for
// ever; the device then waits the longer.
func (b *bucket) take(now time.Time, n, rate float64, burst int) bool {
	b.refill(now, rate, burst)
	if b.tokens < min(n, float64(burst)) {
		return false
	}
	b.tokens -= n
	return true
}

// quotas holds the buckets, by device and by organisation.
type quotas struct {
	mu       sync.Mutex
	changes  map[string]*bucket // device or "org:" + organisation
	bytes    map[string]*bucket // device, or "org:" and the organisation
	reads    map[string]*bucket // device: bytes read from its connections
	docs     map[string]*bucket
	audit    map[string]*bucket       // device
	searches map[string]*bucket       // device
	reserved map[string]string        // document → the device whose document quota it took
	unauth   map[string]int           // refused connections open, by address
	creating map[string]chan struct{} // device → its one new document in a worker
}

func newQuotas() *quotas {
	return &quotas{changes: map[string]*bucket{}, bytes: map[string]*bucket{}, reads: map[string]*bucket{}, docs: map[string]*bucket{}, audit: map[string]*bucket{}, searches: map[string]*bucket{}, reserved: map[string]string{}, unauth: map[string]int{}, creating: map[string]chan struct{}{}}
}

func (q *quotas) get(m map[string]*bucket, key string) *bucket {
	b := m[key]
	if b == nil {
		b = &bucket{}
		m[key] = b
	}
	return b
}

// allowChanges takes n change tokens and size byte tokens from the device
// and its organisation, or none of them; it returns the code of the
// refusal, or "" if the message may pass.
func (s *Server) allowChanges(c *conn, n, size int) string {
	if n == 0 {
		return ""
	}
	l, now := s.cfg.Limits, time.Now()
	q := s.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	// Take from the organisation only if the device has them, and give
	// back what was taken when a later bucket has none.
	takes := []struct {
		b     *bucket
		n     float64
		rate  float64
		burst int
		code  string
	}{
		{q.get(q.changes, c.dev.ID), float64(n), l.ChangesPerSecond, l.ChangeBurst, wire.CodeQuotaChanges},
		{q.get(q.changes, "org:"+c.dev.Org), float64(n), 4 * l.ChangesPerSecond, 4 * l.ChangeBurst, wire.CodeQuotaChanges},
		{q.get(q.bytes, c.dev.ID), float64(size), l.ChangeBytesPerSecond, l.ChangeBytesBurst, wire.CodeQuotaBytes},
		{q.get(q.bytes, "org:"+c.dev.Org), float64(size), 4 * l.ChangeBytesPerSecond, 4 * l.ChangeBytesBurst, wire.CodeQuotaBytes},
	}
	for i, t := range takes {
		if !t.b.take(now, t.n, t.rate, t.burst) {
			for _, done := range takes[:i] {
				done.b.tokens += done.n
			}
			return t.code
		}
	}
	return ""
}

// debit takes n tokens whatever the bucket holds, refilling first, and
// returns how long until it is out of debt again.
func (b *bucket) debit(now time.Time, n, rate float64, burst int) time.Duration {
	b.refill(now, rate, burst)
	b.tokens -= n
	if b.tokens >= 0 {
		return 0
	}
	return time.Duration(-b.tokens / rate * float64(time.Second))
}

// readWait takes n bytes read from the device and says how long its
// connection waits before reading on.
func (s *Server) readWait(c *conn, n int) time.Duration {
	l, q := s.cfg.Limits, s.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.get(q.reads, c.dev.ID).debit(time.Now(), float64(n), l.ReadBytesPerSecond, l.ReadBurst)
}

// allowAudit takes n audit-event tokens from the device.
func (s *Server) allowAudit(c *conn, n int) bool {
	l, q := s.cfg.Limits, s.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.get(q.audit, c.dev.ID).take(time.Now(), float64(n), l.AuditPerSecond, l.AuditBurst)
}

// allowSearch takes a search (or record opening) token from the device.
func (s *Server) allowSearch(c *conn) bool {
	l, q := s.cfg.Limits, s.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.get(q.searches, c.dev.ID).take(time.Now(), 1, float64(l.SearchesPerHour)/3600, max(1, l.SearchesPerHour/4))
}

// docBurst is how many of an hour's documents may come at once: a quarter
// (at least 20, at most all), so that one device's burst of new documents,
// each a worker's work, does not hold up everyone else's changes, while a
// home admitting seventy residents at once is not held up at all.
func docBurst(perHour int) int { return min(perHour, max(20, perHour/4)) }

// creating returns the device's turn for creating a document: one at a
// time, so that a device offering documents by the hundred (each a
// worker's work: load, check, admit) uses one worker's time while the
// rest serve everyone else. Taken by sending, given back by receiving.
func (s *Server) creating(c *conn) chan struct{} {
	q := s.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	ch := q.creating[c.dev.ID]
	if ch == nil {
		ch = make(chan struct{}, 1)
		q.creating[c.dev.ID] = ch
	}
	return ch
}

// mayCreate reports whether the device may create a new document: the
// first time a device offers a document the relay does not hold, one of the
// device's (and its organisation's) documents for the hour is taken, held
// for that document whatever follows, so documents offered at once cannot
// all pass on the same last token.
func (s *Server) mayCreate(c *conn, doc string) bool {
	l, now := s.cfg.Limits, time.Now()
	q := s.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.reserved[doc] == c.dev.ID {
		return true
	}
	dev, org := q.get(q.docs, c.dev.ID), q.get(q.docs, "org:"+c.dev.Org)
	if !dev.take(now, 1, float64(l.DocsPerHour)/3600, docBurst(l.DocsPerHour)) {
		return false
	}
	if !org.take(now, 1, float64(l.OrgDocsPerHour)/3600, docBurst(l.OrgDocsPerHour)) {
		dev.tokens++
		return false
	}
	if len(q.reserved) > 100000 {
		clear(q.reserved) // bounded: a reservation only spares a second token
	}
	q.reserved[doc] = c.dev.ID
	return true
}

// addrHost is the address without its port: the unit the unauthenticated
// cap counts.
func addrHost(remote string) string {
	if host, _, err := net.SplitHostPort(remote); err == nil {
		return host
	}
	return remote
}

// openUnauth counts a refused connection from an address; it reports false
// when the address already holds its share.
func (s *Server) openUnauth(remote string) bool {
	host := addrHost(remote)
	q := s.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.unauth[host] >= s.cfg.Limits.UnauthPerAddr {
		return false
	}
	q.unauth[host]++
	return true
}

func (s *Server) closeUnauth(remote string) {
	host := addrHost(remote)
	q := s.quotas
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.unauth[host]--; q.unauth[host] <= 0 {
		delete(q.unauth, host)
	}
}
