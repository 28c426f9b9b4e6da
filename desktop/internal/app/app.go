// Package app is the desktop's application layer: everything the Fyne UI
// shows and does, in plain Go, tested without a window. The UI calls one
// method per action and renders the view models this package computes.
//
// Lifecycle: Open reads the device file; the first Unlock with a staff PIN
// unseals the store key, opens the encrypted store and starts syncing. The
// screen locks after the home's idle time; the store stays open and sync
// carries on behind the lock, so the copy is current when the next person
// unlocks.
package app

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"haven/shared/client"
	"haven/shared/docid"
	"haven/shared/nhs"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/shared/store"
	"haven/shared/wire"
)

// Options tune an App.
type Options struct {
	Logger *slog.Logger
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
	// NoSync keeps the app offline (tests of the application layer alone).
	NoSync bool
	// MemTableSize is the store's memtable (store.Options); zero keeps the
	// store's default. For a test running several desktops on one machine.
	MemTableSize int64
}

// User is the person signed in: their certificate's name, role and
// registration when certified (Staff.Certified), with the signing key their
// PIN unsealed.
type User struct {
	Staff
	author record.Author
	signer record.KeySigner // Cert nil when not certified
}

// Event tells the UI what changed.
type Event struct {
	Kind EventKind
	Doc  docid.ID // for EventResident
}

// EventKind names what changed.
type EventKind int

const (
	EventStatus   EventKind = iota // sync status (online, waiting, last exchange)
	EventList                      // the resident list or conflicts changed
	EventResident                  // one resident's record or timeline changed
	EventLocked                    // the screen locked
	EventDownload                  // download progress changed
)

// App is one desktop's application state.
type App struct {
	dir  string
	opts Options
	log  *slog.Logger

	mu        sync.Mutex // guards everything below
	dev       *deviceFile
	master    []byte // the store key, in memory only while the store is open
	st        *store.Store
	repo      *repo.Repo
	client    *client.Client
	user      *User // nil when locked
	lastTouch time.Time
	// seen is when seenBy last opened each resident (by ID), read from
	// the store once per person (handover.go).
	seen      map[string]time.Time
	seenBy    string
	seenSaved map[string]time.Time // "staff/resident" → when last saved
	listeners []func(Event)
	download  Progress
	online    bool
	lastSync  map[docid.ID]time.Time // when each document was last confirmed with the relay
	glass     map[docid.ID]bool      // residents opened with a break-glass reason this session
	refusal   string                 // the relay's last refusal of a change, for the status bar
	// refusalHeld marks a refusal under a limit: the changes wait here, and
	// the words go once nothing waits.
	refusalHeld bool
	day         string // today's date as the list was last shown (reviews.go)
	cancel      context.CancelFunc
	done        chan struct{} // closed when the sync goroutines have stopped

	idx   *index
	audit *auditOutbox
	// trustState is who this computer believes is certified (staff.go).
	trustState staffTrust
	homes      []wire.HomeName // the region's care homes (transfer.go)

	// letGo marks the documents the relay said this computer may hold no
	// longer; set with the store.
	letGo *letGoSet

	watchMu sync.Mutex // guards watches; taken without mu
	watches map[docid.ID]*watched
}

// Progress is a fresh device's download.
type Progress struct {
	Active      bool
	Done, Total int
}

// Open reads the device file. It returns ErrNotEnrolled for a computer
// that has not been set up (show the enrolment screen, then call Open
// again).
func Open(dir string, opts Options) (*App, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dev, err := loadDevice(dir)
	if err != nil {
		return nil, err
	}
	a := &App{dir: dir, opts: opts, log: log, dev: dev, lastSync: map[docid.ID]time.Time{}, glass: map[docid.ID]bool{},
		watches: map[docid.ID]*watched{}}
	a.idx = newIndex(a)
	a.seenSaved = map[string]time.Time{}
	return a, nil
}

// Subscribe registers a listener for events; it is called on the goroutine
// that caused the event (the UI hands it to its own thread).
func (a *App) Subscribe(f func(Event)) {
	a.mu.Lock()
	a.listeners = append(a.listeners, f)
	a.mu.Unlock()
}

func (a *App) emit(e Event) {
	a.mu.Lock()
	ls := append([]func(Event){}, a.listeners...)
	a.mu.Unlock()
	for _, f := range ls {
		f(e)
	}
}

// Device describes this computer for the title bar.
type Device struct {
	Name, Org, OrgName, OrgKind string
	Demo                        bool
}

func (a *App) Device() Device {
	a.mu.Lock()
	defer a.mu.Unlock()
	return Device{Name: a.dev.DeviceName, Org: a.dev.Org, OrgName: a.dev.OrgName, OrgKind: a.dev.OrgKind, Demo: a.dev.Demo}
}

// StaffList is who can unlock this computer, for the unlock screen: names
// and roles from their certificates once this computer has unlocked and
// holds them, else as requested (Certified false).
func (a *App) StaffList() []Staff {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]Staff, len(a.dev.Staff))
	for i, s := range a.dev.Staff {
		out[i] = a.viewLocked(s)
	}
	return out
}

// Unlock signs a member of staff in with their PIN. The first unlock after
// start opens the store and starts syncing. Their role is their
// certificate's; without a valid certificate for the key their PIN
// unseals they are signed in as not yet certified.
func (a *App) Unlock(staffID, pin string) (*User, error) {
	a.mu.Lock()
	s := a.staffLocked(staffID)
	if s == nil {
		a.mu.Unlock()
		return nil, errors.New("choose your name first")
	}
	now := a.opts.Now()
	failures, lockedUntil := a.pinsLocked(*s)
	if now.Before(lockedUntil) {
		a.mu.Unlock()
		return nil, ErrTooManyPINs
	}
	rec := *s
	a.mu.Unlock()

	key := pinKey(pin, rec.Salt) // slow on purpose: outside the lock
	master, err := unseal(key, rec.Sealed)
	var signKey ed25519.PrivateKey
	if err == nil {
		signKey, err = unsealKey(rec, key)
	} else {
		err = ErrWrongPIN
	}

	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		failures++
		if failures >= 5 {
			lockedUntil, failures = now.Add(time.Minute), 0
		}
		a.setPinsLocked(staffID, failures, lockedUntil)
		return nil, err
	}
	if failures != 0 {
		a.setPinsLocked(staffID, 0, time.Time{})
	}
	if a.st == nil {
		if err := a.startLocked(master); err != nil {
			return nil, err
		}
	}
	u := a.resolveLocked(rec, signKey)
	a.user = u
	a.lastTouch = now
	return u, nil
}

// startLocked opens the store with the master key and starts sync. Caller
// holds a.mu.
func (a *App) startLocked(master []byte) error {
	st, err := store.Open(a.dir, store.Options{Key: master, Logger: a.log, MemTableSize: a.opts.MemTableSize})
	if err != nil {
		if errors.Is(err, store.ErrLocked) {
			return fmt.Errorf("Haven is already open on this computer: %w", err)
		}
		return err
	}
	a.st, a.master = st, master
	if err := a.loadTrustLocked(master); err != nil {
		st.Close()
		a.st, a.master = nil, nil
		return err
	}
	a.mergePinsLocked()
	a.repo = repo.New(st, repo.Options{Logger: a.log, OnChange: func(id docid.ID) {}})
	a.audit = newAuditOutbox(a)
	cred, err := unseal(master, a.dev.Credential)
	if err != nil {
		return fmt.Errorf("the device credential cannot be read: %w", err)
	}
	if err := a.idx.load(); err != nil {
		a.log.Error("building the resident list", "err", err)
	}
	a.letGo = a.loadLetGo()
	ctx, cancel := context.WithCancel(context.Background())
	a.cancel = cancel
	a.done = make(chan struct{})
	a.day = a.opts.Now().Format(record.DateLayout)
	go a.dayLoop(ctx)
	if a.opts.NoSync || len(a.dev.RelayURLs) == 0 {
		close(a.done)
		return nil
	}
	a.client = client.New(client.Config{
		URLs: a.dev.RelayURLs, Credential: string(cred), Repo: a.repo, States: st,
		PeerID: a.dev.PeerID, StorageID: a.dev.StorageID, Docs: a.localDocs, Logger: a.log,
		OnChange:   a.remoteChange,
		OnStatus:   a.statusChanged,
		OnSettled:  a.settled,
		OnAuditAck: a.audit.acked,
		OnTrust:    a.onTrust,
		OnError:    a.relayError,
		OnWho:      a.onWho,
		LetGo:      a.letGo,
	})
	go func() {
		defer close(a.done)
		var wg sync.WaitGroup
		wg.Add(2)
		go func() { defer wg.Done(); a.audit.run(ctx) }()
		go func() { defer wg.Done(); a.purgeLoop(ctx) }()
		err := a.client.Run(ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("sync stopped", "err", err)
		}
		wg.Wait()
	}()
	return nil
}

// Lock signs the current user out; sync carries on.
func (a *App) Lock() {
	a.mu.Lock()
	was := a.user != nil
	a.user = nil
	a.glass = map[docid.ID]bool{} // a break-glass reason lasts one session
	a.mu.Unlock()
	if was {
		a.emit(Event{Kind: EventLocked})
	}
}

// Locked reports whether nobody is signed in.
func (a *App) Locked() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.user == nil
}

// CurrentUser is who is signed in, or nil.
func (a *App) CurrentUser() *User {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.user
}

// Touch records activity, postponing the idle lock.
func (a *App) Touch() {
	a.mu.Lock()
	a.lastTouch = a.opts.Now()
	a.mu.Unlock()
}

// LockAfter is the home's idle time before the screen locks.
func (a *App) LockAfter() time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.dev.LockAfterSeconds <= 0 {
		return 5 * time.Minute
	}
	return time.Duration(a.dev.LockAfterSeconds) * time.Second
}

// SetLockAfter changes the idle time (a home manager's setting).
func (a *App) SetLockAfter(d time.Duration) error {
	u := a.CurrentUser()
	if u.Acts() != record.HomeManager {
		return errors.New("only the home manager can change the lock time")
	}
	if d < time.Minute || d > time.Hour {
		return errors.New("the lock time must be between 1 and 60 minutes")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.dev.LockAfterSeconds = int(d / time.Second)
	return a.dev.save(a.dir)
}

// CheckIdle locks the screen if nobody has touched it for LockAfter; the UI
// calls it on a timer. It reports whether it locked.
func (a *App) CheckIdle() bool {
	a.mu.Lock()
	idle := a.user != nil && a.opts.Now().Sub(a.lastTouch) >= a.lockAfterLocked()
	a.mu.Unlock()
	if idle {
		a.Lock()
	}
	return idle
}

func (a *App) lockAfterLocked() time.Duration {
	if a.dev.LockAfterSeconds <= 0 {
		return 5 * time.Minute
	}
	return time.Duration(a.dev.LockAfterSeconds) * time.Second
}

// AddStaff creates a staff account on this computer with the person
// present to choose their PIN, and asks the relay to certify them: at once
// for a care worker or senior carer when a certified home manager adds
// them (the manager's signature vouches), else once an administrator has
// checked the person and their registration. Until then they may sign in
// and write notes, shown as not yet certified.
func (a *App) AddStaff(name string, role record.Role, reg, pin string) (Staff, error) {
	u := a.CurrentUser()
	if !u.Acts().ManagesStaff(a.careHome()) {
		return Staff{}, ErrNotStaffManager
	}
	var voucher *record.KeySigner
	if u.Role == record.HomeManager && u.signer.Cert != nil {
		voucher = &u.signer
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st == nil {
		return Staff{}, errors.New("unlock first")
	}
	s, err := newStaff(name, role, reg, pin, a.master, voucher)
	if err != nil {
		return Staff{}, err
	}
	a.dev.Staff = append(a.dev.Staff, s)
	if err := a.dev.save(a.dir); err != nil {
		return Staff{}, err
	}
	if a.client != nil {
		go a.sendRequests()
	}
	return a.viewLocked(s), nil
}

// Close stops sync and closes the store.
func (a *App) Close() error {
	a.mu.Lock()
	cancel, done, st, r := a.cancel, a.done, a.st, a.repo
	a.mu.Unlock()
	if cancel != nil {
		cancel()
		<-done
	}
	if st != nil && a.idx != nil {
		a.idx.flush()
	}
	if r != nil {
		r.Close()
	}
	if st != nil {
		return st.Close()
	}
	return nil
}

// editor returns an editor for the signed-in user.
func (a *App) editor() (*record.Editor, error) {
	u := a.CurrentUser()
	if u == nil {
		return nil, ErrLockedScreen
	}
	mode := nhs.Live
	if a.dev.Demo {
		mode = nhs.Demo
	}
	ed, err := record.NewEditor(u.author, record.Rules{NHS: mode, Now: a.opts.Now, Trust: a.Trust()})
	if err != nil {
		return nil, err
	}
	if u.signer.Cert != nil {
		ed.Signer = u.signer
	}
	return ed, nil
}

// ErrLockedScreen is returned by actions while nobody is signed in.
var ErrLockedScreen = errors.New("the screen is locked: unlock with your PIN")
