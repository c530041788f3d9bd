package tablepolicy

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

// Every configuration here can give two rows one key, or let a truncate reach another table's (or the
// cache's own) keys; New must refuse it, saying what collides and how to fix it. Each refusal's example
// is checked to be a real collision (checkRefusal).
func TestCollidingKeyTemplatesAreRefused(t *testing.T) {
	custom := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	cases := []struct {
		name string
		cfg  Config
		want []string
	}{
		// Inside one table: the text between two placeholders does not end the first.
		{"dash between values", Config{KeyTemplates: custom("shop.orders", "order-{tenant}-{id}")},
			[]string{`shop.orders: "order-{tenant}-{id}" gives two rows the same key`, `both give "order-`, `separate {tenant} from {id}`, `such as ":"`}},
		{"nothing between values", Config{KeyTemplates: custom("a.b", "x:{a}{b}")},
			[]string{`{a}="aa" {b}="a" and {a}="a" {b}="aa" both give "x:aaa"`, `separate {a} from {b}`}},
		{"nothing between values, no prefix", Config{KeyTemplates: custom("a.b", "{a}{b}")},
			[]string{`gives two rows the same key`, `must start with literal text`}},
		{"dot between values", Config{KeyTemplates: custom("a.b", "x:{a}.{b}")},
			[]string{`{a}="a." {b}="a" and {a}="a" {b}=".a" both give "x:a..a"`}},
		{"underscore between values", Config{KeyTemplates: custom("a.b", "x:{a}_{b}")},
			[]string{`both give "x:a__a"`, `separate {a} from {b}`}},
		{"percent between values", Config{KeyTemplates: custom("a.b", "x:{a}%{b}")},
			[]string{`{a}="a:" {b}="3A" and {a}="a" {b}="3A:" both give "x:a%3A%3A"`}},
		{"an escape between values", Config{KeyTemplates: custom("a.b", "x:{a}%3A{b}")},
			[]string{`gives two rows the same key`}},
		{"{pk} twice", Config{KeyTemplates: custom("a.b", "x:{pk}:{pk}")}, []string{`{pk} appears twice`}},
		{"{table} twice", Config{KeyTemplate: "{db}.{table}:{table}:{pk}"}, []string{`{table} appears twice`}},
		{"column twice", Config{KeyTemplates: custom("a.b", "x:{id}:{id}")}, []string{`{id} appears twice`}},

		// The shared default template, which covers every table when CACHE_TABLES is empty.
		{"no separator between names", Config{KeyTemplate: "{db}{table}:{pk}"},
			[]string{`key template: "{db}{table}:{pk}" gives two rows of different tables the same key: table aa.a with {pk}="a" and table a.aa with {pk}="a" both give "aaa:a"`, `separate {db} from {table}`}},
		{"percent between names", Config{KeyTemplate: "{db}%{table}:{pk}"},
			[]string{`gives two rows of different tables the same key`, `separate {db} from {table}`}},
		{"percent after the table", Config{KeyTemplate: "{db}.{table}%{pk}"},
			[]string{`gives two rows of different tables the same key`, `separate {table} from {pk}`}},
		{"dash after the table", Config{KeyTemplate: "{db}.{table}-{pk}"},
			[]string{`separate {table} from {pk}`}},
		{"a database named like the reserved prefix", Config{KeyTemplate: "{db}:{table}:{pk}"},
			[]string{`key template: "{db}:{table}:{pk}": keys may not start with "cloudsql-cache:"`, `table cloudsql-cache.a with {pk}="a" gives "cloudsql-cache:a:a"`, `or list the cached tables in CACHE_TABLES`}},
		{"shared template reserved", Config{KeyTemplate: "cloudsql-cache:{db}.{table}:{pk}"}, []string{`which the cache reserves`}},
		{"shared template without the table", Config{KeyTemplate: "{db}:{pk}"}, []string{`must contain {db} and {table} before the key columns`}},

		// Across tables.
		{"another table's default keys", Config{KeyTemplates: custom("app.sessions", "shop.customers:{id}")},
			[]string{`key templates: app.sessions: "shop.customers:{id}"`, `can produce the same key "shop.customers:a" (shop.customers with {pk}="a", app.sessions with {id}="a")`, `such as "app.sessions:"`}},
		{"a listed table's default keys", Config{Tables: []string{"a.b", "a.c"}, KeyTemplates: custom("a.c", "a.b:{id}")},
			[]string{`key templates: a.c: "a.b:{id}": a.b (CACHE_KEY_TEMPLATE "{db}.{table}:{pk}") and a.c ("a.b:{id}") can produce the same key "a.b:a"`}},
		{"two templates, one key", Config{KeyTemplates: custom("a.b", "u:{id}", "a.c", "u:{x}")},
			[]string{`can produce the same key "u:a"`}},
		{"listed tables under a template that joins names", Config{Tables: []string{"x:y.3Az", "x.3Ay:z"}, KeyTemplate: "{db}%{table}:{pk}"},
			[]string{`can produce the same key "x%3Ay%3Az:a"`, `separate {db}, {table} and the key`}},
		{"a pattern over every table of a database", Config{KeyTemplates: custom("x.y", "shop.{id}")},
			[]string{`key templates: x.y: "shop.{id}": its SCAN pattern "shop.*" (how a truncate finds the table's rows) also matches keys of the tables without a template of their own`, `e.g. "shop.a:a" of shop.a`, `such as "x.y:", or list the cached tables in CACHE_TABLES`}},
		{"a pattern over a database's names", Config{KeyTemplates: custom("x.y", "orders{id}")},
			[]string{`its SCAN pattern "orders*"`, `"orders.a:a" of orders.a`}},
		{"a pattern over a longer template", Config{KeyTemplates: custom("a.b", "user:{id}", "a.c", "user:{id}:x")},
			[]string{`key templates: a.b: "user:{id}": its SCAN pattern "user:*"`, `matches keys of a.c ("user:{id}:x"), e.g. "user:a:x"`}},
		{"a pattern over a longer prefix", Config{KeyTemplates: custom("a.b", "user{id}", "a.c", "users:{id}")},
			[]string{`its SCAN pattern "user*"`}},
		{"a default pattern over a template", Config{KeyTemplates: custom("c.d", "a.b:%zz{id}")},
			[]string{`key templates: c.d: "a.b:%zz{id}": its keys match the SCAN pattern "a.b:*" of a.b`}},

		// The cache's own keys.
		{"reserved prefix", Config{KeyTemplates: custom("a.b", "cloudsql-cache:{id}")},
			[]string{`key templates: a.b: "cloudsql-cache:{id}": keys may not start with "cloudsql-cache:", which the cache reserves for its own keys (e.g. {id}="a" gives "cloudsql-cache:a")`}},
		{"a pattern over the reserved prefix", Config{KeyTemplates: custom("a.b", "cl{id}")},
			[]string{`its SCAN pattern "cl*" (how a truncate finds the table's rows) also matches the cache's own keys`}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := New(c.cfg)
			if err == nil {
				t.Fatalf("%+v: accepted", c.cfg)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error\n  %v\ndoes not say\n  %s", err, w)
				}
			}
			checkRefusal(t, c.cfg, err)
		})
	}
}

// Templates whose keys cannot collide are accepted, including ones close to a refused one.
func TestSafeKeyTemplatesAreAccepted(t *testing.T) {
	for _, cfg := range []Config{
		{},
		{KeyTemplate: DefaultKeyTemplate},
		{KeyTemplate: "cache:{db}:{table}:{pk}"},
		{KeyTemplate: "{db}/{table}/{pk}"},
		{KeyTemplate: "{table}.{db}:{pk}"},
		{KeyTemplate: "{db}.{table}x:{pk}"}, // the ":" still ends the table name
		{KeyTemplate: "{db}%%{table}:{pk}"}, // no escaped name has "%%" in it or ends with "%"
		{KeyTemplates: map[string]string{"shop.orders": "order:{tenant}:{id}"}},
		{KeyTemplates: map[string]string{"shop.orders": "order:{tenant}/{id}", "shop.items": "{table}#{pk}"}},
		{KeyTemplates: map[string]string{"a.b": "x:{a}%%{b}"}},
		{KeyTemplates: map[string]string{"a.b": "x:{a}.:{b}"}},
		{KeyTemplates: map[string]string{"a.b": "x:{a}%C3{b}"}}, // no value ends with a lone lead byte
		{KeyTemplates: map[string]string{"a.b": "u:{id}", "a.c": "usr:{id}"}},
		// The table's own default keys are not used by any other table.
		{KeyTemplates: map[string]string{"app.sessions": "app.sessions:v2:{id}"}},
		// Two tables trading default keys: neither uses its default.
		{KeyTemplates: map[string]string{"a.b": "a.c:{id}", "a.c": "a.b:{id}"}},
		// Listed tables only: a template that would collide for some other database is fine.
		{Tables: []string{"shop.orders", "shop.customers", "billing.invoices"}, KeyTemplate: "{db}:{table}:{pk}",
			KeyTemplates: map[string]string{"shop.orders": "order:{id}", "billing.invoices": "inv:{year}:{number}"}},
		{Tables: []string{"a.bc", "ab.c"}, KeyTemplate: "{db}%{table}:{pk}"},
		{Tables: []string{"x.y"}, KeyTemplates: map[string]string{"x.y": "shop.{id}"}},
		// A template for a table that is not cached is not one of the key spaces.
		{Tables: []string{"a.b"}, KeyTemplates: map[string]string{"a.c": "a.b:{id}"}},
	} {
		if _, err := New(cfg); err != nil {
			t.Errorf("%+v: %v", cfg, err)
		}
	}
}

// keyErrors lists the key-template refusals in err (New joins its errors).
func keyErrors(err error) []*keyError {
	var out []*keyError
	var walk func(error)
	walk = func(err error) {
		var ke *keyError
		switch {
		case err == nil:
		case errors.As(err, &ke) && ke == err:
			out = append(out, ke)
		default:
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				for _, e := range j.Unwrap() {
					walk(e)
				}
			} else {
				walk(errors.Unwrap(err))
			}
		}
	}
	walk(err)
	return out
}

// templateOf is the template cfg gives db.table, parsed.
func templateOf(t testing.TB, cfg Config, db, table string) *keyTemplate {
	t.Helper()
	src, ok := cfg.KeyTemplates[db+"."+table]
	if !ok {
		if src = cfg.KeyTemplate; src == "" {
			src = DefaultKeyTemplate
		}
	}
	k, err := parseTemplate(src)
	if err != nil {
		t.Fatalf("template %q of %s.%s: %v", src, db, table, err)
	}
	return k.bind(db, table)
}

func cached(cfg Config, db, table string) bool {
	if len(cfg.Tables) == 0 {
		return db != "" && table != ""
	}
	for _, id := range cfg.Tables {
		if id == db+"."+table {
			return true
		}
	}
	return false
}

// checkRefusal checks that every key-template refusal in err comes with a real collision: the example
// rows, rendered as the function renders keys, give the key the message shows.
func checkRefusal(t testing.TB, cfg Config, err error) {
	t.Helper()
	render := func(e example) string {
		k, err := templateOf(t, cfg, e.db, e.table).render(e.row())
		if err != nil {
			t.Fatalf("example %s %s: %v", e.id(), e.values(), err)
		}
		return k
	}
	prefix := func(e example) string { return templateOf(t, cfg, e.db, e.table).prefix() }
	for _, e := range keyErrors(err) {
		for _, ex := range []example{e.a, e.b} {
			if ex.db != "" && !cached(cfg, ex.db, ex.table) {
				t.Errorf("%v: example table %s is not cached", e, ex.id())
			}
		}
		switch e.kind {
		case "same key":
			if ka, kb := render(e.a), render(e.b); ka != e.key || kb != e.key {
				t.Errorf("%v: the examples give %q and %q", e, ka, kb)
			}
			if e.a.id() == e.b.id() && e.a.values() == e.b.values() {
				t.Errorf("%v: both examples are the same row", e)
			}
		case "pattern":
			if kb := render(e.b); kb != e.key || !strings.HasPrefix(kb, prefix(e.a)) || e.a.db == e.b.db && e.a.table == e.b.table {
				t.Errorf("%v: %s's key %q, %s's prefix %q", e, e.b.id(), kb, e.a.id(), prefix(e.a))
			}
		case "reserved":
			if ka := render(e.a); ka != e.key || !strings.HasPrefix(ka, MetaPrefix) {
				t.Errorf("%v: the example gives %q", e, ka)
			}
		case "reserved pattern":
			if !strings.HasPrefix(e.key, MetaPrefix) || !strings.HasPrefix(e.key, prefix(e.a)) {
				t.Errorf("%v: %q does not show the pattern %q matching a reserved key", e, e.key, prefix(e.a))
			}
		default:
			t.Errorf("%v: kind %q", e, e.kind)
		}
	}
}

// row is the primary key of the example as Table.Key takes it.
func (e example) row() debezium.Row {
	var r debezium.Row
	for i, ph := range e.phs {
		for j, v := range e.vals[i] {
			name := ph
			if ph == "pk" {
				name = "k" + strconv.Itoa(j+1)
			}
			b, _ := json.Marshal(v)
			r = append(r, debezium.Column{Name: name, Value: b})
		}
	}
	return r
}
