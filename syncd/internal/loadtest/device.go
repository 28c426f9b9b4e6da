package loadtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"haven/assets/demo"
	"haven/shared/client"
	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/shared/transport"
)

// device is one load-test client: shared/client over an in-memory repo,
// with a record editor for its changes.
type device struct {
	name   string
	st     *memStorage
	repo   *repo.Repo
	client *client.Client
	editor *record.Editor

	cancel  context.CancelFunc
	stopped chan struct{} // closed when the client's Run has returned
	runErr  error         // Run's result, set before stopped closes

	// kick gets a token whenever the client's status changes or a document
	// changed because of the server: wait looks at its condition again.
	kick chan struct{}

	mu       sync.Mutex // guards the fields below
	online   bool
	connects int      // times the client came online
	errs     []string // error messages from the server
}

// deviceConfig starts a device.
type deviceConfig struct {
	URL, Credential, Name string
	// OnChange is told, on the client's work goroutine, after a document
	// changed because of the server (see client.Config.OnChange).
	OnChange func(d *device, id docid.ID)
}

// startDevice connects a new device; it runs until close.
func startDevice(cfg deviceConfig) (*device, error) {
	ed, err := record.NewEditor(record.Author{UserID: "u-" + cfg.Name, Name: "Load test " + cfg.Name,
		Role: record.SeniorCarer, DeviceID: cfg.Name}, record.Rules{NHS: nhs.Demo})
	if err != nil {
		return nil, err
	}
	d := &device{name: cfg.Name, st: newMemStorage(), editor: ed, stopped: make(chan struct{}), kick: make(chan struct{}, 1)}
	// No compaction: it would cost the client CPU the servers do not see.
	d.repo = repo.New(d.st, repo.Options{CompactAfter: 1 << 30})
	d.client = client.New(client.Config{
		URL: cfg.URL, Credential: cfg.Credential, Repo: d.repo,
		PeerID: "peer-" + cfg.Name, StorageID: "storage-" + cfg.Name,
		Docs: d.st.ids,
		// A fresh device asks for a thousand documents at once.
		Transport:  transport.Options{SendQueue: 4096, Ping: true},
		MinBackoff: 50 * time.Millisecond, MaxBackoff: 2 * time.Second,
		OnChange: func(id docid.ID) {
			if cfg.OnChange != nil {
				cfg.OnChange(d, id)
			}
			d.poke()
		},
		OnStatus: func(s client.Status) {
			d.mu.Lock()
			if s.Online && !d.online {
				d.connects++
			}
			d.online = s.Online
			d.mu.Unlock()
			d.poke()
		},
		OnError: func(_, msg string) {
			d.mu.Lock()
			if len(d.errs) < 100 {
				d.errs = append(d.errs, msg)
			}
			d.mu.Unlock()
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	go func() {
		d.runErr = d.client.Run(ctx)
		close(d.stopped)
	}()
	return d, nil
}

func (d *device) poke() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

// close disconnects the device and waits for its client to stop.
func (d *device) close() {
	d.cancel()
	<-d.stopped
	d.repo.Close()
}

// wait returns once cond holds, re-checking it whenever the client reports
// progress. It fails when ctx ends or the client gives up (refused).
func (d *device) wait(ctx context.Context, what string, cond func() bool) error {
	for !cond() {
		select {
		case <-d.kick:
		case <-d.stopped:
			return fmt.Errorf("%s: client stopped while waiting for %s: %v", d.name, what, d.runErr)
		case <-ctx.Done():
			return fmt.Errorf("%s: waiting for %s: %w", d.name, what, context.Cause(ctx))
		}
	}
	return nil
}

// waitOnline waits for the first connection.
func (d *device) waitOnline(ctx context.Context) error {
	return d.wait(ctx, "a connection", func() bool { return d.client.Status().Online })
}

// reconnects is how often the device came back online after losing its
// connection.
func (d *device) reconnects() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return max(d.connects-1, 0)
}

// serverErrors returns the error messages the server sent.
func (d *device) serverErrors() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.errs...)
}

// has reports whether the device holds the document.
func (d *device) has(id docid.ID) bool {
	_, err := d.repo.Open(id)
	return err == nil
}

// create stores a new document locally and offers it to the server.
func (d *device) create(ctx context.Context, id docid.ID, doc *crdt.Doc) error {
	if _, err := d.repo.Create(ctx, id, doc); err != nil {
		return err
	}
	d.client.Changed(id)
	return nil
}

// allSynced waits until the server has confirmed every change to ids.
func (d *device) allSynced(ctx context.Context, ids []docid.ID) error {
	return d.wait(ctx, "the server to confirm every document", func() bool {
		for _, id := range ids {
			if !d.client.Synced(id) {
				return false
			}
		}
		return true
	})
}

// allHeld waits until the device holds every one of ids.
func (d *device) allHeld(ctx context.Context, ids []docid.ID) error {
	return d.wait(ctx, "every document to arrive", func() bool {
		for _, id := range ids {
			if !d.has(id) {
				return false
			}
		}
		return true
	})
}

// errNoDoc is returned for an edit to a document the device does not hold.
var errNoDoc = errors.New("document not held")

// addNote appends a note to a timeline document as a member of staff would,
// and offers the change to the server. registered is called with the note's
// ID inside the change, before the change can reach any other client.
func (d *device) addNote(ctx context.Context, id docid.ID, text string, registered func(noteID string)) error {
	h, err := d.repo.Open(id)
	if err != nil {
		return fmt.Errorf("%w: %v", errNoDoc, err)
	}
	err = h.Change(ctx, func(doc *crdt.Doc) error {
		noteID, err := d.editor.AddNote(doc, record.Note{Kind: record.NoteKindNote, Text: text})
		if err == nil {
			registered(noteID)
		}
		return err
	})
	if err != nil {
		return err
	}
	d.client.Changed(id)
	return nil
}

// identity is a valid resident identity, varied by n.
func identity(n int) record.Identity {
	return record.Identity{
		NHSNumber: demo.NHSNumber(700000 + 11*n), GivenName: "Edith", FamilyName: fmt.Sprintf("Resident %04d", n),
		DateOfBirth: "1931-04-02", Sex: "female", Room: fmt.Sprint(n%60 + 1),
	}
}
