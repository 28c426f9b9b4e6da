package rig

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestChildOutlivesTheThreadThatAskedForIt: a child started by StartChild
// from a goroutine locked to its thread is not sent its death signal when
// that goroutine returns and the runtime ends the thread (a plain Start
// from there would be: Linux ties the signal to the starting thread).
func TestChildOutlivesTheThreadThatAskedForIt(t *testing.T) {
	type started struct {
		cmd *exec.Cmd
		tid int
		err error
	}
	var s started
	for {
		ch := make(chan started, 1)
		go func() {
			runtime.LockOSThread() // not unlocked: the thread ends with the goroutine
			if syscall.Gettid() == os.Getpid() {
				// The main thread is never ended, only parked: keep it
				// here so that the next goroutine runs on another.
				ch <- started{}
				select {}
			}
			cmd := exec.Command("sleep", "600")
			err := StartChild(cmd)
			ch <- started{cmd, syscall.Gettid(), err}
		}()
		if s = <-ch; s.cmd != nil || s.err != nil {
			break
		}
	}
	if s.err != nil {
		t.Fatal(s.err)
	}
	defer func() {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}()
	// Wait (bounded) for the runtime to end the asking thread; by then the
	// kernel has sent any death signal it was going to send.
	task := fmt.Sprintf("/proc/self/task/%d", s.tid)
	WaitFor(t, 10*time.Second, "the locked goroutine's thread to end", func() bool {
		_, err := os.Stat(task)
		return os.IsNotExist(err)
	})
	if dead, why := killed(s.cmd.Process.Pid); dead {
		t.Errorf("the child was killed when the thread that asked for it ended: %s", why)
	}
}

// killed reports whether pid has exited or has SIGKILL pending.
func killed(pid int) (bool, string) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return true, err.Error()
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		v = strings.TrimSpace(v)
		switch k {
		case "State":
			if strings.HasPrefix(v, "Z") || strings.HasPrefix(v, "X") {
				return true, "state " + v
			}
		case "SigPnd", "ShdPnd":
			mask, _ := strconv.ParseUint(v, 16, 64)
			if mask&(1<<(uint(syscall.SIGKILL)-1)) != 0 {
				return true, k + " has SIGKILL"
			}
		}
	}
	return false, ""
}
