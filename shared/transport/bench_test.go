package transport_test

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"time"

	"haven/shared/transport"
)

// BenchmarkThroughput1KiB pushes 1 KiB frames from a client to the server
// through one connection. The server acknowledges every ackEvery frames and
// the client keeps at most window frames unacknowledged: Send never blocks,
// so a sender that outruns the peer must pace itself, as real callers must.
func BenchmarkThroughput1KiB(b *testing.B) {
	const size, ackEvery, window = 1 << 10, 64, 1024
	opts := transport.Options{SendQueue: 2 * window}
	total := uint64(b.N)
	wsURL, _ := serve(b, opts, func(p *peer, frame []byte) {
		n := binary.BigEndian.Uint64(frame) + 1
		if n%ackEvery == 0 || n == total {
			p.Send(binary.BigEndian.AppendUint64(nil, n))
		}
	})
	var acked atomic.Uint64
	ackSignal := make(chan struct{}, 1)
	client := dial(b, wsURL, opts, func(_ *peer, frame []byte) {
		acked.Store(binary.BigEndian.Uint64(frame))
		select {
		case ackSignal <- struct{}{}:
		default:
		}
	})

	b.SetBytes(size)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for i := range total {
		for i-acked.Load() >= window {
			recv(b, ackSignal, "an ack")
		}
		frame := make([]byte, size)
		binary.BigEndian.PutUint64(frame, i)
		if err := client.Send(frame); err != nil {
			b.Fatalf("Send #%d = %v", i, err)
		}
	}
	for acked.Load() < total {
		recv(b, ackSignal, "the last ack")
	}
	elapsed := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(total)/elapsed, "frames/s")
	b.ReportMetric(float64(total*size)/elapsed, "bytes/s")
}
