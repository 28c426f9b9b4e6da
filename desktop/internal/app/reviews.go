package app

import (
	"context"
	"time"

	"haven/shared/record"
)

// dayLoop checks every minute whether the day has changed, so that a
// desktop left running shows reviews as overdue on the day they become so.
func (a *App) dayLoop(ctx context.Context) {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.newDay()
		}
	}
}

// newDay reports whether the date moved on since it last looked and, if
// so, tells the screens to show the list again (its review counts are
// computed on the day they are shown).
func (a *App) newDay() bool {
	today := a.opts.Now().Format(record.DateLayout)
	a.mu.Lock()
	changed := a.day != today
	a.day = today
	a.mu.Unlock()
	if changed {
		a.emit(Event{Kind: EventList})
	}
	return changed
}
