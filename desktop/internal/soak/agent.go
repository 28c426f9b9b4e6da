package soak

// Agent mode: one desktop's sync process, headless. The suite re-executes
// its own test binary with AgentEnv set; the child opens the desktop's
// application layer (desktop/internal/app: Open, Unlock, sync by itself),
// makes edits on command or on its own schedule, and reports on stdout,
// each line after the time it was written (Unix nanoseconds):
//
//	ready <pid>                 the app is open and unlocked
//	ack <tag> <kind> <doc>      an edit returned from the app: it is on this computer's disk
//	nack <tag> <reason>         an edit the app refused (not acknowledged)
//	seen <tag>                  a note carrying tag is in this computer's copy
//	state <digest> <rows> <notes>  what this computer holds changed; equal digests mean equal copies
//	sync <online> <pending>     the status bar changed: connected or not, documents with changes the relay has not confirmed
//	status <json>               answer to "status"
//	bye                         answer to "quit", after the app closed
//
// Commands on stdin, one a line:
//
//	note <tag> <n>              add a note tagged <tag> to the n-th held resident (mod their number)
//	decide <tag> <n> <r|n>      record a CPR decision (recommended or not) with <tag> in its reason
//	admit <tag> <n>             admit synthetic resident number n to this computer's home
//	auto <ms>                   also edit on its own, about every <ms> milliseconds (0 stops)
//	status                      print the sync status
//	quit                        close the app and exit
//
// "ack" is printed only after the app call returned without error, and the
// app returns only once the change is synced to disk: an ack is a promise
// to the user that the suite checks every replica for at the end.

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand"
	"math/rand/v2"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"haven/assets/demo"
	"haven/desktop/internal/app"
	"haven/shared/docid"
	"haven/shared/record"
)

// AgentEnv names the environment variable that turns a test binary into an
// agent; its value is the AgentConfig as JSON.
const AgentEnv = "HAVEN_SOAK_AGENT"

// AgentConfig says which desktop an agent runs and who is signed in.
type AgentConfig struct {
	Name    string // for tags made on its own schedule
	Dir     string // the desktop's data folder (enrolled already)
	Account string // demo staff account to unlock with
	PIN     string
	Seed    uint64 // for edits on its own schedule
	// MemTable is the store's memtable size (0: the store's default).
	MemTable int64
}

// TagPrefix marks the soak's edits in note text and decision reasons.
const TagPrefix = "soak:"

// NoteText is the text of a soak note carrying tag.
func NoteText(tag string) string { return TagPrefix + tag + " resident settled; observations stable" }

// DecisionReason is the reason of a soak decision carrying tag.
func DecisionReason(tag string) string {
	return TagPrefix + tag + " reviewed with the resident and family"
}

// TagOf returns the tag in a soak note text or decision reason.
func TagOf(text string) (string, bool) {
	rest, ok := strings.CutPrefix(text, TagPrefix)
	if !ok {
		return "", false
	}
	tag, _, _ := strings.Cut(rest, " ")
	return tag, tag != ""
}

// RunAgent runs one agent until "quit" or the end of in. It writes its
// reports to out and the app's warnings (JSON, IDs only) to logw.
func RunAgent(cfg AgentConfig, in io.Reader, out, logw io.Writer) error {
	ag := &agent{cfg: cfg, out: out, seen: map[string]bool{}, notes: map[docid.ID][]string{}, wake: make(chan struct{}, 1),
		dirty: map[docid.ID]bool{}, rng: rand.New(rand.NewPCG(cfg.Seed, uint64(os.Getpid())))}
	log := slog.New(slog.NewJSONHandler(logw, &slog.HandlerOptions{Level: logLevel()}))
	a, err := app.Open(cfg.Dir, app.Options{Logger: log, MemTableSize: cfg.MemTable})
	if err != nil {
		return err
	}
	ag.a = a
	defer a.Close()
	var staff string
	for _, s := range a.StaffList() {
		if s.Name == cfg.Account {
			staff = s.ID
		}
	}
	if staff == "" {
		return fmt.Errorf("no staff account %q on this computer", cfg.Account)
	}
	a.Subscribe(ag.onEvent)
	if _, err := a.Unlock(staff, cfg.PIN); err != nil {
		return err
	}
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() { defer close(watched); ag.watch(stop) }()
	ag.markAll()
	ag.say("ready %d", os.Getpid())

	// shutdown stops the own schedule and the watcher; the deferred
	// a.Close (or quit's) then stops sync and closes the store.
	var autoCancel chan struct{}
	var autoWG sync.WaitGroup
	stopAuto := func() {
		if autoCancel != nil {
			close(autoCancel)
			autoCancel = nil
		}
		autoWG.Wait()
	}
	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			stopAuto()
			close(stop)
			<-watched
		})
	}
	defer shutdown()

	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		switch f[0] {
		case "note":
			if len(f) == 3 {
				n, _ := strconv.Atoi(f[2])
				ag.note(f[1], n)
			}
		case "decide":
			if len(f) == 4 {
				n, _ := strconv.Atoi(f[2])
				ag.decide(f[1], n, f[3] == "r")
			}
		case "admit":
			if len(f) == 3 {
				n, _ := strconv.Atoi(f[2])
				ag.admit(f[1], n)
			}
		case "auto":
			if len(f) != 2 {
				continue
			}
			ms, _ := strconv.Atoi(f[1])
			stopAuto()
			if ms > 0 {
				c := make(chan struct{})
				autoCancel = c
				autoWG.Add(1)
				go func() { defer autoWG.Done(); ag.auto(time.Duration(ms)*time.Millisecond, c) }()
			}
		case "status":
			b, _ := json.Marshal(a.Status())
			ag.say("status %s", b)
		case "quit":
			shutdown()
			if err := a.Close(); err != nil {
				return err
			}
			ag.say("bye")
			return nil
		}
	}
	return sc.Err()
}

type agent struct {
	cfg AgentConfig
	a   *app.App

	outMu sync.Mutex // one line at a time on out
	out   io.Writer

	editMu sync.Mutex // edits one at a time (commands and the own schedule)
	rng    *rand.Rand // under editMu
	autoN  int

	statusMu sync.Mutex // guards lastSync, and orders "sync" lines
	lastSync string

	mu    sync.Mutex // guards dirty and all
	dirty map[docid.ID]bool
	all   bool
	wake  chan struct{}

	// Owned by the watch goroutine.
	seen  map[string]bool
	notes map[docid.ID][]string // resident → its note IDs and statuses
	rows  map[docid.ID]string   // resident → record heads and timeline
	last  string
}

func (ag *agent) say(format string, args ...any) {
	// Each line carries the agent's own clock (the same wall clock as the
	// suite's), so a busy suite process reading late does not stretch the
	// latencies it measures.
	line := fmt.Sprintf("%d ", time.Now().UnixNano()) + fmt.Sprintf(format, args...) + "\n"
	ag.outMu.Lock()
	io.WriteString(ag.out, line)
	ag.outMu.Unlock()
}

// residents are the held residents in a fixed order, so that "the n-th"
// means the same resident on every computer holding the same home.
func (ag *agent) residents() []app.Row {
	var out []app.Row
	for _, r := range ag.a.Residents(app.Filter{}) {
		if r.Held && r.Timeline != "" {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b app.Row) int { return strings.Compare(a.ID.String(), b.ID.String()) })
	return out
}

func (ag *agent) pick(n int) (app.Row, bool) {
	rs := ag.residents()
	if len(rs) == 0 {
		return app.Row{}, false
	}
	if n < 0 {
		n = -n
	}
	return rs[n%len(rs)], true
}

func oneLine(err error) string { return strings.Join(strings.Fields(err.Error()), " ") }

func (ag *agent) note(tag string, n int) {
	ag.editMu.Lock()
	defer ag.editMu.Unlock()
	r, ok := ag.pick(n)
	if !ok {
		ag.say("nack %s no resident held yet", tag)
		return
	}
	if _, err := ag.a.AddNote(r.ID, NoteText(tag)); err != nil {
		ag.say("nack %s %s", tag, oneLine(err))
		return
	}
	ag.say("ack %s note %s", tag, r.ID)
}

func (ag *agent) decide(tag string, n int, recommended bool) {
	ag.editMu.Lock()
	defer ag.editMu.Unlock()
	r, ok := ag.pick(n)
	if !ok {
		ag.say("nack %s no resident held yet", tag)
		return
	}
	v := record.CPRNotRecommended
	if recommended {
		v = record.CPRRecommended
	}
	if _, err := ag.a.Decide(r.ID, record.KindCPR, "", v, DecisionReason(tag)); err != nil {
		ag.say("nack %s %s", tag, oneLine(err))
		return
	}
	ag.say("ack %s decide %s", tag, r.ID)
}

func (ag *agent) admit(tag string, n int) {
	ag.editMu.Lock()
	defer ag.editMu.Unlock()
	dev := ag.a.Device()
	ident := demo.Person(mrand.New(mrand.NewSource(int64(n))), n, time.Now())
	id, _, err := ag.a.AddResident(dev.Org, ident)
	if err != nil {
		ag.say("nack %s %s", tag, oneLine(err))
		return
	}
	ag.say("ack %s resident %s", tag, id)
}

// auto edits on the agent's own schedule: exponential gaps around every,
// one decision in ten.
func (ag *agent) auto(every time.Duration, cancel <-chan struct{}) {
	for {
		ag.editMu.Lock()
		gap := time.Duration(ag.rng.ExpFloat64() * float64(every))
		n, decide, rec := ag.rng.IntN(1<<20), ag.rng.IntN(10) == 0, ag.rng.IntN(2) == 0
		ag.autoN++
		tag := fmt.Sprintf("%s-p%d-%d", ag.cfg.Name, os.Getpid(), ag.autoN)
		ag.editMu.Unlock()
		t := time.NewTimer(gap) // the schedule's pacing, not a wait for an event
		select {
		case <-t.C:
		case <-cancel:
			t.Stop()
			return
		}
		if decide {
			ag.decide(tag, n, rec)
		} else {
			ag.note(tag, n)
		}
	}
}

// onEvent runs on the app's goroutines: it only marks what to look at.
func (ag *agent) onEvent(e app.Event) {
	ag.mu.Lock()
	switch e.Kind {
	case app.EventResident:
		ag.dirty[e.Doc] = true
	case app.EventList, app.EventDownload:
		ag.all = true
	case app.EventStatus:
		ag.mu.Unlock()
		ag.syncStatus()
		return
	default:
		ag.mu.Unlock()
		return
	}
	ag.mu.Unlock()
	select {
	case ag.wake <- struct{}{}:
	default:
	}
}

// syncStatus reports the status bar's connection and waiting changes when
// they change.
func (ag *agent) syncStatus() {
	st := ag.a.Status()
	line := fmt.Sprintf("sync %v %d", st.Online, st.Pending)
	ag.statusMu.Lock()
	defer ag.statusMu.Unlock()
	if line != ag.lastSync {
		ag.lastSync = line
		ag.say("%s", line)
	}
}

func (ag *agent) markAll() {
	ag.mu.Lock()
	ag.all = true
	ag.mu.Unlock()
	select {
	case ag.wake <- struct{}{}:
	default:
	}
}

// watch keeps a digest of what this computer holds (each resident's
// record heads and the IDs and statuses of its notes) and reports it when
// it changes, with every soak note tag the first time it appears.
func (ag *agent) watch(stop <-chan struct{}) {
	ag.rows = map[docid.ID]string{}
	for {
		select {
		case <-stop:
			return
		case <-ag.wake:
		}
		ag.mu.Lock()
		dirty, all := ag.dirty, ag.all
		ag.dirty, ag.all = map[docid.ID]bool{}, false
		ag.mu.Unlock()
		rows := ag.a.Residents(app.Filter{})
		present := map[docid.ID]bool{}
		for _, r := range rows {
			present[r.ID] = true
			key := r.Heads + "|" + r.Timeline
			if ag.rows[r.ID] != key {
				ag.rows[r.ID] = key
				dirty[r.ID] = true
			}
			if all {
				if _, ok := ag.notes[r.ID]; !ok {
					dirty[r.ID] = true
				}
			}
		}
		for id := range ag.rows {
			if !present[id] {
				delete(ag.rows, id)
				delete(ag.notes, id)
			}
		}
		for id := range dirty {
			if present[id] {
				ag.readNotes(id)
			}
		}
		ag.report()
	}
}

func (ag *agent) readNotes(id docid.ID) {
	ns, err := ag.a.Notes(id)
	if err != nil {
		if errors.Is(err, app.ErrNotHeld) {
			delete(ag.notes, id)
		}
		return
	}
	keys := make([]string, 0, len(ns))
	for _, n := range ns {
		keys = append(keys, n.ID+"/"+n.Status)
		if tag, ok := TagOf(n.Text); ok && !ag.seen[tag] {
			ag.seen[tag] = true
			ag.say("seen %s", tag)
		}
	}
	slices.Sort(keys)
	ag.notes[id] = keys
}

func (ag *agent) report() {
	ids := make([]docid.ID, 0, len(ag.rows))
	for id := range ag.rows {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b docid.ID) int { return bytes.Compare(a[:], b[:]) })
	h := sha256.New()
	notes := 0
	for _, id := range ids {
		fmt.Fprintf(h, "%s %s\n", id, ag.rows[id])
		for _, k := range ag.notes[id] {
			fmt.Fprintf(h, " %s\n", k)
		}
		notes += len(ag.notes[id])
	}
	d := hex.EncodeToString(h.Sum(nil))[:16]
	if d != ag.last {
		ag.last = d
		ag.say("state %s %d %d", d, len(ids), notes)
	}
}

// logLevel is warn unless HAVEN_SOAK_LOG_LEVEL asks for more (debug shows
// each sync step's timing, IDs and sizes only).
func logLevel() slog.Level {
	var l slog.Level = slog.LevelWarn
	if v := os.Getenv("HAVEN_SOAK_LOG_LEVEL"); v != "" {
		l.UnmarshalText([]byte(v))
	}
	return l
}
