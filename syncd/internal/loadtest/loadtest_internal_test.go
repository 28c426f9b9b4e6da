package loadtest

import (
	"bytes"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestNoteTextRoundTrip(t *testing.T) {
	sent := time.Unix(1712345678, 901234567)
	sender, seq, got, err := parseNoteText(noteText(7, 123, sent))
	if err != nil || sender != 7 || seq != 123 || !got.Equal(sent) {
		t.Fatalf("parseNoteText(noteText(7, 123, %v)) = %d, %d, %v, %v", sent, sender, seq, got, err)
	}
	for _, s := range []string{"Mrs Marlow slept well", "load test: client 7, edit 123", "load test: client x, edit 1, sent 2",
		"load test: client 7, edit 123, sent 99x"} {
		if _, _, _, err := parseNoteText(s); err == nil {
			t.Fatalf("parseNoteText(%q) parsed; it is not a load-test note", s)
		}
	}
}

func TestPercentile(t *testing.T) {
	var lat []time.Duration
	for i := 100; i >= 1; i-- {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.95, 95 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {1, 100 * time.Millisecond}} {
		if got := percentile(lat, c.p); got != c.want {
			t.Errorf("percentile(1..100 ms, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := percentile(nil, 0.99); got != 0 {
		t.Errorf("percentile(nil) = %v, want 0", got)
	}
}

func TestTreeUsageOfThisProcess(t *testing.T) {
	// The kernel counts a process's CPU in ticks of 10 ms: a test process
	// just started may have used none yet. Spend some, by the kernel's own
	// precise count, so that treeUsage has CPU to report.
	spendCPU(t, 50*time.Millisecond)
	u, err := treeUsage(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.PeakRSS <= 0 || u.CPU <= 0 {
		t.Fatalf("treeUsage(self) = %+v, want a peak", u)
	}
	// This process's PSS is more than nothing and no more than its peak
	// resident set, read after it (a shared page counts in part).
	s := startPSS(os.Getpid())
	defer s.stop()
	peak, parts := s.highest()
	hwm, err := peakRSS(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) == 0 || parts[0] <= 0 || parts[0] > hwm || peak < parts[0] {
		t.Fatalf("PSS of self = %d (parts %v), peak resident %d: want 0 < PSS <= peak resident", peak, parts, hwm)
	}
	if err := resetPeak(os.Getpid()); err != nil {
		t.Fatalf("resetPeak(self) = %v", err)
	}
	if machineCPU() <= 0 {
		t.Fatal("machineCPU() = 0")
	}
}

// The proxy counts every byte each way and passes them through unchanged.
func TestCountingProxy(t *testing.T) {
	echo, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer echo.Close()
	go func() {
		c, err := echo.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	p, err := startProxy(echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte("haven"), 1000)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo through the proxy: %v", err)
	}
	if up, down := p.Bytes(); up != int64(len(msg)) || down != int64(len(msg)) {
		t.Fatalf("Bytes() = %d up, %d down, want %d each", up, down, len(msg))
	}
}

// spendCPU computes until this process has used at least d more CPU time
// by getrusage's count.
func spendCPU(t *testing.T, d time.Duration) {
	t.Helper()
	used := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	x, until := uint64(1), used()+d
	for used() < until {
		for i := 0; i < 100000; i++ {
			x = x*6364136223846793005 + 1442695040888963407
		}
	}
	if x == 0 {
		t.Log(x) // keeps the loop's work
	}
}

// A server whose fresh-device run failed is shown beside the other with
// the figures it had (its seeding's) and why it failed, and no ratio is
// drawn against it.
func TestFreshTableShowsAFailedServer(t *testing.T) {
	haven := FreshResult{Server: Haven, JSClient: true, Records: 10, Docs: 10, SavedBytes: 1 << 20,
		Fetch: 1500 * time.Millisecond, FetchDown: 1 << 20, SeedPeak: 100 << 20, ServerPeak: 90 << 20}
	js := FreshResult{Server: JS, JSClient: true, SavedBytes: 1 << 20, SeedCPU: 12.5, SeedPeak: 777 << 20,
		Failed: "the JavaScript client: record unavailable"}
	table := FreshTable([]FreshResult{haven, js})
	for _, want := range []string{"FAILED", js.Failed, "777", "1.50", "no JavaScript server run to compare with"} {
		if !strings.Contains(table, want) {
			t.Errorf("the table lacks %q:\n%s", want, table)
		}
	}
	if strings.Contains(table, "faster") || strings.Contains(table, "peak memory <=") {
		t.Errorf("the table draws a ratio against a failed run:\n%s", table)
	}
}
