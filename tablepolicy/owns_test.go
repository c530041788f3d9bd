package tablepolicy

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

// producible is the definition OwnsKey must meet, computed the slow way: key is tbl's iff some reading
// of key as the template's placeholder texts decodes to values that Key renders back to key.
func producible(tbl *Table, key string) bool {
	segs := tbl.key.segs
	var try func(i, pos int, row debezium.Row) bool
	try = func(i, pos int, row debezium.Row) bool {
		if i == len(segs) {
			if pos != len(key) {
				return false
			}
			k, err := tbl.key.render(row)
			return err == nil && k == key
		}
		s := segs[i]
		if s.isLit {
			return strings.HasPrefix(key[pos:], s.lit) && try(i+1, pos+len(s.lit), row)
		}
		for end := pos; end <= len(key); end++ {
			text := key[pos:end]
			var vals []string
			if s.ph == "pk" {
				vals = strings.Split(text, ":")
			} else {
				vals = []string{text}
			}
			r := append(debezium.Row(nil), row...)
			for j, v := range vals {
				b, _ := json.Marshal(looseUnescape(v))
				name := s.ph
				if s.ph == "pk" {
					name = fmt.Sprint("k", j)
				}
				r = append(r, debezium.Column{Name: name, Value: b})
			}
			if try(i+1, end, r) {
				return true
			}
		}
		return false
	}
	return try(0, 0, nil)
}

// looseUnescape decodes every %XX (any case) and leaves anything else as it is.
func looseUnescape(s string) string {
	var b []byte
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			var x byte
			if _, err := fmt.Sscanf(s[i+1:i+3], "%02x", &x); err == nil {
				b = append(b, x)
				i += 2
				continue
			}
		}
		b = append(b, s[i])
	}
	return string(b)
}

func TestOwnsKey(t *testing.T) {
	p := mustPolicy(t, Config{KeyTemplates: map[string]string{
		"shop.orders": "order:{tenant}:{id}",
		"shop.items":  "{table}#{pk}",
	}})
	cust, _ := p.Table("inventory", "customers")
	orders, _ := p.Table("shop", "orders")
	items, _ := p.Table("shop", "items")
	other, _ := p.Table("inventory", "orders")
	cases := []struct {
		tbl  *Table
		key  string
		want bool
	}{
		{cust, "inventory.customers:1004", true},
		{cust, "inventory.customers:7:2", true}, // a two-column key
		{cust, "inventory.customers:", true},    // an empty string key
		{cust, "inventory.customers::", true},
		{cust, "inventory.customers:a%3Ab", true},
		{cust, "inventory.customers:h%C3%A9llo", true},
		{cust, "inventory.customers", false},
		{cust, "inventory.customers:a b", false},       // a raw space is always escaped
		{cust, "inventory.customers:a%3ab", false},     // lowercase hex is never produced
		{cust, "inventory.customers:%41", false},       // "A" is never escaped
		{cust, "inventory.customers:%2E", false},       // nor is "." in a value
		{cust, "inventory.customers:%3", false},        // a cut escape
		{cust, "inventory.customers:%FF", false},       // a value is valid UTF-8
		{cust, "inventory.customers:%C3", false},       // a cut character
		{cust, "inventory.customers:%ED%A0%80", false}, // a surrogate
		{cust, "inventory.customers:%C0%AF", false},    // an overlong form
		{cust, "inventory.orders:1", false},            // another table's
		{cust, "cloudsql-cache:truncated:inventory.customers", false},
		{other, "inventory.orders:1", true},
		{orders, "order:acme:9", true},
		{orders, "order:acme:9:1", false}, // three values for two columns
		{orders, "order:acme", false},
		{items, "items#x.y", true},
		{items, "items#x.y:1", true},
		{items, "items#", true},
		{items, "itemsx", false},
	}
	for _, c := range cases {
		if got := c.tbl.OwnsKey(c.key); got != c.want {
			t.Errorf("%s.%s OwnsKey(%q) = %v", c.tbl.DB, c.tbl.Name, c.key, got)
		}
		if got := producible(c.tbl, c.key); got != c.want {
			t.Errorf("test oracle: %s.%s producible(%q) = %v", c.tbl.DB, c.tbl.Name, c.key, got)
		}
	}
}

// "a.b"."c" and "a"."b.c" are two tables: they never share a Table, keys or a floor.
func TestTablesWithDotsInTheirNames(t *testing.T) {
	p := mustPolicy(t, Config{})
	ab, _ := p.Table("a.b", "c")
	bc, _ := p.Table("a", "b.c")
	ka, kb := key(t, ab, `{"id":1}`), key(t, bc, `{"id":1}`)
	if ka == kb || ab.FloorKey == bc.FloorKey || ab.DB != "a.b" || bc.DB != "a" {
		t.Fatalf("keys %q %q, floors %q %q, dbs %q %q", ka, kb, ab.FloorKey, bc.FloorKey, ab.DB, bc.DB)
	}
	if !ab.OwnsKey(ka) || ab.OwnsKey(kb) || !bc.OwnsKey(kb) || bc.OwnsKey(ka) {
		t.Fatalf("OwnsKey does not tell %q from %q", ka, kb)
	}
	for _, n := range [][2]string{{"", "t"}, {"d", ""}} {
		if _, ok := p.Table(n[0], n[1]); ok {
			t.Errorf("table %q.%q: no table has an empty name", n[0], n[1])
		}
	}
}

// KeyValue returns valid UTF-8 whatever it is given: the key languages rely on it.
func TestKeyValueIsValidUTF8(t *testing.T) {
	for _, raw := range []string{"\"\xff\"", "\"a\xc3\"", `"\ud800"`, `"\udc00x"`, `"é"`} {
		v, err := KeyValue(json.RawMessage(raw))
		if err != nil || !utf8.ValidString(v) {
			t.Errorf("KeyValue(%q) = %q, %v", raw, v, err)
		}
	}
}
