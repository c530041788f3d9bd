package readcache

// Benchmarks of the read path, each beside its baseline measured in the same run against the same
// servers (real redis-server and MariaDB on loopback). Compare with benchstat or read the ratios that
// `make bench` prints:
//
//	BenchmarkHit/raw_GET              go-redis GET of the same key (the baseline)
//	BenchmarkHit/readcache            Get served from Redis
//	BenchmarkL1/map_read              a read of a mutex-guarded Go map (the baseline)
//	BenchmarkL1/readcache             Get served from the in-process L1
//	BenchmarkMiss/raw_query           the SELECT by primary key the miss makes, and its decoding (the baseline)
//	BenchmarkMiss/no_fill             Get on a miss with MissNoFill: GET, SELECT
//	BenchmarkMiss/fill                Get on a miss with MissFill: GET, SELECT, fill
//	BenchmarkHerd                     1,000 concurrent misses of one key; reports db_queries/op
//	BenchmarkMany/*/gets              100 Gets one after another, all hits or all misses (the baseline)
//	BenchmarkMany/*/get_many          one GetMany of the same 100 keys

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// benchRows is the number of rows of the benchmarks' table.
const benchRows = 1000

type benchEnv struct {
	rdb *redis.Client
	db  *sql.DB
}

func newBenchEnv(b *testing.B) benchEnv {
	b.Helper()
	my := mariadbserver.StartForTest(b, mariadbserver.Options{})
	db := my.DB("shop")
	my.Exec(db, "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, email VARCHAR(128), balance DECIMAL(10,2) NOT NULL, bio TEXT)")
	for i := 0; i < benchRows; i++ {
		my.Exec(db, fmt.Sprintf("INSERT INTO customers VALUES (%d, 'customer %d', 'c%d@example.com', %d.25, REPEAT('x', 700))", i, i, i, i))
	}
	rs := redisserver.StartForTest(b, redisserver.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), ContextTimeoutEnabled: true})
	b.Cleanup(func() { rdb.Close() })
	return benchEnv{rdb: rdb, db: db}
}

func (e benchEnv) client(b *testing.B, l1 int) *Client {
	c, err := New(context.Background(), Options{Redis: e.rdb, DB: e.db, Tables: tablepolicy.Config{}, L1Size: l1, PolicyCheck: PolicyOff})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}

func BenchmarkHit(b *testing.B) {
	e := newBenchEnv(b)
	c := e.client(b, 0)
	ctx := context.Background()
	if _, err := c.Get(ctx, "shop.customers", 7); err != nil { // fills the key
		b.Fatal(err)
	}
	b.Run("raw_GET", func(b *testing.B) {
		for b.Loop() {
			if err := e.rdb.Get(ctx, "shop.customers:7").Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("readcache", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Get(ctx, "shop.customers", 7); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkL1(b *testing.B) {
	e := newBenchEnv(b)
	c := e.client(b, 1000)
	ctx := context.Background()
	for c.l1.gen == 0 || !c.l1.healthy { // wait for the invalidation subscription
		c.Get(ctx, "shop.customers", 7)
	}
	c.Get(ctx, "shop.customers", 7)
	if row, _ := c.Get(ctx, "shop.customers", 7); row.From != FromL1 {
		b.Fatalf("not an L1 hit: %s", row.From)
	}
	var mu sync.Mutex
	m := map[string][]byte{"shop.customers:7": []byte(`{}`)}
	b.Run("map_read", func(b *testing.B) {
		for b.Loop() {
			mu.Lock()
			_ = m["shop.customers:7"]
			mu.Unlock()
		}
	})
	b.Run("readcache", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Get(ctx, "shop.customers", 7); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkMiss reads the 1,000 rows in turn, each a miss: the baseline queries them directly, no_fill
// and fill go through Get in each mode. fill's keys are deleted after each pass over the rows, with
// the timer stopped (once per 1,000 reads, so stopping the timer costs nothing measurable).
func BenchmarkMiss(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	meta, err := e.client(b, 0).metadata(ctx, "shop", "customers")
	if err != nil {
		b.Fatal(err)
	}
	q := "SELECT " + meta.SelectList() + " FROM " + meta.QualifiedName() + " WHERE `id` = ?"
	b.Run("raw_query", func(b *testing.B) {
		i := 0
		for b.Loop() {
			rows, err := e.db.QueryContext(ctx, q, i%benchRows)
			if err != nil {
				b.Fatal(err)
			}
			if !rows.Next() {
				b.Fatal("no row")
			}
			if _, err := meta.ScanRow(rows); err != nil {
				b.Fatal(err)
			}
			rows.Close()
			i++
		}
	})
	for _, mode := range []MissMode{MissNoFill, MissFill} {
		b.Run(map[MissMode]string{MissNoFill: "no_fill", MissFill: "fill"}[mode], func(b *testing.B) {
			// PolicyOff: the benchmark flushes Redis, the published policy with it; a check costs one GET
			// every 15 s, nothing per miss.
			c, err := New(ctx, Options{Redis: e.rdb, DB: e.db, Tables: tablepolicy.Config{}, Miss: mode, PolicyCheck: PolicyOff})
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			e.rdb.FlushAll(ctx)
			i := 0
			for b.Loop() {
				id := i % benchRows
				row, err := c.Get(ctx, "shop.customers", id)
				if err != nil || row.From != FromDatabase {
					b.Fatalf("%v %v", row.From, err)
				}
				i++
				if id == benchRows-1 && mode == MissFill {
					b.StopTimer()
					e.rdb.FlushAll(ctx)
					b.StartTimer()
				}
			}
		})
	}
}

func BenchmarkHerd(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	var queries, rounds int64
	for b.Loop() {
		b.StopTimer()
		c := e.client(b, 0)
		var mu sync.Mutex
		c.afterLoad = func(string) { mu.Lock(); queries++; mu.Unlock() }
		e.rdb.Del(ctx, "shop.customers:7")
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < 1000; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := c.Get(ctx, "shop.customers", 7); err != nil {
					b.Error(err)
				}
			}()
		}
		b.StartTimer()
		close(start)
		wg.Wait()
		rounds++
	}
	b.ReportMetric(float64(queries)/float64(rounds), "db_queries/op")
}

// BenchmarkMany reads batches of 100 rows, all hits and then all misses (MissFill; Redis flushed
// before each batch, with the timer stopped): gets is 100 Gets one after another (the baseline),
// get_many one GetMany of the same keys.
func BenchmarkMany(b *testing.B) {
	e := newBenchEnv(b)
	ctx := context.Background()
	c := e.client(b, 0)
	const n = 100
	pks := make([][]any, n)
	for i := range pks {
		pks[i] = []any{i * (benchRows / n)}
	}
	gets := func(b *testing.B, want Source) {
		for _, pk := range pks {
			row, err := c.Get(ctx, "shop.customers", pk...)
			if err != nil || row.From != want {
				b.Fatalf("%v from %s, want from %s", err, row.From, want)
			}
		}
	}
	getMany := func(b *testing.B, want Source) {
		res, err := c.GetMany(ctx, "shop.customers", pks)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil || r.Row.From != want {
				b.Fatalf("%v from %s, want from %s", r.Err, r.Row.From, want)
			}
		}
	}
	for _, kind := range []struct {
		name string
		from Source
	}{{"hits", FromRedis}, {"misses", FromDatabase}} {
		for _, way := range []struct {
			name string
			read func(*testing.B, Source)
		}{{"gets", gets}, {"get_many", getMany}} {
			b.Run(kind.name+"/"+way.name, func(b *testing.B) {
				e.rdb.FlushAll(ctx)
				if kind.from == FromRedis {
					getMany(b, FromDatabase) // fills them
				}
				for b.Loop() {
					if kind.from == FromDatabase {
						b.StopTimer()
						e.rdb.FlushAll(ctx)
						b.StartTimer()
					}
					way.read(b, kind.from)
				}
			})
		}
	}
}
