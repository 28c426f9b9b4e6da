package rig

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// RunFunc is syncd's command function: the subcommand and its flags in
// args, what it prints on stdout and stderr. syncd's own tests hand theirs
// to InProcess.
type RunFunc func(ctx context.Context, args []string, stdout, stderr io.Writer) error

// Syncd is how the rig runs syncd's commands: a binary built from this
// checkout (Binary), or syncd's command function in this process
// (InProcess). The zero Syncd runs nothing.
type Syncd struct {
	bin string
	run RunFunc
}

// InProcess runs syncd's commands through run, in this process: for
// syncd's own tests, which cannot exec a binary of themselves.
func InProcess(run RunFunc) Syncd { return Syncd{run: run} }

// Exec runs the syncd binary at path (e.g. one given on a benchmark's
// command line).
func Exec(path string) Syncd { return Syncd{bin: path} }

// Path is the binary's path, or "" in process.
func (s Syncd) Path() string { return s.bin }

// built is the one build of syncd per test binary: the first caller builds,
// later and concurrent callers wait for it and share the result.
var built struct {
	once sync.Once
	bin  string
	err  error
}

// Binary builds haven/syncd from this checkout into a temporary folder,
// once per process, and returns it. The folder outlives the tests that use
// it: the binary is shared by all of them, and the system's temporary
// folder is cleared by the system.
func Binary() (Syncd, error) {
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "haven-rig-syncd-")
		if err != nil {
			built.err = err
			return
		}
		bin := filepath.Join(dir, "syncd")
		out, err := exec.Command("go", "build", "-o", bin, "haven/syncd").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build haven/syncd: %v\n%s", err, out)
			return
		}
		built.bin = bin
	})
	return Syncd{bin: built.bin}, built.err
}

// MustBinary is Binary for a test: a failed build fails it.
func MustBinary(t testing.TB) Syncd {
	t.Helper()
	s, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Run runs one syncd command to its end and returns what it printed on
// stdout; a failure's error carries what it printed on stderr.
func (s Syncd) Run(ctx context.Context, args ...string) (string, error) {
	var out, errb bytes.Buffer
	var err error
	switch {
	case s.run != nil:
		err = s.run(ctx, args, &out, &errb)
	case s.bin != "":
		cmd := exec.CommandContext(ctx, s.bin, args...)
		cmd.Stdout, cmd.Stderr = &out, &errb
		err = cmd.Run()
	default:
		return "", errors.New("rig: no syncd to run")
	}
	if err != nil {
		// Only the subcommand: its arguments may hold a one-time code.
		return out.String(), fmt.Errorf("syncd %s: %w: %s", strings.Join(args[:min(1, len(args))], ""), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
