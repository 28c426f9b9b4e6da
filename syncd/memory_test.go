package main

import (
	"os"
	"path/filepath"
	"testing"

	"haven/shared/crdt"
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

// The relay's workers let go of the documents nobody syncs (-doc-idle),
// which the metrics show; a record let go is loaded again for the next
// device that asks for it and the next edit, which reach the other device.
func TestRelayLetsIdleDocumentsGo(t *testing.T) {
	p := startRelay(t, t.TempDir(), anyPort, "-doc-idle", "300ms")
	home := idRE.FindString(p.admin("create-home", "Larch House"))
	hubID := idRE.FindString(p.admin("create-hub", "North Hub", "-homes", home))
	a := newDevice(t, "carer-pc", p.enroll(home, "Larch nurses' station"), p.url())
	hub := newDevice(t, "hub-nurse", p.enroll(hubID, "Hub laptop"), p.url())
	waitFor(t, "devices online", func() bool { return a.online() && hub.online() })
	open := func() float64 { return metrics(t, p)["haven_relay_worker_open_documents"] }

	docs := a.newResident(home, "Marlow")
	waitFor(t, "the relay to confirm the new record", func() bool { return a.client.Synced(docs.RecordID) && a.client.Synced(docs.TimelineID) })
	waitFor(t, "the workers to let the idle documents go", func() bool { return open() == 0 })
	if b := metrics(t, p)["haven_relay_worker_document_bytes"]; b != 0 {
		t.Fatalf("the workers count %v bytes of documents with none open", b)
	}

	hub.client.Request(docs.RecordID)
	waitFor(t, "the hub to receive the record", func() bool { return hub.has(docs.RecordID) })
	a.edit(docs.RecordID, func(doc *crdt.Doc) error {
		id := a.record(docs.RecordID).Identity
		id.Room = "14"
		return a.ed.UpdateIdentity(doc, id)
	})
	waitFor(t, "the hub to read the edit", func() bool { return hub.record(docs.RecordID).Identity.Room == "14" })
	waitFor(t, "the workers to let the record go again", func() bool { return open() == 0 })
}
