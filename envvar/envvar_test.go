package envvar

import "testing"

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
