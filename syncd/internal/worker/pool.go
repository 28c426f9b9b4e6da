package worker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net"
	"net/rpc"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"haven/shared/cert"
	"haven/shared/store"
	"haven/shared/syncer"
)

// Host is what the parent lends its children: the store, and the scope
// check for documents a peer creates.
type Host interface {
	LoadDoc(docID string) (store.Doc, error)
	AppendChunk(ctx context.Context, docID string, chunk []byte) (uint64, error)
	Quarantine(ctx context.Context, docID string, seq uint64, reason string) error
	Compact(ctx context.Context, docID string, snapshot []byte, upTo uint64) error
	SyncState(storageID, docID string) ([]byte, error)
	PutSyncState(ctx context.Context, storageID, docID string, state []byte) error
	PutSyncStates(ctx context.Context, states []store.SyncStateEntry) error
	Admit(ctx context.Context, from syncer.Peer, docID, home string) error
	// Trust is what children check signed decisions against: the
	// organisation key, the revocations, and their version.
	Trust() (anchor []byte, revocations []cert.Revocation, version uint64)
	// Provenance records which peer first sent each actor's changes.
	Provenance(doc string, actors map[string]string)
	// Person says which rule, if any, a resident's record held by home
	// breaks by naming the NHS number nhs (record.PersonRule), or by
	// moving to home when that is no care home (record.RuleTransfer), and
	// its detail.
	Person(doc, home, nhs string) (rule, detail string)
	// Writers returns those of peers whose devices may change doc, a
	// region's document (orgs.Scope.WritesRegion); a peer gone counts
	// as one that may not.
	Writers(doc string, peers []string) []string
}

// Config starts a Pool.
type Config struct {
	// Command starts one child; it must end up calling RunChild. Default:
	// this executable with the argument "worker".
	Command []string
	// Env is added to the child's environment.
	Env []string
	// Workers is the number of children; work on one document always goes
	// to the same child. Default 4.
	Workers int
	// CallTimeout is the longest one call into a child may take. A child
	// with a call past it is killed, which fails every call in flight on
	// it as a crash would: each item is replayed alone on a fresh child,
	// and one that takes too long again is quarantined. Default
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// DocMemory bounds, in bytes, the memory each child spends on the
	// documents it holds open, with what it keeps for each (estimated from
	// their saved size: repo.Options.MaxBytes and residentPerEstimated).
	// Past it a child lets go of the documents least recently worked on,
	// which are loaded again from the store when next needed. Zero: no
	// bound, a child keeps every document it ever worked on.
	DocMemory int64
	// DocIdle, if above zero, has a child let go of a document nobody has
	// worked on for that long, within DocMemory or not
	// (repo.Options.IdleAfter): its memory then follows the documents
	// being synced. Zero: only DocMemory lets documents go.
	DocIdle time.Duration
	Host    Host
	Logger  *slog.Logger
}

// DefaultCallTimeout is many times what a legitimate call takes (the
// largest document the relay accepts, 16 MiB, loaded cold from the store
// and applied on a slow two-core machine, takes a few seconds), and short
// enough that an item that sends Automerge into an endless loop holds its
// child for half a minute, not for good.
const DefaultCallTimeout = 30 * time.Second

// mallocArenaMax caps a child's glibc malloc arenas (unless the relay's
// environment sets MALLOC_ARENA_MAX). Go makes cgo calls from whichever
// thread runs the goroutine, and glibc gives a thread that finds the
// arenas busy one of its own, up to eight a core: what Automerge frees in
// one arena then sits idle while another grows. Two keep the workers'
// peak in a fresh-device load test of long records a sixth lower or more,
// at no cost seen in its times.
const mallocArenaMax = "2"

// exitGrace is how long Close lets a child save its sync states and exit
// once its call connection closes, before killing it. The relay flushes
// sync states every few seconds and once more before closing the pool, so
// a child has few left to write; one still running after this is stuck.
const exitGrace = 2 * time.Second

// ErrQuarantined is returned for a work item that crashed a child twice (or
// took it past its deadline twice): it was not applied, nothing of it was
// stored or forwarded.
var ErrQuarantined = errors.New("work item crashed the CRDT worker and was quarantined")

// ErrClosed is returned for a call cut short, or not made, because the pool
// is closing. It says nothing about the item, which is neither replayed nor
// quarantined: a caller that never answered it loses nothing it confirmed.
var ErrClosed = errors.New("CRDT worker pool closed")

// Pool is a set of child processes doing CRDT work.
type Pool struct {
	cfg       Config
	log       *slog.Logger
	procs     []*proc
	restarts  atomic.Int64
	timeouts  atomic.Int64
	closed    atomic.Bool // set before Close ends any child; see crashed
	closeOnce sync.Once
	hosts     sync.WaitGroup // serving children's calls into Host
}

// Start launches the children.
func Start(cfg Config) (*Pool, error) {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.CallTimeout <= 0 {
		cfg.CallTimeout = DefaultCallTimeout
	}
	if len(cfg.Command) == 0 {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cfg.Command = []string{self, "worker"}
	}
	p := &Pool{cfg: cfg, log: cfg.Logger}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	for i := 0; i < cfg.Workers; i++ {
		pr := &proc{pool: p, index: i, slots: make(chan struct{}, callsPerChild), bulk: make(chan struct{}, bulkCallsPerChild)}
		if err := pr.start(); err != nil {
			p.Close()
			return nil, err
		}
		p.procs = append(p.procs, pr)
	}
	return p, nil
}

// Restarts counts children restarted after a crash, including those killed
// for exceeding a call's deadline.
func (p *Pool) Restarts() int64 { return p.restarts.Load() }

// Timeouts counts children killed because a call on them exceeded its
// deadline.
func (p *Pool) Timeouts() int64 { return p.timeouts.Load() }

func (p *Pool) procFor(doc string) *proc {
	h := fnv.New32a()
	h.Write([]byte(doc))
	return p.procs[int(h.Sum32()%uint32(len(p.procs)))]
}

// Work runs one item on the child that owns its document. A child works on
// several items at once (each on its own document), so that one item's wait
// for the disk does not hold up the others. If the child crashes, it is
// restarted and every item it was working on is replayed once, alone, on the
// fresh child: a crash can come from state an earlier message left behind,
// which the restart cleared, and alone, an item that crashes the child again
// is the culprit. That item is quarantined; the others go on. A call past
// the deadline (Config.CallTimeout) kills its child, and so counts as a
// crash: an item that hangs Automerge is quarantined the same way.
func (p *Pool) Work(ctx context.Context, args WorkArgs) (WorkReply, error) {
	pr := p.procFor(args.Doc)
	reply, err := pr.work(args, false)
	if !errors.Is(err, errCrashed) {
		return reply, err
	}
	reply, err = pr.work(args, true)
	if errors.Is(err, errCrashed) {
		return WorkReply{}, ErrQuarantined
	}
	return reply, err
}

// Usage sums what the children hold in memory: documents open and their
// estimated bytes (see Config.DocMemory). A child that does not answer
// counts for nothing.
func (p *Pool) Usage() UsageReply {
	var sum UsageReply
	for _, pr := range p.procs {
		var r UsageReply
		if pr.call("Worker.Usage", Empty{}, &r, false) == nil {
			sum.Docs += r.Docs
			sum.Bytes += r.Bytes
		}
	}
	return sum
}

// Forget tells every child a peer has gone, and saves its sync states. An
// item in flight with a message from the peer may then fail it as from an
// unknown peer: the peer is gone, and its unconfirmed changes come again
// when it reconnects.
func (p *Pool) Forget(peer string) {
	var all []syncer.SavedState
	for _, pr := range p.procs {
		var r StatesReply
		if pr.call("Worker.Forget", ForgetArgs{Peer: peer}, &r, false) == nil {
			all = append(all, r.States...)
		}
	}
	if err := p.save(all); err != nil {
		p.log.Warn("saving sync states", "peer", peer, "err", err)
	}
}

// Flush saves every child's dirty sync states. Each child only encodes them
// (a quick call); the parent writes them all in one batch, so document work
// is not held up by disk writes.
func (p *Pool) Flush() error {
	var all []syncer.SavedState
	var errs []error
	for _, pr := range p.procs {
		var r StatesReply
		// A child that crashed lost its states; one that is closing saves
		// its own as it exits.
		if err := pr.call("Worker.Flush", Empty{}, &r, false); err != nil && !errors.Is(err, errCrashed) && !errors.Is(err, ErrClosed) {
			errs = append(errs, err)
		}
		all = append(all, r.States...)
	}
	return errors.Join(append(errs, p.save(all))...)
}

func (p *Pool) save(states []syncer.SavedState) error {
	if len(states) == 0 {
		return nil
	}
	entries := make([]store.SyncStateEntry, len(states))
	for i, s := range states {
		entries[i] = store.SyncStateEntry{Peer: s.Storage, Doc: s.Doc, State: s.State}
	}
	return p.cfg.Host.PutSyncStates(context.Background(), entries)
}

// Close stops the children, whatever they are doing, in about exitGrace at
// most. It first marks the pool closed, so that no call starts and a crash
// from here on is not a replay's cue (see crashed); then it closes every
// child's call connection, which fails each call in flight at once with
// ErrClosed. Each child then saves its sync states and exits; one that has
// not within exitGrace (a call hung in Automerge keeps it running) is
// killed. Close returns once no child runs and no call from one into Host
// is being served, so the store may close after it. Later calls wait for
// the first.
func (p *Pool) Close() error {
	p.closeOnce.Do(func() {
		p.closed.Store(true)
		cs := make([]*child, len(p.procs))
		for i, pr := range p.procs {
			if cs[i] = pr.take(); cs[i] != nil {
				cs[i].client.Close()
			}
		}
		grace, cancel := context.WithTimeout(context.Background(), exitGrace)
		defer cancel()
		for i, c := range cs {
			if c == nil {
				continue
			}
			select {
			case <-c.exited:
			case <-grace.Done():
				p.log.Warn("CRDT worker did not exit when closed; killing it", "worker", i, "grace", exitGrace)
				c.cmd.Process.Kill()
				<-c.exited
			}
			c.host.Close()
		}
		p.hosts.Wait()
	})
	return nil
}

var errCrashed = errors.New("worker crashed")

// crashed is what a call whose child died returns: errCrashed, for the
// caller to replay or quarantine its item; or, once the pool is closed,
// ErrClosed, because Close ends children on purpose and their deaths say
// nothing about the items in flight (and a replay then would wait on a
// child that is never started).
func (p *Pool) crashed() error {
	if p.closed.Load() {
		return ErrClosed
	}
	return errCrashed
}

// callsPerChild is how many calls a child works on at once. Automerge work
// is CPU-bound, but a call that changed its document waits for the parent's
// store to make the change durable; meanwhile the child works on others,
// and the store commits their changes together.
const callsPerChild = 4

// bulkCallsPerChild is how many of a child's calls may be bulk ones
// (WorkArgs.Bulk): the rest are kept for everyone's small edits. A bulk call
// runs at low priority, so on a busy machine it is slow, and without this a
// device's burst of bulk work (new documents, large or refused messages)
// would hold every slot of a child while the edits of other devices whose
// documents the child serves waited behind it.
const bulkCallsPerChild = callsPerChild / 2

// proc is one place in the pool, held by one child at a time. Up to
// callsPerChild calls are in flight at once, each holding mu for reading
// and a slot; a replay after a crash holds mu for writing, so it is the
// only call in flight and the only suspect if the child dies again. Every
// call has a deadline, so mu is never held for longer than a few of them.
type proc struct {
	pool  *Pool
	index int
	slots chan struct{}
	// bulk is taken by a bulk call before its slot (bulkCallsPerChild).
	bulk chan struct{}

	mu  sync.RWMutex // orders calls; see proc
	gen int          // counts starts, so that a crash restarts the child once; guarded by mu

	// cur is the running child. It is replaced only by a holder of mu for
	// writing that also holds life, so a call (holding mu either way)
	// reads it without life, and it stays the same for the whole call.
	// Close takes it holding life alone: a hung call may hold mu until
	// its deadline, which on shutdown is too long to wait.
	life    sync.Mutex
	cur     *child
	stopped bool // Close has taken cur; no child starts after; guarded by life
}

// child is one process and its connections, for its whole life.
type child struct {
	cmd    *exec.Cmd
	client *rpc.Client
	host   net.Conn
	stderr *tailBuffer
	exited chan struct{} // closed when cmd has been waited for
	// late is the call that took the child past its deadline, set once,
	// before the parent kills it; nil if it died otherwise.
	late atomic.Pointer[lateCall]
}

// lateCall describes a call past its deadline for the log: IDs and sizes,
// never content.
type lateCall struct {
	method string
	attrs  []any
}

// kill ends the process at once and fails every call pending on it.
func (c *child) kill() {
	c.client.Close()
	c.cmd.Process.Kill()
}

func (pr *proc) start() error {
	callP, callC, err := socketPair()
	if err != nil {
		return err
	}
	hostP, hostC, err := socketPair()
	if err != nil {
		return err
	}
	cmd := exec.Command(pr.pool.cfg.Command[0], pr.pool.cfg.Command[1:]...)
	cmd.Env = append(os.Environ(), pr.pool.cfg.Env...)
	if m := pr.pool.cfg.DocMemory; m > 0 {
		cmd.Env = append(cmd.Env, fmt.Sprintf("%s=%d", docMemoryEnv, m))
	}
	if d := pr.pool.cfg.DocIdle; d > 0 {
		cmd.Env = append(cmd.Env, docIdleEnv+"="+d.String())
	}
	if os.Getenv("MALLOC_ARENA_MAX") == "" {
		cmd.Env = append(cmd.Env, "MALLOC_ARENA_MAX="+mallocArenaMax)
	}
	cmd.ExtraFiles = []*os.File{callC, hostC}
	stderr := &tailBuffer{max: 8 << 10}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start CRDT worker: %w", err)
	}
	callC.Close()
	hostC.Close()
	callConn, err := net.FileConn(callP)
	callP.Close()
	if err != nil {
		cmd.Process.Kill()
		return err
	}
	hostConn, err := net.FileConn(hostP)
	hostP.Close()
	if err != nil {
		cmd.Process.Kill()
		return err
	}
	srv := rpc.NewServer()
	if err := srv.RegisterName("Host", &hostService{h: pr.pool.cfg.Host}); err != nil {
		return err
	}
	// ServeConn ends when the child's end closes (exit or crash) and the
	// calls it was serving have returned; Close waits for that.
	pr.pool.hosts.Add(1)
	go func() {
		defer pr.pool.hosts.Done()
		srv.ServeConn(hostConn)
	}()
	c := &child{cmd: cmd, client: rpc.NewClient(callConn), host: hostConn, stderr: stderr, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(c.exited) }()
	pr.life.Lock()
	if pr.stopped { // Close came while this one started: it never serves
		pr.life.Unlock()
		c.kill()
		<-c.exited
		c.host.Close()
		return ErrClosed
	}
	pr.cur = c
	pr.life.Unlock()
	pr.gen++
	return nil
}

// take hands the current child to Close; none starts after.
func (pr *proc) take() *child {
	pr.life.Lock()
	defer pr.life.Unlock()
	pr.stopped = true
	return pr.cur
}

// call runs one RPC, alongside others unless alone. A transport failure
// means the child died: it is restarted (once, however many calls were in
// flight) and errCrashed returned; an error the child returned is passed on.
//
// A call alone is a replay after a crash, and a second crash quarantines its
// item, so the death must be its own: it first checks the child answers (a
// crash another item caused may not have been noticed yet) and restarts it
// if not, then holds the child until a crash is dealt with.
func (pr *proc) call(method string, args, reply any, alone bool) error {
	if pr.pool.closed.Load() {
		return ErrClosed
	}
	if alone {
		pr.mu.Lock()
		defer pr.mu.Unlock()
		if pr.invoke("Worker.Ping", Empty{}, &Empty{}) != nil {
			pr.restart()
		}
		crashed, err := outcome(pr.invoke(method, args, reply))
		if !crashed {
			return err
		}
		pr.restart()
		return pr.pool.crashed()
	}
	pr.slots <- struct{}{}
	pr.mu.RLock()
	gen := pr.gen
	crashed, err := outcome(pr.invoke(method, args, reply))
	pr.mu.RUnlock()
	<-pr.slots
	if !crashed {
		return err
	}
	pr.mu.Lock()
	if pr.gen == gen {
		pr.restart()
	}
	pr.mu.Unlock()
	return pr.pool.crashed()
}

// invoke makes one call on the current child, within the deadline; the
// caller holds mu, either way. A call past its deadline kills the child:
// every call in flight on it then fails as in a crash, and the crash path
// finds the culprit by replaying each alone, each again with a deadline.
func (pr *proc) invoke(method string, args, reply any) error {
	c := pr.cur
	call := c.client.Go(method, args, reply, make(chan *rpc.Call, 1))
	deadline := time.NewTimer(pr.pool.cfg.CallTimeout)
	defer deadline.Stop()
	select {
	case <-call.Done:
		return call.Error
	case <-deadline.C:
	}
	if c.late.CompareAndSwap(nil, &lateCall{method: method, attrs: callAttrs(args)}) {
		pr.pool.timeouts.Add(1)
	}
	c.kill()
	<-call.Done // at once: kill closed the client, which ends every pending call
	return errDeadline
}

var errDeadline = errors.New("CRDT worker call exceeded its deadline")

// callAttrs describes a call's arguments for the log: IDs and sizes only.
func callAttrs(args any) []any {
	switch a := args.(type) {
	case WorkArgs:
		n := 0
		for _, m := range a.Msgs {
			n += len(m.Data)
		}
		return []any{"doc", a.Doc, "messages", len(a.Msgs), "bytes", n, "notify", len(a.Notify)}
	case ForgetArgs:
		return []any{"peer", a.Peer}
	}
	return nil
}

// outcome sorts a call's error: an error the child returned is passed on
// as a plain error; any other means the child died.
func outcome(err error) (crashed bool, _ error) {
	var se rpc.ServerError
	switch {
	case err == nil:
		return false, nil
	case errors.As(err, &se):
		return false, errors.New(string(se))
	}
	return true, nil
}

func (pr *proc) work(args WorkArgs, alone bool) (WorkReply, error) {
	if args.Bulk && !alone {
		pr.bulk <- struct{}{}
		defer func() { <-pr.bulk }()
	}
	var reply WorkReply
	err := pr.call("Worker.Work", args, &reply, alone)
	return reply, err
}

// restart waits for the dead child, logs why it died (sizes and IDs, never
// content) and starts a new one. Caller holds pr.mu for writing. Once the
// pool is closed it does nothing: Close ends the children, each after its
// grace.
func (pr *proc) restart() {
	p := pr.pool
	if p.closed.Load() {
		return
	}
	c := pr.cur
	c.kill()
	<-c.exited
	c.host.Close()
	p.restarts.Add(1)
	if late := c.late.Load(); late != nil {
		attrs := append([]any{"worker", pr.index, "call", late.method, "deadline", p.cfg.CallTimeout}, late.attrs...)
		p.log.Error("CRDT worker killed: a call exceeded its deadline; restarting", attrs...)
	} else {
		p.log.Error("CRDT worker died; restarting", "worker", pr.index, "exit", c.cmd.ProcessState.String(), "cause", c.stderr.panicLine())
	}
	if err := pr.start(); err != nil && !errors.Is(err, ErrClosed) {
		p.log.Error("CRDT worker restart failed", "worker", pr.index, "err", err)
	}
}

func socketPair() (parent, child *os.File, err error) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("socketpair: %w", err)
	}
	return os.NewFile(uintptr(fds[0]), "parent"), os.NewFile(uintptr(fds[1]), "child"), nil
}

// tailBuffer keeps the last max bytes a child wrote to stderr, and the
// first panic line it saw: a Go panic's goroutine dump can run past max and
// push its own first line out.
type tailBuffer struct {
	mu    sync.Mutex
	buf   []byte
	max   int
	cause string
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if t.cause == "" {
		t.cause = findPanicLine(t.buf)
	}
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(b), nil
}

// panicLine returns the Rust or Go panic message, which names a source
// location and never document content.
func (t *tailBuffer) panicLine() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.cause == "" {
		return "unknown"
	}
	return t.cause
}

// findPanicLine returns the first line of b that starts a Rust or Go panic
// (cut to 200 bytes), or "".
func findPanicLine(b []byte) string {
	for _, line := range bytes.Split(b, []byte("\n")) {
		s := string(line)
		if strings.Contains(s, "panicked at") || strings.HasPrefix(s, "panic:") || strings.HasPrefix(s, "fatal error:") || strings.HasPrefix(s, "SIGABRT") || strings.HasPrefix(s, "SIGSEGV") {
			if len(s) > 200 {
				s = s[:200]
			}
			return s
		}
	}
	return ""
}

// hostService exposes Host to a child over net/rpc.
type hostService struct{ h Host }

func (s *hostService) LoadDoc(a DocArgs, r *DocReply) error {
	d, err := s.h.LoadDoc(a.Doc)
	if errors.Is(err, store.ErrNotFound) {
		r.NotFound = true
		return nil
	}
	r.Doc = d
	return err
}

func (s *hostService) AppendChunk(a AppendArgs, r *SeqReply) (err error) {
	ctx := context.Background()
	if a.FromCluster {
		ctx = FromCluster(ctx)
	}
	r.Seq, err = s.h.AppendChunk(ctx, a.Doc, a.Chunk)
	return err
}

func (s *hostService) Quarantine(a QuarantineArgs, _ *Empty) error {
	return s.h.Quarantine(context.Background(), a.Doc, a.Seq, a.Reason)
}

func (s *hostService) Compact(a CompactArgs, _ *Empty) error {
	return s.h.Compact(context.Background(), a.Doc, a.Snapshot, a.UpTo)
}

func (s *hostService) SyncState(a StateArgs, r *StateReply) error {
	st, err := s.h.SyncState(a.Storage, a.Doc)
	if errors.Is(err, store.ErrNotFound) {
		r.NotFound = true
		return nil
	}
	r.State = st
	return err
}

func (s *hostService) PutSyncState(a PutStateArgs, _ *Empty) error {
	return s.h.PutSyncState(context.Background(), a.Storage, a.Doc, a.State)
}

func (s *hostService) Provenance(a ProvenanceArgs, _ *Empty) error {
	s.h.Provenance(a.Doc, a.Actors)
	return nil
}

func (s *hostService) Trust(_ Empty, r *TrustReply) error {
	r.Anchor, r.Revocations, r.Version = s.h.Trust()
	return nil
}

func (s *hostService) Person(a PersonArgs, r *PersonReply) error {
	r.Rule, r.Detail = s.h.Person(a.Doc, a.Home, a.NHS)
	return nil
}

func (s *hostService) Writers(a WritersArgs, r *WritersReply) error {
	r.Writers = s.h.Writers(a.Doc, a.Peers)
	return nil
}

func (s *hostService) Admit(a AdmitArgs, _ *Empty) error {
	return s.h.Admit(context.Background(), a.Peer, a.Doc, a.Home)
}
