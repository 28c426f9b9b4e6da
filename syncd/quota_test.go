package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/record"
	"haven/shared/transport"
	"haven/shared/wire"
)

// waitCode waits for the relay to send the device an error with code.
func waitCode(t *testing.T, d *device, code string) {
	t.Helper()
	waitFor(t, "the relay's "+code, func() bool { return slices.Contains(d.errorCodes(), code) })
}

// TestOneDeviceCannotTakeEveryConnection: a device may hold four
// connections; a fifth is refused with quota/connections, and a device of
// another home still connects though the relay's cap is nearly reached.
func TestOneDeviceCannotTakeEveryConnection(t *testing.T) {
	p := startRelay(t, t.TempDir(), anyPort, "-max-conns", "6")
	homeA := idRE.FindString(p.admin("create-home", "Larch House"))
	homeB := idRE.FindString(p.admin("create-home", "Birch Court"))
	enr := p.enroll(homeA, "Hostile PC")
	var ds []*device
	for i := 0; i < 4; i++ {
		ds = append(ds, newDevice(t, fmt.Sprintf("hog-%d", i), enr, p.url()))
	}
	waitFor(t, "four connections", func() bool {
		for _, d := range ds {
			if !d.online() {
				return false
			}
		}
		return true
	})
	fifth := newDevice(t, "hog-4", enr, p.url())
	waitCode(t, fifth, wire.CodeQuotaConnections)
	other := newDevice(t, "birch", p.enroll(homeB, "Birch office"), p.url())
	waitFor(t, "another home's desktop to connect", other.online)
	if m := metrics(t, p); m[`haven_relay_refused_total{reason="quota-connections"}`] < 1 {
		t.Errorf("the refusal is not counted: %v", m[`haven_relay_refused_total{reason="quota-connections"}`])
	}
}

// TestNewDocumentsAndSizeAreCapped: a device may create so many documents
// an hour (a resident is two); the next is refused with quota/documents and
// not stored. A change that would take a document past its size limit is
// refused with quota/document-bytes, and not stored.
func TestNewDocumentsAndSizeAreCapped(t *testing.T) {
	data := t.TempDir()
	p := startRelay(t, data, anyPort, "-max-docs-per-hour", "3", "-max-doc-bytes", "30000")
	home := idRE.FindString(p.admin("create-home", "Larch House"))
	d := newDevice(t, "pc", p.enroll(home, "Nurses' station"), p.url())
	waitFor(t, "online", d.online)
	first := d.newResident(home, "Marlow")
	waitFor(t, "the first resident stored", func() bool { return d.client.Synced(first.RecordID) && d.client.Synced(first.TimelineID) })
	second := d.newResident(home, "Ashby") // documents 3 and 4: the fourth is one too many
	waitCode(t, d, wire.CodeQuotaDocuments)
	if d.client.Synced(second.RecordID) && d.client.Synced(second.TimelineID) {
		t.Fatal("both of the second resident's documents were stored")
	}

	tl := first.TimelineID
	for i := 0; !slices.Contains(d.errorCodes(), wire.CodeQuotaDocBytes); i++ {
		if i > 200 {
			t.Fatal("no refusal after 200 notes of 1 KB to a document limited to 30 KB")
		}
		d.edit(tl, func(doc *crdt.Doc) error {
			_, err := d.ed.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: strings.Repeat(fmt.Sprintf("note %d ", i), 120)})
			return err
		})
		waitFor(t, "the relay to answer the note", func() bool {
			return d.client.Synced(tl) || slices.Contains(d.errorCodes(), wire.CodeQuotaDocBytes)
		})
	}
	p.stop()
	view := openRelayStore(t, data)
	if size := len(view.doc(tl.String()).Save()); size > 30000 {
		t.Errorf("the stored document holds %d bytes, past its limit", size)
	}
}

// notesUntilRefused writes notes of text(i) to a new resident's timeline,
// on a relay started with flags, until the relay refuses one with code; it
// checks the desktop keeps every note and, once the bucket allows (a
// message larger than the burst passes on a full bucket), sends them all
// again. It returns the relay and the device's refusal codes.
func notesUntilRefused(t *testing.T, code string, text func(i int) string, flags ...string) (*relayProc, []string) {
	t.Helper()
	p := startRelay(t, t.TempDir(), anyPort, flags...)
	home := idRE.FindString(p.admin("create-home", "Larch House"))
	d := newDevice(t, "pc", p.enroll(home, "Nurses' station"), p.url())
	waitFor(t, "online", d.online)
	docs := d.newResident(home, "Marlow")
	waitFor(t, "stored", func() bool { return d.client.Synced(docs.RecordID) && d.client.Synced(docs.TimelineID) })
	written := 0
	for ; written < 40 && !slices.Contains(d.errorCodes(), code); written++ {
		d.edit(docs.TimelineID, func(doc *crdt.Doc) error {
			_, err := d.ed.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: text(written)})
			return err
		})
	}
	waitCode(t, d, code)
	codes := d.errorCodes()
	waitFor(t, "the held notes to reach the relay", func() bool { return d.client.Synced(docs.TimelineID) })
	if h, err := d.repo.Open(docs.TimelineID); err != nil || len(mustTimeline(t, h.Doc()).Notes) != written {
		t.Fatalf("the desktop does not hold its %d notes", written)
	}
	return p, codes
}

// TestChangesFasterThanTheRateAreRefused: past its burst, a device's
// changes come no faster than its rate; the rest are refused with
// quota/changes, and the desktop keeps them and sends them again.
func TestChangesFasterThanTheRateAreRefused(t *testing.T) {
	notesUntilRefused(t, wire.CodeQuotaChanges, func(i int) string { return fmt.Sprintf("note %d", i) },
		"-max-changes-per-second", "0.5", "-max-change-burst", "2")
}

// TestBytesFasterThanTheRateAreRefused: past its burst of bytes, a device's
// changes come no faster than its byte rate, however few they are (a device
// filling its home's scope with large documents); the rest are refused with
// quota/bytes, and the desktop keeps them and sends them again.
func TestBytesFasterThanTheRateAreRefused(t *testing.T) {
	p, codes := notesUntilRefused(t, wire.CodeQuotaBytes, func(i int) string { return strings.Repeat(fmt.Sprintf("note %d ", i), 400) },
		"-max-change-bytes-per-second", "20000", "-max-change-bytes-burst", "40000")
	if slices.Contains(codes, wire.CodeQuotaChanges) {
		t.Error("refused for the number of changes, not their bytes")
	}
	if m := metrics(t, p); m[`haven_relay_refused_total{reason="quota-bytes"}`] == 0 {
		t.Error("the refusal is not counted")
	}
}

// TestUnauthenticatedConnectionsAreSmallAndFew: a connection with no
// credential may send only a small frame (its join) before it is closed,
// and one address may hold only a few such connections open at once.
func TestUnauthenticatedConnectionsAreSmallAndFew(t *testing.T) {
	p := startRelay(t, t.TempDir(), anyPort)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	tc, _, err := transport.Dial(ctx, p.url(), http.Header{}, transport.Options{})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- tc.Run(ctx, func([]byte) {}) }()
	if err := tc.Send(bytes.Repeat([]byte{0xa1}, 1<<20)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("a 1 MiB frame from an unauthenticated connection did not end it")
	}
	var held []*transport.Conn
	refused := 0
	for i := 0; i < 12; i++ {
		c, resp, err := transport.Dial(ctx, p.url(), http.Header{}, transport.Options{})
		if err != nil {
			if resp != nil && resp.StatusCode == http.StatusTooManyRequests {
				refused++
			}
			continue
		}
		held = append(held, c)
		go c.Run(ctx, func([]byte) {})
	}
	if refused == 0 {
		t.Errorf("12 unauthenticated connections from one address were all accepted")
	}
	t.Logf("%d unauthenticated connections held, %d refused at once", len(held), refused)
}

func mustTimeline(t *testing.T, doc *crdt.Doc) *record.Timeline {
	t.Helper()
	tl, err := record.ReadTimeline(doc)
	if err != nil {
		t.Fatal(err)
	}
	return tl
}
