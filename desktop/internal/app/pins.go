package app

import (
	"context"
	"encoding/json"
	"time"
)

// Wrong-PIN counters live in the encrypted store once it is open (nsPins:
// staff ID → pinState), where restoring an old copy of the device file
// cannot reset them; the device file keeps them only while the store is
// closed (the first unlock after start), and they are merged into the
// store, the larger count winning, when it opens.
const nsPins = "pins"

type pinState struct {
	Failures    int       `json:"failures"`
	LockedUntil time.Time `json:"lockedUntil"`
}

// pinsLocked returns a staff member's failures and lock-out. Caller holds a.mu.
func (a *App) pinsLocked(s staffRecord) (int, time.Time) {
	failures, until := s.Failures, s.LockedUntil
	if a.st != nil {
		var p pinState
		if b, err := a.st.Get(nsPins, s.ID); err == nil && json.Unmarshal(b, &p) == nil {
			failures, until = max(failures, p.Failures), maxTime(until, p.LockedUntil)
		}
	}
	return failures, until
}

// setPinsLocked records them where they cannot be reset. Caller holds a.mu.
func (a *App) setPinsLocked(staffID string, failures int, until time.Time) {
	if a.st != nil {
		b, _ := json.Marshal(pinState{failures, until})
		if err := a.st.Put(context.Background(), nsPins, staffID, b); err != nil {
			a.log.Error("saving a wrong-PIN count", "err", err)
		}
	}
	if s := a.staffLocked(staffID); s != nil && (s.Failures != failures || !s.LockedUntil.Equal(until)) {
		s.Failures, s.LockedUntil = failures, until
		a.dev.save(a.dir)
	}
}

// mergePinsLocked moves counts kept in the device file while the store was
// closed into the store. Caller holds a.mu; the store is open.
func (a *App) mergePinsLocked() {
	for _, s := range a.dev.Staff {
		if s.Failures > 0 || !s.LockedUntil.IsZero() {
			f, u := a.pinsLocked(s)
			a.setPinsLocked(s.ID, f, u)
		}
	}
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
