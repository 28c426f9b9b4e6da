package worker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"haven/shared/crdt"
	"haven/shared/crdt/crdttest"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
	"haven/shared/rig"
	"haven/shared/syncer"
)

// A device with a valid credential can send any bytes it likes. Damaged
// copies of real sync messages about a resident's record and timeline (bit
// flips, truncations, changes altered with their checksums made good
// again, altered heads and Bloom bits) go to a real worker; whatever each
// one does, accepted or refused, none costs the worker its life: every
// message Automerge could not survive is refused in Go before it sees it,
// or by the vetting of what it added. A healthy device's document on the
// same worker syncs afterwards.
func TestMutatedMessagesCostNoWorker(t *testing.T) {
	p, _ := startPool(t, 1)
	author := func(n int) *record.Editor {
		ed, err := record.NewEditor(record.Author{UserID: fmt.Sprintf("u-%d", n), Name: fmt.Sprintf("Dr Test %d", n), Role: record.GP,
			RegNo: fmt.Sprintf("GMC 700000%d", n), DeviceID: fmt.Sprintf("dev-%d", n)}, record.Rules{NHS: nhs.Demo})
		if err != nil {
			t.Fatal(err)
		}
		return ed
	}
	home, hostile := author(1), author(2)
	nd, err := home.NewResident("home-1", record.Identity{NHSNumber: "9990000018", GivenName: "Edie", FamilyName: "Marlow", DateOfBirth: "1931-04-02", Sex: "female"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if _, err := home.AddAlert(nd.Record, record.Alert{Text: fmt.Sprintf("alert %d", i), Since: "2024-01-01"}); err != nil {
			t.Fatal(err)
		}
		if _, err := home.AddNote(nd.Timeline, record.Note{Kind: record.NoteKindNote, Text: fmt.Sprintf("note %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	type held struct {
		id  docid.ID
		doc *crdt.Doc
	}
	docs := []held{{nd.RecordID, nd.Record}, {nd.TimelineID, nd.Timeline}}
	for _, d := range docs {
		// The relay holds the document, as the home's desktop sent it.
		c := newClient("home-" + d.id.String())
		if err := c.doc.Merge(d.doc); err != nil {
			t.Fatal(err)
		}
		c.syncWith(t, p, d.id)
	}
	// seed is a real message about one of the documents: its opening
	// message or whole history (rig.SyncCorpus), or a new change by an
	// actor the relay has not seen. Each change is by a fresh actor:
	// once the relay holds one actor's first change, Automerge refuses
	// any other first change of that actor (a duplicate sequence number)
	// before applying it, and the damage would never reach its apply.
	seed := func(rng *rand.Rand) (docid.ID, []byte) {
		d := docs[rng.IntN(len(docs))]
		if rng.IntN(4) == 0 {
			msgs, err := rig.SyncCorpus(d.doc)
			if err != nil {
				t.Fatal(err)
			}
			return d.id, msgs[rng.IntN(len(msgs))]
		}
		x, err := d.doc.Fork()
		if err == nil {
			err = x.SetActor(crdt.NewActor())
		}
		if err != nil {
			t.Fatal(err)
		}
		if d.id == nd.TimelineID {
			_, err = hostile.AddNote(x, record.Note{Kind: record.NoteKindNote, Text: "hostile note"})
		} else {
			_, err = hostile.AddAlert(x, record.Alert{Text: "hostile alert", Since: "2024-01-01"})
		}
		if err != nil {
			t.Fatal(err)
		}
		y, err := d.doc.Fork()
		if err != nil {
			t.Fatal(err)
		}
		m, err := crdttest.FirstChanges(x, y)
		if err != nil {
			t.Fatal(err)
		}
		return d.id, m
	}

	const tries = 3000
	rng := rand.New(rand.NewPCG(20261206, 1))
	reached, refused := 0, 0
	for i := range tries {
		doc, msg := seed(rng)
		m, _ := rig.Mutate(rng, msg)
		if crdt.CheckSyncMessage(m) != nil {
			continue // the worker refuses it before Automerge as well
		}
		reached++
		peer := syncer.Peer{ID: fmt.Sprintf("mallory-%d", i), StorageID: fmt.Sprintf("s-mallory-%d", i)} // a fresh exchange each time
		reply, err := p.Work(context.Background(), WorkArgs{Doc: doc.String(), Msgs: []syncer.In{{From: peer.ID, Data: m}}, Peers: []syncer.Peer{peer}})
		if errors.Is(err, ErrQuarantined) || p.Restarts() > 0 {
			t.Fatalf("mutated message %d (%d bytes) crashed the worker (restarts %d): %v", i, len(m), p.Restarts(), err)
		}
		if err != nil {
			t.Fatalf("Work(mutated message %d) = %v", i, err)
		}
		if reply.Failed != nil {
			refused++
		}
		p.Forget(peer.ID)
	}
	t.Logf("%d mutated messages, %d passed the Go check and reached Automerge, %d of those refused by the worker, 0 restarts", tries, reached, refused)
	if reached < tries/4 {
		t.Fatalf("only %d of %d mutations reached Automerge: the test no longer tests it", reached, tries)
	}

	healthy := newClient("healthy")
	healthy.doc.Change("", time.Time{}, func(w *crdt.Writer) error { return w.Set("fine", "k") })
	healthy.syncWith(t, p, docid.New())
}
