package client

import (
	"context"
	"errors"
	"fmt"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/repo"
	"haven/shared/wire"
)

// ErrOffline is returned by Bootstrap when there is no connection.
var ErrOffline = errors.New("not connected to the relay")

// Bootstrap downloads every document in this device's scope that the local
// repo lacks, as the relay stores them (snapshot and chunks: about their
// saved size on the wire, instead of Automerge's first sync which costs far
// more). Each document is stored durably as it arrives; progress is told
// after each. Documents already held are synced normally.
func (c *Client) Bootstrap(ctx context.Context, progress func(done, total int)) (int, error) {
	list := make(chan []string, 1)
	docs := make(chan wire.Message, 1000) // a whole fetch batch: the read loop never blocks on it
	c.mu.Lock()
	c.list, c.docMsgs = list, docs
	gone := c.gone
	c.mu.Unlock()
	if gone == nil {
		return 0, ErrOffline
	}
	defer func() {
		c.mu.Lock()
		c.list, c.docMsgs, c.bootWant = nil, nil, nil
		c.mu.Unlock()
	}()
	ids, err := c.askList(ctx, list, gone)
	if err != nil {
		return 0, err
	}
	var missing []string
	var back []docid.ID
	for _, s := range ids {
		id, err := docid.Parse(s)
		if err != nil {
			continue
		}
		if c.letGone(id) {
			back = append(back, id) // shared again, or back in scope
		}
		if _, err := c.cfg.Repo.Open(id); errors.Is(err, repo.ErrNotFound) {
			missing = append(missing, s)
		}
	}
	if len(back) > 0 {
		c.cfg.LetGo.Remove(back)
	}
	total := len(missing)
	if progress != nil {
		progress(0, total)
	}
	done := 0
	for start := 0; start < len(missing); start += 1000 {
		batch := missing[start:min(start+1000, len(missing))]
		c.mu.Lock()
		c.bootWant = make(map[string]bool, len(batch))
		for _, id := range batch {
			c.bootWant[id] = true
		}
		c.mu.Unlock()
		if !c.send(wire.Message{Type: wire.TypeHavenFetch, DocumentIDs: batch}) {
			return done, ErrOffline
		}
		for range batch {
			var m wire.Message
			select {
			case m = <-docs:
			case <-gone: // the connection dropped: the rest comes on the next
				return done, ErrOffline
			case <-ctx.Done():
				return done, ctx.Err()
			}
			if m.Type == wire.TypeHavenDoc {
				// Stored on the work goroutine, like everything that touches
				// documents and sync states, so it cannot race a sync message
				// for the same document.
				errc := make(chan error, 1)
				c.enqueue(func() {
					if id, err := docid.Parse(m.DocumentID); err == nil && c.letGone(id) {
						// The relay said to let it go after it listed it
						// (consent withdrawn meanwhile): what it sent
						// before saying so is not kept.
						errc <- nil
						return
					}
					errc <- c.storeDownloaded(ctx, m)
				})
				select {
				case err := <-errc:
					if err != nil {
						return done, err
					}
				case <-ctx.Done():
					return done, ctx.Err()
				}
			}
			done++
			if progress != nil {
				progress(done, total)
			}
		}
	}
	return done, nil
}

func (c *Client) storeDownloaded(ctx context.Context, m wire.Message) error {
	id, err := docid.Parse(m.DocumentID)
	if err != nil {
		return err
	}
	doc := crdt.New()
	if len(m.Snapshot) > 0 {
		if doc, err = crdt.Load(m.Snapshot); err != nil {
			return fmt.Errorf("downloaded document %s: %w", id, err)
		}
	}
	for _, ch := range m.Chunks {
		if err := doc.LoadIncremental(ch); err != nil {
			return fmt.Errorf("downloaded document %s: %w", id, err)
		}
	}
	if h, err := c.cfg.Repo.Open(id); err == nil {
		// It arrived meanwhile by the sync protocol (a request for it was
		// answered): merge what was downloaded into it.
		if err := h.Change(ctx, func(d *crdt.Doc) error { return d.Merge(doc) }); err != nil {
			return err
		}
	} else if _, err := c.cfg.Repo.Create(ctx, id, doc); err != nil {
		return err
	}
	if err := c.engine.Received(ctx, c.relay, id); err != nil {
		c.log.Warn("recording a download", "doc", id.String(), "err", err)
	}
	c.syncDoc(ctx, id) // a handshake; picks up changes made since
	c.stored(id)
	if c.cfg.OnChange != nil {
		c.cfg.OnChange(id)
	}
	return nil
}

// List asks the relay which documents this device should hold: its scope
// (for an advice line, the records it opened and may still keep).
func (c *Client) List(ctx context.Context) ([]string, error) {
	list := make(chan []string, 1)
	c.mu.Lock()
	if c.list != nil {
		c.mu.Unlock()
		return nil, errors.New("client: a listing is already in progress")
	}
	c.list = list
	gone := c.gone
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.list = nil
		c.mu.Unlock()
	}()
	if gone == nil {
		return nil, ErrOffline
	}
	return c.askList(ctx, list, gone)
}

func (c *Client) askList(ctx context.Context, list chan []string, gone chan struct{}) ([]string, error) {
	if !c.send(wire.Message{Type: wire.TypeHavenList}) {
		return nil, ErrOffline
	}
	select {
	case ids := <-list:
		return ids, nil
	case <-gone:
		return nil, ErrOffline
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
