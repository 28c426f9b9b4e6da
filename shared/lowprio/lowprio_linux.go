// Package lowprio runs work that may wait (a relay's bulk calls, a
// desktop's compaction of a document) on a thread the kernel serves only
// when nothing more urgent in the same process, or on the same computer,
// wants the core.
package lowprio

import (
	"runtime"
	"syscall"
)

// Nice is how much lower than the process's own a low-priority thread
// runs: at 10 the kernel gives it about a tenth of the share of a thread
// at the process's priority when both want a core.
const Nice = 10

// Run runs f on an operating-system thread of its own whose scheduling
// priority is lowered by Nice, and waits for it.
func Run(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Lower()
		f()
	}()
	<-done
}

// Lower moves the calling goroutine onto a thread of its own whose
// scheduling priority is lowered by Nice, for the rest of the goroutine's
// life. Linux sets a nice value per thread. An unprivileged process cannot
// raise a thread's priority again, so the thread is never handed back: the
// goroutine stays locked to it, and the Go runtime ends the thread when the
// goroutine ends. The caller must not call runtime.UnlockOSThread.
func Lower() {
	runtime.LockOSThread()
	tid := syscall.Gettid()
	// Getpriority returns 20 minus the nice value (the raw system call).
	if prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid); err == nil {
		_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, min(20-prio+Nice, 19))
	}
}

// ThreadNice is the calling thread's nice value, for tests that check
// where work ran.
func ThreadNice() int {
	prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil {
		return 0
	}
	return 20 - prio
}
