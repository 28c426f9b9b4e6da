package store

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkAppendChunk measures durable AppendChunk (returns after fsync) with 1 and with 16
// concurrent writers, each on its own document, 512-byte chunks. b.N is the total number of
// appends. It reports latency percentiles, throughput and how many appends shared a sync.
func BenchmarkAppendChunk(b *testing.B) {
	for _, writers := range []int{1, 16} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			s := openInternal(b, b.TempDir())
			chunk := make([]byte, 512)
			for i := range chunk {
				chunk[i] = byte(i * 7)
			}
			lat := make([]time.Duration, b.N)
			var next atomic.Int64
			commits := s.commits.Load()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for w := range writers {
				doc := fmt.Sprintf("doc-%d", w)
				wg.Go(func() {
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if _, err := s.AppendChunk(context.Background(), doc, chunk); err != nil {
							b.Error(err)
							return
						}
						lat[i] = time.Since(t0)
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			commits = s.commits.Load() - commits

			slices.Sort(lat)
			pct := func(p float64) float64 {
				return float64(lat[int(p*float64(len(lat)-1))]) / float64(time.Millisecond)
			}
			b.ReportMetric(pct(0.50), "p50-ms")
			b.ReportMetric(pct(0.99), "p99-ms")
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "chunks/s")
			b.ReportMetric(float64(b.N)/float64(max(commits, 1)), "chunks/sync")
		})
	}
}

// BenchmarkMemtableFill measures the save that fills a memtable: it waits
// while Badger allocates the next one, so a store's slowest saves come
// every memtable's worth of writes. One writer appends 700-byte chunks
// (a note) until 32 MiB are written, at each memtable size; it reports
// the slowest save and the 99.99th percentile beside the median.
func BenchmarkMemtableFill(b *testing.B) {
	for _, mt := range []int64{2 << 20, 8 << 20} {
		b.Run(fmt.Sprintf("memtable=%dMiB", mt>>20), func(b *testing.B) {
			var lat []time.Duration
			for range b.N {
				s, err := Open(b.TempDir(), Options{Key: internalKey, MemTableSize: mt, GCInterval: -1})
				if err != nil {
					b.Fatal(err)
				}
				chunk := make([]byte, 700)
				for i := range chunk {
					chunk[i] = byte(i * 13)
				}
				for i := range (32 << 20) / len(chunk) {
					t0 := time.Now()
					if _, err := s.AppendChunk(context.Background(), fmt.Sprintf("doc-%d", i%60), chunk); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				s.Close()
			}
			slices.Sort(lat)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(ms(lat[len(lat)/2]), "p50-ms")
			b.ReportMetric(ms(lat[len(lat)*9999/10000]), "p99.99-ms")
			b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
		})
	}
}
