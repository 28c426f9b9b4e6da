package app

import (
	"strings"
	"testing"

	"haven/shared/wire"
)

// Every error the relay sends about this computer's changes reaches the
// status bar with the relay's own words; a limit says the changes are held
// here; errors about other things (audit, searches, the connection) do not
// claim a change was refused.
func TestRelayRefusalsReachTheStatusBar(t *testing.T) {
	const detail = "relay-detail-7f3a"
	for _, c := range []struct {
		code     string
		shown    bool
		heldHere bool
	}{
		{wire.CodeRefused, true, false},
		{wire.CodeQuarantined, true, false},
		{wire.CodeOutOfScope, true, false},
		{wire.CodeNotPermitted, true, false},
		{wire.CodeBadRequest, true, false},
		{"rule/append-only", true, false},
		{wire.CodeQuotaChanges, true, true},
		{wire.CodeQuotaDocBytes, true, true},
		{wire.CodeQuotaAudit, false, false},
		{wire.CodeQuotaSearch, false, false},
		{wire.CodeBusy, false, false},
		{wire.CodeAuditGap, false, false},
		{"", false, false},
	} {
		words, held, ok := refusalWords(c.code, detail)
		if ok != c.shown || held != c.heldHere {
			t.Errorf("refusalWords(%q) shown %v held %v, want shown %v held %v", c.code, ok, held, c.shown, c.heldHere)
		}
		if ok && !strings.Contains(words, detail) {
			t.Errorf("refusalWords(%q) = %q: the relay's own words are missing", c.code, words)
		}
	}
}
