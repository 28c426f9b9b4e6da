// Package safety holds the clinical safety hazard log; its test keeps the
// log honest: every hazard names tests, and every named test exists.
package safety

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	hazardRE = regexp.MustCompile(`^## (HAZ-\d+) `)
	testRE   = regexp.MustCompile("`([a-z][a-z0-9/_]*)\\.((?:Test|Fuzz)[A-Za-z0-9_]+)`")
)

func TestEveryHazardNamesExistingTests(t *testing.T) {
	f, err := os.Open("hazard-log.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tests := map[string][]string{} // hazard → test references
	var hazard string
	var inTests bool
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m := hazardRE.FindStringSubmatch(line); m != nil {
			hazard, inTests = m[1], false
			tests[hazard] = nil
			continue
		}
		if strings.HasPrefix(line, "- **") {
			inTests = strings.HasPrefix(line, "- **Tests:**")
		}
		if hazard != "" && inTests {
			for _, m := range testRE.FindAllStringSubmatch(line, -1) {
				tests[hazard] = append(tests[hazard], m[1]+"."+m[2])
			}
		}
	}
	if len(tests) < 7 {
		t.Fatalf("the log lists %d hazards; the issue names at least 7", len(tests))
	}
	root := filepath.Join("..", "..")
	for hz, refs := range tests {
		if len(refs) == 0 {
			t.Errorf("%s names no test", hz)
		}
		for _, ref := range refs {
			i := strings.LastIndex(ref, ".")
			pkg, name := ref[:i], ref[i+1:]
			if !defined(t, filepath.Join(root, pkg), name) {
				t.Errorf("%s names %s, which does not exist", hz, ref)
			}
		}
	}
}

// defined reports whether a _test.go file in dir declares func name(.
func defined(t *testing.T, dir, name string) bool {
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	decl := regexp.MustCompile(`(?m)^func ` + regexp.QuoteMeta(name) + `\(`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if decl.Match(b) {
			return true
		}
	}
	return false
}
