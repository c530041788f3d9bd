// Package e2e runs the whole local pipeline — MariaDB → CDC source → Pub/Sub emulator → push relay →
// the real function binary → redis-server — under a random workload, with and without faults, and
// holds the cache to the database with the drift checker.
package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/verify"
	"github.com/cloudsql-cache/cloudsql-cache/local/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
	"github.com/cloudsql-cache/cloudsql-cache/local/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

var functionBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-function")
	if err != nil {
		panic(err)
	}
	functionBin = filepath.Join(dir, "cloudsql-cache-function")
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: go list:", err)
		os.Exit(1)
	}
	if err := functionproc.Build(context.Background(), strings.TrimSpace(string(root)), functionBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const schema = `
CREATE TABLE accounts (id INT NOT NULL PRIMARY KEY, owner VARCHAR(40) NOT NULL, balance DECIMAL(12,2) NOT NULL, updated DATETIME(6) NOT NULL, flags SET('vip','frozen') NOT NULL DEFAULT '');
CREATE TABLE order_lines (order_id INT NOT NULL, line INT NOT NULL, sku VARCHAR(20) NOT NULL, qty INT NOT NULL, price DECIMAL(10,2), PRIMARY KEY (order_id, line));
`

const hotAccounts = 20
const hotOrders, hotLines = 5, 4

type env struct {
	t     *testing.T
	db    *sql.DB
	mysql *mariadbserver.TestServer
	redis *redisserver.Server
	rdb   *redis.Client
	fn    *functionproc.Process
	p     *pipeline.Pipeline
	state string
	// metricsURL is the function's Prometheus endpoint; fnRestarted says its counters started over.
	metricsURL  string
	fnRestarted bool
	// replica, link and endpoint: see options.replica.
	replica        *redisserver.Server
	link, endpoint *redisserver.Proxy
	// lossy: the test makes Redis lose data, so rows go back in time until the repair has replayed
	// their changes; the version watcher's findings are logged, not failures.
	lossy bool
}

type options struct {
	persistentRedis bool
	// fsync is the append-only file's appendfsync with persistentRedis ("" : always).
	fsync         string
	duplicateRate float64
	// repair runs the function's loss watcher with the table subscriptions to seek back.
	repair bool
	// replica gives Redis an asynchronous replica, linked through a proxy (e.link), and the function
	// and the test an endpoint (e.endpoint) that a failover moves to it; the function waits for it
	// (REDIS_WAIT_REPLICAS=1).
	replica bool
}

func setup(t *testing.T, o options) *env {
	t.Helper()
	ctx := context.Background()
	e := &env{t: t, mysql: mariadbserver.StartForTest(t, mariadbserver.Options{}), state: t.TempDir()}
	e.db = e.mysql.DB("shop")
	e.mysql.Exec(e.db, strings.Split(strings.TrimSpace(schema), ";\n")...)
	for i := 1; i <= hotAccounts/2; i++ {
		e.mysql.Exec(e.db, fmt.Sprintf("INSERT INTO accounts VALUES (%d, 'owner%d', %d.50, NOW(6), '')", i, i, i))
	}
	var err error
	e.redis, err = redisserver.Start(ctx, redisserver.Options{Dir: t.TempDir(), Persistent: o.persistentRedis, AppendFsync: o.fsync}) // on a port it picks
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.redis.Kill)
	redisAddr := e.redis.Addr()
	if o.replica {
		if e.link, err = redisserver.StartProxy(e.redis.Addr()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.link.Close)
		e.startReplica(e.link.Addr())
		if e.endpoint, err = redisserver.StartProxy(e.redis.Addr()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.endpoint.Close)
		redisAddr = e.endpoint.Addr()
	}
	e.rdb = redis.NewClient(&redis.Options{Addr: redisAddr})
	t.Cleanup(func() { e.rdb.Close() })
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e.p, err = pipeline.Start(ctx, pipeline.Config{DSN: e.mysql.DSN(""), Flavor: "mariadb", Databases: []string{"shop"}, StateDir: e.state,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, MaxDeliveryAttempts: 100, DuplicateRate: o.duplicateRate, Seed: 7, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.p.Close)
	fport, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	fnLog, err := os.Create(filepath.Join(t.TempDir(), "function.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fnLog.Close() })
	mport, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	e.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	fnEnv := []string{
		"REDIS_ADDR=" + redisAddr, "DEAD_LETTER_TOPIC=" + e.p.Emu.DeadLetterTopic(), "PUBSUB_EMULATOR_HOST=" + e.p.Emu.Addr(),
		"REDIS_TIMEOUT=300ms", "APPLY_TIMEOUT=2s", fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", mport),
	}
	if o.replica {
		// No watcher: what keeps the acknowledged changes here is the wait alone.
		fnEnv = append(fnEnv, "REDIS_WAIT_REPLICAS=1", "REDIS_WAIT_TIMEOUT=200ms", "REDIS_WATCH_INTERVAL=0")
	}
	if o.repair {
		// The topics and their subscriptions exist before the function starts, as Terraform creates them.
		var subs []string
		for _, topic := range []string{"local.shop.accounts", "local.shop.order_lines"} {
			if err := e.p.Emu.EnsureTopic(ctx, topic); err != nil {
				t.Fatal(err)
			}
			subs = append(subs, e.p.Emu.SubscriptionName(topic))
		}
		fnEnv = append(fnEnv, "REDIS_WATCH_INTERVAL=200ms", "REPAIR_SEEK_MARGIN=30s", "REPAIR_SUBSCRIPTIONS="+strings.Join(subs, ","))
	}
	e.fn, err = functionproc.Start(ctx, functionBin, fport, fnEnv, fnLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(e.fn.Kill)
	e.p.Deliver(e.fn.URL())
	if err := e.p.StartCDC(); err != nil {
		t.Fatal(err)
	}
	return e
}

// startReplica starts a replica of primary (host:port) and waits until it has synced.
func (e *env) startReplica(primary string) {
	e.t.Helper()
	r, err := redisserver.Start(context.Background(), redisserver.Options{Dir: e.t.TempDir(), ReplicaOf: primary})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(r.Kill)
	c := redis.NewClient(r.ClientOptions())
	defer c.Close()
	e.waitUntil("the replica to sync", 30*time.Second, func() bool {
		info, err := c.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
	e.replica = r
}

// cutReplica holds what the primary sends the replica: from now on the replica receives nothing.
func (e *env) cutReplica() { e.link.Hold() }

// failover is Memorystore's failover of a crashed primary after cutReplica: what the primary sent since
// never reaches the replica, the primary dies, the replica is promoted, the endpoint moves to it, and
// a new replica replaces the lost node.
func (e *env) failover() {
	e.t.Helper()
	e.redis.Kill()
	e.link.Cut()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.replica.Promote(ctx); err != nil {
		e.t.Fatal(err)
	}
	e.endpoint.SetTarget(e.replica.Addr())
	e.redis = e.replica
	e.startReplica(e.redis.Addr())
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// workload runs random changes on the hot keys until ctx ends, from two connections at once.
func (e *env) workload(ctx context.Context, seed uint64) int {
	var wg sync.WaitGroup
	var mu sync.Mutex
	total := 0
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, uint64(w)))
			n := 0
			for ctx.Err() == nil {
				e.randomChange(rnd)
				n++
				time.Sleep(time.Duration(rnd.IntN(3)) * time.Millisecond)
			}
			mu.Lock()
			total += n
			mu.Unlock()
		}(w)
	}
	wg.Wait()
	return total
}

func (e *env) randomChange(rnd *rand.Rand) {
	acct := func() int { return 1 + rnd.IntN(hotAccounts) }
	var stmts []string
	switch k := rnd.IntN(100); {
	case k < 20:
		stmts = []string{fmt.Sprintf("INSERT INTO accounts (id, owner, balance, updated, flags) VALUES (%d, 'o%d', %d.%02d, NOW(6), 'vip')", acct(), rnd.IntN(1000), rnd.IntN(1000), rnd.IntN(100))}
	case k < 45:
		stmts = []string{fmt.Sprintf("UPDATE accounts SET balance = balance + %d.25, updated = NOW(6) WHERE id = %d", rnd.IntN(50), acct())}
	case k < 55:
		stmts = []string{fmt.Sprintf("DELETE FROM accounts WHERE id = %d", acct())}
	case k < 62: // a primary-key change
		stmts = []string{fmt.Sprintf("UPDATE accounts SET id = %d WHERE id = %d", acct(), acct())}
	case k < 75: // a multi-row transaction across both tables
		o := 1 + rnd.IntN(hotOrders)
		stmts = []string{"BEGIN",
			fmt.Sprintf("INSERT INTO order_lines VALUES (%d, %d, 'sku%d', 1, 9.99) ON DUPLICATE KEY UPDATE qty = qty + 1", o, 1+rnd.IntN(hotLines), rnd.IntN(9)),
			fmt.Sprintf("UPDATE order_lines SET qty = qty * 2, price = price + 0.01 WHERE order_id = %d", o),
			fmt.Sprintf("UPDATE accounts SET balance = balance - 1, flags = 'vip,frozen' WHERE id IN (%d, %d)", acct(), acct()),
			"COMMIT"}
	case k < 85:
		stmts = []string{fmt.Sprintf("DELETE FROM order_lines WHERE order_id = %d AND line > %d", 1+rnd.IntN(hotOrders), rnd.IntN(hotLines))}
	case k < 92: // a composite-key change
		stmts = []string{fmt.Sprintf("UPDATE order_lines SET line = %d WHERE order_id = %d AND line = %d", 1+rnd.IntN(hotLines), 1+rnd.IntN(hotOrders), 1+rnd.IntN(hotLines))}
	default:
		stmts = []string{fmt.Sprintf("INSERT IGNORE INTO order_lines VALUES (%d, %d, 'new', %d, NULL)", 1+rnd.IntN(hotOrders), 1+rnd.IntN(hotLines), rnd.IntN(5))}
	}
	conn, err := e.db.Conn(context.Background())
	if err != nil {
		return
	}
	defer conn.Close()
	for _, s := range stmts {
		if _, err := conn.ExecContext(context.Background(), s); err != nil {
			// Duplicate keys and deadlocks are part of a random workload; the transaction is dropped.
			_, _ = conn.ExecContext(context.Background(), "ROLLBACK")
			return
		}
	}
}

// hotKeys are the cache keys of every row the workload can touch.
func hotKeys() []string {
	var keys []string
	for i := 1; i <= hotAccounts; i++ {
		keys = append(keys, fmt.Sprintf("shop.accounts:%d", i))
	}
	for o := 1; o <= hotOrders; o++ {
		for l := 1; l <= hotLines; l++ {
			keys = append(keys, fmt.Sprintf("shop.order_lines:%d:%d", o, l))
		}
	}
	return keys
}

// watch polls the hot keys until ctx ends and reports every time a key's version went back.
func (e *env) watch(ctx context.Context) (regressions func() []string) {
	var mu sync.Mutex
	var bad []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen := map[string]rowcache.Version{}
		keys := hotKeys()
		for ctx.Err() == nil {
			for _, k := range keys {
				entry, found, err := rowcache.Get(ctx, e.rdb, k)
				if err != nil {
					continue // Redis restarting
				}
				prev, had := seen[k]
				if !found {
					if had && !e.truncatedSince(ctx, k, prev) {
						mu.Lock()
						bad = append(bad, fmt.Sprintf("%s vanished after version %s", k, prev))
						mu.Unlock()
					}
					continue
				}
				if had && entry.Version.Compare(prev) < 0 {
					mu.Lock()
					bad = append(bad, fmt.Sprintf("%s went back from %s to %s", k, prev, entry.Version))
					mu.Unlock()
				}
				seen[k] = entry.Version
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	return func() []string {
		<-done
		mu.Lock()
		defer mu.Unlock()
		return bad
	}
}

// truncatedSince reports whether key's table was truncated after version prev: a truncate deletes the
// table's older rows from the cache, so the key may vanish then.
func (e *env) truncatedSince(ctx context.Context, key string, prev rowcache.Version) bool {
	table, _, _ := strings.Cut(key, ":")
	v, err := e.rdb.Get(ctx, tablepolicy.MetaPrefix+"truncated:"+table).Result()
	if err != nil {
		return false
	}
	floor, err := rowcache.ParseVersion(v)
	if err != nil {
		return false
	}
	prev.Column = 0
	return floor.Compare(prev) > 0
}

// settle waits until the CDC source has published everything up to the binlog's end and the relay has
// delivered it, then runs the drift checker and fails on any difference.
func (e *env) settle() {
	e.t.Helper()
	// Generous: a slow CI machine may take long to work off a backlog; a healthy run settles in seconds.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var file string
	var pos uint64
	var doDB, ignoreDB any
	if err := e.db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &doDB, &ignoreDB); err != nil {
		e.t.Fatal(err)
	}
	for {
		off, ok, err := cdc.LoadOffset(e.state)
		if err != nil {
			e.t.Fatal(err)
		}
		if ok && off.SnapshotCompleted && (off.File > file || off.File == file && off.Pos >= pos) {
			break
		}
		if err := e.p.CDCErr(); err != nil {
			e.t.Fatal(err)
		}
		if ctx.Err() != nil {
			e.t.Fatalf("the CDC offset %+v did not reach %s:%d (relay %v)", off, file, pos, e.p.Relay.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := e.p.Quiesce(ctx, 500*time.Millisecond); err != nil {
		e.t.Fatal(err)
	}
	policy, err := tablepolicy.New(tablepolicy.Config{})
	if err != nil {
		e.t.Fatal(err)
	}
	rep, err := verify.Run(ctx, verify.Config{DB: e.db, Redis: e.rdb, Policy: policy, Tables: []string{"shop.accounts", "shop.order_lines"}, ChunkSize: 7, Settle: 100 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, tr := range rep.Tables {
		e.t.Logf("verify %s: %d rows, missing %d, extra %d, different %d", tr.Table, tr.Rows, tr.Missing, tr.Extra, tr.Different)
	}
	for _, d := range rep.Diffs {
		e.t.Errorf("drift: %s %s\n db:    %s\n cache: %s", d.Kind, d.Key, d.DB, d.Cache)
	}
	if rep.Tables[0].Rows == 0 {
		e.t.Error("the workload left no rows: the test checks nothing")
	}
	st := e.p.Relay.Stats()
	e.t.Logf("relay: %v; deliveries %d, deliberate duplicates %d, outcomes %v", st, st.Deliveries, st.Duplicates, st.Outcomes)
	e.checkMetrics(st.Outcomes["applied"])
	if dl := e.p.Emu.DeadLetters(); len(dl) > 0 {
		e.t.Errorf("%d messages were dead-lettered; first: %s %v", len(dl), dl[0].Data, dl[0].Attributes)
	}
}

// metric sums the function's /metrics lines that match re, whose group 1 is the value.
func (e *env) metric(re string) int64 {
	e.t.Helper()
	resp, err := http.Get(e.metricsURL)
	if err != nil {
		e.t.Fatalf("scrape the function's metrics: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	var n int64
	for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(string(body), -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		n += int64(v)
	}
	return n
}

// checkMetrics reads the function's /metrics, what operators see, and holds it to what the relay saw:
// the function counts every change it applied (all of them, unless it was restarted and lost its
// counters) and records a replication lag for each.
func (e *env) checkMetrics(relayApplied int64) {
	e.t.Helper()
	resp, err := http.Get(e.metricsURL)
	if err != nil {
		e.t.Fatalf("scrape the function's metrics: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		e.t.Fatal(err)
	}
	sum := func(re string) int64 {
		var n int64
		for _, m := range regexp.MustCompile(re).FindAllStringSubmatch(string(body), -1) {
			v, _ := strconv.ParseFloat(m[1], 64)
			n += int64(v)
		}
		return n
	}
	applied := sum(`(?m)^cloudsql_cache_events_total\{[^}]*outcome="applied"[^}]*\} (\S+)$`)
	lags := sum(`(?m)^cloudsql_cache_replication_lag_milliseconds_count\{[^}]*\} (\S+)$`)
	e.t.Logf("function metrics: applied %d (relay saw %d), replication-lag samples %d", applied, relayApplied, lags)
	switch {
	case applied == 0:
		e.t.Error("the function's /metrics counted no applied change")
	case applied > relayApplied:
		e.t.Errorf("the function counted %d applied changes, the relay saw %d", applied, relayApplied)
	case !e.fnRestarted && applied != relayApplied:
		e.t.Errorf("the function counted %d applied changes, the relay saw %d", applied, relayApplied)
	}
	if lags != applied {
		e.t.Errorf("%d replication-lag samples for %d applied changes", lags, applied)
	}
}

// waitUntil polls cond until it holds, failing the test after limit or as soon as the CDC source
// stops by itself.
func (e *env) waitUntil(what string, limit time.Duration, cond func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if err := e.p.CDCErr(); err != nil {
			e.t.Fatalf("waiting for %s: %v", what, err)
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("waited %v for %s in vain (relay %v)", limit, what, e.p.Relay.Stats())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStreaming waits until the CDC source has saved an offset with the initial snapshot completed:
// from then on changes reach the cache through the binlog.
func (e *env) waitStreaming() {
	e.t.Helper()
	e.waitUntil("the CDC source to record its snapshot completed", time.Minute, func() bool {
		off, ok, err := cdc.LoadOffset(e.state)
		if err != nil {
			e.t.Fatal(err)
		}
		return ok && off.SnapshotCompleted
	})
}

// run runs the workload for d with fault(s) injected by during at its middle, watching versions.
func (e *env) run(d time.Duration, during func()) { e.runThen(d, during, nil) }

// runThen is run with after called when the workload has stopped, before the pipeline settles.
func (e *env) runThen(d time.Duration, during, after func()) {
	e.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel() // also when the test fails half-way: the workload and the watcher stop
	regressions := e.watch(ctx)
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	end := time.Now().Add(d)
	var n int
	done := make(chan struct{})
	go func() { n = e.workload(wctx, 42); close(done) }()
	if during != nil {
		time.Sleep(d / 3)
		// The faults are meant for a pipeline that is streaming; a slow machine may still be in the
		// snapshot at d/3.
		e.waitStreaming()
		during()
		// However long the fault took, the workload goes on a while after it: recovery happens under
		// load, and a fault that waits for deliveries has some.
		if later := time.Now().Add(d / 3); later.After(end) {
			end = later
		}
	}
	time.Sleep(time.Until(end))
	wcancel()
	<-done
	if after != nil {
		after()
	}
	e.settle()
	cancel()
	for _, r := range regressions() {
		if e.lossy {
			e.t.Logf("version regression (Redis lost data): %s", r)
			continue
		}
		e.t.Errorf("version regression: %s", r)
	}
	e.t.Logf("workload: %d random changes", n)
}

func TestRandomWorkloadHasNoDrift(t *testing.T) {
	e := setup(t, options{})
	e.run(6*time.Second, nil)
}

func TestDuplicatePushes(t *testing.T) {
	e := setup(t, options{duplicateRate: 0.10})
	e.run(6*time.Second, nil)
	if st := e.p.Relay.Stats(); st.Duplicates == 0 {
		t.Error("no duplicate was delivered")
	}
}

// Redis runs with an fsynced append-only file, as Memorystore's standard tier fails over with its data:
// a restart loses nothing acknowledged. (A restart without persistence empties the cache; recovering
// from that needs a fresh snapshot, see local/README.md.)
func TestRedisRestartedMidRun(t *testing.T) {
	e := setup(t, options{persistentRedis: true})
	e.run(8*time.Second, func() {
		e.redis.Kill()
		time.Sleep(time.Second)
		if err := e.redis.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if st := e.p.Relay.Stats(); st.Outcomes["retry"]+st.Outcomes["unreachable"] == 0 {
		t.Log("note: no delivery failed while Redis was down")
	}
}

// Redis restarted without persistence after the rows went quiet: every cached row, tombstone and floor
// is gone, and no later change would bring the rows back. The function's watcher notices (the marker
// is gone), counts and logs it, and seeks the table subscriptions back to before the cache's data set
// began; Pub/Sub (the emulator's seek) delivers every change again and verify then finds no drift.
// While the replay runs, rows are older than they were, so the version watcher has nothing to say here.
func TestRedisRestartedWithoutPersistenceIsRepaired(t *testing.T) {
	e := setup(t, options{repair: true})
	e.lossy = true
	e.runThen(6*time.Second, nil, func() {
		e.settle()
		if err := e.redis.Restart(context.Background()); err != nil { // SIGKILL, then an empty start
			t.Fatal(err)
		}
		e.waitUntil("the function to notice the loss and repair it", 30*time.Second, func() bool {
			return e.metric(`(?m)^cloudsql_cache_repairs_total\{[^}]*state="finished"[^}]*\} (\S+)$`) > 0
		})
	})
	if n := e.metric(`(?m)^cloudsql_cache_redis_losses_total\{[^}]*extent="total"[^}]*\} (\S+)$`); n != 1 {
		t.Errorf("%d total losses counted, want 1", n)
	}
}

// The replica stops receiving under load, the rows go quiet (so no later change can hide a loss), then
// the primary crashes, the replica is promoted and the function reconnects through the same endpoint.
// With REDIS_WAIT_REPLICAS=1 (and no repair) every acknowledged change is on the promoted replica:
// verify finds zero drift (with 0 it finds the changes acknowledged while the replica was cut off
// missing). A write the primary applied but the replica never confirmed was answered 503; a reader may
// have seen it before the failover took it back, until its redelivery: so the version watcher's
// findings are logged, not failures.
func TestRedisFailoverLosesNoAcknowledgedChange(t *testing.T) {
	e := setup(t, options{replica: true})
	e.lossy = true
	e.runThen(6*time.Second, e.cutReplica, e.failover)
	if st := e.p.Relay.Stats(); st.Outcomes["retry"] == 0 {
		t.Error("no delivery was answered 503 while the replica was cut off: the fault did not happen")
	}
}

// Redis with appendfsync everysec killed with SIGKILL under load and restarted from its append-only
// file: the function's watcher sees the restart (or a partial loss, when the kill took the last writes
// with it) and seeks the subscriptions back past the last heartbeat that survived, so whatever the
// restart lost is delivered again: zero drift.
func TestRedisKilledWithAOFEverysecIsRepaired(t *testing.T) {
	e := setup(t, options{persistentRedis: true, fsync: "everysec", repair: true})
	e.lossy = true
	e.run(8*time.Second, func() {
		if err := e.redis.Restart(context.Background()); err != nil { // SIGKILL, then a start from the file
			t.Fatal(err)
		}
		e.waitUntil("the function to notice the restart and repair it", 30*time.Second, func() bool {
			return e.metric(`(?m)^cloudsql_cache_repairs_total\{[^}]*reason="(?:restart|partial_loss)"[^}]*state="finished"[^}]*\} (\S+)$`) > 0
		})
	})
}

func TestFunctionKilledAndRestarted(t *testing.T) {
	e := setup(t, options{})
	e.fnRestarted = true
	e.run(8*time.Second, func() {
		e.fn.Kill()
		time.Sleep(time.Second)
		// Restart only once a delivery has found the function down: then the fault surely happened.
		e.waitUntil("a delivery to the killed function", 30*time.Second, func() bool {
			return e.p.Relay.Stats().Outcomes["unreachable"] > 0
		})
		if err := e.fn.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
	if st := e.p.Relay.Stats(); st.Outcomes["unreachable"] == 0 {
		t.Error("no delivery failed while the function was down: the fault did not happen")
	}
}

func TestCDCRestartedFromAnOlderOffset(t *testing.T) {
	e := setup(t, options{})
	e.run(9*time.Second, func() {
		path := filepath.Join(e.state, cdc.OffsetFile)
		old, err := os.ReadFile(path) // there is one: run waits for the snapshot's
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second)
		// The replay must cover something: wait until the source has saved a newer offset.
		e.waitUntil("the CDC offset to move on", time.Minute, func() bool {
			cur, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			return !bytes.Equal(cur, old)
		})
		if err := e.p.StopCDC(); err != nil {
			t.Fatal(err)
		}
		// Put back the older offset (of two seconds ago, or more): that much of the binlog is published
		// again.
		if err := os.WriteFile(path, old, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := e.p.StartCDC(); err != nil {
			t.Fatal(err)
		}
	})
	if st := e.p.Relay.Stats(); st.Outcomes["duplicate"]+st.Outcomes["stale"] == 0 {
		t.Error("the replay delivered nothing already applied: the fault did not happen")
	}
}

// A truncate and a schema change in the middle of the workload. Adding a column does not rewrite the
// cached rows (Debezium sends nothing for rows a DDL does not touch), so after it the test rewrites
// every row, as an operator would (or re-snapshot); verify would report the old rows as different.
func TestTruncateAndSchemaChange(t *testing.T) {
	e := setup(t, options{})
	e.runThen(8*time.Second, func() {
		e.mysql.Exec(e.db, "TRUNCATE TABLE order_lines")
		time.Sleep(time.Second)
		e.mysql.Exec(e.db, "ALTER TABLE accounts ADD COLUMN note VARCHAR(10) NOT NULL DEFAULT 'n'")
	}, func() {
		e.mysql.Exec(e.db, "UPDATE accounts SET note = 'rewritten'")
	})
	v, err := e.rdb.Get(context.Background(), "shop.accounts:1").Result()
	if err == nil && !strings.Contains(v, `"note":"rewritten"`) && strings.Contains(v, "{") {
		t.Errorf("the new column is not in the cache: %s", v)
	}
	if n, err := e.rdb.Exists(context.Background(), tablepolicy.MetaPrefix+"truncated:shop.order_lines").Result(); err != nil || n != 1 {
		t.Errorf("no truncate floor for shop.order_lines (%v)", err)
	}
}
