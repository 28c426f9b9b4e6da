package ui

import (
	"testing"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/driver/desktop"
)

// press types Ctrl (⌘ on a Mac) and key on the window.
func press(t *testing.T, u *UI, key fyne.KeyName) {
	t.Helper()
	sc, ok := u.win.Canvas().(fyne.Shortcutable)
	if !ok {
		t.Fatal("the canvas takes no shortcuts")
	}
	sc.TypedShortcut(&desktop.CustomShortcut{KeyName: key, Modifier: fyne.KeyModifierShortcutDefault})
}

// TestKeyboardShortcuts: Ctrl+F puts the cursor in the search box, Ctrl+
// Page Down shows the resident's next tab (round to the first), and Ctrl+L
// locks the screen.
func TestKeyboardShortcuts(t *testing.T) {
	a, _ := demoApp(t, 3)
	u := newTestUI(t, a)
	signIn(t, u, "Mo Manager")
	press(t, u, fyne.KeyF)
	if u.win.Canvas().Focused() != u.main.list.search {
		t.Fatalf("Ctrl+F focused %v, not the search box", u.win.Canvas().Focused())
	}
	u.main.openResident(u.main.list.rows[0].ID)
	s := u.main.resident
	tabs := len(s.tabs.Items)
	first := s.tabs.SelectedIndex()
	for i := 1; i <= tabs; i++ {
		press(t, u, fyne.KeyPageDown)
		if got, want := s.tabs.SelectedIndex(), (first+i)%tabs; got != want {
			t.Fatalf("after %d presses, tab %d is shown, want %d", i, got, want)
		}
	}
	press(t, u, fyne.KeyL)
	settle(u)
	if u.main != nil || u.unlock == nil {
		t.Fatal("Ctrl+L did not lock the screen")
	}
}
