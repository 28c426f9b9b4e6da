// Package lowprio runs work that may wait (a relay's bulk calls, a
// desktop's compaction of a document) on a thread the kernel serves only
// when nothing more urgent in the same process, or on the same computer,
// wants the core.
package lowprio

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
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

// IdleProcess puts every thread of the calling process under SCHED_IDLE, so
// the whole process runs only when nothing else on the computer wants a
// core; threads it starts later inherit the policy. It stands for work done
// on another computer: a test's simulated attacker, sharing the machine
// with what it attacks, takes only the CPU they leave.
//
// It is for a whole process, never for some goroutines of one: a goroutine
// on an idle thread holds one of the Go runtime's processors (GOMAXPROCS)
// while the kernel keeps its thread waiting, so the process's other
// goroutines, however urgent, would wait for the busy moments to pass.
func IdleProcess() error {
	// A thread starting while the threads are listed may copy the old
	// policy: list again until a pass finds every thread idle.
	for pass := 0; pass < 10; pass++ {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		changed := false
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			if policy, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETSCHEDULER, uintptr(tid), 0, 0); errno == 0 && policy == schedIdle {
				continue
			}
			var param struct{ priority int32 }
			if _, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETSCHEDULER, uintptr(tid), schedIdle, uintptr(unsafe.Pointer(&param))); errno != 0 && errno != syscall.ESRCH {
				return fmt.Errorf("thread %d: %w", tid, errno)
			}
			changed = true
		}
		if !changed {
			return nil
		}
	}
	return errors.New("threads kept starting while the policy was set")
}

// ThreadIdle reports whether the calling thread runs under IdleProcess's policy,
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
