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
