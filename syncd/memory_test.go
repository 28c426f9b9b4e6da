package main

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMemTotal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meminfo")
	if err := os.WriteFile(path, []byte("MemFree:  1000 kB\nMemTotal:       24683748 kB\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, ok := memTotal(path); !ok || got != 24683748<<10 {
		t.Fatalf("memTotal = %d, %v; want %d, true", got, ok, int64(24683748)<<10)
	}
	if _, ok := memTotal(filepath.Join(t.TempDir(), "none")); ok {
		t.Fatal("memTotal of a missing file reports a size")
	}
}

func TestDocMemoryPerWorker(t *testing.T) {
	for _, c := range []struct {
		total   int64
		workers int
		want    int64
	}{{96 << 20, 2, 48 << 20}, {96 << 20, 0, 96 << 20}, {0, 2, 0}, {-1, 2, 0}, {1, 4, 1}} {
		if got := docMemoryPerWorker(c.total, c.workers); got != c.want {
			t.Errorf("docMemoryPerWorker(%d, %d) = %d, want %d", c.total, c.workers, got, c.want)
		}
	}
}
