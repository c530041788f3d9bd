// Package verify is the drift checker: it compares a database's tables with the cache row by row and
// reports rows missing from the cache, cached rows whose primary key no longer exists (extra), and rows
// whose cached JSON differs from the database. It reads the database in primary-key order, in bounded
// chunks (keyset pagination) with a pause between them, so it can run against production. Rows that
// change while it runs can look different for a moment; each difference found is checked again after a
// settle delay and reported only if it persists.
package verify

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// Config configures a check.
type Config struct {
	// DB is opened with a DSN passed through mysqlrow.CheckDSN.
	DB     *sql.DB
	Redis  redis.UniversalClient
	Policy *tablepolicy.Policy
	// Tables are the db.table names to check.
	Tables []string
	// ChunkSize is the number of rows per query; 0 means 500.
	ChunkSize int
	// Pause between chunks bounds the load on the database; 0 means none.
	Pause time.Duration
	// Settle is how long to wait before checking a difference again; 0 means 2s.
	Settle time.Duration
	// MaxDiffs bounds the differences kept in the report (all are counted); 0 means 100.
	MaxDiffs int
}

// Kind of a difference.
type Kind string

const (
	Missing   Kind = "missing"   // in the database, not in the cache (or a tombstone)
	Extra     Kind = "extra"     // a live row in the cache whose key is not in the database
	Different Kind = "different" // cached JSON differs from the database row
)

// Diff is one difference.
type Diff struct {
	Kind  Kind
	Table string
	Key   string
	DB    string // the row JSON from the database ("" for extra)
	Cache string // the cached value ("" for missing)
}

// TableReport counts one table.
type TableReport struct {
	Table                     string
	Rows                      int
	Missing, Extra, Different int
	Skipped                   string // why the table was not checked, if it was not
}

// Report is the result of a check.
type Report struct {
	Tables []TableReport
	Diffs  []Diff
}

// Drift is the number of differences found.
func (r *Report) Drift() int {
	n := 0
	for _, t := range r.Tables {
		n += t.Missing + t.Extra + t.Different
	}
	return n
}

// Run checks every table of cfg.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.DB == nil || cfg.Redis == nil || cfg.Policy == nil {
		return nil, errors.New("verify: DB, Redis and Policy are required")
	}
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = 500
	}
	if cfg.Settle == 0 {
		cfg.Settle = 2 * time.Second
	}
	if cfg.MaxDiffs <= 0 {
		cfg.MaxDiffs = 100
	}
	rep := &Report{}
	for _, name := range cfg.Tables {
		db, table, ok := strings.Cut(name, ".")
		if !ok || db == "" || table == "" {
			return nil, fmt.Errorf("verify: %q is not db.table", name)
		}
		tr, diffs, err := checkTable(ctx, cfg, db, table)
		if err != nil {
			return nil, err
		}
		rep.Tables = append(rep.Tables, tr)
		for _, d := range diffs {
			if len(rep.Diffs) < cfg.MaxDiffs {
				rep.Diffs = append(rep.Diffs, d)
			}
		}
	}
	return rep, nil
}

type candidate struct {
	key  string
	text []*string // the primary key as the server printed it
}

func checkTable(ctx context.Context, cfg Config, db, name string) (TableReport, []Diff, error) {
	tr := TableReport{Table: db + "." + name}
	t, err := mysqlrow.LoadTable(ctx, cfg.DB, db, name)
	if err != nil {
		return tr, nil, fmt.Errorf("verify: %w", err)
	}
	pt, ok := cfg.Policy.Table(db, name)
	if !ok {
		tr.Skipped = "not in CACHE_TABLES"
		return tr, nil, nil
	}
	if len(t.PrimaryKey) == 0 {
		tr.Skipped = "no primary key (such rows cannot be cached)"
		return tr, nil, nil
	}
	pkIdx := make([]int, len(t.PrimaryKey))
	for i, k := range t.PrimaryKey {
		for j, c := range t.Columns {
			if c.Name == k {
				pkIdx[i] = j
			}
		}
	}
	var pkCols []string
	for _, k := range t.PrimaryKey {
		pkCols = append(pkCols, mysqlrow.QuoteIdent(k))
	}
	order := strings.Join(pkCols, ",")
	marks := strings.TrimSuffix(strings.Repeat("?,", len(pkCols)), ",")
	first := "SELECT " + t.SelectList() + " FROM " + t.QualifiedName() + " ORDER BY " + order + fmt.Sprintf(" LIMIT %d", cfg.ChunkSize)
	next := "SELECT " + t.SelectList() + " FROM " + t.QualifiedName() + " WHERE (" + order + ") > (" + marks + ") ORDER BY " + order + fmt.Sprintf(" LIMIT %d", cfg.ChunkSize)

	seen := map[string]bool{}
	var suspects []candidate
	var last []any
	for {
		q, args := first, []any(nil)
		if last != nil {
			q, args = next, last
		}
		rows, err := cfg.DB.QueryContext(ctx, q, args...)
		if err != nil {
			return tr, nil, fmt.Errorf("verify: read %s: %w", tr.Table, err)
		}
		var keys []string
		var want [][]byte
		var texts [][]*string
		for rows.Next() {
			row, text, err := t.ScanRowText(rows)
			if err != nil {
				rows.Close()
				return tr, nil, fmt.Errorf("verify: %w", err)
			}
			pk, _ := t.Key(row)
			key, err := pt.Key(pk)
			if err != nil {
				rows.Close()
				return tr, nil, fmt.Errorf("verify: key of a %s row: %w", tr.Table, err)
			}
			keys = append(keys, key)
			want = append(want, pt.RowJSON(row))
			texts = append(texts, text)
		}
		err = rows.Err()
		rows.Close()
		if err != nil {
			return tr, nil, fmt.Errorf("verify: read %s: %w", tr.Table, err)
		}
		if len(keys) == 0 {
			break
		}
		tr.Rows += len(keys)
		vals, err := cfg.Redis.MGet(ctx, keys...).Result()
		if err != nil {
			return tr, nil, fmt.Errorf("verify: redis MGET: %w", err)
		}
		for i, k := range keys {
			seen[k] = true
			if !same(vals[i], want[i], t) {
				pkText := make([]*string, len(pkIdx))
				for j, idx := range pkIdx {
					pkText[j] = texts[i][idx]
				}
				suspects = append(suspects, candidate{key: k, text: pkText})
			}
		}
		lastText := texts[len(texts)-1]
		last = make([]any, len(pkIdx))
		for j, idx := range pkIdx {
			if lastText[idx] == nil {
				return tr, nil, fmt.Errorf("verify: %s has a NULL primary-key value", tr.Table)
			}
			last[j] = *lastText[idx] // a string, so the comparison uses the column's collation
		}
		if len(keys) < cfg.ChunkSize {
			break
		}
		if cfg.Pause > 0 {
			select {
			case <-time.After(cfg.Pause):
			case <-ctx.Done():
				return tr, nil, ctx.Err()
			}
		}
	}

	// Cached live rows of the table whose key the database did not return.
	var extras []string
	var cursor uint64
	for {
		ks, c, err := cfg.Redis.Scan(ctx, cursor, pt.Pattern, 1000).Result()
		if err != nil {
			return tr, nil, fmt.Errorf("verify: redis SCAN: %w", err)
		}
		for _, k := range ks {
			if !seen[k] && !strings.HasPrefix(k, tablepolicy.MetaPrefix) {
				extras = append(extras, k)
			}
		}
		if cursor = c; cursor == 0 {
			break
		}
	}
	sort.Strings(extras)

	if len(suspects) == 0 && len(extras) == 0 {
		return tr, nil, nil
	}
	// Changes in flight make rows look different for a moment: look again after the settle delay.
	select {
	case <-time.After(cfg.Settle):
	case <-ctx.Done():
		return tr, nil, ctx.Err()
	}
	var diffs []Diff
	where := strings.Join(pkCols, " = ? AND ") + " = ?"
	one := "SELECT " + t.SelectList() + " FROM " + t.QualifiedName() + " WHERE " + where
	for _, s := range suspects {
		args := make([]any, len(s.text))
		for i, v := range s.text {
			args[i] = *v
		}
		row, err := readOne(ctx, cfg.DB, t, one, args)
		if err != nil {
			return tr, nil, err
		}
		cached, err := cfg.Redis.Get(ctx, s.key).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return tr, nil, fmt.Errorf("verify: redis GET: %w", err)
		}
		var have any = cached
		if errors.Is(err, redis.Nil) {
			have = nil
		}
		switch {
		case row == nil:
			// Deleted meanwhile: an extra if the cache still has it live.
			if e, ok := live(have); ok {
				tr.Extra++
				diffs = append(diffs, Diff{Kind: Extra, Table: tr.Table, Key: s.key, Cache: e})
			}
		case same(have, pt.RowJSON(row), t):
		default:
			d := Diff{Table: tr.Table, Key: s.key, DB: string(pt.RowJSON(row))}
			if e, ok := live(have); ok {
				d.Kind, d.Cache = Different, e
				tr.Different++
			} else {
				d.Kind = Missing
				if have != nil {
					d.Cache = have.(string)
				}
				tr.Missing++
			}
			diffs = append(diffs, d)
		}
	}
	for _, k := range extras {
		v, err := cfg.Redis.Get(ctx, k).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return tr, nil, fmt.Errorf("verify: redis GET: %w", err)
		}
		e, ok := live(v)
		if !ok {
			continue
		}
		// Inserted since the pass? Look the cached row's key up in the database.
		exists, err := existsInDB(ctx, cfg.DB, t, pt, one, e, k)
		if err != nil {
			return tr, nil, err
		}
		if !exists {
			tr.Extra++
			diffs = append(diffs, Diff{Kind: Extra, Table: tr.Table, Key: k, Cache: e})
		}
	}
	return tr, diffs, nil
}

// same reports whether the cached value v holds the row JSON want (mysqlrow.Table.SameRow: byte for
// byte, but for the way a snapshot writes TIMESTAMP values).
func same(v any, want []byte, t *mysqlrow.Table) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	e, err := rowcache.Decode([]byte(s))
	return err == nil && !e.Deleted() && t.SameRow(e.Row, want)
}

// live returns the cached value v if it is a live row (not absent, not a tombstone).
func live(v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		return "", false
	}
	e, err := rowcache.Decode([]byte(s))
	if err != nil {
		return s, true // not ours, but sits in the table's key space: report it
	}
	return s, !e.Deleted()
}

func readOne(ctx context.Context, db *sql.DB, t *mysqlrow.Table, q string, args []any) (debezium.Row, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("verify: read %s.%s: %w", t.DB, t.Name, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	return t.ScanRow(rows)
}

// existsInDB looks up the primary key stored in a cached row. Key values that are JSON strings or
// numbers are passed as they are; other types (temporal keys) are taken to exist only if the key the
// database pass rendered matches, which it did not.
func existsInDB(ctx context.Context, db *sql.DB, t *mysqlrow.Table, pt *tablepolicy.Table, q, cached, key string) (bool, error) {
	e, err := rowcache.Decode([]byte(cached))
	if err != nil {
		return false, nil
	}
	var row map[string]json.RawMessage
	if err := json.Unmarshal(e.Row, &row); err != nil {
		return false, nil
	}
	args := make([]any, 0, len(t.PrimaryKey))
	for _, k := range t.PrimaryKey {
		v, ok := row[k]
		if !ok {
			return false, nil
		}
		s := strings.TrimSpace(string(v))
		if strings.HasPrefix(s, `"`) {
			var str string
			if err := json.Unmarshal(v, &str); err != nil {
				return false, nil
			}
			s = str
		}
		args = append(args, s)
	}
	found, err := readOne(ctx, db, t, q, args)
	if err != nil || found == nil {
		return false, err
	}
	pk, _ := t.Key(found)
	k2, err := pt.Key(pk)
	return err == nil && k2 == key, nil
}
