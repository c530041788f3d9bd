package tablepolicy

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

func mustPolicy(t *testing.T, cfg Config) *Policy {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func key(t *testing.T, tbl *Table, k string) string {
	t.Helper()
	pk, err := debezium.DecodeKey(k)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tbl.Key(pk)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestKeys(t *testing.T) {
	p := mustPolicy(t, Config{KeyTemplates: map[string]string{
		"shop.orders": "order:{tenant}/{id}",
		"shop.items":  "{table}#{pk}",
	}})
	cases := []struct{ db, table, key, want string }{
		{"inventory", "customers", `{"id":1004}`, "inventory.customers:1004"},
		{"inventory", "customers", `{"id":"a:b"}`, "inventory.customers:a%3Ab"},
		{"inventory", "customers", `{"id":"100%"}`, "inventory.customers:100%25"},
		{"inventory", "customers", `{"id":"héllo wörld"}`, "inventory.customers:h%C3%A9llo%20w%C3%B6rld"},
		{"inventory", "line_items", `{"order_id":7,"line":2}`, "inventory.line_items:7:2"},
		{"in.ventory", "cus:tomers", `{"id":1}`, "in%2Eventory.cus%3Atomers:1"},
		{"shop", "orders", `{"id":9,"tenant":"acme"}`, "order:acme/9"},
		{"shop", "items", `{"sku":"x.y"}`, "items#x.y"},
		{"inventory", "customers", `{"schema":{"type":"struct","fields":[{"field":"id","type":"int32"}]},"payload":{"id":1004}}`, "inventory.customers:1004"},
	}
	for _, c := range cases {
		tbl, ok := p.Table(c.db, c.table)
		if !ok {
			t.Fatalf("%s.%s not cached", c.db, c.table)
		}
		if got := key(t, tbl, c.key); got != c.want {
			t.Errorf("%s.%s %s → %q, want %q", c.db, c.table, c.key, got, c.want)
		}
	}
	orders, _ := p.Table("shop", "orders")
	for _, bad := range []string{`{"id":9}`, `{"id":9,"region":"eu"}`, `{"id":9,"tenant":"a","x":1}`, `{"id":[1],"tenant":"a"}`} {
		pk, _ := debezium.DecodeKey(bad)
		if _, err := orders.Key(pk); err == nil {
			t.Errorf("key %s for template %q: want an error", bad, orders.key.src)
		}
	}
	if orders.Pattern != "order:*" {
		t.Errorf("pattern %q", orders.Pattern)
	}
	cust, _ := p.Table("inventory", "customers")
	if cust.Pattern != "inventory.customers:*" || cust.FloorKey != "cloudsql-cache:truncated:inventory.customers" {
		t.Errorf("pattern %q floor %q", cust.Pattern, cust.FloorKey)
	}
}

// No two distinct composite keys of one table get the same Redis key, whatever their values contain.
func TestKeysAreInjective(t *testing.T) {
	p := mustPolicy(t, Config{})
	tbl, _ := p.Table("d", "t")
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", ":", "%", "%3A", ".", "", " ", "\x00", "é", "*", "{", "}", "\\", "/", "3A"}
	seen := map[string][2]string{}
	for i := 0; i < 20000; i++ {
		var parts [2]string
		for j := range parts {
			n := rng.IntN(4)
			for k := 0; k < n; k++ {
				parts[j] += alphabet[rng.IntN(len(alphabet))]
			}
		}
		a, _ := json.Marshal(parts[0])
		b, _ := json.Marshal(parts[1])
		k := key(t, tbl, `{"a":`+string(a)+`,"b":`+string(b)+`}`)
		if prev, ok := seen[k]; ok && prev != parts {
			t.Fatalf("%q and %q share key %q", prev, parts, k)
		}
		seen[k] = parts
		if strings.Count(k, ":") != 2 {
			t.Fatalf("key %q: a value's ':' was not escaped", k)
		}
	}
}

func TestPolicyValidation(t *testing.T) {
	bad := map[string]Config{
		"table not db.table":       {Tables: []string{"customers"}},
		"column not db.table.col":  {ExcludeColumns: []string{"customers"}},
		"template without key":     {KeyTemplate: "{db}.{table}"},
		"shared template no table": {KeyTemplate: "{db}:{pk}"},
		"shared template no sep":   {KeyTemplate: "{db}{table}:{pk}"},
		"shared template reserved": {KeyTemplate: "cloudsql-cache:{db}.{table}:{pk}"},
		"unclosed":                 {KeyTemplates: map[string]string{"a.b": "x:{id"}},
		"stray brace":              {KeyTemplates: map[string]string{"a.b": "x}:{id}"}},
		"pk and column":            {KeyTemplates: map[string]string{"a.b": "x:{pk}:{id}"}},
		"no literal prefix":        {KeyTemplates: map[string]string{"a.b": "{id}:x"}},
		"overlapping prefixes":     {KeyTemplates: map[string]string{"a.b": "user:{id}", "a.c": "user:{id}:x"}},
		"prefix of another":        {KeyTemplates: map[string]string{"a.b": "user{id}", "a.c": "users:{id}"}},
		"collides with default":    {Tables: []string{"a.b", "a.c"}, KeyTemplates: map[string]string{"a.c": "a.b:{id}"}},
		"reserved prefix":          {KeyTemplates: map[string]string{"a.b": "cloudsql-cache:{id}"}},
		"excluded version column":  {ExcludeColumns: []string{"a.b.v"}, VersionColumns: map[string]string{"a.b": "v"}},
		"version column bad table": {VersionColumns: map[string]string{"ab": "v"}},
	}
	for name, cfg := range bad {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: want an error", name)
		}
	}
	if _, err := New(Config{KeyTemplate: "cache:{db}:{table}:{pk}"}); err != nil {
		t.Errorf("valid shared template: %v", err)
	}
}

func TestIncludeAndExclude(t *testing.T) {
	p := mustPolicy(t, Config{Tables: []string{"inventory.customers"}, ExcludeColumns: []string{"inventory.customers.email"}})
	if _, ok := p.Table("inventory", "orders"); ok {
		t.Fatal("orders is not in the include-list")
	}
	tbl, ok := p.Table("inventory", "customers")
	if !ok {
		t.Fatal("customers is in the include-list")
	}
	ev, err := debezium.Decode(readFixture(t, "mysql-update-noschema-docs.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := string(tbl.RowJSON(ev.After)); got != `{"id":1004,"first_name":"Anne Marie","last_name":"Kretchmar"}` {
		t.Fatalf("row %s", got)
	}
}

func TestColumnVersion(t *testing.T) {
	good := map[string]uint64{
		`7`:                             7,
		`"42"`:                          42,
		`1700000000123456`:              1700000000123456,
		`"2023-11-14T22:13:20.123456Z"`: 1700000000123456,
		`"2023-11-14T23:13:20.5+01:00"`: 1700000000500000,
		`18446744073709551615`:          18446744073709551615,
	}
	for in, want := range good {
		if got, err := ColumnVersion(json.RawMessage(in)); err != nil || got != want {
			t.Errorf("%s → %d %v, want %d", in, got, err, want)
		}
	}
	for _, in := range []string{`null`, `-1`, `1.5`, `"soon"`, `"1969-12-31T23:59:59Z"`, `true`, `{}`} {
		if _, err := ColumnVersion(json.RawMessage(in)); err == nil {
			t.Errorf("%s: want an error", in)
		}
	}
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "debezium", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResolve(t *testing.T) {
	p := mustPolicy(t, Config{Epoch: 2, VersionColumns: map[string]string{"shop.orders": "updated_at"}})
	cases := []struct {
		file, key string
		kind      Kind
		rkey      string
		ver       rowcache.Version
		row       string
	}{
		{"mysql-create-noschema-serde-testfixture.json", `{"id":1004}`, Upsert, "inventory.customers:1004",
			rowcache.Version{Epoch: 2, File: 3, Pos: 154}, `{"id":1004,"first_name":"Anne","last_name":"Kretchmar","email":"annek@noanswer.org"}`},
		{"mysql-delete-noschema-docs.json", `{"id":1004}`, Delete, "inventory.customers:1004",
			rowcache.Version{Epoch: 2, File: 3, Pos: 805}, ``},
		{"mysql-truncate-noschema-docs.json", `default`, Truncate, "", rowcache.Version{Epoch: 2, File: 3, Pos: 484}, ``},
		{"crafted-decimal-schema.json", `{"id":7}`, Upsert, "shop.orders:7",
			rowcache.Version{Epoch: 2, Column: 1700000000123456, File: 12, Pos: 4711, Row: 1}, `{"id":7,"total":"12.34","big":"18446744073709551615","updated_at":1700000000123456}`},
	}
	for _, c := range cases {
		ev, err := debezium.Decode(readFixture(t, c.file))
		if err != nil {
			t.Fatal(err)
		}
		ch, ok, err := p.Resolve(ev, c.key)
		if err != nil || !ok {
			t.Fatalf("%s: %v %v", c.file, ok, err)
		}
		if ch.Kind != c.kind || ch.Key != c.rkey || ch.Version != c.ver || string(ch.Row) != c.row {
			t.Fatalf("%s: got %v %q %v %s", c.file, ch.Kind, ch.Key, ch.Version, ch.Row)
		}
	}
	ev, _ := debezium.Decode(readFixture(t, "mysql-update-noschema-docs.json"))
	for _, k := range []string{"", "default", `{"id":1005}`, `{"id":"1004"}`} {
		if _, _, err := p.Resolve(ev, k); err == nil {
			t.Errorf("ordering key %q: want an error", k)
		}
	}
}
