// Package funcmetrics reads the apply function's Prometheus endpoint (METRICS_ADDR) for the local
// pipeline's status line, so the numbers a person watches locally are the ones operators chart: the
// outcome counters and the replication-lag histogram, with quantiles computed the way PromQL's
// histogram_quantile does (linear interpolation inside a bucket).
package funcmetrics

import (
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"sort"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cloudsql-cache/cloudsql-cache/internal/stats"
)

// Snapshot is one scrape.
type Snapshot struct {
	// Outcomes sums cloudsql_cache_events_total by outcome.
	Outcomes map[string]float64
	// Lag is the cumulative replication-lag histogram, summed over tables: upper bound (ms) → count.
	Lag map[float64]float64
}

// The families read, as the function's Prometheus exporter names them.
const (
	eventsFamily = "cloudsql_cache_events_total"
	lagFamily    = "cloudsql_cache_replication_lag_milliseconds"
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

// Parse reads the Prometheus text format (expfmt's parser): the outcome counters summed by outcome,
// and the lag histogram's buckets summed over its series.
func Parse(r io.Reader) (Snapshot, error) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return Snapshot{}, fmt.Errorf("funcmetrics: %w", err)
	}
	s := Snapshot{Outcomes: map[string]float64{}, Lag: map[float64]float64{}}
	if mf := families[eventsFamily]; mf != nil {
		if mf.GetType() != dto.MetricType_COUNTER {
			return Snapshot{}, fmt.Errorf("funcmetrics: %s is a %v, want a counter", eventsFamily, mf.GetType())
		}
		for _, m := range mf.GetMetric() {
			s.Outcomes[label(m, "outcome")] += m.GetCounter().GetValue()
		}
	}
	if mf := families[lagFamily]; mf != nil {
		if mf.GetType() != dto.MetricType_HISTOGRAM {
			return Snapshot{}, fmt.Errorf("funcmetrics: %s is a %v, want a histogram", lagFamily, mf.GetType())
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			inf := false
			for _, b := range h.GetBucket() {
				s.Lag[b.GetUpperBound()] += count(b.GetCumulativeCount(), b.GetCumulativeCountFloat())
				inf = inf || math.IsInf(b.GetUpperBound(), 1)
			}
			if !inf { // the +Inf bucket is the sample count
				s.Lag[math.Inf(1)] += count(h.GetSampleCount(), h.GetSampleCountFloat())
			}
		}
	}
	return s, nil
}

// count is a histogram count, which the parser keeps as an integer or, when not whole, a float.
func count(n uint64, f float64) float64 {
	if f != 0 {
		return f
	}
	return float64(n)
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
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
