package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
)

// jsFetcher is the official JavaScript client run as a fresh device
// (syncd/interop/fetch.mjs): an automerge-repo Repo with nothing in it that
// finds the records as a new browser would, jsFindsAtOnce at a time. It stays connected
// until close, so the session's tail (the handshakes after the fetch) is on
// the wire as it would be.
type jsFetcher struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	events chan fetchEvent // closed at the end of its output
	exited chan struct{}   // closed once the process has been waited for
	stderr bytes.Buffer
	heads  map[docid.ID][]crdt.Hash // each record's heads as the client holds them; set by fetch
	errs   []string                 // error frames the server sent
	cpu    time.Duration            // the client's CPU time from its first find to holding every record
}

// fetchEvent is one line fetch.mjs prints.
type fetchEvent struct {
	Event      string   `json:"event"`
	DocumentID string   `json:"documentId"`
	Heads      []string `json:"heads"`
	Docs       int      `json:"docs"`
	CPUMillis  int64    `json:"cpuMs"`
	Message    string   `json:"message"`
	raw        string
}

// jsClientURL is the URL the JavaScript client dials for srv through addr:
// syncd takes the credential as a token parameter, as browsers send it.
func jsClientURL(srv *Server, addr, cred string) string {
	u := srv.URL(addr)
	if cred != "" {
		u += "?token=" + url.QueryEscape(cred)
	}
	return u
}

// jsFindsAtOnce is how many records the JavaScript client asks for at a
// time (fetch.mjs --at-once): a hundred keeps the pipe to either server
// full, while each record it waits for arrives within the minute
// automerge-repo gives one before calling it unavailable. Asked for a
// thousand long records at once, the client needs longer than that to
// load them all, one after another, and the last time out on either
// server.
const jsFindsAtOnce = 100

// startFetcher runs script (fetch.mjs) against wsURL for ids.
func startFetcher(script, wsURL string, ids []docid.ID) (*jsFetcher, error) {
	args := []string{filepath.Base(script), "--at-once", strconv.Itoa(jsFindsAtOnce), wsURL}
	for _, id := range ids {
		args = append(args, id.String())
	}
	cmd := exec.Command("node", args...)
	cmd.Dir = filepath.Dir(script) // its node_modules
	cmd.Env = append(os.Environ(), "DEBUG=")
	f := &jsFetcher{cmd: cmd, events: make(chan fetchEvent, 256), exited: make(chan struct{})}
	cmd.Stderr = &f.stderr
	var err error
	if f.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the JavaScript client: %w", err)
	}
	go func() {
		defer close(f.events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			e := fetchEvent{Event: "unparsable"}
			json.Unmarshal(sc.Bytes(), &e)
			e.raw = sc.Text()
			f.events <- e
		}
	}()
	go func() {
		cmd.Wait() // after stdout reaches its end
		close(f.exited)
	}()
	return f, nil
}

// fetch waits for the client to connect and then to hold every record,
// and returns when it connected: the fetch is timed from there, as Node's
// own start is no server's doing.
func (f *jsFetcher) fetch(ctx context.Context, n int) (connected time.Time, err error) {
	f.heads = map[docid.ID][]crdt.Hash{}
	for {
		var e fetchEvent
		var ok bool
		select {
		case e, ok = <-f.events:
		case <-ctx.Done():
			return connected, fmt.Errorf("the JavaScript client: %w (%d of %d records)", ctx.Err(), len(f.heads), n)
		}
		if !ok {
			return connected, fmt.Errorf("the JavaScript client exited: %s", strings.TrimSpace(f.stderr.String()))
		}
		switch e.Event {
		case "connected":
			connected = time.Now()
		case "doc":
			id, err := docid.Parse(e.DocumentID)
			if err != nil {
				return connected, fmt.Errorf("the JavaScript client reported %q: %w", e.raw, err)
			}
			var hs []crdt.Hash
			for _, s := range e.Heads {
				h, err := crdt.ParseHash(s)
				if err != nil {
					return connected, err
				}
				hs = append(hs, h)
			}
			f.heads[id] = hs
		case "error":
			f.errs = append(f.errs, e.Message)
		case "fetched":
			if e.Docs != n || len(f.heads) != n {
				return connected, fmt.Errorf("the JavaScript client holds %d of %d records", len(f.heads), n)
			}
			f.cpu = time.Duration(e.CPUMillis) * time.Millisecond
			return connected, nil
		default:
			return connected, fmt.Errorf("the JavaScript client: %s", e.raw)
		}
	}
}

// heldHeads is what the client holds of id.
func (f *jsFetcher) heldHeads(id docid.ID) ([]crdt.Hash, error) {
	h, ok := f.heads[id]
	if !ok {
		return nil, errors.New("not held")
	}
	return h, nil
}

func (f *jsFetcher) serverErrors() []string { return f.errs }

// close ends the client's input, which ends its session; it is killed if
// it does not exit within a few seconds.
func (f *jsFetcher) close() {
	f.stdin.Close()
	select {
	case <-f.exited:
	case <-time.After(10 * time.Second):
		f.cmd.Process.Kill()
		<-f.exited
	}
}

// heldHeads is what the device holds of id.
func (d *device) heldHeads(id docid.ID) ([]crdt.Hash, error) {
	h, err := d.repo.Open(id)
	if err != nil {
		return nil, err
	}
	return h.Doc().Heads(), nil
}

// jsClientVerdict judges a run with the JavaScript client as the new
// device: from Haven's relay it fetches at least twice as fast as from the
// JavaScript server, with at most twice the records' saved size on the wire.
func jsClientVerdict(results []FreshResult) string {
	haven, js := pair(results, func(r *FreshResult) Kind { return r.Server })
	if haven == nil || haven.Failed != "" {
		return ""
	}
	wire := float64(haven.WireBytes()) / float64(haven.SavedBytes)
	if js == nil || js.Failed != "" {
		return fmt.Sprintf("Target for %s with the JavaScript client: %.2f s, %.2fx saved; no JavaScript server run to compare with (none ran, or it failed).\n", haven.Server.Label(), haven.Fetch.Seconds(), wire)
	}
	verdict := "met"
	if 2*haven.Fetch > js.Fetch || wire > 2 {
		verdict = "NOT met"
	}
	return fmt.Sprintf("Target for %s with the JavaScript client (<= half the JavaScript server's fetch time, <= 2x saved): %.2f s against %.2f s (%.2fx faster), %.2fx saved: %s.\n"+
		"The JavaScript client's own CPU time while fetching: %.2f s from %s, %.2f s from %s.\n",
		haven.Server.Label(), haven.Fetch.Seconds(), js.Fetch.Seconds(), js.Fetch.Seconds()/haven.Fetch.Seconds(), wire, verdict,
		haven.ClientCPU, haven.Server.Label(), js.ClientCPU, js.Server.Label())
}

// pair finds Haven's result and the JavaScript server's among results (nil
// for one not run).
func pair[R any](results []R, server func(*R) Kind) (haven, js *R) {
	for i := range results {
		switch server(&results[i]) {
		case Haven:
			haven = &results[i]
		case JS:
			js = &results[i]
		}
	}
	return haven, js
}
