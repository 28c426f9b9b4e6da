package app

import (
	"errors"
	"strings"

	"haven/shared/docid"
)

// ErrNeedsReason is returned when a record may only be opened with a typed
// reason (break-glass): ask for one and call BreakGlass.
var ErrNeedsReason = errors.New("say why you are opening this record: it is outside this computer's care relationship, and the information-governance lead reviews every such access")

// ActionBreakGlass is the audit action the relay lists for IG review.
const ActionBreakGlass = "break-glass"

// NeedsReason reports whether opening this resident needs a typed reason:
// the advice line covers the whole region, so every record it opens is a
// break-glass access, justified by the call it is handling.
func (a *App) NeedsReason(id docid.ID) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.dev.OrgKind == "advice-line" && !a.glass[id]
}

// BreakGlass records the reason for opening a resident's record outside a
// care relationship; the audit event reaches the relay, where the IG lead
// reviews it. The reason holds for this signed-in session.
func (a *App) BreakGlass(id docid.ID, reason string) error {
	u := a.CurrentUser()
	if u == nil {
		return ErrLockedScreen
	}
	reason = strings.TrimSpace(reason)
	if len(reason) < 10 {
		return &Problem{Message: "Give a reason a reviewer will understand, e.g. \"Call from Larch House about a fall\".", Fields: map[string]string{"reason": "too short"}}
	}
	a.audit.record(u, id, ActionBreakGlass, reason)
	a.mu.Lock()
	a.glass[id] = true
	a.mu.Unlock()
	return nil
}

// checkGlass refuses reads of a resident that need a reason first.
func (a *App) checkGlass(id docid.ID) error {
	if a.NeedsReason(id) {
		return ErrNeedsReason
	}
	return nil
}
