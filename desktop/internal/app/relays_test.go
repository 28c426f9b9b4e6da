package app

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"haven/shared/rig"
)

// A device file written when Haven knew one relay address (relayUrl only)
// still syncs with that relay, and is written back with the list and the
// one address both, so an older version still reads it.
func TestDeviceFileWithOneRelayAddress(t *testing.T) {
	dir := t.TempDir()
	const old = `{"version": 1, "deviceId": "dev-1", "org": "home-1", "orgKind": "care-home",
		"relayUrl": "wss://relay.example.org/sync", "peerId": "p", "storageId": "s", "staff": []}`
	if err := os.WriteFile(filepath.Join(dir, deviceFileName), []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	d, err := loadDevice(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"wss://relay.example.org/sync"}
	if !slices.Equal(d.RelayURLs, want) {
		t.Fatalf("relay addresses from an old device file: %q, want %q", d.RelayURLs, want)
	}
	d.RelayURLs = []string{"wss://relay-2.example.org/sync", "wss://relay.example.org/sync"}
	if err := d.save(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, deviceFileName))
	if err != nil {
		t.Fatal(err)
	}
	var written struct {
		RelayURL  string   `json:"relayUrl"`
		RelayURLs []string `json:"relayUrls"`
	}
	if err := json.Unmarshal(b, &written); err != nil {
		t.Fatal(err)
	}
	if written.RelayURL != d.RelayURLs[0] || !slices.Equal(written.RelayURLs, d.RelayURLs) {
		t.Errorf("device file written with relayUrl %q and relayUrls %q; want %q and %q", written.RelayURL, written.RelayURLs, d.RelayURLs[0], d.RelayURLs)
	}
	again, err := loadDevice(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(again.RelayURLs, d.RelayURLs) {
		t.Errorf("relay addresses read back: %q, want %q", again.RelayURLs, d.RelayURLs)
	}
}

// A computer enrolled at a relay whose nodes are listed (syncd serve
// -relay-urls) keeps every node's address, in the relay's order from a
// node drawn at random; at a relay that lists none it keeps the address
// it enrolled at; and of several addresses typed, it enrols at the first
// that takes the code and keeps them all.
func TestEnrolmentKeepsTheRelaysAddresses(t *testing.T) {
	listed := []string{"http://relay-1.test:8450", "http://relay-2.test:8450", "http://relay-3.test:8450"}
	lister := newRelay(t, "-relay-urls", strings.Join(listed, ","))
	lister.start()
	alone := newRelay(t)
	alone.start()
	enrol := func(r *relay, typed string) []string {
		t.Helper()
		home := regexp.MustCompile(`(home-\S+)`).FindStringSubmatch(r.syncd("admin", "create-home", "Rowan House"))[1]
		code := codeRE.FindStringSubmatch(r.syncd("admin", "enroll", home, "-name", "Office PC"))[1]
		dir := t.TempDir()
		if err := Enroll(context.Background(), dir, EnrollRequest{RelayURL: typed, Code: code, Demo: true}); err != nil {
			t.Fatalf("enrolling at %s: %v", typed, err)
		}
		d, err := loadDevice(dir)
		if err != nil {
			t.Fatal(err)
		}
		return d.RelayURLs
	}

	got := enrol(lister, lister.HTTP())
	var want []string
	for _, u := range listed {
		want = append(want, syncURL(u))
	}
	if !isRotation(got, want) {
		t.Errorf("addresses kept from a relay listing its nodes: %q, want %q from any one of them", got, want)
	}

	if got, want := enrol(alone, alone.HTTP()), []string{alone.URL()}; !slices.Equal(got, want) {
		t.Errorf("addresses kept from a relay listing none: %q, want %q", got, want)
	}

	// Nothing answers at the first; the second does not know the code.
	dead := "http://" + rig.RouteAddr(t) // free a moment ago
	typed := dead + ", " + lister.HTTP() + "," + alone.HTTP() + "/"
	if got, want := enrol(alone, typed), []string{syncURL(dead), lister.URL(), alone.URL()}; !slices.Equal(got, want) {
		t.Errorf("addresses kept from %q typed: %q, want %q", typed, got, want)
	}
}

// isRotation reports whether got is want started at one of its entries.
func isRotation(got, want []string) bool {
	for i := range want {
		if slices.Equal(got, append(slices.Clone(want[i:]), want[:i]...)) {
			return true
		}
	}
	return false
}

// An address the relay lists is kept only if it is as safe as the one the
// computer enrolled at: a relay reached over https:// cannot have the
// credential sent over plain websockets.
func TestListedRelayAddressesNoLessSafe(t *testing.T) {
	typed := []string{"https://relay.example.org"}
	listed := []string{"http://relay-1.example.org", "ftp://relay-2.example.org", "https://relay-3.example.org:8443/"}
	if got, want := syncURLs(typed[0], typed, listed), []string{"wss://relay-3.example.org:8443/sync"}; !slices.Equal(got, want) {
		t.Errorf("addresses kept after enrolling over https: %q, want %q", got, want)
	}
	if got, want := syncURLs(typed[0], typed, listed[:2]), []string{"wss://relay.example.org/sync"}; !slices.Equal(got, want) {
		t.Errorf("addresses kept when the relay lists none as safe: %q, want the one enrolled at, %q", got, want)
	}
	if got := syncURLs("http://127.0.0.1:8450", []string{"http://127.0.0.1:8450"}, listed[:1]); !slices.Equal(got, []string{"ws://relay-1.example.org/sync"}) {
		t.Errorf("addresses kept after enrolling over http: %q, want the plain one listed", got)
	}
}
