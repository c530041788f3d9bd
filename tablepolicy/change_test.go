package tablepolicy

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
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

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "testdata", "debezium", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestResolve(t *testing.T) {
	p := mustPolicy(t, Config{Epoch: 2})
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
			rowcache.Version{Epoch: 2, File: 12, Pos: 4711, Row: 1}, `{"id":7,"total":"12.34","big":"18446744073709551615","updated_at":1700000000123456}`},
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

// With binlog_transaction_compression=ON every change of a transaction carries the compressed payload's
// pos and row numbers restart in each inner rows event, so an INSERT and a DELETE of one key in one
// transaction both arrive with (file, pos, row) = (4, 4321, 0). Their transaction blocks' total_order
// (1 and 2) makes their versions distinct and ordered.
func TestCompressedTransactionVersions(t *testing.T) {
	p := mustPolicy(t, Config{})
	ev := func(op, before, after string, order int) *debezium.Event {
		t.Helper()
		e, err := debezium.Decode([]byte(`{"before":` + before + `,"after":` + after + `,"source":{"version":"3.6.1.Final","connector":"mysql","name":"local","ts_ms":1700000000000,"snapshot":"false","db":"shop","sequence":null,"table":"t","server_id":1,"gtid":"3e11fa47-71ca-11e1-9e33-c80aa9429562:23","file":"mysql-bin.000004","pos":4321,"row":0,"thread":9,"query":null},"transaction":{"id":"3e11fa47-71ca-11e1-9e33-c80aa9429562:23","total_order":` + strconv.Itoa(order) + `,"data_collection_order":` + strconv.Itoa(order) + `},"op":"` + op + `","ts_ms":1700000000100}`))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	ins, err1 := resolve(p, ev("c", "null", `{"id":1}`, 1))
	del, err2 := resolve(p, ev("d", `{"id":1}`, "null", 2))
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	if ins.Version != (rowcache.Version{File: 4, Pos: 4321, Row: 1}) || del.Version != (rowcache.Version{File: 4, Pos: 4321, Row: 2}) {
		t.Fatalf("versions %v and %v", ins.Version, del.Version)
	}
}

func resolve(p *Policy, ev *debezium.Event) (Change, error) {
	c, _, err := p.Resolve(ev, `{"id":1}`)
	return c, err
}
