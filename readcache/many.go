package readcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// Result is one row GetMany read: the row, or the error Get would have returned for its key
// (ErrNotFound, ErrNotCached, ErrUnavailable, a bad key value).
type Result struct {
	Row Row
	Err error
}

// maxBatchQuery bounds the keys one database query of GetMany asks for: a larger batch's misses are
// read in several queries (MySQL's limit is 65,535 placeholders; a long IN list also plans slowly).
const maxBatchQuery = 1000

// maxBatchKeys bounds the keys of one Redis round trip and one fill pipeline; GetMany reads a larger
// batch in slices of this many, one after another.
const maxBatchKeys = 1000

// GetMany reads the rows of table whose primary keys are pks (each the key columns' values in key
// order, as Get takes them), and returns one Result per key in the same order. The error is for the
// call as a whole: table not "db.table" or not cached.
//
// It costs one Redis round trip for all the keys (MGET; on a cluster a pipeline of GETs, one per node,
// sent in parallel), one database query for all the misses (WHERE pk IN (…), composite keys as row
// constructors), and one pipeline for their fills, per 1,000 keys: a larger batch is read 1,000 keys
// at a time. Each key keeps Get's
// guarantees: L1 first, a tombstone is ErrNotFound without the database, a fill is written only where
// nothing is stored, under the row's own key, and only if the table's floor has not moved since it was
// read before the query (so a fill never replaces a change, and is refused across a truncate, a
// completed snapshot or a DDL sweep), only in MissFill and only while the policy check allows fills;
// without a database a miss is ErrNotCached; the sampler is offered every read. Two differences: the
// misses of a batch do not join the queries concurrent Gets of the same keys have in flight (nor do
// those join the batch's), and a key whose value is not the exact spelling of a row's key (a
// case-insensitive collation, CHAR, a decimal) and that matched no row exactly is read again on its
// own, by Get's path, which finds the row "=" matches.
func (c *Client) GetMany(ctx context.Context, table string, pks [][]any) ([]Result, error) {
	db, name, ok := strings.Cut(table, ".")
	if !ok {
		return nil, fmt.Errorf("readcache: table %q is not db.table", table)
	}
	if _, ok := c.policy.Table(db, name); !ok {
		return nil, fmt.Errorf("readcache: table %s is not cached (not in CACHE_TABLES)", table)
	}
	start := time.Now()
	out := make([]Result, len(pks))
	svs := make([]served, len(pks))
	// A large batch goes in slices, each a batch of its own with every guarantee: one MGET or fill
	// pipeline of 100,000 keys would hold Redis, and the function's writes behind it, for its length.
	for lo := 0; lo < len(pks); lo += maxBatchKeys {
		hi := min(lo+maxBatchKeys, len(pks))
		c.getMany(ctx, time.Now(), table, pks[lo:hi], out[lo:hi], svs[lo:hi])
	}
	rt := &rowTable{c: c, db: db, tb: name}
	for i := range out {
		if out[i].Err == nil {
			out[i].Row.table = rt
		}
	}
	if s := c.sampler.Load(); s != nil {
		end := time.Now()
		for i := range out {
			s.offer(pks[i], out[i].Row, svs[i], out[i].Err, start, end)
		}
	}
	return out, nil
}

// pending is a key of a batch not answered by the L1.
type pending struct {
	i    int // index in the batch
	t    *tablepolicy.Table
	meta *mysqlrow.Table
	key  string
	gen  uint64 // the L1's generation before the Redis read
	// fill: Redis answered that the key holds nothing, so a fill may be made there. A key Redis failed
	// for, or that holds another application's value, is read from the database and not filled.
	fill     bool
	redisErr bool // Redis failed for it
}

func (c *Client) getMany(ctx context.Context, start time.Time, table string, pks [][]any, out []Result, svs []served) {
	var todo []pending
	for i, pk := range pks {
		t, meta, key, err := c.locate(ctx, table, pk)
		if err != nil {
			out[i].Err = err
			continue
		}
		svs[i] = served{t: t, meta: meta, key: key, from: FromDatabase}
		p := pending{i: i, t: t, meta: meta, key: key}
		if c.l1 != nil {
			var row Row
			var hit bool
			if row, hit, p.gen = c.l1.get(key); hit {
				row.From = FromL1
				c.m.lookup(ctx, "l1_hit", FromL1, start)
				svs[i].from, svs[i].version, svs[i].fetched = FromL1, row.Version, row.fetched
				out[i].Row = row
				continue
			}
		}
		todo = append(todo, p)
	}
	if len(todo) == 0 {
		return
	}
	misses := c.readRedis(ctx, start, todo, out, svs)
	if len(misses) == 0 {
		return
	}
	if c.o.DB == nil {
		for _, p := range misses {
			if p.redisErr {
				out[p.i].Err = fmt.Errorf("%w: Redis failed and no database is configured", ErrUnavailable)
			} else {
				c.m.lookup(ctx, "miss", FromRedis, start)
				out[p.i].Err = ErrNotCached
			}
		}
		return
	}
	c.loadMany(ctx, start, pks, misses, out, svs)
}

// readRedis reads the keys of todo in one round trip, answers those Redis holds (a row or a
// tombstone), and returns the others.
func (c *Client) readRedis(ctx context.Context, start time.Time, todo []pending, out []Result, svs []served) []pending {
	ok, probe := c.breaker.allow()
	if !ok {
		for i := range todo {
			todo[i].redisErr = true
		}
		return todo
	}
	fetched := time.Now()
	rctx, cancel := context.WithTimeout(ctx, c.o.RedisTimeout)
	values, errs, err := c.mget(rctx, todo)
	cancel()
	switch {
	case err != nil && ctx.Err() != nil:
		c.breaker.release(probe)
		for _, p := range todo {
			out[p.i].Err = ctx.Err()
		}
		return nil
	case errors.Is(err, redis.ErrPoolTimeout):
		c.breaker.release(probe) // saturated, not failing: see get
		c.m.redisErrors.Add(ctx, 1)
	case err != nil:
		c.breaker.failure(probe)
		c.m.redisErrors.Add(ctx, 1)
	}
	if err != nil {
		for i := range todo {
			todo[i].redisErr = true
		}
		return todo
	}
	failed := false
	var misses []pending
	for j, p := range todo {
		i := p.i
		if errs[j] != nil {
			if errors.Is(errs[j], rowcache.ErrMalformed) || strings.Contains(errs[j].Error(), "WRONGTYPE") {
				misses = append(misses, p) // another application's value: read the database, do not fill
				continue
			}
			failed = true
			p.redisErr = true
			misses = append(misses, p)
			continue
		}
		if values[j] == nil {
			p.fill = true
			misses = append(misses, p)
			continue
		}
		e := *values[j]
		if e.Deleted() {
			c.m.lookup(ctx, "deleted", FromRedis, start)
			svs[i].from, svs[i].deleted, svs[i].version, svs[i].fetched = FromRedis, true, e.Version, fetched
			out[i].Err = ErrNotFound
			continue
		}
		row := Row{JSON: e.Row, Version: e.Version, From: FromRedis, fetched: fetched}
		if c.l1 != nil {
			c.l1.put(p.key, row, p.gen)
		}
		c.m.lookup(ctx, "hit", FromRedis, start)
		svs[i].from, svs[i].version, svs[i].fetched = FromRedis, e.Version, fetched
		out[i].Row = row
	}
	if failed {
		c.breaker.failure(probe)
		c.m.redisErrors.Add(ctx, 1)
	} else {
		c.breaker.success(probe)
	}
	return misses
}

// mget reads the keys of todo: MGET on one instance; on a cluster, where one MGET cannot span slots, a
// pipeline of GETs, which go-redis sends as one pipeline per node, in parallel. values[j] is nil for an
// absent key; errs[j] is a key's own error (a value not in the cache's format; on a cluster, its node
// failing); err fails them all.
func (c *Client) mget(ctx context.Context, todo []pending) (values []*rowcache.Entry, errs []error, err error) {
	values, errs = make([]*rowcache.Entry, len(todo)), make([]error, len(todo))
	decode := func(j int, b []byte) {
		e, err := rowcache.Decode(b)
		if err != nil {
			errs[j] = fmt.Errorf("rowcache: get %s: %w", todo[j].key, err)
			return
		}
		values[j] = &e
	}
	if _, cluster := c.o.Redis.(*redis.ClusterClient); !cluster {
		keys := make([]string, len(todo))
		for j, p := range todo {
			keys[j] = p.key
		}
		vals, err := c.o.Redis.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, nil, fmt.Errorf("readcache: MGET: %w", err)
		}
		for j, v := range vals {
			if s, ok := v.(string); ok {
				// MGET answers nil for a key of another type as for an absent one: it is read from the
				// database, and the fill script, which writes only where nothing exists, leaves it.
				decode(j, []byte(s))
			}
		}
		return values, errs, nil
	}
	pipe := c.o.Redis.Pipeline()
	cmds := make([]*redis.StringCmd, len(todo))
	for j, p := range todo {
		cmds[j] = pipe.Get(ctx, p.key)
	}
	_, _ = pipe.Exec(ctx)
	failed := 0
	for j, cmd := range cmds {
		b, err := cmd.Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			errs[j] = fmt.Errorf("rowcache: get %s: %w", todo[j].key, err)
			if !strings.Contains(err.Error(), "WRONGTYPE") {
				failed++
			}
		default:
			decode(j, b)
		}
	}
	if failed == len(cmds) {
		return nil, nil, fmt.Errorf("readcache: GET of %d keys: %w", len(cmds), cmds[0].Err())
	}
	return values, errs, nil
}

// loadMany reads the misses from the database, in one query per maxBatchQuery of them, and fills the
// cache with what it found where Redis answered that nothing is stored.
func (c *Client) loadMany(ctx context.Context, start time.Time, pks [][]any, misses []pending, out []Result, svs []served) {
	t := misses[0].t
	meta := misses[0].meta
	dctx, cancel := context.WithTimeout(ctx, c.o.DBTimeout)
	defer cancel()
	fill := c.o.Miss == MissFill && c.pol.fillAllowed()
	anyFill := false
	for _, p := range misses {
		anyFill = anyFill || p.fill
	}
	floor := ""
	if fill && anyFill {
		var ok, moved bool
		if floor, moved, ok = c.floor(dctx, t); !ok {
			fill = false
		} else if moved {
			// As in load: the columns may have changed with the floor; read them again after it.
			c.forgetSchema(t.DB + "." + t.Name)
			meta = nil
		}
	}
	var fills []rowcache.FillRequest
	filled := map[string]bool{}
	var alone []pending // matched no row exactly, with an inexact value: read by Get's path
	for lo := 0; lo < len(misses); lo += maxBatchQuery {
		chunk := misses[lo:min(lo+maxBatchQuery, len(misses))]
		c.m.dbQueries.Add(dctx, 1)
		queried := time.Now()
		rows, m, err := c.queryMany(dctx, t, meta, pks, chunk)
		if err != nil {
			for _, p := range chunk {
				if p.redisErr {
					out[p.i].Err = fmt.Errorf("%w: Redis is failing, and the database: %v", ErrUnavailable, err)
				} else {
					out[p.i].Err = err
				}
			}
			continue
		}
		meta = m
		for j, p := range chunk {
			r := rows[j]
			if r.err != nil {
				out[p.i].Err = r.err
				continue
			}
			if r.inexact {
				alone = append(alone, p)
				continue
			}
			outcome := "miss"
			if !p.fill {
				outcome = "fallback"
			}
			c.m.lookup(ctx, outcome, FromDatabase, start)
			svs[p.i].from, svs[p.i].fetched = FromDatabase, queried
			if !r.found {
				out[p.i].Err = ErrNotFound
			} else {
				r.row.fetched = queried
				out[p.i].Row = r.row
				if r.fillKey != p.key {
					svs[p.i].changesKey = r.fillKey
				}
			}
			if !fill || !p.fill || r.fillKey == "" || filled[r.fillKey] || (!r.found && c.o.NotFoundTTL <= 0) {
				continue
			}
			filled[r.fillKey] = true
			if c.afterLoad != nil {
				c.afterLoad(r.fillKey)
			}
			f := rowcache.FillRequest{Key: r.fillKey, FloorKey: t.FloorKey, Floor: floor, TTL: c.o.FillTTL}
			if r.found {
				f.Row = r.row.JSON
			} else {
				f.TTL = c.o.NotFoundTTL
			}
			fills = append(fills, f)
		}
	}
	if len(fills) > 0 {
		rctx, cancel := context.WithTimeout(dctx, c.o.RedisTimeout)
		res := c.store.FillMany(rctx, fills)
		cancel()
		refused := false
		for _, r := range res {
			switch {
			case r.Err != nil:
				c.m.redisErrors.Add(ctx, 1)
			case r.Stored:
				c.m.fills.Add(ctx, 1, c.m.fillStored)
			default:
				c.m.fills.Add(ctx, 1, c.m.fillConflict)
				refused = true
			}
		}
		if refused {
			// A change or another fill was there first, or the floor moved: read the floor again next time.
			c.floors.Store(t.DB+"."+t.Name, floorEntry{value: floor, recheck: true})
		}
	}
	for _, p := range alone {
		row, sv, err := c.getKey(ctx, start, p.t, meta, p.key, pks[p.i])
		out[p.i] = Result{Row: row, Err: err}
		svs[p.i] = sv
	}
}

// batchRow is the database's answer for one key of a batch.
type batchRow struct {
	row     Row
	found   bool
	fillKey string // as dbRow's
	// inexact: no row has exactly this key, but "=" may match one spelled differently.
	inexact bool
	err     error // the key's values do not bind to the key columns
}

// queryMany reads the rows of chunk's keys in one query, and returns the answer for each and the
// columns the query was made with. A query that fails because a column or the table changed is made
// once more with the columns read again, as queryOnce does.
func (c *Client) queryMany(ctx context.Context, t *tablepolicy.Table, meta *mysqlrow.Table, pks [][]any, chunk []pending) ([]batchRow, *mysqlrow.Table, error) {
	for retried := false; ; retried = true {
		if meta == nil {
			m, err := c.metadata(ctx, t.DB, t.Name)
			if err != nil {
				return nil, nil, err
			}
			meta = m
		}
		answers, err := c.queryManyOnce(ctx, t, meta, pks, chunk)
		if err != nil && !retried && schemaChanged(err) {
			c.forgetSchema(t.DB + "." + t.Name)
			meta = nil
			continue
		}
		return answers, meta, err
	}
}

func (c *Client) queryManyOnce(ctx context.Context, t *tablepolicy.Table, meta *mysqlrow.Table, pks [][]any, chunk []pending) ([]batchRow, error) {
	answers := make([]batchRow, len(chunk))
	bound := make([][]keyArg, len(chunk))
	var vals []any
	tuples := 0
	for j, p := range chunk {
		args, err := bindKeys(t, meta, pks[p.i])
		if err != nil {
			answers[j].err = err
			continue
		}
		bound[j] = args
		for _, a := range args {
			vals = append(vals, a.arg)
		}
		tuples++
	}
	byKey := map[string]Row{}
	if tuples > 0 {
		rows, err := c.o.DB.QueryContext(ctx, batchQuery(meta, tuples), vals...)
		if err != nil {
			return nil, fmt.Errorf("readcache: query %s.%s: %w", t.DB, t.Name, err)
		}
		defer rows.Close()
		for rows.Next() {
			r, err := meta.ScanRow(rows)
			if err != nil {
				return nil, fmt.Errorf("readcache: read %s.%s: %w", t.DB, t.Name, err)
			}
			own, err := meta.Key(r)
			if err != nil {
				continue
			}
			if k, err := t.Key(own); err == nil {
				byKey[k] = Row{JSON: t.RowJSON(r), From: FromDatabase}
			}
		}
		if err := rows.Err(); err != nil {
			return nil, fmt.Errorf("readcache: query %s.%s: %w", t.DB, t.Name, err)
		}
	}
	for j := range chunk {
		if bound[j] == nil {
			continue
		}
		k, exact, err := boundKey(t, meta, bound[j])
		switch {
		case err != nil:
			answers[j].err = err
		case byKey[k].JSON != nil:
			// A row whose own key is exactly these values: the one "=" matches (a primary key is unique
			// under its collation).
			answers[j] = batchRow{row: byKey[k], found: true, fillKey: k}
		case exact:
			answers[j] = batchRow{fillKey: k} // no row can match these values but the one absent
		default:
			answers[j].inexact = true
		}
	}
	return answers, nil
}

// batchQuery selects the rows of n primary keys: `pk` IN (?, …), or (`a`, `b`) IN ((?, ?), …).
func batchQuery(meta *mysqlrow.Table, n int) string {
	var b strings.Builder
	b.WriteString("SELECT " + meta.SelectList() + " FROM " + meta.QualifiedName() + " WHERE ")
	one := "?"
	if len(meta.PrimaryKey) == 1 {
		b.WriteString(mysqlrow.QuoteIdent(meta.PrimaryKey[0]))
	} else {
		cols := make([]string, len(meta.PrimaryKey))
		for i, name := range meta.PrimaryKey {
			cols[i] = mysqlrow.QuoteIdent(name)
		}
		b.WriteString("(" + strings.Join(cols, ", ") + ")")
		one = "(" + strings.TrimSuffix(strings.Repeat("?, ", len(cols)), ", ") + ")"
	}
	b.WriteString(" IN (")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(one)
	}
	b.WriteString(")")
	return b.String()
}
