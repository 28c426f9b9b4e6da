// Package printouttest reads printouts back for tests, with poppler's
// pdftotext and pdfinfo (poppler-utils, which `make deps` installs): what a
// reader of the paper would see, from a PDF reader that is not ours.
package printouttest

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// Text is the PDF's text laid out as on the page (pdftotext -layout); with
// a page number, that page's alone.
func Text(t testing.TB, pdf []byte, page ...int) string {
	t.Helper()
	args := []string{"-layout"}
	if len(page) == 1 {
		args = append(args, "-f", strconv.Itoa(page[0]), "-l", strconv.Itoa(page[0]))
	}
	out, err := exec.Command("pdftotext", append(args, file(t, pdf), "-")...).Output()
	if err != nil {
		t.Fatalf("pdftotext: %v (poppler-utils is installed by make deps)", err)
	}
	return string(out)
}

// Words is the PDF's text in reading order (pdftotext without -layout),
// each run of spaces and line breaks made one space: a value wrapped in
// its column reads as typed. With a page number, that page's alone.
func Words(t testing.TB, pdf []byte, page ...int) string {
	t.Helper()
	var args []string
	if len(page) == 1 {
		args = append(args, "-f", strconv.Itoa(page[0]), "-l", strconv.Itoa(page[0]))
	}
	out, err := exec.Command("pdftotext", append(args, file(t, pdf), "-")...).Output()
	if err != nil {
		t.Fatalf("pdftotext: %v (poppler-utils is installed by make deps)", err)
	}
	return strings.Join(strings.Fields(string(out)), " ")
}

var pagesLine = regexp.MustCompile(`(?m)^Pages:\s+(\d+)`)

// Pages is the PDF's page count as pdfinfo reads it.
func Pages(t testing.TB, pdf []byte) int {
	t.Helper()
	out, err := exec.Command("pdfinfo", file(t, pdf)).Output()
	if err != nil {
		t.Fatalf("pdfinfo: %v (poppler-utils is installed by make deps)", err)
	}
	m := pagesLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("pdfinfo gives no page count:\n%s", out)
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

func file(t testing.TB, pdf []byte) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "printout-*.pdf")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(pdf); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return filepath.Clean(f.Name())
}

// EveryPage checks that each page of the PDF shows each of want and its
// own "Page n of m", and returns the page count.
func EveryPage(t testing.TB, pdf []byte, want ...string) int {
	t.Helper()
	n := Pages(t, pdf)
	for i := 1; i <= n; i++ {
		txt := Text(t, pdf, i)
		for _, w := range append([]string{"Page " + strconv.Itoa(i) + " of " + strconv.Itoa(n)}, want...) {
			if !strings.Contains(txt, w) {
				t.Errorf("page %d of %d lacks %q:\n%s", i, n, w, txt)
			}
		}
	}
	return n
}
