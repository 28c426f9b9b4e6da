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
