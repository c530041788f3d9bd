// Package funcmetrics reads the apply function's Prometheus endpoint (METRICS_ADDR) for the local
// pipeline's status line, so the numbers a person watches locally are the ones operators chart: the
// outcome counters and the replication-lag histogram, with quantiles computed the way PromQL's
// histogram_quantile does (linear interpolation inside a bucket).
package funcmetrics

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/internal/stats"
)

// Snapshot is one scrape.
type Snapshot struct {
	// Outcomes sums cloudsql_cache_events_total by outcome.
	Outcomes map[string]float64
	// Lag is the cumulative replication-lag histogram, summed over tables: upper bound (ms) → count.
	Lag map[float64]float64
}

var (
	eventsRE = regexp.MustCompile(`^cloudsql_cache_events_total\{([^}]*)\} (\S+)$`)
	lagRE    = regexp.MustCompile(`^cloudsql_cache_replication_lag_milliseconds_bucket\{([^}]*)\} (\S+)$`)
	labelRE  = regexp.MustCompile(`(\w+)="((?:[^"\\]|\\.)*)"`)
)

// Scrape reads url (the function's /metrics).
func Scrape(ctx context.Context, url string) (Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return Snapshot{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return Snapshot{}, fmt.Errorf("funcmetrics: scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Snapshot{}, fmt.Errorf("funcmetrics: scrape %s: %s", url, resp.Status)
	}
	return Parse(resp.Body)
}

// Parse reads the Prometheus text format.
func Parse(r io.Reader) (Snapshot, error) {
	s := Snapshot{Outcomes: map[string]float64{}, Lag: map[float64]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		if m := eventsRE.FindStringSubmatch(line); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				return s, fmt.Errorf("funcmetrics: %q: %w", line, err)
			}
			s.Outcomes[label(m[1], "outcome")] += v
		} else if m := lagRE.FindStringSubmatch(line); m != nil {
			v, err := strconv.ParseFloat(m[2], 64)
			if err != nil {
				return s, fmt.Errorf("funcmetrics: %q: %w", line, err)
			}
			le := math.Inf(1)
			if b := label(m[1], "le"); b != "+Inf" {
				if le, err = strconv.ParseFloat(b, 64); err != nil {
					return s, fmt.Errorf("funcmetrics: %q: %w", line, err)
				}
			}
			s.Lag[le] += v
		}
	}
	return s, sc.Err()
}

func label(labels, name string) string {
	for _, m := range labelRE.FindAllStringSubmatch(labels, -1) {
		if m[1] == name {
			return strings.ReplaceAll(m[2], `\"`, `"`)
		}
	}
	return ""
}

// LagQuantile is the q-quantile (0..1) of the replication lag observed between since and s (since may be
// the zero Snapshot), in milliseconds, and false when nothing was observed.
func (s Snapshot) LagQuantile(q float64, since Snapshot) (float64, bool) {
	bounds := make([]float64, 0, len(s.Lag))
	for le := range s.Lag {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	counts := make([]float64, len(bounds))
	for i, le := range bounds {
		counts[i] = s.Lag[le] - since.Lag[le]
	}
	return stats.HistogramQuantile(q, bounds, counts)
}
