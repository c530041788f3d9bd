// Package readbench is the read-path experiment (cmd/benchread): how a read-heavy workload fares with
// each way of handling a miss, with and without the L1, while writes flow through the whole local
// pipeline — MariaDB → Debezium Server → Pub/Sub emulator → push relay → the real function binary → Redis.
//
// Method. A private MariaDB holds Rows rows of ~RowBytes; the pipeline snapshots them into Redis.
// Then, for each cell (a set-up, the L1 on or off, a write rate), a fresh readcache.Client with its
// consistency Sampler reads zipfian-distributed rows (exponent ZipfS over all rows, hot ranks spread
// over the ids by a fixed permutation) at ReadRate, open loop, while a writer updates rows at the
// write rate, open loop, uniformly over all rows (ZipfWrites: with the reads' distribution, so the hot
// rows are the ones that change), each row owned by one of Conns connections so its values are known:
// every update sets n to the row's next number. For Warmup then Duration; only the Duration is measured. The set-ups:
//   - warm-nofill: the snapshot's cache, MissNoFill;
//   - warm-fill: the same cache, MissFill;
//   - cold-fill: Redis flushed at the start of the cell, MissFill (the changes the function applies
//     meanwhile write rows too).
//
// Measured per cell: the hit ratio (readcache's lookups: l1_hit, hit and deleted against miss and
// fallback), the database queries per second readcache made, the latency of Get (p50, p99), Redis's
// used_memory and key count at the end, and consistency twice: the Sampler's verdicts (what a service
// would report), and an oracle over every read of the window, from the writer's own record (a read of
// row k that served n was stale if the update to n+1 had returned to the writer before the read
// started, by the time since that update was sent: an upper bound, as the Sampler's is).
package readbench

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/stats"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
	"github.com/cloudsql-cache/cloudsql-cache/local/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/readcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// Setup is how a cell's cache starts and what its misses do.
type Setup string

const (
	WarmNoFill Setup = "warm-nofill"
	WarmFill   Setup = "warm-fill"
	ColdFill   Setup = "cold-fill"
)

// Config configures a run.
type Config struct {
	Rows, RowBytes int
	Setups         []Setup   // run in this order; cold-fill flushes Redis, so it goes last
	L1             []bool    // L1 off, on
	L1Size         int       // rows in the L1 when on
	WriteRates     []float64 // row updates per second
	ReadRate       float64   // reads per second, open loop
	Readers        int       // goroutines reading
	Conns          int       // writer connections
	ZipfS          float64   // exponent of the zipfian distribution of reads (> 1)
	// ZipfWrites draws the updated rows from the reads' distribution (the hot rows change most);
	// otherwise uniformly over all rows.
	ZipfWrites bool
	Warmup     time.Duration
	Duration   time.Duration
	// SampleFraction and SampleMax configure the Sampler (Fraction, MaxPerSecond).
	SampleFraction, SampleMax float64
	// RedisTimeout is readcache's (0: its default, 50 ms).
	RedisTimeout time.Duration
	// CatchUpMax is how long a cell waits after its writes for Redis to hold every row's last write
	// (0: 2 minutes); a cell that waited in vain reports how many rows were behind.
	CatchUpMax time.Duration
	Dir        string
	Progress   io.Writer
	Seed       int64
}

func (c Config) validate() error {
	var errs []error
	if c.Rows < 1 || c.RowBytes < 1 || c.Readers < 1 || c.Conns < 1 || c.L1Size < 1 || c.ReadRate <= 0 {
		errs = append(errs, errors.New("readbench: need Rows, RowBytes, Readers, Conns, L1Size and ReadRate above 0"))
	}
	if !(c.ZipfS > 1) {
		errs = append(errs, errors.New("readbench: ZipfS must be above 1"))
	}
	if c.Duration <= 0 || c.Dir == "" {
		errs = append(errs, errors.New("readbench: need a Duration and a Dir"))
	}
	if len(c.Setups) == 0 || len(c.L1) == 0 || len(c.WriteRates) == 0 {
		errs = append(errs, errors.New("readbench: need at least one set-up, L1 choice and write rate"))
	}
	for i, s := range c.Setups {
		if s != WarmNoFill && s != WarmFill && s != ColdFill {
			errs = append(errs, fmt.Errorf("readbench: unknown set-up %q", s))
		}
		if s != ColdFill && i > 0 && c.Setups[i-1] == ColdFill {
			errs = append(errs, errors.New("readbench: a warm set-up after cold-fill would read a flushed cache: put cold-fill last"))
		}
	}
	for _, r := range c.WriteRates {
		if r < 0 {
			errs = append(errs, errors.New("readbench: write rates must not be negative"))
		}
	}
	return errors.Join(errs...)
}

const (
	database = "readbench"
	table    = "readbench.items"
)

// Run starts everything, measures every cell while ctx lasts, writes the results to w as a Markdown
// table and raw lines, and stops everything.
func Run(ctx context.Context, c Config, w io.Writer) error {
	if err := c.validate(); err != nil {
		return err
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.CatchUpMax <= 0 {
		c.CatchUpMax = 2 * time.Minute
	}
	b, err := start(ctx, &c)
	if b != nil {
		defer b.close()
	}
	if err != nil {
		return err
	}
	var results []result
	for _, s := range c.Setups {
		for _, l1 := range c.L1 {
			for _, rate := range c.WriteRates {
				if ctx.Err() != nil {
					break
				}
				r, err := b.cell(ctx, &c, s, l1, rate)
				if err != nil {
					return fmt.Errorf("readbench: %s, L1 %v, %v writes/s: %w", s, l1, rate, err)
				}
				fmt.Fprintln(c.Progress, r.raw())
				results = append(results, r)
			}
		}
	}
	report(w, &c, results)
	if b.missing > 0 {
		fmt.Fprintf(w, "\nThe snapshot never brought %d of the %d rows to Redis (lost in the local pipeline); they are misses in every set-up.\n", b.missing, c.Rows)
	}
	return nil
}

type bench struct {
	my    *mariadbserver.Server
	rs    *redisserver.Server
	p     *pipeline.Pipeline
	fn    *functionproc.Process
	sqldb *sql.DB
	rdb   *redis.Client
	logf  *os.File
	perm  []int // zipf rank → row id
	// missing is how many rows the snapshot never brought to Redis (0 normally).
	missing int64
}

func (b *bench) close() {
	if b.p != nil {
		b.p.Close()
	}
	if b.fn != nil {
		b.fn.Stop()
	}
	if b.rdb != nil {
		b.rdb.Close()
	}
	if b.sqldb != nil {
		b.sqldb.Close()
	}
	if b.rs != nil {
		b.rs.Stop()
	}
	if b.my != nil {
		b.my.Stop()
	}
	if b.logf != nil {
		b.logf.Close()
	}
}

func start(ctx context.Context, c *Config) (*bench, error) {
	b := &bench{perm: rand.New(rand.NewSource(c.Seed)).Perm(c.Rows)}
	var err error
	if b.logf, err = os.Create(filepath.Join(c.Dir, "pipeline.log")); err != nil {
		return b, err
	}
	logger := slog.New(slog.NewTextHandler(b.logf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fmt.Fprintf(c.Progress, "readbench: starting MariaDB, creating %d rows …\n", c.Rows)
	if b.my, err = mariadbserver.Start(ctx, mariadbserver.Options{Dir: filepath.Join(c.Dir, "mariadb")}); err != nil {
		return b, err
	}
	dsn, err := readcache.CheckDSN(b.my.DSN(""))
	if err != nil {
		return b, err
	}
	if b.sqldb, err = sql.Open("mysql", dsn); err != nil {
		return b, err
	}
	b.sqldb.SetMaxOpenConns(c.Conns + c.Readers + 8)
	b.sqldb.SetMaxIdleConns(c.Conns + c.Readers + 8)
	if err := createTable(ctx, b.sqldb, c.Rows, c.RowBytes); err != nil {
		return b, err
	}
	if b.rs, err = redisserver.Start(ctx, redisserver.Options{Dir: filepath.Join(c.Dir, "redis")}); err != nil {
		return b, err
	}
	b.rdb = redis.NewClient(&redis.Options{Addr: b.rs.Addr(), ContextTimeoutEnabled: true, PoolSize: c.Readers + 16})
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return b, fmt.Errorf("go list -m: %w", err)
	}
	if b.p, err = pipeline.Start(ctx, pipeline.Config{DBAddr: b.my.Addr(), RootDSN: b.my.DSN(""), Tables: []string{table},
		ConfigDir: filepath.Join(strings.TrimSpace(string(root)), "debezium-server"), StateDir: filepath.Join(c.Dir, "debezium"),
		FetchLog: c.Progress, MaxDeliveryAttempts: 50, Seed: 1, Logger: logger}); err != nil {
		return b, err
	}
	bin := filepath.Join(c.Dir, "cloudsql-cache-function")
	if err := functionproc.Build(ctx, strings.TrimSpace(string(root)), bin); err != nil {
		return b, err
	}
	port, err := freeport.Get()
	if err != nil {
		return b, err
	}
	fnLog, err := os.Create(filepath.Join(c.Dir, "function.log"))
	if err != nil {
		return b, err
	}
	if b.fn, err = functionproc.Start(ctx, bin, port, []string{"REDIS_ADDR=" + b.rs.Addr(), "DEAD_LETTER_TOPIC=" + b.p.Emu.DeadLetterTopic(),
		"PUBSUB_EMULATOR_HOST=" + b.p.Emu.Addr(),
		// A cold cell starts with FLUSHALL, which the loss watcher would report as a total loss.
		"REDIS_WATCH_INTERVAL=0"}, fnLog); err != nil {
		return b, err
	}
	b.p.Deliver(b.fn.URL())
	fmt.Fprintf(c.Progress, "readbench: snapshotting %d rows into Redis through the pipeline …\n", c.Rows)
	t0 := time.Now()
	if err := b.p.StartDebezium(ctx); err != nil {
		return b, err
	}
	var last int64
	progress := time.Now()
	for {
		n, err := b.rowKeys(ctx)
		if err == nil && n >= int64(c.Rows) {
			break
		}
		if n != last {
			last, progress = n, time.Now()
		}
		if st := b.p.Relay.Stats(); time.Since(progress) > time.Minute && st.Backlog == 0 {
			// Nothing arrives and nothing is being delivered: these rows will not come. Measure anyway,
			// and say so: they are misses in every set-up.
			b.missing = int64(c.Rows) - n
			fmt.Fprintf(c.Progress, "readbench: WARNING: the snapshot stalled with %d of %d rows in Redis (relay: %+v); measuring anyway\n", n, c.Rows, st)
			break
		}
		select {
		case <-ctx.Done():
			return b, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	qctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := b.p.Quiesce(qctx, time.Second); err != nil {
		return b, err
	}
	fmt.Fprintf(c.Progress, "readbench: snapshot in Redis after %.0f s\n", time.Since(t0).Seconds())
	return b, nil
}

func createTable(ctx context.Context, db *sql.DB, rows, rowBytes int) error {
	for _, q := range []string{
		"CREATE DATABASE " + database,
		"CREATE TABLE " + table + " (id INT NOT NULL PRIMARY KEY, n BIGINT NOT NULL, payload VARCHAR(8000) NOT NULL)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	for lo := 0; lo < rows; lo += 1000 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO " + table + " VALUES ")
		for id := lo; id < min(lo+1000, rows); id++ {
			if id > lo {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d,0,REPEAT('x',%d))", id, rowBytes)
		}
		if _, err := db.ExecContext(ctx, sb.String()); err != nil {
			return fmt.Errorf("fill %s: %w", table, err)
		}
	}
	return nil
}

// result is one cell's figures.
type result struct {
	setup      Setup
	l1         bool
	writeRate  float64
	writes     float64 // achieved updates/s
	writeFails int64
	reads      float64 // achieved reads/s
	readErrs   int64
	hitRatio   float64
	fallbacks  float64 // share of reads served by the database because Redis failed, was too slow or was skipped
	dbQPS      float64
	latency    stats.Summary // µs
	redisMB    float64
	redisKeys  int64
	catchUp    time.Duration // after the writes stopped, until Redis held every row's last write
	// behind is how many rows written in the cell Redis still did not hold at CatchUpMax (0: caught
	// up), and why, as the relay and Debezium Server said.
	behind    int
	behindWhy string
	sampler   readcache.SamplerStats
	oracle    oracleCounts
}

type oracleCounts struct {
	reads, stale, over100ms, over1s int64
	staleness                       []float64 // ms, of the stale reads
}

// write is one update of a row, as the writer saw it.
type write struct {
	n          int64
	sent, done time.Time
}

// writeLog is every row's updates in a cell, by row id, for the oracle.
type writeLog struct {
	mu   sync.Mutex
	rows map[int][]write
}

func (l *writeLog) add(id int, w write) {
	l.mu.Lock()
	l.rows[id] = append(l.rows[id], w)
	l.mu.Unlock()
}

// judge is the oracle's verdict on a read of id that started at start and served n: the staleness in
// ms (0: current).
func (l *writeLog) judge(id int, n int64, start time.Time) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	ws := l.rows[id] // one connection writes a row, so its n are consecutive
	if i := n + 1 - ws0(ws); len(ws) > 0 && i >= 0 && i < int64(len(ws)) {
		if w := ws[i]; w.done.Before(start) {
			return float64(start.Sub(w.sent)) / float64(time.Millisecond)
		}
	}
	return 0
}

func ws0(ws []write) int64 {
	if len(ws) == 0 {
		return 0
	}
	return ws[0].n
}

func (b *bench) cell(ctx context.Context, c *Config, setup Setup, l1 bool, writeRate float64) (result, error) {
	r := result{setup: setup, l1: l1, writeRate: writeRate}
	fmt.Fprintf(c.Progress, "readbench: %s, L1 %v, %.0f writes/s …\n", setup, l1, writeRate)
	if setup == ColdFill {
		if err := b.rdb.FlushAll(ctx).Err(); err != nil {
			return r, err
		}
	}
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	defer mp.Shutdown(context.Background())
	// PolicyOff: the function here caches every table while the reader names one (another read
	// layout), and cold-fill's FLUSHALL removes the published policy; the experiment measures misses.
	o := readcache.Options{Redis: b.rdb, DB: b.sqldb, Tables: tablepolicy.Config{Tables: []string{table}}, MeterProvider: mp,
		RedisTimeout: c.RedisTimeout, PolicyCheck: readcache.PolicyOff}
	if setup == WarmNoFill {
		o.Miss = readcache.MissNoFill
	}
	if l1 {
		o.L1Size = c.L1Size
	}
	client, err := readcache.New(ctx, o)
	if err != nil {
		return r, err
	}
	defer client.Close()
	sampler, err := readcache.NewSampler(ctx, client, readcache.SamplerOptions{Fraction: c.SampleFraction, MaxPerSecond: c.SampleMax})
	if err != nil {
		return r, err
	}
	defer sampler.Close()

	log := &writeLog{rows: map[int][]write{}}
	var mu sync.Mutex
	var latencies []float64
	var reads, readErrs, writes, writeFails atomic.Int64
	var oracle oracleCounts
	t0 := time.Now()
	measureFrom, end := t0.Add(c.Warmup), t0.Add(c.Warmup+c.Duration)
	var before metricdata.ResourceMetrics
	var wg sync.WaitGroup
	cctx, cancel := context.WithDeadline(ctx, end)
	defer cancel()

	// Reads, open loop: a 1 ms ticker works out how many are due.
	ids := make(chan int, 1<<16)
	for i := 0; i < c.Readers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				start := time.Now()
				row, err := client.Get(context.Background(), table, id)
				took := time.Since(start)
				var v struct {
					N int64 `json:"n"`
				}
				bad := err != nil || json.Unmarshal(row.JSON, &v) != nil
				measured := !start.Before(measureFrom) && start.Before(end)
				if measured {
					reads.Add(1)
					if bad {
						readErrs.Add(1)
					}
				}
				if !bad { // the oracle judges every read of the cell, as the sampler samples them
					st := log.judge(id, v.N, start)
					mu.Lock()
					if measured {
						latencies = append(latencies, float64(took)/float64(time.Microsecond))
					}
					oracle.reads++
					if st > 0 {
						oracle.stale++
						oracle.staleness = append(oracle.staleness, st)
						if st > 100 {
							oracle.over100ms++
						}
						if st > 1000 {
							oracle.over1s++
						}
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ids)
		z := rand.NewZipf(rand.New(rand.NewSource(c.Seed+1)), c.ZipfS, 1, uint64(c.Rows-1))
		offer(cctx, t0, c.ReadRate, func() {
			select {
			case ids <- b.perm[z.Uint64()]:
			default: // the readers are saturated: the offered rate is not held (reads/s shows it)
			}
		})
	}()
	// Writes, open loop, each row owned by one connection so its next n is known.
	if writeRate > 0 {
		queues := make([]chan int, c.Conns)
		next := make([]map[int]int64, c.Conns)
		for w := range queues {
			queues[w] = make(chan int, 1<<14)
			next[w] = map[int]int64{}
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for id := range queues[w] {
					n, err := b.rowN(ctx, next[w], id)
					if err != nil {
						writeFails.Add(1)
						continue
					}
					sent := time.Now()
					_, err = b.sqldb.ExecContext(context.Background(), "UPDATE "+table+" SET n = ? WHERE id = ?", n+1, id)
					done := time.Now()
					if err != nil {
						writeFails.Add(1)
						continue
					}
					next[w][id] = n + 1
					log.add(id, write{n: n + 1, sent: sent, done: done})
					if !sent.Before(measureFrom) && sent.Before(end) {
						writes.Add(1)
					}
				}
			}(w)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				for _, q := range queues {
					close(q)
				}
			}()
			wrnd := rand.New(rand.NewSource(c.Seed + 2))
			z := rand.NewZipf(wrnd, c.ZipfS, 1, uint64(c.Rows-1))
			offer(cctx, t0, writeRate, func() {
				id := wrnd.Intn(c.Rows)
				if c.ZipfWrites {
					id = b.perm[z.Uint64()]
				}
				select {
				case queues[id%c.Conns] <- id:
				default:
					writeFails.Add(1)
				}
			})
		}()
	}
	// The metrics at the start of the measured window.
	select {
	case <-time.After(time.Until(measureFrom)):
	case <-ctx.Done():
	}
	if err := reader.Collect(ctx, &before); err != nil {
		return r, err
	}
	<-cctx.Done()
	var after metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &after); err != nil {
		return r, err
	}
	wg.Wait()
	secs := c.Duration.Seconds()
	r.reads, r.readErrs = float64(reads.Load())/secs, readErrs.Load()
	r.writes, r.writeFails = float64(writes.Load())/secs, writeFails.Load()
	hits := counter(after, "cloudsql_cache.read.lookups", "l1_hit", "hit", "deleted") - counter(before, "cloudsql_cache.read.lookups", "l1_hit", "hit", "deleted")
	all := counter(after, "cloudsql_cache.read.lookups") - counter(before, "cloudsql_cache.read.lookups")
	if all > 0 {
		r.hitRatio = hits / all
		r.fallbacks = (counter(after, "cloudsql_cache.read.lookups", "fallback") - counter(before, "cloudsql_cache.read.lookups", "fallback")) / all
	}
	r.dbQPS = (counter(after, "cloudsql_cache.read.db_queries") - counter(before, "cloudsql_cache.read.db_queries")) / secs
	r.latency = stats.Summarize(latencies)
	r.oracle = oracle
	// Every row written has reached Redis: the next cell starts with nothing in flight, and the time
	// it took is the backlog the writes left.
	caught := time.Now()
	behind, err := b.caughtUp(ctx, log, c.CatchUpMax)
	if err != nil {
		return r, err
	}
	r.catchUp = time.Since(caught)
	if behind > 0 {
		// The pipeline did not keep up (or lost changes): reported, and the next cell starts anyway;
		// its oracle judges only its own writes.
		r.behind = behind
		exits, restarts := b.p.DebeziumExits()
		r.behindWhy = fmt.Sprintf("relay: %+v; Debezium Server exited by itself %d times (%v), restarted %d times", b.p.Relay.Stats(), len(exits), exits, restarts)
		fmt.Fprintf(c.Progress, "readbench: WARNING: %d rows written in the cell are not in Redis %v after the writes stopped (%s)\n", behind, c.CatchUpMax, r.behindWhy)
	}
	// The sampler judges the last reads once their changes are applied (or MaxWait, 30 s, is over).
	for deadline := time.Now().Add(time.Minute); sampler.Stats().Pending > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	r.sampler = sampler.Stats()
	info, err := b.rdb.InfoMap(ctx, "memory").Result()
	if err != nil {
		return r, err
	}
	var used float64
	fmt.Sscan(info["Memory"]["used_memory"], &used)
	r.redisMB = used / (1 << 20)
	r.redisKeys, _ = b.rdb.DBSize(ctx).Result()
	return r, nil
}

// caughtUp waits (at most max) until Redis holds, for every row written in the cell, the row's last
// n, and returns how many rows it still does not.
func (b *bench) caughtUp(ctx context.Context, log *writeLog, max time.Duration) (int, error) {
	log.mu.Lock()
	want := make(map[string]int64, len(log.rows))
	for id, ws := range log.rows {
		want[fmt.Sprintf("%s:%d", table, id)] = ws[len(ws)-1].n
	}
	log.mu.Unlock()
	deadline := time.Now().Add(max)
	for len(want) > 0 {
		keys := make([]string, 0, len(want))
		for k := range want {
			keys = append(keys, k)
		}
		for lo := 0; lo < len(keys); lo += 1000 {
			part := keys[lo:min(lo+1000, len(keys))]
			vals, err := b.rdb.MGet(ctx, part...).Result()
			if err != nil {
				return 0, err
			}
			for i, v := range vals {
				s, ok := v.(string)
				if !ok {
					continue
				}
				_, js, _ := strings.Cut(s, " ")
				var row struct {
					N int64 `json:"n"`
				}
				if json.Unmarshal([]byte(js), &row) == nil && row.N >= want[part[i]] {
					delete(want, part[i])
				}
			}
		}
		if len(want) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return len(want), nil
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, nil
}

// rowN is the row's current n: what this connection last wrote, or the database's.
func (b *bench) rowN(ctx context.Context, known map[int]int64, id int) (int64, error) {
	if n, ok := known[id]; ok {
		return n, nil
	}
	var n int64
	err := b.sqldb.QueryRowContext(ctx, "SELECT n FROM "+table+" WHERE id = ?", id).Scan(&n)
	return n, err
}

// offer calls f rate times a second from t0 until ctx ends, open loop: every millisecond it makes up
// what is due since t0.
func offer(ctx context.Context, t0 time.Time, rate float64, f func()) {
	t := time.NewTicker(time.Millisecond)
	defer t.Stop()
	var done int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for due := int64(rate*now.Sub(t0).Seconds()) - done; due > 0; due-- {
				f()
				done++
			}
		}
	}
}

// counter sums a counter's points whose attribute result is one of results (all points if none).
func counter(rm metricdata.ResourceMetrics, name string, results ...string) float64 {
	var n float64
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != name {
				continue
			}
			sum, ok := m.Data.(metricdata.Sum[int64])
			if !ok {
				continue
			}
			for _, dp := range sum.DataPoints {
				v, _ := dp.Attributes.Value("result")
				if len(results) == 0 || contains(results, v.AsString()) {
					n += float64(dp.Value)
				}
			}
		}
	}
	return n
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

// rowKeys counts the table's row keys in Redis: DBSIZE less the function's own keys under
// tablepolicy.MetaPrefix (its published policy, floors, the snapshot bookkeeping, the loss watcher's
// marker and heartbeat), which are few.
func (b *bench) rowKeys(ctx context.Context) (int64, error) {
	n, err := b.rdb.DBSize(ctx).Result()
	if err != nil {
		return 0, err
	}
	iter := b.rdb.Scan(ctx, 0, tablepolicy.MetaPrefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		n--
	}
	return n, iter.Err()
}
