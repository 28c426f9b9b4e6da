package app

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sync"
	"time"

	"haven/shared/docid"
	"haven/shared/wire"
)

// A computer lets go of the documents the relay says it may hold no longer:
// when a person withdraws consent to share their record beyond their home,
// the record and its timeline leave the GP hub's and the advice line's
// computers; when a resident moves to another care home (record.Transfer),
// they leave the sending home's. The relay says so (haven-gone) to each device that held them,
// at once or at its next connection; the client marks them here and then
// deletes the copies. A mark lasts: no sync message re-creates the copy and
// the list never asks for it, until the relay lists the document again
// (consent given again), which unmarks it before it is fetched.
//
// The resident stays in the list, from their home's directory, marked as
// not shared (or moved, naming the receiving home), so that staff know to
// ask the home rather than look elsewhere or admit the person afresh.

// nsLetGo: document ID → letGoMark (JSON).
const nsLetGo = "app-let-go"

// ErrNotShared means the record's person withdrew consent to share it
// beyond their home: this computer let its copy go.
var ErrNotShared = errors.New("this record is not shared beyond the person's care home: they withdrew consent to share it. Ask the home")

// MovedError means the resident moved to another care home, which holds
// their record now: this computer let its copy go.
type MovedError struct{ To string }

func (e *MovedError) Error() string {
	to := e.To
	if to == "" {
		to = "another care home"
	}
	return "this resident has moved to " + to + ", which holds their record now"
}

type letGoMark struct {
	Code   string    `json:"code"`
	Detail string    `json:"detail,omitempty"` // a move: the receiving home's name
	At     time.Time `json:"at"`
}

// letGoSet implements client.LetGo over the app's store.
type letGoSet struct {
	a     *App
	mu    sync.RWMutex
	marks map[docid.ID]letGoMark
}

// loadLetGo reads the marks and deletes any marked copy still here (a
// crash between the mark and the deletion).
func (a *App) loadLetGo() *letGoSet {
	l := &letGoSet{a: a, marks: map[docid.ID]letGoMark{}}
	a.st.Scan(nsLetGo, "", func(key string, val []byte) error {
		var m letGoMark
		if id, err := docid.Parse(key); err == nil && json.Unmarshal(val, &m) == nil {
			l.marks[id] = m
		}
		return nil
	})
	for id := range l.marks {
		if _, err := a.repo.Open(id); err == nil {
			l.drop(id)
		}
	}
	return l
}

func (l *letGoSet) Marked(id docid.ID) bool {
	if l == nil {
		return false // the store is not open
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	_, ok := l.marks[id]
	return ok
}

// mark is why the document was let go; ok false when it was not.
func (l *letGoSet) mark(id docid.ID) (letGoMark, bool) {
	if l == nil {
		return letGoMark{}, false
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	m, ok := l.marks[id]
	return m, ok
}

// missing is why a document this computer lacks cannot be shown: let go,
// or not here yet (then it is asked for).
func (a *App) missing(id docid.ID) error {
	if m, ok := a.letGo.mark(id); ok {
		if m.Code == wire.CodeTransferred {
			return &MovedError{To: m.Detail}
		}
		return ErrNotShared
	}
	a.request(id)
	return ErrNotHeld
}

// Add marks the documents, durably, before the client deletes them, and
// takes each resident's row back to what the home's directory says.
func (l *letGoSet) Add(ids []docid.ID, code, detail string) {
	batch := map[string][]byte{}
	m := letGoMark{Code: code, Detail: detail, At: l.a.opts.Now().UTC()}
	b, _ := json.Marshal(m)
	for _, id := range ids {
		batch[id.String()] = b
	}
	if err := l.a.st.PutMany(context.Background(), nsLetGo, batch); err != nil {
		l.a.log.Error("marking documents the relay said to let go", "err", err)
	}
	l.mu.Lock()
	for _, id := range ids {
		l.marks[id] = m
	}
	l.mu.Unlock()
	for _, id := range ids {
		l.forget(id)
	}
	l.a.emit(Event{Kind: EventList})
}

// Remove unmarks documents the relay lists again.
func (l *letGoSet) Remove(ids []docid.ID) {
	l.mu.Lock()
	for _, id := range ids {
		delete(l.marks, id)
	}
	l.mu.Unlock()
	for _, id := range ids {
		l.a.st.Delete(context.Background(), nsLetGo, id.String())
	}
}

// drop deletes a marked copy and forgets it.
func (l *letGoSet) drop(id docid.ID) {
	if err := l.a.repo.Remove(context.Background(), id); err != nil {
		l.a.log.Error("deleting a document the relay said to let go", "doc", id.String(), "err", err)
	}
	l.forget(id)
}

// forget removes what the app derived from a document: a resident's row
// becomes its directory entry again (the directories are read afresh: the
// record may have named another home than the one listing it), and a
// timeline's kind is forgotten.
func (l *letGoSet) forget(id docid.ID) {
	a := l.a
	a.st.Delete(context.Background(), nsKind, id.String())
	a.idx.mu.RLock()
	_, had := a.idx.rows[id]
	dirs := slices.Collect(maps.Values(a.idx.dirs))
	a.idx.mu.RUnlock()
	if !had {
		return
	}
	a.idx.remove(id)
	for _, dir := range dirs {
		a.idx.refresh(dir)
	}
}
