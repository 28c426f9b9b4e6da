package ui

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fyne.io/fyne/v2/storage"
	"fyne.io/fyne/v2/test"

	"haven/desktop/internal/app"
	"haven/desktop/internal/printout/printouttest"
)

// TestPrintFromResidentScreen: anyone signed in prints from the resident
// screen; a transfer pack without its reason is refused in the form, with
// the field named, before any file is asked for; with it, the PDF the app
// makes is what the chosen file holds.
func TestPrintFromResidentScreen(t *testing.T) {
	a, _ := demoApp(t, 3)
	u := newTestUI(t, a)
	signIn(t, u, "Casey Carer")
	u.main.openResident(u.main.list.rows[0].ID)
	r := u.main.resident
	test.Tap(button(t, u.root.Objects[1], "Print…"))
	f := r.printing
	if f == nil || !f.reason.Disabled() {
		t.Fatal("the print form is not open, or asks a reason for the summary")
	}
	f.kind.SetValue(app.PrintTransfer)
	test.Tap(f.save)
	if f.form.errs["reason"].Hidden || f.req.Kind != "" {
		t.Fatalf("a transfer pack without a reason went on to the file dialog (%q)", f.form.message.Text)
	}
	test.Type(f.reason, "Fall at 02:40, painful left hip")
	test.Tap(f.save)
	if f.req.Kind != app.PrintTransfer || f.req.Reason != "Fall at 02:40, painful left hip" {
		t.Fatalf("request %+v", f.req)
	}
	path := filepath.Join(t.TempDir(), "transfer.pdf")
	w, err := storage.Writer(storage.NewFileURI(path))
	if err != nil {
		t.Fatal(err)
	}
	f.saveTo(w, nil)
	pdf, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if txt := printouttest.Words(t, pdf, 1); !strings.Contains(txt, "Fall at 02:40, painful left hip") || !strings.Contains(txt, r.fs.NHSNumber) {
		t.Fatalf("the saved transfer pack's first page:\n%s", txt)
	}
	if !shows(u.root.Objects[1], "Saved transfer.pdf") {
		t.Fatal("the screen does not say the printout was saved")
	}
}
