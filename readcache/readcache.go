// Package readcache is the read path for Go services: look a row up in the cache that cloudsql-cache
// keeps in sync with the database, and read the database on a miss, without ever making the cache
// stale for longer than a bounded time.
//
//	c, err := readcache.New(ctx, readcache.Options{Redis: rdb, DB: db, Tables: policy})
//	row, err := c.Get(ctx, "inventory.customers", 1004)
//	if errors.Is(err, readcache.ErrNotFound) { … }
//	var cust Customer // fields tagged `db:"column"`
//	err = row.Scan(&cust) // Go values by column type; row.Decode unmarshals Debezium's JSON as it is
//	rows, err := c.GetMany(ctx, "inventory.customers", [][]any{{1004}, {1005}})
//
// Guarantees, and their limits:
//   - A hit costs one Redis GET. A tombstone (the row was deleted) answers ErrNotFound without touching
//     the database. Without a database (Options.DB nil) a miss answers ErrNotCached, not ErrNotFound:
//     the cache not holding a row does not say it does not exist. With one, a row the database does
//     not have is ErrNotFound.
//   - A miss reads the database by primary key, each value bound as its column's type, and returns
//     the row the database returned. What else it does is Options.Miss:
//   - MissFill (the default) also fills the cache, through the same Lua script the apply function
//     uses, in a mode that only writes where nothing at all is stored, and only under the key built
//     from the returned row's own primary-key values (where that row's changes land; MySQL's "=" can
//     find a row whose key is spelled differently). So a fill never overwrites a change the function
//     applied, even if the fill read the row before that change, and every change the function
//     applies replaces a fill; a fill that read the row before a TRUNCATE of its table, a completed
//     re-snapshot or a DDL statement that removed or reshaped its rows is refused (the table's floor
//     moved), and the client then reads the table's columns again, so later fills have the row's new
//     shape. A query that fails because a column or the table is gone does the same, once. What a reader can then see is what the change stream would show it, stale
//     by at most the replication lag, with one exception: the row changed and the changed key was
//     evicted from Redis while the fill was in flight (impossible with the deployment's noeviction
//     policy); FillTTL bounds that case. A miss costs the GET that missed, the query and the fill.
//   - MissNoFill writes nothing: only the change stream and its snapshot put rows in Redis, so the
//     cache holds exactly what the function applied and a read is stale by at most the replication
//     lag, with no exception. A row the cache does not hold (before the snapshot has finished, or a
//     table Debezium does not capture) is a query on every read. A miss costs the GET that missed and
//     the query; NotFoundTTL is ignored.
//   - Fills happen only while the function's published table policy (tablepolicy/published) has the
//     Client's read layout (Options.PolicyCheck, PolicyRequire by default: checked at New and every
//     PolicyInterval; Client.PolicyStatus says how it stands). A reader whose CACHE_* settings differ
//     from the function's would fill rows no change replaces, or columns the function never stores;
//     while the check fails, misses read the database and return, as with MissNoFill.
//   - Concurrent misses of one key share one database query (per process). A read that joins a query
//     begun before it started gets the row as of that query: older than its own start by at most the
//     query's duration (the consistency Sampler counts such reads stale when a change committed in
//     between).
//   - "Not found" can be cached for NotFoundTTL as a fill-tombstone, which the insert's change replaces,
//     where the caller's values are the only spelling that can match (integer keys, and string keys
//     under a NO PAD binary collation).
//   - When Redis fails or is slower than RedisTimeout, reads go to the database, and after
//     BreakerFailures consecutive failures Redis is skipped for a cool-down (one probe per cool-down),
//     so a Redis outage costs no timeouts and piles up no goroutines. With both down, Get returns
//     ErrUnavailable.
//   - Row.Scan, Row.Values and ScanAs convert a row from Debezium's encodings to the Go values
//     database/sql scans (time.Time, time.Duration, int64/uint64, the exact DECIMAL string, []byte, …),
//     by the column types read from the database once per table; see Row.Values.
//   - GetMany reads a batch with one Redis round trip, one query for its misses and one pipeline of
//     fills, each key with Get's guarantees (its documentation says where a batch differs).
//   - The optional in-process L1 serves the hottest rows from memory. It is invalidated by the keys the
//     apply script publishes on every change, and is bypassed (and emptied) while that subscription is
//     down, so a replica serves a row older than the last applied change for at most the pub/sub
//     delivery delay. A subscription whose connection died without an error (half-open) is found by
//     its pings going unanswered: then the bound is 4 × L1PingInterval (1 s by default) after the
//     last message it delivered. L1MaxAge is a further cap.
package readcache

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"golang.org/x/sync/singleflight"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// ErrNotFound means the row does not exist: the cache holds its tombstone (it was deleted, or a
// cached "not found"), or the database, read on a miss, has no such row.
var ErrNotFound = errors.New("readcache: row not found")

// ErrNotCached means the cache holds nothing for the key and no database is configured
// (Options.DB nil) to say whether the row exists: the row may exist but not be cached yet (before the
// snapshot reached it, a table Debezium does not capture, a key evicted or never written). It is
// not ErrNotFound: errors.Is(err, ErrNotFound) is false, so a cache-only service does not answer
// "deleted" for a row it has never seen.
var ErrNotCached = errors.New("readcache: row not cached, and no database to read it from")

// ErrUnavailable means neither Redis nor the database could answer.
var ErrUnavailable = errors.New("readcache: cache and database unavailable")

// Source says where a row came from.
type Source string

const (
	FromL1       Source = "l1"
	FromRedis    Source = "redis"
	FromDatabase Source = "database"
)

// Row is one row as the cache stores it.
type Row struct {
	// JSON is the row as a JSON object, in Debezium's encoding (see the README), without excluded
	// columns.
	JSON []byte
	// Version is the version of the change that wrote it; zero for a row read from the database or
	// filled from it.
	Version rowcache.Version
	From    Source

	fetched time.Time // when it was read from Redis
	table   *rowTable // its table's column types, for Values and Scan
}

// Decode unmarshals the row's JSON into v (a struct with json tags, or a map), values in Debezium's
// encoding (DATETIME as epoch milliseconds or microseconds, DATE as days, DECIMAL as a string, BOOLEAN as
// a number, binary as base64; see the README). Scan converts them to Go values instead.
func (r Row) Decode(v any) error {
	if err := json.Unmarshal(r.JSON, v); err != nil {
		return fmt.Errorf("readcache: decode row: %w", err)
	}
	return nil
}

// GetAs reads a row and decodes it into a T.
func GetAs[T any](ctx context.Context, c *Client, table string, pk ...any) (T, error) {
	var v T
	row, err := c.Get(ctx, table, pk...)
	if err != nil {
		return v, err
	}
	return v, row.Decode(&v)
}

// CheckDSN validates a go-sql-driver/mysql DSN for the fallback database and returns it with the
// settings the row encoding needs: parseTime off (DATETIME and TIMESTAMP are read as the server prints
// them) and the session in UTC (Debezium sends TIMESTAMP values in UTC). Open Options.DB with its result,
// or rows filled from the database would differ from those the apply function writes.
func CheckDSN(dsn string) (string, error) { return mysqlrow.CheckDSN(dsn) }

// Options configure a Client. Redis and Tables are required.
type Options struct {
	// Redis must be created with ContextTimeoutEnabled, so RedisTimeout bounds every call: a
	// *redis.Client for one instance, a *redis.ClusterClient for a cluster (redisenv.NewUniversalClient
	// makes either from REDIS_MODE). On a cluster a fill is checked against its table's floor copy in
	// the row's slot (rowcache.Store.Fill), and the L1 is invalidated through sharded pub/sub
	// (SSUBSCRIBE).
	Redis redis.UniversalClient
	// DB is the database to fall back to (go-sql-driver/mysql, opened with a DSN from CheckDSN);
	// nil serves from the cache alone.
	DB *sql.DB
	// Tables is the same table policy the apply function runs with (tablepolicy.FromEnv reads it from
	// the same CACHE_* variables), so both agree on keys and excluded columns.
	Tables tablepolicy.Config

	// Miss says what a miss does besides reading the database: MissFill (the default) or MissNoFill.
	// See the package documentation for what each guarantees.
	Miss MissMode
	// PolicyCheck says whether fills wait for the function's published policy to have Tables' read
	// layout: PolicyRequire (the default), PolicyIfPublished or PolicyOff. Checked at New and every
	// PolicyInterval (default 15s); see Client.PolicyStatus.
	PolicyCheck    PolicyCheck
	PolicyInterval time.Duration

	FillTTL      time.Duration // default 10m
	NotFoundTTL  time.Duration // default 0: "not found" is not cached (never with MissNoFill)
	RedisTimeout time.Duration // default 50ms
	DBTimeout    time.Duration // default 2s

	BreakerFailures int           // consecutive Redis failures that open the breaker; default 5
	BreakerCooldown time.Duration // first cool-down, doubling to 30s while probes fail; default 500ms

	// L1Size is the number of rows kept in process memory; 0 turns the L1 off.
	L1Size int
	// L1MaxAge caps how long a row is served from L1 even without an invalidation; default 10s.
	L1MaxAge time.Duration
	// L1PingInterval is how often the invalidation subscription is pinged; default 250ms. When nothing
	// has arrived on it for four intervals (a connection that died silently delivers nothing and
	// reports no error), the L1 is emptied and bypassed until a new subscription is confirmed.
	L1PingInterval time.Duration
	// InvalidationChannel must match the function's CACHE_INVALIDATION_CHANNEL.
	InvalidationChannel string

	MeterProvider metric.MeterProvider
}

// MissMode is what Get does on a miss besides reading the database.
type MissMode int

const (
	// MissFill stores the row read from the database in the cache (a fill: only where nothing is
	// stored, expiring after FillTTL), so the next read of it is a hit.
	MissFill MissMode = iota
	// MissNoFill reads the database and returns: only the change stream and its snapshot write the
	// cache, so nothing a reader does can put a row there.
	MissNoFill
)

func (m MissMode) String() string {
	switch m {
	case MissFill:
		return "fill"
	case MissNoFill:
		return "nofill"
	}
	return fmt.Sprintf("MissMode(%d)", int(m))
}

// ParseMissMode reads "fill" or "nofill" (as MissMode.String writes them).
func ParseMissMode(s string) (MissMode, error) {
	switch s {
	case "fill":
		return MissFill, nil
	case "nofill":
		return MissNoFill, nil
	}
	return 0, fmt.Errorf("readcache: miss mode %q is not fill or nofill", s)
}

// Client reads rows. It is safe for concurrent use; Close it to stop the L1 subscriber.
type Client struct {
	o       Options
	policy  *tablepolicy.Policy
	store   *rowcache.Store
	flight  singleflight.Group
	breaker *breaker
	l1      *l1
	meta    sync.Map // "db.table" → *mysqlrow.Table
	// floors: "db.table" → floorEntry, the table's floor as last read. A fill must pass a floor read
	// before its database read; one read earlier still is as good (floors only go up, so a floor that
	// moved since is refused), so it is read once and again only after a fill was refused.
	floors sync.Map
	stmts  sync.Map // "db.table" → *sql.Stmt, its SELECT by primary key
	fields sync.Map // reflect.Type → fieldMap: how Row.Scan fills a struct type
	// schemaGens: "db.table" → *atomic.Uint64, raised (under mu) whenever the table's columns and
	// statement are forgotten, so a load begun before that never stores what it read.
	schemaGens sync.Map
	mu         sync.Mutex
	closed     bool
	// loads[h] is when (nanoseconds since started) a flight of a key hashing to h last finished its
	// fill: a caller whose Redis read started before that may have missed that fill, and looks again
	// before querying. A collision only costs such a look.
	loads   [1024]atomic.Int64
	seed    maphash.Seed
	started time.Time
	m       metrics
	sub     *subscription // the L1's invalidations
	pol     policyState
	// stopPolicy ends the policy watcher; policyDone is closed when it has.
	stopPolicy context.CancelFunc
	policyDone chan struct{}
	sampler    atomic.Pointer[Sampler]

	// Test hooks: afterLoad runs between the database read and the fill (to interleave a change);
	// joined runs once a caller has joined the key's shared query.
	afterLoad func(key string)
	joined    func(key string)
}

// New validates o and returns a Client; with an L1 it starts the invalidation subscriber.
func New(ctx context.Context, o Options) (*Client, error) {
	if o.Redis == nil {
		return nil, errors.New("readcache: Options.Redis is required")
	}
	if !contextTimeoutEnabled(o.Redis) {
		return nil, errors.New("readcache: create the Redis client with ContextTimeoutEnabled: true, or RedisTimeout cannot bound its calls")
	}
	policy, err := tablepolicy.New(o.Tables)
	if err != nil {
		return nil, fmt.Errorf("readcache: %w", err)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.FillTTL, 10*time.Minute)
	def(&o.RedisTimeout, 50*time.Millisecond)
	def(&o.DBTimeout, 2*time.Second)
	def(&o.BreakerCooldown, 500*time.Millisecond)
	def(&o.L1MaxAge, 10*time.Second)
	def(&o.L1PingInterval, 250*time.Millisecond)
	if o.BreakerFailures <= 0 {
		o.BreakerFailures = 5
	}
	if o.InvalidationChannel == "" {
		o.InvalidationChannel = rowcache.DefaultInvalidationChannel
	}
	if o.Miss != MissFill && o.Miss != MissNoFill {
		return nil, fmt.Errorf("readcache: Options.Miss %v is not MissFill or MissNoFill", o.Miss)
	}
	if o.PolicyCheck != PolicyRequire && o.PolicyCheck != PolicyIfPublished && o.PolicyCheck != PolicyOff {
		return nil, fmt.Errorf("readcache: Options.PolicyCheck %v is not PolicyRequire, PolicyIfPublished or PolicyOff", o.PolicyCheck)
	}
	def(&o.PolicyInterval, 15*time.Second)
	c := &Client{
		seed:    maphash.MakeSeed(),
		started: time.Now(),
		o:       o,
		policy:  policy,
		store:   rowcache.NewStore(o.Redis, 0).WithInvalidationChannel(""),
		breaker: newBreaker(o.BreakerFailures, o.BreakerCooldown, 30*time.Second),
	}
	if c.m, err = newMetrics(o.MeterProvider); err != nil {
		return nil, err
	}
	c.pol.st.Check = o.PolicyCheck
	if o.PolicyCheck == PolicyOff {
		c.pol.st.FillAllowed = true
	} else {
		// The first verdict before the first read, so a Client never fills on a policy it has not
		// compared; then again every PolicyInterval, so a rollout or a changed reader is noticed.
		c.checkPolicy(ctx)
		var wctx context.Context
		wctx, c.stopPolicy = context.WithCancel(context.WithoutCancel(ctx))
		c.policyDone = make(chan struct{})
		go c.watchPolicy(wctx, o.PolicyInterval, c.policyDone)
	}
	if o.L1Size > 0 {
		// The L1 is trusted only while the subscription is confirmed and answers its pings, and is
		// emptied whenever that changes (invalidations may have been missed).
		c.l1 = newL1(o.L1Size, o.L1MaxAge)
		c.sub = startSubscription(ctx, o.Redis, o.InvalidationChannel, o.L1PingInterval, c.l1.invalidate, c.l1.setHealthy)
	}
	return c, nil
}

// contextTimeoutEnabled reports whether rdb was created with ContextTimeoutEnabled.
func contextTimeoutEnabled(rdb redis.UniversalClient) bool {
	switch r := rdb.(type) {
	case *redis.Client:
		return r.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return r.Options().ContextTimeoutEnabled
	}
	return false
}

// Close stops the invalidation subscriber and closes the client's prepared statements. It does not
// close the Redis client or the database.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.stmts.Range(func(k, st any) bool {
		_ = st.(*sql.Stmt).Close()
		c.stmts.Delete(k)
		return true
	})
	c.mu.Unlock()
	if c.stopPolicy != nil {
		c.stopPolicy()
		<-c.policyDone
	}
	if c.sub != nil {
		return c.sub.close()
	}
	return nil
}

// Get returns the row of table ("db.table") whose primary key is pk (the key columns' values in key
// order: integers, strings, or json.RawMessage for anything else, as Debezium encodes it).
func (c *Client) Get(ctx context.Context, table string, pk ...any) (Row, error) {
	s := c.sampler.Load()
	if s == nil {
		row, _, err := c.get(ctx, table, pk)
		return row, err
	}
	start := time.Now()
	row, sv, err := c.get(ctx, table, pk)
	s.offer(pk, row, sv, err, start, time.Now())
	return row, err
}

// served says what a read served, for the consistency sampler.
type served struct {
	t    *tablepolicy.Table
	meta *mysqlrow.Table
	key  string
	// deleted: the cache answered "not found" (a tombstone, or a cached not-found).
	deleted bool
	version rowcache.Version
	from    Source
	// fetched is when the value served was read from Redis (for an L1 row, by the read that stored
	// it), or when the query that read it from the database began.
	fetched time.Time
	// changesKey is where the changes of the row served land, if not key: a row the database found
	// under another spelling of its key.
	changesKey string
}

func (c *Client) get(ctx context.Context, table string, pk []any) (Row, served, error) {
	start := time.Now()
	t, meta, key, err := c.locate(ctx, table, pk)
	if err != nil {
		return Row{}, served{}, err
	}
	row, sv, err := c.getKey(ctx, start, t, meta, key, pk)
	if err == nil {
		row.table = &rowTable{c: c, db: t.DB, tb: t.Name}
	}
	return row, sv, err
}

// getKey is get once the row's key is known; start is when the read began.
func (c *Client) getKey(ctx context.Context, start time.Time, t *tablepolicy.Table, meta *mysqlrow.Table, key string, pk []any) (Row, served, error) {
	sv := served{t: t, meta: meta, key: key, from: FromDatabase}
	var gen uint64
	if c.l1 != nil {
		var row Row
		var hit bool
		if row, hit, gen = c.l1.get(key); hit {
			row.From = FromL1
			c.m.lookup(ctx, "l1_hit", FromL1, start)
			sv.from, sv.version, sv.fetched = FromL1, row.Version, row.fetched
			return row, sv, nil
		}
	}
	redisOK := false
	readStart := c.since()
	fetched := time.Now()
	if ok, probe := c.breaker.allow(); ok {
		rctx, cancel := context.WithTimeout(ctx, c.o.RedisTimeout)
		e, found, err := rowcache.Get(rctx, c.o.Redis, key)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			c.breaker.release(probe)
			return Row{}, served{}, ctx.Err()
		case errors.Is(err, redis.ErrPoolTimeout):
			// Every connection is busy: this process is saturated, Redis is not failing. Serve this read
			// from the database without opening the breaker.
			c.breaker.release(probe)
			c.m.redisErrors.Add(ctx, 1)
		case errors.Is(err, rowcache.ErrMalformed) || (err != nil && strings.Contains(err.Error(), "WRONGTYPE")):
			// Redis answered; the key holds another application's value. Not a Redis failure, and not
			// ours to overwrite: read the database, do not fill.
			c.breaker.success(probe)
		case err != nil:
			c.breaker.failure(probe)
			c.m.redisErrors.Add(ctx, 1)
		case found && e.Deleted():
			c.breaker.success(probe)
			c.m.lookup(ctx, "deleted", FromRedis, start)
			sv.from, sv.deleted, sv.version, sv.fetched = FromRedis, true, e.Version, fetched
			return Row{}, sv, ErrNotFound
		case found:
			c.breaker.success(probe)
			row := Row{JSON: e.Row, Version: e.Version, From: FromRedis, fetched: fetched}
			if c.l1 != nil {
				c.l1.put(key, row, gen)
			}
			c.m.lookup(ctx, "hit", FromRedis, start)
			sv.from, sv.version, sv.fetched = FromRedis, e.Version, fetched
			return row, sv, nil
		default:
			c.breaker.success(probe)
			redisOK = true
		}
	}
	if c.o.DB == nil {
		if redisOK {
			c.m.lookup(ctx, "miss", FromRedis, start)
			return Row{}, served{}, ErrNotCached
		}
		return Row{}, served{}, fmt.Errorf("%w: Redis failed and no database is configured", ErrUnavailable)
	}
	outcome := "miss"
	if !redisOK {
		outcome = "fallback"
	}
	row, l, err := c.load(ctx, t, meta, key, pk, redisOK, readStart)
	c.m.lookup(ctx, outcome, FromDatabase, start)
	sv.from, sv.version, sv.fetched, sv.deleted = l.from, l.version, l.fetched, l.from == FromRedis && !l.found
	if l.found && l.ownKey != "" {
		sv.changesKey = l.ownKey
	}
	return row, sv, err
}

// loaded is a flight's answer: the row (found false: "not found"), and where it came from. A flight
// that went to the database answers with the row as of its query, which began at fetched; a caller
// that joined the flight later may get a row older than its own start, by at most the query's time.
type loaded struct {
	row     Row
	found   bool
	from    Source
	version rowcache.Version // a tombstone's, from the re-check
	fetched time.Time
	ownKey  string // a row from the database: the key of its own primary-key values
}

// load reads the row from the database, once per key however many callers miss it at the same time,
// and fills the cache if Redis answered and the mode says so. readStart is when the caller's Redis
// read started.
func (c *Client) load(ctx context.Context, t *tablepolicy.Table, meta *mysqlrow.Table, key string, pk []any, redisOK bool, readStart int64) (Row, loaded, error) {
	fill := redisOK && c.o.Miss == MissFill && c.pol.fillAllowed()
	slot := &c.loads[maphash.String(c.seed, key)%uint64(len(c.loads))]
	ch := c.flight.DoChan(key, func() (any, error) {
		// Detached from the first caller: its cancellation must not fail the others sharing the query.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.DBTimeout)
		defer cancel()
		floor := ""
		if fill {
			if slot.Load() > readStart {
				// A herd's straggler: it missed Redis before the previous flight's fill landed and
				// started this flight after that one finished. Look again before going to the database.
				if l, done := c.recheck(dctx, key); done {
					return l, nil
				}
			}
			var ok, moved bool
			if floor, moved, ok = c.floor(dctx, t); !ok {
				fill = false
			} else if moved {
				// A truncate, a completed snapshot or a DDL statement since the floor was last read:
				// the table's columns may have changed (a changed row shape raises the floor), and a
				// fill in the old shape would be a row the function never writes. Read them again, after
				// the floor, so they are at least as new as the statement that raised it.
				c.forgetSchema(t.DB + "." + t.Name)
				meta = nil
			}
		}
		c.m.dbQueries.Add(dctx, 1)
		queried := time.Now()
		r, err := c.query(dctx, t, meta, pk)
		if err != nil {
			return nil, err
		}
		if c.afterLoad != nil {
			c.afterLoad(key)
		}
		if fill && r.fillKey != "" {
			if !c.fill(dctx, r.fillKey, t.FloorKey, floor, r.row, r.found) {
				// Refused: a change or another fill was there first, or the floor moved. Read the floor
				// again next time.
				c.floors.Store(t.DB+"."+t.Name, floorEntry{value: floor, recheck: true})
			}
			slot.Store(c.since())
		}
		r.row.fetched = queried
		return loaded{row: r.row, found: r.found, from: FromDatabase, fetched: queried, ownKey: r.fillKey}, nil
	})
	if c.joined != nil {
		c.joined(key)
	}
	select {
	case <-ctx.Done():
		return Row{}, loaded{}, ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			if !redisOK { // this caller came here because Redis failed or was skipped
				return Row{}, loaded{}, fmt.Errorf("%w: Redis is failing, and the database: %v", ErrUnavailable, r.Err)
			}
			return Row{}, loaded{}, r.Err
		}
		l := r.Val.(loaded)
		if !l.found {
			return Row{}, l, ErrNotFound
		}
		return l.row, l, nil
	}
}

// since is the time since the client started, in nanoseconds (monotonic).
func (c *Client) since() int64 { return int64(time.Since(c.started)) }

// recheck reads key again; done is true if Redis now answers for it (a row or a tombstone).
func (c *Client) recheck(ctx context.Context, key string) (loaded, bool) {
	fetched := time.Now()
	rctx, cancel := context.WithTimeout(ctx, c.o.RedisTimeout)
	e, found, err := rowcache.Get(rctx, c.o.Redis, key)
	cancel()
	switch {
	case err != nil || !found:
		return loaded{}, false
	case e.Deleted():
		return loaded{from: FromRedis, version: e.Version, fetched: fetched}, true
	default:
		row := Row{JSON: e.Row, Version: e.Version, From: FromRedis, fetched: fetched}
		return loaded{row: row, found: true, from: FromRedis, version: e.Version, fetched: fetched}, true
	}
}

// floorEntry is a table's floor as last read; recheck: a fill passing it was refused since, so it is
// read again before the next fill.
type floorEntry struct {
	value   string
	recheck bool
}

// floor returns the table's floor to pass to a fill ("" if none), reading it from Redis only when it
// is not known or a fill was refused since; moved is true if it was known and now holds another value.
// ok is false if it could not be read.
func (c *Client) floor(ctx context.Context, t *tablepolicy.Table) (floor string, moved, ok bool) {
	id := t.DB + "." + t.Name
	prev, known := c.floors.Load(id)
	if known && !prev.(floorEntry).recheck {
		return prev.(floorEntry).value, false, true
	}
	rctx, cancel := context.WithTimeout(ctx, c.o.RedisTimeout)
	f, err := c.o.Redis.Get(rctx, t.FloorKey).Result()
	cancel()
	switch {
	case errors.Is(err, redis.Nil):
		f = ""
	case err != nil:
		c.m.redisErrors.Add(ctx, 1)
		return "", false, false
	}
	c.floors.Store(id, floorEntry{value: f})
	return f, known && prev.(floorEntry).value != f, true
}

// schemaGen is the generation of a table's cached columns and statement.
func (c *Client) schemaGen(id string) *atomic.Uint64 {
	g, _ := c.schemaGens.LoadOrStore(id, new(atomic.Uint64))
	return g.(*atomic.Uint64)
}

// forgetSchema drops a table's columns and prepared statement, so the next query reads them again
// from the database. The statement is closed once every query that may have taken it is over (a query
// runs within DBTimeout of its flight's start).
func (c *Client) forgetSchema(id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.schemaGen(id).Add(1)
	c.meta.Delete(id)
	if st, ok := c.stmts.LoadAndDelete(id); ok {
		time.AfterFunc(c.o.DBTimeout+time.Second, func() { _ = st.(*sql.Stmt).Close() })
	}
}

// fill stores row (found false: "not found") at key; it reports false if the script refused it.
func (c *Client) fill(ctx context.Context, key, floorKey, floor string, row Row, found bool) bool {
	var data []byte
	ttl := c.o.FillTTL
	if found {
		data = row.JSON
	} else if c.o.NotFoundTTL > 0 {
		ttl = c.o.NotFoundTTL
	} else {
		return true
	}
	rctx, cancel := context.WithTimeout(ctx, c.o.RedisTimeout)
	defer cancel()
	stored, err := c.store.Fill(rctx, key, floorKey, floor, data, ttl)
	switch {
	case err != nil:
		c.m.redisErrors.Add(ctx, 1)
		return true
	case stored:
		c.m.fills.Add(ctx, 1, c.m.fillStored)
		return true
	default:
		// A change (or another fill) got there first; it is at least as new as what we read.
		c.m.fills.Add(ctx, 1, c.m.fillConflict)
		return false
	}
}

// dbRow is what the database answered for a primary key.
type dbRow struct {
	row   Row
	found bool
	// fillKey is where the answer may be cached: for a row, the key built from the row's own
	// primary-key values (never the caller's: "=" folds case, ignores trailing spaces and coerces
	// types, so the row found may have another key); for "not found", the key of the values as bound
	// if they are exact (see keyArg), else "".
	fillKey string
}

func (c *Client) query(ctx context.Context, t *tablepolicy.Table, meta *mysqlrow.Table, pk []any) (dbRow, error) {
	return c.queryOnce(ctx, t, meta, pk, false)
}

// schemaChanged reports whether a query failed because the table's columns or the table changed
// under its prepared statement: ER_BAD_FIELD_ERROR (a column dropped or renamed), ER_NO_SUCH_TABLE.
func schemaChanged(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1054 || me.Number == 1146)
}

func (c *Client) queryOnce(ctx context.Context, t *tablepolicy.Table, meta *mysqlrow.Table, pk []any, retried bool) (dbRow, error) {
	if meta == nil {
		m, err := c.metadata(ctx, t.DB, t.Name)
		if err != nil {
			return dbRow{}, err
		}
		meta = m
	}
	args, err := bindKeys(t, meta, pk)
	if err != nil {
		return dbRow{}, err
	}
	st, err := c.stmt(ctx, t, meta)
	if err != nil {
		return dbRow{}, err
	}
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = a.arg
	}
	rows, err := st.QueryContext(ctx, vals...)
	if err != nil {
		if !retried && schemaChanged(err) {
			// A column or the table itself is not what the statement was prepared for (a DDL the floor
			// has not told this client about yet, or a nofill client, which never reads it): read the
			// columns again and try once more.
			c.forgetSchema(t.DB + "." + t.Name)
			return c.queryOnce(ctx, t, nil, pk, true)
		}
		return dbRow{}, fmt.Errorf("readcache: query %s.%s: %w", t.DB, t.Name, err)
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return dbRow{}, fmt.Errorf("readcache: query %s.%s: %w", t.DB, t.Name, err)
		}
		out := dbRow{}
		if k, exact, err := boundKey(t, meta, args); err == nil && exact {
			out.fillKey = k
		}
		return out, nil
	}
	r, err := meta.ScanRow(rows)
	if err != nil {
		return dbRow{}, fmt.Errorf("readcache: read %s.%s: %w", t.DB, t.Name, err)
	}
	out := dbRow{row: Row{JSON: t.RowJSON(r), From: FromDatabase}, found: true}
	if own, err := meta.Key(r); err == nil {
		if k, err := t.Key(own); err == nil {
			out.fillKey = k
		}
	}
	return out, nil
}

// bindKeys binds the caller's primary-key values as their columns' types.
func bindKeys(t *tablepolicy.Table, meta *mysqlrow.Table, pk []any) ([]keyArg, error) {
	if len(meta.PrimaryKey) != len(pk) {
		return nil, fmt.Errorf("readcache: %s.%s has a %d-column primary key (%s), got %d values", t.DB, t.Name, len(meta.PrimaryKey), strings.Join(meta.PrimaryKey, ", "), len(pk))
	}
	args := make([]keyArg, len(pk))
	for i, name := range meta.PrimaryKey {
		col, ok := meta.Column(name)
		if !ok {
			return nil, fmt.Errorf("readcache: %s.%s: key column %s is not among its columns", t.DB, t.Name, name)
		}
		a, err := bindKey(col, pk[i])
		if err != nil {
			return nil, fmt.Errorf("readcache: %s.%s: %w", t.DB, t.Name, err)
		}
		args[i] = a
	}
	return args, nil
}

// boundKey is the key of the bound values, and whether every one of them is exact.
func boundKey(t *tablepolicy.Table, meta *mysqlrow.Table, args []keyArg) (string, bool, error) {
	key := make(debezium.Row, len(args))
	exact := true
	for i, a := range args {
		key[i] = debezium.Column{Name: meta.PrimaryKey[i], Value: a.value}
		exact = exact && a.exact
	}
	k, err := t.Key(key)
	if err != nil {
		return "", false, fmt.Errorf("readcache: %s.%s: %w", t.DB, t.Name, err)
	}
	return k, exact, nil
}

// locate finds the table's policy and the row's key.
func (c *Client) locate(ctx context.Context, table string, pk []any) (*tablepolicy.Table, *mysqlrow.Table, string, error) {
	db, name, ok := strings.Cut(table, ".")
	if !ok {
		return nil, nil, "", fmt.Errorf("readcache: table %q is not db.table", table)
	}
	t, ok := c.policy.Table(db, name)
	if !ok {
		return nil, nil, "", fmt.Errorf("readcache: table %s is not cached (not in CACHE_TABLES)", table)
	}
	if len(pk) == 0 {
		return nil, nil, "", fmt.Errorf("readcache: %s: no primary-key values given", table)
	}
	// Column names matter only to templates that name key columns; the database knows them. Other
	// tables build their key from the values alone, so a hit never waits for the database.
	var meta *mysqlrow.Table
	if t.KeyNamesColumns() {
		if c.o.DB == nil {
			return nil, nil, "", fmt.Errorf("readcache: %s: its key template names key columns, which needs Options.DB", table)
		}
		m, err := c.metadata(ctx, db, name)
		if err != nil {
			return nil, nil, "", err
		}
		meta = m
	} else if m, ok := c.meta.Load(db + "." + name); ok {
		meta = m.(*mysqlrow.Table)
	}
	if meta != nil {
		// The values as their columns' types make them, so "01" on an integer key reads row 1's key.
		args, err := bindKeys(t, meta, pk)
		if err != nil {
			return nil, nil, "", err
		}
		k, _, err := boundKey(t, meta, args)
		if err != nil {
			return nil, nil, "", err
		}
		return t, meta, k, nil
	}
	key := make(debezium.Row, len(pk))
	for i, v := range pk {
		raw, err := jsonValue(v)
		if err != nil {
			return nil, nil, "", fmt.Errorf("readcache: %s: key value %d: %w", table, i+1, err)
		}
		key[i] = debezium.Column{Name: strconv.Itoa(i), Value: raw}
	}
	k, err := t.Key(key)
	if err != nil {
		return nil, nil, "", fmt.Errorf("readcache: %s: %w", table, err)
	}
	return t, meta, k, nil
}

// stmt is the table's SELECT by primary key, prepared once: a query through database/sql with
// arguments is otherwise prepared, executed and closed every time, one more round trip to the
// database per miss. database/sql prepares it on each connection it runs on (so it holds one
// server-side statement per table and connection; see max_prepared_stmt_count) and Close closes them.
func (c *Client) stmt(ctx context.Context, t *tablepolicy.Table, meta *mysqlrow.Table) (*sql.Stmt, error) {
	id := t.DB + "." + t.Name
	if st, ok := c.stmts.Load(id); ok {
		return st.(*sql.Stmt), nil
	}
	gen := c.schemaGen(id).Load()
	st, err, _ := c.flight.Do("\x00stmt:"+id+":"+strconv.FormatUint(gen, 10), func() (any, error) {
		if st, ok := c.stmts.Load(id); ok {
			return st, nil
		}
		var where strings.Builder
		for i, col := range meta.PrimaryKey {
			if i > 0 {
				where.WriteString(" AND ")
			}
			where.WriteString(mysqlrow.QuoteIdent(col))
			where.WriteString(" = ?")
		}
		q := "SELECT " + meta.SelectList() + " FROM " + meta.QualifiedName() + " WHERE " + where.String()
		st, err := c.o.DB.PrepareContext(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("readcache: prepare the query of %s: %w", id, err)
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if c.closed {
			st.Close()
			return nil, errors.New("readcache: the client is closed")
		}
		if c.schemaGen(id).Load() != gen {
			// Forgotten while it was prepared: serve this query with it, keep nothing.
			time.AfterFunc(c.o.DBTimeout+time.Second, func() { _ = st.Close() })
			return st, nil
		}
		c.stmts.Store(id, st)
		return st, nil
	})
	if err != nil {
		return nil, err
	}
	return st.(*sql.Stmt), nil
}

func (c *Client) metadata(ctx context.Context, db, name string) (*mysqlrow.Table, error) {
	id := db + "." + name
	if m, ok := c.meta.Load(id); ok {
		return m.(*mysqlrow.Table), nil
	}
	// Once per table however many first reads arrive together; the "\x00" keeps these flights apart
	// from row keys.
	gen := c.schemaGen(id).Load()
	m, err, _ := c.flight.Do("\x00meta:"+id+":"+strconv.FormatUint(gen, 10), func() (any, error) {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.o.DBTimeout)
		defer cancel()
		m, err := mysqlrow.LoadTable(dctx, c.o.DB, db, name)
		if err != nil {
			return nil, fmt.Errorf("readcache: table %s: %w", id, err)
		}
		if len(m.PrimaryKey) == 0 {
			return nil, fmt.Errorf("readcache: table %s has no primary key, so it is not cached", id)
		}
		c.mu.Lock()
		if c.schemaGen(id).Load() == gen { // not forgotten while it was read
			c.meta.Store(id, m)
		}
		c.mu.Unlock()
		return m, nil
	})
	if err != nil {
		return nil, err
	}
	return m.(*mysqlrow.Table), nil
}

// jsonValue encodes a key value as Debezium does in the message key.
func jsonValue(v any) (json.RawMessage, error) {
	switch x := v.(type) {
	case json.RawMessage:
		return x, nil
	case int:
		return strconv.AppendInt(nil, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(nil, x, 10), nil
	case string, []byte, bool, int8, int16, int32, uint, uint8, uint16, uint32, uint64:
		if b, ok := x.([]byte); ok {
			x = string(b)
		}
		b, err := json.Marshal(x)
		return b, err
	}
	return nil, fmt.Errorf("unsupported type %T: pass integers, strings, or json.RawMessage as Debezium encodes the column", v)
}
