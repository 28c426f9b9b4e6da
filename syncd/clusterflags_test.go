package main

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// The routes' TLS files go together, with a cluster, and must hold what
// they say: a node never starts with routes in the clear, or half
// configured, when its operator asked for TLS.
func TestClusterTLSFlagsAreCheckedAtStart(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	if err := os.WriteFile(junk, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	cluster := []string{"-cluster-name", "region", "-cluster-listen", "127.0.0.1:1", "-cluster-peers", "127.0.0.1:2"}
	for name, flags := range map[string][]string{
		"a certificate alone":      append([]string{"-cluster-tls-cert", junk}, cluster...),
		"no cluster":               {"-cluster-tls-cert", junk, "-cluster-tls-key", junk, "-cluster-tls-ca", junk},
		"files that hold no PEM":   append([]string{"-cluster-tls-cert", junk, "-cluster-tls-key", junk, "-cluster-tls-ca", junk}, cluster...),
		"files that are not there": append([]string{"-cluster-tls-cert", junk + "x", "-cluster-tls-key", junk + "x", "-cluster-tls-ca", junk + "x"}, cluster...),
	} {
		args := append([]string{"serve", "-data", filepath.Join(t.TempDir(), "data"), "-listen", anyPort}, flags...)
		if err := run(context.Background(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("syncd serve with %s started, want it refused", name)
		}
	}
}
