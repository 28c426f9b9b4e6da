package rig

import (
	"bytes"
	"context"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	mrand "math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/wire"
)

// wireCodes reads every Code constant of shared/wire from its source, so
// that a code added there is checked here without a list to keep.
func wireCodes(t *testing.T) map[string]string {
	t.Helper()
	files, err := filepath.Glob("../wire/*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("shared/wire's source: %v", err)
	}
	codes := map[string]string{}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !strings.HasPrefix(id.Name, "Code") || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Errorf("wire.%s is not a string literal", id.Name)
						continue
					}
					codes[id.Name], _ = strconv.Unquote(lit.Value)
				}
			}
		}
	}
	return codes
}

// TestClassifyEveryCode: every code the relay may send has a class, and
// no two constants share a code.
func TestClassifyEveryCode(t *testing.T) {
	codes := wireCodes(t)
	if len(codes) < 20 || codes["CodeNotEnrolled"] != wire.CodeNotEnrolled {
		t.Fatalf("read %d codes from shared/wire (CodeNotEnrolled %q): the reader no longer finds them", len(codes), codes["CodeNotEnrolled"])
	}
	seen := map[string]string{}
	for name, code := range codes {
		if c := Classify(code); c == ClassUnknown || c == ClassNoCode {
			t.Errorf("Classify(wire.%s = %q) = %q; give it a class", name, code, c)
		}
		if other, dup := seen[code]; dup {
			t.Errorf("wire.%s and wire.%s are both %q", name, other, code)
		}
		seen[code] = name
	}
	for code, want := range map[string]Class{
		"": ClassNoCode, "launch-missiles": ClassUnknown, wire.RuleCode("decision-unverified", "role-not-permitted"): ClassRefused,
		wire.CodeQuotaChanges: ClassRateLimited, wire.CodeQuotaDocBytes: ClassRefused, wire.CodeQuarantined: ClassQuarantined,
	} {
		if got := Classify(code); got != want {
			t.Errorf("Classify(%q) = %q, want %q", code, got, want)
		}
	}
}

// TestBinaryBuiltOnce: concurrent callers share one build.
func TestBinaryBuiltOnce(t *testing.T) {
	var wg sync.WaitGroup
	paths := make([]string, 4)
	for i := range paths {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Binary()
			if err != nil {
				t.Error(err)
				return
			}
			paths[i] = s.Path()
		}()
	}
	wg.Wait()
	for _, p := range paths[1:] {
		if p != paths[0] || p == "" {
			t.Fatalf("Binary() paths %q: want one build", paths)
		}
	}
	if fi, err := os.Stat(paths[0]); err != nil || fi.Mode()&0o100 == 0 {
		t.Fatalf("the built syncd at %s: %v", paths[0], err)
	}
}

// TestRelayLifecycle: a relay started on port 0 reports the port it
// bound, answers health checks, runs admin commands and enrols devices,
// refuses a stranger with a code, and comes back on the same address
// after a kill, with its data.
func TestRelayLifecycle(t *testing.T) {
	r := NewRelay(RelayConfig{Syncd: MustBinary(t), Data: filepath.Join(t.TempDir(), "data"), LogPath: filepath.Join(t.TempDir(), "relay.log"),
		Flags: []string{"-workers", "1", "-log-level", "warn"}})
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Kill)
	host, port, err := net.SplitHostPort(r.Addr())
	if err != nil || host != "127.0.0.1" || port == "0" || port == "" {
		t.Fatalf("Addr() = %q (%v); want the loopback port the relay bound", r.Addr(), err)
	}
	if r.PID() == 0 || !r.Running() {
		t.Fatalf("PID %d, running %v after Start", r.PID(), r.Running())
	}
	if err := r.Healthz(); err != nil {
		t.Fatal(err)
	}
	out, err := r.Admin("create-home", "Larch House")
	home := ID(out)
	if err != nil || !strings.HasPrefix(home, "home-") {
		t.Fatalf("create-home: %q, %v", out, err)
	}
	enr := r.MustEnroll(t, home, "Nurses' station")
	if enr.Device == "" || enr.Credential == "" {
		t.Fatalf("Enroll = %+v", enr)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	admitted := joinAs(t, ctx, r, enr.Credential)
	admitted.Close()

	// A stranger is refused, and the refusal's code says why.
	codes := make(chan string, 4)
	stranger, err := DialPeer(ctx, r.URL(), "hvn1_"+strings.Repeat("A", 43), "stranger", func(m wire.Message, err error) {
		if err == nil && m.Type == wire.TypeError {
			codes <- m.ErrorCode
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	stranger.Join()
	if err := stranger.WaitJoined(10 * time.Second); err == nil {
		t.Fatal("a device with a forged credential was admitted")
	}
	if code, ok := Recv(codes, 5*time.Second); !ok || Classify(code) != ClassNotEnrolled {
		t.Fatalf("the stranger was told %q (%v); want a code of class %q", code, ok, ClassNotEnrolled)
	}

	addr := r.Addr()
	r.Kill()
	if r.Running() || r.Healthz() == nil {
		t.Fatal("the relay still runs after Kill")
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if r.Addr() != addr {
		t.Fatalf("restarted on %s, want %s", r.Addr(), addr)
	}
	joinAs(t, ctx, r, enr.Credential).Close() // the enrolment survived
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop = %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("a second Stop = %v", err)
	}
}

func joinAs(t *testing.T, ctx context.Context, r *Relay, cred string) *Peer {
	t.Helper()
	p, err := DialPeer(ctx, r.URL(), cred, "rig-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Join(); err != nil {
		t.Fatal(err)
	}
	if err := p.WaitJoined(10 * time.Second); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRelayInProcess: a relay run through a command function is read the
// same way, and its stop returns what the function returned.
func TestRelayInProcess(t *testing.T) {
	stopped := make(chan struct{})
	serve := func(ctx context.Context, args []string, stdout, _ io.Writer) error {
		if args[0] != "serve" {
			return nil
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		defer ln.Close()
		io.WriteString(stdout, "syncd listening on ws://"+ln.Addr().String()+"/sync (data x)\n")
		<-ctx.Done()
		close(stopped)
		return io.ErrUnexpectedEOF
	}
	r := NewRelay(RelayConfig{Syncd: InProcess(serve), Data: t.TempDir()})
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	if _, port, _ := net.SplitHostPort(r.Addr()); port == "0" || port == "" || !strings.HasPrefix(r.URL(), "ws://127.0.0.1:") {
		t.Fatalf("Addr %q, URL %q", r.Addr(), r.URL())
	}
	if err := r.Stop(); err == nil || !strings.Contains(err.Error(), io.ErrUnexpectedEOF.Error()) {
		t.Fatalf("Stop = %v, want serve's own error", err)
	}
	select {
	case <-stopped:
	default:
		t.Fatal("Stop returned before serve ended")
	}
}

// TestLinkCountsBytes: the link passes bytes through unchanged and counts
// each way as it reads them.
func TestLinkCountsBytes(t *testing.T) {
	t.Parallel()
	l := newTestLink(t, echoServer(t), Profile{})
	c := dial(t, l.Addr())
	msg := bytes.Repeat([]byte("haven"), 1000)
	before := time.Now()
	roundTrip(t, c, msg)
	if s := l.Stats(); s.BytesUp != int64(len(msg)) || s.BytesDown != int64(len(msg)) {
		t.Fatalf("Stats() = %d up, %d down, want %d each", s.BytesUp, s.BytesDown, len(msg))
	}
	if last := l.LastByte(); last.Before(before) {
		t.Fatalf("LastByte() = %v, before the round trip began at %v", last, before)
	}
}

// TestMutate: every kind of damage happens, each changes the message, and
// the layout of a real message is found.
func TestMutate(t *testing.T) {
	d := crdt.New()
	if _, err := d.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("room", "14") }); err != nil {
		t.Fatal(err)
	}
	msg, ok, err := crdt.NewSyncState(d).Generate()
	if err != nil || !ok {
		t.Fatalf("Generate = %v, %v", ok, err)
	}
	if l, ok := ParseSyncLayout(msg); !ok || len(l.Heads) != 1 {
		t.Fatalf("ParseSyncLayout of an opening message = %+v, %v; want one head", l, ok)
	}
	rng := mrand.New(mrand.NewPCG(1, 2))
	kinds := map[string]int{}
	unchanged := 0
	for i := 0; i < 400; i++ {
		b, kind := Mutate(rng, msg)
		kinds[kind]++
		if bytes.Equal(b, msg) {
			unchanged++ // flips that undo each other: rare
		}
	}
	if unchanged > 20 {
		t.Errorf("%d of 400 mutations left the message as it was", unchanged)
	}
	for _, k := range []string{MutFlip, MutTruncate, MutInsert, MutStructural} {
		if kinds[k] == 0 {
			t.Errorf("no %q in 400 mutations: %v", k, kinds)
		}
	}
}

// TestSignalWakesWaiters: a waiter sees a notified change; Until gives up
// on a condition that never holds.
func TestSignalWakesWaiters(t *testing.T) {
	var s Signal
	var mu sync.Mutex
	done := false
	held := make(chan bool, 1)
	go func() {
		held <- UntilSignal(10*time.Second, &s, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return done
		})
	}()
	mu.Lock()
	done = true
	mu.Unlock()
	s.Notify()
	if ok, got := Recv(held, 20*time.Second); !got || !ok {
		t.Fatalf("UntilSignal = %v (returned %v)", ok, got)
	}
	if Until(20*time.Millisecond, func() bool { return false }) {
		t.Fatal("Until reported a condition that never held")
	}
}
