package main

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"sort"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cloudsql-cache/cloudsql-cache/internal/stats"
)

// readLoad reads random demo rows through the example read service at rate per second until ctx ends,
// so its consistency sampler has reads to judge.
func readLoad(ctx context.Context, base string, rate float64) {
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 2))
	skus := []string{"tea", "coffee", "mug", "pot"}
	client := &http.Client{Timeout: 5 * time.Second}
	t := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var path string
		switch rnd.IntN(3) {
		case 0:
			path = "/rows/shop.products/" + skus[rnd.IntN(len(skus))]
		case 1:
			path = fmt.Sprintf("/rows/shop.customers/%d", 1+rnd.IntN(3))
		default:
			path = fmt.Sprintf("/rows/shop.order_lines/%d/%d", 1+rnd.IntN(20), 1+rnd.IntN(3))
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
		}
	}
}

// readConsistency is what the read service's consistency sampler reports on its /metrics.
type readConsistency struct {
	results   map[string]float64 // cloudsql_cache_read_consistency_total by result
	staleness map[float64]float64
	max       float64
}

func scrapeReads(ctx context.Context, url string) (readConsistency, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return readConsistency{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return readConsistency{}, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return readConsistency{}, err
	}
	r := readConsistency{results: map[string]float64{}, staleness: map[float64]float64{}}
	for _, m := range families["cloudsql_cache_read_consistency_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "result" {
				r.results[l.GetValue()] += m.GetCounter().GetValue()
			}
		}
	}
	for _, m := range families["cloudsql_cache_read_staleness_milliseconds"].GetMetric() {
		inf := false
		for _, b := range m.GetHistogram().GetBucket() {
			r.staleness[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			inf = inf || math.IsInf(b.GetUpperBound(), 1)
		}
		if !inf { // the +Inf bucket is the sample count
			r.staleness[math.Inf(1)] += float64(m.GetHistogram().GetSampleCount())
		}
	}
	for _, m := range families["cloudsql_cache_read_staleness_max_milliseconds"].GetMetric() {
		r.max = math.Max(r.max, m.GetGauge().GetValue())
	}
	return r, nil
}

// line is the status line's part about reads: judged reads since the service started, the share
// current when served, the share within 100 ms, reads stale over 1 s (unresolved ones included), and
// the staleness p99 and max.
func (r readConsistency) line() string {
	judged := r.results["current"] + r.results["stale"] + r.results["unresolved"]
	if judged == 0 {
		return "reads sampled 0"
	}
	bounds := make([]float64, 0, len(r.staleness))
	for le := range r.staleness {
		bounds = append(bounds, le)
	}
	sort.Float64s(bounds)
	counts := make([]float64, len(bounds))
	for i, le := range bounds {
		counts[i] = r.staleness[le]
	}
	p99, _ := stats.HistogramQuantile(0.99, bounds, counts)
	over1s := judged - r.staleness[1000]
	return fmt.Sprintf("reads sampled %.0f current %.2f%% ≤100ms %.2f%% stale>1s %.0f p99 %.0fms max %.0fms",
		judged, 100*r.results["current"]/judged, 100*r.staleness[100]/judged, over1s, p99, r.max)
}
