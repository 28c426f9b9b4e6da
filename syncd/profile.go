package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"
)

// profileEnv names a folder where syncd (relay and CRDT workers alike)
// writes CPU profiles, one file a process for every ten seconds, named by
// process and start time: for finding where the time goes in a long run
// whose processes may be killed at any moment (a closed profile survives).
// Unset, nothing is profiled.
const profileEnv = "HAVEN_CPUPROFILE_DIR"

// startProfiles begins the rolling profiles when profileEnv is set.
func startProfiles() {
	dir := os.Getenv(profileEnv)
	if dir == "" {
		return
	}
	go func() {
		for {
			f, err := os.Create(filepath.Join(dir, fmt.Sprintf("cpu-%d-%d.pprof", os.Getpid(), time.Now().Unix())))
			if err != nil {
				return
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return
			}
			<-time.After(10 * time.Second)
			pprof.StopCPUProfile()
			f.Close()
		}
	}()
}
