package cluster

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"haven/shared/store"
)

// The registry's share of the cluster: what every node must know about
// organisations, devices and staff, and every node's audit events.
//
// Registry keys. The bucket holds the registry's own store keys: store
// namespace ns and key k are the bucket key "<ns>.<base64url(k)>", since a
// store key may hold any byte (a name, a slash) and a bucket key only
// letters, digits and "-_/=."; the value is the stored bytes as they are.
// History 1: a key's revision is its last write's stream sequence, which
// Put and Delete take as the revision they expect, so a read-modify-write
// made on two nodes at once succeeds on one only.
//
// Audit. Each event is one message on haven.audit.<org>, the acting
// organisation, so a reader may filter by organisation. Its stream
// sequence is its number in the cluster: every node copies the stream into
// its own chain in stream order (FollowAudit), its own events included.
const (
	// RegistryBucket is the KV bucket of the registry.
	RegistryBucket   = "haven-registry"
	registryStream   = "KV_" + RegistryBucket
	registrySubject  = "$KV." + RegistryBucket + "."
	maxRegistryValue = 1 << 20

	// AuditStream holds every node's audit events.
	AuditStream  = "HAVEN_AUDIT"
	auditSubject = "haven.audit."

	// kvOperation marks a delete in the bucket, as nats.go's KV does, so
	// its watchers see one.
	kvOperation = "KV-Operation"
	kvDelete    = "DEL"
	kvPurge     = "PURGE"
)

// registryKey is the bucket key of store namespace ns and key.
func registryKey(ns, key string) (string, error) {
	if ns == "" || key == "" || strings.ContainsFunc(ns, func(c rune) bool { return !(c >= 'a' && c <= 'z' || c == '-') }) {
		return "", fmt.Errorf("cluster: registry key %q/%q cannot be a bucket key", ns, key)
	}
	return ns + "." + base64.RawURLEncoding.EncodeToString([]byte(key)), nil
}

// parseRegistryKey undoes registryKey; false for a key it did not make.
func parseRegistryKey(k string) (ns, key string, ok bool) {
	ns, enc, ok := strings.Cut(k, ".")
	if !ok {
		return "", "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(enc)
	return ns, string(b), err == nil && len(b) > 0
}

// RegistryGet returns the cluster's value of (ns, key) and its revision,
// as the bucket's leader holds it: a write acknowledged on any node is
// seen. A key never written, or deleted, is store.ErrNotFound, with the
// delete's revision (0 if never written), for a Put to expect.
func (n *Node) RegistryGet(ctx context.Context, ns, key string) ([]byte, uint64, error) {
	k, err := registryKey(ns, key)
	if err != nil {
		return nil, 0, err
	}
	// Not a direct get, which any replica answers, perhaps one behind:
	// a code just enrolled on another node must be found.
	req, _ := json.Marshal(map[string]string{"last_by_subj": registrySubject + k})
	ctx, cancel := context.WithTimeout(ctx, publishBudget)
	defer cancel()
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
			Data []byte `json:"data"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	for attempt := 0; ; attempt++ {
		var msg *nats.Msg
		msg, err = n.js.Conn().RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+registryStream, req)
		if err == nil {
			resp.Message, resp.Error = nil, nil
			if err = json.Unmarshal(msg.Data, &resp); err == nil && resp.Error != nil {
				if resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound {
					return nil, 0, store.ErrNotFound
				}
				err = resp.Error
			}
			if err == nil && resp.Message == nil {
				err = errors.New("empty answer")
			}
			if err == nil {
				break
			}
		}
		if !wait(ctx, backoff(attempt)) {
			return nil, 0, fmt.Errorf("cluster: reading registry key %s: %w", k, err)
		}
	}
	m := resp.Message
	if len(m.Hdrs) > 0 {
		h, err := nats.DecodeHeadersMsg(m.Hdrs)
		if err != nil {
			return nil, 0, fmt.Errorf("cluster: registry key %s: %w", k, err)
		}
		if op := h.Get(kvOperation); op == kvDelete || op == kvPurge {
			return nil, m.Seq, store.ErrNotFound
		}
	}
	return m.Data, m.Seq, nil
}

// RegistryPut sets (ns, key) to val if its revision is still rev (0: never
// written), at the cluster's replication, and returns the new revision;
// ok is false, and nothing written, if another write came first.
func (n *Node) RegistryPut(ctx context.Context, ns, key string, val []byte, rev uint64) (newRev uint64, ok bool, err error) {
	return n.registryWrite(ctx, ns, key, val, false, rev)
}

// RegistryDelete deletes (ns, key) if its revision is still rev, and
// returns the revision of the delete; ok is false, and nothing deleted, if
// another write came first.
func (n *Node) RegistryDelete(ctx context.Context, ns, key string, rev uint64) (newRev uint64, ok bool, err error) {
	return n.registryWrite(ctx, ns, key, nil, true, rev)
}

func (n *Node) registryWrite(ctx context.Context, ns, key string, val []byte, del bool, rev uint64) (uint64, bool, error) {
	k, err := registryKey(ns, key)
	if err != nil {
		return 0, false, err
	}
	if len(val) > maxRegistryValue {
		return 0, false, fmt.Errorf("cluster: registry value of %d bytes, limit %d", len(val), maxRegistryValue)
	}
	msg := &nats.Msg{Subject: registrySubject + k, Data: val, Header: nats.Header{}}
	if del {
		msg.Header.Set(kvOperation, kvDelete)
	}
	// The ID makes a retry after a lost acknowledgement the same write,
	// not a second one refused as a conflict with the first.
	msg.Header.Set(jetstream.MsgIDHeader, n.instance+"-r"+strconv.FormatUint(n.seq.Add(1), 10))
	msg.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(rev, 10))
	ctx, cancel := context.WithTimeout(ctx, publishBudget)
	defer cancel()
	ack, err := publishUntil(ctx, n.js, msg, wrongLastSeq)
	switch {
	case err == nil:
		return ack.Sequence, true, nil
	case wrongLastSeq(err):
		return 0, false, nil
	default:
		return 0, false, fmt.Errorf("cluster: registry key %s not held by the cluster: %w", k, err)
	}
}

// wrongLastSeq reports a write refused because the key changed since the
// revision it expected (replicated streams answer with another code).
func wrongLastSeq(err error) bool {
	var api *jetstream.APIError
	return errors.As(err, &api) && (api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence ||
		api.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequenceConstant)
}

// RegistryEntry is one registry key as the cluster holds it.
type RegistryEntry struct {
	NS, Key string
	Val     []byte // nil when Deleted
	Deleted bool
	Rev     uint64
}

// WatchRegistry hands apply every key of the registry, first each key's
// latest value (deletes included, so a key deleted while this node was
// down is deleted here too), then calls caughtUp, then hands each write as
// it is made, until StopFollowing or Close. After a lost watch it starts
// again from the latest values, and calls caughtUp again. An entry apply
// fails is retried until it succeeds: apply must be idempotent, and is
// handed this node's own writes too.
func (n *Node) WatchRegistry(apply func(context.Context, RegistryEntry) error, caughtUp func(context.Context)) {
	ctx := n.followContext()
	n.following.Go(func() {
		for attempt := 0; ctx.Err() == nil; attempt++ {
			// The watcher's own end-of-values marker comes too early on a
			// server just restarted; the bucket's last revision, read before
			// the watch starts, is always among the latest values (it is
			// its key's latest), and is the last of them.
			// Asked again after apiAttempt (see follow).
			last, err := n.lastSeq(ctx, registryStream)
			var w jetstream.KeyWatcher
			if err == nil {
				w, err = n.registry.WatchAll(ctx)
			}
			if err != nil {
				if ctx.Err() == nil {
					n.log.Warn("watching the registry", "err", err)
				}
				wait(ctx, backoff(attempt))
				continue
			}
			n.watchRegistry(ctx, w, last, apply, caughtUp)
			w.Stop()
		}
	})
}

// watchRegistry applies what w reports until it ends or ctx does, and
// calls caughtUp once it has applied revision last (at once if 0).
func (n *Node) watchRegistry(ctx context.Context, w jetstream.KeyWatcher, last uint64, apply func(context.Context, RegistryEntry) error, caughtUp func(context.Context)) {
	caught := false
	if last == 0 {
		caughtUp(ctx)
		caught = true
	}
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-w.Updates():
			if !ok {
				return
			}
			if e == nil { // the watcher's own marker: see WatchRegistry
				continue
			}
			ns, key, ok := parseRegistryKey(e.Key())
			if !ok {
				n.log.Warn("a registry key this node cannot read; skipped", "rev", e.Revision())
				continue
			}
			re := RegistryEntry{NS: ns, Key: key, Rev: e.Revision(), Deleted: e.Operation() != jetstream.KeyValuePut}
			if !re.Deleted {
				re.Val = e.Value()
			}
			if !retry(ctx, n.log, "applying a registry key", func() error { return apply(ctx, re) }, "ns", ns, "rev", re.Rev) {
				return
			}
			n.progress[registryStream].Store(max(n.progress[registryStream].Load(), re.Rev))
			if !caught && re.Rev >= last {
				caughtUp(ctx)
				caught = true
			}
		}
	}
}

// ensureAuditStream makes sure the audit stream exists; made afresh, it
// starts at cfg.AuditFirstSeq (see ensureStreams for who makes it).
func (n *Node) ensureAuditStream(ctx context.Context) error {
	return n.ensureStream(ctx, n.streamConfig(AuditStream, auditSubject, maxRegistryValue), func(cfg *jetstream.StreamConfig) error {
		if n.cfg.AuditFirstSeq == nil {
			return nil
		}
		if n.auditFirst == 0 {
			first, err := n.cfg.AuditFirstSeq()
			if err != nil {
				return fmt.Errorf("cluster: the audit log's first number: %w", err)
			}
			n.auditFirst = max(first, 1)
		}
		cfg.FirstSeq = n.auditFirst
		return nil
	})
}

// otherOrg is the subject token of an event whose organisation ID cannot
// be one: the event is kept all the same.
const otherOrg = "_"

// validToken accepts an organisation ID as one subject token.
func validToken(s string) bool {
	return s != "" && len(s) <= 128 && !strings.ContainsFunc(s, func(c rune) bool {
		return !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-' || c == '_')
	})
}

// PublishAudit has the cluster hold audit events (JSON), in order, each
// of its organisation orgs[i] and named ids[i], at its replication, and
// returns their numbers in the cluster. They are sent at once and their
// acknowledgements awaited together, so a device's batch of a thousand
// costs one round trip, not a thousand. An id names the event for this
// publication only: a retry with the same id within two minutes is stored
// once. An org that cannot be a subject token files the event under "_":
// an audit event is never refused over its organisation.
func (n *Node) PublishAudit(ctx context.Context, orgs, ids []string, events [][]byte) ([]uint64, error) {
	if len(orgs) != len(events) || len(ids) != len(events) {
		return nil, errors.New("cluster: PublishAudit needs an organisation and an id per event")
	}
	ctx, cancel := context.WithTimeout(ctx, publishBudget)
	defer cancel()
	msgs := make([]*nats.Msg, len(events))
	acks := make([]jetstream.PubAckFuture, len(events))
	for i, ev := range events {
		org := orgs[i]
		if !validToken(org) {
			org = otherOrg
		}
		msgs[i] = &nats.Msg{Subject: auditSubject + org, Data: ev, Header: nats.Header{}}
		msgs[i].Header.Set(jetstream.MsgIDHeader, ids[i])
		acks[i], _ = n.auditJS.PublishMsgAsync(msgs[i], jetstream.WithExpectStream(AuditStream)) // nil: sent again below
	}
	seqs := make([]uint64, len(events))
	for i, f := range acks {
		if f != nil {
			select {
			case ack := <-f.Ok():
				seqs[i] = ack.Sequence
				continue
			case <-f.Err():
			case <-ctx.Done():
				return nil, fmt.Errorf("cluster: audit events not held by the cluster: %w", ctx.Err())
			}
		}
		// Sent again, one at a time; the id keeps it one event.
		ack, err := publishUntil(ctx, n.auditJS, msgs[i], nil, jetstream.WithExpectStream(AuditStream))
		if err != nil {
			return nil, fmt.Errorf("cluster: audit event not held by the cluster: %w", err)
		}
		seqs[i] = ack.Sequence
	}
	return seqs, nil
}

// AuditEntry is one audit event as the cluster's stream holds it.
type AuditEntry struct {
	Seq   uint64 // its number in the cluster
	ID    string // the id it was published with
	Event []byte
}

// FollowAudit hands over at once at most maxAuditCopy events, those that
// arrive within auditLinger of each other: a device's batch, published at
// once, is copied in a write or two, at the cost of auditLinger to an
// event alone.
const (
	maxAuditCopy = 1000
	auditLinger  = 2 * time.Millisecond
)

// FollowAudit hands apply every audit event in the stream, this node's own
// included, in stream order, from just after the mark in marks, until
// StopFollowing or Close: those the stream already holds, and those that
// follow within a moment, together (see maxAuditCopy). As Follow, events apply
// fails are handed over again and the mark never passes them, so apply
// must be idempotent. Call it once.
func (n *Node) FollowAudit(marks Marks, apply func(context.Context, []AuditEntry) error) {
	ctx := n.followContext()
	n.following.Go(func() {
		n.follow(ctx, marks, feed{stream: AuditStream, js: n.auditJS, filter: auditSubject + "*", batch: maxAuditCopy, linger: auditLinger,
			handle: func(ctx context.Context, msgs []followed) bool {
				es := make([]AuditEntry, len(msgs))
				for i, m := range msgs {
					es[i] = AuditEntry{Seq: m.seq, ID: m.msg.Headers().Get(jetstream.MsgIDHeader), Event: m.msg.Data()}
				}
				return retry(ctx, n.log, "copying audit events into this node's chain", func() error { return apply(ctx, es) },
					"first", es[0].Seq, "events", len(es))
			}})
	})
}
