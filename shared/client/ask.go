package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"haven/shared/docid"
	"haven/shared/wire"
)

// Requests that wait for the relay's answer: the advice line's search and
// opening of a record, an IG lead's review list. Each carries an ID the
// relay echoes; an answer nobody waits for any more is dropped.

// ErrRefused wraps the relay's error code for a request it refused.
var ErrRefused = errors.New("the relay refused the request")

// RefusedError is a refusal with the relay's code (wire's Code constants).
type RefusedError struct{ Code string }

func (e *RefusedError) Error() string { return fmt.Sprintf("%v: %s", ErrRefused, e.Code) }
func (e *RefusedError) Unwrap() error { return ErrRefused }

// ask sends a request and waits for the answer with the same ID.
func (c *Client) ask(ctx context.Context, t wire.Type, id string, req any) ([]byte, error) {
	data, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	ch := make(chan []byte, 1)
	key := string(t) + " " + id
	c.mu.Lock()
	if c.answers == nil {
		c.answers = map[string]chan []byte{}
	}
	c.answers[key] = ch
	gone := c.gone
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.answers, key)
		c.mu.Unlock()
	}()
	if gone == nil || !c.send(wire.Message{Type: t, Data: data}) {
		return nil, ErrOffline
	}
	select {
	case b := <-ch:
		return b, nil
	case <-gone:
		return nil, ErrOffline
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// answer hands a reply to whoever waits for it.
func (c *Client) answer(t wire.Type, data []byte) {
	var head struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(data, &head) != nil {
		return
	}
	c.mu.Lock()
	ch := c.answers[string(t)+" "+head.ID]
	c.mu.Unlock()
	if ch != nil {
		select {
		case ch <- data:
		default:
		}
	}
}

// request sends a request and decodes its answer, whose code is a refusal.
func request[R any](c *Client, ctx context.Context, t wire.Type, id string, req any, code func(*R) string) (R, error) {
	var r R
	b, err := c.ask(ctx, t, id, req)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, err
	}
	if code := code(&r); code != "" {
		return r, &RefusedError{Code: code}
	}
	return r, nil
}

// Search asks the relay for residents of the region (an advice line).
func (c *Client) Search(ctx context.Context, q wire.SearchQuery) (wire.SearchResult, error) {
	return request(c, ctx, wire.TypeHavenSearch, q.ID, q, func(r *wire.SearchResult) string { return r.Code })
}

// Open asks the relay to open a record for a call (an advice line) and
// returns once the record and its timeline are stored here.
func (c *Client) Open(ctx context.Context, req wire.OpenRequest) (wire.OpenResult, error) {
	r, err := request(c, ctx, wire.TypeHavenOpen, req.ID, req, func(r *wire.OpenResult) string { return r.Code })
	if err != nil {
		return r, err
	}
	for _, s := range []string{r.Record, r.Timeline} {
		id, err := docid.Parse(s)
		if err != nil {
			return r, err
		}
		if err := c.awaitStored(ctx, id); err != nil {
			return r, err
		}
	}
	return r, nil
}

// Review asks for the break-glass accesses awaiting an IG lead's review,
// recording a review first if the request carries one.
func (c *Client) Review(ctx context.Context, req wire.ReviewRequest) (wire.ReviewList, error) {
	return request(c, ctx, wire.TypeHavenReview, req.ID, req, func(r *wire.ReviewList) string { return r.Code })
}

// awaitStored waits until a document is in the local repo.
func (c *Client) awaitStored(ctx context.Context, id docid.ID) error {
	for {
		c.mu.Lock()
		ch := make(chan struct{})
		c.storedWait[id] = append(c.storedWait[id], ch)
		gone := c.gone
		c.mu.Unlock()
		if _, err := c.cfg.Repo.Open(id); err == nil {
			return nil
		}
		select {
		case <-ch:
		case <-gone:
			return ErrOffline
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// stored wakes those waiting for a document to be stored.
func (c *Client) stored(id docid.ID) {
	c.mu.Lock()
	ws := c.storedWait[id]
	delete(c.storedWait, id)
	c.mu.Unlock()
	for _, ch := range ws {
		close(ch)
	}
}
