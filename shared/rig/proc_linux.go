package rig

import (
	"os"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
)

// childAttr puts a relay in a process group of its own, so that a kill
// reaches its CRDT workers too, and has the kernel kill it if the tests
// die first.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// killGroup SIGKILLs the process group led by pid.
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }

// terminate asks a relay to shut down cleanly.
var terminate os.Signal = syscall.SIGTERM

// StartChild starts cmd as childAttr says (its own process group, killed
// if the tests die) from a thread that lasts as long as the test process.
// Linux sends the death signal when the thread that started the child
// ends, not the process, and the Go runtime ends a thread when a goroutine
// locked to it returns (lowprio.Lower locks a goroutine for good): a relay
// started from such a thread would be killed with it, mid-test.
func StartChild(cmd *exec.Cmd) error {
	cmd.SysProcAttr = childAttr()
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread outlives every child
			for r := range spawner.reqs {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawner.reqs <- spawnReq{cmd, done}
	return <-done
}

// spawner is the goroutine, locked to its thread, that starts children.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	done chan error
}
