package main

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"haven/shared/crdt"
)

// fetchedDoc is fetch.mjs's report of one document it was sent.
type fetchedDoc struct {
	DocumentID string   `json:"documentId"`
	Heads      []string `json:"heads"`
	Frames     int      `json:"frames"` // sync messages about it before it was ready
	First      string   `json:"first"`  // the first one's type byte, hex
	Chunks     int      `json:"chunks"` // the change chunks the first one carried
}

// TestFreshJavaScriptClientGetsTheWholeRecord: an unmodified automerge-repo
// client holding nothing asks for a record with a history of many changes;
// the relay answers with one sync message carrying the whole document
// (version 2, one chunk), which leaves the client with the writer's heads;
// the client then edits the record and the edit reaches a Go device
// through the relay.
func TestFreshJavaScriptClientGetsTheWholeRecord(t *testing.T) {
	needInterop(t)
	w := setup(t)
	p := w.relay
	goDev := newDevice(t, "larch-pc", p.enroll(w.homeA, "Nurses' station"), p.url())
	jsEnr := p.enroll(w.homeA, "Browser in the office")
	waitFor(t, "the Go device online", goDev.online)

	id := goDev.newResident(w.homeA, "Whole").RecordID
	const edits = 30
	for i := range edits {
		goDev.edit(id, func(doc *crdt.Doc) error {
			_, err := doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set(fmt.Sprint(i), "identity", "room") })
			return err
		})
	}
	waitFor(t, "the relay to confirm the record", func() bool { return goDev.client.Synced(id) })
	want := heads(goDev, id)

	js := startScript(t, "js-fetch", "fetch.mjs", "--edit", "fromJS=reply", tokenURL(p, jsEnr.Credential), id.String())
	js.expect("connected", 20*time.Second)
	ev := js.expect("doc", 20*time.Second)
	var got fetchedDoc
	if err := json.Unmarshal([]byte(ev.raw), &got); err != nil {
		t.Fatalf("doc event %s: %v", ev.raw, err)
	}
	if got.First != "43" || got.Chunks != 1 || got.Frames != 1 {
		t.Fatalf("the record arrived in %d sync messages, the first of type %s with %d chunks; want 1 message of type 43 (whole document) with 1 chunk:\n%s",
			got.Frames, got.First, got.Chunks, js.transcript())
	}
	var gotHeads []crdt.Hash
	for _, s := range got.Heads {
		h, err := crdt.ParseHash(s)
		if err != nil {
			t.Fatal(err)
		}
		gotHeads = append(gotHeads, h)
	}
	if !crdt.SameHeads(gotHeads, want) {
		t.Fatalf("the JavaScript client holds heads %v, the writer %v", gotHeads, want)
	}
	js.expect("fetched", 20*time.Second)

	// The copy the client built from the whole document takes an edit, and
	// the relay takes it from there.
	js.expect("edited", 20*time.Second)
	waitFor(t, "the JavaScript edit to reach Go", func() bool { return goGet(t, goDev, id, "fromJS") == "reply" })
	h, err := goDev.repo.Open(id)
	if err != nil {
		t.Fatal(err)
	}
	if room, _, err := h.Doc().Get("identity", "room"); err != nil || room != fmt.Sprint(edits-1) {
		t.Fatalf("after the JavaScript edit, the Go copy's room is %v (%v), want %d", room, err, edits-1)
	}
	js.stop(20 * time.Second)
	if code := js.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("fetch.mjs exited %d:\n%s", code, js.transcript())
	}
}
