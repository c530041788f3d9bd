// Package tablepolicy is the per-table policy of the cache: which tables are cached, under which Redis
// key, without which columns, ordered by which version. It turns a decoded Debezium event into a cache
// Change (key, version, row JSON). The read path uses the same Policy to build keys, so services and the
// apply function always agree on where a row lives.
package tablepolicy

import (
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// MetaPrefix starts every key the cache keeps for itself (truncate floors); row keys may not use it.
const MetaPrefix = "cloudsql-cache:"

// Config says which tables are cached and how. Table names are "db.table", column names
// "db.table.column", matched exactly (case-sensitively, as MySQL on Linux names tables).
type Config struct {
	// Tables is the include-list; empty caches every table Debezium sends.
	Tables []string
	// ExcludeColumns are never written to the cache (e.g. PII), even when Debezium sends them.
	ExcludeColumns []string
	// KeyTemplate is the key of tables without their own template; "" means DefaultKeyTemplate.
	KeyTemplate string
	// KeyTemplates overrides the key template per table.
	KeyTemplates map[string]string
	// Epoch is the first component of every version. Raise it when binlog coordinates restart (the
	// database was restored from a backup or replaced), so the new source's changes win.
	Epoch uint64
}

// Policy is a validated Config. It is safe for concurrent use.
type Policy struct {
	include map[string]bool
	exclude map[string]map[string]bool
	def     *keyTemplate
	custom  map[string]*keyTemplate
	epoch   uint64
	tables  sync.Map // "db.table" → *Table
}

// New validates cfg. Its errors name the setting to fix.
func New(cfg Config) (*Policy, error) {
	p := &Policy{
		exclude: map[string]map[string]bool{},
		custom:  map[string]*keyTemplate{},
		epoch:   cfg.Epoch,
	}
	var errs []error
	if len(cfg.Tables) > 0 {
		p.include = map[string]bool{}
		for _, t := range cfg.Tables {
			if _, _, err := splitTable(t); err != nil {
				errs = append(errs, fmt.Errorf("tables: %w", err))
				continue
			}
			p.include[t] = true
		}
	}
	for _, c := range cfg.ExcludeColumns {
		i := strings.LastIndexByte(c, '.')
		if i < 0 {
			errs = append(errs, fmt.Errorf("exclude columns: %q is not db.table.column", c))
			continue
		}
		table, col := c[:i], c[i+1:]
		if _, _, err := splitTable(table); err != nil || col == "" {
			errs = append(errs, fmt.Errorf("exclude columns: %q is not db.table.column", c))
			continue
		}
		if p.exclude[table] == nil {
			p.exclude[table] = map[string]bool{}
		}
		p.exclude[table][col] = true
	}
	src := cfg.KeyTemplate
	if src == "" {
		src = DefaultKeyTemplate
	}
	def, err := parseTemplate(src)
	if err != nil {
		errs = append(errs, fmt.Errorf("key template: %w", err))
	} else if err := checkSharedTemplate(def); err != nil {
		errs = append(errs, fmt.Errorf("key template: %w", err))
	}
	p.def = def
	for table, src := range cfg.KeyTemplates {
		db, name, err := splitTable(table)
		if err != nil {
			errs = append(errs, fmt.Errorf("key templates: %w", err))
			continue
		}
		t, err := parseTemplate(src)
		if err != nil {
			errs = append(errs, fmt.Errorf("key templates: %s: %w", table, err))
			continue
		}
		bound := t.bind(db, name)
		if p.include == nil || p.include[table] {
			if err := (&keySpace{table: table, src: src, own: true, keys: bound.lang()}).checkAmbiguous(); err != nil {
				errs = append(errs, err)
			}
		}
		if bound.prefix() == "" {
			errs = append(errs, fmt.Errorf("key templates: %s: %q must start with literal text (or {db}/{table}) before the key columns, so the table's keys can be found for a truncate", table, src))
			continue
		}
		p.custom[table] = t
	}
	if len(errs) == 0 {
		errs = append(errs, p.checkKeys()...)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return p, nil
}

func splitTable(s string) (db, table string, err error) {
	i := strings.IndexByte(s, '.')
	if i <= 0 || i == len(s)-1 || strings.IndexByte(s[i+1:], '.') >= 0 {
		return "", "", fmt.Errorf("%q is not db.table", s)
	}
	return s[:i], s[i+1:], nil
}

// checkSharedTemplate makes sure a template used by many tables can give each table its own key space
// and SCAN pattern: it names {db} and {table}, before the key columns. Whether it does (separators
// that keep the names apart) is decided exactly by checkKeys.
func checkSharedTemplate(t *keyTemplate) error {
	seen := map[string]bool{}
	for _, s := range t.segs {
		if s.isLit {
			continue
		}
		if s.ph != "db" && s.ph != "table" {
			break
		}
		seen[s.ph] = true
	}
	if !seen["db"] || !seen["table"] {
		return fmt.Errorf("%q: a template shared by all tables must contain {db} and {table} before the key columns", t.src)
	}
	if strings.HasPrefix(t.src, MetaPrefix) {
		return fmt.Errorf("%q: keys may not start with %q, which the cache reserves", t.src, MetaPrefix)
	}
	return nil
}

// Table is the policy of one table.
type Table struct {
	DB, Name string
	// FloorKey holds the table's floor: the binlog position of its last truncate, completed snapshot or
	// row-removing DDL, below which every change is refused.
	FloorKey string
	// Pattern is a SCAN MATCH glob covering every key of the table. It may also match keys that are not
	// the table's (no other table's: New refuses that); OwnsKey tells them apart.
	Pattern string

	key     *keyTemplate
	keys    *keyLang
	exclude map[string]bool
	epoch   uint64
}

// Table returns the policy of db.table, and false if the table is not cached. No MySQL database or
// table has an empty name; such a table is never cached.
func (p *Policy) Table(db, table string) (*Table, bool) {
	if db == "" || table == "" {
		return nil, false
	}
	id := db + "." + table
	if p.include != nil && !p.include[id] {
		return nil, false
	}
	// Names may contain ".": "a.b"."c" and "a"."b.c" are different tables with the same id. The
	// settings cannot name either (splitTable), but the cache of tables must keep them apart.
	cacheID := EscapeName(db) + "." + EscapeName(table)
	if t, ok := p.tables.Load(cacheID); ok {
		return t.(*Table), true
	}
	tmpl := p.def
	if c, ok := p.custom[id]; ok {
		tmpl = c
	}
	bound := tmpl.bind(db, table)
	t := &Table{
		DB:       db,
		Name:     table,
		FloorKey: MetaPrefix + "truncated:" + EscapeName(db) + "." + EscapeName(table),
		Pattern:  globEscape(bound.prefix()) + "*",
		key:      bound,
		keys:     bound.lang(),
		exclude:  p.exclude[id],
		epoch:    p.epoch,
	}
	actual, _ := p.tables.LoadOrStore(cacheID, t)
	return actual.(*Table), true
}

// Key returns the Redis key of the row whose primary key is pk.
func (t *Table) Key(pk debezium.Row) (string, error) { return t.key.render(pk) }

// OwnsKey reports whether key is one of this table's keys: a key Key returns for some primary key. A
// sweep or a report that finds keys with Pattern checks each with OwnsKey, so it never touches a key
// of another table, of the cache itself, or of another application that only looks like the table's.
func (t *Table) OwnsKey(key string) bool { return t.keys.match(key) }

// KeyNamesColumns reports whether the table's key template names key columns (rather than using
// {pk}), so that building a key needs the columns' names, not only their values in key order.
func (t *Table) KeyNamesColumns() bool { return len(t.key.cols) > 0 }

// RowJSON encodes a row image as the cached JSON object, without the excluded columns.
func (t *Table) RowJSON(row debezium.Row) []byte {
	var skip func(string) bool
	if len(t.exclude) > 0 {
		skip = func(name string) bool { return t.exclude[name] }
	}
	return row.AppendJSON(make([]byte, 0, 256), skip)
}

// Version is the version of a change of this table at src: the epoch and the change's binlog
// coordinates. Its Row is the change's transaction total_order when the event carries transaction
// metadata (provide.transaction.metadata=true): with binlog_transaction_compression every change of a
// transaction has the compressed payload's position and row numbers restart in each inner event, so
// (file, pos, row) can repeat within a key, while (file, pos, total_order) is unique and ordered. Without
// it, Row is source.row.
func (t *Table) Version(ev *debezium.Event) rowcache.Version {
	src := ev.Source
	v := rowcache.Version{Epoch: t.epoch, File: src.FileSeq, Pos: src.Pos, Row: src.Row}
	if ev.Transaction != nil {
		v.Row = ev.Transaction.TotalOrder
	}
	return v
}
