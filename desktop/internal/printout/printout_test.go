package printout

import (
	"bytes"
	"strconv"
	"strings"
	"testing"
	"time"

	"haven/desktop/internal/printout/printouttest"
)

// sample is a document with every kind of value a printout shows, and a
// name that needs more than Latin-1.
func sample(notes int) *Document {
	d := &Document{
		Title: "Hospital transfer pack", Name: "Zoë O’Connell–Łukasiewicz", NHSNumber: "999 000 0018", DateOfBirth: "2 Apr 1931 (aged 95)",
		PrintedBy: "Dr Ada Quill, GP, GMC 7000001", PrintedAt: time.Date(2026, 11, 22, 3, 0, 0, 0, time.UTC),
		AsOf: "As of 22 Nov 02:40, the last exchange with the relay", OnePage: true,
		Notice: &Notice{Label: "Reason for transfer", Text: "Fall at 02:40 with a painful, shortened left leg"},
		Lead: &Item{Label: "CPR recommendation", Decision: &Decision{State: Conflict, Sides: []Side{
			{Text: "CPR attempts NOT recommended", By: "Dr Ada Quill, GP, GMC 7000001", At: "20 Nov 2026 10:00", Reason: "reviewed today"},
			{Text: "CPR attempts recommended", By: "Dr Ben Hale, GP, GMC 7000002", At: "21 Nov 2026 16:00", Reason: "on the phone"}}}},
		First: []Item{
			{Label: "Clinical focus", Decision: &Decision{State: Settled, Text: "Prioritise comfort", By: "Dr Ada Quill, GP, GMC 7000001", At: "20 Nov 2026 10:00"}},
			{Label: "Ceiling of treatment", Decision: &Decision{State: Settled, Text: "Treat in the care home",
				By: "Dr Ada Quill, GP, GMC 7000001", At: "20 Nov 2026 10:00",
				Unverified: []Unverified{{Heading: "Unverified entry — not a decision", Text: "Full escalation", Claimed: "Dr Gone (claimed)",
					At: "21 Nov 2026", Why: "its signature does not match"}}}},
			{Label: "Allergies", Decision: &Decision{State: NotRecorded}},
			{Label: "Alerts", Lines: []Line{{Text: "Swallowing risk: thickened fluids level 2", Style: Strong}}},
		},
		FirstNote: "ReSPECT is a recommendation, not a legal order.",
	}
	var items []Item
	for i := 0; i < notes; i++ {
		items = append(items, Item{Label: "Note " + strconv.Itoa(i), Lines: []Line{{Text: "Settled after a warm drink; slept through.", Style: Plain}}})
	}
	d.Sections = []Section{{Title: "Notes", Items: items},
		{Title: "A long note", Items: []Item{{Label: "22 Nov 2026", Lines: []Line{{Text: strings.Repeat("Walked the corridor, then settled. ", 900), Style: Plain}}}}}}
	return d
}

// TestLayout: every page carries the header and footer; the first page
// holds the notice, each side of a conflict, the unverified marking and
// "Not recorded"; sections run on over as many pages as they need, a
// note longer than a page included; text beyond Latin-1 survives.
func TestLayout(t *testing.T) {
	var b bytes.Buffer
	if err := Write(&b, sample(120)); err != nil {
		t.Fatal(err)
	}
	n := printouttest.EveryPage(t, b.Bytes(), "Zoë O’Connell–Łukasiewicz", "NHS number 999 000 0018", "Date of birth 2 Apr 1931 (aged 95)",
		"Printed by Dr Ada Quill, GP, GMC 7000001 on 22 Nov 2026 at 03:00", "As of 22 Nov 02:40, the last exchange with the relay", "Hospital transfer pack")
	if n < 4 {
		t.Fatalf("%d pages: want the notes to run on", n)
	}
	first := printouttest.Words(t, b.Bytes(), 1)
	for _, want := range []string{"Reason for transfer Fall at 02:40", "CONFLICT: 2 decisions", "Decision 1: CPR attempts NOT recommended",
		"By Dr Ada Quill, GP, GMC 7000001, 20 Nov 2026 10:00, reason: reviewed today", "Decision 2: CPR attempts recommended",
		"UNVERIFIED ENTRY — NOT A DECISION: it claims “Full escalation”", "Allergies Not recorded", "ReSPECT is a recommendation"} {
		if !strings.Contains(first, want) {
			t.Errorf("page 1 lacks %q:\n%s", want, first)
		}
	}
	all := printouttest.Words(t, b.Bytes())
	if got := strings.Count(all, "Settled after a warm drink"); got != 120 {
		t.Errorf("%d of 120 notes printed", got)
	}
	if got := strings.Count(all, "corridor,"); got != 900 {
		t.Errorf("the long note printed %d of its 900 sentences", got)
	}
}

// TestOnePageShrinksToFit: a first page with more than fits at full size
// is set smaller to stay on one sheet.
func TestOnePageShrinksToFit(t *testing.T) {
	d := sample(0)
	d.Sections = nil
	for i := 0; i < 9; i++ {
		d.First = append(d.First, Item{Label: "Contact " + strconv.Itoa(i), Lines: []Line{{Text: "Jane Marlow (child, attorney)", Style: Strong},
			{Text: "Day 020 7946 0000 · Night 07700 900000 · call at night: yes", Style: Plain}}})
	}
	var b bytes.Buffer
	if err := Write(&b, d); err != nil {
		t.Fatal(err)
	}
	if n := printouttest.Pages(t, b.Bytes()); n != 1 {
		t.Fatalf("%d pages; want the first page to fit one", n)
	}
	if got := strings.Count(printouttest.Words(t, b.Bytes()), "Jane Marlow"); got != 9 {
		t.Fatalf("%d of 9 contacts printed", got)
	}
}
