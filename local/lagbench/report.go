package lagbench

import (
	"fmt"
	"io"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/internal/stats"
)

func printTable(w io.Writer, rs []result) {
	fmt.Fprintln(w, "| offered/s | achieved/s | commit→cache p50 | p99 | max | dbz→cache p50 | p99 | max | commit→cache, binlog ts (+0–1 s) p50 | p99 | max backlog (relay) | max outstanding | drained after stop | kept up |")
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
			r.offered, r.achieved, stats.Millis(r.commit.P50), stats.Millis(r.commit.P99), stats.Millis(r.commit.Max), stats.Millis(r.dbz.P50), stats.Millis(r.dbz.P99), stats.Millis(r.dbz.Max),
			stats.Millis(r.binlog.P50), stats.Millis(r.binlog.P99), r.maxBacklog, r.maxOutstanding, drain, kept)
	}
}

func printRaw(w io.Writer, r result) {
	fmt.Fprintf(w, "raw rate=%.0f achieved=%.1f committed=%d failed_statements=%d measured_statements=%d measured_rows=%d unmatched=%d "+
		"commit_ms{n=%d p50=%.2f p99=%.2f max=%.2f} dbz_ms{n=%d p50=%.2f p99=%.2f max=%.2f} binlog_ts_ms{p50=%.0f p99=%.0f max=%.0f} "+
		"max_backlog=%d max_outstanding=%d outstanding_slope_per_s=%.1f drain_s=%.2f kept_up=%v pipeline_last4096{commit_p99=%.0f dbz_p99=%.2f} function_applied=%.0f cpu_cores{%s}\n",
		r.offered, r.achieved, r.committed, r.failed, r.measuredStatements, r.measuredRows, r.unmatched,
		r.commit.N, r.commit.P50, r.commit.P99, r.commit.Max, r.dbz.N, r.dbz.P50, r.dbz.P99, r.dbz.Max, r.binlog.P50, r.binlog.P99, r.binlog.Max,
		r.maxBacklog, r.maxOutstanding, r.outstandingSlope, r.drain.Seconds(), r.keptUp, r.windowCommitP99, r.windowDbzP99, r.fnApplied, cpuText(r.cpu))
}

func cpuText(cpu []procCPU) string {
	var parts []string
	total := 0.0
	for _, c := range cpu {
		parts = append(parts, fmt.Sprintf("%s=%.2f", c.name, c.cores))
		total += c.cores
	}
	return strings.Join(append(parts, fmt.Sprintf("total=%.2f", total)), " ")
}

// printCPU is the share of a core each process used while loaded: where the time goes.
func printCPU(w io.Writer, rs []result) {
	if len(rs) == 0 || len(rs[0].cpu) == 0 {
		return
	}
	fmt.Fprint(w, "| offered/s |")
	for _, c := range rs[0].cpu {
		fmt.Fprintf(w, " %s |", c.name)
	}
	fmt.Fprintln(w, " all (cores) |")
	fmt.Fprintln(w, "|---"+strings.Repeat("|---", len(rs[0].cpu)+1)+"|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %.0f |", r.offered)
		total := 0.0
		for _, c := range r.cpu {
			fmt.Fprintf(w, " %.2f |", c.cores)
			total += c.cores
		}
		fmt.Fprintf(w, " %.2f |\n", total)
	}
}
