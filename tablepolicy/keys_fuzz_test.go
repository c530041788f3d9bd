package tablepolicy

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

// choices turns fuzz input into choices, so that the fuzzer's mutations change one choice at a time.
type choices struct{ data []byte }

func (c *choices) pick(n int) int {
	if len(c.data) == 0 {
		return 0
	}
	b := c.data[0]
	c.data = c.data[1:]
	return int(b) % n
}

func (c *choices) of(list []string) string { return list[c.pick(len(list))] }

var (
	fuzzLits = []string{":", ".", "x", "a", "-", "_", "~", "%", "%%", "%3A", "%2E", "%C3", "#", "/", "s.t:", "a.b:",
		"cloudsql-cache:", "c", "x:", "order"}
	fuzzPlaceholders = []string{"{db}", "{table}", "{pk}", "{a}", "{b}"}
	// Names a configuration may give (no "."), and more a table may have.
	fuzzNames  = []string{"a", "b", "s", "t", "x", "ab", "c", "cloudsql-cache", "3A", "%", "a:b", "-", "é"}
	fuzzNames2 = append([]string{"a.b", "s.t", ".", ":", "%2E"}, fuzzNames...)
	fuzzValues = []string{`""`, `"a"`, `"1"`, `"-"`, `"."`, `":"`, `"%"`, `"%3A"`, `"a-1"`, `"1-2"`, `"x.y"`, `"é"`,
		"\"\xff\"", `"3A"`, `"a:b"`, `"_"`, `"s.t:1"`, `"cloudsql-cache:"`, `1`, `-1.5`, `true`, `"a b"`}
)

// template is a random template: pieces in any order, or (more often) a literal prefix, maybe the names,
// then the key, the shape of templates New accepts.
func (c *choices) template() string {
	var b strings.Builder
	if c.pick(3) == 0 {
		for n := 1 + c.pick(5); n > 0; n-- {
			if c.pick(2) == 0 {
				b.WriteString(c.of(fuzzLits))
			} else {
				b.WriteString(c.of(fuzzPlaceholders))
			}
		}
		return b.String()
	}
	b.WriteString(c.of(fuzzLits))
	if c.pick(2) == 0 {
		b.WriteString(c.of([]string{"{db}", "{table}"}) + c.of(fuzzLits))
	}
	if c.pick(3) == 0 {
		b.WriteString("{db}" + c.of(fuzzLits) + "{table}" + c.of(fuzzLits))
	}
	switch c.pick(3) {
	case 0:
		b.WriteString("{pk}")
	case 1:
		b.WriteString("{a}")
	default:
		b.WriteString(c.of([]string{"{a}", "{b}"}) + c.of(fuzzLits) + c.of([]string{"{a}", "{b}"}))
	}
	if c.pick(3) == 0 {
		b.WriteString(c.of(fuzzLits))
	}
	return b.String()
}

func (c *choices) table(names []string) (string, string) { return c.of(names), c.of(names) }

func (c *choices) config() Config {
	var cfg Config
	if c.pick(3) == 0 {
		cfg.KeyTemplate = c.template()
	}
	if c.pick(2) == 0 {
		for n := 1 + c.pick(3); n > 0; n-- {
			db, t := c.table(fuzzNames)
			cfg.Tables = append(cfg.Tables, db+"."+t)
		}
	}
	for n := c.pick(4); n > 0; n-- {
		if cfg.KeyTemplates == nil {
			cfg.KeyTemplates = map[string]string{}
		}
		id := ""
		if len(cfg.Tables) > 0 && c.pick(2) == 0 {
			id = cfg.Tables[c.pick(len(cfg.Tables))]
		} else {
			db, t := c.table(fuzzNames)
			id = db + "." + t
		}
		cfg.KeyTemplates[id] = c.template()
	}
	return cfg
}

// FuzzKeyTemplates: whenever New accepts a configuration, two different (table, primary key) pairs
// never get one key, each table owns exactly its own keys (OwnsKey agrees with the definition, also on
// near misses), no key is reserved and no table's SCAN pattern reaches another table's key. Whenever New
// refuses one for its keys, the example it gives is a real collision.
func FuzzKeyTemplates(f *testing.F) {
	for _, seed := range []string{
		"", "\x00\x01\x00", "\x00\x00\x01\x01\x02\x01\x03", "\x01\x00\x00\x01\x01\x00\x00\x01\x01\x01\x05",
		"\x02\x00\x01\x01\x05\x02\x01\x00\x04\x01\x01\x02\x01\x03\x07", "\x03\x01\x00\x02\x02\x00\x06\x01\x03",
		"\x00\x05\x05\x01\x04\x02\x04\x01\x03\x00\x08\x01\x02",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		c := &choices{data: data}
		cfg := c.config()
		p, err := New(cfg)
		if err != nil {
			checkRefusal(t, cfg, err)
			return
		}
		// Its canonical form is accepted, canonical itself, and (below) gives every row the same key.
		canon, err := New(p.Config())
		if err != nil {
			t.Fatalf("%+v: canonical %s refused: %v", cfg, p.Canonical(), err)
		}
		if string(canon.Canonical()) != string(p.Canonical()) {
			t.Fatalf("%+v: canonical %s is %s once read back", cfg, p.Canonical(), canon.Canonical())
		}
		// The tables to produce keys for: the listed ones, or the ones with templates and more.
		type tableID struct{ db, name string }
		var ids []tableID
		addID := func(db, name string) {
			for _, id := range ids {
				if id == (tableID{db, name}) {
					return
				}
			}
			ids = append(ids, tableID{db, name})
		}
		for _, s := range append(append([]string(nil), cfg.Tables...), keysOf(cfg.KeyTemplates)...) {
			db, name, _ := splitTable(s)
			addID(db, name)
		}
		if len(cfg.Tables) == 0 {
			for n := 2 + c.pick(4); n > 0; n-- {
				addID(c.table(fuzzNames2))
			}
		}
		var tables []*Table
		for _, id := range ids {
			tbl, ok := p.Table(id.db, id.name)
			if ok != cached(cfg, id.db, id.name) {
				t.Fatalf("%s.%s: cached %v", id.db, id.name, ok)
			}
			if ct, cok := canon.Table(id.db, id.name); cok != ok || (ok && ct.Pattern != tbl.Pattern) {
				t.Fatalf("%+v: %s.%s: canonical policy caches it %v (pattern %v), the original %v", cfg, id.db, id.name, cok, ct, ok)
			}
			if ok {
				tables = append(tables, tbl)
			}
		}
		type row struct {
			table  *Table
			values string
		}
		seen := map[string]row{}
		for _, tbl := range tables {
			cols := tbl.key.cols
			if len(cols) == 0 {
				for n := 1 + c.pick(3); n > 0; n-- {
					cols = append(cols, fmt.Sprint("k", n))
				}
			}
			for n := 1 + c.pick(6); n > 0; n-- {
				var pk debezium.Row
				var vals []string
				for _, col := range cols {
					v := c.of(fuzzValues)
					pk = append(pk, debezium.Column{Name: col, Value: json.RawMessage(v)})
					kv, _ := KeyValue(json.RawMessage(v))
					vals = append(vals, kv)
				}
				k, err := tbl.Key(pk)
				if err != nil {
					t.Fatalf("%s.%s key of %s: %v", tbl.DB, tbl.Name, pk.AppendJSON(nil, nil), err)
				}
				ct, _ := canon.Table(tbl.DB, tbl.Name)
				if ck, err := ct.Key(pk); err != nil || ck != k {
					t.Fatalf("%+v: %s.%s key of %s is %q, under the canonical policy %q (%v)", cfg, tbl.DB, tbl.Name, pk.AppendJSON(nil, nil), k, ck, err)
				}
				values, _ := json.Marshal(vals)
				if prev, ok := seen[k]; ok && (prev.table != tbl || prev.values != string(values)) {
					t.Fatalf("%+v: %s.%s %s and %s.%s %s share key %q", cfg, prev.table.DB, prev.table.Name, prev.values, tbl.DB, tbl.Name, values, k)
				}
				seen[k] = row{tbl, string(values)}
				if strings.HasPrefix(k, MetaPrefix) {
					t.Fatalf("%+v: %s.%s key %q is reserved", cfg, tbl.DB, tbl.Name, k)
				}
				for _, o := range tables {
					if o.OwnsKey(k) != (o == tbl) {
						t.Fatalf("%+v: %s.%s OwnsKey(%q) = %v, the key of %s.%s %s", cfg, o.DB, o.Name, k, o.OwnsKey(k), tbl.DB, tbl.Name, values)
					}
					if o != tbl && strings.HasPrefix(k, o.key.prefix()) {
						t.Fatalf("%+v: %s.%s's pattern %q matches %q, the key of %s.%s", cfg, o.DB, o.Name, o.Pattern, k, tbl.DB, tbl.Name)
					}
				}
				// A near miss: one byte changed, added or removed.
				m := []byte(k)
				i := c.pick(len(m) + 1)
				near := "%:3Aa.\xff -"
				b := near[c.pick(len(near))]
				switch c.pick(3) {
				case 0:
					m = append(m[:i], append([]byte{b}, m[i:]...)...)
				case 1:
					if i < len(m) {
						m = append(m[:i], m[i+1:]...)
					}
				default:
					if i < len(m) {
						m[i] = b
					}
				}
				for _, o := range []*Table{tbl, tables[c.pick(len(tables))]} {
					if got, want := o.OwnsKey(string(m)), producible(o, string(m)); got != want {
						t.Fatalf("%+v: %s.%s OwnsKey(%q) = %v, want %v", cfg, o.DB, o.Name, m, got, want)
					}
				}
			}
		}
	})
}

func keysOf(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
