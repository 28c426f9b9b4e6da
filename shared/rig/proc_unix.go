//go:build unix && !linux

package rig

import (
	"os"
	"os/exec"
	"syscall"
)

// childAttr puts a relay in a process group of its own, so that a kill
// reaches its CRDT workers too.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }

// killGroup SIGKILLs the process group led by pid.
func killGroup(pid int) { syscall.Kill(-pid, syscall.SIGKILL) }

// terminate asks a relay to shut down cleanly.
var terminate os.Signal = syscall.SIGTERM

// StartChild starts cmd in a process group of its own.
func StartChild(cmd *exec.Cmd) error {
	cmd.SysProcAttr = childAttr()
	return cmd.Start()
}
