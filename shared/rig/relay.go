package rig

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/wire"
)

// RelayConfig is one relay: its data folder and how to run it.
type RelayConfig struct {
	Syncd Syncd
	Data  string // the data folder (its key files sit beside it)
	// Listen is the first start's address; default "127.0.0.1:0", a port
	// the kernel picks. Later starts reuse the address the relay bound.
	Listen string
	Flags  []string // added to `syncd serve`'s, after -data and -listen
	// LogPath, if set, is the file the relay's log (stderr) is appended
	// to; otherwise the log is dropped.
	LogPath string
	// Prefix, for a binary only, is a command that runs syncd in its own
	// place (e.g. taskset -c 2-5), so the process is still the relay's.
	Prefix []string
}

// Relay is a syncd relay, stopped until Start and restartable on the same
// data folder and address. Its methods are safe for concurrent use.
type Relay struct {
	cfg RelayConfig

	mu     sync.Mutex // guards the fields below
	addr   string     // host:port the relay bound at its first start
	scheme string     // ws or wss
	proc   *proc      // the running relay; nil when stopped
}

// proc is one run of the relay, a process or (in process) a goroutine.
type proc struct {
	pid    int                // 0 in process
	cmd    *exec.Cmd          // a binary's
	cancel context.CancelFunc // in process: stops serve
	read   chan struct{}      // closed once its stdout has been read to the end
	exited chan struct{}      // closed once it has ended and err is set
	err    error
}

// StartTimeout bounds a start, up to the relay's listening line (a
// loaded machine can take long to open a big store).
const StartTimeout = 60 * time.Second

// stopGrace is how long a graceful stop may take before the relay is
// killed: syncd's own shutdown takes at most about 10 s.
const stopGrace = 30 * time.Second

// NewRelay returns a stopped relay.
func NewRelay(cfg RelayConfig) *Relay { return &Relay{cfg: cfg} }

// StartRelay starts a relay with a fresh data folder for the test, and
// stops it when the test ends (a failure to stop cleanly fails the test).
func StartRelay(t testing.TB, s Syncd, flags ...string) *Relay {
	t.Helper()
	r := NewRelay(RelayConfig{Syncd: s, Data: t.TempDir(), Flags: flags})
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Stop(); err != nil {
			t.Errorf("stopping the relay: %v", err)
		}
	})
	return r
}

// listeningRE reads the line syncd serve prints once it listens:
// "syncd listening on ws://127.0.0.1:PORT/sync (data …)".
var listeningRE = regexp.MustCompile(`listening on (wss?)://(\S+?)/sync\b`)

// Start runs `syncd serve` and returns once the relay says where it
// listens.
func (r *Relay) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc != nil {
		select {
		case <-r.proc.exited:
		default:
			return errors.New("rig: the relay is already running")
		}
	}
	listen := r.addr
	if listen == "" {
		listen = r.cfg.Listen
	}
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	args := append([]string{"serve", "-data", r.cfg.Data, "-listen", listen}, r.cfg.Flags...)
	var logf *os.File // closed once the relay has its own descriptor, or (in process) once serve ends
	logw := io.Discard
	if r.cfg.LogPath != "" {
		f, err := os.OpenFile(r.cfg.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		logf, logw = f, f
	}
	closeLog := func() {
		if logf != nil {
			logf.Close()
		}
	}
	p := &proc{exited: make(chan struct{}), read: make(chan struct{})}
	var stdout io.ReadCloser
	switch {
	case r.cfg.Syncd.run != nil:
		pr, pw := io.Pipe()
		ctx, cancel := context.WithCancel(context.Background())
		p.cancel, stdout = cancel, pr
		run := r.cfg.Syncd.run
		go func() {
			err := run(ctx, args, pw, logw)
			pw.Close()
			closeLog()
			p.err = err
			close(p.exited)
		}()
	case r.cfg.Syncd.bin != "":
		name, cargs := r.cfg.Syncd.bin, args
		if len(r.cfg.Prefix) > 0 {
			name, cargs = r.cfg.Prefix[0], append(slices.Clone(r.cfg.Prefix[1:]), append([]string{r.cfg.Syncd.bin}, args...)...)
		}
		cmd := exec.Command(name, cargs...)
		cmd.Stderr = logw
		out, err := cmd.StdoutPipe()
		if err != nil {
			closeLog()
			return err
		}
		err = StartChild(cmd) // its CRDT workers die with it; it dies with the tests
		closeLog()
		if err != nil {
			return fmt.Errorf("start syncd: %w", err)
		}
		p.cmd, p.pid, stdout = cmd, cmd.Process.Pid, out
		go func() {
			<-p.read // exec.Cmd: Wait only after the last read of stdout
			p.err = cmd.Wait()
			close(p.exited)
		}()
	default:
		closeLog()
		return errors.New("rig: no syncd to run")
	}
	found := make(chan []string, 1)
	go p.readStdout(stdout, found)
	timer := time.NewTimer(StartTimeout)
	defer timer.Stop()
	select {
	case m := <-found:
		r.scheme, r.addr, r.proc = m[1], m[2], p
		return nil
	case <-p.exited:
		return fmt.Errorf("syncd exited before listening: %v%s", p.err, r.logTail())
	case <-timer.C:
		p.kill()
		return fmt.Errorf("syncd did not say it was listening within %v%s", StartTimeout, r.logTail())
	}
}

// readStdout hands the first listening line's fields to found, then reads
// on until the relay closes its stdout, so the relay never blocks on a
// full pipe.
func (p *proc) readStdout(stdout io.ReadCloser, found chan<- []string) {
	defer close(p.read)
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
			select {
			case found <- m:
			default:
			}
		}
	}
	io.Copy(io.Discard, stdout)
}

// kill ends the run at once: SIGKILL to a binary's process group (its
// workers too), or a cancelled serve in process. It waits for the end.
func (p *proc) kill() {
	if p.cmd != nil {
		killGroup(p.cmd.Process.Pid)
	} else {
		p.cancel()
	}
	<-p.exited
}

// stop asks the relay to shut down (SIGTERM, or a cancelled serve) and
// waits, killing it after stopGrace.
func (p *proc) stop() error {
	if p.cmd == nil {
		p.cancel()
		<-p.exited
		return p.err
	}
	p.cmd.Process.Signal(terminate)
	timer := time.NewTimer(stopGrace)
	defer timer.Stop()
	select {
	case <-p.exited:
		return p.err
	case <-timer.C:
		killGroup(p.cmd.Process.Pid)
		<-p.exited
		return fmt.Errorf("syncd ignored SIGTERM for %v and was killed", stopGrace)
	}
}

// take removes the running relay from r, if any.
func (r *Relay) take() *proc {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.proc
	r.proc = nil
	return p
}

// Stop shuts the relay down cleanly and returns how serve ended (nil for
// a clean stop). Stopping a stopped relay does nothing.
func (r *Relay) Stop() error {
	p := r.take()
	if p == nil {
		return nil
	}
	if err := p.stop(); err != nil {
		return fmt.Errorf("%w%s", err, r.logTail())
	}
	return nil
}

// Kill ends the relay at once, as a crash or power cut would (in process,
// as close as a goroutine gets: serve is cancelled), and waits for it.
func (r *Relay) Kill() {
	if p := r.take(); p != nil {
		p.kill()
	}
}

// Running reports whether the relay is running.
func (r *Relay) Running() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return false
	}
	select {
	case <-r.proc.exited:
		return false
	default:
		return true
	}
}

// PID is the running relay's process ID; 0 when stopped or in process.
func (r *Relay) PID() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.proc == nil {
		return 0
	}
	return r.proc.pid
}

// Addr is host:port the relay listens on (known from its first start).
func (r *Relay) Addr() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addr
}

// URL is the relay's websocket endpoint.
func (r *Relay) URL() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.scheme + "://" + r.addr + "/sync"
}

// HTTP is the relay's HTTP base URL (enrolment, health, metrics).
func (r *Relay) HTTP() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.scheme == "wss" {
		return "https://" + r.addr
	}
	return "http://" + r.addr
}

// Data is the relay's data folder.
func (r *Relay) Data() string { return r.cfg.Data }

// LogPath is the file the relay's log goes to ("" if dropped).
func (r *Relay) LogPath() string { return r.cfg.LogPath }

// KeyFile is the store key's default file, beside the data folder.
func (r *Relay) KeyFile() string {
	return strings.TrimRight(r.cfg.Data, string(filepath.Separator)) + ".key"
}

// logTail is the end of the relay's log, for an error, or "".
func (r *Relay) logTail() string {
	if r.cfg.LogPath == "" {
		return ""
	}
	b, _ := os.ReadFile(r.cfg.LogPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return fmt.Sprintf(" (log %s: %s)", r.cfg.LogPath, bytes.TrimSpace(b))
}

// commandTimeout bounds one admin command.
const commandTimeout = 60 * time.Second

// Command runs `syncd NAME -data DATA ARGS…` (e.g. demo) and returns what
// it printed.
func (r *Relay) Command(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	return r.cfg.Syncd.Run(ctx, append([]string{name, "-data", r.cfg.Data}, args...)...)
}

// Admin runs `syncd admin`: through the running relay's socket, or on the
// data folder when it is stopped.
func (r *Relay) Admin(args ...string) (string, error) {
	out, err := r.Command("admin", args...)
	if err != nil {
		return out, fmt.Errorf("admin %s: %w", strings.Join(args[:min(1, len(args))], ""), err)
	}
	return out, nil
}

var (
	codeRE = regexp.MustCompile(`one-time code: (\S+)`)
	idRE   = regexp.MustCompile(`\b(home|hub|advice|dev)-[0-9a-z]+`)
)

// ID is the first organisation or device ID in an admin command's output
// ("" if none).
func ID(out string) string { return idRE.FindString(out) }

// EnrollCode makes a device for org and returns its one-time code.
func (r *Relay) EnrollCode(org, name string) (string, error) {
	out, err := r.Admin("enroll", org, "-name", name)
	if err != nil {
		return "", err
	}
	m := codeRE.FindStringSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("enroll printed %q", out)
	}
	return m[1], nil
}

// Enroll makes a device for org and exchanges its code for a credential,
// as a desktop's first run does.
func (r *Relay) Enroll(org, name string) (wire.Enrollment, error) {
	code, err := r.EnrollCode(org, name)
	if err != nil {
		return wire.Enrollment{}, err
	}
	return r.Redeem(context.Background(), code)
}

// MustEnroll is Enroll for a test.
func (r *Relay) MustEnroll(t testing.TB, org, name string) wire.Enrollment {
	t.Helper()
	e, err := r.Enroll(org, name)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// Redeem exchanges a one-time code at POST /enroll.
func (r *Relay) Redeem(ctx context.Context, code string) (wire.Enrollment, error) {
	var er wire.Enrollment
	body, _ := json.Marshal(map[string]string{"code": code})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.HTTP()+"/enroll", bytes.NewReader(body))
	if err != nil {
		return er, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return er, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return er, fmt.Errorf("POST /enroll: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&er); err != nil || er.Credential == "" {
		return er, errors.Join(errors.New("POST /enroll: no credential"), err)
	}
	return er, nil
}

// Healthz asks the relay's /healthz.
func (r *Relay) Healthz() error {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(r.HTTP() + "/healthz")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/healthz: %s", resp.Status)
	}
	return nil
}

// Behind reads, from the relay's metrics, the streams of its cluster it
// has not applied to their end: for each, "stream applied/last", or
// "stream applied/?" while the cluster does not say how far it holds it.
// Nil: the relay has applied everything the cluster holds.
func (r *Relay) Behind() ([]string, error) {
	m, err := r.Metrics()
	if err != nil {
		return nil, err
	}
	const applied, last = "haven_cluster_applied_sequence", "haven_cluster_last_sequence"
	var behind []string
	found := false
	for k, v := range m {
		labels, ok := strings.CutPrefix(k, applied)
		if !ok {
			continue
		}
		found = true
		stream := strings.TrimSuffix(strings.TrimPrefix(labels, `{stream="`), `"}`)
		switch l, ok := m[last+labels]; {
		case !ok:
			behind = append(behind, fmt.Sprintf("%s %d/?", stream, uint64(v)))
		case v < l:
			behind = append(behind, fmt.Sprintf("%s %d/%d", stream, uint64(v), uint64(l)))
		}
	}
	if !found {
		return nil, errors.New("the relay exports no cluster progress (haven_cluster_applied_sequence)")
	}
	slices.Sort(behind)
	return behind, nil
}

// BehindNote is Behind for a report: "none" and true when the relay has
// applied everything the cluster holds, else what it lacks (or why it
// could not say) and false.
func (r *Relay) BehindNote() (string, bool) {
	switch b, err := r.Behind(); {
	case err != nil:
		return err.Error(), false
	case len(b) > 0:
		return strings.Join(b, ", "), false
	}
	return "none", true
}

// Metrics reads the relay's Prometheus samples, by name and labels as
// written (e.g. `haven_relay_refused_total{reason="out-of-scope"}`).
func (r *Relay) Metrics() (map[string]float64, error) {
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(r.HTTP() + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.LastIndexByte(line, ' '); i > 0 {
			var v float64
			if _, err := fmt.Sscanf(line[i+1:], "%g", &v); err == nil {
				out[line[:i]] = v
			}
		}
	}
	return out, sc.Err()
}
