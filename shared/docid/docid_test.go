package docid

import (
	"errors"
	"strings"
	"testing"
)

func TestNewRoundTrips(t *testing.T) {
	seen := map[ID]bool{}
	for i := 0; i < 1000; i++ {
		id := New()
		if seen[id] {
			t.Fatalf("New repeated %s", id)
		}
		seen[id] = true
		if got := id[6] >> 4; got != 4 {
			t.Fatalf("New() version = %d, want 4", got)
		}
		back, err := Parse(id.String())
		if err != nil || back != id {
			t.Fatalf("Parse(%q) = %v, %v, want %v", id.String(), back, err, id)
		}
		back, err = Parse(id.URL())
		if err != nil || back != id {
			t.Fatalf("Parse(%q) = %v, %v, want %v", id.URL(), back, err, id)
		}
	}
}

// Vectors computed independently (Python: base58 of the UUID bytes plus the
// first four bytes of their double SHA-256), as bs58check does.
func TestKnownVectors(t *testing.T) {
	for _, tc := range []struct{ uuid, id string }{
		{"00000000-0000-0000-0000-000000000000", "11111111111111114Ki9Gx"},
		{"6ba7b810-9dad-41d1-80b4-00c04fd430c8", "2VzPLXwa4R41PB944FYJS46nvFdj"},
		{"f47ac10b-58cc-4372-a567-0e02b2c3d479", "4QYpWnnupss2BiDc8B6Y6FRnoWkq"},
	} {
		id, err := Parse(tc.id)
		if err != nil {
			t.Fatalf("Parse(%q) = %v", tc.id, err)
		}
		if id.UUID() != tc.uuid {
			t.Errorf("Parse(%q).UUID() = %s, want %s", tc.id, id.UUID(), tc.uuid)
		}
		if id.String() != tc.id {
			t.Errorf("String() = %s, want %s", id.String(), tc.id)
		}
	}
}

func TestParseRejects(t *testing.T) {
	good := New().String()
	flipped := []byte(good)
	if flipped[5] == 'a' {
		flipped[5] = 'b'
	} else {
		flipped[5] = 'a'
	}
	short := []byte{7, 7, 7} // valid checksum, but a 3-byte payload
	for _, tc := range []struct{ name, in string }{
		{"empty", ""},
		{"url only", "automerge:"},
		{"bad character 0", "0" + good[1:]},
		{"bad character l", good[:3] + "l" + good[4:]},
		{"checksum", string(flipped)},
		{"truncated", good[:len(good)-2]},
		{"extended", good + "2"},
		{"too long", strings.Repeat("2", 100)},
		{"short payload", encode58(append(short, func() []byte { c := checksum(short); return c[:] }()...))},
		{"spaces", " " + good},
	} {
		if _, err := Parse(tc.in); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: Parse(%q) error = %v, want ErrMalformed", tc.name, tc.in, err)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add(New().String())
	f.Add("automerge:" + New().String())
	f.Add("11111111111111114Ki9Gx")
	f.Add("")
	f.Add("zzzzzzzzzzzzzzzzzzzzzzzzzzzzz")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := Parse(s)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) error %v does not wrap ErrMalformed", s, err)
			}
			return
		}
		again, err := Parse(id.String())
		if err != nil || again != id {
			t.Fatalf("Parse(String()) of %q = %v, %v", s, again, err)
		}
		if strings.TrimPrefix(s, URLPrefix) != id.String() {
			t.Fatalf("Parse accepted %q, a different spelling of %s", s, id)
		}
	})
}
