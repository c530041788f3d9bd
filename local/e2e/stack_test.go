// Package e2e runs the whole local pipeline — MariaDB → the real Debezium Server → Pub/Sub emulator →
// push relay → the real function binary → redis-server — under a random workload, with and without
// faults, and holds the cache to the database with the drift checker after every scenario.
package e2e

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
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
	"github.com/cloudsql-cache/cloudsql-cache/local/funcmetrics"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
	"github.com/cloudsql-cache/cloudsql-cache/local/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/local/relay"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

var functionBin, moduleDir string

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
	moduleDir = strings.TrimSpace(string(root))
	if err := functionproc.Build(context.Background(), moduleDir, functionBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// tables are the captured tables; the workload writes all but bulk (the housekeeping burst) and markers
// (settle's end-of-stream marker).
var tables = []string{"shop.customers", "shop.products", "shop.order_lines", "shop.types", "shop.bulk", "shop.markers",
	"shop.shaped", "shop.doomed", "shop.renamed_from", "shop.renamed_to"}

// ddlTables are the captured tables the schema-change scenario drops, renames or reshapes: settle's
// drift check leaves them out (a swept table is cold, its rows missing until they change), and the
// scenario holds them to the database itself.
var ddlTables = map[string]bool{"shop.shaped": true, "shop.doomed": true, "shop.renamed_from": true, "shop.renamed_to": true}

// schema: the demo schema of `make run` (customers with an ENUM and a TIMESTAMP(3), products with a
// string key, a DECIMAL and a DATETIME(6), order_lines with a composite key), a table of every column
// type the pipeline encodes, and two tables of the tests' own.
var schema = []string{
	"CREATE TABLE customers (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL, tier ENUM('free','pro') NOT NULL DEFAULT 'free', created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3))",
	"CREATE TABLE products (sku VARCHAR(20) NOT NULL PRIMARY KEY, title VARCHAR(200) NOT NULL, price DECIMAL(10,2) NOT NULL, stock INT NOT NULL, updated_at DATETIME(6) NOT NULL)",
	"CREATE TABLE order_lines (order_id INT NOT NULL, line_no INT NOT NULL, sku VARCHAR(20) NOT NULL, qty INT NOT NULL, unit_price DECIMAL(10,2) NOT NULL, PRIMARY KEY (order_id, line_no))",
	"CREATE TABLE types (id INT UNSIGNED NOT NULL PRIMARY KEY, ti TINYINT, b BOOLEAN, si SMALLINT UNSIGNED, mi MEDIUMINT UNSIGNED, i INT UNSIGNED, bi BIGINT, ubi BIGINT UNSIGNED," +
		"d DECIMAL(10,2), d0 DECIMAL(5,0), dn DECIMAL(30,10), f FLOAT, db DOUBLE, dt0 DATETIME, dt3 DATETIME(3), dt6 DATETIME(6), ts0 TIMESTAMP NULL, ts3 TIMESTAMP(3) NULL, ts6 TIMESTAMP(6) NULL," +
		"dd DATE, tm TIME, tm6 TIME(6), y YEAR, c CHAR(4), vc VARCHAR(40), tx TEXT, bin BINARY(4), vb VARBINARY(8), bl BLOB, bt1 BIT(1), bt10 BIT(10), e ENUM('small','it''s big'), st SET('a','b','c'), js JSON)",
	"CREATE TABLE bulk (id INT NOT NULL PRIMARY KEY, payload VARCHAR(1000) NOT NULL)",
	"CREATE TABLE markers (id INT NOT NULL PRIMARY KEY, n BIGINT NOT NULL)",
	"CREATE TABLE shaped (id INT NOT NULL PRIMARY KEY, a INT NOT NULL, b VARCHAR(10) NOT NULL)",
	"INSERT INTO shaped VALUES (1, 1, 'b1'), (2, 2, 'b2'), (3, 3, 'b3'), (4, 4, 'b4')",
	"CREATE TABLE doomed (id INT NOT NULL PRIMARY KEY, v INT NOT NULL)",
	"INSERT INTO doomed VALUES (1, 1), (2, 2), (3, 3)",
	"CREATE TABLE renamed_from (id INT NOT NULL PRIMARY KEY, v INT NOT NULL)",
	"INSERT INTO renamed_from VALUES (1, 1), (2, 2), (3, 3)",
}

// snapshotRows customers exist before Debezium's first start, so that its snapshot takes a while.
const snapshotRows = 2000

// stack is one pipeline shared by the scenarios, in order: a JVM start costs seconds, and each scenario
// ends with the cache equal to the database, the next one's starting point.
type stack struct {
	mysql *mariadbserver.TestServer
	db    *sql.DB
	redis *redisserver.Server // nil when stackOptions.redis started the Redis
	rdb   redis.UniversalClient
	fn    *functionproc.Process
	p     *pipeline.Pipeline

	metricsURL string
	// fnEnv, fnPort and fnLog start the function again with another environment (restartFunction);
	// fnLogPath is where its log is.
	fnEnv     []string
	fnPort    int
	fnLog     io.Writer
	fnLogPath string
	// relayAppliedAtFnStart is the relay's count of applied changes when the function last started:
	// the function's own counters start from zero then.
	relayAppliedAtFnStart int64

	marker int64

	mu        sync.Mutex
	capturing bool
	captured  []delivery
}

// delivery is a push the relay made and its answer, decoded for the snapshot scenario's proof.
type delivery struct {
	sub, key, op, outcome string
	acked, repeat         bool
	data                  []byte // the Debezium event
	after                 map[string]json.RawMessage
	snapshot              string
	file                  string
	pos                   int64
	compact               bool // the compact event format (__op), whose fields observe does not read
}

// stackOptions vary the stack for a suite of its own; the zero value is TestPipeline's.
type stackOptions struct {
	// redis starts the Redis the function writes and returns the function's environment for it and a
	// client of the tests'; nil starts one persistent redis-server, s.redis.
	redis func(t *testing.T) (fnEnv []string, rdb redis.UniversalClient)
	// fnEnv adds to (and overrides) the function's environment.
	fnEnv []string
	// debeziumEnv sets Debezium Server's template variables (EVENT_FORMAT, …); nil: as shipped.
	debeziumEnv map[string]string
}

func newStack(t *testing.T, opts stackOptions) *stack {
	t.Helper()
	ctx := context.Background()
	s := &stack{mysql: mariadbserver.StartForTest(t, mariadbserver.Options{})}
	s.db = s.mysql.DB("shop")
	s.mysql.Exec(s.db, schema...)
	var redisEnv []string
	if opts.redis != nil {
		redisEnv, s.rdb = opts.redis(t)
	} else {
		var err error
		s.redis, err = redisserver.Start(ctx, redisserver.Options{Dir: t.TempDir(), Persistent: true})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.redis.Kill)
		redisEnv = []string{"REDIS_ADDR=" + s.redis.Addr()}
		s.rdb = redis.NewClient(&redis.Options{Addr: s.redis.Addr()})
	}
	t.Cleanup(func() { s.rdb.Close() })
	var err error
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	state := t.TempDir()
	s.p, err = pipeline.Start(ctx, pipeline.Config{DBAddr: s.mysql.Addr(), RootDSN: s.mysql.DSN(""), Tables: tables,
		ConfigDir: filepath.Join(moduleDir, "debezium-server"), StateDir: filepath.Join(state, "debezium"),
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 500 * time.Millisecond, MaxDeliveryAttempts: 100,
		// Every periodic task runs many times in the suite: the emulator's housekeeping every 300 ms,
		// the relay's ack-deadline renewal every second against Pub/Sub's shortest deadline, 10 s
		// (the function-kill scenario holds messages longer than that); Debezium's own offset flush
		// (5 s) and heartbeat (10 s) run as shipped.
		Housekeeping: 300 * time.Millisecond, AckDeadline: 10 * time.Second, ExtendEvery: time.Second,
		RestartDelay: time.Second, Seed: 7, OnDelivery: s.observe, Logger: logger, DebeziumEnv: opts.debeziumEnv})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if srv := s.p.Debezium(); srv != nil {
				t.Logf("the end of the Debezium Server log:\n%s", srv.LogTail(60))
			}
		}
		s.p.Close()
	})
	fport, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	mport, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	fnLogPath := filepath.Join(state, "function.log")
	fnLog, err := os.Create(fnLogPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		fnLog.Close()
		if b, err := os.ReadFile(fnLogPath); err == nil && t.Failed() {
			lines := strings.Split(strings.TrimSpace(string(b)), "\n")
			t.Logf("the end of the function's log (%d lines):\n%s", len(lines), strings.Join(lines[max(0, len(lines)-20):], "\n"))
		}
	})
	s.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	fnEnv := append(redisEnv, "DEAD_LETTER_TOPIC="+s.p.Emu.DeadLetterTopic(), "PUBSUB_EMULATOR_HOST="+s.p.Emu.Addr(),
		"REDIS_TIMEOUT=300ms", "APPLY_TIMEOUT=2s", fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", mport))
	s.fnEnv, s.fnPort, s.fnLog, s.fnLogPath = append(fnEnv, opts.fnEnv...), fport, fnLog, fnLogPath
	s.fn, err = functionproc.Start(ctx, functionBin, fport, s.fnEnv, fnLog)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.fn.Kill() }) // whichever process restartFunction left
	s.p.Deliver(s.fn.URL())
	return s
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

func (s *stack) observe(d relay.Delivery) {
	s.mu.Lock()
	capturing := s.capturing
	s.mu.Unlock()
	if !capturing {
		return
	}
	var ev struct {
		Op     string                     `json:"op"`
		After  map[string]json.RawMessage `json:"after"`
		Source struct {
			Snapshot string `json:"snapshot"`
			File     string `json:"file"`
			Pos      int64  `json:"pos"`
		} `json:"source"`
		CompactOp string `json:"__op"`
	}
	_ = json.Unmarshal(d.Message.Data, &ev)
	s.mu.Lock()
	s.captured = append(s.captured, delivery{sub: d.Subscription, key: d.Message.OrderingKey, op: ev.Op, outcome: d.Outcome, acked: d.Acked, repeat: d.Repeat,
		data: d.Message.Data, after: ev.After, snapshot: ev.Source.Snapshot, file: ev.Source.File, pos: ev.Source.Pos, compact: ev.CompactOp != ""})
	s.mu.Unlock()
}

// capture starts recording every delivery (on) or stops and returns what was recorded.
func (s *stack) capture(on bool) []delivery {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.capturing = on
	out := s.captured
	s.captured = nil
	return out
}

func sqlExec(t *testing.T, db *sql.DB, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// waitUntil polls cond until it holds, failing after limit.
func waitUntil(t *testing.T, what string, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s in vain", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// waitStreaming waits until Debezium's log says it streams.
func (s *stack) waitStreaming(t *testing.T) {
	t.Helper()
	waitUntil(t, "Debezium to stream", 3*time.Minute, func() bool { return s.p.Debezium().Progress().Phase == "streaming" })
}

// drain waits until everything committed so far is in the cache: a marker row written now has reached
// it (Debezium has read the binlog up to here and published all before it) and nothing is left to
// deliver.
func (s *stack) drain(ctx context.Context, t *testing.T) {
	t.Helper()
	s.marker++
	t0 := time.Now()
	sqlExec(t, s.db, fmt.Sprintf("REPLACE INTO markers VALUES (1, %d)", s.marker))
	want := fmt.Sprintf(`"n":%d}`, s.marker)
	for {
		e, found, err := rowcache.Get(ctx, s.rdb, "shop.markers:1")
		if err == nil && found && strings.HasSuffix(string(e.Row), want) {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the marker %d never reached the cache (Debezium: %s; relay %v; %d outstanding)", s.marker, s.p.Debezium().Progress(), s.p.Relay.Stats(), s.p.Emu.Outstanding())
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The marker's batch may still be publishing other keys: quiet for longer than the sink's batch
	// delay and a publish.
	if err := s.p.Quiesce(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	t.Logf("settled %.1f s after the workload stopped", time.Since(t0).Seconds())
}

// settle drains the pipeline, then runs the drift checker and fails on any difference, dead letter or miscount.
func (s *stack) settle(t *testing.T, fnRestarted bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	s.drain(ctx, t)
	policy, err := tablepolicy.New(tablepolicy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	var checked []string
	for _, t := range tables {
		if !ddlTables[t] {
			checked = append(checked, t)
		}
	}
	rep, err := verify.Run(ctx, verify.Config{DB: s.db, Redis: s.rdb, Policy: policy, Tables: checked, ChunkSize: 97, Settle: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	var rows int64
	for _, tr := range rep.Tables {
		t.Logf("verify %s: %d rows, missing %d, extra %d, different %d", tr.Table, tr.Rows, tr.Missing, tr.Extra, tr.Different)
		rows += tr.Rows
	}
	for _, d := range rep.Diffs {
		t.Errorf("drift: %s %s\n db:    %s\n cache: %s", d.Kind, d.Key, d.DB, d.Cache)
	}
	if rows == 0 {
		t.Error("no rows: the check checks nothing")
	}
	st := s.p.Relay.Stats()
	t.Logf("relay: %v; deliveries %d, deliberate duplicates %d, redelivered by the emulator %d, outcomes %v", st, st.Deliveries, st.Duplicates, st.Redelivered, st.Outcomes)
	s.checkMetrics(t, st.Outcomes["applied"], fnRestarted)
	if dl := s.p.Emu.DeadLetters(); len(dl) > 0 {
		t.Errorf("%d messages were dead-lettered; first: %s %v", len(dl), dl[0].Data, dl[0].Attributes)
	}
	if st.Outcomes["dead_lettered"]+st.RelayDLQ > 0 {
		t.Errorf("dead-lettered: %v", st)
	}
}

// checkMetrics reads the function's /metrics, what operators see, and holds it to what the relay saw:
// the function counts every change it applied since it started and records a replication lag for each.
func (s *stack) checkMetrics(t *testing.T, relayApplied int64, fnRestarted bool) {
	t.Helper()
	snap, err := funcmetrics.Scrape(context.Background(), s.metricsURL)
	if err != nil {
		t.Fatalf("scrape the function's metrics: %v", err)
	}
	applied := int64(snap.Outcomes["applied"])
	var lags int64
	for _, n := range snap.Lag {
		lags = max(lags, int64(n)) // cumulative buckets: the +Inf bucket is the count
	}
	since := relayApplied - s.relayAppliedAtFnStart
	t.Logf("function metrics: applied %d (the relay saw %d since the function started), replication-lag samples %d; retries by reason %v", applied, since, lags, s.reasons(t, "retry"))
	switch {
	case applied == 0:
		t.Error("the function's /metrics counted no applied change")
	case applied > since, !fnRestarted && applied != since:
		t.Errorf("the function counted %d applied changes, the relay saw %d", applied, since)
	}
	if lags != applied {
		t.Errorf("%d replication-lag samples for %d applied changes", lags, applied)
	}
}

// ignoredHeartbeats is the function's count of heartbeats it acknowledged and ignored.
func (s *stack) ignoredHeartbeats(t *testing.T) int64 {
	t.Helper()
	return s.reasons(t, "ignored")["heartbeat"]
}

// reasons are the function's counts of an outcome by reason.
func (s *stack) reasons(t *testing.T, outcome string) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	re := regexp.MustCompile(`(?m)^cloudsql_cache_events_total\{[^}]*outcome="` + regexp.QuoteMeta(outcome) + `"[^}]*reason="([^"]*)"[^}]*\} (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(s.scrape(t), -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		out[m[1]] += int64(v)
	}
	return out
}

// counter sums the series of one of the function's Prometheus counters (family, e.g.
// cloudsql_cache_repairs_total) that carry every label="value" given.
func (s *stack) counter(t *testing.T, family string, labels ...string) int64 {
	t.Helper()
	var n int64
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(family) + `\{([^}]*)\} (\S+)$`)
next:
	for _, m := range re.FindAllStringSubmatch(s.scrape(t), -1) {
		for _, l := range labels {
			if !strings.Contains(","+m[1]+",", ","+l+",") {
				continue next
			}
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		n += int64(v)
	}
	return n
}

// scrape reads the function's /metrics.
func (s *stack) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(s.metricsURL)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// purgeBinlogs starts a new binary log and purges every older one, as an outage longer than the binlog
// retention does. MariaDB keeps a file that a binlog dump thread reads or that its storage engine has
// not checkpointed yet (a warning, not an error), so it waits for the dump threads to end and purges
// until the older files are gone.
func (s *stack) purgeBinlogs(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	conn, err := s.mysql.DB("").Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	waitUntil(t, "the binlog dump threads to end", 30*time.Second, func() bool {
		var n int
		err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'").Scan(&n)
		return err == nil && n == 0
	})
	if _, err := conn.ExecContext(ctx, "FLUSH BINARY LOGS"); err != nil {
		t.Fatal(err)
	}
	var file string
	rows, err := conn.QueryContext(ctx, "SHOW MASTER STATUS")
	if err != nil {
		t.Fatal(err)
	}
	cols, _ := rows.Columns()
	dest := []any{&file}
	for range cols[1:] {
		dest = append(dest, new(any))
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			t.Fatal(err)
		}
	}
	rows.Close()
	waitUntil(t, "the binary logs before "+file+" to be purged", 30*time.Second, func() bool {
		if _, err := conn.ExecContext(ctx, "PURGE BINARY LOGS TO '"+file+"'"); err != nil {
			t.Fatal(err)
		}
		var first string
		return conn.QueryRowContext(ctx, "SHOW BINARY LOGS").Scan(&first, new(any)) == nil && first == file
	})
	t.Logf("binary logs purged up to %s", file)
}

// keys returns every key matching pattern: on a cluster from every primary (KEYS on a cluster client
// asks one node).
func (s *stack) keys(ctx context.Context, pattern string) ([]string, error) {
	var mu sync.Mutex
	var out []string
	err := rowcache.ScanKeys(ctx, s.rdb, pattern, func(keys []string) error {
		mu.Lock()
		defer mu.Unlock()
		out = append(out, keys...)
		return nil
	})
	return out, err
}

// verifyTable runs the drift checker on one table and returns its report (differences are the
// caller's to judge).
func (s *stack) verifyTable(t *testing.T, table string) verify.TableReport {
	t.Helper()
	policy, err := tablepolicy.New(tablepolicy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Run(context.Background(), verify.Config{DB: s.db, Redis: s.rdb, Policy: policy, Tables: []string{table}, Settle: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range rep.Diffs {
		t.Logf("verify %s: %s %s\n db:    %s\n cache: %s", table, d.Kind, d.Key, d.DB, d.Cache)
	}
	return rep.Tables[0]
}

// step is one scenario of a suite; a suite runs its steps in order on one stack.
type step struct {
	name string
	run  func(t *testing.T)
}

// runSteps runs the steps in order, each followed by then (if set) once it passed. A step that fails
// stops the suite: the next would start from its drift.
func runSteps(t *testing.T, steps []step, then func(t *testing.T, name string) bool) {
	t.Helper()
	for _, st := range steps {
		t0 := time.Now()
		ok := t.Run(st.name, st.run)
		if ok && then != nil {
			ok = then(t, st.name)
		}
		t.Logf("%s: %.1f s", st.name, time.Since(t0).Seconds())
		if !ok {
			t.Fatalf("%s failed; the later scenarios would start from its drift", st.name)
		}
	}
}
