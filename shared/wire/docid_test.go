package wire

import (
	"encoding/json"
	"os"
	"testing"
)

// TestValidDocumentIDMatchesJS checks ValidDocumentID against automerge-repo's
// isValidDocumentId on the IDs fixtures.mjs made: the same verdict, except
// that Haven also insists on a 16-byte payload.
func TestValidDocumentIDMatchesJS(t *testing.T) {
	raw, err := os.ReadFile(fixturesFile)
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		DocumentIDs []struct {
			ID            string `json:"id"`
			JSValid       bool   `json:"jsValid"`
			PayloadLength *int   `json:"payloadLength"`
		} `json:"documentIds"`
	}
	if err := json.Unmarshal(raw, &file); err != nil {
		t.Fatal(err)
	}
	if len(file.DocumentIDs) == 0 {
		t.Fatalf("%s has no documentIds", fixturesFile)
	}
	for _, c := range file.DocumentIDs {
		want := c.JSValid && c.PayloadLength != nil && *c.PayloadLength == 16
		if got := ValidDocumentID(c.ID); got != want {
			t.Errorf("ValidDocumentID(%q) = %v, want %v (JS valid %v)", c.ID, got, want, c.JSValid)
		}
	}
}

func TestValidDocumentIDHostile(t *testing.T) {
	for _, id := range []string{
		"\x00", "zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "11111111111111111111111111111111",
		"zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", "6gMHXjsZ5cxdn4qSbgGYYY8CnKK\n", "é",
	} {
		if ValidDocumentID(id) {
			t.Errorf("ValidDocumentID(%q) = true", id)
		}
	}
}
