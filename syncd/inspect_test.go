package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/store"
	"haven/syncd/internal/relay"
)

// Helpers that look at a relay from outside: its HTTP endpoints while it
// runs, and its data folder once it has stopped.

// healthz asks a running relay whether it serves.
func healthz(p *relayProc) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+p.addr+"/healthz", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(string(b), "ok ") {
		return fmt.Errorf("healthz: %s %q", resp.Status, b)
	}
	return nil
}

// metrics scrapes /metrics into "name{labels}" → value.
func metrics(t *testing.T, p *relayProc) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		out[line[:i]] = v
	}
	return out
}

// relayStoreView reads a stopped relay's store.
type relayStoreView struct {
	t      *testing.T
	st     *store.Store
	closed bool
}

// openRelayStore opens a stopped relay's data folder with its key, as
// syncd does.
func openRelayStore(t *testing.T, data string) *relayStoreView {
	t.Helper()
	c := config{data: data}
	st, err := c.openStore(slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open the relay's store: %v", err)
	}
	v := &relayStoreView{t: t, st: st}
	t.Cleanup(v.close)
	return v
}

// close releases the store so the relay can start on it again; later
// closes (the test's cleanup) do nothing.
func (v *relayStoreView) close() {
	if !v.closed {
		v.closed = true
		v.st.Close()
	}
}

// owner is the organisation the relay filed doc under, "" if none.
func (v *relayStoreView) owner(doc string) string {
	v.t.Helper()
	b, err := v.st.Get(relay.OwnerNamespace, doc)
	if errors.Is(err, store.ErrNotFound) {
		return ""
	}
	if err != nil {
		v.t.Fatalf("owner of %s: %v", doc, err)
	}
	return string(b)
}

func (v *relayStoreView) hasDoc(doc string) bool {
	_, err := v.st.LoadDoc(doc)
	return err == nil
}

// doc loads a stored document the way a worker does: snapshot, then chunks.
func (v *relayStoreView) doc(id string) *crdt.Doc {
	v.t.Helper()
	sd, err := v.st.LoadDoc(id)
	if err != nil {
		v.t.Fatalf("the relay's store: LoadDoc(%s) = %v", id, err)
	}
	if len(sd.Quarantined) > 0 {
		v.t.Errorf("the relay's store quarantined parts of %s: %+v", id, sd.Quarantined)
	}
	d := crdt.New()
	if len(sd.Snapshot) > 0 {
		if d, err = crdt.Load(sd.Snapshot); err != nil {
			v.t.Fatalf("the relay's snapshot of %s does not load: %v", id, err)
		}
	}
	for _, c := range sd.Chunks {
		if err := d.LoadIncremental(c.Data); err != nil {
			v.t.Fatalf("the relay's chunk %d of %s does not load: %v", c.Seq, id, err)
		}
	}
	return d
}

func (v *relayStoreView) syncState(peer, doc string) []byte {
	b, err := v.st.SyncState(peer, doc)
	if err != nil {
		return nil
	}
	return b
}
