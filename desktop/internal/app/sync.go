package app

import (
	"context"
	"strings"
	"time"

	"haven/shared/client"
	"haven/shared/docid"
	"haven/shared/wire"
)

// localDocs is every document on this computer, offered to the relay on
// each connect.
func (a *App) localDocs() []docid.ID {
	ids, err := a.st.Docs()
	if err != nil {
		return nil
	}
	out := make([]docid.ID, 0, len(ids))
	for _, s := range ids {
		if id, err := docid.Parse(s); err == nil {
			out = append(out, id)
		}
	}
	return out
}

// request asks the relay for a document this computer lacks.
func (a *App) request(id docid.ID) {
	if a.client != nil {
		a.client.Request(id)
	}
}

// remoteChange runs when a document changed because of the relay.
func (a *App) remoteChange(id docid.ID) {
	if a.idx.refresh(id) || a.noteServices(id) {
		a.emit(Event{Kind: EventList})
	}
	a.emit(Event{Kind: EventResident, Doc: a.residentOf(id)})
}

// residentOf maps a timeline to its resident (the UI tracks residents).
func (a *App) residentOf(id docid.ID) docid.ID {
	a.idx.mu.RLock()
	defer a.idx.mu.RUnlock()
	s := id.String()
	for rid, r := range a.idx.rows {
		if r.Timeline == s {
			return rid
		}
	}
	return id
}

func (a *App) settled(id docid.ID, inSync bool) {
	if inSync {
		a.mu.Lock()
		a.lastSync[id] = a.opts.Now()
		a.mu.Unlock()
	}
}

// relayError takes an error message from the relay. A refused change (its
// code names the record rule) stays on the status bar in the relay's own
// words: the change stays on this computer, and staff should know it has
// not gone further.
func (a *App) relayError(code, msg string) {
	words, held, ok := refusalWords(code, msg)
	if !ok {
		return
	}
	a.log.Warn("the relay refused a change", "code", code)
	a.mu.Lock()
	a.refusal, a.refusalHeld = words, held
	a.mu.Unlock()
	a.emit(Event{Kind: EventStatus})
}

// refusalWords is what the status bar says of an error the relay sent, by
// its code: ok is false for errors that are not about this computer's
// changes (the connection's own troubles reach the status bar through the
// client's status). held marks a limit: the changes wait here and go when
// the relay takes them.
func refusalWords(code, msg string) (words string, held, ok bool) {
	switch {
	case strings.HasPrefix(code, "rule/"), code == wire.CodeRefused, code == wire.CodeQuarantined, code == wire.CodeBadRequest,
		code == wire.CodeOutOfScope, code == wire.CodeNotPermitted:
		return "The relay refused a change from this computer: " + msg, false, true
	case strings.HasPrefix(code, "quota/") && code != wire.CodeQuotaAudit && code != wire.CodeQuotaSearch:
		return "The relay is holding back this computer's changes for now: " + msg, true, true
	}
	return "", false, false
}

// statusChanged runs on every change of the client's status. On each new
// connection it also fetches what this computer lacks (a fresh device's
// first download, or residents added while it was away).
func (a *App) statusChanged(s client.Status) {
	a.mu.Lock()
	wasOnline := a.online
	a.online = s.Online
	a.mu.Unlock()
	if s.Online && !wasOnline {
		go a.fetchMissing()
		go a.sendRequests()
		go a.sendLeavers()
		if a.audit != nil {
			a.audit.reconnected()
		}
	}
	a.emit(Event{Kind: EventStatus})
}

func (a *App) fetchMissing() {
	c := a.client
	if c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	n, err := c.Bootstrap(ctx, func(done, total int) {
		a.mu.Lock()
		a.download = Progress{Active: done < total, Done: done, Total: total}
		a.mu.Unlock()
		a.emit(Event{Kind: EventDownload})
	})
	if err != nil {
		a.log.Warn("download", "err", err)
	}
	a.mu.Lock()
	a.download.Active = false
	a.mu.Unlock()
	if n > 0 {
		a.emit(Event{Kind: EventDownload})
	}
}

// SyncStatus is what the status bar shows.
type SyncStatus struct {
	Online       bool
	Pending      int // documents with changes waiting to be sent
	PendingAudit int
	LastExchange time.Time
	Problem      string // the last connection problem, in plain words
	// HeldBack: the relay refused changes under a limit; they wait here
	// (Problem says the relay's words) and go when it takes them.
	HeldBack bool
	Download Progress
	Offline  bool // the app runs without a relay (tests)
}

// Status reports the sync status.
func (a *App) Status() SyncStatus {
	a.mu.Lock()
	dl := a.download
	a.mu.Unlock()
	if a.client == nil {
		return SyncStatus{Offline: true, Download: dl}
	}
	s := a.client.Status()
	out := SyncStatus{Online: s.Online, Pending: s.Pending, LastExchange: s.LastExchange, Problem: s.LastError, Download: dl}
	a.mu.Lock()
	if a.refusalHeld && s.Pending == 0 {
		a.refusal, a.refusalHeld = "", false // what was held back has gone
	}
	refusal := a.refusal
	out.HeldBack = a.refusalHeld
	a.mu.Unlock()
	if refusal != "" && out.Problem == "" {
		out.Problem = refusal
	}
	if d := a.st.Damage(); d != "" && out.Problem == "" {
		out.Problem = d // the store came back without recent writes: say so until sync restores them
	}
	if a.audit != nil {
		out.PendingAudit = a.audit.pending()
	}
	return out
}
