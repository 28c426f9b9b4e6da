package ui

import (
	"strings"
	"testing"

	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"
)

// TestReviewsThisWeek: the list says how many residents have a review
// overdue or due this week; the button lists them, most overdue first, in
// words; choosing one opens that resident and closes the list.
func TestReviewsThisWeek(t *testing.T) {
	a, _ := demoApp(t, 30)
	u := newTestUI(t, a)
	signIn(t, u, "Mo Manager")
	l := u.main.list
	due := a.ReviewsDue()
	if len(due) == 0 || !l.week.Visible() || !strings.HasPrefix(l.week.Text, "Reviews this week: ") {
		t.Fatalf("%d reviews due; the button says %q (shown %v)", len(due), l.week.Text, l.week.Visible())
	}
	test.Tap(l.week)
	top := u.win.Canvas().Overlays().Top()
	if top == nil {
		t.Fatal("no list of reviews opened")
	}
	shot(u)
	first, _ := reviewLine(due[0])
	if !shows(top, first) || (due[0].State == "overdue") != strings.HasPrefix(first, "OVERDUE since") {
		t.Fatalf("the list does not begin with %q: %q", first, texts(top))
	}
	list, ok := find(top, func(*widget.List) bool { return true })
	if !ok {
		t.Fatal("no list in the dialog")
	}
	list.Select(0)
	if u.main.resident == nil || u.main.resident.id != due[0].Resident.ID {
		t.Fatalf("choosing %s did not open them", due[0].Resident.Name())
	}
	if u.win.Canvas().Overlays().Top() != nil {
		t.Fatal("the list stayed open over the resident")
	}
}

// TestAdviceLineShowsNoReviews: reviews are the homes' work; the advice
// line's list counts none, offers no review filters and no week's list,
// though the records it holds have reviews due.
func TestAdviceLineShowsNoReviews(t *testing.T) {
	a, clk := demoAppAs(t, 20, "advice-line")
	clk.t = clk.t.AddDate(0, 0, 40) // every monthly review is past
	u := newTestUI(t, a)
	signIn(t, u, "Nurse Bo Lind")
	l := u.main.list
	l.reload()
	if len(l.rows) == 0 {
		t.Fatal("the advice line holds no records to show")
	}
	for _, r := range l.rows {
		if len(r.Reviews) == 0 {
			t.Fatalf("%s has no review dates: the test shows nothing", r.Name())
		}
		if r.Overdue != 0 || r.DueThisWeek != 0 {
			t.Fatalf("the advice line counts %s's reviews: %d overdue, %d this week", r.Name(), r.Overdue, r.DueThisWeek)
		}
	}
	if l.overdue.Visible() || l.dueSoon.Visible() || l.week.Visible() {
		t.Fatal("the advice line offers the review filters or the week's list")
	}
}
