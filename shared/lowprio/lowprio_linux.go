// Package lowprio runs work that may wait (a relay's bulk calls, a
// desktop's compaction of a document) on a thread the kernel serves only
// when nothing more urgent in the same process, or on the same computer,
// wants the core.
package lowprio

import (
	"runtime"
	"syscall"
	"unsafe"
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

// schedIdle is Linux's SCHED_IDLE policy: a thread under it runs only when
// no thread of an ordinary policy on the computer wants the core.
const schedIdle = 5

// Idle moves the calling goroutine onto a thread of its own that runs only
// when nothing else on the computer wants a core, for the rest of the
// goroutine's life (locked as Lower's is). It stands for work done on
// another computer: a test's simulated attacker, sharing the machine with
// what it attacks, takes only the CPU they leave. Not for work holding
// locks others wait on: such a thread can wait indefinitely while busy
// threads run.
func Idle() {
	runtime.LockOSThread()
	var param struct{ priority int32 }
	syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(syscall.Gettid()), schedIdle, uintptr(unsafe.Pointer(&param)))
}

// ThreadIdle reports whether the calling thread runs under Idle's policy,
// for tests that check where work ran.
func ThreadIdle() bool {
	policy, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(syscall.Gettid()), 0, 0)
	return errno == 0 && policy == schedIdle
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
