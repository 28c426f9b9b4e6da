// Package cluster joins syncd nodes into one relay over NATS JetStream,
// embedded in the process: this package is the one adapter to NATS, and the
// only code in syncd that imports it.
//
// Every relay runs a node. Alone (no cluster name) it is a JetStream server
// of its own with nothing listening: the relay reaches it through an
// in-process connection. In a cluster, nodes dial each other's route
// address and JetStream keeps what they publish at replication 3.
//
// Three things travel, each at the cluster's replication:
//
//   - each document change the relay stores: one stream, HAVEN_DOCS, one
//     subject per document (haven.doc.<id>). Publish returns once JetStream
//     holds the change, and only then does the relay keep its own copy and
//     answer the device; Follow hands every change another node published
//     to the relay, in stream order, so each node's store is a cache that
//     catches up from the stream, an empty one from its beginning;
//   - the registry (organisations, devices, certificates, reviews): a
//     key-value bucket, haven-registry, holding the registry's own store
//     keys and values (registry.go);
//   - the audit log: a stream, HAVEN_AUDIT, one subject per organisation,
//     that every node copies into its own chain (registry.go).
package cluster

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"haven/shared/store"
)

const (
	// DocStream holds every document change; subjects are docSubject+ID.
	DocStream  = "HAVEN_DOCS"
	docSubject = "haven.doc."
	// routeTLSTimeout bounds a route's TLS handshake: a peer on the same
	// private network answers in milliseconds.
	routeTLSTimeout = 5 * time.Second
	// routeUser is the user a node's routes to the others authenticate as
	// (with a password derived from Config.RouteSecret).
	routeUser = "haven-route"
	// ownerHeader names the organisation owning the document, for a node
	// that has not seen it before (the relay's scope check needs it).
	ownerHeader = "Haven-Owner"

	// ClusterReplicas is the replication of the streams in a cluster: a
	// change is acknowledged once two of three nodes hold it, and the
	// cluster keeps every change through the loss of any one node.
	ClusterReplicas = 3

	// maxPayload bounds one message: the largest chunk the store takes,
	// and room for headers.
	maxPayload = store.MaxValueSize + 64<<10

	// publishBudget is the longest Publish waits for JetStream, retries
	// included: long enough to ride out the election that follows a node's
	// loss (a few seconds), and well inside the CRDT worker's call
	// deadline, which it is part of.
	publishBudget = 10 * time.Second

	// markEvery is how often, at most, the follower records how far it has
	// applied the stream. Applying is idempotent, so after a crash at most
	// this much is applied again.
	markEvery = time.Second
	// metaPoll is how often a starting node looks whether the cluster has
	// a JetStream leader yet (an election takes seconds).
	metaPoll = 20 * time.Millisecond
	// apiAttempt is how long a node waits for one answer of JetStream's
	// API (or one acknowledgement) before asking again: an answer within
	// the cluster takes milliseconds, and one lost (a stream between
	// leaders) is asked for again sooner.
	apiAttempt = 2 * time.Second
	marksNS    = "cluster-mark"
)

// Config starts a Node.
type Config struct {
	// Dir holds JetStream's files: a folder inside the relay's data folder.
	Dir string
	// Key is the relay's store key; JetStream encrypts its files at rest
	// with a key derived from it.
	Key []byte
	// Name is the cluster's name; "" runs this node alone.
	Name string
	// Node is this node's name, unique in the cluster (default: its
	// route address).
	Node string
	// Listen is the host:port this node takes routes from other nodes on.
	Listen string
	// Peers are the other nodes' Listen addresses (listing this node's
	// own too is harmless).
	Peers []string
	// RouteSecret is a secret every node of the cluster holds, and nothing
	// else: a route, whichever node dials, is taken only with a password
	// derived from it. Needed with Name: a process that reached a node's
	// route port without it could otherwise join the cluster, read every
	// record published and publish changes the nodes store unvetted.
	RouteSecret []byte
	// RouteTLS, if set, makes every route between nodes mutual TLS: each
	// side presents its certificate and verifies the other's against the
	// configuration's roots (RootCAs as the dialling side, ClientCAs as
	// the accepting one), so the changes and registry entries the nodes
	// exchange never cross the network in the clear.
	RouteTLS *tls.Config
	// Logger gets the server's warnings and errors, and the follower's
	// progress: IDs and sizes, never content. Nil discards.
	Logger *slog.Logger
	// AuditFirstSeq, if set, gives the first sequence of the audit stream
	// when this node is the one that creates it: one past the highest
	// audit sequence in this node's store, so an audit log kept before the
	// stream existed keeps its numbers and the stream's never meet them.
	// Called at most once, only when the stream does not exist yet.
	AuditFirstSeq func() (uint64, error)
}

// Node is this process's member of the cluster.
type Node struct {
	cfg Config
	log *slog.Logger
	ns  *server.Server
	js  jetstream.JetStream
	// auditJS carries the audit stream (its publications, its
	// acknowledgements and the copy this node follows) on a connection of
	// its own. A connection's messages are handled in order, so on one
	// shared with the documents' a device's permitted burst of thousands
	// of audit events would go before every edit sent after it.
	auditJS  jetstream.JetStream
	registry jetstream.KeyValue
	replicas int

	// instance tells this process's publications from those of another
	// process, this node's before a restart included; seq numbers them.
	instance string
	seq      atomic.Uint64

	// auditFirst is cfg.AuditFirstSeq's answer, once asked.
	auditFirst uint64

	mu  sync.Mutex
	own map[string]*published // message ID → this process's publication not yet followed past

	stopFollow context.CancelFunc // ends Follow, FollowAudit and WatchRegistry; nil before any; guarded by mu
	// progress is how far this node has applied each stream it follows
	// (Progress), by stream name; written only by that stream's follower.
	progress map[string]*atomic.Uint64
	// docsMoved is closed, and replaced, each time the document stream's
	// progress moves (CaughtUp waits on it); guarded by mu.
	docsMoved chan struct{}
	following sync.WaitGroup
	closeOnce sync.Once
}

// published is one of this process's publications. kept is written
// before done closes and read only after.
type published struct {
	done chan struct{}
	kept bool // this node's own copy was stored
}

// Open starts the node and waits until JetStream is ready and the streams
// exist: in a cluster, until enough peers are up to elect a leader, which
// may take as long as the other nodes take to start. It gives up when ctx
// ends.
func Open(ctx context.Context, cfg Config) (*Node, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts, err := serverOptions(cfg)
	if err != nil {
		return nil, err
	}
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	ns.SetLoggerV2(natsLogger{log}, false, false, false)
	ns.Start()
	n := &Node{cfg: cfg, log: log, ns: ns, replicas: 1, own: map[string]*published{}, progress: map[string]*atomic.Uint64{},
		docsMoved: make(chan struct{})}
	for _, s := range followedStreams {
		n.progress[s] = new(atomic.Uint64)
	}
	if cfg.Name != "" {
		n.replicas = ClusterReplicas
	}
	var raw [8]byte
	binary.BigEndian.PutUint64(raw[:], uint64(time.Now().UnixNano()))
	n.instance = opts.ServerName + "-" + hex.EncodeToString(raw[:])
	if !ns.ReadyForConnections(30 * time.Second) {
		ns.Shutdown()
		return nil, errors.New("cluster: the embedded NATS server did not start")
	}
	connect := func(name string) (jetstream.JetStream, error) {
		nc, err := nats.Connect("", nats.InProcessServer(ns), nats.UserInfo(opts.Username, opts.Password),
			nats.Name(name), nats.MaxReconnects(-1))
		if err != nil {
			return nil, fmt.Errorf("cluster: connect: %w", err)
		}
		js, err := jetstream.New(nc)
		if err != nil {
			nc.Close()
			return nil, fmt.Errorf("cluster: %w", err)
		}
		return js, nil
	}
	if n.js, err = connect("syncd " + opts.ServerName); err == nil {
		n.auditJS, err = connect("syncd audit " + opts.ServerName)
	}
	if err == nil {
		err = n.ensureStreams(ctx)
	}
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// serverOptions are the embedded server's: JetStream encrypted under the
// data folder; alone, no port at all (the relay connects in-process); in a
// cluster, routes on cfg.Listen to cfg.Peers. The relay's connection
// carries a password made afresh at each start, which nothing else knows.
func serverOptions(cfg Config) (*server.Options, error) {
	if len(cfg.Key) == 0 {
		return nil, errors.New("cluster: no key to encrypt JetStream's files with")
	}
	// A key of its own, so JetStream's files and the store never share
	// one; derived, so there is no third secret to keep.
	k := sha256.Sum256(append([]byte("haven jetstream "), cfg.Key...))
	var password [16]byte
	rand.Read(password[:])
	opts := &server.Options{
		Username:           "syncd",
		Password:           hex.EncodeToString(password[:]),
		ServerName:         cfg.Node,
		DontListen:         true,
		NoSigs:             true,
		MaxPayload:         maxPayload,
		JetStream:          true,
		StoreDir:           cfg.Dir,
		JetStreamMaxMemory: 64 << 20,
		JetStreamKey:       hex.EncodeToString(k[:]),
		JetStreamCipher:    server.AES,
	}
	if cfg.Name == "" {
		if opts.ServerName == "" {
			opts.ServerName = "syncd"
		}
		return opts, nil
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil || port <= 0 {
		return nil, fmt.Errorf("cluster: listen address %q is not host:port", cfg.Listen)
	}
	if opts.ServerName == "" {
		opts.ServerName = cfg.Listen
	}
	if len(cfg.RouteSecret) == 0 {
		return nil, errors.New("cluster: no secret for the routes between nodes")
	}
	routePassword := sha256.Sum256(append([]byte("haven cluster route "), cfg.RouteSecret...))
	route := url.UserPassword(routeUser, hex.EncodeToString(routePassword[:]))
	opts.Cluster = server.ClusterOpts{Name: cfg.Name, Host: host, Port: port, Username: route.Username()}
	opts.Cluster.Password, _ = route.Password()
	if cfg.RouteTLS != nil {
		opts.Cluster.TLSConfig, opts.Cluster.TLSTimeout = cfg.RouteTLS, routeTLSTimeout.Seconds()
	}
	// The server starts its routes only once its client port listens
	// (nats-server 2.15 waits for it even with DontListen, for ever): it
	// listens on a loopback port of the kernel's choosing, behind the
	// password.
	opts.DontListen, opts.Host, opts.Port = false, "127.0.0.1", server.RANDOM_PORT
	var routes []string
	for _, p := range cfg.Peers {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		if _, _, err := net.SplitHostPort(p); err != nil {
			return nil, fmt.Errorf("cluster: peer %q is not host:port", p)
		}
		routes = append(routes, (&url.URL{Scheme: "nats", User: route, Host: p}).String())
	}
	if len(routes) == 0 {
		return nil, errors.New("cluster: name the other nodes' addresses")
	}
	opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
	return opts, nil
}

// ensureStreams makes sure the streams and the bucket exist as this node
// expects, retrying until JetStream answers: in a cluster it cannot until
// a quorum of nodes has elected a leader.
//
// Only JetStream's meta leader creates or changes them; the other nodes
// look until they are there. A node asking to create a stream that exists,
// or that another node's request is creating at that moment, has its
// request proposed again, and that proposal's answer can be lost: the
// asking node waited out its whole timeout, and a consumer another node
// asked for meanwhile went unanswered for as long (10 s in nats.go), so a
// cluster's first start or a node's restart took 5 to 15 s longer.
func (n *Node) ensureStreams(ctx context.Context) error {
	// Until the nodes have elected JetStream's meta leader, a request to
	// its API goes unanswered and an attempt waits out its whole timeout;
	// asking only once this node follows a leader saves that wait.
	for !n.ns.JetStreamIsCurrent() {
		if !wait(ctx, metaPoll) {
			return fmt.Errorf("cluster: no JetStream leader: %w", ctx.Err())
		}
	}
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, apiAttempt)
		err := n.ensureStreamsOnce(actx)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cluster: streams not ready: %w", err)
		}
		if attempt%10 == 9 {
			n.log.Warn("waiting for the cluster's other nodes", "cluster", n.cfg.Name, "err", err)
		}
		if !wait(ctx, min(backoff(attempt), 500*time.Millisecond)) {
			return fmt.Errorf("cluster: streams not ready: %w", err)
		}
	}
}

// errNotMadeYet: a stream or the bucket does not exist yet, and this node
// leaves making it to the meta leader.
var errNotMadeYet = errors.New("cluster: waiting for the meta leader to make the streams")

// maker reports whether this node creates and changes the streams: it
// runs alone, or it is JetStream's meta leader.
func (n *Node) maker() bool {
	return !n.ns.JetStreamIsClustered() || n.ns.JetStreamIsLeader()
}

// ensureStreamsOnce is one attempt of ensureStreams.
func (n *Node) ensureStreamsOnce(ctx context.Context) error {
	if err := n.ensureStream(ctx, n.streamConfig(DocStream, docSubject, maxPayload), nil); err != nil {
		return err
	}
	kvc := jetstream.KeyValueConfig{Bucket: RegistryBucket, History: 1, Storage: jetstream.FileStorage, Replicas: n.replicas,
		MaxValueSize: maxRegistryValue}
	kv, err := n.js.KeyValue(ctx, RegistryBucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound) && n.maker():
		if kv, err = n.js.CreateKeyValue(ctx, kvc); errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = n.js.KeyValue(ctx, RegistryBucket)
		}
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return errNotMadeYet
	case err == nil && n.maker():
		// Made by an earlier version, or by a relay run alone that is now
		// a cluster's node: brought to this version's replication and
		// value limit.
		var st jetstream.KeyValueStatus
		if st, err = kv.Status(ctx); err == nil {
			if have := st.Config(); have.Replicas != kvc.Replicas || have.MaxValueSize != kvc.MaxValueSize {
				kv, err = n.js.UpdateKeyValue(ctx, kvc)
			}
		}
	}
	if err != nil {
		return err
	}
	n.registry = kv
	return n.ensureAuditStream(ctx)
}

// ensureStream makes sure the stream cfg names exists with cfg's subjects,
// limits and replication (see ensureStreams for who makes it). made, if
// not nil, completes cfg before the stream is made.
func (n *Node) ensureStream(ctx context.Context, cfg jetstream.StreamConfig, made func(*jetstream.StreamConfig) error) error {
	s, err := n.js.Stream(ctx, cfg.Name)
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound) && n.maker():
		if made != nil {
			if err := made(&cfg); err != nil {
				return err
			}
		}
		if _, err = n.js.CreateStream(ctx, cfg); errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil // another node made it first: its numbers hold
		}
		return err
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return errNotMadeYet
	case err != nil:
		return err
	}
	have := s.CachedInfo().Config
	if !n.maker() || (slices.Equal(have.Subjects, cfg.Subjects) && have.Replicas == cfg.Replicas &&
		have.MaxMsgSize == cfg.MaxMsgSize && have.Duplicates == cfg.Duplicates) {
		return nil
	}
	cfg.FirstSeq = have.FirstSeq // set only as it was made
	_, err = n.js.UpdateStream(ctx, cfg)
	return err
}

// streamConfig is the configuration of a stream of this node's cluster:
// on disk, at the cluster's replication, one subject per token after
// prefix, and a retry of a publication within two minutes stored once.
func (n *Node) streamConfig(name, prefix string, maxMsg int32) jetstream.StreamConfig {
	return jetstream.StreamConfig{
		Name:       name,
		Subjects:   []string{prefix + "*"},
		Storage:    jetstream.FileStorage,
		Retention:  jetstream.LimitsPolicy,
		Replicas:   n.replicas,
		MaxMsgSize: maxMsg,
		Duplicates: 2 * time.Minute,
	}
}

// Replicas is how many nodes hold each change before it is acknowledged.
func (n *Node) Replicas() int { return n.replicas }

// validDoc accepts a document ID as one subject token: letters and digits
// (document IDs are base58), nothing NATS would read as a separator or
// wildcard.
func validDoc(doc string) bool {
	if doc == "" || len(doc) > 128 {
		return false
	}
	for _, c := range doc {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// Publish has the cluster hold chunk, a change to doc (owned by owner),
// and then runs keep, which stores this node's own copy. It returns nil
// only when both succeeded: the change is then held at the cluster's
// replication, so the loss of this node loses nothing acknowledged. On an
// error nothing may be acknowledged; the change may still have reached
// the stream (an acknowledgement lost on the way), and is then applied
// here by Follow like another node's.
//
// Follow does not hand back a publication whose keep succeeded: the
// change is this node's already.
func (n *Node) Publish(ctx context.Context, doc, owner string, chunk []byte, keep func() error) error {
	if !validDoc(doc) {
		return fmt.Errorf("cluster: document ID %q cannot be a subject", doc)
	}
	id := n.instance + "-" + strconv.FormatUint(n.seq.Add(1), 10)
	p := &published{done: make(chan struct{})}
	n.mu.Lock()
	n.own[id] = p
	n.mu.Unlock()
	defer close(p.done)

	msg := &nats.Msg{Subject: docSubject + doc, Data: chunk, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, id) // a retry is stored once
	msg.Header.Set(ownerHeader, owner)
	ctx, cancel := context.WithTimeout(ctx, publishBudget)
	defer cancel()
	if _, err := publishUntil(ctx, n.js, msg, nil, jetstream.WithExpectStream(DocStream)); err != nil {
		n.mu.Lock()
		delete(n.own, id)
		n.mu.Unlock()
		return fmt.Errorf("cluster: change to %s not held by the cluster: %w", doc, err)
	}
	err := keep()
	p.kept = err == nil
	return err
}

// publishUntil publishes msg on js until the stream acknowledges it, final
// accepts the error (returned as it is), or ctx ends. Each attempt waits
// at most apiAttempt for its acknowledgement: a publication made while the
// stream has no leader (an election after a node died) is never answered,
// and waiting out the whole budget on it kept a change unacknowledged for
// seconds after the new leader was there. msg's ID makes every attempt the
// same publication.
func publishUntil(ctx context.Context, js jetstream.JetStream, msg *nats.Msg, final func(error) bool, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, apiAttempt)
		ack, err := js.PublishMsg(actx, msg, opts...)
		cancel()
		if err == nil || final != nil && final(err) {
			return ack, err
		}
		if !wait(ctx, backoff(attempt)) {
			return nil, err
		}
	}
}

// Change is a document change another node published.
type Change struct {
	Seq   uint64 // its position in the stream
	Doc   string
	Owner string
	Chunk []byte
}

// Marks keeps how far this node has applied the stream; *store.Store
// implements it. Keeping the mark in the relay's own store keeps it true
// of that store: a node started on an empty store starts from the stream's
// beginning.
type Marks interface {
	Get(ns, key string) ([]byte, error)
	Put(ctx context.Context, ns, key string, val []byte) error
}

// Follow hands apply every change in the stream this node did not store
// itself, in stream order, from just after the mark in marks, until
// StopFollowing or Close. A change apply fails is retried (with a growing
// pause) until it succeeds or following stops, and the mark never passes
// a change not applied: apply must therefore be idempotent (applying
// Automerge changes twice is) and return nil for a change it cannot ever
// apply, after reporting it. Call Follow once.
func (n *Node) Follow(marks Marks, apply func(context.Context, Change) error) {
	ctx := n.followContext()
	n.following.Go(func() {
		n.follow(ctx, marks, feed{stream: DocStream, js: n.js, filter: docSubject + "*", skipOwn: true, batch: 1,
			handle: func(ctx context.Context, msgs []followed) bool {
				msg, seq := msgs[0].msg, msgs[0].seq
				c := Change{Seq: seq, Doc: strings.TrimPrefix(msg.Subject(), docSubject),
					Owner: msg.Headers().Get(ownerHeader), Chunk: msg.Data()}
				return retry(ctx, n.log, "applying a change from another node", func() error { return apply(ctx, c) },
					"doc", c.Doc, "seq", c.Seq, "bytes", len(c.Chunk))
			}})
	})
}

// feed is a stream a node follows into its store.
type feed struct {
	stream, filter string
	// js is the connection the stream is followed on (Node.js or auditJS).
	js jetstream.JetStream
	// skipOwn: a publication of this process whose own copy was kept is
	// not handed over (see Publish).
	skipOwn bool
	// batch is the most messages handed over at once: those the stream
	// already holds, in order, and those that follow within linger, so a
	// burst is applied in one write.
	batch  int
	linger time.Duration
	// handle applies msgs, retrying until it succeeds; false if following
	// stopped first (the mark then stays before them).
	handle func(ctx context.Context, msgs []followed) bool
}

// followed is one message a feed hands over, with its stream sequence.
type followed struct {
	msg jetstream.Msg
	seq uint64
}

// followContext is a context StopFollowing ends.
func (n *Node) followContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	n.mu.Lock()
	defer n.mu.Unlock()
	if prev := n.stopFollow; prev != nil {
		n.stopFollow = func() { prev(); cancel() }
	} else {
		n.stopFollow = cancel
	}
	return ctx
}

// StopFollowing stops Follow, FollowAudit and WatchRegistry and waits for
// them: no apply is running or starts after it returns, and the marks are
// saved.
func (n *Node) StopFollowing() {
	n.mu.Lock()
	stop := n.stopFollow
	n.mu.Unlock()
	if stop != nil {
		stop()
	}
	n.following.Wait()
}

// follow hands f.handle every message of f's stream from just after the
// mark in marks (kept under the stream's name), in stream order, until ctx
// ends; the mark never passes a message not handled.
func (n *Node) follow(ctx context.Context, marks Marks, f feed) {
	key := f.stream
	var from uint64
	switch b, err := marks.Get(marksNS, key); {
	case err == nil && len(b) == 8:
		from = binary.BigEndian.Uint64(b)
	case err != nil && !errors.Is(err, store.ErrNotFound):
		// Starting over costs time, not correctness: applying is idempotent.
		n.log.Error("reading how far this node applied the cluster's stream; starting from the beginning", "stream", f.stream, "err", err)
	}
	n.advance(f.stream, from)
	saved, savedAt := from, time.Now()
	save := func() {
		if saved == from {
			return
		}
		if err := marks.Put(context.WithoutCancel(ctx), marksNS, key, binary.BigEndian.AppendUint64(nil, from)); err != nil {
			n.log.Warn("recording how far this node applied the cluster's stream", "stream", f.stream, "err", err)
			return
		}
		saved, savedAt = from, time.Now()
	}
	defer save()
	n.log.Info("following the cluster's stream", "stream", f.stream, "from", from+1)
	for attempt := 0; ctx.Err() == nil; attempt++ {
		cc := jetstream.OrderedConsumerConfig{FilterSubjects: []string{f.filter}}
		if from > 0 {
			cc.DeliverPolicy, cc.OptStartSeq = jetstream.DeliverByStartSequencePolicy, from+1
		}
		// Asked again after apiAttempt: while the stream has no leader the
		// request goes unanswered, and nats.go would wait 5 s.
		actx, cancel := context.WithTimeout(ctx, apiAttempt)
		cons, err := f.js.OrderedConsumer(actx, f.stream, cc)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				n.log.Warn("following the cluster's stream", "stream", f.stream, "err", err)
			}
			wait(ctx, backoff(attempt))
			continue
		}
		it, err := cons.Messages()
		if err != nil {
			n.log.Warn("following the cluster's stream", "stream", f.stream, "err", err)
			wait(ctx, backoff(attempt))
			continue
		}
		unblock := context.AfterFunc(ctx, it.Stop) // Next returns once following stops
		// batch holds messages after from, not handed over yet; last is
		// the last message read, perhaps one not handed over (skipped).
		var batch []followed
		last := from
		// handOver hands the batch over and moves the mark past it; false
		// if following stopped first.
		handOver := func() bool {
			if len(batch) > 0 && !f.handle(ctx, batch) {
				return false
			}
			batch, from = batch[:0], last
			n.advance(f.stream, from)
			if time.Since(savedAt) >= markEvery {
				save()
			}
			return true
		}
		for {
			var opts []jetstream.NextOpt
			if len(batch) > 0 {
				opts = append(opts, jetstream.NextMaxWait(f.linger))
			}
			msg, err := it.Next(opts...)
			if errors.Is(err, nats.ErrTimeout) {
				if !handOver() {
					break
				}
				continue
			}
			if err != nil {
				if ctx.Err() == nil && !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					n.log.Warn("following the cluster's stream", "stream", f.stream, "err", err)
				}
				break
			}
			attempt = 0
			meta, err := msg.Metadata()
			if err != nil || meta.Sequence.Stream <= last {
				continue // not a stream message, or one applied before a restart of the consumer
			}
			last = meta.Sequence.Stream
			if !(f.skipOwn && n.applied(ctx, msg)) {
				batch = append(batch, followed{msg, last})
			}
			if len(batch) > 0 && len(batch) < f.batch && (meta.NumPending > 0 || f.linger > 0) {
				continue // more in the stream, or perhaps on its way: handed over together
			}
			if !handOver() {
				break
			}
		}
		unblock()
		it.Stop()
	}
}

// applied reports whether msg is a publication of this process whose own
// copy was kept, waiting for Publish to know.
func (n *Node) applied(ctx context.Context, msg jetstream.Msg) bool {
	id := msg.Headers().Get(jetstream.MsgIDHeader)
	n.mu.Lock()
	p := n.own[id]
	delete(n.own, id)
	n.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return p.kept
	case <-ctx.Done():
		return false
	}
}

// followedStreams are the streams a node follows into its own store.
var followedStreams = []string{DocStream, AuditStream, registryStream}

// StreamProgress is how far a node has applied one stream of the cluster.
type StreamProgress struct {
	Stream string
	// Applied is the last sequence this node has applied, its own
	// publications included (0: none yet).
	Applied uint64
	// Last is the stream's last sequence as the cluster holds it; 0 with
	// Known false when the cluster did not say (no leader just now).
	Last  uint64
	Known bool
}

// Progress reports, for each stream a node follows, how far it has
// applied it and how far the cluster holds it. A node whose Applied stays
// behind Last serves devices connected to it an older state of what the
// other nodes took: an operator's first question about a node whose
// devices do not see their colleagues' work. Each stream's last sequence
// is asked of the cluster (lastSeq).
func (n *Node) Progress(ctx context.Context) []StreamProgress {
	out := make([]StreamProgress, 0, len(followedStreams))
	for _, name := range followedStreams {
		p := StreamProgress{Stream: name, Applied: n.progress[name].Load()}
		last, err := n.lastSeq(ctx, name)
		p.Last, p.Known = last, err == nil
		out = append(out, p)
	}
	return out
}

// lastSeq asks the cluster for a stream's last sequence, waiting at most
// apiAttempt: a stream with no leader just now does not answer.
func (n *Node) lastSeq(ctx context.Context, stream string) (uint64, error) {
	actx, cancel := context.WithTimeout(ctx, apiAttempt)
	defer cancel()
	s, err := n.js.Stream(actx, stream)
	if err != nil {
		return 0, err
	}
	info, err := s.Info(actx)
	if err != nil {
		return 0, err
	}
	return info.State.LastSeq, nil
}

// advance records that this node has applied stream up to seq.
func (n *Node) advance(stream string, seq uint64) {
	n.progress[stream].Store(seq)
	if stream != DocStream {
		return
	}
	n.mu.Lock()
	close(n.docsMoved)
	n.docsMoved = make(chan struct{})
	n.mu.Unlock()
}

// CaughtUp waits until this node has applied the document stream as far
// as the cluster held it when asked, and reports whether it did before
// ctx ended. False also when the cluster does not say how far it holds
// the stream (no leader just now: a node cut off from the others).
func (n *Node) CaughtUp(ctx context.Context) bool {
	last, err := n.lastSeq(ctx, DocStream)
	if err != nil {
		return false
	}
	for {
		n.mu.Lock()
		moved := n.docsMoved
		n.mu.Unlock()
		if n.progress[DocStream].Load() >= last {
			return true
		}
		select {
		case <-moved:
		case <-ctx.Done():
			return false
		}
	}
}

// retry runs apply until it succeeds; false if ctx ended first. Each
// failure is logged as what, with args (IDs and sizes).
func retry(ctx context.Context, log *slog.Logger, what string, apply func() error, args ...any) bool {
	for attempt := 0; ; attempt++ {
		err := apply()
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		log.Warn(what+"; will retry", append(args, "attempt", attempt+1, "err", err)...)
		if !wait(ctx, backoff(attempt)) {
			return false
		}
	}
}

// Close stops following, then the node: in a cluster the others carry on
// without it. Call it after the relay stops publishing, before the store
// that holds the marks closes.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		n.StopFollowing()
		for _, js := range []jetstream.JetStream{n.js, n.auditJS} {
			if js != nil {
				js.Conn().Close()
			}
		}
		n.ns.Shutdown()
		n.ns.WaitForShutdown()
	})
	return nil
}

// backoff is the pause before retry attempt+1: 50 ms doubling to 2 s.
func backoff(attempt int) time.Duration {
	return min(50*time.Millisecond<<min(attempt, 6), 2*time.Second)
}

// wait pauses for d; false if ctx ended first.
func wait(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// natsLogger passes the embedded server's warnings and errors to slog; its
// notices (startup banners, routes made) are debug lines, and so are the
// warnings about choices made here on purpose (expected).
type natsLogger struct{ l *slog.Logger }

// expected are the starts of the server's warnings about this package's
// own settings: the relay's password is made afresh in memory at each
// start and never leaves the process, and a payload must hold the largest
// chunk the store takes.
var expected = []string{"Plaintext passwords detected", "Maximum payloads over"}

func (g natsLogger) Noticef(f string, v ...any) { g.l.Debug("nats: " + fmt.Sprintf(f, v...)) }
func (g natsLogger) Warnf(f string, v ...any) {
	msg := fmt.Sprintf(f, v...)
	for _, e := range expected {
		if strings.HasPrefix(msg, e) {
			g.l.Debug("nats: " + msg)
			return
		}
	}
	g.l.Warn("nats: " + msg)
}

func (g natsLogger) Errorf(f string, v ...any) { g.l.Error("nats: " + fmt.Sprintf(f, v...)) }
func (g natsLogger) Fatalf(f string, v ...any) { g.l.Error("nats: " + fmt.Sprintf(f, v...)) }
func (g natsLogger) Debugf(f string, v ...any) { g.l.Debug("nats: " + fmt.Sprintf(f, v...)) }
func (g natsLogger) Tracef(f string, v ...any) { g.l.Debug("nats: " + fmt.Sprintf(f, v...)) }
