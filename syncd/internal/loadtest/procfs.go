package loadtest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// clockTicks is the unit of utime and stime in /proc/<pid>/stat: USER_HZ,
// which is 100 on the architectures Haven runs on (amd64, arm64).
const clockTicks = 100

// usage is what a server process tree has cost so far.
type usage struct {
	CPU float64 // seconds of user+system time, children included
	// PeakPSS is the tree's peak proportional set size: the most that the
	// sum of every process's PSS reached in any sample (pssSampler). PSS
	// counts a page shared by n processes (syncd's binary and libraries,
	// mapped by the parent and each worker) as 1/n in each, so the sum is
	// the memory the tree takes, each page once. Samples may miss a peak
	// shorter than their interval.
	PeakPSS int64
	Parts   []int64 // each process's PSS at that peak: the server's own first, then its children
	// PeakRSS is the sum over the tree of each process's VmHWM: an upper
	// bound that counts shared pages once per process mapping them, and
	// adds peaks that need not have come together.
	PeakRSS int64
}

// peakParts shows how the peak PSS divides between the server process and
// its children, e.g. "43+22+21".
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

// treeUsage adds up the CPU time of a process and its live children
// (syncd's CRDT workers), and their VmHWM. Children that already exited and
// were reaped count through the parent's cutime and cstime. PeakPSS is left
// to the sampler.
func treeUsage(pid int) (usage, error) {
	st, err := readStat(pid)
	if err != nil {
		return usage{}, err
	}
	hwm, err := peakRSS(pid)
	if err != nil {
		return usage{}, err
	}
	u := usage{CPU: float64(st.utime+st.stime+st.cutime+st.cstime) / clockTicks, PeakRSS: hwm}
	for _, c := range children(pid) {
		cst, err := readStat(c)
		if err != nil {
			continue // exited meanwhile
		}
		chwm, _ := peakRSS(c)
		u.CPU += float64(cst.utime+cst.stime) / clockTicks
		u.PeakRSS += chwm
	}
	return u, nil
}

// pss reads a process's proportional set size, in bytes, from
// /proc/<pid>/smaps_rollup (Linux 4.14 and later).
func pss(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if v, ok := strings.CutPrefix(line, "Pss:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/smaps_rollup: no Pss", pid)
}

// treePSS is the PSS of a process and of each of its live children, the
// process's first.
func treePSS(pid int) ([]int64, error) {
	own, err := pss(pid)
	if err != nil {
		return nil, err
	}
	parts := []int64{own}
	for _, c := range children(pid) {
		if p, err := pss(c); err == nil { // else exited meanwhile
			parts = append(parts, p)
		}
	}
	return parts, nil
}

// pssEvery is how often a pssSampler samples: reading smaps_rollup walks
// the process's page tables, about a millisecond for a few hundred MiB,
// charged to the load driver, not the server.
const pssEvery = 100 * time.Millisecond

// pssSampler follows a process tree's PSS, which the kernel keeps no peak
// of, by sampling it, and keeps the highest sum since it started or was
// reset. Its goroutine exits when stop is called.
type pssSampler struct {
	pid  int
	mu   sync.Mutex
	peak []int64 // the parts of the highest sample; guarded by mu
	stop func()
}

func startPSS(pid int) *pssSampler {
	s := &pssSampler{pid: pid}
	s.sample()
	done := make(chan struct{})
	var once sync.Once
	s.stop = func() { once.Do(func() { close(done) }) }
	go func() {
		tick := time.NewTicker(pssEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				s.sample()
			}
		}
	}()
	return s
}

// sample reads the tree's PSS once and keeps it if it is the highest yet.
func (s *pssSampler) sample() {
	parts, err := treePSS(s.pid)
	if err != nil {
		return // the server exited: its last samples stand
	}
	s.mu.Lock()
	if sum(parts) > sum(s.peak) {
		s.peak = parts
	}
	s.mu.Unlock()
}

// highest samples once more and returns the highest sum and its parts.
func (s *pssSampler) highest() (int64, []int64) {
	s.sample()
	s.mu.Lock()
	defer s.mu.Unlock()
	return sum(s.peak), slices.Clone(s.peak)
}

// reset starts the peak again from the tree's PSS now.
func (s *pssSampler) reset() {
	s.mu.Lock()
	s.peak = nil
	s.mu.Unlock()
	s.sample()
}

func sum(xs []int64) int64 {
	var t int64
	for _, x := range xs {
		t += x
	}
	return t
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
