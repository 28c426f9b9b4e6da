package wire

import (
	"strings"

	"haven/shared/docid"
)

// ValidDocumentID reports whether id is a bare document ID in automerge-repo's
// form (see package docid). It is stricter than automerge-repo, which accepts
// a checksummed payload of any length: Haven only ever creates, and so only
// accepts, 16-byte UUIDs.
func ValidDocumentID(id string) bool {
	if strings.HasPrefix(id, docid.URLPrefix) {
		return false
	}
	_, err := docid.Parse(id)
	return err == nil
}
