package hotrowbench

import (
	"fmt"
	"io"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/stats"
)

func mode(ordered bool) string {
	if ordered {
		return "ordered"
	}
	return "unordered"
}

func printTable(w io.Writer, rtt time.Duration, rs []Result) {
	fmt.Fprintf(w, "| delivery | RTT | offered/s | published/s | acknowledged/s | lag p50 | p99 | max | backlog growth/s | max backlog | drained after load | stale answers | CPU cores: function | emulator+relay+publisher | load |\n")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rs {
		drain := fmt.Sprintf("%.1f s", r.Drain.Seconds())
		lower := ""
		if r.Drain < 0 {
			drain, lower = fmt.Sprintf("no (%d left)", r.Left), " ≥"
		}
		fmt.Fprintf(w, "| %s | %v | %.0f | %.0f | %.0f |%s %s |%s %s |%s %s | %.0f | %d | %s | %d | %.2f | %.2f | %.0f |\n", mode(r.Ordered), r.RTT, r.Offered, r.Published, r.Acked,
			lower, stats.Millis(r.Lag.P50), lower, stats.Millis(r.Lag.P99), lower, stats.Millis(r.Lag.Max), r.Slope, r.MaxOutstanding, drain, r.Stale, r.FnCores, r.SelfCores, r.Load)
	}
	if rtt > 0 {
		fmt.Fprintf(w, "\nThe ordered ceiling is one push per round trip: at most 1/RTT = %.0f/s for one key, less the function's own time.\n", 1/rtt.Seconds())
	}
}

func printRaw(w io.Writer, r Result) {
	fmt.Fprintf(w, "raw mode=%s rtt=%v offered=%.0f published=%.1f acked=%.1f lag_ms{n=%d p50=%.2f p99=%.2f max=%.2f} max_outstanding=%d slope_per_s=%.1f drain_s=%.2f left=%d stale=%d refused=%d window=%d cpu_cores{function=%.2f self=%.2f} load=%.1f\n",
		mode(r.Ordered), r.RTT, r.Offered, r.Published, r.Acked, r.Lag.N, r.Lag.P50, r.Lag.P99, r.Lag.Max, r.MaxOutstanding, r.Slope, r.Drain.Seconds(), r.Left, r.Stale, r.Refused, r.Window, r.FnCores, r.SelfCores, r.Load)
}
