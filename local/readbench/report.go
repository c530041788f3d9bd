package readbench

import (
	"fmt"
	"io"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/stats"
)

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}

func pct(n, of float64) float64 {
	if of == 0 {
		return 100
	}
	return 100 * n / of
}

func report(w io.Writer, c *Config, results []result) {
	writes := "uniform"
	if c.ZipfWrites {
		writes = "zipfian like the reads"
	}
	fmt.Fprintf(w, "read path: %d rows of ~%d B, zipfian reads (s=%.2f), updates %s, %.0f reads/s offered by %d readers, L1 %d rows when on, sampler %.0f%% of reads up to %.0f/s, %s warm-up + %s per cell (performance over the %s, consistency over the whole cell)\n\n",
		c.Rows, c.RowBytes, c.ZipfS, writes, c.ReadRate, c.Readers, c.L1Size, 100*c.SampleFraction, c.SampleMax, c.Warmup, c.Duration, c.Duration)
	fmt.Fprintln(w, "| set-up | L1 | writes/s | reads/s | hit ratio | DB queries/s | Get p50 | Get p99 | Redis MB | keys | catch-up (rows behind) | sampled reads | current | ≤ 100 ms | stale > 1 s | stale p50 / p99 / max (ms) | oracle: reads | current | ≤ 100 ms | stale > 1 s |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range results {
		s := r.sampler
		o := r.oracle
		fmt.Fprintf(w, "| %s | %s | %.0f | %.0f | %.4f | %.1f | %.0f µs | %.0f µs | %.1f | %d | %.1f s (%d) | %d | %.3f%% | %.3f%% | %d | %.1f / %.1f / %.1f | %d | %.3f%% | %.3f%% | %d |\n",
			r.setup, onOff(r.l1), r.writes, r.reads, r.hitRatio, r.dbQPS, r.latency.P50, r.latency.P99, r.redisMB, r.redisKeys, r.catchUp.Seconds(), r.behind,
			s.Judged(), 100*s.ConsistentFraction(), 100*s.Within(100*time.Millisecond), s.StaleOver(time.Second),
			s.Staleness.P50, s.Staleness.P99, s.Staleness.Max,
			o.reads, pct(float64(o.reads-o.stale), float64(o.reads)), pct(float64(o.reads-o.over100ms), float64(o.reads)), o.over1s)
	}
	fmt.Fprintln(w)
	for _, r := range results {
		if r.behind > 0 {
			fmt.Fprintf(w, "%s, L1 %s, %.0f writes/s: %d rows written were not in Redis %v after the writes stopped (%s)\n", r.setup, onOff(r.l1), r.writeRate, r.behind, c.CatchUpMax, r.behindWhy)
		}
	}
	for _, r := range results {
		fmt.Fprintln(w, r.raw())
	}
}

func (r result) raw() string {
	s, o := r.sampler, r.oracle
	os := stats.Summarize(append([]float64(nil), o.staleness...))
	return fmt.Sprintf("raw setup=%s l1=%s write_rate=%.0f writes=%.1f write_fails=%d reads=%.1f read_errors=%d hit_ratio=%.5f fallbacks=%.5f db_qps=%.2f get_us{p50=%.0f p99=%.0f max=%.0f} redis_mb=%.2f keys=%d catch_up_s=%.1f behind=%d sampler{pending=%d judged=%d current=%d stale=%d unresolved=%d skipped=%d dropped=%d inexact=%d within100ms=%.5f over1s=%d stale_ms{n=%d p50=%.1f p99=%.1f max=%.1f}} oracle{reads=%d stale=%d over100ms=%d over1s=%d stale_ms{n=%d p50=%.1f p99=%.1f max=%.1f}}",
		r.setup, onOff(r.l1), r.writeRate, r.writes, r.writeFails, r.reads, r.readErrs, r.hitRatio, r.fallbacks, r.dbQPS, r.latency.P50, r.latency.P99, r.latency.Max,
		r.redisMB, r.redisKeys, r.catchUp.Seconds(), r.behind, s.Pending, s.Judged(), s.Current, s.Stale, s.Unresolved, s.Skipped, s.Dropped, s.Inexact, s.Within(100*time.Millisecond), s.StaleOver(time.Second),
		s.Staleness.N, s.Staleness.P50, s.Staleness.P99, s.Staleness.Max,
		o.reads, o.stale, o.over100ms, o.over1s, os.N, os.P50, os.P99, os.Max)
}
