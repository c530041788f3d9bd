package readcache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy/published"
)

// fixture: a real MariaDB with a shop schema and a real redis-server.
type fixture struct {
	t      *testing.T
	redis  *redisserver.TestServer  // nil on a cluster
	rc     *redisserver.TestCluster // nil on one instance
	rdb    redis.UniversalClient
	db     *sql.DB
	my     *mariadbserver.TestServer
	store  *rowcache.Store // the apply function's writer
	reader *sdkmetric.ManualReader
	// meters is shared by every client of the fixture: a reader registers with one provider only,
	// so a provider per client would leave all but the first client's metrics uncounted.
	meters *sdkmetric.MeterProvider
	// unpublished: client does not publish its policy as the function's before creating a client.
	unpublished bool
}

// publish publishes cfg as the function's policy, seen at now.
func (f *fixture) publish(cfg tablepolicy.Config, now time.Time) {
	f.t.Helper()
	p, err := tablepolicy.New(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := published.Publish(context.Background(), f.rdb, p, "test-function", now); err != nil {
		f.t.Fatal(err)
	}
}

const floorKey = "cloudsql-cache:truncated:shop.customers"

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return startFixture(t, &fixture{t: t, redis: redisserver.StartForTest(t, redisserver.Options{})})
}

// newClusterFixture is newFixture on a 3-primary cluster with replicas: the readers and the writer on
// cluster clients.
func newClusterFixture(t *testing.T) *fixture {
	t.Helper()
	return startFixture(t, &fixture{t: t, rc: redisserver.StartClusterForTest(t, redisserver.ClusterOptions{Primaries: 3, Replicas: 1})})
}

func startFixture(t *testing.T, f *fixture) *fixture {
	t.Helper()
	my := mariadbserver.StartForTest(t, mariadbserver.Options{})
	f.my = my
	f.reader = sdkmetric.NewManualReader()
	f.meters = sdkmetric.NewMeterProvider(sdkmetric.WithReader(f.reader))
	f.db = my.DB("shop")
	my.Exec(f.db,
		"CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, balance DECIMAL(10,2) NOT NULL, secret VARCHAR(64))",
		"CREATE TABLE line_items (order_id VARCHAR(32), line INT, qty INT NOT NULL, PRIMARY KEY (order_id, line))",
		"INSERT INTO customers VALUES (1, 'Ann', 12.3, 'pii'), (2, 'Bob', 0, NULL)",
		"INSERT INTO line_items VALUES ('a:b', 2, 5)",
	)
	f.rdb = f.newRedisClient()
	f.store = rowcache.NewStore(f.rdb, time.Hour)
	return f
}

func (f *fixture) newRedisClient() redis.UniversalClient {
	var c redis.UniversalClient
	if f.rc != nil {
		o := f.rc.ClusterOptions()
		o.ContextTimeoutEnabled, o.DialTimeout, o.ReadTimeout, o.WriteTimeout = true, 5*time.Second, 5*time.Second, 5*time.Second
		c = redis.NewClusterClient(o)
	} else {
		c = redis.NewClient(&redis.Options{Addr: f.redis.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1,
			DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
	}
	f.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (f *fixture) client(mod func(*Options)) *Client {
	f.t.Helper()
	o := Options{
		Redis:         f.newRedisClient(),
		DB:            f.db,
		Tables:        tablepolicy.Config{ExcludeColumns: []string{"shop.customers.secret"}},
		MeterProvider: f.meters,
		// The production default (50 ms) would let a loaded test machine turn a slow reply into a
		// fallback the assertions do not expect; tests of slowness set their own. Likewise a pong
		// delayed by a second would make the L1 reset itself (4 s here).
		RedisTimeout:   10 * time.Second,
		L1PingInterval: time.Second,
	}
	if mod != nil {
		mod(&o)
	}
	if o.PolicyCheck == PolicyRequire && o.Miss == MissFill && !f.unpublished {
		// The function the tests play runs with the reader's own policy, and publishes it as the
		// function does; policy_test.go covers the other cases. A test that stopped Redis gets a
		// client that found nothing published (and does not fill), which it does not look at.
		if p, err := tablepolicy.New(o.Tables); err == nil {
			_ = published.Publish(context.Background(), f.rdb, p, "test-function", time.Now())
		}
	}
	c, err := New(context.Background(), o)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = c.Close() })
	return c
}

// counter sums a counter's data points, optionally only those with attribute result=res.
func (f *fixture) counter(name, res string) int64 {
	f.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := f.reader.Collect(context.Background(), &rm); err != nil {
		f.t.Fatal(err)
	}
	var n int64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				if v, _ := dp.Attributes.Value("result"); res == "" || v.AsString() == res {
					n += dp.Value
				}
			}
		}
	}
	return n
}

func TestMissFillsThenHits(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	row, err := c.Get(ctx, "shop.customers", 1)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"id":1,"name":"Ann","balance":"12.30"}` // Debezium's encoding, secret excluded
	if string(row.JSON) != want || row.From != FromDatabase {
		t.Fatalf("miss: %s from %s", row.JSON, row.From)
	}
	if got := f.rdb.Get(ctx, "shop.customers:1").Val(); got != "0.0.0.0.0 "+want {
		t.Fatalf("filled value %q", got)
	}
	if ttl := f.rdb.PTTL(ctx, "shop.customers:1").Val(); ttl <= 0 || ttl > 10*time.Minute {
		t.Fatalf("fill TTL %v", ttl)
	}
	row, err = c.Get(ctx, "shop.customers", 1)
	if err != nil || row.From != FromRedis || string(row.JSON) != want {
		t.Fatalf("second read: %s from %s (%v)", row.JSON, row.From, err)
	}
	var cust struct {
		ID      int    `json:"id"`
		Balance string `json:"balance"`
	}
	if cust, err = GetAs[struct {
		ID      int    `json:"id"`
		Balance string `json:"balance"`
	}](ctx, c, "shop.customers", 1); err != nil || cust.ID != 1 || cust.Balance != "12.30" {
		t.Fatalf("GetAs: %+v %v", cust, err)
	}
	// Composite keys, escaped as the apply function escapes them.
	row, err = c.Get(ctx, "shop.line_items", "a:b", 2)
	if err != nil || string(row.JSON) != `{"order_id":"a:b","line":2,"qty":5}` {
		t.Fatalf("composite: %s %v", row.JSON, err)
	}
	if f.rdb.Exists(ctx, "shop.line_items:a%3Ab:2").Val() != 1 {
		t.Fatal("composite key not filled under the escaped key")
	}
	if q := f.counter("cloudsql_cache.read.db_queries", ""); q != 2 {
		t.Fatalf("%d database queries, want 2", q)
	}
	if _, err := c.Get(ctx, "shop.customers", 1, 2); err == nil {
		t.Fatal("two values for a one-column key: want an error")
	}
	if _, err := c.Get(ctx, "shop.customers", 1.5); err == nil {
		t.Fatal("unsupported key type: want an error")
	}
}

func TestTombstoneIsNotFoundWithoutTheDatabase(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	if _, err := f.store.Delete(ctx, "shop.customers:1", floorKey, rowcache.Version{File: 1, Pos: 9}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "shop.customers", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if q := f.counter("cloudsql_cache.read.db_queries", ""); q != 0 {
		t.Fatalf("a tombstone cost %d database queries", q)
	}
}

// Without a database, "deleted" and "not cached yet" are different answers: a tombstone is ErrNotFound,
// an empty key ErrNotCached (and not ErrNotFound), though the row exists in the database.
func TestMissWithoutTheDatabaseIsNotCached(t *testing.T) {
	f := newFixture(t)
	c := f.client(func(o *Options) { o.DB = nil })
	ctx := context.Background()
	if _, err := f.store.Delete(ctx, "shop.customers:2", floorKey, rowcache.Version{File: 1, Pos: 9}); err != nil {
		t.Fatal(err)
	}
	_, err := c.Get(ctx, "shop.customers", 1) // in the database, not in Redis
	if !errors.Is(err, ErrNotCached) || errors.Is(err, ErrNotFound) {
		t.Fatalf("miss without a database: err = %v, want ErrNotCached and not ErrNotFound", err)
	}
	_, err = c.Get(ctx, "shop.customers", 2)
	if !errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotCached) {
		t.Fatalf("tombstone without a database: err = %v, want ErrNotFound and not ErrNotCached", err)
	}
	// With the database, a row it does not have is ErrNotFound.
	if _, err := f.client(nil).Get(ctx, "shop.customers", 42); !errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotCached) {
		t.Fatalf("absent row with a database: err = %v, want ErrNotFound", err)
	}
}

// The fill reads the old row, a change lands, the fill arrives late: the cache must end with the change.
func TestLateFillLosesToChange(t *testing.T) { lateFillLosesToChange(t, newFixture(t)) }

func TestClusterLateFillLosesToChange(t *testing.T) { lateFillLosesToChange(t, newClusterFixture(t)) }

func lateFillLosesToChange(t *testing.T, f *fixture) {
	c := f.client(nil)
	ctx := context.Background()
	update := `{"id":1,"name":"Ann (updated)","balance":"99.00"}`
	c.afterLoad = func(key string) {
		if _, err := f.db.Exec("UPDATE customers SET name='Ann (updated)', balance=99 WHERE id=1"); err != nil {
			t.Error(err)
		}
		if _, err := f.store.Upsert(ctx, key, floorKey, rowcache.Version{File: 1, Pos: 500}, []byte(update)); err != nil {
			t.Error(err)
		}
	}
	row, err := c.Get(ctx, "shop.customers", 1)
	if err != nil || row.From != FromDatabase {
		t.Fatalf("%s %v", row.JSON, err)
	}
	if got := f.rdb.Get(ctx, "shop.customers:1").Val(); got != "0.0.1.500.0 "+update {
		t.Fatalf("cache holds %q after the late fill, want the update", got)
	}
	if n := f.counter("cloudsql_cache.read.fills", "conflict"); n != 1 {
		t.Fatalf("fill conflicts %d", n)
	}
	// And the other order: the fill lands first, the change replaces it.
	c.afterLoad = nil
	if _, err := c.Get(ctx, "shop.customers", 2); err != nil {
		t.Fatal(err)
	}
	if r, _ := f.store.Upsert(ctx, "shop.customers:2", floorKey, rowcache.Version{File: 1, Pos: 1}, []byte(`{"id":2}`)); r != rowcache.Applied {
		t.Fatalf("change over a fill: %v", r)
	}
}

// The fill reads a row, the table is truncated (its sweep finds nothing to delete for this key), the fill
// arrives late: it must not bring the truncated row back.
func TestLateFillLosesToTruncate(t *testing.T) { lateFillLosesToTruncate(t, newFixture(t)) }

// On a cluster the fill is checked against the floor copy in its row's slot, which the truncate raised.
func TestClusterLateFillLosesToTruncate(t *testing.T) {
	lateFillLosesToTruncate(t, newClusterFixture(t))
}

func lateFillLosesToTruncate(t *testing.T, f *fixture) {
	c := f.client(nil)
	ctx := context.Background()
	c.afterLoad = func(key string) {
		if _, err := f.db.Exec("TRUNCATE TABLE customers"); err != nil {
			t.Error(err)
		}
		if _, _, err := f.store.Truncate(ctx, rowcache.TableKeys{FloorKey: floorKey, Pattern: "shop.customers:*"}, rowcache.Version{File: 2, Pos: 4}); err != nil {
			t.Error(err)
		}
	}
	if _, err := c.Get(ctx, "shop.customers", 1); err != nil {
		t.Fatal(err)
	}
	if n := f.rdb.Exists(ctx, "shop.customers:1").Val(); n != 0 {
		t.Fatalf("a fill read before the truncate was stored after it: %q", f.rdb.Get(ctx, "shop.customers:1").Val())
	}
	c.afterLoad = nil
	if _, err := c.Get(ctx, "shop.customers", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after the truncate: %v", err)
	}
}

func TestNotFoundCachedUntilInsert(t *testing.T) {
	f := newFixture(t)
	c := f.client(func(o *Options) { o.NotFoundTTL = time.Minute })
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if _, err := c.Get(ctx, "shop.customers", 42); !errors.Is(err, ErrNotFound) {
			t.Fatalf("err = %v", err)
		}
	}
	if q := f.counter("cloudsql_cache.read.db_queries", ""); q != 1 {
		t.Fatalf("%d queries for a cached not-found", q)
	}
	if r, _ := f.store.Upsert(ctx, "shop.customers:42", floorKey, rowcache.Version{File: 1, Pos: 7}, []byte(`{"id":42}`)); r != rowcache.Applied {
		t.Fatalf("the insert did not override the cached not-found: %v", r)
	}
	if row, err := c.Get(ctx, "shop.customers", 42); err != nil || string(row.JSON) != `{"id":42}` {
		t.Fatalf("%s %v", row.JSON, err)
	}
}

func TestConcurrentMissesShareOneQuery(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	const n = 1000
	var joined atomic.Int64
	c.joined = func(string) { joined.Add(1) }
	c.afterLoad = func(string) {
		// Hold the query until every caller has joined it, so the test does not depend on timing.
		deadline := time.Now().Add(20 * time.Second)
		for joined.Load() < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(context.Background(), "shop.customers", 1); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if joined.Load() != n {
		t.Fatalf("%d callers joined", joined.Load())
	}
	if q := f.counter("cloudsql_cache.read.db_queries", ""); q != 1 {
		t.Fatalf("%d concurrent misses made %d database queries, want 1", n, q)
	}
}

func TestRedisDownFallsBackAndBreaks(t *testing.T) {
	f := newFixture(t)
	c := f.client(func(o *Options) { o.BreakerFailures = 3; o.BreakerCooldown = time.Hour })
	ctx := context.Background()
	f.redis.Kill()
	before := runtime.NumGoroutine()
	for i := 0; i < 50; i++ {
		row, err := c.Get(ctx, "shop.customers", 1)
		if err != nil || row.From != FromDatabase {
			t.Fatalf("with Redis down: %v %v", row.From, err)
		}
	}
	if e := f.counter("cloudsql_cache.read.redis_errors", ""); e != 3 {
		t.Fatalf("%d Redis errors: the breaker should have stopped calling Redis after 3", e)
	}
	if n := f.counter("cloudsql_cache.read.lookups", "fallback"); n != 50 {
		t.Fatalf("fallbacks %d", n)
	}
	if after := runtime.NumGoroutine(); after > before+10 {
		t.Fatalf("goroutines grew from %d to %d", before, after)
	}
	// The database down too: a clear error.
	broken, _ := sql.Open("mysql", "root@tcp(127.0.0.1:1)/shop")
	c2 := f.client(func(o *Options) { o.DB = broken; o.DBTimeout = time.Second })
	c2.meta.Store("shop.customers", mustMeta(t, c, "shop", "customers"))
	if _, err := c2.Get(ctx, "shop.customers", 1); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// A Redis that answers too slowly is treated like one that is down: each read is served from the
// database within RedisTimeout, and after BreakerFailures timeouts the client stops asking Redis.
func TestRedisSlowFallsBackAndBreaks(t *testing.T) {
	f := newFixture(t)
	c := f.client(func(o *Options) {
		o.RedisTimeout = 50 * time.Millisecond
		o.BreakerFailures = 2
		o.BreakerCooldown = time.Hour
	})
	ctx := context.Background()
	// Cached, so that a read that waited for Redis would come back from Redis, not the database.
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, rowcache.Version{File: 1, Pos: 10}, []byte(`{"id":1}`)); err != nil {
		t.Fatal(err)
	}
	// Every client's commands wait until the pause ends, 5 s from now: far beyond RedisTimeout.
	if err := f.newRedisClient().Do(ctx, "CLIENT", "PAUSE", 5000, "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		row, err := c.Get(ctx, "shop.customers", 1)
		if err != nil || row.From != FromDatabase {
			t.Fatalf("with Redis paused: %v %v", row.From, err)
		}
	}
	if e := f.counter("cloudsql_cache.read.redis_errors", ""); e != 2 {
		t.Fatalf("%d Redis errors: the breaker should have stopped calling Redis after 2 timeouts", e)
	}
}

func mustMeta(t *testing.T, c *Client, db, table string) any {
	t.Helper()
	m, err := c.metadata(context.Background(), db, table)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestForeignValueIsNotARedisFailure(t *testing.T) {
	f := newFixture(t)
	c := f.client(func(o *Options) { o.BreakerFailures = 2 })
	ctx := context.Background()
	if err := f.rdb.Set(ctx, "shop.customers:1", "another application's value", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if err := f.rdb.LPush(ctx, "shop.customers:2", "x").Err(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		for _, id := range []int{1, 2} {
			if row, err := c.Get(ctx, "shop.customers", id); err != nil || row.From != FromDatabase {
				t.Fatalf("id %d: %v %v", id, row.From, err)
			}
		}
	}
	if e := f.counter("cloudsql_cache.read.redis_errors", ""); e != 0 {
		t.Fatalf("%d Redis errors counted for foreign values", e)
	}
	if f.rdb.Get(ctx, "shop.customers:1").Val() != "another application's value" {
		t.Fatal("a foreign value was overwritten by a fill")
	}
	if _, err := c.Get(ctx, "shop.customers", 99); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the breaker opened: %v", err)
	}
}

func TestBreakerReleasesAnAbandonedProbe(t *testing.T) {
	b := newBreaker(1, time.Second, time.Second)
	now := time.Unix(0, 0)
	b.now = func() time.Time { return now }
	b.failure(false)
	now = now.Add(time.Second)
	_, probe := b.allow()
	b.release(probe) // the caller gave up before Redis answered
	if ok, probe := b.allow(); !ok || !probe {
		t.Fatal("an abandoned probe kept the breaker shut for good")
	}
}

func TestBreakerProbesAndRecovers(t *testing.T) {
	b := newBreaker(2, time.Second, 4*time.Second)
	now := time.Unix(0, 0)
	b.now = func() time.Time { return now }
	b.failure(false)
	b.failure(false)
	if ok, _ := b.allow(); ok {
		t.Fatal("open breaker allowed a call")
	}
	now = now.Add(time.Second)
	ok, probe := b.allow()
	if !ok || !probe {
		t.Fatal("no probe after the cool-down")
	}
	if ok, _ := b.allow(); ok {
		t.Fatal("a second call while the probe is in flight")
	}
	b.failure(true) // cool-down doubles
	now = now.Add(time.Second)
	if ok, _ := b.allow(); ok {
		t.Fatal("probe before the doubled cool-down")
	}
	now = now.Add(time.Second)
	ok, probe = b.allow()
	b.success(probe)
	if ok, probe := b.allow(); !ok || probe {
		t.Fatal("breaker did not close after a successful probe")
	}
}

// Two replicas of a service, each with an L1: after a change is applied, neither serves the old row
// for longer than the invalidation takes to arrive.
func TestL1TwoReplicasInvalidated(t *testing.T) { l1TwoReplicasInvalidated(t, newFixture(t)) }

// On a cluster, through sharded pub/sub; and again after the channel's slot moved to another primary
// (the old one ends the subscription, the readers subscribe where it went).
func TestClusterL1TwoReplicasInvalidated(t *testing.T) {
	f := newClusterFixture(t)
	replicas := l1TwoReplicasInvalidated(t, f)
	ctx := context.Background()
	slot := rowcache.KeySlot(rowcache.DefaultInvalidationChannel)
	owner, err := f.rc.Cluster.SlotOwner(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	var to string
	for _, p := range f.rc.Primaries() {
		if p.ID != owner.ID && to == "" {
			to = p.Addr
		}
	}
	downs := make([]int, len(replicas))
	for i, r := range replicas {
		r.l1.mu.Lock()
		downs[i] = r.l1.downs
		r.l1.mu.Unlock()
	}
	m, err := f.rc.StartMigration(ctx, slot, to)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	f.rdb.(*redis.ClusterClient).ReloadState(ctx)
	f.store.Cluster().ReloadState(ctx)
	// The old primary ends the subscription (sunsubscribe): each replica's L1 goes down, and must come
	// up again on a subscription at the slot's new primary before the change below, or the change's
	// invalidation would be missed and the L1 would serve version 20 until the test gives up.
	for i, r := range replicas {
		deadline := time.Now().Add(30 * time.Second)
		for {
			r.l1.mu.Lock()
			moved, up := r.l1.downs > downs[i], r.l1.healthy
			r.l1.mu.Unlock()
			if moved && up {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("replica %d: its subscription was not ended and made again at the slot's new primary (down %v, up %v)", i, moved, up)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	for i, r := range replicas {
		if _, err := r.Get(ctx, "shop.customers", 1); err != nil {
			t.Fatal(err)
		}
		if row, _ := r.Get(ctx, "shop.customers", 1); row.From != FromL1 || row.Version.Pos != 20 {
			t.Fatalf("replica %d: %s version %v", i, row.From, row.Version)
		}
	}
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, rowcache.Version{File: 1, Pos: 30}, []byte(`{"id":1,"v":3}`)); err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	for i, r := range replicas {
		for {
			row, err := r.Get(ctx, "shop.customers", 1)
			if err != nil {
				t.Fatal(err)
			}
			if row.Version.Pos == 30 {
				break
			}
			if time.Since(applied) > 30*time.Second {
				t.Fatalf("replica %d still serves version %v 30s after the change, with the channel's slot moved", i, row.Version)
			}
			time.Sleep(time.Millisecond)
		}
	}
}

func l1TwoReplicasInvalidated(t *testing.T, f *fixture) []*Client {
	// L1MaxAge far beyond the test: only the invalidation can make a replica see the change.
	l1 := func(o *Options) { o.L1Size, o.L1MaxAge = 100, time.Hour }
	replicas := []*Client{f.client(l1), f.client(l1)}
	ctx := context.Background()
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, rowcache.Version{File: 1, Pos: 10}, []byte(`{"id":1,"v":1}`)); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, replicas...)
	for _, r := range replicas {
		for i := 0; i < 2; i++ {
			if _, err := r.Get(ctx, "shop.customers", 1); err != nil {
				t.Fatal(err)
			}
		}
		if row, _ := r.Get(ctx, "shop.customers", 1); row.From != FromL1 {
			t.Fatalf("third read from %s, want l1", row.From)
		}
	}
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, rowcache.Version{File: 1, Pos: 20}, []byte(`{"id":1,"v":2}`)); err != nil {
		t.Fatal(err)
	}
	applied := time.Now()
	for i, r := range replicas {
		for {
			row, err := r.Get(ctx, "shop.customers", 1)
			if err != nil {
				t.Fatal(err)
			}
			if row.Version.Pos == 20 {
				t.Logf("replica %d saw the change %v after it was applied", i, time.Since(applied))
				break
			}
			if time.Since(applied) > 30*time.Second {
				t.Fatalf("replica %d still serves version %v 30s after the change", i, row.Version)
			}
			time.Sleep(time.Millisecond)
		}
	}
	if n := f.counter("cloudsql_cache.read.lookups", "l1_hit"); n < 2 {
		t.Fatalf("l1 hits %d", n)
	}
	return replicas
}

func waitHealthy(t *testing.T, cs ...*Client) {
	t.Helper()
	for _, c := range cs {
		deadline := time.Now().Add(30 * time.Second)
		for {
			c.l1.mu.Lock()
			ok := c.l1.healthy
			c.l1.mu.Unlock()
			if ok {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the invalidation subscription never came up")
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// A read that fetched a row just before a change must not store it in L1 after the change's
// invalidation went by.
func TestL1RefusesARowThatRacedAnInvalidation(t *testing.T) {
	l := newL1(10, time.Minute)
	l.setHealthy(true)
	_, _, gen := l.get("k")
	l.invalidate("k") // the change's invalidation arrives while the read is in flight
	l.put("k", Row{JSON: []byte(`{"old":true}`)}, gen)
	if _, hit, _ := l.get("k"); hit {
		t.Fatal("stored a row older than an invalidation it raced")
	}
	_, _, gen = l.get("k")
	l.put("k", Row{JSON: []byte(`{}`)}, gen)
	if _, hit, _ := l.get("k"); !hit {
		t.Fatal("a clean read was not stored")
	}
	l.setHealthy(false)
	if _, hit, _ := l.get("k"); hit {
		t.Fatal("L1 served while the subscription is down")
	}
	// Size bound.
	l.setHealthy(true)
	for i := 0; i < 25; i++ {
		_, _, gen := l.get(fmt.Sprint(i))
		l.put(fmt.Sprint(i), Row{}, gen)
	}
	if l.ll.Len() != 10 {
		t.Fatalf("L1 holds %d rows, bound 10", l.ll.Len())
	}
}

// The L1's invalidations arrive over one long-lived connection. Cut silently (a TCP proxy that stops
// forwarding: no FIN, no RST, as after a dead peer or a dropped NAT entry), the connection looks open
// and invalidations simply stop. The client must notice (a ping through the subscription goes
// unanswered), stop trusting the L1, and come back on a new connection; otherwise the L1 serves a row
// its change has superseded until L1MaxAge, here an hour.
func TestL1DetectsASilentlyDeadSubscription(t *testing.T) {
	f := newFixture(t)
	proxy := startProxy(t, f.redis.Addr())
	c := f.client(func(o *Options) {
		o.Redis = redis.NewClient(&redis.Options{Addr: proxy.Addr(), ContextTimeoutEnabled: true, MaxRetries: -1,
			DialTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second})
		t.Cleanup(func() { o.Redis.Close() })
		o.L1Size, o.L1MaxAge = 100, time.Hour
		o.RedisTimeout = time.Second
		o.L1PingInterval = 50 * time.Millisecond // a dead subscription shows after 200 ms of silence
	})
	ctx := context.Background()
	v1, v2 := `{"id":1,"name":"Ann","balance":"12.30"}`, `{"id":1,"name":"Ann (changed)","balance":"12.30"}`
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, rowcache.Version{File: 1, Pos: 10}, []byte(v1)); err != nil {
		t.Fatal(err)
	}
	waitHealthy(t, c)
	for i := 0; i < 2; i++ {
		if _, err := c.Get(ctx, "shop.customers", 1); err != nil {
			t.Fatal(err)
		}
	}
	if row, _ := c.Get(ctx, "shop.customers", 1); row.From != FromL1 {
		t.Fatalf("not served from L1: %s", row.From)
	}
	if n := proxy.freeze(); n < 2 {
		t.Fatalf("%d connections through the proxy, want the subscription's and the reads'", n)
	}
	cut := time.Now()
	stop, stopped := make(chan struct{}), make(chan struct{})
	defer func() { close(stop); <-stopped }()
	go func() { // when the L1 stopped being trusted: the reads below also wait out frozen connections
		defer close(stopped)
		for time.Since(cut) < 30*time.Second {
			select {
			case <-stop:
				return
			default:
			}
			c.l1.mu.Lock()
			ok := c.l1.healthy
			c.l1.mu.Unlock()
			if !ok {
				t.Logf("the L1 was bypassed %v after the cut", time.Since(cut))
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	if _, err := f.db.Exec("UPDATE customers SET name = 'Ann (changed)' WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, rowcache.Version{File: 1, Pos: 20}, []byte(v2)); err != nil {
		t.Fatal(err)
	}
	// Wait on state: the first read that no longer serves v1 from L1.
	for {
		row, err := c.Get(ctx, "shop.customers", 1)
		if err == nil && !(row.From == FromL1 && string(row.JSON) == v1) {
			if string(row.JSON) != v2 {
				t.Fatalf("after the cut: %s from %s", row.JSON, row.From)
			}
			t.Logf("the superseded row stopped being served %v after the cut (from %s)", time.Since(cut), row.From)
			break
		}
		if time.Since(cut) > 30*time.Second {
			t.Fatalf("30s after the connection was cut silently, the L1 still serves the superseded row")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// A new connection is made through the proxy (it forwards new connections): the L1 is trusted
	// again, and serves the new row.
	waitHealthy(t, c)
	for {
		row, err := c.Get(ctx, "shop.customers", 1)
		if err != nil || string(row.JSON) != v2 {
			t.Fatalf("after the subscription came back: %s (%v)", row.JSON, err)
		}
		if row.From == FromL1 {
			break
		}
		if time.Since(cut) > 60*time.Second {
			t.Fatal("the L1 never served again after the subscription came back")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
