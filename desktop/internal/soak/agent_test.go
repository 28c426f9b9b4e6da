package soak

import (
	"bufio"
	"io"
	"strings"
	"testing"
	"time"

	"haven/desktop/internal/app"
)

// TestAgentMode drives one agent in this process over its stdin and stdout
// protocol, on an offline demo computer (no relay): commands are acked only
// after the app returned, notes show up as seen, its own schedule edits by
// itself, and quit closes the app.
func TestAgentMode(t *testing.T) {
	dir := t.TempDir()
	if err := app.SeedDemo(dir, 6, 2, time.Now()); err != nil {
		t.Fatal(err)
	}
	inR, inW := io.Pipe()
	outR, outW := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- RunAgent(AgentConfig{Name: "test", Dir: dir, Account: "Dr Ada Quill", PIN: accountPIN("Dr Ada Quill"), Seed: 1}, inR, outW, io.Discard)
		outW.Close()
	}()
	lines := make(chan string, 1000)
	go func() {
		sc := bufio.NewScanner(outR)
		for sc.Scan() {
			line, at := stamped(sc.Text())
			if d := time.Since(at); d < 0 || d > time.Minute {
				t.Errorf("line %q stamped %v ago", line, d)
			}
			lines <- line
		}
		close(lines)
	}()
	// Reports from different goroutines of the agent may come in either
	// order (a note can be seen before its ack is printed): a line passed
	// over while waiting for another is kept for a later expect.
	var earlier []string
	expect := func(what string, match func(string) bool) string {
		t.Helper()
		for i, l := range earlier {
			if match(l) {
				earlier = append(earlier[:i], earlier[i+1:]...)
				return l
			}
		}
		deadline := time.After(30 * time.Second)
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatalf("agent ended before %s", what)
				}
				if match(l) {
					return l
				}
				earlier = append(earlier, l)
			case <-deadline:
				t.Fatalf("no %s within 30s", what)
			}
		}
	}
	send := func(cmd string) {
		if _, err := io.WriteString(inW, cmd+"\n"); err != nil {
			t.Fatal(err)
		}
	}
	expect("ready", func(l string) bool { return strings.HasPrefix(l, "ready ") })
	// The resident list loads in the background after the unlock.
	expect("the resident list", func(l string) bool { return strings.HasPrefix(l, "state ") && !strings.Contains(l, " 0 0") })
	// The list can show residents before their timelines are read, and the
	// agent refuses a note until one is ("no resident held yet"): then it
	// tries again once the list has changed.
	var ack string
	for try := 0; ; try++ {
		send("note t-1 4")
		ack = expect("ack of the note", func(l string) bool { return strings.HasPrefix(l, "ack t-1 ") || strings.HasPrefix(l, "nack t-1") })
		if !strings.HasPrefix(ack, "nack t-1 no resident held yet") || try == 20 {
			break
		}
		expect("the list to change", func(l string) bool { return strings.HasPrefix(l, "state ") })
	}
	if !strings.HasPrefix(ack, "ack t-1 note ") {
		t.Fatalf("note: %q", ack)
	}
	expect("the note seen", func(l string) bool { return l == "seen t-1" })
	send("decide t-2 1 r")
	if l := expect("ack of the decision", func(l string) bool { return strings.Contains(l, " t-2") }); !strings.HasPrefix(l, "ack t-2 decide ") {
		t.Fatalf("decide: %q", l)
	}
	send("auto 20")
	expect("an edit on its own schedule", func(l string) bool { return strings.HasPrefix(l, "ack test-") })
	send("auto 0")
	send("status")
	expect("status", func(l string) bool { return strings.HasPrefix(l, "status {") })
	send("quit")
	expect("bye", func(l string) bool { return l == "bye" })
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
