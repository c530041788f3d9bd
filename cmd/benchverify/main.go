// Command benchverify measures the drift checker (cmd/verify) on a large table: its time, its peak
// memory, and the load it puts on the database and on Redis, beside a baseline measured in the same
// run: the least work any check must do, one streaming read of the whole table and one MGET of every
// key.
//
//	go run ./cmd/benchverify -rows 1000000
//
// It starts its own mariadbd and redis-server in a temporary directory, fills a table and the cache
// with the same rows, breaks a few of them (-drift of each kind: missing, different, extra), then runs
// the verify binary as a child process in several modes and prints one Markdown table. -verify-bin
// measures another build of verify (an older revision, for instance) the same way.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/internal/proccpu"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

func main() {
	rows := flag.Int("rows", 1000000, "rows in the table")
	drift := flag.Int("drift", 100, "rows broken of each kind (missing, different, extra)")
	chunk := flag.Int("chunk", 500, "verify's -chunk")
	bin := flag.String("verify-bin", "", "verify binary to measure (default: build ./cmd/verify)")
	pool := flag.Int64("buffer-pool-mib", 0, "innodb_buffer_pool_size in MiB to set before the runs, e.g. 1024 to hold the whole table (0: the test server's 64 MiB, far smaller than the table, as a production table is larger than the memory of its server)")
	modes := flag.String("modes", "full,nopause,exact,rows-only,sample,rate", "what to run: plain (only the flags an older verify also has, for -verify-bin), full (default flags), nopause (-pause 0), exact (-extras-filter-mib 0: every cached key looked up), rows-only (-extras off), sample (-sample 100), rate (-rate 20000 over the first 200,000 rows)")
	flag.Parse()
	if err := run(context.Background(), *rows, *drift, *chunk, *bin, *pool, strings.Split(*modes, ","), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "benchverify:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, rows, drift, chunk int, bin string, pool int64, modes []string, out io.Writer) error {
	dir, err := os.MkdirTemp("", "benchverify-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if bin == "" {
		bin = filepath.Join(dir, "verify")
		build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/verify")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("build verify: %w", err)
		}
	}
	my, err := mariadbserver.Start(ctx, mariadbserver.Options{Dir: filepath.Join(dir, "mariadb")})
	if err != nil {
		return err
	}
	defer my.Stop()
	rs, err := redisserver.Start(ctx, redisserver.Options{Dir: filepath.Join(dir, "redis")})
	if err != nil {
		return err
	}
	defer rs.Stop()
	root, err := sql.Open("mysql", my.DSN(""))
	if err != nil {
		return err
	}
	defer root.Close()
	rdb := redis.NewClient(rs.ClientOptions())
	defer rdb.Close()

	t0 := time.Now()
	if err := fill(ctx, root, rdb, rows, drift); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "benchverify: %d rows in MariaDB and Redis in %s\n", rows, time.Since(t0).Round(time.Second))

	if pool > 0 {
		if _, err := root.ExecContext(ctx, "SET GLOBAL innodb_buffer_pool_size = ?", pool<<20); err != nil {
			return fmt.Errorf("-buffer-pool-mib %d: %w", pool, err)
		}
		// The resize runs in the background: wait for it.
		for i := 0; i < 600; i++ {
			var status string
			if err := root.QueryRowContext(ctx, "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_BUFFER_POOL_RESIZE_STATUS'").Scan(&status); err != nil || status == "" || strings.Contains(status, "Completed") {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	var poolSize int64
	if err := root.QueryRowContext(ctx, "SELECT @@innodb_buffer_pool_size").Scan(&poolSize); err != nil {
		return err
	}
	mariaPid, err := pidFile(filepath.Join(dir, "mariadb", "mysqld.pid"))
	if err != nil {
		return err
	}
	m := &meter{db: root, rdb: rdb, mariaPid: mariaPid}
	base, err := m.measure(ctx, func() (procStats, error) { return baseline(ctx, my.DSN(""), rdb) })
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "verify on a table of %d rows (~%d B of row JSON each), %d rows of each kind of drift, chunk %d; mariadbd (innodb_buffer_pool_size %d MiB) and redis-server on this machine\n\n",
		rows, rowBytes, drift, chunk, poolSize>>20)
	fmt.Fprintln(out, "| run | wall time | × baseline | rows/s | peak RSS | CPU (verify) | mariadbd CPU | rows read | queries | bytes sent | Redis CPU | Redis commands | result |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	fmt.Fprintln(out, base.row("baseline: SELECT every row + MGET every key", base, rows))
	env := []string{"REDIS_ADDR=" + rs.Addr(), "CACHE_TABLES=bench.items", "PATH=" + os.Getenv("PATH")}
	dsn := my.DSN("")
	for _, mode := range modes {
		args := []string{"-dsn", dsn, "-tables", "bench.items", "-chunk", strconv.Itoa(chunk), "-settle", "1s"}
		label, n := "", rows
		if m := strings.TrimSpace(mode); m != "plain" {
			args = append(args, "-progress", "0")
		}
		switch strings.TrimSpace(mode) {
		case "plain":
			label = "verify with only the flags every version has (-chunk, -settle)"
		case "full":
			label = "verify (defaults: -pause 10ms)"
		case "exact":
			label, args = "verify -extras-filter-mib 0 -pause 0 (every cached key looked up)", append(args, "-extras-filter-mib", "0", "-pause", "0")
		case "nopause":
			label, args = "verify -pause 0", append(args, "-pause", "0")
		case "rows-only":
			label, args = "verify -extras off -pause 0", append(args, "-extras", "off", "-pause", "0")
		case "sample":
			label, args, n = "verify -sample 100 (20 rows each)", append(args, "-sample", "100"), 2000
		case "rate":
			label, n = "verify -rate 20000 -to 200001 (200,000 rows)", 200000
			args = append(args, "-rate", "20000", "-pause", "0", "-to", "200001")
		default:
			return fmt.Errorf("unknown mode %q", mode)
		}
		var result string
		st, err := m.measure(ctx, func() (procStats, error) {
			var s procStats
			s, result, err = runVerify(ctx, bin, args, env)
			return s, err
		})
		if err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		st.result = result
		fmt.Fprintln(out, st.row(label, base, n))
	}
	return nil
}

// rowBytes is about the length of one row's JSON.
const rowBytes = 230

func fill(ctx context.Context, db *sql.DB, rdb *redis.Client, rows, drift int) error {
	for _, q := range []string{
		"CREATE DATABASE bench",
		`CREATE TABLE bench.items (id BIGINT NOT NULL PRIMARY KEY, sku VARCHAR(32) NOT NULL, title VARCHAR(160) NOT NULL,
			price DECIMAL(10,2) NOT NULL, stock INT NOT NULL, updated_at DATETIME(6) NOT NULL)`,
		// The Sequence engine generates the rows inside the server: a million rows in seconds.
		fmt.Sprintf(`INSERT INTO bench.items SELECT seq, CONCAT('SKU-', LPAD(seq, 10, '0')),
			CONCAT('Item ', seq, ' ', REPEAT(SUBSTRING(MD5(seq), 1, 16), 6)), (seq %% 10000) / 100, seq %% 500,
			TIMESTAMPADD(SECOND, seq, '2026-01-01 00:00:00.123456') FROM bench.seq_1_to_%d`, rows),
		"ANALYZE TABLE bench.items",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%.60s…: %w", q, err)
		}
	}
	// The cache: every row as the function stores it, written with a pipeline. (The server runs in UTC,
	// as mysqlrow needs.)
	policy, err := tablepolicy.New(tablepolicy.Config{})
	if err != nil {
		return err
	}
	pt, _ := policy.Table("bench", "items")
	t, err := mysqlrow.LoadTable(ctx, db, "bench", "items")
	if err != nil {
		return err
	}
	r, err := db.QueryContext(ctx, "SELECT "+t.SelectList()+" FROM "+t.QualifiedName())
	if err != nil {
		return err
	}
	defer r.Close()
	v := rowcache.Version{File: 1, Pos: 4}
	pipe := rdb.Pipeline()
	n := 0
	for r.Next() {
		row, err := t.ScanRow(r)
		if err != nil {
			return err
		}
		pk, _ := t.Key(row)
		key, err := pt.Key(pk)
		if err != nil {
			return err
		}
		n++
		value := rowcache.EncodeRow(v, pt.RowJSON(row))
		switch {
		case n <= drift: // missing
			continue
		case n <= 2*drift: // different
			value = rowcache.EncodeRow(v, []byte(`{"id":`+strconv.Itoa(n)+`,"stale":true}`))
		}
		pipe.Set(ctx, key, value, 0)
		if pipe.Len() >= 1000 {
			if _, err := pipe.Exec(ctx); err != nil {
				return err
			}
		}
	}
	if err := r.Err(); err != nil {
		return err
	}
	for i := 1; i <= drift; i++ { // extra: rows the table does not have
		id := rows + i
		pipe.Set(ctx, "bench.items:"+strconv.Itoa(id), rowcache.EncodeRow(v, []byte(`{"id":`+strconv.Itoa(id)+`}`)), 0)
	}
	_, err = pipe.Exec(ctx)
	return err
}

// baseline reads every row of the table once (the same driver and column decoding verify uses) and
// MGETs every key in batches of 500: the least a check of every row must do.
func baseline(ctx context.Context, dsn string, rdb *redis.Client) (procStats, error) {
	checked, err := mysqlrow.CheckDSN(dsn)
	if err != nil {
		return procStats{}, err
	}
	db, err := sql.Open("mysql", checked)
	if err != nil {
		return procStats{}, err
	}
	defer db.Close()
	t, err := mysqlrow.LoadTable(ctx, db, "bench", "items")
	if err != nil {
		return procStats{}, err
	}
	start := time.Now()
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	r, err := db.QueryContext(ctx, "SELECT "+t.SelectList()+" FROM "+t.QualifiedName()+" ORDER BY id")
	if err != nil {
		return procStats{}, err
	}
	defer r.Close()
	keys := make([]string, 0, 500)
	mget := func() error {
		if len(keys) == 0 {
			return nil
		}
		err := rdb.MGet(ctx, keys...).Err()
		keys = keys[:0]
		return err
	}
	for r.Next() {
		row, err := t.ScanRow(r)
		if err != nil {
			return procStats{}, err
		}
		id, _ := row.Get("id")
		keys = append(keys, "bench.items:"+string(id))
		if len(keys) == cap(keys) {
			if err := mget(); err != nil {
				return procStats{}, err
			}
		}
	}
	if err := r.Err(); err != nil {
		return procStats{}, err
	}
	if err := mget(); err != nil {
		return procStats{}, err
	}
	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	return procStats{wall: time.Since(start), cpu: cpuOf(ru1) - cpuOf(ru0), result: "-"}, nil
}

func runVerify(ctx context.Context, bin string, args, env []string) (procStats, string, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return procStats{}, "", err
	}
	// The peak RSS is the child's VmHWM, read until it exits: the rusage of a waited-for child
	// reports at least the parent's RSS at the fork (the kernel carries the high-water mark across
	// exec), which here is the benchmark's own, filled with a million rows.
	var hwm int64
	done, polled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(polled)
		for {
			if v := vmHWM(cmd.Process.Pid); v > hwm {
				hwm = v
			}
			select {
			case <-done:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	err := cmd.Wait()
	wall := time.Since(start)
	close(done)
	<-polled
	if cmd.ProcessState == nil {
		return procStats{}, "", err
	}
	code := cmd.ProcessState.ExitCode()
	if code != 0 && code != 1 {
		return procStats{}, "", fmt.Errorf("verify exited %d: %s%s", code, stdout.String(), stderr.String())
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	return procStats{wall: wall, cpu: cpuOf(*ru), rss: hwm}, summary(stdout.String()), nil
}

// vmHWM is the peak resident set of pid in bytes, from /proc/<pid>/status (0 once it has exited).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// summary is verify's table line: its counts.
func summary(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "bench.items") {
			f := strings.Fields(l)
			return strings.Join(f[1:], " ")
		}
	}
	return strings.TrimSpace(out)
}

func cpuOf(ru syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type procStats struct {
	wall, cpu time.Duration
	rss       int64
	result    string

	dbCPU             time.Duration
	rowsRead, queries int64
	bytesSent         int64
	redisCPU          time.Duration
	redisCommands     int64
}

func (s procStats) row(label string, base procStats, rows int) string {
	rss := "-"
	if s.rss > 0 {
		rss = fmt.Sprintf("%.1f MiB", float64(s.rss)/(1<<20))
	}
	return fmt.Sprintf("| %s | %s | %.2f | %.0f | %s | %s | %s | %d | %d | %.1f MB | %s | %d | %s |", label, s.wall.Round(10*time.Millisecond),
		s.wall.Seconds()/base.wall.Seconds(), float64(rows)/s.wall.Seconds(), rss, s.cpu.Round(10*time.Millisecond),
		s.dbCPU.Round(10*time.Millisecond), s.rowsRead, s.queries, float64(s.bytesSent)/1e6, s.redisCPU.Round(10*time.Millisecond), s.redisCommands, s.result)
}

// meter reads the database's and Redis's counters around a run.
type meter struct {
	db       *sql.DB
	rdb      *redis.Client
	mariaPid int
}

type counters struct {
	dbCPU, redisCPU                  time.Duration
	rowsRead, queries, redisCommands int64
	bytesSent                        int64
}

func (m *meter) measure(ctx context.Context, f func() (procStats, error)) (procStats, error) {
	before, err := m.read(ctx)
	if err != nil {
		return procStats{}, err
	}
	st, err := f()
	if err != nil {
		return st, err
	}
	after, err := m.read(ctx)
	if err != nil {
		return st, err
	}
	st.dbCPU = after.dbCPU - before.dbCPU
	st.rowsRead = after.rowsRead - before.rowsRead
	st.bytesSent = after.bytesSent - before.bytesSent
	st.queries = after.queries - before.queries - 2 // the two status reads of this meter
	st.redisCPU = after.redisCPU - before.redisCPU
	st.redisCommands = after.redisCommands - before.redisCommands - 1 // the INFO before
	return st, nil
}

func (m *meter) read(ctx context.Context) (counters, error) {
	var c counters
	r, err := m.db.QueryContext(ctx, "SHOW GLOBAL STATUS WHERE Variable_name IN ('Rows_read', 'Innodb_rows_read', 'Questions', 'Bytes_sent')")
	if err != nil {
		return c, err
	}
	for r.Next() {
		var name, v string
		if err := r.Scan(&name, &v); err != nil {
			r.Close()
			return c, err
		}
		n, _ := strconv.ParseInt(v, 10, 64)
		switch name {
		case "Rows_read":
			c.rowsRead = n
		case "Bytes_sent":
			c.bytesSent = n
		case "Questions":
			c.queries = n
		}
	}
	r.Close()
	if c.dbCPU, err = proccpu.Time(m.mariaPid); err != nil {
		return c, err
	}
	info, err := m.rdb.Info(ctx, "cpu", "stats").Result()
	if err != nil {
		return c, err
	}
	for _, l := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(l, ":")
		f, _ := strconv.ParseFloat(v, 64)
		switch k {
		case "used_cpu_user", "used_cpu_sys":
			c.redisCPU += time.Duration(f * float64(time.Second))
		case "total_commands_processed":
			c.redisCommands = int64(f)
		}
	}
	return c, nil
}

func pidFile(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
