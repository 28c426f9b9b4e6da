package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"haven/shared/store"
	"haven/syncd/internal/admin"
	"haven/syncd/internal/cluster"
	"haven/syncd/internal/orgs"
	"haven/syncd/internal/relay"
	"haven/syncd/internal/worker"
)

// config is what every subcommand shares. Each flag has an environment
// variable, and every default is safe: loopback only, data under the user's
// home, a fresh random key on first run.
type config struct {
	data    string
	keyFile string
	// signingKeyFile holds the organisation signing key (see signingKey).
	signingKeyFile string
	listen         string
	tlsCert        string
	tlsKey         string
	workers        int
	workerTimeout  time.Duration
	docMemory      int64
	docIdle        time.Duration
	maxConns       int
	limits         relay.Limits
	logLevel       string
	cluster        clusterFlags
}

func defaultDataDir() string {
	if d := os.Getenv("XDG_DATA_HOME"); d != "" {
		return filepath.Join(d, "haven", "syncd")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "haven-syncd")
	}
	return filepath.Join(home, ".local", "share", "haven", "syncd")
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// defaultWorkers is one CRDT worker process per CPU, and at least two so
// that a message that crashes one leaves another serving while it restarts.
// Automerge work is CPU-bound: more workers than CPUs only add context
// switches and memory (on 2 CPUs, at 8 edits/s from 20 clients, 4 workers
// gave a p99 of 2.2 s and a peak of 382 MiB; 2 workers 536 ms and 217 MiB).
func defaultWorkers() int { return max(2, runtime.NumCPU()) }

// durationEnv is a Go duration environment variable, or def.
func durationEnv(name string, def time.Duration) time.Duration {
	if v, err := time.ParseDuration(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

// intEnv is an integer environment variable, or def.
func intEnv(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil {
		return v
	}
	return def
}

func (c *config) flags(fs *flag.FlagSet) {
	fs.StringVar(&c.data, "data", env("HAVEN_SYNCD_DATA", defaultDataDir()), "data folder (HAVEN_SYNCD_DATA)")
	fs.StringVar(&c.keyFile, "key-file", env("HAVEN_SYNCD_KEY_FILE", ""), "file holding the 32-byte store key in hex; default: beside the data folder, created on first run (HAVEN_SYNCD_KEY_FILE)")
	fs.StringVar(&c.signingKeyFile, "signing-key-file", env("HAVEN_SYNCD_SIGNING_KEY_FILE", ""), "file holding the organisation signing key (Ed25519 seed, 64 hex digits) that certifies staff; default: beside the data folder, created on first run (HAVEN_SYNCD_SIGNING_KEY_FILE)")
	fs.StringVar(&c.listen, "listen", env("HAVEN_SYNCD_LISTEN", "127.0.0.1:8450"), "address to serve on (HAVEN_SYNCD_LISTEN); plain websockets only on loopback")
	fs.StringVar(&c.tlsCert, "tls-cert", env("HAVEN_SYNCD_TLS_CERT", ""), "TLS certificate file (HAVEN_SYNCD_TLS_CERT)")
	fs.StringVar(&c.tlsKey, "tls-key", env("HAVEN_SYNCD_TLS_KEY", ""), "TLS key file (HAVEN_SYNCD_TLS_KEY)")
	fs.IntVar(&c.workers, "workers", defaultWorkers(), "CRDT worker processes (default: one per CPU, at least 2)")
	fs.Int64Var(&c.docMemory, "doc-memory", int64(intEnv("HAVEN_SYNCD_DOC_MEMORY", int(defaultDocMemory()))), "bytes of memory the CRDT workers may spend on the documents they hold open, in all (estimated from each document's changes, operations and saved size), split evenly between them; past it a worker lets go of the documents it worked on least recently and loads them again from the store when next needed. Default: an eighth of the machine's memory, between 256 MiB and 16 GiB; 0: no bound (HAVEN_SYNCD_DOC_MEMORY)")
	fs.DurationVar(&c.docIdle, "doc-idle", durationEnv("HAVEN_SYNCD_DOC_IDLE", defaultDocIdle), "a CRDT worker lets go of a document nobody has synced for this long, within -doc-memory or not, and loads it again from the store when next needed: the workers' memory then follows the documents in use; 0: only -doc-memory lets documents go (HAVEN_SYNCD_DOC_IDLE)")
	fs.DurationVar(&c.workerTimeout, "worker-timeout", worker.DefaultCallTimeout, "longest a CRDT worker may take over one call (a legitimate one on a 16 MiB document takes a few seconds); a worker past it is killed and restarted, the messages it held are retried one at a time, and one that takes too long again is quarantined")
	fs.IntVar(&c.maxConns, "max-conns", 1000, "most devices connected at once; more are told to try again later")
	fs.IntVar(&c.limits.ConnsPerDevice, "max-conns-per-device", intEnv("HAVEN_SYNCD_MAX_CONNS_PER_DEVICE", 4), "most connections one device may hold at once (HAVEN_SYNCD_MAX_CONNS_PER_DEVICE)")
	fs.IntVar(&c.limits.DocsPerHour, "max-docs-per-hour", intEnv("HAVEN_SYNCD_MAX_DOCS_PER_HOUR", 600), "most new documents one device may create in an hour; an organisation may create 2,000 (HAVEN_SYNCD_MAX_DOCS_PER_HOUR)")
	fs.Int64Var(&c.limits.DocBytes, "max-doc-bytes", int64(intEnv("HAVEN_SYNCD_MAX_DOC_BYTES", 16<<20)), "largest a document may grow to, in bytes (HAVEN_SYNCD_MAX_DOC_BYTES)")
	fs.Float64Var(&c.limits.ChangesPerSecond, "max-changes-per-second", 50, "changes per second one device may send after its burst (an organisation four times that)")
	fs.IntVar(&c.limits.ChangeBurst, "max-change-burst", 10000, "changes one device may send at once, e.g. after a day offline (an organisation four times that)")
	fs.Float64Var(&c.limits.ChangeBytesPerSecond, "max-change-bytes-per-second", 16<<10, "bytes of changes per second one device may send after its burst (an organisation four times that)")
	fs.Float64Var(&c.limits.ReadBytesPerSecond, "max-read-bytes-per-second", 256<<10, "bytes per second the relay reads from one device's connections after its burst")
	fs.IntVar(&c.limits.ReadBurst, "max-read-burst", 8<<20, "bytes the relay reads from one device at once before it reads at the rate")
	fs.IntVar(&c.limits.ChangeBytesBurst, "max-change-bytes-burst", 4<<20, "bytes of changes one device may send at once (an organisation four times that)")
	fs.Float64Var(&c.limits.AuditPerSecond, "max-audit-per-second", 2, "audit events per second one device may report after its burst")
	fs.IntVar(&c.limits.AuditBurst, "max-audit-burst", relay.DefaultAuditBurst, "audit events one device may report at once; the rest of a week offline follows at the rate")
	fs.IntVar(&c.limits.SearchesPerHour, "max-searches-per-hour", 120, "searches and record openings one advice-line device may make in an hour")
	fs.DurationVar(&c.limits.AdviceRetention, "advice-retention", 72*time.Hour, "how long an advice-line device may keep a record after it was last opened for a call")
	fs.StringVar(&c.logLevel, "log-level", env("HAVEN_SYNCD_LOG_LEVEL", "info"), "debug, info, warn or error")
	c.cluster.flags(fs)
}

func (c *config) logger(w io.Writer) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.logLevel))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: lvl}))
}

// key reads the store key, creating it (0600) on first run. The default
// file sits beside the data folder, not in it, so copying the folder alone
// does not copy the key.
func (c *config) key() ([]byte, error) {
	return c.secret(c.keyFile, ".key", "key file")
}

// signingKey reads the organisation signing key (an Ed25519 seed), which
// signs staff certificates and revocations, creating it on first run. Like
// the store key it sits beside the data folder, never in the store: a copy
// of the store cannot certify anyone.
func (c *config) signingKey() (ed25519.PrivateKey, error) {
	seed, err := c.secret(c.signingKeyFile, ".signing-key", "signing key file")
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// secret reads 32 bytes in hex from path (default: the data folder's path
// plus suffix), creating the default file with fresh random bytes on first
// run.
func (c *config) secret(path, suffix, what string) ([]byte, error) {
	given := path != ""
	if !given {
		path = strings.TrimRight(c.data, string(filepath.Separator)) + suffix
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && !given {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, err
		}
		var k [32]byte
		rand.Read(k[:])
		if err := os.WriteFile(path, []byte(hex.EncodeToString(k[:])+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("create %s: %w", what, err)
		}
		return k[:], nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	k, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(k) != 32 {
		return nil, fmt.Errorf("%s %s must hold 64 hex digits", what, path)
	}
	return k, nil
}

// registry opens the organisation registry over st with the signing key.
func (c *config) registry(st *store.Store, log *slog.Logger) (*orgs.Registry, error) {
	key, err := c.signingKey()
	if err != nil {
		return nil, err
	}
	reg := orgs.New(st)
	reg.Key, reg.Logger = key, log
	return reg, nil
}

func (c *config) openStore(log *slog.Logger) (*store.Store, error) {
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return nil, err
	}
	k, err := c.key()
	if err != nil {
		return nil, err
	}
	return store.Open(c.data, store.Options{Key: k, Logger: log})
}

func (c *config) adminSocket() string { return filepath.Join(c.data, "admin.sock") }

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var c config
	fs := flag.NewFlagSet("syncd "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	c.flags(fs)
	switch cmd {
	case "worker":
		return worker.RunChild(c.logger(stderr))
	case "serve":
		if err := fs.Parse(args); err != nil {
			return err
		}
		return serve(ctx, c, stdout, stderr)
	case "admin":
		// flags first (e.g. -data), then the admin command and its arguments
		if err := fs.Parse(args); err != nil {
			return err
		}
		return runAdmin(ctx, c, fs.Args(), stdout)
	case "demo":
		if err := fs.Parse(args); err != nil {
			return err
		}
		return runDemo(ctx, c, stdout)
	case "wait":
		// wait until the relay at -listen answers /healthz (for scripts)
		if err := fs.Parse(args); err != nil {
			return err
		}
		return waitHealthy(ctx, "http://"+c.listen+"/healthz", 30*time.Second)
	case "help", "-h", "--help":
		fmt.Fprintln(stdout, "usage: syncd [serve|admin|demo|wait] [flags]")
		fs.SetOutput(stdout)
		fs.PrintDefaults()
		fmt.Fprintln(stdout, admin.Usage)
		return nil
	}
	return fmt.Errorf("unknown command %q (serve, admin, demo)", cmd)
}

func isLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func serve(ctx context.Context, c config, stdout, stderr io.Writer) error {
	log := c.logger(stderr)
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return errors.New("give both -tls-cert and -tls-key, or neither")
	}
	if c.tlsCert == "" && !isLoopback(c.listen) {
		return fmt.Errorf("refusing to serve plain websockets on %s: outside loopback give -tls-cert and -tls-key", c.listen)
	}
	publicURLs, err := c.cluster.publicURLs()
	if err != nil {
		return err
	}
	st, err := c.openStore(log)
	if err != nil {
		return err
	}
	defer st.Close()
	reg, err := c.registry(st, log)
	if err != nil {
		return err
	}
	node, err := c.openCluster(ctx, log, reg.AuditHead)
	if err != nil {
		return err
	}
	defer node.Close() // after the workers stop (deferred later, runs earlier), before the store
	metrics := relay.NewMetrics()
	srv, err := relay.New(relay.Config{Store: st, Orgs: reg, Logger: log, Metrics: metrics, MaxConns: c.maxConns, Limits: c.limits, Cluster: node,
		RelayURLs: publicURLs})
	if err != nil {
		return err
	}
	reg.OnTrustChange = srv.TrustChanged
	if err := shareRegistry(ctx, node, reg, st, srv, log); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	pool, err := worker.Start(worker.Config{Command: workerCommand(self), Env: workerEnv(), Workers: c.workers, CallTimeout: c.workerTimeout, DocMemory: docMemoryPerWorker(c.docMemory, c.workers), DocIdle: c.docIdle, Host: srv.Host(), Logger: log})
	if err != nil {
		return err
	}
	defer pool.Close() // after srv.Close, before the store (deferred earlier, runs later)
	metrics.WatchRestarts(pool.Restarts)
	metrics.WatchTimeouts(pool.Timeouts)
	metrics.WatchWorkerDocuments(func() (int, int64) {
		u := pool.Usage()
		return u.Docs, u.Bytes
	})
	metrics.WatchCluster(func() []relay.StreamProgress {
		var out []relay.StreamProgress
		for _, p := range node.Progress(ctx) {
			out = append(out, relay.StreamProgress{Stream: p.Stream, Applied: p.Applied, Last: p.Last, Known: p.Known})
		}
		return out
	})
	srv.Start(pool)
	node.Follow(st, func(ctx context.Context, ch cluster.Change) error { return srv.Absorb(ctx, ch.Doc, ch.Owner, ch.Chunk) })
	if err := shareStoppedDocuments(ctx, st, shareAdminDocument(node, st, srv), log); err != nil {
		return err
	}

	adm := &admin.Admin{Store: st, Orgs: reg, OnDocument: shareAdminDocument(node, st, srv), OnRevoke: srv.DeviceRevoked, OnScopes: srv.ScopesChanged,
		OnServices: srv.LoadServices}
	stopAdmin, err := serveAdminSocket(c.adminSocket(), adm, log)
	if err != nil {
		return err
	}
	defer stopAdmin()

	ln, err := net.Listen("tcp", c.listen)
	if err != nil {
		return err
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	scheme := "ws"
	if c.tlsCert != "" {
		scheme = "wss"
	}
	fmt.Fprintf(stdout, "syncd listening on %s://%s/sync (data %s)\n", scheme, ln.Addr(), c.data)
	errc := make(chan error, 1)
	go func() {
		if c.tlsCert != "" {
			errc <- hs.ServeTLS(ln, c.tlsCert, c.tlsKey)
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	log.Info("shutting down")
	node.StopFollowing() // no other node's change is applied while the relay closes
	reg.StopCopyingAudit()
	return shutdown(hs, srv, pool, log)
}

// Shutting down waits at most httpDrain for HTTP requests, workDrain for
// the work queued when the websockets closed, and the workers' exit grace
// (2 s) and a kill; then the store closes. So syncd exits within 10 s of
// SIGTERM whatever the workers do: within a service manager's stop timeout
// (docker's is 10 s).
const (
	httpDrain = 2 * time.Second
	workDrain = 3 * time.Second
)

// shutdown stops the relay in order: stop taking HTTP requests; close every
// websocket (net/http's Shutdown does not wait for hijacked ones) and let
// queued work finish and sync states be saved (srv.Close). A worker hung
// in a call would hold its queue runner, and so srv.Close, until the
// call's deadline, longer than the whole budget, and once more for its
// replay: if work is still running after workDrain, the pool is closed
// under it, which fails every call in flight at once with
// worker.ErrClosed (never a replay, nor a quarantine) and any later call
// too, so srv.Close's waits end. The deferred closes then stop the workers
// (each saves its sync states, or is killed after its grace) and, last,
// the store, which children write to until they exit.
//
// Nothing the relay acknowledged is lost: it answers a sync message, and
// so confirms its changes to the device, only with the worker's reply,
// and the worker replies only once the changes are durable in the store.
// An item cut short was never answered, and its device sends the changes
// again when it reconnects.
func shutdown(hs *http.Server, srv *relay.Server, pool *worker.Pool, log *slog.Logger) error {
	began := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), httpDrain)
	defer cancel()
	if hs.Shutdown(ctx) != nil {
		hs.Close()
	}
	closed := make(chan error, 1)
	go func() { closed <- srv.Close() }()
	select {
	case err := <-closed:
		return err
	case <-time.After(workDrain):
	}
	log.Warn("CRDT work still running at shutdown; stopping the workers under it", "after", time.Since(began).Round(time.Millisecond))
	pool.Close()
	return <-closed
}

// workerCommand starts a CRDT worker: this binary's hidden subcommand, or,
// under go test, the test binary (which dispatches on an environment
// variable).
func workerCommand(self string) []string {
	if os.Getenv(testWorkerEnv) != "" {
		return []string{self}
	}
	return []string{self, "worker"}
}

func workerEnv() []string {
	if v := os.Getenv(testWorkerEnv); v != "" {
		return []string{testWorkerEnv + "=" + v}
	}
	return nil
}

const testWorkerEnv = "HAVEN_SYNCD_TEST_WORKER"

// serveAdminSocket lets `syncd admin` reach a running relay: a unix socket
// in the data folder, readable only by the relay's user.
func serveAdminSocket(path string, adm *admin.Admin, log *slog.Logger) (func(), error) {
	os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	os.Chmod(path, 0o600)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /run", func(w http.ResponseWriter, r *http.Request) {
		var args []string
		if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<16)).Decode(&args); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var out bytes.Buffer
		if err := adm.Run(r.Context(), args, &out); err != nil {
			http.Error(w, err.Error(), http.StatusUnprocessableEntity)
			return
		}
		w.Write(out.Bytes())
	})
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(ln)
	return func() { hs.Close(); os.Remove(path) }, nil
}

// runAdmin runs an admin command in the running relay if there is one, or
// directly on the data folder.
func runAdmin(ctx context.Context, c config, args []string, out io.Writer) error {
	client := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "unix", c.adminSocket())
	}}, Timeout: 30 * time.Second}
	body, _ := json.Marshal(args)
	resp, err := client.Post("http://syncd/run", "application/json", bytes.NewReader(body))
	if err == nil {
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return errors.New(strings.TrimSpace(string(b)))
		}
		_, err := out.Write(b)
		return err
	}
	st, err := c.openStore(slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	defer st.Close()
	reg, err := c.registry(st, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	return (&admin.Admin{Store: st, Orgs: reg}).Run(ctx, args, out)
}

// waitHealthy polls url until it answers 200 or the timeout passes.
func waitHealthy(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the relay at %s did not answer within %v", url, timeout)
		case <-tick.C:
		}
	}
}
