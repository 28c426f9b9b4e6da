package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// The demo organisation is created once; a second run finds it.
func TestDemoIsIdempotent(t *testing.T) {
	data := t.TempDir()
	var first, second bytes.Buffer
	if err := run(context.Background(), []string{"demo", "-data", data}, &first, io.Discard); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"demo", "-data", data}, &second, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(first.String(), "created Larch House") || strings.Contains(second.String(), "created") {
		t.Fatalf("first run %q, second run %q", first.String(), second.String())
	}
	ids := func(s string) string {
		var keep []string
		for _, l := range strings.Split(s, "\n") {
			if strings.Contains(l, "=") {
				keep = append(keep, l)
			}
		}
		return strings.Join(keep, "\n")
	}
	if ids(first.String()) != ids(second.String()) || !strings.Contains(first.String(), "home=home-") {
		t.Fatalf("IDs differ between runs: %q vs %q", first.String(), second.String())
	}
	// The relay then serves the home's records, and the region's
	// directory of services, to one of its devices.
	p := startRelay(t, data, anyPort)
	home := strings.TrimPrefix(strings.Split(ids(first.String()), "\n")[0], "home=")
	d := newDevice(t, "demo-pc", p.enroll(home, "Demo PC"), p.url())
	waitFor(t, "online", d.online)
	n, err := d.client.Bootstrap(context.Background(), nil)
	if err != nil || n != 2+2*demoResidents {
		t.Fatalf("Bootstrap fetched %d documents, %v; want the directory, the directory of services and %d records and timelines", n, err, 2*demoResidents)
	}
}
