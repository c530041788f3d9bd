package envvar

import (
	"errors"
	"testing"
)

func TestLookup(t *testing.T) {
	vars := []Var{{Name: "A", Default: "1s"}, {Name: "B"}}
	env := map[string]string{"A": "  ", "B": " x ", "C": "c"}
	get := Lookup(vars, func(k string) string { return env[k] })
	for name, want := range map[string]string{"A": "1s", "B": "x", "C": "c", "D": ""} {
		if got := get(name); got != want {
			t.Errorf("%s = %q, want %q", name, got, want)
		}
	}
}

func TestProblems(t *testing.T) {
	var p Problems
	if p.Err() != nil {
		t.Fatal("no problem recorded, but an error")
	}
	inner := errors.New("REDIS_ADDR: required")
	p.Add("A", "%q is not a number", "x")
	p.AddErr(nil)
	p.AddErr(inner)
	err := p.Err()
	if err == nil || err.Error() != "A: \"x\" is not a number\nREDIS_ADDR: required" {
		t.Fatalf("got %q", err)
	}
	if !errors.Is(err, inner) {
		t.Fatal("a problem added as an error is not in the joined error")
	}
}
