package verify

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// extras is the extras pass: the table's cached keys, a batch at a time, each live row's primary key
// looked up in the database in one query per batch. Memory holds one batch.
func (c *tableCheck) extras(ctx context.Context) error {
	cfg := &c.r.cfg
	tr := &c.st.Report
	if !cfg.extras() {
		tr.ExtrasSkipped = "a key range checks no extras (run once without -from/-to, or with -extras on)"
		return nil
	}
	for _, name := range c.t.PrimaryKey {
		col, _ := c.t.Column(name)
		if !argSupported(col) {
			tr.ExtrasSkipped = fmt.Sprintf("primary-key column %s is %s: its cached value cannot be looked up in the database", name, col.ColumnType)
			return nil
		}
	}
	dbsize, err := cfg.Redis.DBSize(ctx).Result()
	if err != nil {
		return fmt.Errorf("verify: redis DBSIZE: %w", err)
	}
	m := c.r.meter(tr.Table, phaseExtras, tr.Keys)
	reported := map[string]bool{} // SCAN may return a key twice; only extras are kept
	var batch []string
	cursor := c.st.Cursor
	for {
		// COUNT is how much of the keyspace Redis walks per call: about a batch of keys for a table that
		// holds most of them.
		keys, next, err := cfg.Redis.Scan(ctx, cursor, c.pt.Pattern, int64(cfg.ChunkSize)).Result()
		if err != nil {
			return fmt.Errorf("verify: redis SCAN: %w", err)
		}
		for _, k := range keys {
			if strings.HasPrefix(k, tablepolicy.MetaPrefix) || !cfg.Owner(c.pt, k) {
				continue
			}
			tr.Keys++
			// The key of a row the rows pass read is no extra (unless a false positive hides one).
			if c.filter != nil && c.filter.TestString(k) {
				continue
			}
			batch = append(batch, k)
		}
		for len(batch) >= cfg.ChunkSize || (next == 0 && len(batch) > 0) {
			n := min(len(batch), cfg.ChunkSize)
			if err := c.extrasBatch(ctx, batch[:n], reported); err != nil {
				return err
			}
			batch = batch[n:]
		}
		cursor = next
		if len(batch) == 0 {
			// Every key the SCAN returned so far is checked or queued: the cursor can be resumed from.
			c.st.Cursor = cursor
			if err := c.settle(ctx, false); err != nil {
				return err
			}
			if err := c.r.save(false); err != nil {
				return err
			}
		}
		m.tick(tr.Keys, scanFraction(cursor, dbsize), *tr, false)
		if cursor == 0 {
			break
		}
	}
	if err := c.settle(ctx, true); err != nil {
		return err
	}
	if c.filter != nil {
		tr.FilterBytes = int64(c.filter.Cap() / 8)
		tr.FalsePositive = falsePositive(c.filter, c.st.FilterKeys)
	}
	m.tick(tr.Keys, 1, *tr, true)
	return nil
}

// extrasBatch looks up the primary keys of the live rows cached under keys and queues those the
// database does not have.
func (c *tableCheck) extrasBatch(ctx context.Context, keys []string, reported map[string]bool) error {
	tr := &c.st.Report
	if err := c.r.wait(ctx, len(keys)); err != nil {
		return err
	}
	vals, err := c.r.cfg.Redis.MGet(ctx, keys...).Result()
	if err != nil {
		return fmt.Errorf("verify: redis MGET: %w", err)
	}
	tr.Looked += int64(len(keys))
	var probe []string
	var args [][]any
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue // removed since the SCAN
		}
		e, err := rowcache.Decode([]byte(s))
		if err != nil {
			tr.Foreign++
			continue
		}
		if e.Deleted() {
			continue
		}
		a, ok := c.pkArgs(e.Row)
		if !ok {
			tr.Unchecked++
			continue
		}
		probe = append(probe, keys[i])
		args = append(args, a)
	}
	if len(probe) == 0 {
		return nil
	}
	found, err := c.lookup(ctx, args)
	if err != nil {
		return err
	}
	now := time.Now()
	for _, k := range probe {
		if !found[k] && !reported[k] {
			reported[k] = true
			c.pending = append(c.pending, &suspect{Key: k, found: now})
		}
	}
	return nil
}

// lookup finds the rows with the given primary keys in one query and returns the keys the policy
// gives them. Comparing keys rather than values is what makes a collation that folds case or pads
// spaces safe: the database may return 'alice' for 'Alice', whose key differs.
func (c *tableCheck) lookup(ctx context.Context, pks [][]any) (map[string]bool, error) {
	var in strings.Builder
	flat := make([]any, 0, len(pks)*len(c.pkCols))
	one := marks(len(c.pkCols))
	for i, pk := range pks {
		if i > 0 {
			in.WriteByte(',')
		}
		in.WriteString(one)
		flat = append(flat, pk...)
	}
	q := "SELECT " + strings.Join(c.pkCols, ",") + " FROM " + c.t.QualifiedName() + " WHERE " + tuple(c.pkCols) + " IN (" + in.String() + ")"
	rows, err := c.r.cfg.DB.QueryContext(ctx, q, flat...)
	if err != nil {
		return nil, fmt.Errorf("verify: look up %s: %w", c.st.Table(), err)
	}
	defer rows.Close()
	found := make(map[string]bool, len(pks))
	raw := make([]any, len(c.pkCols))
	vals := make([][]byte, len(c.pkCols))
	for i := range raw {
		raw[i] = &vals[i]
	}
	for rows.Next() {
		if err := rows.Scan(raw...); err != nil {
			return nil, fmt.Errorf("verify: look up %s: %w", c.st.Table(), err)
		}
		pk := make(debezium.Row, len(c.t.PrimaryKey))
		for i, name := range c.t.PrimaryKey {
			col, _ := c.t.Column(name)
			v, err := col.FromText(vals[i], vals[i] == nil)
			if err != nil {
				return nil, fmt.Errorf("verify: %s: %w", c.st.Table(), err)
			}
			pk[i] = debezium.Column{Name: name, Value: v}
		}
		key, err := c.pt.Key(pk)
		if err != nil {
			return nil, fmt.Errorf("verify: key of a %s row: %w", c.st.Table(), err)
		}
		found[key] = true
	}
	return found, rows.Err()
}

// pkArgs reads the primary key out of a cached row JSON, as query arguments; false if a key column
// is missing (excluded from the cache) or its value cannot be converted back.
func (c *tableCheck) pkArgs(rowJSON []byte) ([]any, bool) {
	var row map[string]json.RawMessage
	if err := json.Unmarshal(rowJSON, &row); err != nil {
		return nil, false
	}
	args := make([]any, 0, len(c.t.PrimaryKey))
	for _, name := range c.t.PrimaryKey {
		v, ok := row[name]
		if !ok {
			return nil, false
		}
		col, _ := c.t.Column(name)
		a, ok := sqlArg(col, v)
		if !ok {
			return nil, false
		}
		args = append(args, a)
	}
	return args, true
}

func argSupported(c *mysqlrow.Column) bool {
	switch c.DataType {
	case "float", "double", "real", "bit", "json":
		return false
	}
	return true
}

// sqlArg turns a key column's value as Debezium encodes it (mysqlrow.Column.FromText) back into a
// value the server compares with the column: the inverse of that encoding for the types a primary key
// can have.
func sqlArg(c *mysqlrow.Column, v json.RawMessage) (any, bool) {
	var s string
	isString := len(v) > 0 && v[0] == '"'
	if isString {
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, false
		}
	}
	num := func() (int64, bool) {
		if isString {
			return 0, false
		}
		n, err := strconv.ParseInt(string(v), 10, 64)
		return n, err == nil
	}
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "year":
		n, ok := num()
		return n, ok
	case "bigint":
		n, ok := num()
		if ok && c.Unsigned && n < 0 {
			return uint64(n), true // bigint.unsigned.handling.mode=long wrapped it around
		}
		return n, ok
	case "decimal", "numeric":
		return s, isString
	case "date":
		n, ok := num()
		return time.Unix(n*86400, 0).UTC().Format("2006-01-02"), ok
	case "datetime":
		n, ok := num()
		if c.FSP <= 3 {
			return time.UnixMilli(n).UTC().Format("2006-01-02 15:04:05.000"), ok
		}
		return time.UnixMicro(n).UTC().Format("2006-01-02 15:04:05.000000"), ok
	case "timestamp":
		t, err := time.Parse(time.RFC3339Nano, s)
		return t.UTC().Format("2006-01-02 15:04:05.000000"), isString && err == nil
	case "time":
		n, ok := num()
		return microTime(n), ok
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		b, err := base64.StdEncoding.DecodeString(s)
		return b, isString && err == nil
	case "float", "double", "real", "bit", "json":
		return nil, false
	default: // char, varchar, text, enum, set
		return s, isString
	}
}

// microTime formats microseconds as a MySQL TIME literal (which may be negative or exceed 24 hours).
func microTime(us int64) string {
	sign := ""
	if us < 0 {
		sign, us = "-", -us
	}
	h, us := us/3600e6, us%3600e6
	m, us := us/60e6, us%60e6
	return fmt.Sprintf("%s%02d:%02d:%02d.%06d", sign, h, m, us/1e6, us%1e6)
}

// scanFraction is how far a SCAN has come with cursor next over a keyspace of about dbsize keys.
// Redis walks the hash table's buckets in reverse-binary order (the cursor's bits reversed count
// up), so reversing the cursor's bits over the table's size gives the share of buckets done. The table
// holds a power of two at least as large as the keys; the cursor's own length corrects a table grown
// larger than that.
func scanFraction(cursor uint64, dbsize int64) float64 {
	if cursor == 0 {
		return 1
	}
	n := max(bits.Len64(uint64(max(dbsize-1, 1))), bits.Len64(cursor))
	done := float64(bits.Reverse64(cursor)>>(64-n)) / math.Exp2(float64(n))
	return math.Min(1, done)
}
