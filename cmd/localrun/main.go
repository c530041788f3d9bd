// Command localrun is `make run`: the whole pipeline on one machine. It starts MariaDB (ROW binlog, FULL
// row image, GTIDs) and Redis under the state directory, creates a demo schema, and runs the real
// Debezium Server (from debezium-server/'s template and entry point) → Pub/Sub emulator → push relay →
// the real apply function, plus a small demo workload, with a live status line. Ctrl-C stops everything
// cleanly; the next start resumes from Debezium's stored offsets.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/debeziumserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/funcmetrics"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
	"github.com/cloudsql-cache/cloudsql-cache/local/pipeline"
)

type extraList []string

func (e *extraList) String() string     { return strings.Join(*e, ", ") }
func (e *extraList) Set(v string) error { *e = append(*e, v); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "localrun: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("localrun", flag.ContinueOnError)
	state := fs.String("state", ".state", "state directory (databases, Debezium's run directory, logs)")
	mysqlPort := fs.Int("mysql-port", 3307, "MariaDB port on 127.0.0.1")
	redisPort := fs.Int("redis-port", 6390, "Redis port on 127.0.0.1")
	fnPort := fs.Int("port", 8080, "the function's port on 127.0.0.1")
	metricsPort := fs.Int("metrics-port", 9464, "the function's Prometheus /metrics port on 127.0.0.1 (METRICS_ADDR)")
	rate := fs.Float64("rate", 20, "demo workload: changes per second (0: none)")
	dupRate := fs.Float64("duplicate-rate", 0, "share of pushes delivered twice (fault injection)")
	maxAttempts := fs.Int("max-delivery-attempts", 50, "push attempts before a message goes to the dead-letter topic (5..100; the Terraform default is 50)")
	duration := fs.Duration("duration", 0, "stop after this long (0: until Ctrl-C)")
	tables := fs.String("tables", strings.Join(demoTables, ","), "captured tables, db.table, comma-separated (Debezium's include list and a topic each, as Terraform's tables)")
	eventFormat := fs.String("event-format", "compact", "Debezium Server's EVENT_FORMAT: compact (the row plus its metadata; Terraform's event_format default) or full (Debezium's envelope)")
	resnapshot := fs.Bool("resnapshot", false, "delete Debezium's offsets and schema history first: a new snapshot of every table")
	statusEvery := fs.Duration("status", time.Second, "status line interval")
	readURL := fs.String("read-url", "http://127.0.0.1:8081", "the example read service (make run starts it on READ_PORT)")
	readMetrics := fs.String("read-metrics", "http://127.0.0.1:9465/metrics", "its /metrics, where its consistency sampler reports (make run: READ_METRICS_PORT); empty: not shown")
	readRate := fs.Float64("read-rate", 20, "demo reads per second through the read service (0: none)")
	var extras extraList
	fs.Var(&extras, "extra", "extra process `name=command` started with the pipeline's environment (MYSQL_DSN, REDIS_ADDR, CACHE_*) and stopped with it; repeatable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *rate < 0 || *dupRate < 0 || *dupRate > 1 {
		return errors.New("-rate must be >= 0 and -duplicate-rate within 0..1")
	}
	if *eventFormat != "compact" && *eventFormat != "full" {
		return fmt.Errorf("-event-format %q: want compact or full", *eventFormat)
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	dir, err := filepath.Abs(*state)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "logs", "pipeline.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer logFile.Close()
	logger := slog.New(slog.NewTextHandler(logFile, nil))
	say := func(format string, a ...any) { fmt.Printf(format+"\n", a...) }
	bg := context.Background() // for starting and stopping: Ctrl-C must not abort a clean stop

	started := time.Now()
	say("starting MariaDB on 127.0.0.1:%d (data in %s/mariadb)", *mysqlPort, *state)
	db0, err := mariadbserver.Start(bg, mariadbserver.Options{Dir: filepath.Join(dir, "mariadb"), Port: *mysqlPort})
	if err != nil {
		return err
	}
	defer func() { say("stopping MariaDB"); db0.Stop() }()
	db, err := sql.Open("mysql", db0.DSN("shop"))
	if err != nil {
		return err
	}
	defer db.Close()
	if err := demoSchema(bg, db0.DSN("")); err != nil {
		return err
	}

	say("starting Redis on 127.0.0.1:%d (append-only file in %s/redis)", *redisPort, *state)
	rs, err := redisserver.Start(bg, redisserver.Options{Dir: filepath.Join(dir, "redis"), Port: *redisPort, Persistent: true})
	if err != nil {
		return err
	}
	defer func() { say("stopping Redis"); rs.Stop() }()

	say("preparing Debezium Server %s (fetched through Maven and cached on the first run) and the Pub/Sub emulator", debeziumserver.Version)
	p, err := pipeline.Start(bg, pipeline.Config{DBAddr: db0.Addr(), RootDSN: db0.DSN(""), Tables: strings.Split(*tables, ","),
		ConfigDir: filepath.Join(root, "debezium-server"), StateDir: filepath.Join(dir, "debezium"), FetchLog: os.Stdout,
		DebeziumEnv:         map[string]string{"EVENT_FORMAT": *eventFormat},
		MaxDeliveryAttempts: *maxAttempts, DuplicateRate: *dupRate, Seed: uint64(time.Now().UnixNano()), Logger: logger})
	if err != nil {
		return err
	}
	defer func() { say("stopping the relay and the Pub/Sub emulator"); p.Close() }()

	say("building and starting the function on http://127.0.0.1:%d/", *fnPort)
	bin := filepath.Join(dir, "bin", "cloudsql-cache-function")
	if err := functionproc.Build(bg, root, bin); err != nil {
		return err
	}
	fnLog, err := os.OpenFile(filepath.Join(dir, "logs", "function.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	defer fnLog.Close()
	env := []string{"REDIS_ADDR=" + rs.Addr(), "DEAD_LETTER_TOPIC=" + p.Emu.DeadLetterTopic(), "PUBSUB_EMULATOR_HOST=" + p.Emu.Addr()}
	metricsURL := fmt.Sprintf("http://127.0.0.1:%d/metrics", *metricsPort)
	fn, err := functionproc.Start(bg, bin, *fnPort, append(env[:len(env):len(env)], fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", *metricsPort)), fnLog)
	if err != nil {
		return err
	}
	defer func() { say("stopping the function"); fn.Stop() }()
	p.Deliver(fn.URL())
	if *resnapshot {
		say("deleting Debezium's offsets and schema history (-resnapshot)")
		if err := p.ResetState(bg); err != nil {
			return err
		}
	}
	say("starting Debezium Server (log in %s/debezium/debezium.log): it resumes from its offsets in MariaDB's debezium_state, or snapshots", *state)
	t0 := time.Now()
	if err := p.StartDebezium(bg); err != nil {
		return err
	}
	say("Debezium Server healthy after %.1f s (%.1f s since start-up)", time.Since(t0).Seconds(), time.Since(started).Seconds())
	defer func() {
		say("stopping Debezium Server (it commits its offsets)")
		if err := p.StopDebezium(0); err != nil {
			say("  %v", err)
		}
		// The emulator keeps messages in memory only: deliver what Debezium published before stopping
		// it, or the next start would not see those changes again (Debezium's offsets are past them).
		dctx, cancel := context.WithTimeout(bg, 30*time.Second)
		defer cancel()
		if err := p.Quiesce(dctx, 200*time.Millisecond); err != nil {
			say("  %d published changes were not delivered and are lost with the emulator: run make verify-local; 'make run RUN_FLAGS=-resnapshot' repairs (%v)", p.Emu.Outstanding(), err)
		}
	}()

	// The hook for more processes (e.g. an example read service): each gets the pipeline's settings.
	extraEnv := append(append([]string{}, env...), "MYSQL_DSN="+db0.DSN(""))
	for _, e := range extras {
		name, command, ok := strings.Cut(e, "=")
		if !ok || name == "" || command == "" {
			return fmt.Errorf("-extra %q is not name=command", e)
		}
		stopExtra, err := startExtra(name, command, extraEnv, filepath.Join(dir, "logs", name+".log"))
		if err != nil {
			return err
		}
		defer func() { say("stopping %s", name); stopExtra() }()
		say("started %s: %s (log in %s/logs/%s.log)", name, command, *state, name)
	}

	say(`
The pipeline is running: MariaDB → Debezium Server → Pub/Sub emulator → push relay → function → Redis.
Poke it by hand in another terminal:
  mariadb -h 127.0.0.1 -P %[1]d -u root shop -e "UPDATE products SET price = price + 1 WHERE sku = 'tea'"
  redis-cli -p %[2]d GET shop.products:tea
  redis-cli -p %[2]d GET shop.order_lines:1:1          # a composite key: order_id 1, line_no 1
  REDIS_ADDR=127.0.0.1:%[2]d go run ./cmd/verify -dsn 'root@tcp(127.0.0.1:%[1]d)/' -databases shop
  curl -s %[4]s | grep ^cloudsql_cache      # the function's metrics, as operators chart them
  curl -s %[5]s                              # Debezium Server's health
Logs: %[3]s/logs. Ctrl-C stops everything; 'make run' again resumes where it stopped.
The status line's outcomes and commit→cache lag come from the function's /metrics (lag over the last ~10 s);
its reads part from the read service's consistency sampler (%[6]s), over its reads since it started.
`, *mysqlPort, *redisPort, *state, metricsURL, p.Debezium().HealthURL("/q/health"), *readMetrics)

	var wg sync.WaitGroup
	wctx, wcancel := context.WithCancel(ctx)
	if *rate > 0 {
		wg.Add(1)
		go func() { defer wg.Done(); workload(wctx, db, *rate) }()
	}
	if *readRate > 0 && *readURL != "" {
		wg.Add(1)
		go func() { defer wg.Done(); readLoad(wctx, *readURL, *readRate) }()
	}
	status(ctx, p, metricsURL, *readMetrics, *statusEvery, os.Stdout)
	wcancel()
	wg.Wait()
	fmt.Println()
	return nil
}

// status prints the status line until ctx ends.
func status(ctx context.Context, p *pipeline.Pipeline, metricsURL, readMetricsURL string, every time.Duration, w io.Writer) {
	t := time.NewTicker(every)
	defer t.Stop()
	tty := isTerminal()
	var lastAcked int64
	lastAt := time.Now()
	resetAt := time.Now()
	var window []funcmetrics.Snapshot // about ten seconds of scrapes: the lag shown is over that window
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			s := p.Relay.Stats()
			rate := float64(s.Acked-lastAcked) / now.Sub(lastAt).Seconds()
			lastAcked, lastAt = s.Acked, now
			var line string
			snap, err := funcmetrics.Scrape(ctx, metricsURL)
			if err != nil {
				line = fmt.Sprintf("%s  events/s %5.0f  backlog %d  (function metrics unavailable: %v)", now.Format("15:04:05"), rate, s.Backlog, err)
			} else {
				window = append(window, snap)
				if len(window) > 10 {
					window = window[1:]
				}
				base := window[0]
				if len(window) == 1 {
					base = funcmetrics.Snapshot{}
				}
				p50, _ := snap.LagQuantile(0.5, base)
				p99, _ := snap.LagQuantile(0.99, base)
				dbzText := "" // the compact format carries no ts_us to measure it from
				if dbz := p.Lag().Debezium; dbz.N > 0 {
					dbzText = fmt.Sprintf(" (dbz→cache p50 %.1fms p99 %.1fms)", dbz.P50, dbz.P99)
				}
				line = fmt.Sprintf("%s  %s  events/s %5.0f  lag commit→cache p50 %4.0fms p99 %4.0fms%s  backlog %d  applied %.0f  duplicate %.0f  stale %.0f  dead-lettered %d",
					now.Format("15:04:05"), debeziumStatus(ctx, p), rate, p50, p99, dbzText, s.Backlog,
					snap.Outcomes["applied"], snap.Outcomes["duplicate"], snap.Outcomes["stale"], int64(snap.Outcomes["dead_lettered"])+s.RelayDLQ)
			}
			if readMetricsURL != "" {
				if r, err := scrapeReads(ctx, readMetricsURL); err == nil {
					line += "  " + r.line()
				}
			}
			if tty {
				fmt.Fprintf(w, "\r\033[K%s", line)
			} else {
				fmt.Fprintln(w, line)
			}
			if now.Sub(resetAt) > 10*time.Second {
				p.ResetLag() // the cdc→cache lag shown is that of the last ten seconds or so
				resetAt = now
			}
		}
	}
}

// debeziumStatus is Debezium Server's /q/health and what its log says it is doing.
func debeziumStatus(ctx context.Context, p *pipeline.Pipeline) string {
	srv := p.Debezium()
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	health := "DOWN"
	if up, _ := srv.Health(hctx); up {
		health = "UP"
	}
	line := "debezium " + health + " " + srv.Progress().String()
	if exits, restarts := p.DebeziumExits(); len(exits) > 0 {
		line += fmt.Sprintf(" (exited by itself %d×, restarted %d×: see the log)", len(exits), restarts)
	}
	return line
}

func isTerminal() bool {
	fi, err := os.Stdout.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func startExtra(name, command string, env []string, logPath string) (func(), error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command("bash", "-c", command)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM} // stopped by us, or when we die
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	return func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		log.Close()
	}, nil
}

// demoTables are the tables `make run` captures by default.
var demoTables = []string{"shop.customers", "shop.products", "shop.order_lines"}

const schemaSQL = `CREATE DATABASE IF NOT EXISTS shop;
CREATE TABLE IF NOT EXISTS shop.customers (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, name VARCHAR(100) NOT NULL, email VARCHAR(200) NOT NULL, tier ENUM('free','pro') NOT NULL DEFAULT 'free', created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3));
CREATE TABLE IF NOT EXISTS shop.products (sku VARCHAR(20) NOT NULL PRIMARY KEY, title VARCHAR(200) NOT NULL, price DECIMAL(10,2) NOT NULL, stock INT NOT NULL, updated_at DATETIME(6) NOT NULL);
CREATE TABLE IF NOT EXISTS shop.order_lines (order_id INT NOT NULL, line_no INT NOT NULL, sku VARCHAR(20) NOT NULL, qty INT NOT NULL, unit_price DECIMAL(10,2) NOT NULL, PRIMARY KEY (order_id, line_no));
INSERT IGNORE INTO shop.customers (id, name, email, tier) VALUES (1, 'Anne Kretchmar', 'annek@example.org', 'pro'), (2, 'Sally Thomas', 'sally@example.org', 'free'), (3, 'Edward Walker', 'ed@example.org', 'free');
INSERT IGNORE INTO shop.products VALUES ('tea', 'Green tea, 100 g', 4.90, 120, NOW(6)), ('coffee', 'Coffee beans, 1 kg', 21.50, 40, NOW(6)), ('mug', 'Mug', 8.00, 300, NOW(6)), ('pot', 'Tea pot', 32.00, 12, NOW(6));
INSERT IGNORE INTO shop.order_lines VALUES (1, 1, 'tea', 2, 4.90), (1, 2, 'mug', 1, 8.00), (2, 1, 'coffee', 1, 21.50);`

func demoSchema(ctx context.Context, dsn string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	for _, q := range strings.Split(schemaSQL, ";\n") {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("demo schema: %s: %w", q, err)
		}
	}
	return nil
}

// workload makes rate changes per second to the demo tables until ctx ends.
func workload(ctx context.Context, db *sql.DB, rate float64) {
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	skus := []string{"tea", "coffee", "mug", "pot"}
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var q string
		switch k := rnd.IntN(100); {
		case k < 40:
			q = fmt.Sprintf("UPDATE shop.products SET price = %d.%02d, stock = stock - 1, updated_at = NOW(6) WHERE sku = '%s'", 1+rnd.IntN(40), rnd.IntN(100), skus[rnd.IntN(len(skus))])
		case k < 60:
			q = fmt.Sprintf("INSERT INTO shop.order_lines VALUES (%d, %d, '%s', %d, 4.90) ON DUPLICATE KEY UPDATE qty = qty + 1", 1+rnd.IntN(20), 1+rnd.IntN(3), skus[rnd.IntN(len(skus))], 1+rnd.IntN(3))
		case k < 75:
			q = fmt.Sprintf("DELETE FROM shop.order_lines WHERE order_id = %d AND line_no = %d", 1+rnd.IntN(20), 1+rnd.IntN(3))
		case k < 95:
			q = fmt.Sprintf("UPDATE shop.customers SET tier = IF(tier = 'pro', 'free', 'pro') WHERE id = %d", 1+rnd.IntN(3))
		default: // a primary-key change: moved to another order
			q = fmt.Sprintf("UPDATE IGNORE shop.order_lines SET order_id = %d WHERE order_id = %d AND line_no = 1", 1+rnd.IntN(20), 1+rnd.IntN(20))
		}
		_, _ = db.ExecContext(ctx, q) // lock waits and duplicates are part of a demo workload
	}
}
