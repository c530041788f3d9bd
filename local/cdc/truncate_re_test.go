package cdc

import "testing"

// MariaDB logs TRUNCATE as a statement; tools and ORMs often put a comment in front of it.
func TestTruncateStatementRecognised(t *testing.T) {
	cases := map[string][2]string{
		"TRUNCATE TABLE t":                               {"", "t"},
		"truncate `shop`.`orders`":                       {"shop", "orders"},
		"/* app:checkout */ TRUNCATE TABLE shop.orders;": {"shop", "orders"},
		"-- cleanup\nTRUNCATE t":                         {"", "t"},
		"# nightly\n /*x*/ truncate table `t`":           {"", "t"},
	}
	for q, want := range cases {
		m := truncateRE.FindStringSubmatch(q)
		if m == nil || m[1] != want[0] || m[2] != want[1] {
			t.Errorf("%q: got %q, want db %q table %q", q, m, want[0], want[1])
		}
	}
	for _, q := range []string{"SELECT 'truncate t'", "/* truncate t */ DELETE FROM t", "UPDATE t SET truncate = 1"} {
		if m := truncateRE.FindStringSubmatch(q); m != nil {
			t.Errorf("%q taken for a truncate: %q", q, m)
		}
	}
}
