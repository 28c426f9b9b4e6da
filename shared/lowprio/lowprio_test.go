package lowprio_test

import (
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"haven/shared/lowprio"
)

// TestLowerStaysOnItsThread: work moved by Lower runs at a nice value Nice
// higher.
func TestLowerStaysOnItsThread(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("priorities are set per thread only on Linux")
	}
	own := make(chan int)
	go func() { runtime.LockOSThread(); defer runtime.UnlockOSThread(); own <- lowprio.ThreadNice() }()
	base := <-own
	if base+lowprio.Nice > 19 {
		t.Skipf("the test runs at nice %d already", base)
	}
	lowered := make(chan int)
	go func() { lowprio.Lower(); runtime.Gosched(); lowered <- lowprio.ThreadNice() }()
	if got := <-lowered; got != base+lowprio.Nice {
		t.Errorf("Lower: nice %d, want %d", got, base+lowprio.Nice)
	}
}

// idleChildEnv makes the test binary the child of TestIdleProcess.
const idleChildEnv = "LOWPRIO_IDLE_CHILD"

// TestIdleProcess: after IdleProcess every thread of the process, the ones
// it had and one started after, runs under the idle policy. It runs in a
// child process, since the policy cannot be undone.
func TestIdleProcess(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the idle policy is Linux's")
	}
	if os.Getenv(idleChildEnv) != "" {
		if err := lowprio.IdleProcess(); err != nil {
			t.Fatal(err)
		}
		// A goroutine locked to a thread of its own makes the runtime
		// start another: it must inherit the policy.
		later := make(chan bool)
		go func() { runtime.LockOSThread(); later <- lowprio.ThreadIdle() }()
		if !<-later {
			t.Fatal("a thread started after IdleProcess is not idle")
		}
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			if !taskIdle(t, e.Name()) {
				t.Errorf("thread %s is not idle", e.Name())
			}
		}
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleProcess$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), idleChildEnv+"=1")
	out, err := cmd.CombinedOutput()
	// The child's own verdict, not the binary's: a run that matched no
	// test would pass too.
	if err != nil || !strings.Contains(string(out), "--- PASS: TestIdleProcess") {
		t.Fatalf("child: %v\n%s", err, out)
	}
	// The parent is untouched.
	own := make(chan bool)
	go func() { runtime.LockOSThread(); defer runtime.UnlockOSThread(); own <- lowprio.ThreadIdle() }()
	if <-own {
		t.Error("the parent's thread runs under the idle policy")
	}
}

// taskIdle reads a thread's policy from /proc (field 41 of its stat: 5 is
// SCHED_IDLE).
func taskIdle(t *testing.T, tid string) bool {
	b, err := os.ReadFile("/proc/self/task/" + tid + "/stat")
	if err != nil {
		return true // the thread ended
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	return len(f) > 38 && f[38] == "5"
}
