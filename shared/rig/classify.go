package rig

import (
	"strings"

	"haven/shared/wire"
)

// Class is what a refusal from the relay means to a whole-system test,
// read from its machine-readable code alone (wire's Code constants): the
// relay's words are for people, and may change.
type Class string

// The classes of the relay's refusals.
const (
	ClassNoCode       Class = "no code" // a refusal without a code: a relay bug
	ClassNotEnrolled  Class = "not enrolled"
	ClassRevoked      Class = "revoked"
	ClassBusy         Class = "busy" // at capacity, starting or stopping: try again shortly
	ClassRateLimited  Class = "rate limited"
	ClassRefused      Class = "change refused" // a change not stored or passed on: a rule, the scope, a size limit, or not applicable
	ClassQuarantined  Class = "quarantined"    // a message that crashed a worker, set aside
	ClassDisconnected Class = "disconnected"   // cut off for repeated quarantined messages
	ClassProtocol     Class = "protocol violation"
	ClassDenied       Class = "denied" // an advice-line or staff request the relay would not serve
	ClassLetGo        Class = "let go" // haven-gone: a document the device must no longer hold
	ClassAudit        Class = "audit out of order"
	ClassInternal     Class = "relay failure"
	ClassUnknown      Class = "unknown code"
)

// Classify names the class of a refusal's code.
func Classify(code string) Class {
	switch {
	case code == "":
		return ClassNoCode
	case strings.HasPrefix(code, "rule/"):
		return ClassRefused
	case code == wire.CodeQuotaDocBytes:
		return ClassRefused // the change itself is too big: sending it later does not help
	case strings.HasPrefix(code, "quota/"):
		return ClassRateLimited
	case strings.HasPrefix(code, "audit/"):
		return ClassAudit
	}
	switch code {
	case wire.CodeNotEnrolled:
		return ClassNotEnrolled
	case wire.CodeDeviceRevoked:
		return ClassRevoked
	case wire.CodeBusy:
		return ClassBusy
	case wire.CodeRefused, wire.CodeOutOfScope:
		return ClassRefused
	case wire.CodeQuarantined:
		return ClassQuarantined
	case wire.CodeDisconnected:
		return ClassDisconnected
	case wire.CodeMalformed, wire.CodeInvalidMessage, wire.CodeProtocol, wire.CodeBadRequest:
		return ClassProtocol
	case wire.CodeNeedsReason, wire.CodeNotPermitted, wire.CodeNotFound:
		return ClassDenied
	case wire.CodeNotShared, wire.CodeTransferred:
		return ClassLetGo
	case wire.CodeInternal:
		return ClassInternal
	}
	return ClassUnknown
}

// FallsOnSender reports whether a refusal of this class means the relay
// refused or set aside something the device sent: what a hostile device
// earns, and a healthy one never should.
func (c Class) FallsOnSender() bool {
	return c == ClassRefused || c == ClassQuarantined || c == ClassDisconnected || c == ClassProtocol
}
