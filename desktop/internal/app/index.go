package app

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"sort"
	"strings"
	"sync"
	"time"

	"haven/shared/crdt"
	"haven/shared/docid"
	"haven/shared/record"
	"haven/shared/repo"
	"haven/shared/wire"
)

// Row is one resident in the list: what search, filters and badges need.
// Rows are cached in the store (namespace app-row) so that the list is
// usable at once on start; each is rewritten whenever its documents change.
type Row struct {
	ID            docid.ID `json:"id"`
	Home          string   `json:"home"`
	HomeName      string   `json:"homeName"`
	GivenName     string   `json:"given"`
	FamilyName    string   `json:"family"`
	PreferredName string   `json:"preferred"`
	NHSNumber     string   `json:"nhs"`
	DateOfBirth   string   `json:"dob"`
	Room          string   `json:"room"`
	Status        string   `json:"status"`
	Held          bool     `json:"held"` // the record is on this computer
	// NotShared: this computer let the record go at the relay's word (its
	// person withdrew consent to share it beyond their home); MovedTo: it
	// did because the resident moved to that care home. Set as read.
	NotShared bool     `json:"-"`
	MovedTo   string   `json:"-"`
	CPR       string   `json:"cpr"` // current value; "" not recorded; "conflict"
	Conflicts []string `json:"conflicts,omitempty"`
	// Tampered counts decision entries that are not decisions (they fail
	// verification): the manager's tamper alert.
	Tampered int `json:"tampered,omitempty"`
	// Revocations is how many certificate revocations this computer knew
	// when the summary was made: a new one may unmake a decision, so the
	// row is made again.
	Revocations int `json:"revocations"`
	// Reviews are what the record has due for review, soonest first (care
	// plan domains and the end-of-life plan); PlanAlerts what its plan
	// lacks (record.PlanAlerts).
	Reviews    []record.ReviewItem `json:"reviews,omitempty"`
	PlanAlerts []string            `json:"planAlerts,omitempty"`
	// Overdue and DueThisWeek count Reviews past their date, and due
	// within record.SoonDays, on the day Residents was asked: never
	// stored, since yesterday's count is wrong today.
	Overdue     int `json:"-"`
	DueThisWeek int `json:"-"`
	// Format is the row layout it was made in: a row of an older layout is
	// made again from its record.
	// RecordActivity and TimelineActivity are the times of the newest
	// changes to the record and to the timeline (their authors' clocks):
	// a handover reads only the residents that changed since its time.
	RecordActivity   time.Time `json:"recordActivity"`
	TimelineActivity time.Time `json:"timelineActivity"`
	// Activity is the later of the two.
	Activity time.Time `json:"-"`
	// Created is the date of the record's first change; Milestones and
	// Calls what a home's reports count (record.Milestones,
	// record.AdviceCalls); CallsRead that Calls covers the whole timeline.
	Created    string               `json:"created,omitempty"`
	Milestones record.Milestones    `json:"milestones"`
	Calls      []record.CallSummary `json:"calls,omitempty"`
	CallsRead  bool                 `json:"callsRead,omitempty"`
	CallsHeads string               `json:"callsHeads,omitempty"` // the timeline's heads Calls was read at
	// TimelineSeq is the timeline's newest stored chunk when the row last
	// read it: verify reads it again when the store has moved on.
	TimelineSeq uint64 `json:"timelineSeq,omitempty"`
	// RecentRecord and RecentTimeline are the changes of the last
	// RecentWindow (as of the last change), in words, for a handover;
	// RecentRead that they were read.
	RecentRecord   []HandoverItem `json:"recentRecord,omitempty"`
	RecentTimeline []HandoverItem `json:"recentTimeline,omitempty"`
	RecentRead     bool           `json:"recentRead,omitempty"`
	// RecentRecordHeads and RecentTimelineHeads are the heads the items
	// were read to: the next change adds only what came after them.
	RecentRecordHeads   string `json:"recentRecordHeads,omitempty"`
	RecentTimelineHeads string `json:"recentTimelineHeads,omitempty"`
	// Unseen: changed since the person signed in last opened the
	// resident, on the day Residents was asked; never stored.
	Unseen   bool   `json:"-"`
	Format   int    `json:"format"`
	Heads    string `json:"heads"` // of the record the summary was made from
	Seq      uint64 `json:"seq"`   // the record's newest stored chunk then: unchanged since if store.LastSeq agrees
	Timeline string `json:"timeline,omitempty"`

	words   []string // lower-case name words, for search
	sortKey string   // lower-case family then given name
}

// Name is the resident's name as the list shows it.
func (r Row) Name() string {
	n := strings.TrimSpace(r.GivenName + " " + r.FamilyName)
	if r.PreferredName != "" && r.PreferredName != r.GivenName {
		n += " (" + r.PreferredName + ")"
	}
	return n
}

// Tampered lists the residents whose records hold entries that are not
// decisions, or were altered outside the rules: the tamper alert.
func (a *App) Tampered() []Row {
	var out []Row
	for _, r := range a.idx.inOrder() {
		if r.Tampered > 0 {
			out = append(out, *r)
		}
	}
	return out
}

// CPRConflict reports a CPR conflict.
func (r Row) CPRConflict() bool { return r.CPR == "conflict" }

const (
	nsRow   = "app-row"   // resident ID → Row
	nsKind  = "app-kind"  // document ID → "resident", "timeline", "directory"
	nsHomes = "app-homes" // home ID → directory document ID
)

// index is the resident list, kept in memory.
type index struct {
	a      *App
	mu     sync.RWMutex
	rows   map[docid.ID]*Row
	sorted []*Row // rows in list order; nil when a row changed since it was made
	// directories: home ID → directory document ID.
	dirs map[string]docid.ID
	// dirty are rows changed by a timeline's change and not yet saved,
	// saved together at most every flushEvery (see lazy), as they are then.
	dirty   map[docid.ID]bool
	flushed time.Time
}

// flushEvery is how long a row changed by a timeline may wait to be saved.
// A row lost in a crash is safe to lose: what it keeps of the timeline is
// read on from the heads it was saved with, and verify finds a row whose
// timeline moved on without it (Row.TimelineSeq).
const flushEvery = 2 * time.Second

// lazy changes one row now and saves it with the others within flushEvery.
func (x *index) lazy(id docid.ID, f func(r *Row)) {
	x.change(id, f)
	x.mu.Lock()
	x.dirty[id] = true
	due := time.Since(x.flushed) >= flushEvery
	x.mu.Unlock()
	if due {
		x.flush()
	}
}

// flush saves the rows waiting to be saved, as they are now, in one write.
func (x *index) flush() {
	x.mu.Lock()
	batch := make(map[string][]byte, len(x.dirty))
	for id := range x.dirty {
		if r := x.rows[id]; r != nil {
			batch[id.String()], _ = json.Marshal(r)
		}
	}
	x.dirty, x.flushed = map[docid.ID]bool{}, time.Now()
	x.mu.Unlock()
	if len(batch) > 0 {
		if err := x.a.st.PutMany(context.Background(), nsRow, batch); err != nil {
			x.a.log.Warn("saving list rows", "err", err)
		}
	}
}

func newIndex(a *App) *index {
	return &index{a: a, rows: map[docid.ID]*Row{}, dirs: map[string]docid.ID{}, dirty: map[docid.ID]bool{}}
}

// load reads the cached rows, then checks them against the documents in
// the background (a crash between a change and its row could leave a row
// stale).
func (x *index) load() error {
	st := x.a.st
	x.mu.Lock()
	err := st.Scan(nsRow, "", func(_ string, v []byte) error {
		var r Row
		if json.Unmarshal(v, &r) == nil {
			r.words, r.sortKey = words(r), sortKey(r)
			x.rows[r.ID] = &r
		}
		return nil
	})
	st.Scan(nsHomes, "", func(home string, v []byte) error {
		if id, err := docid.Parse(string(v)); err == nil {
			x.dirs[home] = id
		}
		return nil
	})
	empty := len(x.rows) == 0
	x.mu.Unlock()
	if err != nil {
		return err
	}
	if empty {
		// First start on this folder: list residents from the directories
		// at once (names, NHS numbers, dates of birth, rooms: enough to
		// search); verify then fills in each record's badges.
		for _, d := range x.knownDirectories() {
			x.refresh(d)
		}
	}
	go x.verify()
	return nil
}

// knownDirectories are the directory documents this computer is known to
// hold: its own home's, and those seen before.
func (x *index) knownDirectories() []docid.ID {
	var out []docid.ID
	if id, err := docid.Parse(x.a.dev.Directory); err == nil {
		out = append(out, id)
	}
	x.mu.RLock()
	for _, id := range x.dirs {
		out = append(out, id)
	}
	x.mu.RUnlock()
	return out
}

// reverify runs verify in the background after what this computer trusts
// changed (a revocation): every row made under the old trust is made again.
func (x *index) reverify() { go x.verify() }

// verify refreshes every row whose record changed without the row being
// rewritten, or was made before a revocation this computer now knows, and
// learns documents the cache does not know yet.
func (x *index) verify() {
	ids, err := x.a.st.Docs()
	if err != nil {
		return
	}
	for _, s := range ids {
		id, err := docid.Parse(s)
		if err != nil {
			continue
		}
		kind, _ := x.a.st.Get(nsKind, s)
		switch string(kind) {
		case "timeline":
			// A timeline that moved on since its resident's row was saved
			// (a crash before a lazy save): read on from the row's heads.
			if rid := x.a.residentOf(id); rid != id {
				x.mu.RLock()
				r := x.rows[rid]
				x.mu.RUnlock()
				if last, err := x.a.st.LastSeq(s); r != nil && err == nil && last != r.TimelineSeq {
					x.refresh(id)
				}
			}
			continue
		case "resident":
			x.mu.RLock()
			r := x.rows[id]
			x.mu.RUnlock()
			// Cheap: compare the stored chunk sequence, without loading
			// the document.
			if last, err := x.a.st.LastSeq(s); r != nil && r.Held && err == nil && last == r.Seq && r.Revocations == x.a.revocationCount() && r.Format == rowFormat {
				continue
			}
		}
		x.refresh(id)
	}
	x.a.emit(Event{Kind: EventList})
}

func headsText(hs []crdt.Hash) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.String()[:16]
	}
	return strings.Join(parts, ",")
}

// fullHeads writes heads to keep and read back (parseHeads).
func fullHeads(hs []crdt.Hash) string {
	parts := make([]string, len(hs))
	for i, h := range hs {
		parts[i] = h.String()
	}
	return strings.Join(parts, ",")
}

func parseHeads(s string) []crdt.Hash {
	var out []crdt.Hash
	for _, p := range strings.Split(s, ",") {
		if h, err := crdt.ParseHash(p); err == nil {
			out = append(out, h)
		}
	}
	return out
}

// refresh re-reads one document and updates the rows it affects. It
// reports whether the list changed.
func (x *index) refresh(id docid.ID) bool {
	h, err := x.a.repo.Open(id)
	if err != nil {
		return false
	}
	doc := h.Doc()
	typ, _, _ := doc.Get("type")
	ctx := context.Background()
	switch typ {
	case "directory":
		x.a.st.Put(ctx, nsKind, id.String(), []byte("directory"))
		d, err := record.ReadDirectory(doc)
		if err != nil {
			return false
		}
		x.mu.Lock()
		x.dirs[d.Home] = id
		x.mu.Unlock()
		x.a.st.Put(ctx, nsHomes, d.Home, []byte(id.String()))
		batch := map[string][]byte{}
		for _, e := range d.Residents {
			rid, err := docid.Parse(e.ID)
			if err != nil {
				continue
			}
			batch[rid.String()] = x.change(rid, func(r *Row) {
				if r.Held && r.Home != d.Home {
					return // the record says it moved on: this entry is its old home's
				}
				r.Home, r.HomeName = d.Home, d.Name
				if !r.Held { // the record, when held, is the source of truth
					r.GivenName, r.FamilyName, r.PreferredName = e.GivenName, e.FamilyName, e.PreferredName
					r.NHSNumber, r.DateOfBirth, r.Room, r.Status = e.NHSNumber, e.DateOfBirth, e.Room, e.Status
				}
			})
			if last, err := x.a.st.LastSeq(rid.String()); err == nil && last == 0 {
				x.a.request(rid) // a resident added elsewhere: fetch the record
			}
		}
		x.a.st.PutMany(ctx, nsRow, batch) // one write for the whole home
		return true
	case "resident":
		x.a.st.Put(ctx, nsKind, id.String(), []byte("resident"))
		revs := x.a.revocationCount()
		rec, err := record.Read(doc, x.a.Trust())
		if err != nil {
			return false
		}
		rec.MarkAltered(x.a.historyCheck(id, doc))
		seq := h.Seq()
		recAt := doc.HeadsTime()
		x.mu.RLock()
		var created string
		callsRead := false
		var was Row
		if r := x.rows[id]; r != nil {
			created, callsRead = r.Created, r.CallsRead && r.Format == rowFormat
			if r.RecentRead && r.Format == rowFormat {
				was = *r
			}
		}
		x.mu.RUnlock()
		if created == "" {
			// Once per record: the whole history is read for its first change.
			if chs, err := doc.Changes(); err == nil && len(chs) > 0 {
				created = chs[0].Time.UTC().Format(record.DateLayout)
			}
		}
		window := x.a.opts.Now().Add(-RecentWindow)
		recent, recentHeads := recentItems(doc, was.RecentRecordHeads, was.RecentRecord, window, recordItem)
		recentTL, recentTLHeads := was.RecentTimeline, was.RecentTimelineHeads
		var tlAt time.Time
		var calls []record.CallSummary
		var callsHeads string
		if rec.Timeline != (docid.ID{}) {
			x.a.st.Put(ctx, nsKind, rec.Timeline.String(), []byte("timeline"))
			th, err := x.a.repo.Open(rec.Timeline)
			if errors.Is(err, repo.ErrNotFound) {
				x.a.request(rec.Timeline)
			} else if err == nil {
				tlAt = th.Doc().HeadsTime()
				recentTL, recentTLHeads = recentItems(th.Doc(), was.RecentTimelineHeads, was.RecentTimeline, window, timelineItem)
				if !callsRead {
					heads := th.Doc().Heads()
					if calls, err = record.AdviceCalls(th.Doc(), nil, nil); err == nil {
						callsRead, callsHeads = true, fullHeads(heads)
					}
				}
			}
		}
		x.update(id, func(r *Row) {
			keepCalls := r.CallsRead && r.Format == rowFormat
			summarise(r, rec, doc.Heads())
			r.Seq, r.Revocations = seq, revs
			r.RecordActivity, r.TimelineActivity, r.Created = recAt, tlAt, created
			r.RecentRecord, r.RecentTimeline, r.RecentRead = recent, recentTL, true
			r.RecentRecordHeads, r.RecentTimelineHeads = recentHeads, recentTLHeads
			if !keepCalls && callsRead {
				r.Calls, r.CallsRead, r.CallsHeads = calls, true, callsHeads
			}
		})
		x.listInHome(id, rec.CurrentHome)
		return true
	case "timeline":
		x.a.st.Put(ctx, nsKind, id.String(), []byte("timeline"))
		if rid := x.a.residentOf(id); rid != id {
			at, heads := doc.HeadsTime(), doc.Heads()
			x.mu.RLock()
			var since []crdt.Hash
			var have []record.CallSummary
			var was Row
			if r := x.rows[rid]; r != nil {
				if r.CallsRead {
					since, have = parseHeads(r.CallsHeads), r.Calls
				}
				if r.RecentRead {
					was = *r
				}
			}
			x.mu.RUnlock()
			calls, err := record.AdviceCalls(doc, since, have)
			recentTL, recentTLHeads := recentItems(doc, was.RecentTimelineHeads, was.RecentTimeline, x.a.opts.Now().Add(-RecentWindow), timelineItem)
			seq := h.Seq()
			x.lazy(rid, func(r *Row) {
				r.TimelineActivity, r.TimelineSeq = at, seq
				r.RecentTimeline, r.RecentTimelineHeads = recentTL, recentTLHeads
				if err == nil {
					r.Calls, r.CallsRead, r.CallsHeads = calls, true, fullHeads(heads)
				}
			})
		}
	}
	return false
}

// listInHome adds a record this computer holds to its home's directory
// when the directory lacks it: a resident who moved here from another home
// (the relay sent the record on the move). Reconciling needs a member of
// staff signed in; the next change to the record, or the next start, does
// it otherwise.
func (x *index) listInHome(id docid.ID, home string) {
	x.mu.RLock()
	dir, ok := x.dirs[home]
	x.mu.RUnlock()
	if !ok {
		return
	}
	dh, err := x.a.repo.Open(dir)
	if err != nil {
		return
	}
	if _, listed, err := dh.Doc().Get("residents", id.String()); err == nil && !listed {
		go x.a.reconcileDirectory(id)
	}
}

// remove forgets a resident's row, in memory and on disk.
func (x *index) remove(id docid.ID) {
	x.mu.Lock()
	delete(x.rows, id)
	x.sorted = nil
	x.mu.Unlock()
	x.a.st.Delete(context.Background(), nsRow, id.String())
}

// update changes one row and saves it.
func (x *index) update(id docid.ID, f func(r *Row)) {
	b := x.change(id, f)
	x.a.st.Put(context.Background(), nsRow, id.String(), b)
}

// change changes one row under the lock and returns it encoded for saving.
func (x *index) change(id docid.ID, f func(r *Row)) []byte {
	x.mu.Lock()
	defer x.mu.Unlock()
	r := x.rows[id]
	if r == nil {
		r = &Row{ID: id}
		x.rows[id] = r
	}
	f(r)
	r.words, r.sortKey = words(*r), sortKey(*r)
	x.sorted = nil
	b, _ := json.Marshal(r)
	return b
}

func sortKey(r Row) string {
	return strings.ToLower(r.FamilyName) + "\x00" + strings.ToLower(r.GivenName) + "\x00" + r.ID.String()
}

// inOrder returns the rows in list order, sorting only after a change.
func (x *index) inOrder() []*Row {
	x.mu.RLock()
	s := x.sorted
	x.mu.RUnlock()
	if s != nil {
		return s
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.sorted == nil {
		s := make([]*Row, 0, len(x.rows))
		for _, r := range x.rows {
			s = append(s, r)
		}
		sort.Slice(s, func(i, j int) bool { return s[i].sortKey < s[j].sortKey })
		x.sorted = s
	}
	return x.sorted
}

// summarise fills a row from a record.
func summarise(r *Row, rec *record.Record, heads []crdt.Hash) {
	id := rec.Identity
	r.Held = true
	r.Home = cmp.Or(rec.CurrentHome, rec.Home)
	r.GivenName, r.FamilyName, r.PreferredName = id.GivenName, id.FamilyName, id.PreferredName
	r.NHSNumber, r.DateOfBirth, r.Room, r.Status = id.NHSNumber, id.DateOfBirth, id.Room, id.Status
	r.Heads = headsText(heads)
	r.Timeline = ""
	if rec.Timeline != (docid.ID{}) {
		r.Timeline = rec.Timeline.String()
	}
	cpr := rec.Decision(record.KindCPR, "")
	switch e, ok := cpr.Settled(); {
	case len(cpr.Altered) > 0:
		r.CPR = "unverified"
	case cpr.Conflict():
		r.CPR = "conflict"
	case ok:
		r.CPR = e.Text()
	default:
		r.CPR = ""
	}
	r.Tampered = rec.TamperCount()
	r.Conflicts = nil
	for _, c := range rec.Conflicts() {
		r.Conflicts = append(r.Conflicts, c.Kind.Label())
	}
	r.Reviews, r.PlanAlerts = rec.Reviews(), rec.PlanAlerts()
	r.Milestones = rec.Milestones()
	r.Format = rowFormat
}

// rowFormat is the Row layout summarise makes.
const rowFormat = 7

// reviewsOn counts the row's reviews overdue, and due from today to
// record.SoonDays ahead, on the day.
func (r *Row) reviewsOn(day record.ReviewDay) {
	r.Overdue, r.DueThisWeek = 0, 0
	for _, it := range r.Reviews {
		switch day.State(it.Due) {
		case record.ReviewOverdue:
			r.Overdue++
		case record.ReviewDue, record.ReviewSoon:
			r.DueThisWeek++
		}
	}
}

func words(r Row) []string {
	var out []string
	for _, s := range []string{r.GivenName, r.FamilyName, r.PreferredName} {
		for _, w := range strings.FieldsFunc(strings.ToLower(s), func(c rune) bool { return c == ' ' || c == '-' || c == '\'' }) {
			out = append(out, w)
		}
	}
	return out
}

// Filter narrows the list.
type Filter struct {
	Query      string
	Overdue    bool   // only residents with a review overdue
	DueSoon    bool   // only residents with a review overdue or due this week
	Conflicts  bool   // only residents with an unresolved conflict
	CPR        string // "", a CPR value, "not-recorded" or "conflict"
	Discharged bool   // include discharged and deceased residents
}

// CPR filter values beyond record.CPRValues.
const (
	CPRNotRecorded = "not-recorded"
	CPRConflict    = "conflict"
)

// Residents returns the rows matching f, sorted by family then given name.
func (a *App) Residents(f Filter) []Row {
	q := parseQuery(f.Query)
	rows := a.idx.inOrder()
	day := record.DayOf(a.opts.Now())
	// Reviews are the homes' work; the advice line's list does not count
	// them, and its filters by review match no one.
	reviews := !a.AdviceLine()
	var seen map[string]time.Time
	if u := a.CurrentUser(); u != nil {
		a.mu.Lock()
		seen = maps.Clone(a.seenForLocked(u.ID))
		a.mu.Unlock()
	}
	var out []Row
	a.idx.mu.RLock()
	defer a.idx.mu.RUnlock()
	for _, p := range rows {
		r := *p
		if reviews {
			r.reviewsOn(day)
		}
		if m, ok := a.letGo.mark(r.ID); ok {
			// The mark decides: a summary made from the copy just before
			// it was deleted may have been saved after the deletion.
			r.Held = false
			if m.Code == wire.CodeTransferred {
				r.MovedTo = cmp.Or(m.Detail, "another care home")
			} else {
				r.NotShared = true
			}
		}
		r.Activity = r.RecordActivity
		if r.TimelineActivity.After(r.Activity) {
			r.Activity = r.TimelineActivity
		}
		if t, ok := seen[r.ID.String()]; ok && r.Activity.After(t) {
			r.Unseen = true
		}
		if r.FamilyName == "" && r.GivenName == "" {
			continue // known only by ID so far
		}
		if !f.Discharged && r.Status != "" && r.Status != record.StatusActive {
			continue
		}
		if f.Overdue && r.Overdue == 0 || f.DueSoon && r.Overdue+r.DueThisWeek == 0 || f.Conflicts && len(r.Conflicts) == 0 {
			continue
		}
		switch f.CPR {
		case "":
		case CPRNotRecorded:
			if r.CPR != "" {
				continue
			}
		default:
			if r.CPR != f.CPR {
				continue
			}
		}
		if !q.match(&r) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// query is a parsed search: name word prefixes, an NHS number or room, or
// a date of birth.
type query struct {
	words  []string
	digits string // the query's digits when it is only digits and spaces
	date   string // YYYY-MM-DD when the query is a date
}

func parseQuery(s string) query {
	s = strings.TrimSpace(strings.ToLower(s))
	var q query
	if s == "" {
		return q
	}
	if d := parseDate(s); d != "" {
		q.date = d
		return q
	}
	onlyDigits := true
	var digits strings.Builder
	for _, c := range s {
		switch {
		case c >= '0' && c <= '9':
			digits.WriteRune(c)
		case c == ' ' || c == '-':
		default:
			onlyDigits = false
		}
	}
	if onlyDigits && digits.Len() > 0 {
		q.digits = digits.String()
		return q
	}
	q.words = strings.Fields(s)
	return q
}

// parseDate reads dates as staff type them: 2/4/1931, 02/04/1931,
// 2.4.1931, 1931-04-02, 2 Apr 1931.
func parseDate(s string) string {
	for _, layout := range []string{"2/1/2006", "02/01/2006", "2.1.2006", "2006-01-02", "2 Jan 2006", "2 January 2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.Format(record.DateLayout)
		}
	}
	return ""
}

func (q query) match(r *Row) bool {
	switch {
	case q.date != "":
		return r.DateOfBirth == q.date
	case q.digits != "":
		return strings.HasPrefix(r.NHSNumber, q.digits) || strings.EqualFold(r.Room, q.digits)
	}
	for _, w := range q.words {
		found := strings.EqualFold(r.Room, w)
		for _, rw := range r.words {
			if strings.HasPrefix(rw, w) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Conflict is one unresolved conflict in the home, for the inbox.
type Conflict struct {
	Resident docid.ID
	Name     string
	Room     string
	Kinds    []string
}

// Conflicts lists every resident with an unresolved conflict.
func (a *App) Conflicts() []Conflict {
	var out []Conflict
	for _, r := range a.Residents(Filter{Conflicts: true, Discharged: true}) {
		out = append(out, Conflict{Resident: r.ID, Name: r.Name(), Room: r.Room, Kinds: r.Conflicts})
	}
	return out
}
