package repocheck

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/cloudsql-cache/cloudsql-cache"

// root is the repository's root, from this package's directory.
var root = filepath.Join("..", "..")

// pkg is what `go list -json` says of a package.
type pkg struct {
	ImportPath, Dir                    string
	Standard                           bool
	Imports, TestImports, XTestImports []string
	TestGoFiles, XTestGoFiles          []string
	Module                             *struct{ Path string }
}

// list runs go list -json with args in the repository's root.
func list(t *testing.T, args ...string) []pkg {
	t.Helper()
	cmd := exec.Command("go", append([]string{"list", "-json"}, args...)...)
	cmd.Dir = root
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list %v: %v", args, err)
	}
	var pkgs []pkg
	for dec := json.NewDecoder(bytes.NewReader(out)); ; {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			return pkgs
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
}

// rel is a module package's path relative to the module ("" for a package outside it).
func rel(importPath string) string {
	if importPath == module {
		return "."
	}
	r, ok := strings.CutPrefix(importPath, module+"/")
	if !ok {
		return ""
	}
	return r
}

// rule is one row of the folder table.
type rule struct {
	line             int
	mayImport, tests patterns
}

// patterns is a cell of the table: the packages it names, less those after "except".
type patterns struct{ allow, except []string }

func (p patterns) match(pkg string) bool {
	return matchAny(p.allow, pkg) && !matchAny(p.except, pkg)
}

func matchAny(pats []string, pkg string) bool {
	for _, p := range pats {
		if p == "..." || p == pkg {
			return true
		}
		if dir, ok := strings.CutSuffix(p, "/..."); ok && (pkg == dir || strings.HasPrefix(pkg, dir+"/")) {
			return true
		}
	}
	return false
}

var code = regexp.MustCompile("`([^`]+)`")

// parseCell reads "none", or backquoted package paths and patterns, optionally followed by
// "except" and more of them.
func parseCell(cell string) (patterns, error) {
	cell = strings.TrimSpace(cell)
	if cell == "none" {
		return patterns{}, nil
	}
	allow, except, _ := strings.Cut(cell, " except ")
	var p patterns
	for _, m := range code.FindAllStringSubmatch(allow, -1) {
		p.allow = append(p.allow, m[1])
	}
	for _, m := range code.FindAllStringSubmatch(except, -1) {
		p.except = append(p.except, m[1])
	}
	if len(p.allow) == 0 {
		return p, fmt.Errorf("%q names no package (write none for none)", cell)
	}
	return p, nil
}

const tableHeader = "| package | job | may import | its tests may also import |"

// folderTable reads the README's folder table: package → rule.
func folderTable(t *testing.T) map[string]rule {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rules := map[string]rule{}
	sc := bufio.NewScanner(f)
	in, n := false, 0
	for sc.Scan() {
		n++
		line := sc.Text()
		switch {
		case line == tableHeader:
			if len(rules) > 0 {
				t.Fatalf("README.md:%d: a second folder table", n)
			}
			in = true
			continue
		case !in:
			continue
		case !strings.HasPrefix(line, "|"):
			in = false
			continue
		case strings.HasPrefix(line, "|---"):
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), " | ")
		if len(cells) != 4 {
			t.Fatalf("README.md:%d: want 4 cells, got %d: %s", n, len(cells), line)
		}
		m := code.FindStringSubmatch(cells[0])
		if m == nil {
			t.Fatalf("README.md:%d: no package in %q", n, cells[0])
		}
		r := rule{line: n}
		if r.mayImport, err = parseCell(cells[2]); err != nil {
			t.Fatalf("README.md:%d: may import: %v", n, err)
		}
		if r.tests, err = parseCell(cells[3]); err != nil {
			t.Fatalf("README.md:%d: its tests may also import: %v", n, err)
		}
		if _, dup := rules[m[1]]; dup {
			t.Fatalf("README.md:%d: %s has two rows", n, m[1])
		}
		rules[m[1]] = r
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rules) == 0 {
		t.Fatalf("README.md has no folder table (a line %q)", tableHeader)
	}
	return rules
}

// TestLayout: every package of the module has a row in the README's folder table, every row is a
// package, and every import of a module package is one its row allows.
func TestLayout(t *testing.T) {
	rules := folderTable(t)
	pkgs := list(t, "./...")
	seen := map[string]bool{}
	for _, p := range pkgs {
		name := rel(p.ImportPath)
		seen[name] = true
		r, ok := rules[name]
		if !ok {
			t.Errorf("%s has no row in the README's folder table: add one saying what it is for and what it may import", name)
			continue
		}
		check := func(imports []string, allowed func(string) bool, who string) {
			for _, imp := range imports {
				dep := rel(imp)
				if dep == "" || dep == name {
					continue
				}
				if !allowed(dep) {
					t.Errorf("%s %s, which README.md:%d does not allow", who, dep, r.line)
				}
			}
		}
		check(p.Imports, r.mayImport.match, name+" imports")
		check(slices.Concat(p.TestImports, p.XTestImports), func(dep string) bool { return r.mayImport.match(dep) || r.tests.match(dep) }, name+"'s tests import")
	}
	for name, r := range rules {
		if !seen[name] {
			t.Errorf("README.md:%d: %s is not a package of the module", r.line, name)
		}
	}
}

// TestReadPathDependencies: a service importing readcache builds go-redis, the MySQL driver,
// OpenTelemetry's metric API, x/sync, what those need, and nothing else.
func TestReadPathDependencies(t *testing.T) {
	// What the module's own packages in readcache's build may import from outside the module.
	direct := []string{"github.com/redis/go-redis/v9", "github.com/go-sql-driver/mysql", "go.opentelemetry.io/otel/metric/...",
		"go.opentelemetry.io/otel/attribute", "golang.org/x/sync/..."}
	// The modules those pull today; an upgrade that adds one makes this test say so.
	modules := []string{module, "github.com/redis/go-redis/v9", "github.com/cespare/xxhash/v2", "go.uber.org/atomic",
		"github.com/go-sql-driver/mysql", "filippo.io/edwards25519", "go.opentelemetry.io/otel", "go.opentelemetry.io/otel/metric",
		"golang.org/x/sync", "golang.org/x/sys"}
	got := map[string]bool{}
	for _, p := range list(t, "-deps", "./readcache") {
		if p.Standard {
			continue
		}
		if p.Module == nil {
			t.Errorf("%s belongs to no module", p.ImportPath)
			continue
		}
		got[p.Module.Path] = true
		if p.Module.Path != module {
			continue
		}
		for _, imp := range p.Imports {
			if rel(imp) == "" && strings.Contains(strings.Split(imp, "/")[0], ".") && !matchAny(direct, imp) {
				t.Errorf("%s imports %s: the read path's dependencies are go-redis, the MySQL driver, otel's metric API and x/sync", p.ImportPath, imp)
			}
		}
	}
	var extra []string
	for m := range got {
		if !slices.Contains(modules, m) {
			extra = append(extra, m)
		}
	}
	sort.Strings(extra)
	if len(extra) > 0 {
		t.Errorf("go list -deps ./readcache pulls modules beyond go-redis, the MySQL driver, otel's metric API, x/sync and what they need: %v", extra)
	}
}
