package rowcache

import (
	"errors"
	"testing"
)

func TestVersionRoundTripAndOrder(t *testing.T) {
	vs := []Version{
		{},
		{Row: 1},
		{Pos: 1},
		{File: 1},
		{File: 1, Pos: 154},
		{File: 3, Pos: 154, Row: 2},
		{Column: 1},
		{Epoch: 1},
		{Epoch: 18446744073709551615, Column: 18446744073709551615, File: 18446744073709551615, Pos: 18446744073709551615, Row: 18446744073709551615},
	}
	for i, a := range vs {
		got, err := ParseVersion(a.String())
		if err != nil || got != a {
			t.Fatalf("round trip %v: %v %v", a, got, err)
		}
		if len(a.String()) > MaxVersionLen {
			t.Fatalf("%v longer than MaxVersionLen", a)
		}
		for j, b := range vs {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if c := a.Compare(b); c != want {
				t.Fatalf("%v vs %v = %d, want %d", a, b, c, want)
			}
		}
	}
}

func TestDecode(t *testing.T) {
	good := []struct {
		in      string
		row     string
		deleted bool
	}{
		{`0.0.3.154.0 {"id":1}`, `{"id":1}`, false},
		{`0.0.3.154.0 {"a":"x y"}`, `{"a":"x y"}`, false},
		{`1.0.3.805.0`, ``, true},
	}
	for _, g := range good {
		e, err := Decode([]byte(g.in))
		if err != nil || string(e.Row) != g.row || e.Deleted() != g.deleted {
			t.Fatalf("Decode(%q) = %q deleted=%v err=%v", g.in, e.Row, e.Deleted(), err)
		}
	}
	for _, bad := range []string{"", "hello", "1.2.3.4", "1.2.3.4.5.6", "01.0.0.0.0", "1.0.0.0.0 ", "-1.0.0.0.0", "1..0.0.0", "99999999999999999999.0.0.0.0", "1.2.3.4.5 x", "1.2.3.4.5  {}", "42", "0.25"} {
		if _, err := Decode([]byte(bad)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("Decode(%q): err = %v, want ErrMalformed", bad, err)
		}
	}
}
