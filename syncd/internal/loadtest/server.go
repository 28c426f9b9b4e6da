package loadtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"haven/shared/rig"
)

// Kind names a server implementation under test.
type Kind string

const (
	Haven Kind = "haven" // syncd, Haven's relay
	JS    Kind = "js"    // automerge-repo's reference sync server in Node
)

// Label is the kind as the result tables print it.
func (k Kind) Label() string {
	if k == Haven {
		return "Haven syncd"
	}
	return "JS sync server"
}

// Server is one server process on loopback, started for one scenario so
// that its peak memory and CPU belong to that scenario alone.
type Server struct {
	Kind Kind
	addr string // host:port it listens on
	path string // websocket path ("/sync" for syncd)
	data string // its data folder
	log  string // its stderr, kept for a failure report
	home string // Haven: the care home every device is enrolled for
	cpus string // the CPUs it is confined to ("" for all)

	relay  *rig.Relay    // Haven's
	cmd    *exec.Cmd     // the JavaScript server's
	exited chan struct{} // closed once the JavaScript server has been waited for
	pss    *pssSampler   // the process tree's memory, from its start to Stop
}

// startTimeout bounds a server's start, up to its "listening" line.
const startTimeout = 60 * time.Second

// StartHaven runs `syncd serve` from the binary bin with a fresh data folder
// under dir, on a free loopback port, with the given number of CRDT workers
// (0: syncd's default). cpus, if not "", is a CPU list (as taskset takes
// it, e.g. "2-5") the server is confined to, so that a machine with CPUs to
// spare can keep the load clients off the server's.
func StartHaven(bin, dir string, workers int, cpus string) (*Server, error) {
	s := &Server{Kind: Haven, cpus: cpus}
	prefix, err := s.confine()
	if err != nil {
		return nil, err
	}
	relay := rig.NewRelay(rig.RelayConfig{Syncd: rig.Exec(bin), Data: filepath.Join(dir, "syncd-data"), Flags: havenFlags(workers),
		LogPath: filepath.Join(dir, "syncd.log"), Prefix: prefix})
	if err := relay.Start(); err != nil {
		return nil, fmt.Errorf("%s: %w", s.Kind.Label(), err)
	}
	return havenServer(relay, cpus), nil
}

// havenFlags are syncd serve's flags for a load test. A load test measures
// throughput, not an attack: the per-device shares are set far above what
// it sends.
func havenFlags(workers int) []string {
	args := []string{"-log-level", "warn",
		"-max-docs-per-hour", "1000000", "-max-changes-per-second", "1000000", "-max-change-burst", "10000000", "-max-change-bytes-per-second", "1e12", "-max-change-bytes-burst", "1000000000000", "-max-read-bytes-per-second", "1e12", "-max-read-burst", "1000000000000", "-max-conns-per-device", "10000"}
	if workers > 0 {
		args = append(args, "-workers", fmt.Sprint(workers))
	}
	return args
}

// havenServer is the Server of a started syncd, confined to cpus ("" for
// none) by the relay's command prefix.
func havenServer(relay *rig.Relay, cpus string) *Server {
	s := &Server{Kind: Haven, path: "/sync", data: relay.Data(), log: relay.LogPath(), cpus: cpus, relay: relay, addr: relay.Addr()}
	s.pss = startPSS(s.pid())
	return s
}

// StartHavenCluster runs n syncd nodes as one cluster (rig.Cluster), each
// with the flags StartHaven gives one and a data folder and log under dir
// named node-I, and returns once every node listens.
func StartHavenCluster(bin, dir string, n, workers int) ([]*Server, error) {
	cfg := rig.ClusterConfig{Syncd: rig.Exec(bin), Name: "haven-loadtest", Flags: havenFlags(workers)}
	for i := range n {
		name := fmt.Sprintf("node-%d", i)
		cfg.Nodes = append(cfg.Nodes, rig.NodeConfig{Data: filepath.Join(dir, name+"-data"), LogPath: filepath.Join(dir, name+".log")})
	}
	c, err := rig.NewCluster(cfg)
	if err != nil {
		return nil, err
	}
	if err := c.Start(); err != nil {
		c.Stop()
		return nil, err
	}
	var nodes []*Server
	for _, relay := range c.Nodes() {
		nodes = append(nodes, havenServer(relay, ""))
	}
	return nodes, nil
}

// confine is the command that confines the server to its CPUs, if any:
// taskset sets the mask and execs the server in place, so the process,
// and its CPU and memory figures, are the server's.
func (s *Server) confine() ([]string, error) {
	if s.cpus == "" {
		return nil, nil
	}
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return nil, fmt.Errorf("confining %s to CPUs %s: %w", s.Kind.Label(), s.cpus, err)
	}
	return []string{taskset, "-c", s.cpus}, nil
}

// StartJS runs the reference server script (syncd/interop/server.mjs) with a
// fresh data folder under dir, on a free loopback port, confined to cpus as
// StartHaven is.
func StartJS(script, dir, cpus string) (*Server, error) {
	data := filepath.Join(dir, "js-data")
	s := &Server{Kind: JS, path: "/", data: data, log: filepath.Join(dir, "js-server.log"), home: "home-loadtest", cpus: cpus}
	cmd := exec.Command("node", filepath.Base(script), "0", data)
	cmd.Dir = filepath.Dir(script) // its node_modules
	// "listening PORT"
	if err := s.start(cmd, regexp.MustCompile(`^listening (\d+)$`)); err != nil {
		return nil, err
	}
	s.addr = "127.0.0.1:" + s.addr
	s.pss = startPSS(s.pid())
	return s, nil
}

// start runs cmd and waits for the line matching ready, whose first group
// is the address (or port) it listens on.
func (s *Server) start(cmd *exec.Cmd, ready *regexp.Regexp) error {
	logf, err := os.Create(s.log)
	if err != nil {
		return err
	}
	prefix, err := s.confine()
	if err != nil {
		logf.Close()
		return err
	}
	if prefix != nil {
		cmd.Args = append(prefix, cmd.Args...)
		cmd.Path = prefix[0]
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		logf.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", s.Kind.Label(), err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	addr := make(chan string, 1)
	go func() {
		// Reads stdout until the process ends, so it never blocks on a full pipe.
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := ready.FindStringSubmatch(strings.TrimSpace(sc.Text())); m != nil {
				select {
				case addr <- m[1]:
				default:
				}
			}
		}
		io.Copy(io.Discard, out)
		cmd.Wait()
		logf.Close()
		close(s.exited)
	}()
	select {
	case s.addr = <-addr:
		return nil
	case <-s.exited:
		return fmt.Errorf("%s exited before listening: %s", s.Kind.Label(), s.logTail())
	case <-time.After(startTimeout):
		s.Stop()
		return fmt.Errorf("%s did not start within %v: %s", s.Kind.Label(), startTimeout, s.logTail())
	}
}

// logTail is the end of the server's stderr, for error reports.
func (s *Server) logTail() string {
	b, _ := os.ReadFile(s.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

// URL is the websocket URL for a client that reaches the server at addr
// (its own address, or a proxy's).
func (s *Server) URL(addr string) string { return "ws://" + addr + s.path }

// Home is the care home devices are enrolled for, which new records name.
func (s *Server) Home() string { return s.home }

// Alive reports an error if the process has exited.
func (s *Server) Alive() error {
	if s.relay != nil {
		if !s.relay.Running() {
			return fmt.Errorf("%s exited: %s", s.Kind.Label(), s.logTail())
		}
		return nil
	}
	select {
	case <-s.exited:
		return fmt.Errorf("%s exited: %s", s.Kind.Label(), s.logTail())
	default:
		return nil
	}
}

// Usage is the process tree's CPU time so far and its peak memory since
// start or the last ResetPeak.
func (s *Server) Usage() (usage, error) {
	if err := s.Alive(); err != nil {
		return usage{}, err
	}
	u, err := treeUsage(s.pid())
	if err != nil {
		return u, err
	}
	u.PeakPSS, u.Parts = s.pss.highest()
	return u, nil
}

// PSS is the process tree's memory now (its PSS summed).
func (s *Server) PSS() (int64, error) {
	if err := s.Alive(); err != nil {
		return 0, err
	}
	parts, err := treePSS(s.pid())
	return sum(parts), err
}

// ResetPeak starts the peak-memory measurement again.
func (s *Server) ResetPeak() error {
	s.pss.reset()
	return resetTreePeak(s.pid())
}

// pid is the server process's ID.
func (s *Server) pid() int {
	if s.relay != nil {
		return s.relay.PID()
	}
	return s.cmd.Process.Pid
}

// Stop asks the server to shut down gracefully and waits for it; after 20 s
// (syncd: the rig's grace) it is killed.
func (s *Server) Stop() error {
	if s.pss != nil {
		s.pss.stop()
	}
	if s.relay != nil {
		return s.relay.Stop()
	}
	if s.cmd == nil || s.cmd.Process == nil {
		return nil
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
		return fmt.Errorf("%s ignored SIGTERM for 20 s and was killed", s.Kind.Label())
	}
	if st := s.cmd.ProcessState; st != nil && !st.Success() {
		return fmt.Errorf("%s exited with %v: %s", s.Kind.Label(), st, s.logTail())
	}
	return nil
}

// Enroll returns credentials for n devices of one care home. syncd needs
// real ones: the first call creates the home through the admin socket, then
// each device gets a one-time code that is exchanged at POST /enroll as the
// desktop does. The JavaScript server checks nothing: it gets empty ones.
func (s *Server) Enroll(ctx context.Context, n int) ([]string, error) {
	creds := make([]string, n)
	if s.Kind != Haven {
		return creds, nil
	}
	if s.home == "" {
		home, err := s.CreateHome("Load Test House")
		if err != nil {
			return nil, err
		}
		s.home = home
	}
	for i := range creds {
		cred, err := s.EnrollDevice(ctx, s.home, fmt.Sprintf("load-test device %02d", i))
		if err != nil {
			return nil, err
		}
		creds[i] = cred
	}
	return creds, nil
}

// CreateHome makes a care home through syncd's admin socket and returns
// its ID. In a cluster any node will do: the registry is the cluster's.
func (s *Server) CreateHome(name string) (string, error) {
	out, err := s.relay.Admin("create-home", name)
	if err != nil {
		return "", err
	}
	home := rig.ID(out)
	if home == "" {
		return "", fmt.Errorf("create-home printed %q", out)
	}
	return home, nil
}

// EnrollDevice makes a device of home through this syncd's admin socket
// and exchanges its one-time code at this syncd's POST /enroll, returning
// the credential.
func (s *Server) EnrollDevice(ctx context.Context, home, name string) (string, error) {
	code, err := s.relay.EnrollCode(home, name)
	if err != nil {
		return "", err
	}
	enr, err := s.relay.Redeem(ctx, code)
	if err != nil {
		return "", err
	}
	return enr.Credential, nil
}

// Kill ends syncd at once, as a crash would: SIGKILL to it and its CRDT
// workers. Restart starts it again.
func (s *Server) Kill() {
	s.pss.stop()
	s.relay.Kill()
}

// Restart starts a killed or stopped syncd again on the same data folder
// and address, returning once it says it listens. Its peak memory is
// measured afresh from then.
func (s *Server) Restart() error {
	if err := s.relay.Start(); err != nil {
		return fmt.Errorf("%s: %w", s.Kind.Label(), err)
	}
	s.pss.stop()
	s.pss = startPSS(s.pid())
	return nil
}
