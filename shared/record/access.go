package record

import (
	"errors"
	"strings"
	"unicode/utf8"
)

// Access outside a care relationship. The advice line covers a whole
// region and holds no record until a clinician opens one for a call, with a
// reason the relay records before it sends the record; an
// information-governance lead reviews every such access. The desktop asks
// these rules before it sends, the relay before it grants.

// MayBreakGlass reports whether a role may open a record outside a care
// relationship: the registered clinicians who take calls.
func (r Role) MayBreakGlass() bool { return r.Clinician() }

// ManagesStaff reports whether a role adds, resets and removes the staff
// accounts on its organisation's computers: in a care home, its manager; at
// a GP hub or on the advice line, which have no home manager, their
// clinicians. Certification is the relay's: a registered clinician added by
// anyone is certified only once an administrator has checked them.
func (r Role) ManagesStaff(careHome bool) bool {
	if careHome {
		return r == HomeManager
	}
	return r == GP || r == HubNurse || r == AdviceClinician
}

// RevokesStaff reports whether a role's signed word revokes a leaver's
// certificate at the relay; elsewhere an administrator revokes it.
func (r Role) RevokesStaff() bool { return r == HomeManager }

// MayReview reports whether a role reviews break-glass accesses.
func (r Role) MayReview() bool { return r == IGLead }

// Reasons are kept short: a reviewer reads them in a list. They are the
// one free text the audit log holds.
const (
	minReason = 10
	maxReason = 300
)

// ErrReason reports a break-glass reason too short for a reviewer to
// understand, or too long to be a reason.
var ErrReason = errors.New("give a reason a reviewer will understand, in a sentence (10 to 300 characters)")

// CheckReason returns the reason trimmed, or ErrReason.
func CheckReason(reason string) (string, error) {
	reason = strings.TrimSpace(reason)
	if n := utf8.RuneCountInString(reason); n < minReason || n > maxReason || !utf8.ValidString(reason) {
		return "", ErrReason
	}
	return reason, nil
}
