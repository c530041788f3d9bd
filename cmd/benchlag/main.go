// Command benchlag measures end-to-end lag through the whole local pipeline — MariaDB → CDC source →
// Pub/Sub emulator (pstest) → push relay → the real function binary → redis-server — at fixed offered
// rates of row changes, and finds the rate it can no longer keep up with.
//
// Method: a private MariaDB, Redis, the pipeline (local/pipeline) and the function (built with
// functionproc.Build, METRICS_ADDR set) run on loopback in a temp dir. A table of -keys rows of ~1 KB is
// snapshotted first. Then, per rate, an open-loop load generator offers the rate for a warm-up and
// -duration: a 10 ms ticker works out how many row changes are due since the start (so the offered rate
// holds whatever the latency) and hands them, in multi-row statements of at most -batch rows (90% UPDATE
// of existing rows, 10% INSERT of new ones), to -conns connections, each owning its own keys (no lock
// waits between them). Every row carries its statement's sequence number; the time its COMMIT returned
// to the client is kept per statement.
//
// The relay delivers to the function; for every change the function answers "applied" the pipeline's
// delivery observer (pipeline.Config.OnApplied) records, at the answer:
//   - commit→cache: now − the COMMIT time of the row's statement (µs resolution, exact to a loopback
//     round trip);
//   - commit→cache (binlog ts): now − source.ts_ms, as the pipeline and the function's /metrics measure it;
//     MariaDB binlog timestamps are whole seconds, so this includes 0–1 s of truncation;
//   - cdc→cache: now − the envelope's ts_us (when the CDC source read the change): the pipeline's own lag.
//
// Every 100 ms it samples relay.Stats: the relay's backlog (pulled, not yet acknowledged) and its
// acknowledged count, from which the outstanding changes (committed, not yet in the cache, wherever
// they wait: binlog, CDC source, emulator or relay) follow. After the load stops it waits for the
// outstanding changes to drain; a rate is kept up with when they drain within -keep-up. Escalation stops
// at the first rate that is not kept up.
//
//	go run ./cmd/benchlag -rates 500,2000,10000 -duration 20s
package main

import (
	"context"
	"database/sql"
	"encoding/json"
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
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/stats"
	"github.com/cloudsql-cache/cloudsql-cache/local/funcmetrics"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
	"github.com/cloudsql-cache/cloudsql-cache/local/pipeline"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchlag: %v\n", err)
		os.Exit(1)
	}
}

type config struct {
	rates          []float64
	duration       time.Duration
	warmup         time.Duration
	keepUp         time.Duration
	drainMax       time.Duration
	keys           int
	batch          int
	conns          int
	rowBytes       int
	maxAttempts    int
	logPath        string
	metricsURL     string
	quiesceTimeout time.Duration
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("benchlag", flag.ContinueOnError)
	rates := fs.String("rates", "500,2000,10000", "comma-separated offered rates, row changes per second, in increasing order")
	var c config
	fs.DurationVar(&c.duration, "duration", 20*time.Second, "measured time per rate (after the warm-up)")
	fs.DurationVar(&c.warmup, "warmup", 3*time.Second, "load at the rate before measuring")
	fs.DurationVar(&c.keepUp, "keep-up", 5*time.Second, "a rate is kept up with when the outstanding changes drain within this after the load stops")
	fs.DurationVar(&c.drainMax, "drain-max", 30*time.Second, "give up waiting for the drain after this (the run then ends)")
	fs.IntVar(&c.keys, "keys", 10000, "rows in the table at the start")
	fs.IntVar(&c.batch, "batch", 100, "at most this many rows per statement")
	fs.IntVar(&c.conns, "conns", 8, "database connections of the load generator")
	fs.IntVar(&c.rowBytes, "row-bytes", 1000, "payload bytes per row")
	fs.IntVar(&c.maxAttempts, "max-delivery-attempts", 50, "push attempts before the dead-letter topic")
	keepDir := fs.Bool("keep", false, "keep the temp dir (logs) instead of deleting it")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the CDC source, the emulator and the relay) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || r <= 0 {
			return fmt.Errorf("-rates: %q", s)
		}
		if n := len(c.rates); n > 0 && r <= c.rates[n-1] {
			return errors.New("-rates must increase")
		}
		c.rates = append(c.rates, r)
	}
	if c.keys < c.conns || c.batch < 1 || c.conns < 1 || c.duration <= 0 {
		return errors.New("need -keys >= -conns, -batch >= 1, -conns >= 1, -duration > 0")
	}
	c.quiesceTimeout = 2 * time.Minute

	dir, err := os.MkdirTemp("", "benchlag")
	if err != nil {
		return err
	}
	if *keepDir {
		fmt.Fprintf(os.Stderr, "benchlag: logs in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bg := context.Background() // starting and stopping; Ctrl-C ends the measuring only

	b, err := start(bg, dir, &c)
	if err != nil {
		if b != nil {
			b.close()
		}
		return err
	}
	defer b.close()
	return b.measure(ctx, &c, os.Stdout)
}

// bench is the running pipeline and the load's bookkeeping.
type bench struct {
	db    *mariadbserver.Server
	rs    *redisserver.Server
	p     *pipeline.Pipeline
	fn    *functionproc.Process
	sqldb *sql.DB
	logf  *os.File

	seq     atomic.Int64 // statement sequence numbers
	commits sync.Map     // seq → commit time (unix µs)
	rec     recorder
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

func start(ctx context.Context, dir string, c *config) (*bench, error) {
	b := &bench{}
	var err error
	if b.logf, err = os.Create(filepath.Join(dir, "pipeline.log")); err != nil {
		return b, err
	}
	logger := slog.New(slog.NewTextHandler(b.logf, &slog.HandlerOptions{Level: slog.LevelWarn}))
	fmt.Fprintln(os.Stderr, "benchlag: starting MariaDB, Redis, the pipeline and the function …")
	if b.db, err = mariadbserver.Start(ctx, mariadbserver.Options{Dir: filepath.Join(dir, "mariadb")}); err != nil {
		return b, err
	}
	if b.sqldb, err = sql.Open("mysql", b.db.DSN("")); err != nil {
		return b, err
	}
	b.sqldb.SetMaxOpenConns(c.conns + 2)
	b.sqldb.SetMaxIdleConns(c.conns + 2)
	if err := createTable(ctx, b.sqldb, c.keys, c.rowBytes); err != nil {
		return b, err
	}
	rport, err := freeport.Get()
	if err != nil {
		return b, err
	}
	if b.rs, err = redisserver.Start(ctx, redisserver.Options{Dir: filepath.Join(dir, "redis"), Port: rport}); err != nil {
		return b, err
	}
	if b.p, err = pipeline.Start(ctx, pipeline.Config{DSN: b.db.DSN(""), Flavor: "mariadb", Databases: []string{"bench"},
		StateDir: filepath.Join(dir, "cdc"), MaxDeliveryAttempts: c.maxAttempts, Seed: 1, OnApplied: b.record, Logger: logger}); err != nil {
		return b, err
	}
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return b, fmt.Errorf("go list -m: %w", err)
	}
	bin := filepath.Join(dir, "cloudsql-cache-function")
	if err := functionproc.Build(ctx, strings.TrimSpace(string(root)), bin); err != nil {
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
	c.metricsURL = fmt.Sprintf("http://127.0.0.1:%d/metrics", mport)
	fnLog, err := os.Create(filepath.Join(dir, "function.log"))
	if err != nil {
		return b, err
	}
	if b.fn, err = functionproc.Start(ctx, bin, fport, []string{"REDIS_ADDR=" + b.rs.Addr(), "DEAD_LETTER_TOPIC=" + b.p.Emu.DeadLetterTopic(),
		"PUBSUB_EMULATOR_HOST=" + b.p.Emu.Addr(), fmt.Sprintf("METRICS_ADDR=127.0.0.1:%d", mport)}, fnLog); err != nil {
		return b, err
	}
	b.p.Deliver(b.fn.URL())
	if err := b.p.StartCDC(); err != nil {
		return b, err
	}
	return b, nil
}

func createTable(ctx context.Context, db *sql.DB, keys, rowBytes int) error {
	for _, q := range []string{
		"CREATE DATABASE bench",
		"CREATE TABLE bench.items (id INT NOT NULL PRIMARY KEY, seq BIGINT NOT NULL, n INT NOT NULL, payload VARCHAR(4000) NOT NULL)",
	} {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	for lo := 0; lo < keys; lo += 500 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO bench.items VALUES ")
		for id := lo; id < min(lo+500, keys); id++ {
			if id > lo {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d,0,0,REPEAT('x',%d))", id, rowBytes)
		}
		if _, err := db.ExecContext(ctx, sb.String()); err != nil {
			return err
		}
	}
	return nil
}

// The measurement: every applied change of the load, timed at the function's answer.

type sample struct {
	seq      int64 // the row's statement (0: not one of the load's)
	atUs     int64 // when the function answered
	tsUs     int64 // envelope ts_us (CDC read)
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

// The load.

type loadStats struct {
	committed atomic.Int64 // row changes committed
	failed    atomic.Int64 // statements that failed
	firstSeq  atomic.Int64 // first statement of the measured window
	lastSeq   atomic.Int64 // last statement of the measured window
}

// load offers rate row changes per second until stop, then returns once every statement is done.
// Statements started between warmup and warmup+dur after the start are the measured window (ls).
func (b *bench) load(ctx context.Context, c *config, rate float64, warmup, dur time.Duration, ls *loadStats, nextNew *[]int) {
	type job struct{ rows int }
	jobs := make(chan job, 1<<16)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < c.conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			owned := (c.keys - w + c.conns - 1) / c.conns // ids w, w+conns, …
			for j := range jobs {
				seq := b.seq.Add(1)
				since := time.Since(t0)
				if since >= warmup && since < warmup+dur {
					ls.firstSeq.CompareAndSwap(0, seq)
					ls.lastSeq.Store(seq)
				}
				var q string
				n := min(j.rows, owned)
				if rnd.IntN(10) == 0 { // INSERT new rows
					var sb strings.Builder
					sb.WriteString("INSERT INTO bench.items VALUES ")
					for i := 0; i < j.rows; i++ {
						if i > 0 {
							sb.WriteByte(',')
						}
						id := (*nextNew)[w]
						(*nextNew)[w] += c.conns
						fmt.Fprintf(&sb, "(%d,%d,0,REPEAT('y',%d))", id, seq, c.rowBytes)
					}
					q, n = sb.String(), j.rows
				} else { // UPDATE n distinct existing rows of this connection's
					ids := make(map[int]bool, n)
					for len(ids) < n {
						ids[w+c.conns*rnd.IntN(owned)] = true
					}
					list := make([]int, 0, n)
					for id := range ids {
						list = append(list, id)
					}
					slices.Sort(list)
					var sb strings.Builder
					fmt.Fprintf(&sb, "UPDATE bench.items SET seq = %d, n = n + 1 WHERE id IN (", seq)
					for i, id := range list {
						if i > 0 {
							sb.WriteByte(',')
						}
						sb.WriteString(strconv.Itoa(id))
					}
					sb.WriteByte(')')
					q = sb.String()
				}
				res, err := b.sqldb.ExecContext(context.Background(), q)
				at := time.Now().UnixMicro()
				if err != nil {
					ls.failed.Add(1)
					continue
				}
				b.commits.Store(seq, at)
				if k, err := res.RowsAffected(); err == nil {
					ls.committed.Add(k)
				} else {
					ls.committed.Add(int64(n))
				}
			}
		}(w)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var offered int64
	end := warmup + dur
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			el := min(now.Sub(t0), end)
			due := int64(rate*el.Seconds()) - offered
			for due > 0 {
				n := min(due, int64(c.batch))
				jobs <- job{rows: int(n)}
				offered += n
				due -= n
			}
			if el >= end {
				break loop
			}
		}
	}
	close(jobs)
	wg.Wait()
}

// result is one rate's numbers.
type result struct {
	offered, achieved                float64
	committed, failed                int64
	commit, binlog, cdc              stats.Summary // ms
	maxBacklog, maxOutstanding       int64
	endOutstanding                   int64
	drain                            time.Duration // after the load stopped; -1: not within drain-max
	keptUp                           bool
	windowCommitP99, windowCDCP99    float64 // the pipeline's own percentiles over its last samples
	fnApplied                        float64 // the function's /metrics count of applied over the phase
	unmatched                        int     // samples whose statement's commit time is unknown
	outstandingSlope                 float64 // growth of the outstanding changes during the measured window, per second
	measuredStatements, measuredRows int
}

func (b *bench) measure(ctx context.Context, c *config, w io.Writer) error {
	// Wait for the snapshot to be in the cache.
	qctx, cancel := context.WithTimeout(ctx, c.quiesceTimeout)
	err := b.p.Quiesce(qctx, 500*time.Millisecond)
	cancel()
	if err != nil {
		return fmt.Errorf("the snapshot did not drain: %w", err)
	}
	nextNew := make([]int, c.conns)
	for i := range nextNew {
		nextNew[i] = c.keys + 1_000_000 + i
	}
	fmt.Fprintf(w, "end-to-end lag, MariaDB → CDC source → Pub/Sub emulator → push relay → function → Redis; %d keys of ~%d B rows, ≤%d rows per statement over %d connections, %s warm-up + %s per rate, %s, %d cores\n\n",
		c.keys, c.rowBytes, c.batch, c.conns, c.warmup, c.duration, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU())
	var results []result
	var limit float64
	for _, rate := range c.rates {
		if ctx.Err() != nil {
			break
		}
		r, err := b.phase(ctx, c, rate, nextNew)
		if err != nil {
			return err
		}
		results = append(results, r)
		printRaw(os.Stderr, r)
		if !r.keptUp {
			limit = rate
			break
		}
		qctx, cancel := context.WithTimeout(ctx, c.quiesceTimeout)
		err = b.p.Quiesce(qctx, 500*time.Millisecond)
		cancel()
		if err != nil {
			return err
		}
	}
	printTable(w, results)
	fmt.Fprintln(w)
	for _, r := range results {
		printRaw(w, r)
	}
	fmt.Fprintln(w)
	switch {
	case limit > 0:
		last := "none of the rates tried"
		if len(results) > 1 {
			last = fmt.Sprintf("%.0f changes/s", results[len(results)-2].offered)
		}
		fmt.Fprintf(w, "It no longer keeps up at %.0f changes/s offered (the outstanding changes grew by %.0f/s while loaded); the last rate it kept up with: %s.\n",
			limit, results[len(results)-1].outstandingSlope, last)
		if results[len(results)-1].drain < 0 {
			fmt.Fprintln(w, "At that rate the lag figures cover only the changes delivered before the run gave up waiting (-drain-max): they are lower bounds.")
		}
	case len(results) > 0:
		fmt.Fprintf(w, "It kept up with every rate tried (up to %.0f changes/s offered).\n", results[len(results)-1].offered)
	}
	return b.p.CDCErr()
}

func (b *bench) phase(ctx context.Context, c *config, rate float64, nextNew []int) (result, error) {
	r := result{offered: rate}
	fmt.Fprintf(os.Stderr, "benchlag: %.0f changes/s: %s warm-up + %s …\n", rate, c.warmup, c.duration)
	s0 := b.p.Relay.Stats()
	m0, _ := funcmetrics.Scrape(ctx, c.metricsURL)
	b.rec.take()
	b.p.ResetLag()
	var ls loadStats
	loadDone := make(chan struct{})
	t0 := time.Now()
	var committedAtStart, committedAtEnd int64
	var tStart, tEnd time.Time
	go func() {
		defer close(loadDone)
		b.load(ctx, c, rate, c.warmup, c.duration, &ls, &nextNew)
	}()
	// Sample every 100 ms until the load is done and the outstanding changes drained (or drain-max).
	var stopped time.Time
	var xs, ys []float64 // outstanding over the measured window, for its slope
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		now := <-t.C
		s := b.p.Relay.Stats()
		committed := ls.committed.Load()
		acked := s.Acked - s0.Acked
		out := max(committed-acked, 0)
		since := now.Sub(t0)
		if since >= c.warmup && tStart.IsZero() {
			tStart, committedAtStart = now, committed
		}
		if since >= c.warmup+c.duration && tEnd.IsZero() {
			tEnd, committedAtEnd = now, committed
		}
		if since >= c.warmup && tEnd.IsZero() {
			xs = append(xs, since.Seconds())
			ys = append(ys, float64(out))
		}
		r.maxBacklog = max(r.maxBacklog, int64(s.Backlog))
		r.maxOutstanding = max(r.maxOutstanding, out)
		if stopped.IsZero() {
			select {
			case <-loadDone:
				stopped = now
			default:
			}
			continue
		}
		if out == 0 && s.Backlog == 0 {
			r.drain = now.Sub(stopped)
			break
		}
		if err := b.p.CDCErr(); err != nil {
			return r, fmt.Errorf("the CDC source stopped: %w", err)
		}
		if now.Sub(stopped) > c.drainMax || ctx.Err() != nil {
			r.drain = -1
			r.endOutstanding = out
			break
		}
	}
	r.committed, r.failed = ls.committed.Load(), ls.failed.Load()
	if !tEnd.IsZero() && tEnd.After(tStart) {
		r.achieved = float64(committedAtEnd-committedAtStart) / tEnd.Sub(tStart).Seconds()
	}
	r.keptUp = r.drain >= 0 && r.drain <= c.keepUp
	r.outstandingSlope = stats.Slope(xs, ys)
	lag := b.p.Lag()
	r.windowCommitP99, r.windowCDCP99 = lag.Commit.P99, lag.CDC.P99
	if m1, err := funcmetrics.Scrape(ctx, c.metricsURL); err == nil {
		r.fnApplied = m1.Outcomes["applied"] - m0.Outcomes["applied"]
	}
	first, last := ls.firstSeq.Load(), ls.lastSeq.Load()
	var commit, binlog, cdc []float64
	stmts := map[int64]bool{}
	for _, s := range b.rec.take() {
		if s.seq < first || s.seq > last || first == 0 {
			continue
		}
		stmts[s.seq] = true
		if at, ok := b.commits.Load(s.seq); ok {
			commit = append(commit, float64(s.atUs-at.(int64))/1000)
		} else {
			r.unmatched++
		}
		binlog = append(binlog, float64(s.atUs/1000-s.sourceMs))
		if s.tsUs > 0 {
			cdc = append(cdc, float64(s.atUs-s.tsUs)/1000)
		}
	}
	r.measuredStatements, r.measuredRows = len(stmts), len(binlog)
	r.commit, r.binlog, r.cdc = stats.Summarize(commit), stats.Summarize(binlog), stats.Summarize(cdc)
	b.commits.Clear()
	return r, nil
}

func ms(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1f s", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}

func printTable(w io.Writer, rs []result) {
	fmt.Fprintln(w, "| offered/s | achieved/s | commit→cache p50 | p99 | max | cdc→cache p50 | p99 | max | commit→cache, binlog ts (+0–1 s) p50 | p99 | max backlog (relay) | max outstanding | drained after stop | kept up |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		drain := fmt.Sprintf("%.1f s", r.drain.Seconds())
		if r.drain < 0 {
			drain = fmt.Sprintf("no (%d left)", r.endOutstanding)
		}
		kept := "yes"
		if !r.keptUp {
			kept = "**no**"
		}
		fmt.Fprintf(w, "| %.0f | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %d | %d | %s | %s |\n",
			r.offered, r.achieved, ms(r.commit.P50), ms(r.commit.P99), ms(r.commit.Max), ms(r.cdc.P50), ms(r.cdc.P99), ms(r.cdc.Max),
			ms(r.binlog.P50), ms(r.binlog.P99), r.maxBacklog, r.maxOutstanding, drain, kept)
	}
}

func printRaw(w io.Writer, r result) {
	fmt.Fprintf(w, "raw rate=%.0f achieved=%.1f committed=%d failed_statements=%d measured_statements=%d measured_rows=%d unmatched=%d "+
		"commit_ms{n=%d p50=%.2f p99=%.2f max=%.2f} cdc_ms{n=%d p50=%.2f p99=%.2f max=%.2f} binlog_ts_ms{p50=%.0f p99=%.0f max=%.0f} "+
		"max_backlog=%d max_outstanding=%d outstanding_slope_per_s=%.1f drain_s=%.2f kept_up=%v pipeline_last4096{commit_p99=%.0f cdc_p99=%.2f} function_applied=%.0f\n",
		r.offered, r.achieved, r.committed, r.failed, r.measuredStatements, r.measuredRows, r.unmatched,
		r.commit.N, r.commit.P50, r.commit.P99, r.commit.Max, r.cdc.N, r.cdc.P50, r.cdc.P99, r.cdc.Max, r.binlog.P50, r.binlog.P99, r.binlog.Max,
		r.maxBacklog, r.maxOutstanding, r.outstandingSlope, r.drain.Seconds(), r.keptUp, r.windowCommitP99, r.windowCDCP99, r.fnApplied)
}
