package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"haven/desktop/internal/app"
	"haven/shared/rig"
)

// harness owns the run's processes, links and logs. Lines from the agents
// arrive on their reader goroutines; everything they change is under mu,
// and every change wakes waiters (waitFor).
type harness struct {
	t    *testing.T
	cfg  config
	root string

	relay  *relayProc // in cluster mode, node 0 (for admin commands)
	agents []*agentProc
	// cluster is the relay's nodes in cluster mode (-soak.cluster); nil
	// with one relay.
	cluster *cluster
	// seedFromNode0: the demo's documents, stored in node 0's folder
	// before the cluster started, are not at the other nodes, so every
	// desktop first downloads the home from node 0; seedNote says what
	// the setup found.
	seedFromNode0 bool
	seedNote      string
	// baseResidents is how many residents the home has before the first
	// desktop admits more: the demo's 40, or none when the cluster's own
	// admin commands made the home.
	baseResidents int

	home, hub, advice, birch string // organisation IDs

	changed rig.Signal // notified on every change the agents report

	mu      sync.Mutex
	acks    []ack
	ackTags map[string]int // tag → index in acks
	nacks   int
	ackLog  *os.File
	events  *os.File // the run's narrative: faults as they happen

	counts counts

	progress atomic.Int64 // lines from the desktops about their copies: convergence is moving
}

// counts are the totals the summary prints.
type counts struct {
	relayKills, relayStarts  int
	agentKills, agentStarts  int
	cuts, blackholes, oneWay int
	editsSent, editsSkipped  int
	injectedFrames           int
	hostileConnections       int
	rounds                   int
	// cluster mode's
	nodeKills, nodeStarts, partitions int
	// nodeStartTimes is how long each node start took to its listening
	// line: a node serves once a majority is up and it has caught up.
	nodeStartTimes []time.Duration
}

// countNodeStart counts a node started and how long its start took; nodes start
// from several goroutines at once.
func (h *harness) countNodeStart(took time.Duration) {
	h.mu.Lock()
	h.counts.nodeStarts++
	h.counts.nodeStartTimes = append(h.counts.nodeStartTimes, took)
	h.mu.Unlock()
}

// ack is one change a desktop acknowledged: durable on its disk.
type ack struct {
	Tag   string    `json:"tag"`
	Agent string    `json:"agent"`
	Kind  string    `json:"kind"` // note, decide, resident
	Doc   string    `json:"doc"`  // the resident
	At    time.Time `json:"at"`
}

func newHarness(t *testing.T, cfg config, root string) *harness {
	h := &harness{t: t, cfg: cfg, root: root, ackTags: map[string]int{}}
	var err error
	if h.ackLog, err = os.OpenFile(filepath.Join(root, "acks.jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		t.Fatal(err)
	}
	if h.events, err = os.OpenFile(filepath.Join(root, "events.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) close() {
	h.ackLog.Close()
	h.events.Close()
}

// logf records a line in events.log.
func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.events, "%s %s\n", time.Now().Format("15:04:05.000"), fmt.Sprintf(format, args...))
}

// notify wakes every waiter.
func (h *harness) notify() { h.changed.Notify() }

// waitFor checks cond on every change the agents report (and every 100 ms,
// for changes that are not reported, such as a process exiting) until it
// holds or within passes.
func (h *harness) waitFor(within time.Duration, cond func() bool) bool {
	return rig.UntilSignal(within, &h.changed, cond)
}

// recordAck appends an ack to the independent log as it arrives.
func (h *harness) recordAck(a ack) {
	b, _ := json.Marshal(a)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.ackLog.Write(append(b, '\n'))
	if _, dup := h.ackTags[a.Tag]; !dup {
		h.ackTags[a.Tag] = len(h.acks)
		h.acks = append(h.acks, a)
	}
	h.notify()
}

func (h *harness) ackList() []ack {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]ack(nil), h.acks...)
}

// --- the relay ---

// relayProc is the real syncd process (the rig's relay), restartable on
// the same data folder and address.
type relayProc struct{ *rig.Relay }

// metrics reads the relay's Prometheus counters (none if it does not
// answer).
func (r *relayProc) metrics() map[string]float64 {
	m, err := r.Metrics()
	if err != nil {
		return map[string]float64{}
	}
	return m
}

// enrollDevice exchanges a fresh code for a credential directly (for the
// hostile devices, which have no desktop).
func (r *relayProc) enrollDevice(org, name string) (device, credential string, err error) {
	e, err := r.Enroll(org, name)
	return e.Device, e.Credential, err
}

// child is a process the suite starts and kills. Its mutex also guards the
// embedding type's own mutable fields.
type child struct {
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	pid    int
}

func (c *child) running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cmd == nil {
		return false
	}
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// --- the desktops ---

// agentSpec is one desktop of the run.
type agentSpec struct {
	name    string
	orgKind string // "home" or "hub"
	account string
	profile rig.Profile
}

func agentSpecs(n int) []agentSpec {
	all := []agentSpec{
		{"home-lan", "home", "Dr Ada Quill", rig.ProfileLAN},
		{"hub-4g", "hub", "Dr Priya Shah", rig.Profile4G},
		{"home-rural", "home", "Dr Ada Quill", rig.ProfileRural},
		{"home-failing", "home", "Dr Ada Quill", rig.ProfileFailing},
		{"home-rural-2", "home", "Dr Ada Quill", rig.ProfileRural},
		{"office-4g", "home", "Dr Ada Quill", rig.Profile4G},
	}
	return all[:n]
}

func accountPIN(name string) string {
	for _, a := range app.DemoAccounts {
		if a.Name == name {
			return a.PIN
		}
	}
	panic("no demo account " + name)
}

// agentProc is one desktop's sync process (this test binary in agent
// mode), restartable on the same data folder.
type agentProc struct {
	h       *harness
	spec    agentSpec
	dir     string
	link    *rig.Link   // its line to the relay; in cluster mode, to node 0
	links   []*rig.Link // every line it has: links[k] to node k (only link with one relay)
	logPath string
	seed    uint64
	// memTable is its store's memtable size (see agentMemTable).
	memTable int64

	child   // its mutex guards the fields below
	stdin   io.WriteCloser
	gen     int // process generation: lines from an older one are ignored
	ready   bool
	state   string    // last state digest
	stateAt time.Time // when it was reported
	rows    int
	notes   int
	seen    map[string]time.Time // soak tag → first seen
	online  bool
	pending int
	settled time.Time // when pending last became 0
	status  chan string
	bye     chan struct{}
	starts  int
}

func (a *agentProc) name() string { return a.spec.name }

// eachLink applies a fault or a profile to every line the desktop has: in
// cluster mode its lines to every node are one line, the home's.
func (a *agentProc) eachLink(f func(*rig.Link)) {
	for _, l := range a.links {
		f(l)
	}
}

// linkStats adds up its lines' counts.
func (a *agentProc) linkStats() rig.LinkStats {
	var t rig.LinkStats
	for _, l := range a.links {
		st := l.Stats()
		t.Accepted += st.Accepted
		t.Refused += st.Refused
		t.Cuts += st.Cuts
		t.Blackholes += st.Blackholes
		t.Stalls += st.Stalls
		t.BytesUp += st.BytesUp
		t.BytesDown += st.BytesDown
	}
	return t
}

// writeStalls appends its lines' loss stalls to w, a line each (time the
// segment entered, desktop, line, direction, stall in ms), so that a slow
// round can be laid beside them.
func (a *agentProc) writeStalls(w io.Writer) {
	for _, l := range a.links {
		for _, s := range l.StallLog() {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", s.At.Format("15:04:05.000"), a.spec.name, l.Name(), s.Dir, s.Length.Milliseconds())
		}
	}
}

func (a *agentProc) linkFaulty() bool {
	for _, l := range a.links {
		if l.Faulty() {
			return true
		}
	}
	return false
}

func (a *agentProc) linkConns() int {
	n := 0
	for _, l := range a.links {
		n += l.Conns()
	}
	return n
}

// start launches the agent; it reports "ready" by itself.
func (a *agentProc) start() error {
	cfg, _ := json.Marshal(AgentConfig{Name: a.spec.name, Dir: a.dir, Account: a.spec.account, PIN: accountPIN(a.spec.account), Seed: a.seed,
		MemTable: a.memTable})
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), AgentEnv+"="+string(cfg))
	logf, err := os.OpenFile(a.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd.Stderr = logf
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := rig.StartChild(cmd); err != nil { // its own process group; dies with the tests
		logf.Close()
		return err
	}
	logf.Close() // the child holds its own descriptor
	exited := make(chan struct{})
	a.mu.Lock()
	a.gen++
	gen := a.gen
	a.cmd, a.stdin, a.exited, a.ready, a.pid = cmd, stdin, exited, false, cmd.Process.Pid
	a.starts++
	a.bye = make(chan struct{})
	a.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			line, at := stamped(sc.Text())
			a.onLine(gen, line, at)
		}
		cmd.Wait()
		close(exited)
		a.mu.Lock()
		if a.gen == gen {
			a.ready = false
		}
		a.mu.Unlock()
		a.h.notify()
	}()
	return nil
}

// stamped splits an agent's line into the time it was written and the
// report (see agent.go); a line without a time is taken as of now.
func stamped(line string) (string, time.Time) {
	if ts, rest, ok := strings.Cut(line, " "); ok {
		if n, err := strconv.ParseInt(ts, 10, 64); err == nil {
			return rest, time.Unix(0, n)
		}
	}
	return line, time.Now()
}

func (a *agentProc) onLine(gen int, line string, at time.Time) {
	f := strings.Fields(line)
	if len(f) == 0 {
		return
	}
	h := a.h
	switch f[0] {
	case "ack":
		// Recorded whatever the generation: the change is on disk.
		if len(f) == 4 {
			h.recordAck(ack{Tag: f[1], Agent: a.spec.name, Kind: f[2], Doc: f[3], At: at})
		}
		return
	case "nack":
		h.mu.Lock()
		h.nacks++
		h.mu.Unlock()
		return
	}
	a.mu.Lock()
	if a.gen != gen {
		a.mu.Unlock()
		return
	}
	h.progress.Add(1)
	switch f[0] {
	case "ready":
		a.ready = true
		a.online, a.pending, a.settled = false, -1, time.Time{}
	case "seen":
		if len(f) == 2 {
			if _, ok := a.seen[f[1]]; !ok {
				a.seen[f[1]] = at
			}
		}
	case "state":
		if len(f) == 4 && f[1] != a.state {
			h.logf("%s state %s rows %s notes %s", a.spec.name, f[1], f[2], f[3])
			a.state, a.stateAt = f[1], at
			fmt.Sscanf(f[2], "%d", &a.rows)
			fmt.Sscanf(f[3], "%d", &a.notes)
		}
	case "sync":
		if len(f) == 3 {
			on := f[1] == "true"
			var n int
			fmt.Sscanf(f[2], "%d", &n)
			if n == 0 && (a.pending != 0 || a.settled.IsZero()) {
				a.settled = at
			}
			if on != a.online || (n == 0) != (a.pending == 0) {
				h.logf("%s online %v pending %d", a.spec.name, on, n)
			}
			a.online, a.pending = on, n
		}
	case "status":
		select {
		case a.status <- strings.TrimPrefix(line, "status "):
		default:
		}
	case "bye":
		close(a.bye)
	}
	a.mu.Unlock()
	h.notify()
}

func (a *agentProc) isReady() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.ready
}

// send writes one command line; false if the agent is not running.
func (a *agentProc) send(cmd string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.cmd == nil || !a.ready {
		return false
	}
	_, err := io.WriteString(a.stdin, cmd+"\n")
	return err == nil
}

// kill SIGKILLs the agent and waits for it to be gone.
func (a *agentProc) kill() {
	a.mu.Lock()
	cmd, exited := a.cmd, a.exited
	a.cmd, a.ready = nil, false
	a.mu.Unlock()
	if cmd == nil {
		return
	}
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	<-exited
}

// quit asks the agent to close the app and exit, killing it if it will not.
func (a *agentProc) quit() error {
	a.mu.Lock()
	cmd, exited, bye, stdin := a.cmd, a.exited, a.bye, a.stdin
	a.mu.Unlock()
	if cmd == nil {
		return nil
	}
	io.WriteString(stdin, "quit\n")
	var err error
	select {
	case <-bye:
		<-exited
	case <-exited:
		err = fmt.Errorf("%s exited without closing cleanly (see %s)", a.spec.name, a.logPath)
	case <-time.After(60 * time.Second):
		err = fmt.Errorf("%s did not close within 60s", a.spec.name)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	}
	a.mu.Lock()
	a.cmd, a.ready = nil, false
	a.mu.Unlock()
	return err
}

// askStatus returns the agent's sync status.
func (a *agentProc) askStatus() (app.SyncStatus, error) {
	var st app.SyncStatus
	if !a.send("status") {
		return st, errors.New("not running")
	}
	a.mu.Lock()
	ch := a.status
	a.mu.Unlock()
	select {
	case s := <-ch:
		return st, json.Unmarshal([]byte(s), &st)
	case <-time.After(10 * time.Second):
		return st, errors.New("no answer")
	}
}

type agentView struct {
	ready       bool
	state       string
	stateAt     time.Time
	rows, notes int
	online      bool
	pending     int
	settled     time.Time
}

func (a *agentProc) view() agentView {
	a.mu.Lock()
	defer a.mu.Unlock()
	return agentView{ready: a.ready, state: a.state, stateAt: a.stateAt, rows: a.rows, notes: a.notes,
		online: a.online, pending: a.pending, settled: a.settled}
}

func (a *agentProc) seenAt(tag string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.seen[tag]
	return t, ok
}

// enroll sets up the desktop's data folder: a one-time code from the relay
// exchanged through the desktop's own link, as the first-run screen does.
// In cluster mode it types every node's address (through its own lines),
// starting from node first: the desktop keeps them in that order and
// starts at the first.
func (a *agentProc) enroll(ctx context.Context, r *relayProc, org string, first int) error {
	code, err := r.EnrollCode(org, a.spec.name)
	if err != nil {
		return err
	}
	var urls []string
	for k := range a.links {
		urls = append(urls, "http://"+a.links[(first+k)%len(a.links)].Addr())
	}
	return app.Enroll(ctx, a.dir, app.EnrollRequest{RelayURL: strings.Join(urls, ","), Code: code, Demo: true})
}
