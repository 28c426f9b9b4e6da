package orgs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"haven/shared/store"
	"haven/shared/wire"
)

// AuditEvent is one view or change of a record: who, with which role, on which device, of
// which resident, what, and when (on the device and at the relay). It holds no health data:
// Detail is for identifiers and short reasons (a break-glass reason is typed by staff and is
// the one free text here), never for note text, names or NHS numbers.
//
// What the relay vouches for and what it only reports apart: Device, Org, Owner and Received
// are the relay's own (the authenticated connection, its clock); User, Name, Role and Cert are
// from a staff certificate whose key signed the event, or empty, with the device's words in
// Claimed; Time and Action are the device's. Doubts lists, as codes, whatever the relay found
// wrong with the event; it is stored anyway, since an audit keeps what happened.
type AuditEvent struct {
	// Time is when it happened by the device's clock; zero if the device did not say.
	Time time.Time `json:"time,omitzero"`
	// Received is when the relay received it; Audit sets it if zero.
	Received time.Time `json:"received"`
	// Device and Org are the acting device and its organisation.
	Device string `json:"device"`
	Org    string `json:"org"`
	// Owner is the organisation whose record it is, if known, so that a home's
	// information-governance lead can find every access to its residents, including by a hub
	// or the advice line.
	Owner string `json:"owner,omitempty"`
	// User (staff ID), Name and Role identify the member of staff, from the certificate Cert
	// that signed the event; empty when nothing signed it.
	User string `json:"user,omitempty"`
	Name string `json:"name,omitempty"`
	Role string `json:"role,omitempty"`
	Cert string `json:"cert,omitempty"`
	// Claimed is who the device said it was ("staff-id role") when no valid signature said so.
	Claimed string `json:"claimed,omitempty"`
	// Resident is the document ID of the resident's record, if the event concerns one.
	Resident string `json:"resident,omitempty"`
	// Action says what happened, such as "view", "change" or "first-access".
	Action string `json:"action"`
	Detail string `json:"detail,omitempty"`
	// DeviceSeq and EventID are the event's number and name on the device, for events a
	// device reported; zero for the relay's own.
	DeviceSeq uint64 `json:"deviceSeq,omitempty"`
	EventID   string `json:"eventId,omitempty"`
	// ByRelay marks an event the relay recorded itself, as it acted (an access it granted):
	// only those are break-glass accesses for review.
	ByRelay bool `json:"byRelay,omitempty"`
	// Doubts are codes for what the relay could not vouch for (see the Doubt constants).
	Doubts []string `json:"doubts,omitempty"`
	// ClusterSeq is the event's number in the cluster's audit stream, set as it is copied
	// into this node's chain (ApplyAudit); zero for an event kept with no cluster, whose
	// number is its place in this node's chain. AuditLog hands over whichever it has, so an
	// event has the same number on every node.
	ClusterSeq uint64 `json:"clusterSeq,omitempty"`
}

// Doubts: what the relay found wrong with a device's event.
const (
	DoubtUnsigned      = "unsigned"            // no staff signature: the staff member is the device's word
	DoubtSignature     = "bad-signature"       // a signature that does not verify, or an unknown certificate
	DoubtCertificate   = "certificate"         // the certificate did not cover the event (expired, revoked, another organisation's)
	DoubtClockAhead    = "clock-ahead"         // dated after the relay received it
	DoubtClockBehind   = "clock-before-device" // dated before the device was enrolled
	DoubtOutOfScope    = "out-of-scope"        // about a record outside the device's scope
	DoubtRecordMissing = "record-missing"      // about a record the relay never received
	DoubtReplayed      = "replayed"            // an event ID the device sent before, under another number
	DoubtNotByRelay    = "not-by-relay"        // an action only the relay records (a break-glass access), claimed by a device
)

// Limits on audit fields: identifiers are short, and a client must not be able to flood the
// log. Detail is cut to maxDetail rather than refused, so an event is never lost over it.
const (
	maxAuditField = 256 // bytes
	maxDetail     = 1024
)

// Audit appends e to the audit log and returns its sequence number (1 for the first event,
// then one more each time). It is durable when Audit returns. Device, Org and Action are
// required; a zero Received becomes now. Events are never changed or deleted.
func (r *Registry) Audit(ctx context.Context, e AuditEvent) (uint64, error) {
	return r.AuditAll(ctx, []AuditEvent{e}, nil)
}

// AuditAll appends events to the audit log in order, and applies changes, in one atomic
// durable write, and returns the first event's sequence number. The log is a hash chain
// (store.AppendChained): VerifyAudit finds any event altered, removed or inserted since.
//
// In a cluster each event is first held by the cluster's audit stream, and numbered there;
// every node copies the stream into its own chain in the stream's order, so each node's chain
// holds the whole cluster's events, from when the node first followed the stream, and
// verifies on its own. changes are this node's only, kept in one write with the last event.
// An event whose copy is late (this node catching up with a long stream) is kept by AuditAll
// itself after a moment, under its cluster number, ahead of earlier numbers not copied yet.
func (r *Registry) AuditAll(ctx context.Context, events []AuditEvent, changes []store.Change) (uint64, error) {
	if err := r.migrateAudit(ctx); err != nil {
		return 0, err
	}
	vals := make([][]byte, len(events))
	for i, e := range events {
		if err := e.check(); err != nil {
			return 0, err
		}
		if e.Received.IsZero() {
			e.Received = r.now()
		}
		e.Time, e.Received = e.Time.UTC(), e.Received.UTC()
		if len(e.Detail) > maxDetail {
			e.Detail = truncate(e.Detail, maxDetail)
		}
		b, err := json.Marshal(e)
		if err != nil {
			return 0, err
		}
		vals[i] = b
	}
	if r.Cluster != nil && len(vals) > 0 {
		return r.auditAllShared(ctx, events, vals, changes)
	}
	return r.st.AppendChained(ctx, auditLog, vals, changes)
}

func (e AuditEvent) check() error {
	for _, f := range []struct{ name, val string }{
		{"device", e.Device}, {"organisation", e.Org}, {"action", e.Action},
	} {
		if f.val == "" {
			return invalidf("audit event without %s", f.name)
		}
	}
	for _, f := range []struct{ name, val string }{
		{"device", e.Device}, {"organisation", e.Org}, {"owner", e.Owner}, {"user", e.User}, {"name", e.Name},
		{"role", e.Role}, {"certificate", e.Cert}, {"claimed", e.Claimed}, {"resident", e.Resident},
		{"action", e.Action}, {"event ID", e.EventID},
	} {
		if len(f.val) > maxAuditField {
			return invalidf("audit event %s is %d bytes, limit %d", f.name, len(f.val), maxAuditField)
		}
	}
	return nil
}

// truncate cuts s to at most n bytes without splitting a character.
func truncate(s string, n int) string {
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return strings.ToValidUTF8(s[:n], "")
}

// AuditLog calls fn for each audit event with sequence number greater than after, in order.
// It stops at fn's first error and returns it. fn may call other Registry methods.
func (r *Registry) AuditLog(after uint64, fn func(seq uint64, e AuditEvent) error) error {
	if err := r.migrateAudit(context.Background()); err != nil {
		return err
	}
	// An event's number is its ClusterSeq when it has one, which is not its place in this
	// chain: so every event is read, and those numbered up to after skipped.
	return r.st.ReadChained(auditLog, 0, func(seq uint64, val []byte) error {
		var e AuditEvent
		if err := json.Unmarshal(val, &e); err != nil {
			return fmt.Errorf("audit event %d: %w", seq, err)
		}
		if e.ClusterSeq != 0 {
			seq = e.ClusterSeq
		}
		if seq <= after {
			return nil
		}
		return fn(seq, e)
	})
}

// VerifyAudit checks the audit log's hash chain from the first event to the last, and
// returns the number of events and the head (the last event's link), which vouches for
// every event before it. A broken chain is a *store.ChainError naming the event.
func (r *Registry) VerifyAudit() (uint64, store.Link, error) {
	if err := r.migrateAudit(context.Background()); err != nil {
		return 0, store.Link{}, err
	}
	return r.st.VerifyChain(auditLog)
}

// migrateAudit moves an audit log written before the log was chained into the chain, once:
// a store from an earlier version keeps its events, in order, now bound by the chain.
func (r *Registry) migrateAudit(ctx context.Context) error {
	r.auditOnce.Do(func() {
		chained := false
		r.auditErr = r.st.ReadChained(auditLog, 0, func(uint64, []byte) error { chained = true; return errStopScan })
		if errors.Is(r.auditErr, errStopScan) {
			r.auditErr = nil
		}
		if r.auditErr != nil || chained {
			return
		}
		var old [][]byte
		r.auditErr = r.st.ReadLog(auditLog, 0, func(_ uint64, val []byte) error {
			old = append(old, val)
			return nil
		})
		if r.auditErr == nil && len(old) > 0 {
			_, r.auditErr = r.st.AppendChained(ctx, auditLog, old, nil)
		}
	})
	return r.auditErr
}

// FirstAccess reports whether this is deviceID's first access to document docID: true exactly
// once per (device, document), even under concurrent calls and across restarts (the mark is
// durable before it returns true).
//
// To audit first accesses, prefer AuditFirstAccess: with FirstAccess followed by Audit, a
// failure or crash between the two loses the audit event for good.
func (r *Registry) FirstAccess(ctx context.Context, deviceID, docID string) (bool, error) {
	key, err := firstKey(deviceID, docID)
	if err != nil {
		return false, err
	}
	unlock := r.firsts.lock(key)
	defer unlock()
	switch _, err := r.st.Get(nsFirst, key); {
	case err == nil:
		return false, nil
	case !errors.Is(err, store.ErrNotFound):
		return false, err
	}
	if err := r.st.Put(ctx, nsFirst, key, []byte(r.now().Format(time.RFC3339Nano))); err != nil {
		return false, err
	}
	return true, nil
}

// AuditFirstAccess appends e to the audit log if it is the first access of device e.Device to
// the record e.Resident, and reports whether it was; otherwise it does nothing. The relay calls
// it when an advice-line device opens a record.
//
// The event is appended before the access is marked, so a crash between the two can record a
// first access twice but never not at all. If only the mark fails, the event is recorded, seq
// and first are returned with the error, and a later call records the access again.
func (r *Registry) AuditFirstAccess(ctx context.Context, e AuditEvent) (seq uint64, first bool, err error) {
	key, err := firstKey(e.Device, e.Resident)
	if err != nil {
		return 0, false, err
	}
	unlock := r.firsts.lock(key)
	defer unlock()
	switch _, err := r.st.Get(nsFirst, key); {
	case err == nil:
		return 0, false, nil
	case !errors.Is(err, store.ErrNotFound):
		return 0, false, err
	}
	seq, err = r.Audit(ctx, e)
	if err != nil {
		return 0, false, err
	}
	if err := r.st.Put(context.WithoutCancel(ctx), nsFirst, key, []byte(r.now().Format(time.RFC3339Nano))); err != nil {
		return seq, true, fmt.Errorf("audit event %d recorded, but not marked as first access: %w", seq, err)
	}
	return seq, true, nil
}

// firstKey is the first-access key of (device, document). Device IDs never contain '/', so
// the key names one pair.
func firstKey(deviceID, docID string) (string, error) {
	switch {
	case deviceID == "" || strings.Contains(deviceID, "/"):
		return "", invalidf("device ID %q", deviceID)
	case docID == "":
		return "", invalidf("empty document ID")
	}
	return deviceID + "/" + docID, nil
}

// keyLock is a mutex per key. Entries exist only while someone holds or waits for the key.
type keyLock struct {
	mu sync.Mutex
	m  map[string]*keyEntry
}

type keyEntry struct {
	mu   sync.Mutex
	refs int // holders and waiters; guarded by keyLock.mu
}

// lock locks key and returns the function that unlocks it.
func (l *keyLock) lock(key string) (unlock func()) {
	l.mu.Lock()
	if l.m == nil {
		l.m = make(map[string]*keyEntry)
	}
	e := l.m[key]
	if e == nil {
		e = &keyEntry{}
		l.m[key] = e
	}
	e.refs++
	l.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		l.mu.Lock()
		e.refs--
		if e.refs == 0 {
			delete(l.m, key)
		}
		l.mu.Unlock()
	}
}

// Printable returns s fit to print on a terminal or a screen: every
// control character (escape sequences, carriage returns, tabs, newlines),
// every bidirectional-text control, and every invalid byte written out as
// an escape (\x1b, \u202e), so what a device typed can neither rewrite an
// operator's terminal nor pass for another column or line. Other text is
// unchanged.
func Printable(s string) string {
	if !strings.ContainsFunc(s, needsEscape) && utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			fmt.Fprintf(&b, "\\x%02x", s[i])
		case r < 0x80 && needsEscape(r):
			fmt.Fprintf(&b, "\\x%02x", r)
		case needsEscape(r):
			fmt.Fprintf(&b, "\\u%04x", r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

func needsEscape(r rune) bool {
	return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) || r == '\\'
}

// Printable returns the event with every text field made Printable.
func (e AuditEvent) Printable() AuditEvent {
	for _, f := range []*string{&e.Device, &e.Org, &e.Owner, &e.User, &e.Name, &e.Role, &e.Cert, &e.Claimed,
		&e.Resident, &e.Action, &e.Detail, &e.EventID} {
		*f = Printable(*f)
	}
	e.Doubts = slices.Clone(e.Doubts)
	for i := range e.Doubts {
		e.Doubts[i] = Printable(e.Doubts[i])
	}
	return e
}

// ActionBreakGlass is the audit action of a record opened outside a care
// relationship, with a typed reason; each one waits for the IG lead's review.
const ActionBreakGlass = wire.ActionBreakGlass

// ActionFirstAccess is the audit action of an advice-line device's first
// access to a record, which the relay records as it serves it.
const ActionFirstAccess = "first-access"

const nsReviewed = "audit-reviewed" // audit sequence → Review (JSON)

// Review is an information-governance lead's review of a break-glass event.
type Review struct {
	By   string    `json:"by"`
	Note string    `json:"note,omitempty"`
	Time time.Time `json:"time"`
}

// Unreviewed lists break-glass accesses that no IG lead has reviewed yet,
// oldest first; owner "" means every organisation. Only accesses the relay
// granted and recorded count: a device's report of one is not an access.
func (r *Registry) Unreviewed(owner string) ([]Pending, error) {
	var out []Pending
	err := r.AuditLog(0, func(seq uint64, e AuditEvent) error {
		if e.Action != ActionBreakGlass || !e.ByRelay || owner != "" && e.Owner != owner && e.Org != owner {
			return nil
		}
		if _, err := r.st.Get(nsReviewed, seqKey(seq)); err == nil {
			return nil
		}
		out = append(out, Pending{Seq: seq, Event: e})
		return nil
	})
	return out, err
}

// Pending is an audit event awaiting review.
type Pending struct {
	Seq   uint64
	Event AuditEvent
}

// ReviewBreakGlass records that the IG lead reviewed a break-glass event.
func (r *Registry) ReviewBreakGlass(ctx context.Context, seq uint64, by, note string) error {
	return r.ReviewBreakGlassFor(ctx, "", seq, by, note)
}

// ReviewBreakGlassFor is ReviewBreakGlass by an IG lead of organisation
// org ("" for an operator): the access must be to one of org's residents
// or by org's staff, or it is ErrNotFound.
func (r *Registry) ReviewBreakGlassFor(ctx context.Context, org string, seq uint64, by, note string) error {
	if strings.TrimSpace(by) == "" {
		return fmt.Errorf("%w: say who reviewed it", ErrInvalid)
	}
	var found *AuditEvent
	r.AuditLog(seq-1, func(s uint64, e AuditEvent) error {
		if s == seq {
			found = &e
		}
		if s >= seq {
			return errStopScan
		}
		return nil
	})
	if found == nil || found.Action != ActionBreakGlass || !found.ByRelay || org != "" && found.Owner != org && found.Org != org {
		return fmt.Errorf("%w: audit event %d is not a break-glass access", ErrNotFound, seq)
	}
	b, _ := json.Marshal(Review{By: by, Note: note, Time: r.now().UTC()})
	return r.put(ctx, nsReviewed, seqKey(seq), b)
}

func seqKey(seq uint64) string { return fmt.Sprintf("%020d", seq) }

var errStopScan = errors.New("stop")
