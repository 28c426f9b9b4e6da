package worker

import (
	"runtime"
	"syscall"
)

// bulkNice is how much lower than the child's own a bulk item's thread
// runs: at 10 the kernel gives it about a tenth of the share of a thread
// at the child's priority when both want a core.
const bulkNice = 10

// atLowPriority runs f on an operating-system thread of its own whose
// scheduling priority is lowered by bulkNice, and waits for it. Linux sets
// a nice value per thread. An unprivileged process cannot raise a thread's
// priority again, so the thread is never handed back: the goroutine ends
// still locked to it, and the Go runtime ends the thread with it.
func atLowPriority(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread()
		tid := syscall.Gettid()
		// Getpriority returns 20 minus the nice value (the raw system call).
		if prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, tid); err == nil {
			_ = syscall.Setpriority(syscall.PRIO_PROCESS, tid, min(20-prio+bulkNice, 19))
		}
		f()
	}()
	<-done
}

// threadNice is the calling thread's nice value; for tests.
func threadNice() int {
	prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil {
		return 0
	}
	return 20 - prio
}
