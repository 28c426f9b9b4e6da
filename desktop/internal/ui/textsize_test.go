package ui

import (
	"testing"

	"fyne.io/fyne/v2/theme"
)

// TestTextSizeSetting: choosing a larger text size on the status bar
// makes every text size of the theme larger at once, and the computer
// keeps the choice for the next start.
func TestTextSizeSetting(t *testing.T) {
	a, _ := demoApp(t, 2)
	u := newTestUI(t, a)
	signIn(t, u, "Mo Manager")
	size := func(n string) float32 {
		switch n {
		case "text":
			return u.fa.Settings().Theme().Size(theme.SizeNameText)
		case "heading":
			return u.fa.Settings().Theme().Size(theme.SizeNameHeadingText)
		}
		return u.fa.Settings().Theme().Size(sizeDecision)
	}
	before := map[string]float32{}
	for _, n := range []string{"text", "heading", "decision"} {
		before[n] = size(n)
	}
	sel := u.main.status.textSize
	if sel == nil || sel.Selected != "Normal" {
		t.Fatalf("the text size control shows %v", sel)
	}
	t.Cleanup(func() { u.setTextSize(textSizes[0].label) })
	sel.SetSelected("Largest")
	for n, b := range before {
		if got := size(n); got < b*1.35 {
			t.Errorf("%s text %v after choosing Largest, was %v", n, got, b)
		}
	}
	if got := u.fa.Preferences().String(prefTextSize); got != "Largest" {
		t.Fatalf("the computer kept %q", got)
	}
	if s := textScale(u.fa); s != 1.4 {
		t.Fatalf("the next start would use a scale of %v", s)
	}
}
