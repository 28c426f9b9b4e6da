package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/syncd/internal/worker"
)

// holdDocEnv names a document whose every work item the CRDT workers of
// test relays hold, as a message that sent Automerge into an endless loop
// would; holdDirEnv a folder where each worker marks its hold with a file
// named for its process. Children inherit both from the test binary.
const (
	holdDocEnv = "HAVEN_SYNCD_TEST_HOLD_DOC"
	holdDirEnv = "HAVEN_SYNCD_TEST_HOLD_DIR"
)

// A worker child of a test relay asked to hold a document runs here, before
// TestMain would run it as a plain worker.
func init() {
	doc := os.Getenv(holdDocEnv)
	if doc == "" || os.Getenv(testWorkerEnv) != "child" {
		return
	}
	dir := os.Getenv(holdDirEnv)
	err := worker.RunTestChild(nil, func(a worker.WorkArgs) {
		if a.Doc != doc {
			return
		}
		os.WriteFile(filepath.Join(dir, strconv.Itoa(os.Getpid())), nil, 0o600)
		// The hang itself, not a wait for anything: a minute, longer than
		// the test, but not forever, so that a relay that failed to kill
		// the worker leaves no process behind.
		<-time.After(time.Minute)
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// holds counts the workers that have held a work item (holdDirEnv).
func holds(dir string) int {
	marks, _ := os.ReadDir(dir)
	return len(marks)
}

// TestShutdownWithAHungWorker: a message that hangs its CRDT worker holds
// up nothing else (another document's changes sync meanwhile) and costs one
// restart, at the worker deadline; the message is then replayed alone and
// hangs again. Told to stop then (as SIGTERM does: the run context ends),
// the relay exits within 10 s, though the deadline is longer, with nothing
// replayed during shutdown; and since the message was never confirmed, its
// device sends it again to the next relay, which stores it.
func TestShutdownWithAHungWorker(t *testing.T) {
	// Longer than the 10 s shutdown bound, so that only cutting the hung
	// call short on shutdown can meet it.
	const deadline = 12 * time.Second
	held, marks := docid.New(), t.TempDir()
	t.Setenv(holdDocEnv, held.String())
	t.Setenv(holdDirEnv, marks)
	data := t.TempDir()
	p := startRelay(t, data, anyPort, "-worker-timeout", deadline.String())
	home := idRE.FindString(p.admin("create-home", "Larch House"))
	a := newDevice(t, "a", p.enroll(home, "PC A"), p.url())
	b := newDevice(t, "b", p.enroll(home, "PC B"), p.url())
	waitFor(t, "both devices online", func() bool { return a.online() && b.online() })

	doc := crdt.New()
	if _, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("held", "k") }); err != nil {
		t.Fatal(err)
	}
	if _, err := a.repo.Create(context.Background(), held, doc); err != nil {
		t.Fatal(err)
	}
	a.client.Changed(held)
	waitFor(t, "a worker to hang on a's message", func() bool { return holds(marks) == 1 })
	hung := time.Now()

	docs := b.newResident(home, "Marlow")
	waitFor(t, "b's new resident confirmed", func() bool { return b.client.Synced(docs.RecordID) && b.client.Synced(docs.TimelineID) })
	if n := metrics(t, p)["haven_relay_worker_restarts_total"]; n != 0 {
		t.Fatalf("b's documents were confirmed %v into the hang, after the hung worker was restarted: they waited for it", time.Since(hung))
	}
	t.Logf("another document synced %v into the hang", time.Since(hung).Round(time.Millisecond))

	waitFor(t, "the hung worker killed at its deadline and the message held again, alone", func() bool { return holds(marks) == 2 })
	t.Logf("the hung worker was killed, and the message replayed, %v into the hang (deadline %v)", time.Since(hung).Round(time.Millisecond), deadline)
	if m := metrics(t, p); m["haven_relay_worker_restarts_total"] != 1 || m["haven_relay_worker_timeouts_total"] != 1 {
		t.Fatalf("worker restarts = %v, timeouts = %v after the hang, want 1 each", m["haven_relay_worker_restarts_total"], m["haven_relay_worker_timeouts_total"])
	}
	if a.client.Synced(held) {
		t.Fatal("the relay confirmed changes no worker has applied")
	}

	began := time.Now()
	stopped := make(chan struct{})
	go func() { p.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(30 * time.Second):
		t.Fatal("the relay had not exited 30 s after it was told to stop, with a worker hung in a call")
	}
	took := time.Since(began)
	t.Logf("the relay exited %v after it was told to stop, a worker hung in a call", took.Round(time.Millisecond))
	if took >= 10*time.Second {
		t.Errorf("the relay took %v to exit with a worker hung in a call, want under 10 s", took)
	}
	if n := holds(marks); n != 2 {
		t.Errorf("%d workers held the message, want 2: nothing is replayed during shutdown", n)
	}

	// Nothing was lost: a's change was never confirmed, so a sends it again.
	t.Setenv(holdDocEnv, "")
	startRelay(t, data, p.addr)
	waitFor(t, "a's held change confirmed by the restarted relay", func() bool { return a.client.Synced(held) })
}
