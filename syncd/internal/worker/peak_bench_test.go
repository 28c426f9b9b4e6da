package worker

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
	"haven/shared/record/recordtest"
	"haven/shared/syncer"
)

// BenchmarkHandshakePeak prints the children's peak memory (the sum of
// their PSS, sampled) while a device that already holds a region's long
// records, as one that has just fetched them whole, opens a sync with the
// relay for each, as many at once as the pool takes: every record is
// loaded into a child, answered and, past the bound, let go again. The
// records are copies of one resident's record after 2,000 care-plan
// updates, and the bound is the fresh-device load test's (96 MiB for the
// workers, two of them).
func BenchmarkHandshakePeak(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("reads the children's memory through /proc")
	}
	const (
		records = 40
		workers = 2
		memory  = 96 << 20
	)
	saved := longRecord(b, 2000)
	for range b.N {
		host := newTestHost(b)
		ids := make([]docid.ID, records)
		for i := range ids {
			ids[i] = docid.New()
			// Stored as the relay stores a document a device created: its
			// first save, whole, as one chunk.
			if _, err := host.AppendChunk(context.Background(), ids[i].String(), saved); err != nil {
				b.Fatal(err)
			}
		}
		p := runPool(b, host, Config{Workers: workers, DocMemory: memory / workers})
		idle := p.childrenPSS()
		peak := samplePeak(p.childrenPSS)
		t0 := time.Now()
		var wg sync.WaitGroup
		next := make(chan docid.ID)
		errs := make(chan error, records)
		for range workers * callsPerChild {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range next {
					c := newClient("fresh")
					d, err := crdt.Load(saved)
					if err != nil {
						errs <- err
						continue
					}
					ss, err := crdt.SyncStateSharing(d, d.Heads())
					if err != nil {
						errs <- err
						continue
					}
					c.doc, c.ss = d, ss
					if err := c.handshake(p, id); err != nil {
						errs <- err
					}
				}
			}()
		}
		for _, id := range ids {
			next <- id
		}
		close(next)
		wg.Wait()
		took := time.Since(t0)
		max := peak()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		b.Logf("%d records of %d KB saved: children idle %d MiB, peak %d MiB, at rest %d MiB; %v", records, len(saved)>>10, idle>>20, max>>20, p.childrenPSS()>>20, took.Round(time.Millisecond))
		b.ReportMetric(float64(max)/(1<<20), "peak-MiB")
		p.Close()
	}
}

// handshake sends the relay the device's opening message and takes in
// what comes back, twice: the exchange a device that has just fetched a
// document whole makes (it never settles on its own here, for want of a
// connection's pacing; two rounds make the work each call does).
func (c *client) handshake(p *Pool, doc docid.ID) error {
	for range 2 {
		msg, ok, err := c.ss.Generate()
		if err != nil || !ok {
			return err
		}
		reply, err := p.Work(context.Background(), WorkArgs{Doc: doc.String(), Peers: []syncer.Peer{c.peer}, Msgs: []syncer.In{{From: c.id, Data: msg}}})
		if err != nil {
			return err
		}
		if reply.Failed != nil {
			return fmt.Errorf("work failed: %+v", reply.Failed)
		}
		for _, o := range reply.Out {
			if err := c.ss.Receive(o.Data); err != nil {
				return err
			}
		}
	}
	return nil
}

// longRecord is the saved form of a resident's record after updates
// care-plan updates, each its own change.
func longRecord(b *testing.B, updates int) []byte {
	org := recordtest.NewOrg()
	ed := org.Editor(record.Author{UserID: "u1", Name: "Sam Senior", Role: record.SeniorCarer, DeviceID: "pc-1"}, record.Rules{NHS: nhs.Demo})
	docs, err := ed.NewResident("home-1", record.Identity{NHSNumber: "9990000018", GivenName: "Edith", FamilyName: "Marlow",
		DateOfBirth: "1931-04-02", Sex: "female", Status: record.StatusActive})
	if err != nil {
		b.Fatal(err)
	}
	for i := range updates {
		if err := ed.UpdateCarePlan(docs.Record, record.CarePlanEntry{Domain: record.Domains[i%len(record.Domains)],
			Need: fmt.Sprintf("Needs as reviewed at review %d", i), Goal: fmt.Sprintf("Goal agreed at review %d", i),
			Support: fmt.Sprintf("How to support me, as of review %d.", i)}); err != nil {
			b.Fatal(err)
		}
	}
	return docs.Record.Save()
}

// samplePeak samples read every 20 ms until the returned function is
// called, which returns the highest value read.
func samplePeak(read func() int64) (stop func() int64) {
	done := make(chan struct{})
	result := make(chan int64)
	go func() {
		peak := read()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				result <- max(peak, read())
				return
			case <-tick.C:
				peak = max(peak, read())
			}
		}
	}()
	return func() int64 { close(done); return <-result }
}

// childrenPSS sums the proportional set size of the running children.
func (p *Pool) childrenPSS() int64 {
	var sum int64
	for _, pr := range p.procs {
		pr.life.Lock()
		c := pr.cur
		pr.life.Unlock()
		if c != nil {
			sum += pss(c.cmd.Process.Pid)
		}
	}
	return sum
}

// pss reads a process's proportional set size in bytes (0 if gone).
func pss(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := bytes.Fields(sc.Bytes())
		if len(f) >= 2 && string(f[0]) == "Pss:" {
			kb, _ := strconv.ParseInt(string(f[1]), 10, 64)
			return kb << 10
		}
	}
	return 0
}
