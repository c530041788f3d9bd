package lagbench

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/proccpu"
	"github.com/cloudsql-cache/cloudsql-cache/internal/stats"
	"github.com/cloudsql-cache/cloudsql-cache/local/debeziumserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/funcmetrics"
	"github.com/cloudsql-cache/cloudsql-cache/local/loadgen"
)

// result is one rate's numbers.
type result struct {
	offered, achieved                float64
	committed, failed                int64
	commit, binlog, dbz              stats.Summary // ms
	maxBacklog, maxOutstanding       int64
	endOutstanding                   int64
	drain                            time.Duration // after the load stopped; -1: not within drain-max
	keptUp                           bool
	windowCommitP99, windowDbzP99    float64 // the pipeline's own percentiles over its last samples
	fnApplied                        float64 // the function's /metrics count of applied over the phase
	unmatched                        int     // samples whose statement's commit time is unknown
	outstandingSlope                 float64 // growth of the outstanding changes during the measured window, per second
	measuredStatements, measuredRows int
	cpu                              []procCPU // while loaded (the measured window), per process
}

func (b *bench) measure(ctx context.Context, c *Config, w io.Writer) error {
	// Wait for the snapshot to be in the cache.
	qctx, cancel := context.WithTimeout(ctx, quiesceTimeout)
	err := b.waitSnapshot(qctx, c.Keys)
	cancel()
	if err != nil {
		return fmt.Errorf("the snapshot did not drain: %w", err)
	}
	settings := "the shipped configuration"
	if len(c.Properties) > 0 {
		var kv []string
		for k, v := range c.Properties {
			kv = append(kv, k+"="+v)
		}
		sort.Strings(kv)
		settings = "the shipped configuration with " + strings.Join(kv, " ")
	}
	fmt.Fprintf(w, "end-to-end lag, MariaDB → Debezium Server %s → Pub/Sub emulator → push relay → function → Redis; Debezium with %s; %d keys of ~%d B rows, ≤%d rows per statement over %d connections, %s warm-up + %s per rate, %s, %d cores\n\n",
		debeziumserver.Version, settings, c.Keys, c.RowBytes, c.Batch, c.Conns, c.Warmup, c.Duration, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU())
	var results []result
	var limit float64
	for _, rate := range c.Rates {
		if ctx.Err() != nil {
			break
		}
		r, err := b.phase(ctx, c, rate)
		if err != nil {
			return err
		}
		results = append(results, r)
		printRaw(c.Progress, r)
		if !r.keptUp {
			limit = rate
			break
		}
		qctx, cancel := context.WithTimeout(ctx, quiesceTimeout)
		err = b.p.Quiesce(qctx, 500*time.Millisecond)
		cancel()
		if err != nil {
			return err
		}
	}
	printTable(w, results)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "CPU while loaded, in cores (2 on this machine), per process:")
	fmt.Fprintln(w)
	printCPU(w, results)
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
	if exits, _ := b.p.DebeziumExits(); len(exits) > 0 {
		return fmt.Errorf("Debezium Server exited by itself during the run: %v", exits[0])
	}
	return nil
}

// waitSnapshot waits until every row of the snapshot is in the cache and nothing is left to deliver.
func (b *bench) waitSnapshot(ctx context.Context, keys int) error {
	for b.acked.Load() < int64(keys) {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d of %d snapshot rows delivered (Debezium: %s): %w", b.acked.Load(), keys, b.p.Debezium().Progress(), ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
	return b.p.Quiesce(ctx, time.Second)
}

func (b *bench) phase(ctx context.Context, c *Config, rate float64) (result, error) {
	r := result{offered: rate}
	fmt.Fprintf(c.Progress, "benchlag: %.0f changes/s: %s warm-up + %s …\n", rate, c.Warmup, c.Duration)
	acked0 := b.acked.Load()
	m0, _ := funcmetrics.Scrape(ctx, b.metricsURL)
	var cpu0 []procCPU
	b.rec.take()
	b.p.ResetLag()
	var ls loadgen.Load
	loadDone := make(chan struct{})
	t0 := time.Now()
	var committedAtStart, committedAtEnd int64
	var tStart, tEnd time.Time
	go func() {
		defer close(loadDone)
		b.load.Offer(ctx, rate, c.Warmup, c.Duration, &ls)
	}()
	// Sample every 100 ms until the load is done and the outstanding changes drained (or drain-max).
	var stopped time.Time
	var xs, ys []float64 // outstanding over the measured window, for its slope
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		now := <-t.C
		s := b.p.Relay.Stats()
		committed := ls.Committed()
		acked := b.acked.Load() - acked0
		out := max(committed-acked, 0)
		since := now.Sub(t0)
		if since >= c.Warmup && tStart.IsZero() {
			tStart, committedAtStart = now, committed
			cpu0 = b.cpu()
		}
		if since >= c.Warmup+c.Duration && tEnd.IsZero() {
			tEnd, committedAtEnd = now, committed
			r.cpu = cpuSince(cpu0, b.cpu(), tEnd.Sub(tStart))
		}
		if since >= c.Warmup && tEnd.IsZero() {
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
		if exits, _ := b.p.DebeziumExits(); len(exits) > 0 {
			return r, fmt.Errorf("Debezium Server exited by itself: %w", exits[0])
		}
		if now.Sub(stopped) > c.DrainMax || ctx.Err() != nil {
			r.drain = -1
			r.endOutstanding = out
			break
		}
	}
	r.committed, r.failed = ls.Committed(), ls.Failed()
	if !tEnd.IsZero() && tEnd.After(tStart) {
		r.achieved = float64(committedAtEnd-committedAtStart) / tEnd.Sub(tStart).Seconds()
	}
	r.keptUp = r.drain >= 0 && r.drain <= c.KeepUp
	r.outstandingSlope = stats.Slope(xs, ys)
	lag := b.p.Lag()
	r.windowCommitP99, r.windowDbzP99 = lag.Commit.P99, lag.Debezium.P99
	if m1, err := funcmetrics.Scrape(ctx, b.metricsURL); err == nil {
		r.fnApplied = m1.Outcomes["applied"] - m0.Outcomes["applied"]
	}
	first, last := ls.Window()
	var commit, binlog, dbz []float64
	stmts := map[int64]bool{}
	for _, s := range b.rec.take() {
		if s.seq < first || s.seq > last || first == 0 {
			continue
		}
		stmts[s.seq] = true
		if at, ok := b.load.CommitTime(s.seq); ok {
			commit = append(commit, float64(s.atUs-at)/1000)
		} else {
			r.unmatched++
		}
		binlog = append(binlog, float64(s.atUs/1000-s.sourceMs))
		if s.tsUs > 0 {
			dbz = append(dbz, float64(s.atUs-s.tsUs)/1000)
		}
	}
	r.measuredStatements, r.measuredRows = len(stmts), len(binlog)
	r.commit, r.binlog, r.dbz = stats.Summarize(commit), stats.Summarize(binlog), stats.Summarize(dbz)
	b.load.ForgetCommits()
	return r, nil
}

// procCPU is one process's CPU time (or, from cpuSince, its share of a core while loaded).
type procCPU struct {
	name  string
	cpu   time.Duration
	cores float64
}

// cpu reads the CPU time of each process of the pipeline.
func (b *bench) cpu() []procCPU {
	dbz := 0
	if srv := b.p.Debezium(); srv != nil {
		dbz = srv.Pid()
	}
	var out []procCPU
	for _, p := range []struct {
		name string
		pid  int
	}{{"debezium", dbz}, {"function", b.fn.Pid()}, {"mariadb", b.db.Pid()}, {"redis", b.rs.Pid()}, {"emulator+relay+load", os.Getpid()}} {
		t, _ := proccpu.Time(p.pid)
		out = append(out, procCPU{name: p.name, cpu: t})
	}
	return out
}

func cpuSince(before, after []procCPU, wall time.Duration) []procCPU {
	out := make([]procCPU, len(after))
	for i := range after {
		out[i] = procCPU{name: after[i].name, cpu: after[i].cpu - before[i].cpu}
		out[i].cores = out[i].cpu.Seconds() / wall.Seconds()
	}
	return out
}
