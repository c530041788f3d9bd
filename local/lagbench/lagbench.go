// Package lagbench is the end-to-end lag benchmark (cmd/benchlag): it measures lag through the whole
// local pipeline — MariaDB → Debezium Server → Pub/Sub emulator (pstest) → push relay → the real
// function binary → redis-server — at fixed offered rates of row changes, and finds the rate it can no
// longer keep up with.
//
// Method: a private MariaDB, Redis, the pipeline (local/pipeline: the real Debezium Server from the
// shipped configuration, plus Config.Properties when tuning) and the function (built with
// functionproc.Build, METRICS_ADDR set) run on loopback in Config.Dir. A table of Keys rows of ~RowBytes
// is snapshotted first. Then, per rate, an open-loop load (local/loadgen) offers the rate for a warm-up
// and Duration. For every change the function answers "applied" the pipeline's delivery observer
// (pipeline.Config.OnApplied) records, at the answer:
//   - commit→cache: now − the COMMIT time of the row's statement (µs resolution, exact to a loopback
//     round trip);
//   - commit→cache (binlog ts): now − source.ts_ms, as the pipeline and the function's /metrics measure
//     it; MariaDB binlog timestamps are whole seconds, so this includes 0–1 s of truncation;
//   - dbz→cache: now − the envelope's ts_us (when Debezium made the event): the sink, the emulator,
//     the relay and the function.
//
// Every 100 ms it samples the relay's backlog (pulled, not yet acknowledged) and the changes of the
// load's table acknowledged so far, from which the outstanding changes (committed, not yet in the
// cache, wherever they wait: binlog, Debezium, emulator or relay) follow. After the load stops it waits
// for the outstanding changes to drain; a rate is kept up with when they drain within KeepUp.
// Escalation stops at the first rate that is not kept up. While loaded it also reads the CPU time of
// each process (/proc/<pid>/stat): Debezium's JVM, the function, MariaDB, Redis and this process (the
// emulator, the relay and the load generator), so that a missed target says who spent the time.
package lagbench

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
	"github.com/cloudsql-cache/cloudsql-cache/local/loadgen"
	"github.com/cloudsql-cache/cloudsql-cache/local/pipeline"
	"github.com/cloudsql-cache/cloudsql-cache/local/relay"
)

// Config configures a run.
type Config struct {
	Rates               []float64     // offered rates, row changes per second, increasing
	Duration            time.Duration // measured time per rate (after the warm-up)
	Warmup              time.Duration // load at the rate before measuring
	KeepUp              time.Duration // a rate is kept up with when the outstanding changes drain within this after the load stops
	DrainMax            time.Duration // give up waiting for the drain after this (the run then ends)
	Keys                int           // rows in the table at the start
	Batch               int           // at most this many rows per statement
	Conns               int           // database connections of the load generator
	RowBytes            int           // payload bytes per row
	MaxDeliveryAttempts int           // push attempts before the dead-letter topic
	// Properties are Debezium system properties beyond the shipped configuration (tuning experiments:
	// debezium.source.poll.interval.ms, debezium.sink.pubsub.batch.delay.threshold.ms, …); empty runs
	// the shipped configuration.
	Properties map[string]string
	// JavaOpts replaces Debezium's JAVA_OPTS, e.g. with a flight recording for a profile; empty keeps
	// the default.
	JavaOpts string
	// ModuleDir is the repository (the function's source, debezium-server/).
	ModuleDir string
	// Dir holds the servers' data and the logs.
	Dir string
	// Progress receives what the run is doing and each rate's raw line as it is measured.
	Progress io.Writer
}

func (c Config) validate() error {
	if len(c.Rates) == 0 {
		return errors.New("lagbench: no rate to offer")
	}
	for i, r := range c.Rates {
		if !(r > 0) || (i > 0 && r <= c.Rates[i-1]) {
			return errors.New("lagbench: rates must be positive and increase")
		}
	}
	if c.Keys < c.Conns || c.Batch < 1 || c.Conns < 1 || c.Duration <= 0 || c.Dir == "" || c.ModuleDir == "" {
		return errors.New("lagbench: need Keys >= Conns, Batch >= 1, Conns >= 1, Duration > 0, a Dir and a ModuleDir")
	}
	return nil
}

// quiesceTimeout bounds the wait for the pipeline to drain between rates.
const quiesceTimeout = 2 * time.Minute

// Run starts everything, measures every rate while ctx lasts (ending ctx stops the measuring, not the
// clean-up), writes the results to w as a Markdown table and raw lines, and stops everything.
func Run(ctx context.Context, c Config, w io.Writer) error {
	if err := c.validate(); err != nil {
		return err
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	b, err := start(context.Background(), &c)
	if b != nil {
		defer b.close()
	}
	if err != nil {
		return err
	}
	return b.measure(ctx, &c, w)
}

// bench is the running pipeline and the load's bookkeeping.
type bench struct {
	db    *mariadbserver.Server
	rs    *redisserver.Server
	p     *pipeline.Pipeline
	fn    *functionproc.Process
	sqldb *sql.DB
	logf  *os.File
	load  *loadgen.Generator

	metricsURL string
	rec        recorder
	benchSub   string
	acked      atomic.Int64 // changes of the load's table acknowledged (first deliveries)
}

func (b *bench) close() {
	if b.p != nil {
		b.p.Close()
	}
	if b.fn != nil {
		b.fn.Stop()
	}
	if b.sqldb != nil {
		b.sqldb.Close()
	}
	if b.rs != nil {
		b.rs.Stop()
	}
	if b.db != nil {
		b.db.Stop()
	}
	if b.logf != nil {
		b.logf.Close()
	}
}

func start(ctx context.Context, c *Config) (*bench, error) {
	dir := c.Dir
	b := &bench{}
	var err error
	if b.logf, err = os.Create(filepath.Join(dir, "pipeline.log")); err != nil {
		return b, err
	}
	logger := slog.New(slog.NewTextHandler(b.logf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fmt.Fprintln(c.Progress, "benchlag: starting MariaDB, Redis, the pipeline and the function …")
	if b.db, err = mariadbserver.Start(ctx, mariadbserver.Options{Dir: filepath.Join(dir, "mariadb")}); err != nil {
		return b, err
	}
	if b.sqldb, err = sql.Open("mysql", b.db.DSN("")); err != nil {
		return b, err
	}
	b.sqldb.SetMaxOpenConns(c.Conns + 2)
	b.sqldb.SetMaxIdleConns(c.Conns + 2)
	if b.load, err = loadgen.New(loadgen.Config{DB: b.sqldb, Keys: c.Keys, Batch: c.Batch, Conns: c.Conns, RowBytes: c.RowBytes}); err != nil {
		return b, err
	}
	if err := b.load.CreateTable(ctx); err != nil {
		return b, err
	}
	if b.rs, err = redisserver.Start(ctx, redisserver.Options{Dir: filepath.Join(dir, "redis")}); err != nil {
		return b, err
	}
	if b.p, err = pipeline.Start(ctx, pipeline.Config{DBAddr: b.db.Addr(), RootDSN: b.db.DSN(""), Tables: []string{loadgen.Table},
		ConfigDir: filepath.Join(c.ModuleDir, "debezium-server"), StateDir: filepath.Join(dir, "debezium"), DebeziumProperties: c.Properties, DebeziumJavaOpts: c.JavaOpts,
		FetchLog: c.Progress, MaxDeliveryAttempts: c.MaxDeliveryAttempts, Seed: 1, OnApplied: b.record, OnDelivery: b.count, Logger: logger}); err != nil {
		return b, err
	}
	b.benchSub = b.p.Emu.SubscriptionName("local." + loadgen.Table)
	bin := filepath.Join(dir, "cloudsql-cache-function")
	if err := functionproc.Build(ctx, c.ModuleDir, bin); err != nil {
		return b, err
	}
	fport, err := freeport.Get()
	if err != nil {
		return b, err
	}
	mport, err := freeport.Get()
	if err != nil {
		return b, err
	}
	b.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	fnLog, err := os.Create(filepath.Join(dir, "function.log"))
	if err != nil {
		return b, err
	}
	if b.fn, err = functionproc.Start(ctx, bin, fport, []string{"REDIS_ADDR=" + b.rs.Addr(), "DEAD_LETTER_TOPIC=" + b.p.Emu.DeadLetterTopic(),
		"PUBSUB_EMULATOR_HOST=" + b.p.Emu.Addr(), fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", mport)}, fnLog); err != nil {
		return b, err
	}
	b.p.Deliver(b.fn.URL())
	t0 := time.Now()
	if err := b.p.StartDebezium(ctx); err != nil {
		return b, err
	}
	fmt.Fprintf(c.Progress, "benchlag: Debezium Server healthy after %.1f s (log: %s)\n", time.Since(t0).Seconds(), filepath.Join(dir, "debezium", "debezium.log"))
	return b, nil
}

// count counts the acknowledged first deliveries of the load's table.
func (b *bench) count(d relay.Delivery) {
	if d.Acked && !d.Repeat && d.Subscription == b.benchSub {
		b.acked.Add(1)
	}
}

// The measurement: every applied change of the load, timed at the function's answer.

type sample struct {
	seq      int64 // the row's statement (0: not one of the load's)
	atUs     int64 // when the function answered
	tsUs     int64 // envelope ts_us (Debezium made the event)
	sourceMs int64 // source.ts_ms (binlog, whole seconds on MariaDB)
}

type recorder struct {
	mu      sync.Mutex
	samples []sample
}

func (r *recorder) add(s sample) {
	r.mu.Lock()
	r.samples = append(r.samples, s)
	r.mu.Unlock()
}

func (r *recorder) take() []sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.samples
	r.samples = nil
	return s
}

// record keeps an applied change of the load (a row carrying its statement's seq) as a sample.
func (b *bench) record(a pipeline.Applied) {
	if a.Op == "r" { // the snapshot
		return
	}
	var ev struct {
		After struct {
			Seq *int64 `json:"seq"`
		} `json:"after"`
	}
	if json.Unmarshal(a.Message.Data, &ev) != nil || ev.After.Seq == nil {
		return
	}
	b.rec.add(sample{seq: *ev.After.Seq, atUs: a.At.UnixMicro(), tsUs: a.TsUs, sourceMs: a.CommitMs})
}
