package loadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// clockTicks is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which is 100 on the architectures Haven runs on (amd64, arm64).
const clockTicks = 100

// usage is what a server process tree has cost so far.
type usage struct {
	CPU     float64 // seconds of user+system time, children included
	PeakRSS int64   // bytes: the sum over the tree of each process's VmHWM
	Parts   []int64 // each process's VmHWM: the server's own first, then its children
}

// peakParts shows how a peak divides between the server process and its
// children, e.g. "143+52+52+51+52".
func (u usage) peakParts() string {
	parts := make([]string, len(u.Parts))
	for i, p := range u.Parts {
		parts[i] = mib(p)
	}
	return strings.Join(parts, "+")
}

// procStat is the part of /proc/<pid>/stat the load test reads.
type procStat struct {
	ppid                         int
	utime, stime, cutime, cstime int64
}

func readStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	// The command name (field 2) may hold spaces and parentheses: the
	// fields after it start after the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 15 {
		return procStat{}, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	// f[0] is field 3 (state): ppid is field 4, utime..cstime fields 14-17.
	n := func(k int) int64 { v, _ := strconv.ParseInt(f[k], 10, 64); return v }
	return procStat{ppid: int(n(1)), utime: n(11), stime: n(12), cutime: n(13), cstime: n(14)}, nil
}

// peakRSS reads VmHWM, the process's peak resident set, in bytes.
func peakRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmHWM", pid)
}

// resetPeak makes VmHWM start again from the current resident set (Linux 4.0
// and later), so each phase of a run reports its own peak.
func resetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// children lists the live processes whose parent is pid.
func children(pid int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		child, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if st, err := readStat(child); err == nil && st.ppid == pid {
			out = append(out, child)
		}
	}
	return out
}

// treeUsage adds up a process and its live children (syncd's CRDT workers).
// Children that already exited and were reaped count through the parent's
// cutime and cstime. The peak is the sum of each process's own peak: an upper
// bound on the tree's peak, since the processes need not peak together.
func treeUsage(pid int) (usage, error) {
	st, err := readStat(pid)
	if err != nil {
		return usage{}, err
	}
	hwm, err := peakRSS(pid)
	if err != nil {
		return usage{}, err
	}
	u := usage{CPU: float64(st.utime+st.stime+st.cutime+st.cstime) / clockTicks, PeakRSS: hwm, Parts: []int64{hwm}}
	for _, c := range children(pid) {
		cst, err := readStat(c)
		if err != nil {
			continue // exited meanwhile
		}
		chwm, _ := peakRSS(c)
		u.CPU += float64(cst.utime+cst.stime) / clockTicks
		u.PeakRSS += chwm
		u.Parts = append(u.Parts, chwm)
	}
	return u, nil
}

// resetTreePeak resets VmHWM of a process and its live children.
func resetTreePeak(pid int) error {
	err := resetPeak(pid)
	for _, c := range children(pid) {
		resetPeak(c)
	}
	return err
}

// selfCPU is this process's own CPU time so far, in seconds: the load
// driver's cost, reported so a saturated client side shows up.
func selfCPU() float64 {
	st, err := readStat(os.Getpid())
	if err != nil {
		return 0
	}
	return float64(st.utime+st.stime) / clockTicks
}

// machineCPU is the CPU time all processes on the machine have used so far,
// in seconds (busy time summed over every CPU, from /proc/stat). Set against
// the servers' and this process's own, it shows how much other work ran
// during a measurement.
func machineCPU() float64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line) // cpu user nice system idle iowait irq softirq steal ...
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	var busy int64
	for i, s := range f[1:9] {
		if i == 3 || i == 4 || i == 7 { // idle, iowait, and steal (time the hypervisor gave others)
			continue
		}
		v, _ := strconv.ParseInt(s, 10, 64)
		busy += v
	}
	return float64(busy) / clockTicks
}
