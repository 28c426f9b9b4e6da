package loadtest

import (
	"flag"
	"os"
	"os/exec"
	"testing"
)

var clientFlag = flag.String("loadtest.client", envString("HAVEN_BENCH_CLIENT", "haven"),
	"the fresh device: haven (Haven's own client; Bootstrap from syncd) or js (the official JavaScript client, syncd/interop/fetch.mjs: a find per record from either server) (HAVEN_BENCH_CLIENT)")

var historyFlag = flag.Int("loadtest.history", envInt("HAVEN_BENCH_HISTORY", 0),
	"care-plan updates each fresh-device record has had, each a change of a few operations (HAVEN_BENCH_HISTORY)")

// fetchScript is the official JavaScript client as a fresh device,
// relative to this package.
const fetchScript = "../../interop/fetch.mjs"

// freshClient is the fresh device's script for FreshConfig.JSClient, or ""
// for Haven's own client.
func freshClient(b *testing.B) string {
	switch *clientFlag {
	case "haven":
		return ""
	case "js":
		if _, err := exec.LookPath("node"); err != nil {
			b.Fatalf("-loadtest.client js: node is not installed (make deps)")
		}
		if _, err := os.Stat(fetchScript); err != nil {
			b.Fatalf("-loadtest.client js: %v", err)
		}
		return fetchScript
	default:
		b.Fatalf("unknown client %q in -loadtest.client (haven, js)", *clientFlag)
		return ""
	}
}
