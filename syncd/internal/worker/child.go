package worker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/rpc"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/lowprio"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/shared/store"
	"haven/shared/syncer"
)

// Child file descriptors, as the parent passes them in ExtraFiles.
const (
	callFD = 3 // parent → child calls
	hostFD = 4 // child → parent calls
)

// RunChild serves the parent's calls until the parent closes the connection,
// then returns. syncd's main calls it for its hidden "worker" subcommand.
func RunChild(log *slog.Logger) error { return runChild(log, nil) }

// RunTestChild is RunChild for a test binary's child mode, calling onWork
// at the start of every work item: tests of the pool's deadlines make it
// block on a chosen document, as an item that sent Automerge into an
// endless loop would. Nothing in syncd calls it, so no message, flag or
// environment of a real relay reaches onWork.
func RunTestChild(log *slog.Logger, onWork func(WorkArgs)) error { return runChild(log, onWork) }

func runChild(log *slog.Logger, onWork func(WorkArgs)) error {
	call, err := net.FileConn(os.NewFile(callFD, "call"))
	if err != nil {
		return fmt.Errorf("worker: call socket: %w", err)
	}
	host, err := net.FileConn(os.NewFile(hostFD, "host"))
	if err != nil {
		return fmt.Errorf("worker: host socket: %w", err)
	}
	memory, _ := strconv.ParseInt(os.Getenv(docMemoryEnv), 10, 64)
	idle, _ := time.ParseDuration(os.Getenv(docIdleEnv))
	return serve(call, host, log, onWork, repo.Options{Logger: log, MaxBytes: memory / residentPerEstimated, IdleAfter: idle})
}

// docMemoryEnv carries Config.DocMemory to a child, in bytes, and
// docIdleEnv Config.DocIdle, as a Go duration.
const (
	docMemoryEnv = "HAVEN_SYNCD_WORKER_DOC_MEMORY"
	docIdleEnv   = "HAVEN_SYNCD_WORKER_DOC_IDLE"
)

// residentPerEstimated is how much of a child's resident memory each byte
// of documents its repo holds open, as the repo estimates them (the
// documents alone), stands for: three, so the repo gets a third of
// Config.DocMemory. With each document the child keeps its vetting guard
// and a sync state per peer, and malloc keeps memory freed but not yet
// returned. The documents of the calls in flight are within the repo's
// bound, and so is what loading one takes (a load waits for room beside
// them: repo.Repo.Hold); a new document a call builds is not, until it is
// stored. Besides, a child takes its runtime and its share of the binary,
// about 10 MiB of PSS idle.
const residentPerEstimated = 3

// serve serves the parent, holding documents open as opts bounds them.
// Every change is stored through the parent
// before the call that made it returns, so a document let go loses
// nothing: it is loaded again from the parent's store when next worked on.
func serve(call, host io.ReadWriteCloser, log *slog.Logger, onWork func(WorkArgs), opts repo.Options) error {
	hc := &hostClient{c: rpc.NewClient(host)}
	defer hc.c.Close()
	r := repo.New(hc, opts)
	defer r.Close()
	svc := &Worker{vet: newVetter(hc.c), onWork: onWork, repo: r}
	r.OnEvict(svc.vet.evicted)
	defer trimAfterEvictions(r)()
	svc.eng = syncer.New(r, syncer.Options{
		States:    hc,
		Check:     crdt.CheckSyncMessage,
		Vet:       svc.vet.vet,
		AckInSync: true,
		// A document let go and loaded again has its peers' states loaded
		// too, knowing only the heads each shared: without this, each
		// follower would hear of a change only after answering the relay.
		EagerChanges: true,
		Logger:       log,
		Admit: func(ctx context.Context, from syncer.Peer, id docid.ID, d *crdt.Doc) error {
			home, _, _ := d.Get("home")
			h, _ := home.(string)
			return hc.c.Call("Host.Admit", AdmitArgs{Peer: from, Doc: id.String(), Home: h}, &Empty{})
		},
	})
	svc.known = map[string]bool{}
	srv := rpc.NewServer()
	if err := srv.RegisterName("Worker", svc); err != nil {
		return err
	}
	// ServeConn returns once the parent has closed its end and every call in
	// flight has returned: one hung in Automerge keeps the child running
	// until the parent kills it.
	srv.ServeConn(call)
	return svc.eng.Flush(context.Background())
}

// trimEvery is how often a child that has evicted documents hands the
// memory they held back to the system (trimMalloc): the repo has the
// collector free them meanwhile (repo.Options.MaxBytes).
const trimEvery = 2 * time.Second

// trimAfterEvictions trims the C heap every trimEvery while r evicts
// documents, until the returned function is called.
func trimAfterEvictions(r *repo.Repo) (stop func()) {
	var evicted atomic.Int64
	r.OnEvict(func(docid.ID, *crdt.Doc) { evicted.Add(1) })
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(trimEvery)
		defer tick.Stop()
		var seen int64
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if n := evicted.Load(); n != seen {
					seen = n
					trimMalloc()
				}
			}
		}
	}()
	return func() { close(done) }
}

// Worker is the child's RPC service. net/rpc runs calls concurrently: the
// parent sends several at once, never two for one document, and the engine
// locks per document anyway.
type Worker struct {
	eng   *syncer.Engine
	vet   *vetter
	mu    sync.Mutex
	known map[string]bool // peers connected to the engine; guarded by mu
	repo  *repo.Repo      // the engine's documents, read by Describe
	// onWork, set only by RunTestChild, is called first in every Work.
	onWork func(WorkArgs)
}

// Work applies a work item; a bulk one at low priority (see WorkArgs.Bulk).
func (w *Worker) Work(args WorkArgs, reply *WorkReply) (err error) {
	if args.Bulk {
		lowprio.Run(func() { err = w.work(args, reply) })
		return err
	}
	return w.work(args, reply)
}

func (w *Worker) work(args WorkArgs, reply *WorkReply) error {
	if w.onWork != nil {
		w.onWork(args)
	}
	ctx := context.Background()
	w.vet.announce(args.TrustVersion)
	w.vet.setLimit(id0(args.Doc), args.StoredBytes, args.MaxDocBytes)
	defer w.vet.clearLimit(id0(args.Doc))
	w.mu.Lock()
	for _, p := range args.Peers {
		if !w.known[p.ID] {
			w.eng.Connect(p)
			w.known[p.ID] = true
		}
	}
	w.mu.Unlock()
	id, err := docid.Parse(args.Doc)
	if err != nil {
		return err
	}
	if args.Settled {
		// Before the document is held, which would load it.
		if done, err := w.eng.Settle(ctx, id, args.Msgs); err != nil || done {
			if done && len(args.Msgs) > 0 {
				reply.Heads, _ = crdt.AckedHeads(args.Msgs[0].Data)
			}
			return err
		}
	}
	// Held for the whole call, the record's facts read after the exchange
	// included: a load for another call, which evicts whatever nobody holds,
	// would otherwise take it between the two and load it again for the
	// facts. One not stored yet is not held; the engine creates it.
	held, release, err := w.repo.Hold(id)
	if err == nil {
		defer release()
	}
	var out []syncer.Out
	switch {
	case len(args.Chunks) > 0:
		out, err = w.absorb(ctx, id, args.Chunks, args.Notify)
	case len(args.Msgs) == 0:
		out, err = w.eng.Sync(ctx, id, args.Notify)
	default:
		out, err = w.eng.Receive(ctx, id, args.Msgs, args.Notify)
	}
	for _, o := range out {
		reply.Out = append(reply.Out, OutMsg{To: o.To, Doc: o.Doc.String(), Data: o.Data})
	}
	if len(args.Msgs) > 0 || len(args.Chunks) > 0 {
		reply.Record = w.recordFacts(id)
	}
	if held != nil {
		reply.Heads = held.Doc().Heads()
	}
	if err != nil {
		// A refused document was not stored, and a refused change to one
		// held reloaded it: its guard is built again when next needed.
		w.vet.forget(id)
	}
	var me *syncer.MessageError
	switch {
	case err == nil:
	case errors.Is(err, errUnloadable):
		reply.Failed = &Failure{Reason: err.Error()}
	case errors.Is(err, repo.ErrNotFound):
		reply.NotFound = true
	case errors.As(err, &me):
		reply.Failed = &Failure{Index: me.Index, Peer: me.Peer, Reason: me.Err.Error(), Refused: errors.Is(err, syncer.ErrRefused)}
		var re *record.RuleError
		if errors.As(err, &re) {
			reply.Failed.Rule, reply.Failed.Detail = re.Rule, re.Detail
		}
		reply.Failed.TooLarge = errors.Is(err, ErrTooLarge)
	default:
		return err
	}
	return nil
}

// recordFacts reads what a resident's record says about its sharing, nil
// for any other document (or one not held).
func (w *Worker) recordFacts(id docid.ID) *RecordFacts {
	h, err := w.repo.Open(id)
	if err != nil {
		return nil
	}
	doc := h.Doc()
	if t, _, _ := doc.Get("type"); t != "resident" {
		return nil
	}
	f := &RecordFacts{}
	if v, _, _ := doc.Get("identity", "consentWithdrawn"); v == true {
		f.Withdrawn = true
	}
	if v, _, _ := doc.Get("timeline"); v != nil {
		f.Timeline, _ = v.(string)
	}
	f.NHS = record.NHSNumberOf(doc)
	f.Home = record.CurrentHome(doc, nil)
	return f
}

func id0(s string) docid.ID {
	id, _ := docid.Parse(s)
	return id
}

// Ping answers, so the parent knows the child is alive before a replay.
func (w *Worker) Ping(_ Empty, _ *Empty) error { return nil }

// Usage reports the documents the child holds open and their estimated
// memory (repo.Repo.Usage).
func (w *Worker) Usage(_ Empty, reply *UsageReply) error {
	reply.Docs, reply.Bytes = w.repo.Usage()
	return nil
}

// Forget drops a peer, returning its dirty sync states for the parent to save.
func (w *Worker) Forget(args ForgetArgs, reply *StatesReply) error {
	w.mu.Lock()
	delete(w.known, args.Peer)
	w.mu.Unlock()
	reply.States = w.eng.TakeDirty(args.Peer)
	w.eng.Forget(args.Peer)
	return nil
}

// Flush returns every dirty sync state for the parent to save.
func (w *Worker) Flush(_ Empty, reply *StatesReply) error {
	reply.States = w.eng.TakeDirty("")
	return nil
}

// hostClient implements repo.Storage and syncer.StateStore by calling the
// parent, translating "not found" back into store.ErrNotFound.
type hostClient struct{ c *rpc.Client }

func (h *hostClient) LoadDoc(docID string) (store.Doc, error) {
	var r DocReply
	if err := h.c.Call("Host.LoadDoc", DocArgs{Doc: docID}, &r); err != nil {
		return store.Doc{}, err
	}
	if r.NotFound {
		return store.Doc{}, store.ErrNotFound
	}
	return r.Doc, nil
}

func (h *hostClient) AppendChunk(ctx context.Context, docID string, chunk []byte) (uint64, error) {
	var r SeqReply
	err := h.c.Call("Host.AppendChunk", AppendArgs{Doc: docID, Chunk: chunk, FromCluster: IsFromCluster(ctx)}, &r)
	return r.Seq, err
}

func (h *hostClient) Quarantine(_ context.Context, docID string, seq uint64, reason string) error {
	return h.c.Call("Host.Quarantine", QuarantineArgs{Doc: docID, Seq: seq, Reason: reason}, &Empty{})
}

func (h *hostClient) Compact(_ context.Context, docID string, snapshot []byte, upTo uint64) error {
	return h.c.Call("Host.Compact", CompactArgs{Doc: docID, Snapshot: snapshot, UpTo: upTo}, &Empty{})
}

func (h *hostClient) SyncState(storageID, docID string) ([]byte, error) {
	var r StateReply
	if err := h.c.Call("Host.SyncState", StateArgs{Storage: storageID, Doc: docID}, &r); err != nil {
		return nil, err
	}
	if r.NotFound {
		return nil, store.ErrNotFound
	}
	return r.State, nil
}

func (h *hostClient) PutSyncState(_ context.Context, storageID, docID string, state []byte) error {
	return h.c.Call("Host.PutSyncState", PutStateArgs{Storage: storageID, Doc: docID, State: state}, &Empty{})
}
