package lowprio_test

import (
	"runtime"
	"testing"

	"haven/shared/lowprio"
)

// TestLowerAndIdleStayOnTheirThread: work moved by Lower runs at a nice
// value Nice higher, work moved by Idle under the idle policy, and the
// goroutines that called neither keep the process's priority.
func TestLowerAndIdleStayOnTheirThread(t *testing.T) {
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
	idle := make(chan bool)
	go func() { lowprio.Idle(); runtime.Gosched(); idle <- lowprio.ThreadIdle() }()
	if !<-idle {
		t.Error("Idle: the thread is not under the idle policy")
	}
	go func() { runtime.LockOSThread(); defer runtime.UnlockOSThread(); idle <- lowprio.ThreadIdle() }()
	if <-idle {
		t.Error("a thread that did not call Idle runs under the idle policy")
	}
}
