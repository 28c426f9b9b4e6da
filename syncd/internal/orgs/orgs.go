// Package orgs is the relay's registry of organisations and enrolled devices: who may connect
// (one-time enrolment codes exchanged for long-lived credentials), what each device may see
// (its scope), and the append-only audit log.
//
// Everything is kept in the relay's encrypted store and survives restarts. Secrets never are:
// enrolment codes and credentials are stored only as SHA-256 hashes, and nothing here logs
// them. In a cluster of relay nodes the registry is shared: see shared.go for what every node
// holds, what each keeps to itself, and how a change made on one node reaches the others.
//
// Key layout (store key/value namespaces and logs):
//
//	orgs     <org ID>               JSON Org
//	devices  <device ID>            JSON deviceRecord (holds the hashes of its code and credential)
//	codes    hex(SHA-256(code))     device ID; deleted when redeemed, revoked or found expired
//	creds    hex(SHA-256(cred))     device ID; kept after revocation so Authenticate can say so
//	seen     <device ID>            last-seen time, RFC 3339 (written at most once a minute)
//	first    <device ID>/<doc ID>   time of the device's first access to the document
//	log audit                       JSON AuditEvent, seq from 1
//	registry-unshared <ns>/<key>    "" (a shared key written with no cluster; see shared.go)
//	audit-copied <seq>              "" (the cluster's audit event seq is in this node's chain)
//
// The store offers no multi-key transactions, so multi-step changes are ordered so that a crash
// part way leaves nothing usable that should not be (see Redeem), and one mutex serialises the
// read-modify-write changes. A Registry must therefore be the only one over its store; in a
// cluster the nodes' registries are kept apart by compare-and-set on each key (shared.go).
package orgs

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"haven/shared/docid"
	"haven/shared/store"
)

// Kind is the kind of an organisation.
type Kind string

const (
	// KindHome is a care home: its devices see its own residents.
	KindHome Kind = "care-home"
	// KindHub is a GP hub: its devices see the homes it covers.
	KindHub Kind = "gp-hub"
	// KindAdviceLine is a region-wide advice line: its devices see every resident, and each
	// first opening of a record by one of its devices is audited.
	KindAdviceLine Kind = "advice-line"
)

// idPrefix is the prefix of the IDs of each kind of organisation.
var idPrefix = map[Kind]string{KindHome: "home", KindHub: "hub", KindAdviceLine: "advice"}

// kindOrder orders listings: homes, then hubs, then advice lines.
var kindOrder = map[Kind]int{KindHome: 0, KindHub: 1, KindAdviceLine: 2}

var (
	// ErrNotFound reports an unknown organisation or device. The error's text names which.
	ErrNotFound = errors.New("not found")
	// ErrInvalid reports a request that breaks a rule (empty name, a hub covering something
	// that is not a care home, ...). The error's text says which, in words for an
	// administrator, with nothing prepended.
	ErrInvalid = errors.New("invalid request")
	// ErrBadCode reports an enrolment code that is malformed, unknown, expired or already used.
	// It deliberately does not say which.
	ErrBadCode = errors.New("enrolment code not valid (unknown, expired or already used)")
	// ErrUnauthorized reports a credential that is malformed or unknown.
	ErrUnauthorized = errors.New("unknown credential")
	// ErrRevoked reports a device that has been revoked.
	ErrRevoked = errors.New("device revoked")
)

// reasonError is an ErrInvalid or ErrNotFound whose text is only the reason, so an admin
// command can print it as it is.
type reasonError struct {
	msg   string
	kind  error // ErrInvalid or ErrNotFound
	cause error // optional
}

func (e *reasonError) Error() string        { return e.msg }
func (e *reasonError) Is(target error) bool { return target == e.kind }
func (e *reasonError) Unwrap() error        { return e.cause }

func invalidf(format string, a ...any) error {
	return &reasonError{msg: fmt.Sprintf(format, a...), kind: ErrInvalid}
}

func notFoundf(format string, a ...any) error {
	return &reasonError{msg: fmt.Sprintf(format, a...), kind: ErrNotFound}
}

// phrase names a kind in a sentence: "a care home".
func (k Kind) phrase() string {
	switch k {
	case KindHome:
		return "a care home"
	case KindHub:
		return "a GP hub"
	case KindAdviceLine:
		return "an advice line"
	}
	return fmt.Sprintf("of unknown kind %q", string(k))
}

// Org is an organisation.
type Org struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Kind Kind   `json:"kind"`
	// ODS is the organisation's NHS ODS code, upper case, or empty.
	ODS string `json:"ods,omitempty"`
	// Homes are the IDs of the care homes a hub covers, sorted; empty for other kinds.
	Homes []string `json:"homes,omitempty"`
	// Directory is a care home's directory document ID once set (see SetDirectory).
	Directory string    `json:"directory,omitempty"`
	Created   time.Time `json:"created"`
	// Demo marks a demonstration organisation (syncd demo): its staff
	// certificate requests are granted without an administrator.
	Demo bool `json:"demo,omitempty"`
}

// Namespaces and log names in the store (see the key layout above).
const (
	nsOrgs    = "orgs"
	nsDevices = "devices"
	nsCodes   = "codes"
	nsCreds   = "creds"
	nsSeen    = "seen"
	nsFirst   = "first"
	auditLog  = "audit" // a chained log (store.AppendChained)
)

// namespaces lists every key/value namespace the registry writes, for tests that inspect them.
var namespaces = []string{nsOrgs, nsDevices, nsCodes, nsCreds, nsSeen, nsFirst, nsStaffReq, nsCerts, nsRevoked, nsPreapproved}

// Limits on what administrators and clients may send.
const (
	maxNameLen = 200 // runes, for organisation and device names
	// DefaultCodeTTL is how long an enrolment code works when EnrollDevice is given no ttl.
	DefaultCodeTTL = 24 * time.Hour
	// MaxCodeTTL bounds an enrolment code's life: an unused code is a standing key.
	MaxCodeTTL = 30 * 24 * time.Hour
	// seenInterval is the least time between two writes of a device's last-seen time.
	seenInterval = time.Minute
)

// Registry is the registry over one store. Its methods are safe for concurrent use. It does
// not own the store: the caller opens it, keeps it open while the Registry is used, and
// closes it.
type Registry struct {
	// Key is the organisation signing key: it signs staff certificates and
	// their revocations. Nil: certificate requests are refused. Set it
	// before the Registry is first used.
	Key ed25519.PrivateKey
	// OnTrustChange is called after a revocation, and after an
	// administrator grants or refuses a request (the relay tells every
	// connection, and its workers), on whichever node it was made. May be
	// nil.
	OnTrustChange func()
	// OnDeviceRevoked is called when a device's revocation made on any
	// node (this one included) is kept here, for the relay to close its
	// connections; OnScopesChange when an organisation changes (a hub's
	// homes). Either may be nil.
	OnDeviceRevoked func(device string)
	OnScopesChange  func()
	// Cluster, if set, is the relay's nodes' shared copy of the registry
	// and the audit log (shared.go). Set it before the Registry is first
	// used. Nil: this store alone.
	Cluster Cluster
	// Now returns the current time. Nil means time.Now. Tests replace it; set it before the
	// Registry is first used.
	Now func() time.Time
	// Logger receives IDs and failures, never names, codes or credentials. Nil discards.
	// Set it before the Registry is first used.
	Logger *slog.Logger

	st *store.Store

	// mu serialises every read-modify-write of orgs, devices, codes and creds, so that checks
	// (an ID is free, a home exists, a code is unused) still hold when the write lands.
	// Plain reads do not take it: each store read sees one consistent view.
	mu sync.Mutex

	// seenMu guards seen: per device, the last-seen time last written to the store and the
	// latest one known. Authenticate writes at most once per seenInterval per device.
	seenMu sync.Mutex
	seen   map[string]seenTimes

	// firsts serialises FirstAccess and AuditFirstAccess per (device, document) key, so
	// different keys proceed (and share store syncs) concurrently.
	firsts keyLock

	// auditOnce moves a pre-chain audit log into the chain before the first audit read or
	// write; auditErr is its outcome.
	auditOnce sync.Once
	auditErr  error

	share sharing
}

type seenTimes struct{ written, latest time.Time }

// New returns a Registry over st. It does no I/O.
func New(st *store.Store) *Registry {
	return &Registry{st: st, seen: make(map[string]seenTimes), share: newSharing()}
}

func (r *Registry) now() time.Time {
	if r.Now != nil {
		return r.Now().UTC()
	}
	return time.Now().UTC()
}

func (r *Registry) log() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.New(slog.DiscardHandler)
}

// MarkDemo marks an organisation as a demonstration (see Org.Demo).
func (r *Registry) MarkDemo(ctx context.Context, id string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changeOrg(ctx, id, func(o *Org) error {
		if o.Demo {
			return errUnchanged
		}
		o.Demo = true
		return nil
	})
}

// changeOrg is a read-modify-write of organisation id (see change): fn
// changes it, or returns errUnchanged or an error. An unknown id is an
// error matching ErrNotFound.
func (r *Registry) changeOrg(ctx context.Context, id string, fn func(o *Org) error) error {
	return changeJSON(ctx, r, nsOrgs, id, notFoundf("no organisation %q", id), fn)
}

// changeJSON is a read-modify-write (see change) of the JSON value under (ns, key): fn
// changes it, or returns errUnchanged or an error; a missing key (or an empty one) is the
// error missing.
func changeJSON[T any](ctx context.Context, r *Registry, ns, key string, missing error, fn func(v *T) error) error {
	if key == "" {
		return missing
	}
	return r.change(ctx, ns, key, func(cur []byte, found bool) ([]byte, bool, error) {
		if !found {
			return nil, false, missing
		}
		var v T
		if err := json.Unmarshal(cur, &v); err != nil {
			return nil, false, fmt.Errorf("%s %q: %w", ns, key, err)
		}
		if err := fn(&v); err != nil {
			return nil, false, err
		}
		b, err := json.Marshal(v)
		return b, false, err
	})
}

// CreateHome registers a care home. ods is its ODS code, or empty; if given it must be
// unique among organisations.
func (r *Registry) CreateHome(ctx context.Context, name, ods string) (Org, error) {
	return r.create(ctx, Org{Name: name, Kind: KindHome, ODS: ods})
}

// CreateHub registers a GP hub covering homes, which must all be existing care homes (none
// is fine: SetHubHomes can add them later).
func (r *Registry) CreateHub(ctx context.Context, name string, homes []string) (Org, error) {
	return r.create(ctx, Org{Name: name, Kind: KindHub, Homes: homes})
}

// CreateAdviceLine registers an advice line. Its devices may see every resident.
func (r *Registry) CreateAdviceLine(ctx context.Context, name string) (Org, error) {
	return r.create(ctx, Org{Name: name, Kind: KindAdviceLine})
}

func (r *Registry) create(ctx context.Context, o Org) (Org, error) {
	name, err := cleanName("organisation name", o.Name)
	if err != nil {
		return Org{}, err
	}
	o.Name = name
	if o.ODS, err = cleanODS(o.ODS); err != nil {
		return Org{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if o.Kind == KindHub {
		if o.Homes, err = r.checkHomes(o.Homes); err != nil {
			return Org{}, err
		}
	}
	if o.ODS != "" {
		if err := r.checkODSFree(o.ODS); err != nil {
			return Org{}, err
		}
	}
	o.Created = r.now()
	if o.ID, err = r.createWithID(ctx, nsOrgs, idPrefix[o.Kind], func(id string) any { o.ID = id; return o }); err != nil {
		return Org{}, err
	}
	r.log().Info("organisation created", "org", o.ID, "kind", o.Kind)
	return o, nil
}

// SetHubHomes replaces the homes hubID covers. Devices of the hub see the change at their
// next connection (Scope reads it afresh).
func (r *Registry) SetHubHomes(ctx context.Context, hubID string, homes []string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	checked, err := r.checkHomes(homes)
	if err != nil {
		return err
	}
	err = r.changeOrg(ctx, hubID, func(hub *Org) error {
		if hub.Kind != KindHub {
			return invalidf("%s is %s, not a GP hub", hubID, hub.Kind.phrase())
		}
		hub.Homes = checked
		return nil
	})
	if err != nil {
		return err
	}
	r.log().Info("hub homes set", "org", hubID, "homes", len(checked))
	return nil
}

// SetDirectory records docID (a document ID or automerge URL) as the directory document of
// care home homeID. Setting the same directory again is a no-op; replacing a different one
// is refused, because devices already follow the first one and would silently lose it.
func (r *Registry) SetDirectory(ctx context.Context, homeID, docID string) error {
	id, err := docid.Parse(strings.TrimSpace(docID))
	if err != nil {
		return &reasonError{msg: "directory document ID: " + err.Error(), kind: ErrInvalid, cause: err}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.changeOrg(ctx, homeID, func(home *Org) error {
		if home.Kind != KindHome {
			return invalidf("%s is %s; only care homes have a directory", homeID, home.Kind.phrase())
		}
		switch home.Directory {
		case id.String():
			return errUnchanged
		case "":
		default:
			return invalidf("care home %s already has directory %s", homeID, home.Directory)
		}
		home.Directory = id.String()
		return nil
	})
}

// Org returns the organisation id, or an error matching ErrNotFound.
func (r *Registry) Org(id string) (Org, error) {
	var o Org
	if err := r.getJSON(nsOrgs, id, &o); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return Org{}, notFoundf("no organisation %q", id)
		}
		return Org{}, err
	}
	return o, nil
}

// Orgs returns every organisation: care homes, then hubs, then advice lines, each by name
// (case-insensitive) and then ID, so listings are stable.
func (r *Registry) Orgs() ([]Org, error) {
	var out []Org
	err := r.st.Scan(nsOrgs, "", func(key string, val []byte) error {
		var o Org
		if err := json.Unmarshal(val, &o); err != nil {
			return fmt.Errorf("organisation %q: %w", key, err)
		}
		out = append(out, o)
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Org) int {
		return cmp.Or(
			cmp.Compare(kindOrder[a.Kind], kindOrder[b.Kind]),
			cmp.Compare(strings.ToLower(a.Name), strings.ToLower(b.Name)),
			cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// checkHomes validates a hub's list of homes and returns it sorted. The caller holds r.mu.
func (r *Registry) checkHomes(homes []string) ([]string, error) {
	out := slices.Clone(homes)
	slices.Sort(out)
	for i, id := range out {
		if i > 0 && out[i-1] == id {
			return nil, invalidf("care home %s is listed twice", id)
		}
		o, err := r.Org(id)
		if err != nil {
			return nil, err
		}
		if o.Kind != KindHome {
			return nil, invalidf("a GP hub covers care homes only, and %s is %s", id, o.Kind.phrase())
		}
	}
	return out, nil
}

// checkODSFree fails if another organisation has ods. The caller holds r.mu.
func (r *Registry) checkODSFree(ods string) error {
	orgs, err := r.Orgs()
	if err != nil {
		return err
	}
	for _, o := range orgs {
		if o.ODS == ods {
			return invalidf("ODS code %s already belongs to %s (%s)", ods, o.ID, o.Name)
		}
	}
	return nil
}

// createWithID stores, under a fresh "<prefix>-xxxxxxxxxx" ID unused in ns (in a cluster, on
// every node), the JSON of what value returns for that ID, and returns the ID. The caller
// holds r.mu.
func (r *Registry) createWithID(ctx context.Context, ns, prefix string, value func(id string) any) (string, error) {
	for {
		id := prefix + "-" + randomString(idAlphabet, idLen)
		b, err := json.Marshal(value(id))
		if err != nil {
			return "", err
		}
		err = r.createKey(ctx, ns, id, b)
		if !errors.Is(err, errTaken) {
			return id, err
		}
		// 50 random bits: a collision is a curiosity, but cheap to rule out.
	}
}

// IDs: 10 characters of lower-case Crockford base32 (50 bits), after a prefix that names the
// kind. Short enough to type in an admin command, random so they reveal nothing.
const (
	idAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	idLen      = 10
)

// randomString returns n characters drawn uniformly from alphabet, whose length must be 32.
func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand)
	for i := range b {
		b[i] = alphabet[b[i]&31]
	}
	return string(b)
}

// cleanName trims name and checks it is a sensible display name.
func cleanName(what, name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", invalidf("%s is empty", what)
	case !utf8.ValidString(name):
		return "", invalidf("%s is not valid UTF-8", what)
	case utf8.RuneCountInString(name) > maxNameLen:
		return "", invalidf("%s is longer than %d characters", what, maxNameLen)
	case strings.ContainsFunc(name, unicode.IsControl):
		return "", invalidf("%s contains a control character", what)
	}
	return name, nil
}

// cleanODS upper-cases an ODS code and checks its shape: ODS organisation codes are 3 to 10
// letters and digits (care homes' are typically 5, such as VM1AB).
func cleanODS(ods string) (string, error) {
	ods = strings.ToUpper(strings.TrimSpace(ods))
	if ods == "" {
		return "", nil
	}
	if len(ods) < 3 || len(ods) > 10 || strings.ContainsFunc(ods, func(c rune) bool {
		return !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9')
	}) {
		return "", invalidf("ODS code %q should be 3 to 10 letters and digits", ods)
	}
	return ods, nil
}

// putJSON sets (ns, key) to v's JSON, whatever it held (in a cluster, on every node).
func (r *Registry) putJSON(ctx context.Context, ns, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return r.put(ctx, ns, key, b)
}

// getJSON reads key into v; store.ErrNotFound if absent.
func (r *Registry) getJSON(ns, key string, v any) error {
	if key == "" {
		return store.ErrNotFound
	}
	b, err := r.st.Get(ns, key)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s %q: %w", ns, key, err)
	}
	return nil
}
