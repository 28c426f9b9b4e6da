package main

import (
	"bufio"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
)

// defaultDocMemory is how much memory the CRDT workers may spend on the
// documents they hold open, in all (-doc-memory): an eighth of the
// machine's memory, at least 256 MiB and at most 16 GiB. A relay needs in
// memory only the documents being synced now; the rest is a cache, and what
// it saves is a load from the store. That load is not free: a record loaded
// again between the round trips of its own exchange costs its whole
// decoding each time, and a bound below the working set multiplied the
// relay's CPU tenfold in the fresh-device benchmark. So the default is
// generous, leaving the other seven eighths to the store's page cache and
// the cluster's stream; the bound is for a region whose documents do not
// all fit, which an operator sizes with the flag. Besides it, each worker
// takes about 30 MiB (its runtime and the binary) and the parent its
// store's caches.
func defaultDocMemory() int64 {
	const floor, ceiling = 256 << 20, 16 << 30
	total, ok := memTotal("/proc/meminfo")
	if !ok {
		return floor
	}
	return min(max(total/8, floor), ceiling)
}

// defaultDocIdle is how long a CRDT worker keeps a document nobody is
// syncing (-doc-idle; 0 keeps it until -doc-memory needs the room). A
// relay needs in memory only the documents whose exchanges are under way
// and those being edited now: a few seconds covers an exchange's round
// trips on the worst links Haven serves, and keeping a long record longer
// saves one load from the store at its next edit (tens of milliseconds).
// Letting documents go after 5 s keeps a relay's memory to its working
// set, where -doc-memory alone lets it grow to an eighth of the machine.
const defaultDocIdle = 5 * time.Second

// memTotal reads MemTotal, in bytes, from a /proc/meminfo-shaped file.
func memTotal(path string) (int64, bool) {
	f, err := os.Open(path)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "MemTotal:")
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return kb << 10, err == nil && kb > 0
	}
	return 0, false
}

// docMemoryPerWorker splits the workers' document memory between them;
// 0 (no bound) stays 0.
func docMemoryPerWorker(total int64, workers int) int64 {
	if total <= 0 {
		return 0
	}
	return max(total/int64(max(workers, 1)), 1)
}

// gcPercent is the Go collector's target (GOGC) for the relay's own
// process, unless the environment sets GOGC. Its Go heap is mostly what
// lives as long as it does (the store's caches and memtables, the hub's
// state); at Go's default of 100 it grows to twice that before each
// collection: in the fresh-device load test the relay's peak was 56-73 MiB
// of PSS at 100 and 39-50 at 50, for a collector that took about 5% of its
// CPU in the live load test. The CRDT workers keep Go's default: their Go
// heaps are a few MiB (Automerge's memory is C's, which the collector does
// not see) but allocate fast (every Automerge result, every message), so
// collecting more often would cost them CPU and save nothing that shows.
const gcPercent = 50

// tuneGC sets the collector's target for syncd's command args, unless GOGC
// is set or the command is a CRDT worker.
func tuneGC(args []string) {
	if os.Getenv("GOGC") == "" && (len(args) == 0 || args[0] != "worker") {
		debug.SetGCPercent(gcPercent)
	}
}
