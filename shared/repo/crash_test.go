package repo

import (
	"bufio"
	"context"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
)

const childEnv = "HAVEN_REPO_CRASH_CHILD" // "dir docID"

// TestCrashLosesNothingAcknowledged runs a child process that adds notes to
// a real resident timeline from three goroutines, printing each note's ID only
// after Change returned (the acknowledgement), with compaction running every
// few chunks. The parent SIGKILLs it at a random moment, reopens the data
// folder and checks every acknowledged note is in the timeline. 200 times.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	if os.Getenv(childEnv) != "" {
		t.Skip("in the child")
	}
	iterations := 200
	if testing.Short() {
		iterations = 20
	}
	seed := time.Now().UnixNano()
	if s := os.Getenv("HAVEN_CRASH_SEED"); s != "" {
		fmt.Sscan(s, &seed)
	}
	t.Logf("seed %d (replay the kill timings with HAVEN_CRASH_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewSource(seed))

	dir := t.TempDir()
	st := openStore(t, dir)
	r := New(st, Options{})
	h := newResident(t, r, testEditor(t))
	id := h.ID
	r.Close()
	st.Close()

	acked := map[string]bool{}
	for i := 0; i < iterations; i++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v=false")
		cmd.Env = append(os.Environ(), childEnv+"="+dir+" "+id.String())
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := bufio.NewScanner(out)
		first := make(chan struct{})
		var mu sync.Mutex
		var got []string
		done := make(chan struct{})
		go func() {
			defer close(done)
			once := sync.Once{}
			for lines.Scan() {
				if id, ok := strings.CutPrefix(lines.Text(), "ack "); ok {
					mu.Lock()
					got = append(got, id)
					mu.Unlock()
					once.Do(func() { close(first) })
				}
			}
		}()
		select {
		case <-first:
		case <-done:
			t.Fatalf("iteration %d: child exited before acknowledging anything", i)
		}
		<-time.After(time.Duration(rng.Intn(30000)) * time.Microsecond) // the fault: kill at a random point
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
		cmd.Wait()
		mu.Lock()
		for _, n := range got {
			acked[n] = true
		}
		mu.Unlock()

		st := openStore(t, dir)
		r := New(st, Options{})
		h, err := r.Open(id)
		if err != nil {
			t.Fatalf("iteration %d: reopen: %v", i, err)
		}
		if q := h.Report().Quarantined; len(q) > 0 {
			t.Fatalf("iteration %d: a crash left damaged chunks: %+v", i, q)
		}
		rec, err := record.ReadTimeline(h.Doc())
		if err != nil {
			t.Fatal(err)
		}
		have := map[string]bool{}
		for _, n := range rec.Notes {
			have[n.ID] = true
		}
		for n := range acked {
			if !have[n] {
				t.Fatalf("iteration %d: acknowledged note %s lost (%d acknowledged, %d in record)", i, n, len(acked), len(have))
			}
		}
		r.Close()
		st.Close()
	}
	t.Logf("%d kills, %d acknowledged notes, none lost", iterations, len(acked))
}

// TestCrashChild is the writer TestCrashLosesNothingAcknowledged kills.
func TestCrashChild(t *testing.T) {
	env := os.Getenv(childEnv)
	if env == "" {
		t.Skip("only run as a child of TestCrashLosesNothingAcknowledged")
	}
	dir, idText, _ := strings.Cut(env, " ")
	id := docid.MustParse(idText)
	st := openStore(t, dir)
	r := New(st, Options{CompactAfter: 8})
	h, err := r.Open(id)
	if err != nil {
		fmt.Println("open failed:", err)
		os.Exit(2)
	}
	e := testEditor(t)
	var out sync.Mutex
	var wg sync.WaitGroup
	for w := 0; w < 3; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var note string
				err := h.Change(context.Background(), func(doc *crdt.Doc) (err error) {
					note, err = e.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: "Checked at night; asleep."})
					return err
				})
				if err != nil {
					fmt.Println("change failed:", err)
					os.Exit(3)
				}
				out.Lock()
				fmt.Println("ack " + note)
				out.Unlock()
			}
		}()
	}
	wg.Wait()
}
