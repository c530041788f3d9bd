package tablepolicy

import (
	"strings"
	"testing"
)

func mustNew(t *testing.T, c Config) *Policy {
	t.Helper()
	p, err := New(c)
	if err != nil {
		t.Fatalf("%+v: %v", c, err)
	}
	return p
}

// Equivalent configurations, however spelled, have one canonical form and one fingerprint: list order
// and duplicates, the default template written out or not, a table's own template that gives the keys
// the shared one would, {db} and {table} or their values, settings of tables that are not cached. Maps
// are built afresh each round, so Go's random map order is exercised too.
func TestCanonicalIgnoresSpelling(t *testing.T) {
	for name, spellings := range map[string][]func() Config{
		"with a table list": {
			func() Config {
				return Config{
					Tables:         []string{"shop.orders", "shop.customers"},
					ExcludeColumns: []string{"shop.customers.email", "shop.customers.phone"},
					KeyTemplates:   map[string]string{"shop.orders": "order:{tenant}:{id}"},
					Epoch:          2,
				}
			},
			func() Config {
				return Config{
					Tables:         []string{"shop.customers", "shop.orders", "shop.customers"},
					ExcludeColumns: []string{"shop.customers.phone", "shop.customers.email", "shop.customers.email", "other.t.secret"},
					KeyTemplate:    DefaultKeyTemplate,
					KeyTemplates: map[string]string{"shop.orders": "order:{tenant}:{id}", "shop.customers": "shop.customers:{pk}",
						"other.t": "t:{pk}"},
					Epoch: 2,
				}
			},
			func() Config {
				return Config{
					Tables:         []string{"shop.orders", "shop.customers"},
					ExcludeColumns: []string{"shop.customers.email", "shop.customers.phone"},
					// The shared template is used by no table here: each has its own.
					KeyTemplate:  "cache/{db}/{table}/{pk}",
					KeyTemplates: map[string]string{"shop.orders": "order:{tenant}:{id}", "shop.customers": "{db}.{table}:{pk}"},
					Epoch:        2,
				}
			},
		},
		"every table": {
			func() Config {
				return Config{KeyTemplates: map[string]string{"shop.orders": "order:{id}"}}
			},
			func() Config {
				return Config{KeyTemplate: DefaultKeyTemplate, KeyTemplates: map[string]string{
					"shop.orders": "order:{id}", "shop.customers": "{db}.{table}:{pk}", "shop.lines": "shop.lines:{pk}"}}
			},
		},
	} {
		for round := 0; round < 20; round++ {
			want := mustNew(t, spellings[0]())
			for i, spell := range spellings {
				got := mustNew(t, spell())
				if string(got.Canonical()) != string(want.Canonical()) || got.Fingerprint() != want.Fingerprint() {
					t.Fatalf("%s: spelling %d is\n  %s\nnot\n  %s", name, i, got.Canonical(), want.Canonical())
				}
				if d := got.Diff(want); len(d) != 0 {
					t.Fatalf("%s: spelling %d differs: %v", name, i, d)
				}
			}
		}
	}
}

// The canonical form is a contract between the function and readers of other releases: the same policy
// must keep its bytes and fingerprint across releases. A change here changes every published
// fingerprint; it needs a new canonicalFormat.
func TestCanonicalForm(t *testing.T) {
	p := mustNew(t, Config{
		Tables:         []string{"shop.orders", "shop.customers"},
		ExcludeColumns: []string{"shop.customers.email"},
		KeyTemplates:   map[string]string{"shop.orders": "order:{tenant}:{id}"},
		Epoch:          18446744073709551615,
	})
	want := `{"format":1,"tables":["shop.customers","shop.orders"],"exclude_columns":["shop.customers.email"],` +
		`"key_templates":{"shop.customers":"shop.customers:{pk}","shop.orders":"order:{tenant}:{id}"},` +
		`"epoch":18446744073709551615}`
	if got := string(p.Canonical()); got != want {
		t.Fatalf("canonical\n  %s\nwant\n  %s", got, want)
	}
	if !strings.HasPrefix(p.Fingerprint(), "sha256:") || len(p.Fingerprint()) != len("sha256:")+64 {
		t.Fatalf("fingerprint %q", p.Fingerprint())
	}
	q := mustNew(t, Config{KeyTemplate: "{db}/{table}/{pk}"})
	if got := string(q.Canonical()); got != `{"format":1,"key_template":"{db}/{table}/{pk}","epoch":0}` {
		t.Fatalf("canonical of a shared template: %s", got)
	}
}

// Every setting that changes the policy changes its fingerprint, and Diff names it; only the settings
// that change keys or rows change the read fingerprint.
func TestFingerprintsTellPoliciesApart(t *testing.T) {
	base := func() Config {
		return Config{
			Tables:         []string{"shop.orders", "shop.customers"},
			ExcludeColumns: []string{"shop.customers.email"},
			KeyTemplates:   map[string]string{"shop.orders": "order:{id}"},
		}
	}
	p := mustNew(t, base())
	for _, tc := range []struct {
		setting string
		reads   bool
		change  func(*Config)
	}{
		{"CACHE_TABLES", true, func(c *Config) { c.Tables = c.Tables[:1] }},
		{"CACHE_TABLES", true, func(c *Config) { c.Tables = append(c.Tables, "shop.lines") }},
		{"CACHE_EXCLUDE_COLUMNS", true, func(c *Config) { c.ExcludeColumns = nil }},
		{"CACHE_EXCLUDE_COLUMNS", true, func(c *Config) { c.ExcludeColumns = append(c.ExcludeColumns, "shop.orders.note") }},
		{"CACHE_KEY_TEMPLATES", true, func(c *Config) { c.KeyTemplates["shop.orders"] = "orders:{id}" }},
		{"CACHE_KEY_TEMPLATES", true, func(c *Config) { c.KeyTemplates = nil }},
		{"CACHE_VERSION_EPOCH", false, func(c *Config) { c.Epoch = 1 }},
	} {
		c := base()
		tc.change(&c)
		q := mustNew(t, c)
		if q.Fingerprint() == p.Fingerprint() {
			t.Errorf("%s changed, same fingerprint %s", tc.setting, q.Fingerprint())
		}
		if (q.ReadFingerprint() != p.ReadFingerprint()) != tc.reads {
			t.Errorf("%s changed: read fingerprint changed %v, want %v", tc.setting, q.ReadFingerprint() != p.ReadFingerprint(), tc.reads)
		}
		// A table left out takes its own settings with it, so they are differences too.
		d := q.Diff(p)
		if len(d) == 0 || d[0].Setting != tc.setting || (len(d) > 1) != (tc.setting == "CACHE_TABLES") {
			t.Errorf("%s changed: Diff %v", tc.setting, d)
		}
		for _, x := range d {
			if x.Reads != tc.reads {
				t.Errorf("%s changed: %v has Reads %v", tc.setting, x, x.Reads)
			}
		}
	}
	// Without a table list, the shared template is a setting of its own.
	a, b := mustNew(t, Config{}), mustNew(t, Config{KeyTemplate: "{db}/{table}/{pk}"})
	if d := a.Diff(b); len(d) != 1 || d[0].String() != `CACHE_KEY_TEMPLATE: ours "{db}.{table}:{pk}", theirs "{db}/{table}/{pk}"` {
		t.Errorf("Diff %v", d)
	}
	if d := mustNew(t, base()).Diff(mustNew(t, Config{})); len(d) != 4 || d[0].String() != `CACHE_TABLES: ours "shop.customers,shop.orders", theirs unset` {
		t.Errorf("Diff %v", d)
	}
}

// FromCanonical gives back the policy that wrote the bytes, and refuses anything else.
func TestFromCanonical(t *testing.T) {
	p := mustNew(t, Config{Tables: []string{"a.b", "a.c"}, ExcludeColumns: []string{"a.b.x"}, Epoch: 7})
	q, err := FromCanonical(p.Canonical())
	if err != nil || q.Fingerprint() != p.Fingerprint() {
		t.Fatalf("%v %v", q, err)
	}
	for in, want := range map[string]string{
		`{"format":2,"epoch":0}`:                "format 2",
		`{"format":1,"epoch":0,"colour":"red"}`: "unknown field",
		`{"format":1,"tables":["a.c","a.b"],"key_templates":{"a.b":"a.b:{pk}","a.c":"a.c:{pk}"},"epoch":0}`: "not in canonical form",
		`{"format":1,"key_template":"{pk}","epoch":0}`:                                                      "{db} and {table}",
		`not json`: "canonical policy",
	} {
		if _, err := FromCanonical([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", in, err, want)
		}
	}
}
