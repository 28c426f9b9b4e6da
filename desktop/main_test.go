package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"haven/assets/demo"
	"haven/desktop/internal/app"
	"haven/desktop/internal/printout/printouttest"
	"haven/shared/nhs"
)

func TestFlags(t *testing.T) {
	t.Setenv("HAVEN_DESKTOP_DATA", "/srv/haven-desk")
	c, err := parse(nil)
	if err != nil || c.dir != "/srv/haven-desk" || c.conflicts != 2 || c.seed != 0 {
		t.Fatalf("defaults = %+v, %v", c, err)
	}
	t.Setenv("HAVEN_DESKTOP_DATA", "")
	t.Setenv("HOME", "/home/nurse")
	if c, _ := parse(nil); c.dir != filepath.Join("/home/nurse", ".local", "share", "haven", "desktop") {
		t.Fatalf("default folder %q", c.dir)
	}
	c, err = parse([]string{"-data", "d", "-seed-demo", "40", "-unlock", "Dr Ada Quill:271828", "-open-first", "-screenshot", "out.png"})
	if err != nil || c.dir != "d" || c.seed != 40 || c.unlock != "Dr Ada Quill:271828" || !c.openFirst || c.screenshot != "out.png" {
		t.Fatalf("parse = %+v, %v", c, err)
	}
	if c, err := parse([]string{"-seed-demo-advice", "6"}); err != nil || c.seedAdvice != 6 || c.seed != 0 {
		t.Fatalf("parse -seed-demo-advice = %+v, %v", c, err)
	}
	if _, err := parse([]string{"-nonsense"}); err == nil || errors.Is(err, flag.ErrHelp) {
		t.Fatalf("unknown flag = %v", err)
	}
	if _, err := parse([]string{"stray"}); err == nil {
		t.Fatal("a stray argument was accepted")
	}
}

func TestUnlockAsWantsNameAndPIN(t *testing.T) {
	if err := unlockAs(nil, "x:1"); err == nil {
		t.Fatal("-unlock on a computer not set up was accepted")
	}
}

// TestImportCommand: `desktop import` prints "imported N, refused M" and a
// line per refused row, returns the refusals (main exits 1 on any), and
// run twice imports nothing more.
func TestImportCommand(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := prepare(config{dir: dir, seed: 2, notes: 1}, log); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "residents.csv")
	rows := "nhs_number,given_name,family_name,date_of_birth,sex,room,gp_practice_ods\n" +
		demo.NHSNumber(7000) + ",Olive,Penrose,1933-05-06,female,21,E85001\n" +
		demo.NHSNumber(7010) + ",Walter,Brierley,1930-02-30,male,22,E85001\n"
	if err := os.WriteFile(file, []byte(rows), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-data", dir, "-unlock", "Mo Manager:314159", file}
	var out bytes.Buffer
	refused, err := runImport(args, &out, log)
	if err != nil || refused != 1 {
		t.Fatalf("import: %d refused, %v\n%s", refused, err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || lines[0] != "imported 1, refused 1" || !strings.HasPrefix(lines[1], "line 3: date_of_birth") {
		t.Fatalf("output:\n%s", out.String())
	}
	out.Reset()
	if refused, err := runImport(args, &out, log); err != nil || refused != 1 || !strings.HasPrefix(out.String(), "imported 0, refused 1\n") ||
		!strings.Contains(out.String(), "line 2: already in this home") {
		t.Fatalf("run again: %d refused, %v\n%s", refused, err, out.String())
	}
	if _, err := runImport([]string{"-data", dir, file}, &out, log); err == nil {
		t.Fatal("an import without -unlock was accepted")
	}
}

// TestExportCommand: `desktop export` writes each printout as a PDF that
// names the resident, and every refusal (a number that is not an NHS
// number, a resident not held here, a wrong PIN, a transfer pack without
// its reason) comes back as an error with no file left behind, not even a
// partial one.
func TestExportCommand(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := prepare(config{dir: dir, seed: 2, notes: 1}, log); err != nil {
		t.Fatal(err)
	}
	outDir := t.TempDir()
	resident := demo.NHSNumber(0)
	export := func(out string, args ...string) error {
		var stdout bytes.Buffer
		return runExport(append([]string{"-data", dir, "-o", filepath.Join(outDir, out)}, args...), &stdout, log)
	}
	for _, kind := range []string{app.PrintSummary, app.PrintTransfer, app.PrintPersonal} {
		if err := export(kind+".pdf", "-unlock", "Dr Ada Quill:271828", "-resident", resident, "-format", kind, "-reason", "fall"); err != nil {
			t.Fatalf("export %s: %v", kind, err)
		}
		pdf, err := os.ReadFile(filepath.Join(outDir, kind+".pdf"))
		if err != nil {
			t.Fatal(err)
		}
		number := resident[:3] + " " + resident[3:6] + " " + resident[6:]
		printouttest.EveryPage(t, pdf, number, "Printed by Dr Ada Quill")
	}
	// The FHIR bundle: JSON, a document whose Patient carries the number.
	if err := export("bundle.json", "-unlock", "Dr Ada Quill:271828", "-resident", resident, "-format", "fhir"); err != nil {
		t.Fatalf("export fhir: %v", err)
	}
	raw, err := os.ReadFile(filepath.Join(outDir, "bundle.json"))
	if err != nil {
		t.Fatal(err)
	}
	var bundle struct {
		ResourceType, Type string
		Entry              []struct {
			Resource struct {
				ResourceType string
				Identifier   []struct{ System, Value string }
			}
		}
	}
	if err := json.Unmarshal(raw, &bundle); err != nil || bundle.ResourceType != "Bundle" || bundle.Type != "document" {
		t.Fatalf("the FHIR export is not a document Bundle: %v", err)
	}
	found := false
	for _, e := range bundle.Entry {
		for _, id := range e.Resource.Identifier {
			found = found || (e.Resource.ResourceType == "Patient" && id.System == "https://fhir.nhs.uk/Id/nhs-number" && id.Value == resident)
		}
	}
	if !found {
		t.Fatal("the FHIR export has no Patient with the resident's NHS number")
	}
	for _, tc := range []struct {
		name string
		args []string
		want func(error) bool
	}{
		{"not an NHS number", []string{"-unlock", "Dr Ada Quill:271828", "-resident", "9990000000"},
			func(err error) bool { return errors.Is(err, nhs.ErrCheck) }},
		{"a resident not held here", []string{"-unlock", "Dr Ada Quill:271828", "-resident", demo.NHSNumber(5000)},
			func(err error) bool { var e app.ErrNoSuchResident; return errors.As(err, &e) }},
		{"a wrong PIN", []string{"-unlock", "Dr Ada Quill:000001", "-resident", resident},
			func(err error) bool { return errors.Is(err, app.ErrWrongPIN) }},
		{"a transfer pack without a reason", []string{"-unlock", "Dr Ada Quill:271828", "-resident", resident, "-format", app.PrintTransfer},
			func(err error) bool { return errors.Is(err, app.ErrNoTransferReason) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := export("refused.pdf", tc.args...); !tc.want(err) {
				t.Fatalf("export = %v", err)
			}
			left, _ := filepath.Glob(filepath.Join(outDir, "*"))
			for _, f := range left {
				if base := filepath.Base(f); base != "summary.pdf" && base != "transfer.pdf" && base != "personal.pdf" && base != "bundle.json" {
					t.Errorf("a refused export left %s behind", base)
				}
			}
		})
	}
}
