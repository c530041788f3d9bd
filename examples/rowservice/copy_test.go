package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The example is what a user copies into a module of their own: it must build there, importing only
// this module's public packages. The copy requires this module through a replace directive and is
// built offline, from the module cache the repository's own build filled. tidy runs with -e: it also
// looks up the modules of the dependencies' own tests, which a fresh machine's cache (filled by go mod
// download) lacks; the build that follows needs only what the example imports, and fails on an
// internal package.
func TestBuildsOutsideTheModule(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	copied := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue // the tests use this repository's test servers, which are internal
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
		copied++
	}
	if copied == 0 {
		t.Fatal("no source file to copy")
	}
	gomod := "module example.com/rowservice\n\ngo 1.26\n\n" +
		"require github.com/cloudsql-cache/cloudsql-cache v0.0.0\n\n" +
		"replace github.com/cloudsql-cache/cloudsql-cache => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"mod", "tidy", "-e"}, {"build", "-o", os.DevNull, "."}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOSUMDB=off", "GOWORK=off")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s in a copy outside the module: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
