package ui

// Through a real relay: syncd built from this checkout, with its demo
// organisations, and the advice line's desktop enrolled with it. The
// application layer reports from its own goroutines here; the test's
// goroutine runs what they hand to the UI thread (until).

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/test"

	"haven/assets/demo"
	"haven/desktop/internal/app"
	"haven/shared/nhs"
)

// demoRelay starts syncd with its demo organisations and returns its
// address, the syncd command (for admin commands) and the organisation
// IDs by kind (home, hub, advice). The relay stops with the test.
func demoRelay(t *testing.T) (url string, admin func(args ...string) string, orgs map[string]string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and starts a real relay; skipped with -short")
	}
	tmp := t.TempDir()
	bin, data := filepath.Join(tmp, "syncd"), filepath.Join(tmp, "data")
	if out, err := exec.Command("go", "build", "-o", bin, "haven/syncd").CombinedOutput(); err != nil {
		t.Fatalf("go build syncd: %v\n%s", err, out)
	}
	admin = func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append([]string{args[0], "-data", data}, args[1:]...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("syncd %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	orgs = map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^(\w+)=(\S+)$`).FindAllStringSubmatch(admin("demo"), -1) {
		orgs[m[1]] = m[2]
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := l.Addr().String()
	l.Close()
	cmd := exec.Command(bin, "serve", "-data", data, "-listen", ln, "-workers", "2", "-log-level", "warn")
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		cmd.Wait()
	})
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || !strings.Contains(line, "listening") {
		t.Fatalf("syncd did not start: %q %v", line, err)
	}
	return "http://" + ln, admin, orgs
}

// TestAdviceLineThroughARealRelay: a clinician on the advice line finds a
// resident of the demo care home through the relay, opens the record with
// a reason and sees the front sheet; the line's IG lead then sees the
// access awaiting review, reviews it, and the list empties.
func TestAdviceLineThroughARealRelay(t *testing.T) {
	url, admin, orgs := demoRelay(t)
	code := regexp.MustCompile(`one-time code: (\S+)`).FindStringSubmatch(admin("admin", "enroll", orgs["advice"], "-name", "Advice desk 1"))
	if code == nil {
		t.Fatal("no enrolment code")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := app.Enroll(ctx, dir, app.EnrollRequest{RelayURL: url, Code: code[1], Demo: true}); err != nil {
		t.Fatal(err)
	}
	a, err := app.Open(dir, app.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	u := testUI(t, a, true)
	signInLive := func(name string) {
		t.Helper()
		until(t, u, "the unlock screen", func() bool { return u.unlock != nil })
		u.unlock.choose(name)
		test.Type(u.unlock.pin, pinOf(t, name))
		test.Tap(u.unlock.unlock)
		until(t, u, name+" to be signed in and certified", func() bool {
			c := a.CurrentUser()
			return u.main != nil && c != nil && c.Certified && a.Status().Online
		})
	}

	// A first sign-in may come before the relay certifies the clinician:
	// the panel follows once it does.
	signInLive("Nurse Bo Lind")
	until(t, u, "the region search for a certified clinician", func() bool { return u.main.region != nil })
	r := u.main.region
	until(t, u, "the panel to see the relay", func() bool { return !r.offline.Visible() })
	wanted := demo.NHSNumber(7 * 11) // the demo home's eighth resident
	test.Type(r.nhs, wanted)
	test.Tap(r.search)
	until(t, u, "the search's answer", func() bool { return !r.search.Disabled() })
	if len(r.matches) != 1 || r.matches[0].NHSNumber != wanted || r.matches[0].Held ||
		!shows(r.results, "NHS "+nhs.Number(wanted).String()) || !shows(r.results, "Larch House") {
		t.Fatalf("searching for %s found %+v; shows %q (%q)", wanted, r.matches, texts(r.results), r.form.message.Text)
	}
	found := r.matches[0]
	test.Tap(button(t, r.results, "Open for a call"))
	g := u.main.glass
	test.Type(g.reason, "Call from Larch House: found on the floor at 02:40")
	test.Tap(g.open)
	until(t, u, "the record to arrive and open", func() bool { return u.main.resident != nil || g.form.message.Visible() })
	if s := u.main.resident; s == nil || s.id != found.ID || !shows(s.front.box, "CPR RECOMMENDATION") {
		t.Fatalf("after opening: %q", g.form.message.Text)
	}
	if !containsRow(u.main.list.rows, app.Row{ID: found.ID}) {
		t.Fatalf("the opened record is not listed among those opened for calls: %d rows", len(u.main.list.rows))
	}

	test.Tap(button(t, u.root.Objects[1], "Lock"))
	signInLive("Ivy Gov")
	m := u.main
	until(t, u, "the accesses awaiting review", func() bool { return m.reviews.Known })
	if m.reviews.Err != nil || len(m.review.items) != 1 || !strings.Contains(m.alert.Text, "1 break-glass access awaits your review") {
		t.Fatalf("the IG lead sees %+v; alert %q", m.reviews, m.alert.Text)
	}
	it := m.review.items[0]
	for _, want := range []string{"Nurse Bo Lind, Advice-line clinician", "Advice desk 1", found.ID.String(), "found on the floor at 02:40"} {
		if !shows(it.card, want) {
			t.Errorf("the access does not show %q: %q", want, texts(it.card))
		}
	}
	test.Type(it.note, "Call logged on the advice line at 02:41; appropriate")
	test.Tap(it.save)
	until(t, u, "the review to be recorded", func() bool { return len(m.reviews.Pending) == 0 || it.form.message.Visible() })
	if it.form.message.Visible() || m.alertBox.Visible() || m.review.status.Text != "Nothing awaits review." {
		t.Fatalf("after the review: %q; alert shown %v; screen %q", it.form.message.Text, m.alertBox.Visible(), m.review.status.Text)
	}
	// The relay holds the review: asked again, nothing awaits.
	test.Tap(button(t, m.detail, "Check again"))
	until(t, u, "the list asked again", func() bool { return m.reviews.Known })
	if len(m.reviews.Pending) != 0 || m.reviews.Err != nil {
		t.Fatalf("asked again: %+v", m.reviews)
	}
}
