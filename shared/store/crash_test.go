package store_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"haven/shared/store"
)

// The test binary doubles as the child process of the crash and lock tests: these variables
// switch it into a child's role instead of running tests.
const (
	crashChildEnv = "HAVEN_STORE_CRASH_CHILD" // data folder; the child writes until killed
	crashSeedEnv  = "HAVEN_STORE_CRASH_SEED"  // the child's RNG seed (parent sets it)
	lockChildEnv  = "HAVEN_STORE_LOCK_CHILD"  // data folder; the child holds it open until stdin closes
)

func TestMain(m *testing.M) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	if dir := os.Getenv(lockChildEnv); dir != "" {
		lockChild(dir)
		return
	}
	os.Exit(m.Run())
}

// crashChild opens dir and writes chunks, key/values and log entries from several goroutines
// until it is killed. It prints one "ack ..." line per write, only after the write returned:
//
//	ack chunk <doc> <seq> <sha256>
//	ack kv <key> <sha256>
//	ack log <log> <seq> <sha256>
func crashChild(dir string) {
	seed, _ := strconv.ParseUint(os.Getenv(crashSeedEnv), 10, 64)
	s, err := store.Open(dir, store.Options{Key: testKey})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	var mu sync.Mutex // one Write per line, so lines never interleave
	ack := func(format string, a ...any) {
		mu.Lock()
		defer mu.Unlock()
		if _, err := fmt.Fprintf(os.Stdout, format+"\n", a...); err != nil {
			os.Exit(4)
		}
	}
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "child write:", err)
		os.Exit(3)
	}
	ctx := context.Background()
	for g := range 6 {
		go func() {
			rng := rand.New(rand.NewPCG(seed, uint64(g)))
			for i := 0; ; i++ {
				data := randomData(rng)
				sum := sha256.Sum256(data)
				switch g % 3 {
				case 0:
					doc := fmt.Sprintf("doc-%d", i%2) // two goroutines share both documents
					seq, err := s.AppendChunk(ctx, doc, data)
					if err != nil {
						fail(err)
					}
					ack("ack chunk %s %d %x", doc, seq, sum)
				case 1:
					key := fmt.Sprintf("k-%d-%d-%d", seed, g, i)
					if err := s.Put(ctx, "crash", key, data); err != nil {
						fail(err)
					}
					ack("ack kv %s %x", key, sum)
				case 2:
					log := fmt.Sprintf("log-%d", g)
					seq, err := s.AppendLog(ctx, log, data)
					if err != nil {
						fail(err)
					}
					ack("ack log %s %d %x", log, seq, sum)
				}
			}
		}()
	}
	select {} // until SIGKILL
}

// randomData is mostly small (like Automerge changes), sometimes tens of KiB, and rarely above
// the 1 MiB inline limit so the value log is exercised too.
func randomData(rng *rand.Rand) []byte {
	n := 1 + rng.IntN(2048)
	switch r := rng.IntN(1000); {
	case r < 3:
		n = 1<<20 + rng.IntN(1<<18)
	case r < 30:
		n = 16<<10 + rng.IntN(64<<10)
	}
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// lockChild holds dir open until its stdin closes.
func lockChild(dir string) {
	s, err := store.Open(dir, store.Options{Key: testKey})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child open:", err)
		os.Exit(2)
	}
	fmt.Println("open")
	io.Copy(io.Discard, os.Stdin)
	if err := s.Close(); err != nil {
		fmt.Fprintln(os.Stderr, "child close:", err)
		os.Exit(3)
	}
}

// TestCrashRecovery kills a writing child process at random moments (SIGKILL, no chance to
// clean up) and checks after each kill that everything the child saw acknowledged is on disk
// with identical bytes, and that nothing was quarantined. A folder is reused for 20 rounds, so
// rounds also recover from earlier crashes (the fresh folder keeps each round's reads small).
// HAVEN_STORE_CRASH_SEED replays a run.
func TestCrashRecovery(t *testing.T) {
	rounds := 200
	if testing.Short() {
		rounds = 20
	}
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(crashSeedEnv); v != "" {
		seed, _ = strconv.ParseUint(v, 10, 64)
	}
	t.Logf("seed %d (replay with %s=%d)", seed, crashSeedEnv, seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var (
		dir   string
		acked map[string]string // "chunk doc seq" / "kv key" / "log name seq" -> sha256
		total int
	)
	start := time.Now()
	for round := range rounds {
		if round%20 == 0 {
			total += len(acked)
			dir, acked = t.TempDir(), map[string]string{}
		}
		lines := runAndKill(t, dir, rng.Uint64(), time.Duration(rng.Int64N(int64(20*time.Millisecond))))
		for _, l := range lines {
			f := strings.Fields(l)
			if len(f) < 4 || f[0] != "ack" {
				t.Fatalf("round %d: bad line from child: %q", round, l)
			}
			acked[strings.Join(f[1:len(f)-1], " ")] = f[len(f)-1]
		}
		verifyAcked(t, dir, round, acked)
	}
	total += len(acked)
	t.Logf("%d rounds, %d acknowledged writes verified, %v", rounds, total, time.Since(start).Round(time.Millisecond))
}

// runAndKill starts a crash child on dir, waits for its first acknowledgement, lets it run for
// delay and kills it. It returns the complete ack lines the child printed.
func runAndKill(t *testing.T, dir string, childSeed uint64, delay time.Duration) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, fmt.Sprintf("%s=%d", crashSeedEnv, childSeed))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	first := make(chan struct{})
	done := make(chan []string)
	go func() {
		var lines []string
		r := bufio.NewReader(stdout)
		for {
			l, err := r.ReadString('\n')
			if err != nil {
				done <- lines // a last line without '\n' was cut by the kill: not an ack
				return
			}
			if lines = append(lines, strings.TrimSuffix(l, "\n")); len(lines) == 1 {
				close(first)
			}
		}
	}()
	select {
	case <-first:
	case lines := <-done:
		cmd.Wait()
		t.Fatalf("child exited before its first ack (%d lines): %s", len(lines), stderr.Bytes())
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		t.Fatalf("no ack from child within a minute: %s", stderr.Bytes())
	}
	<-time.After(delay) // the fault injection: kill at a random point after writing began
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	lines := <-done
	// The child only stops by being killed; anything on stderr means it failed first.
	if err := cmd.Wait(); err == nil || stderr.Len() > 0 {
		t.Fatalf("child ended with %v, want killed: %s", err, stderr.Bytes())
	}
	return lines
}

// verifyAcked reopens dir and checks every acknowledged write.
func verifyAcked(t *testing.T, dir string, round int, acked map[string]string) {
	t.Helper()
	s, err := store.Open(dir, store.Options{Key: testKey})
	if err != nil {
		t.Fatalf("round %d: reopen after kill: %v", round, err)
	}
	defer s.Close()
	sum := func(b []byte) string { h := sha256.Sum256(b); return hex.EncodeToString(h[:]) }
	have := map[string]string{}
	for _, doc := range []string{"doc-0", "doc-1"} {
		d, err := s.LoadDoc(doc)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			t.Fatalf("round %d: LoadDoc(%s) = %v", round, doc, err)
		}
		if len(d.Quarantined) > 0 {
			t.Fatalf("round %d: %s has quarantined items after a crash: %+v", round, doc, d.Quarantined)
		}
		for _, c := range d.Chunks {
			have[fmt.Sprintf("chunk %s %d", doc, c.Seq)] = sum(c.Data)
		}
	}
	for g := range 6 {
		log := fmt.Sprintf("log-%d", g)
		err := s.ReadLog(log, 0, func(seq uint64, v []byte) error {
			have[fmt.Sprintf("log %s %d", log, seq)] = sum(v)
			return nil
		})
		if err != nil {
			t.Fatalf("round %d: ReadLog(%s) = %v", round, log, err)
		}
	}
	err = s.Scan("crash", "", func(k string, v []byte) error {
		have["kv "+k] = sum(v)
		return nil
	})
	if err != nil {
		t.Fatalf("round %d: Scan = %v", round, err)
	}
	lost := 0
	for id, want := range acked {
		if got := have[id]; got != want {
			if lost++; lost <= 10 {
				t.Errorf("round %d: acknowledged %s: stored sha256 %q, want %s", round, id, got, want)
			}
		}
	}
	if lost > 0 {
		t.Fatalf("round %d: %d of %d acknowledged writes lost or changed", round, lost, len(acked))
	}
}

// TestOpenLockedOtherProcess: while another process holds the folder, Open fails with
// ErrLocked naming the folder; after that process closes it, Open succeeds.
func TestOpenLockedOtherProcess(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), lockChildEnv+"="+dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	if l, err := bufio.NewReader(stdout).ReadString('\n'); l != "open\n" {
		t.Fatalf("child said %q, %v: %s", l, err, stderr.Bytes())
	}

	_, err = store.Open(dir, store.Options{Key: testKey})
	if !errors.Is(err, store.ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Fatalf("Open while another process has it = %v; want ErrLocked naming %s", err, dir)
	}
	t.Logf("locked: %v", err)

	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v: %s", err, stderr.Bytes())
	}
	s, err := store.Open(dir, store.Options{Key: testKey})
	if err != nil {
		t.Fatalf("Open after the other process closed = %v", err)
	}
	s.Close()
}
