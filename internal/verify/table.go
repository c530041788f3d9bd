package verify

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/bits-and-blooms/bloom/v3"
	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// tableCheck is the check of one table.
type tableCheck struct {
	r      *runner
	t      *mysqlrow.Table
	pt     *tablepolicy.Table
	st     *tableState
	pkIdx  []int    // positions of the key columns in t.Columns
	pkCols []string // the key columns, quoted
	// pending are the differences waiting for their second look, oldest first.
	pending []*suspect
	// firstInt is set when the first key column is an integer: progress and samples use its range.
	firstInt bool
	// filter holds the keys of the rows read, for the extras pass (nil: none, every key is looked up).
	filter *bloom.BloomFilter
}

func (r *runner) checkTable(ctx context.Context, db, name string, st *tableState) (TableReport, error) {
	id := db + "." + name
	t, err := mysqlrow.LoadTable(ctx, r.cfg.DB, db, name)
	if err != nil {
		return TableReport{Table: id}, fmt.Errorf("verify: %w", err)
	}
	pt, ok := r.cfg.Policy.Table(db, name)
	if !ok {
		return TableReport{Table: id, Skipped: "not in CACHE_TABLES"}, nil
	}
	if len(t.PrimaryKey) == 0 {
		return TableReport{Table: id, Skipped: "no primary key (such rows cannot be cached)"}, nil
	}
	if st == nil {
		st = &tableState{Report: TableReport{Table: id}, Phase: phaseRows}
	}
	c := &tableCheck{r: r, t: t, pt: pt, st: st}
	for _, k := range t.PrimaryKey {
		for j, col := range t.Columns {
			if col.Name == k {
				c.pkIdx = append(c.pkIdx, j)
			}
		}
		c.pkCols = append(c.pkCols, mysqlrow.QuoteIdent(k))
	}
	first, _ := t.Column(t.PrimaryKey[0])
	c.firstInt = isInteger(first)
	for _, p := range st.Pending {
		p.found = time.Now()
		c.pending = append(c.pending, p)
	}
	st.Pending = nil
	r.current = c
	defer func() { r.current = nil }()
	if r.cp != nil {
		r.cp.Current = st
	}
	if r.cfg.Sample > 0 {
		if err := c.sample(ctx); err != nil {
			return st.Report, err
		}
		return st.Report, nil
	}
	if st.Phase == phaseRows {
		if err := c.newFilter(ctx); err != nil {
			return st.Report, err
		}
		if err := c.rows(ctx); err != nil {
			return st.Report, err
		}
		if err := r.saveFilter(c.filter); err != nil {
			return st.Report, err
		}
		st.Phase = phaseExtras
		if err := r.save(true); err != nil {
			return st.Report, err
		}
	} else if st.FilterKeys > 0 {
		// Resumed in the extras pass: the filter saved at the end of the rows pass, if it is there.
		c.filter = r.loadFilter()
	}
	if err := c.extras(ctx); err != nil {
		return st.Report, err
	}
	return st.Report, nil
}

// rows is the rows pass: every row (of the range) in key order, a chunk at a time.
func (c *tableCheck) rows(ctx context.Context) error {
	cfg := &c.r.cfg
	m := c.r.meter(c.st.Table(), phaseRows, c.st.Report.Rows)
	progress, err := c.rowsProgress(ctx)
	if err != nil {
		return err
	}
	for {
		if err := c.r.wait(ctx, cfg.ChunkSize); err != nil {
			return err
		}
		q, args := c.chunkQuery(c.st.After, cfg.ChunkSize)
		n, last, err := c.compareQuery(ctx, q, args, nil)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
		c.st.Report.Rows += int64(n)
		c.st.After = last
		if err := c.settle(ctx, false); err != nil {
			return err
		}
		m.tick(c.st.Report.Rows, progress(last, c.st.Report.Rows), c.st.Report, false)
		if err := c.r.save(false); err != nil {
			return err
		}
		if n < cfg.ChunkSize {
			break
		}
	}
	if err := c.settle(ctx, true); err != nil {
		return err
	}
	m.tick(c.st.Report.Rows, 1, c.st.Report, true)
	return nil
}

// sample checks cfg.Sample chunks of cfg.SampleChunk rows from random points of the first key
// column's range, then extrapolates.
func (c *tableCheck) sample(ctx context.Context) error {
	cfg := &c.r.cfg
	c.st.Report.ExtrasSkipped = "a sample checks no extras"
	first, _ := c.t.Column(c.t.PrimaryKey[0])
	if !c.firstInt {
		return fmt.Errorf("verify: %s: a sample needs an integer first primary-key column (%s is %s); check key ranges with -from/-to instead", c.st.Table(), first.Name, first.ColumnType)
	}
	lo, hi, ok, err := c.intBounds(ctx)
	if err != nil || !ok {
		return err
	}
	m := c.r.meter(c.st.Table(), phaseSample, 0)
	seen := map[string]bool{} // a small set: at most Sample × SampleChunk keys
	for i := 0; i < cfg.Sample; i++ {
		if err := c.r.wait(ctx, cfg.SampleChunk); err != nil {
			return err
		}
		start := strconv.FormatFloat(math.Floor(lo+c.r.rnd.Float64()*(hi-lo+1)), 'f', 0, 64)
		where := []string{c.pkCols[0] + " >= ?"}
		args := []any{start}
		if cfg.To != nil {
			w, a := c.bound(cfg.To, "<")
			where, args = append(where, w), append(args, a...)
		}
		q := c.selectRows(where, cfg.SampleChunk)
		n, _, err := c.compareQuery(ctx, q, args, seen)
		if err != nil {
			return err
		}
		c.st.Report.Rows += int64(n)
		if err := c.settle(ctx, false); err != nil {
			return err
		}
		m.tick(c.st.Report.Rows, float64(i+1)/float64(cfg.Sample), c.st.Report, false)
	}
	if err := c.settle(ctx, true); err != nil {
		return err
	}
	m.tick(c.st.Report.Rows, 1, c.st.Report, true)
	est, err := c.tableRows(ctx)
	if err != nil {
		return err
	}
	c.st.Report.Estimate = estimate(c.st.Report.Missing+c.st.Report.Different, c.st.Report.Rows, est)
	return nil
}

// newFilter makes the Bloom filter of the rows pass, if the extras pass will use one: about 20 bits
// per row of the server's estimate (doubled, as the estimate may be low), within ExtrasFilterBytes.
func (c *tableCheck) newFilter(ctx context.Context) error {
	cfg := &c.r.cfg
	if !cfg.extras() || cfg.ExtrasFilterBytes < 0 {
		return nil
	}
	est, err := c.tableRows(ctx)
	if err != nil {
		return err
	}
	n := float64(max(est, 1000) * 2)
	bitsFor := math.Min(n*20, float64(cfg.ExtrasFilterBytes)*8)
	k := uint(math.Max(1, math.Min(14, math.Round(bitsFor/n*math.Ln2))))
	c.filter = bloom.New(uint(bitsFor), k)
	// Resumed inside the rows pass: the keys read before the interruption are not in this filter, so
	// the extras pass looks those up (slower, not less exact).
	c.st.FilterPartial = c.st.After != nil
	return nil
}

// falsePositive is the chance that a key not added to f tests present: (1 - e^(-kn/m))^k.
func falsePositive(f *bloom.BloomFilter, n int64) float64 {
	m, k := float64(f.Cap()), float64(f.K())
	return math.Pow(1-math.Exp(-k*float64(n)/m), k)
}

// estimate extrapolates bad of checked rows to a table of total rows, with a 95% Wilson score
// interval (sound also when bad is 0 or checked is small).
func estimate(bad int, checked, total int64) *Estimate {
	e := &Estimate{TableRows: total}
	if checked == 0 {
		e.RateHigh = 1
		e.DriftHigh = total
		return e
	}
	const z = 1.959964
	n, p := float64(checked), float64(bad)/float64(checked)
	d := 1 + z*z/n
	mid := (p + z*z/(2*n)) / d
	half := z * math.Sqrt(p*(1-p)/n+z*z/(4*n*n)) / d
	e.Rate, e.RateLow, e.RateHigh = p, math.Max(0, mid-half), math.Min(1, mid+half)
	e.DriftLow, e.DriftHigh = int64(math.Floor(e.RateLow*float64(total))), int64(math.Ceil(e.RateHigh*float64(total)))
	return e
}

// compareQuery reads the rows of q, compares them with the cache in one MGET and queues the
// differences. seen, if set, skips rows already compared (overlapping samples) and records the others.
// It returns the rows read and the last row's key as the server printed it.
func (c *tableCheck) compareQuery(ctx context.Context, q string, args []any, seen map[string]bool) (int, []string, error) {
	rows, err := c.r.cfg.DB.QueryContext(ctx, q, args...)
	if err != nil {
		return 0, nil, fmt.Errorf("verify: read %s: %w", c.st.Table(), err)
	}
	var keys []string
	var want [][]byte
	var pks [][]string
	for rows.Next() {
		row, text, err := c.t.ScanRowText(rows)
		if err != nil {
			rows.Close()
			return 0, nil, fmt.Errorf("verify: %w", err)
		}
		pk, err := c.pkText(text)
		if err != nil {
			rows.Close()
			return 0, nil, err
		}
		key, err := c.rowKey(row)
		if err != nil {
			rows.Close()
			return 0, nil, err
		}
		if seen != nil {
			if seen[key] {
				continue
			}
			seen[key] = true
		}
		keys = append(keys, key)
		if c.filter != nil {
			c.filter.AddString(key)
			c.st.FilterKeys++
		}
		want = append(want, c.pt.RowJSON(row))
		pks = append(pks, pk)
	}
	err = rows.Err()
	rows.Close()
	if err != nil {
		return 0, nil, fmt.Errorf("verify: read %s: %w", c.st.Table(), err)
	}
	if len(keys) == 0 {
		return 0, nil, nil
	}
	vals, err := c.r.cfg.Redis.MGet(ctx, keys...).Result()
	if err != nil {
		return 0, nil, fmt.Errorf("verify: redis MGET: %w", err)
	}
	now := time.Now()
	for i, k := range keys {
		if !same(vals[i], want[i]) {
			c.pending = append(c.pending, &suspect{Key: k, PK: pks[i], found: now})
		}
	}
	return len(keys), pks[len(pks)-1], nil
}

func (c *tableCheck) pkText(text []*string) ([]string, error) {
	pk := make([]string, len(c.pkIdx))
	for j, idx := range c.pkIdx {
		if text[idx] == nil {
			return nil, fmt.Errorf("verify: %s has a NULL primary-key value", c.st.Table())
		}
		pk[j] = *text[idx] // a string, so comparisons use the column's collation
	}
	return pk, nil
}

func (c *tableCheck) rowKey(row debezium.Row) (string, error) {
	pk, err := c.t.Key(row)
	if err != nil {
		return "", fmt.Errorf("verify: %w", err)
	}
	key, err := c.pt.Key(pk)
	if err != nil {
		return "", fmt.Errorf("verify: key of a %s row: %w", c.st.Table(), err)
	}
	return key, nil
}

// chunkQuery is the query of the next chunk after the key after (nil: the first chunk).
func (c *tableCheck) chunkQuery(after []string, limit int) (string, []any) {
	cfg := &c.r.cfg
	var where []string
	var args []any
	if after != nil {
		w, a := c.bound(after, ">")
		where, args = append(where, w), append(args, a...)
	} else if cfg.From != nil {
		w, a := c.bound(cfg.From, ">=")
		where, args = append(where, w), append(args, a...)
	}
	if cfg.To != nil {
		w, a := c.bound(cfg.To, "<")
		where, args = append(where, w), append(args, a...)
	}
	return c.selectRows(where, limit), args
}

// bound compares a prefix of the key columns with values, in key order (op is >, >= or <). A row
// comparison such as (a,b) > (?,?) would be shorter, but MariaDB reads it with a full index scan (MySQL
// 8 does use a range), which makes keyset pagination quadratic; spelled out, with the first column's
// own range in front, both servers read an index range:
//
//	(a,b) > (x,y)   →   a >= x AND (a > x OR (a = x AND b > y))
func (c *tableCheck) bound(values []string, op string) (string, []any) {
	cols := c.pkCols[:len(values)]
	if len(cols) == 1 {
		return cols[0] + " " + op + " ?", []any{values[0]}
	}
	strict, last := op, op // the operator between the columns before the last, and at the last
	switch op {
	case ">=":
		strict = ">"
	case "<=":
		strict = "<"
	}
	var args []any
	first := ">="
	if strict == "<" {
		first = "<="
	}
	expr := cols[0] + " " + first + " ?"
	args = append(args, values[0])
	// Build from the last column outwards: t_n = c_n last v_n; t_i = c_i strict v_i OR (c_i = v_i AND t_i+1).
	inner := cols[len(cols)-1] + " " + last + " ?"
	innerArgs := []any{values[len(values)-1]}
	for i := len(cols) - 2; i >= 0; i-- {
		inner = "(" + cols[i] + " " + strict + " ? OR (" + cols[i] + " = ? AND " + inner + "))"
		innerArgs = append([]any{values[i], values[i]}, innerArgs...)
	}
	return "(" + expr + " AND " + inner + ")", append(args, innerArgs...)
}

func (c *tableCheck) selectRows(where []string, limit int) string {
	q := "SELECT " + c.t.SelectList() + " FROM " + c.t.QualifiedName()
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	return q + " ORDER BY " + strings.Join(c.pkCols, ",") + " LIMIT " + strconv.Itoa(limit)
}

func tuple(cols []string) string { return "(" + strings.Join(cols, ",") + ")" }

func marks(n int) string { return "(" + strings.TrimSuffix(strings.Repeat("?,", n), ",") + ")" }

// rowsProgress returns how far the rows pass is, from the last key read: by the first key column's
// value within its range when it is an integer (two index lookups, MIN and MAX), else by rows read
// against the server's estimate of the row count.
func (c *tableCheck) rowsProgress(ctx context.Context) (func(last []string, rows int64) float64, error) {
	if c.firstInt {
		lo, hi, ok, err := c.intBounds(ctx)
		if err != nil {
			return nil, err
		}
		return func(last []string, _ int64) float64 {
			if !ok || hi <= lo {
				return -1
			}
			v, err := strconv.ParseFloat(last[0], 64)
			if err != nil {
				return -1
			}
			return math.Min(1, math.Max(0, (v-lo)/(hi-lo)))
		}, nil
	}
	if c.r.cfg.From != nil || c.r.cfg.To != nil {
		return func([]string, int64) float64 { return -1 }, nil
	}
	est, err := c.tableRows(ctx)
	if err != nil {
		return nil, err
	}
	return func(_ []string, rows int64) float64 {
		if est <= 0 {
			return -1
		}
		return math.Min(0.99, float64(rows)/float64(est))
	}, nil
}

// intBounds is the smallest and largest value of the first key column within the range; ok is false
// for an empty table.
func (c *tableCheck) intBounds(ctx context.Context) (lo, hi float64, ok bool, err error) {
	var where []string
	var args []any
	for _, b := range []struct {
		v  []string
		op string
	}{{c.r.cfg.From, ">="}, {c.r.cfg.To, "<"}} {
		if b.v != nil {
			w, a := c.bound(b.v, b.op)
			where, args = append(where, w), append(args, a...)
		}
	}
	q := "SELECT MIN(" + c.pkCols[0] + "), MAX(" + c.pkCols[0] + ") FROM " + c.t.QualifiedName()
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	var minV, maxV sql.NullString
	if err := c.r.cfg.DB.QueryRowContext(ctx, q, args...).Scan(&minV, &maxV); err != nil {
		return 0, 0, false, fmt.Errorf("verify: key range of %s: %w", c.st.Table(), err)
	}
	if !minV.Valid || !maxV.Valid {
		return 0, 0, false, nil
	}
	lo, err1 := strconv.ParseFloat(minV.String, 64)
	hi, err2 := strconv.ParseFloat(maxV.String, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, 0, false, fmt.Errorf("verify: key range of %s: %w", c.st.Table(), err)
	}
	return lo, hi, true, nil
}

// tableRows is the server's estimate of the table's row count (InnoDB samples it: it can be off by
// tens of percent, which is enough for progress and an extrapolation's order of magnitude).
func (c *tableCheck) tableRows(ctx context.Context) (int64, error) {
	var n sql.NullInt64
	err := c.r.cfg.DB.QueryRowContext(ctx, "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", c.t.DB, c.t.Name).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("verify: row estimate of %s: %w", c.st.Table(), err)
	}
	return n.Int64, nil
}

func isInteger(c *mysqlrow.Column) bool {
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint":
		return true
	}
	return false
}

// same reports whether the cached value v holds exactly the row JSON want.
func same(v any, want []byte) bool {
	s, ok := v.(string)
	if !ok {
		return false
	}
	e, err := rowcache.Decode([]byte(s))
	return err == nil && !e.Deleted() && bytes.Equal(e.Row, want)
}

// live returns the cached value v if it is a live row (not absent, not a tombstone); foreign values
// count as live: they sit where a row of the table should be.
func live(v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		return "", false
	}
	e, err := rowcache.Decode([]byte(s))
	if err != nil {
		return s, true
	}
	return s, !e.Deleted()
}

// getCached is the cached value of key, nil when there is none.
func (c *tableCheck) getCached(ctx context.Context, key string) (any, error) {
	v, err := c.r.cfg.Redis.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("verify: redis GET: %w", err)
	}
	return v, nil
}

func (c *tableCheck) readOne(ctx context.Context, pk []string) (debezium.Row, error) {
	where := strings.Join(c.pkCols, " = ? AND ") + " = ?"
	args := make([]any, len(pk))
	for i, v := range pk {
		args[i] = v
	}
	rows, err := c.r.cfg.DB.QueryContext(ctx, "SELECT "+c.t.SelectList()+" FROM "+c.t.QualifiedName()+" WHERE "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("verify: read %s: %w", c.st.Table(), err)
	}
	defer rows.Close()
	if !rows.Next() {
		return nil, rows.Err()
	}
	return c.t.ScanRow(rows)
}
