package repocheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestMakeFuzzRunsEveryTarget: `make fuzz` (part of `make test`) runs every fuzz target of the
// repository, and nothing else.
func TestMakeFuzzRunsEveryTarget(t *testing.T) {
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	var targets []string
	for _, p := range list(t, "./...") {
		for _, f := range append(p.TestGoFiles, p.XTestGoFiles...) {
			b, err := os.ReadFile(filepath.Join(p.Dir, f))
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range fuzzFunc.FindAllStringSubmatch(string(b), -1) {
				targets = append(targets, fmt.Sprintf("./%s %s", rel(p.ImportPath), m[1]))
			}
		}
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	_, fuzzRule, ok := strings.Cut(string(mk), "\nfuzz:\n")
	if !ok {
		t.Fatal("the Makefile has no fuzz rule")
	}
	fuzzRule, _, _ = strings.Cut(fuzzRule, "\n\n")
	var run []string
	for _, m := range regexp.MustCompile(`test (\S+) -run '\^\$\$' -fuzz '\^(\w+)\$\$'`).FindAllStringSubmatch(fuzzRule, -1) {
		run = append(run, m[1]+" "+m[2])
	}
	sort.Strings(targets)
	sort.Strings(run)
	if strings.Join(targets, "\n") != strings.Join(run, "\n") {
		t.Errorf("the Makefile's fuzz rule runs\n  %s\nthe fuzz targets are\n  %s", strings.Join(run, "\n  "), strings.Join(targets, "\n  "))
	}
}

// TestREADMEShowsTheReadcacheExample: the README's read-path snippet is readcache's compiled Example,
// as it is.
func TestREADMEShowsTheReadcacheExample(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(root, "readcache", "example_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(src), "\nfunc Example() {\n")
	if !ok {
		t.Fatal("readcache/example_test.go has no func Example")
	}
	body, _, _ = strings.Cut(body, "\n}\n")
	lines := strings.Split(body, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, "\t")
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := "```go\n" + strings.Join(lines, "\n") + "\n```\n"; !strings.Contains(string(readme), want) {
		t.Errorf("README.md does not show readcache's Example as it is; the snippet should read:\n%s", want)
	}
}
