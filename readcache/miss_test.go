package readcache

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// roundTrips counts the commands a Redis client sends, one per round trip (a pipeline counts once),
// except a new connection's handshake (HELLO, then a pipeline of CLIENT SETINFO).
type roundTrips struct {
	mu   sync.Mutex
	cmds []string
}

func (r *roundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (r *roundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if cmd.Name() != "hello" {
			r.mu.Lock()
			r.cmds = append(r.cmds, strings.ToUpper(cmd.Name()))
			r.mu.Unlock()
		}
		return next(ctx, cmd)
	}
}
func (r *roundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		handshake := true
		for _, c := range cmds {
			handshake = handshake && c.Name() == "client"
		}
		if !handshake {
			r.mu.Lock()
			r.cmds = append(r.cmds, "PIPELINE")
			r.mu.Unlock()
		}
		return next(ctx, cmds)
	}
}

// take returns the commands counted since the last take.
func (r *roundTrips) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.cmds
	r.cmds = nil
	return out
}

// A miss in each mode costs exactly these Redis round trips besides the query: no fill, the GET that
// missed; fill, that GET and the fill (the table's truncate floor is read once, before the first fill,
// and again only after a fill was refused).
func TestMissRoundTrips(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	// The script in Redis's script cache, as it is once the function has applied one change (the very
	// first EVALSHA on a fresh Redis is answered NOSCRIPT and sent again as EVAL).
	if _, err := f.store.Upsert(ctx, "warm-up", floorKey, rowcache.Version{}, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode        MissMode
		first, next string
	}{
		{MissNoFill, "GET", "GET"},
		{MissFill, "GET GET EVALSHA", "GET EVALSHA"},
	} {
		rt := &roundTrips{}
		c := f.client(func(o *Options) { o.Miss = tc.mode; o.Redis.AddHook(rt) })
		if err := c.o.Redis.Ping(ctx).Err(); err != nil { // the connection's handshake, not counted
			t.Fatal(err)
		}
		rt.take()
		for i, id := range []int{1, 2} {
			f.rdb.Del(ctx, "shop.customers:1", "shop.customers:2")
			row, err := c.Get(ctx, "shop.customers", id)
			if err != nil || row.From != FromDatabase {
				t.Fatalf("%v: miss of %d: %v %v", tc.mode, id, row.From, err)
			}
			want := tc.first
			if i > 0 {
				want = tc.next
			}
			if got := strings.Join(rt.take(), " "); got != want {
				t.Errorf("%v: miss %d sent %q, want %q", tc.mode, i+1, got, want)
			}
		}
	}
}

// No fill: a miss leaves Redis as it was, "not found" is never cached, and a row the change stream
// writes later is served from Redis.
func TestNoFillLeavesTheCacheToTheChangeStream(t *testing.T) {
	f := newFixture(t)
	c := f.client(func(o *Options) { o.Miss = MissNoFill; o.NotFoundTTL = time.Hour })
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		row, err := c.Get(ctx, "shop.customers", 1)
		if err != nil || row.From != FromDatabase || string(row.JSON) != `{"id":1,"name":"Ann","balance":"12.30"}` {
			t.Fatalf("read %d: %s from %s (%v)", i, row.JSON, row.From, err)
		}
		if _, err := c.Get(ctx, "shop.customers", 42); !errors.Is(err, ErrNotFound) {
			t.Fatalf("missing row: %v", err)
		}
	}
	if n := f.rdb.DBSize(ctx).Val(); n != 0 {
		t.Fatalf("a no-fill client wrote %d keys: %v", n, f.keys("*"))
	}
	if q := f.counter("cloudsql_cache.read.db_queries", ""); q != 4 {
		t.Fatalf("%d queries for 4 misses", q)
	}
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, rowcache.Version{File: 1, Pos: 5}, []byte(`{"id":1}`)); err != nil {
		t.Fatal(err)
	}
	if row, err := c.Get(ctx, "shop.customers", 1); err != nil || row.From != FromRedis || row.Version.Pos != 5 {
		t.Fatalf("after the change: %s from %s (%v)", row.JSON, row.From, err)
	}
}

// Concurrent no-fill misses of one key still share one query.
func TestNoFillConcurrentMissesShareOneQuery(t *testing.T) {
	f := newFixture(t)
	c := f.client(func(o *Options) { o.Miss = MissNoFill })
	const n = 200
	var joined atomic.Int64
	c.joined = func(string) { joined.Add(1) }
	c.afterLoad = func(string) {
		deadline := time.Now().Add(20 * time.Second)
		for joined.Load() < n && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.Get(context.Background(), "shop.customers", 1); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if q := f.counter("cloudsql_cache.read.db_queries", ""); q != 1 {
		t.Fatalf("%d concurrent no-fill misses made %d queries", n, q)
	}
}

// A herd's straggler (its Redis read started before the previous flight's fill landed, its flight
// after that one finished) looks again and finds the fill; a caller whose read started after the fill
// does not look again (that round trip is what a miss no longer costs).
func TestStragglerLooksAgainOnlyAfterAFillItMayHaveMissed(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	before := c.since()
	if _, err := c.Get(ctx, "shop.customers", 1); err != nil {
		t.Fatal(err)
	}
	tbl, meta, key, err := c.locate(ctx, "shop.customers", []any{1})
	if err != nil {
		t.Fatal(err)
	}
	row, _, err := c.load(ctx, tbl, meta, key, []any{1}, true, before)
	if err != nil || row.From != FromRedis {
		t.Fatalf("straggler: %s from %s (%v), want the fill from Redis", row.JSON, row.From, err)
	}
	if q := f.counter("cloudsql_cache.read.db_queries", ""); q != 1 {
		t.Fatalf("the straggler queried the database (%d queries)", q)
	}
	row, _, err = c.load(ctx, tbl, meta, key, []any{1}, true, c.since())
	if err != nil || row.From != FromDatabase {
		t.Fatalf("fresh caller: %s from %s (%v)", row.JSON, row.From, err)
	}
	if q := f.counter("cloudsql_cache.read.db_queries", ""); q != 2 {
		t.Fatalf("%d queries, want 2", q)
	}
}

// A fill refused because the table's floor moved since it was read makes the client read the floor
// again: fills of that table work again after a truncate.
func TestFillsResumeAfterATruncate(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	if _, err := c.Get(ctx, "shop.customers", 1); err != nil { // the floor ("") is now known
		t.Fatal(err)
	}
	if _, _, err := f.store.Truncate(ctx, rowcache.TableKeys{FloorKey: floorKey, Pattern: "shop.customers:*"}, rowcache.Version{File: 3, Pos: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "shop.customers", 2); err != nil { // refused: the floor moved
		t.Fatal(err)
	}
	if f.rdb.Exists(ctx, "shop.customers:2").Val() != 0 {
		t.Fatal("a fill with an outdated floor was stored")
	}
	if _, err := c.Get(ctx, "shop.customers", 2); err != nil {
		t.Fatal(err)
	}
	if f.rdb.Exists(ctx, "shop.customers:2").Val() != 1 {
		t.Fatal("fills stopped after a truncate")
	}
}

func TestBadMissMode(t *testing.T) {
	f := newFixture(t)
	if _, err := New(context.Background(), Options{Redis: f.rdb, Miss: MissMode(7)}); err == nil {
		t.Fatal("an unknown miss mode was accepted")
	}
	for _, s := range []string{"fill", "nofill"} {
		m, err := ParseMissMode(s)
		if err != nil || m.String() != s {
			t.Errorf("ParseMissMode(%q) = %v, %v", s, m, err)
		}
	}
	if _, err := ParseMissMode("sometimes"); err == nil {
		t.Error("ParseMissMode accepted sometimes")
	}
}

// A DDL that changes a table's row shape raises its floor (the function's rule); a fill refused
// because of it makes the client read the table's columns again, so later fills have the new shape
// (before, the columns and the prepared statement were kept for the client's life, and fills went on
// writing rows without the added column, rows the function never writes).
func TestFillsAfterADDLFloorTakeTheNewShape(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	if _, err := c.Get(ctx, "shop.customers", 1); err != nil { // columns, statement and floor now known
		t.Fatal(err)
	}
	if _, err := f.db.Exec("ALTER TABLE customers ADD COLUMN tier INT NOT NULL DEFAULT 3"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.store.RaiseFloor(ctx, rowcache.TableKeys{FloorKey: floorKey, Pattern: "shop.customers:*"}, rowcache.Version{File: 3, Pos: 4}, rowcache.FloorDDL); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Get(ctx, "shop.customers", 2); err != nil { // refused: the floor moved
		t.Fatal(err)
	}
	if f.rdb.Exists(ctx, "shop.customers:2").Val() != 0 {
		t.Fatal("a fill with an outdated floor was stored")
	}
	row, err := c.Get(ctx, "shop.customers", 2)
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"id":2,"name":"Bob","balance":"0.00","tier":3}`
	if string(row.JSON) != want {
		t.Fatalf("read after the DDL: %s, want %s", row.JSON, want)
	}
	e, found, err := rowcache.Get(ctx, f.rdb, "shop.customers:2")
	if err != nil || !found || string(e.Row) != want {
		t.Fatalf("fill after the DDL: %s (found %v, %v), want %s", e.Row, found, err, want)
	}
}

// A column dropped under a client's prepared statement (a client that never reads the floor: no
// fill) makes its query fail once: the client reads the columns again and answers the read.
func TestDroppedColumnIsReadAgain(t *testing.T) {
	f := newFixture(t)
	c := f.client(func(o *Options) { o.Miss = MissNoFill })
	ctx := context.Background()
	if _, err := c.Get(ctx, "shop.customers", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.Exec("ALTER TABLE customers DROP COLUMN balance"); err != nil {
		t.Fatal(err)
	}
	row, err := c.Get(ctx, "shop.customers", 1)
	if err != nil {
		t.Fatalf("read after DROP COLUMN: %v", err)
	}
	const want = `{"id":1,"name":"Ann"}`
	if string(row.JSON) != want {
		t.Fatalf("read after DROP COLUMN: %s, want %s", row.JSON, want)
	}
}
