package loadtest

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"haven/shared/docid"
)

// The live scenario's bookkeeping. Every note a client writes is entered in
// its document's log (ID, sender, step) inside the change that creates it,
// and carries its sender's clock in its own text. When a change arrives at a
// client, the client looks up, in its own copy of the document, only the
// notes of that document it has not seen yet, reads each one's clock and
// records the latency. The log spares a scan of the whole timeline on every
// change (1.3 ms for 150 notes: twenty clients doing that for every change
// would load the machine more than the server under test); the latency
// itself comes from what the receiver reads in its own document.

// noteText is the text of a load-test note, carrying its sender's clock.
func noteText(sender, seq int, sent time.Time) string {
	return fmt.Sprintf("load test: client %d, edit %d, sent %d", sender, seq, sent.UnixNano())
}

// parseNoteText reads back what noteText wrote. (Not with fmt.Sscanf: every
// client reads every other client's notes, and scanning cost the clients
// CPU that the servers under test then lacked.)
func parseNoteText(s string) (sender, seq int, sent time.Time, err error) {
	bad := fmt.Errorf("not a load-test note: %q", s)
	rest, ok := strings.CutPrefix(s, "load test: client ")
	a, rest, ok2 := strings.Cut(rest, ", edit ")
	b, c, ok3 := strings.Cut(rest, ", sent ")
	if !ok || !ok2 || !ok3 {
		return 0, 0, time.Time{}, bad
	}
	sender, err1 := strconv.Atoi(a)
	seq, err2 := strconv.Atoi(b)
	ns, err3 := strconv.ParseInt(c, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return 0, 0, time.Time{}, bad
	}
	return sender, seq, time.Unix(0, ns), nil
}

// note is one note written during the live scenario.
type note struct {
	id     string // its key in the timeline's notes map
	sender int
	seq    int
	step   *stepLog
	seen   atomic.Int32 // other clients that have read it
}

// docLog lists a document's notes in the order they were written.
type docLog struct {
	mu    sync.Mutex // guards notes, which only grows
	notes []*note
}

// reader is one client's progress through the logs. Only that client's work
// goroutine calls it (OnChange), but the mutex keeps it safe regardless.
type reader struct {
	mu      sync.Mutex
	next    map[docid.ID]int     // how much of each document's log is in pending
	pending map[docid.ID][]*note // others' notes not yet seen here
}

// ledger is the bookkeeping for one live run.
type ledger struct {
	clients int
	docs    map[docid.ID]*docLog // fixed before the first edit
	readers []*reader
	trace   *tracer // nil: no trace
}

func newLedger(ids []docid.ID, clients int, trace *tracer) *ledger {
	l := &ledger{clients: clients, docs: map[docid.ID]*docLog{}, trace: trace}
	for _, id := range ids {
		l.docs[id] = &docLog{}
	}
	for range clients {
		l.readers = append(l.readers, &reader{next: map[docid.ID]int{}, pending: map[docid.ID][]*note{}})
	}
	return l
}

// register enters a note just written by sender in step.
func (l *ledger) register(doc docid.ID, noteID string, sender, seq int, step *stepLog) {
	n := &note{id: noteID, sender: sender, seq: seq, step: step}
	step.wrote()
	dl := l.docs[doc]
	dl.mu.Lock()
	dl.notes = append(dl.notes, n)
	dl.mu.Unlock()
}

// arrived runs when a change to doc has been applied at client: it reads the
// notes that client has not seen yet out of its copy of the document.
func (l *ledger) arrived(client int, d *device, doc docid.ID) {
	now := time.Now()
	dl := l.docs[doc]
	if dl == nil {
		return
	}
	r := l.readers[client]
	r.mu.Lock()
	defer r.mu.Unlock()
	dl.mu.Lock()
	fresh := dl.notes[r.next[doc]:] // the log only grows: these entries stay valid unlocked
	r.next[doc] = len(dl.notes)
	dl.mu.Unlock()
	pending := r.pending[doc]
	for _, n := range fresh {
		if n.sender != client {
			pending = append(pending, n)
		}
	}
	if len(pending) == 0 {
		return
	}
	h, err := d.repo.Open(doc)
	if err != nil {
		return
	}
	tl := h.Doc()
	keep := pending[:0]
	for _, n := range pending {
		if n.step.isOver() {
			continue // its step is over: nobody waits for this note any more
		}
		v, ok, err := tl.Get("notes", n.id)
		if err != nil || !ok {
			keep = append(keep, n)
			continue
		}
		sent, clockOK := readClock(v, n)
		l.trace.arrival(n, client, sent, now)
		n.step.arrived(n, now.Sub(sent), clockOK, l.clients-1, now)
	}
	clear(pending[len(keep):])
	r.pending[doc] = keep
}

// readClock takes the sender's clock out of a stored note (its JSON body),
// checking the note is the one the log says.
func readClock(v any, n *note) (time.Time, bool) {
	body, _ := v.(string)
	var stored struct {
		Text string `json:"text"`
	}
	if json.Unmarshal([]byte(body), &stored) != nil {
		return time.Time{}, false
	}
	sender, seq, sent, err := parseNoteText(stored.Text)
	if err != nil || sender != n.sender || seq != n.seq {
		return time.Time{}, false
	}
	return sent, true
}

// stepLog collects one rate step's figures.
type stepLog struct {
	mu       sync.Mutex // guards the fields below
	edits    int        // notes written
	complete int        // notes every other client has read
	lat      []time.Duration
	badClock int       // notes read whose text did not carry the expected clock
	lastIn   time.Time // when the latest note became complete
	closed   bool      // no more notes will be written
	frozen   bool      // figures taken: later arrivals only count towards allIn
	allIn    chan struct{}

	over atomic.Bool // the step and its settling are done: arrivals are ignored
}

func newStepLog() *stepLog { return &stepLog{allIn: make(chan struct{})} }

func (s *stepLog) wrote() {
	s.mu.Lock()
	s.edits++
	s.mu.Unlock()
}

func (s *stepLog) arrived(n *note, lat time.Duration, clockOK bool, others int, now time.Time) {
	seen := int(n.seen.Add(1))
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.frozen {
		if clockOK {
			s.lat = append(s.lat, lat)
		} else {
			s.badClock++
		}
	}
	if seen == others {
		s.complete++
		if !s.frozen {
			s.lastIn = now
		}
		if s.closed && s.complete == s.edits {
			close(s.allIn)
		}
	}
}

// close says every note of the step has been written; allIn closes once
// they have all been read everywhere.
func (s *stepLog) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	if s.complete == s.edits {
		close(s.allIn)
	}
}

// freeze ends the step's measurement and returns its figures. Arrivals
// still count towards allIn, so that the next step can wait for a backlog
// to clear before it starts.
func (s *stepLog) freeze() (edits, complete, badClock int, lat []time.Duration, lastIn time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frozen = true
	return s.edits, s.complete, s.badClock, s.lat, s.lastIn
}

// end stops all bookkeeping for the step.
func (s *stepLog) end() { s.over.Store(true) }

func (s *stepLog) isOver() bool { return s.over.Load() }

// tracer writes one CSV line per arrival, for looking at latency over time:
// server, sender, edit, receiver, sent (Unix ns), latency (µs).
type tracer struct {
	mu     sync.Mutex // one line at a time
	w      io.Writer
	server Kind
}

func (t *tracer) arrival(n *note, receiver int, sent, now time.Time) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, "%s,%d,%d,%d,%d,%d\n", t.server, n.sender, n.seq, receiver, sent.UnixNano(), now.Sub(sent).Microseconds())
}
