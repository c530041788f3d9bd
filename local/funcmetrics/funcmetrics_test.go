package funcmetrics

import (
	"math"
	"strings"
	"testing"
)

// sample is in the format the function's exporter writes (see cmd/cloudsql-cache-function's test of
// the real endpoint).
const sample = `# HELP cloudsql_cache_events_total Change events handled.
# TYPE cloudsql_cache_events_total counter
cloudsql_cache_events_total{op="u",otel_scope_name="x",outcome="applied",reason="",table="shop.a"} 90
cloudsql_cache_events_total{op="c",otel_scope_name="x",outcome="applied",reason="",table="shop.b"} 10
cloudsql_cache_events_total{op="u",otel_scope_name="x",outcome="stale",reason="truncated",table="shop.a"} 3
# HELP cloudsql_cache_replication_lag_milliseconds Commit to cache.
# TYPE cloudsql_cache_replication_lag_milliseconds histogram
cloudsql_cache_replication_lag_milliseconds_bucket{table="shop.a",le="500"} 40
cloudsql_cache_replication_lag_milliseconds_bucket{table="shop.a",le="1000"} 90
cloudsql_cache_replication_lag_milliseconds_bucket{table="shop.a",le="+Inf"} 90
cloudsql_cache_replication_lag_milliseconds_sum{table="shop.a"} 60000
cloudsql_cache_replication_lag_milliseconds_count{table="shop.a"} 90
cloudsql_cache_replication_lag_milliseconds_bucket{table="shop.b",le="500"} 10
cloudsql_cache_replication_lag_milliseconds_bucket{table="shop.b",le="1000"} 10
cloudsql_cache_replication_lag_milliseconds_bucket{table="shop.b",le="+Inf"} 10
cloudsql_cache_replication_lag_milliseconds_sum{table="shop.b"} 2000
cloudsql_cache_replication_lag_milliseconds_count{table="shop.b"} 10
# HELP cloudsql_cache_apply_duration_milliseconds Not read.
# TYPE cloudsql_cache_apply_duration_milliseconds histogram
cloudsql_cache_apply_duration_milliseconds_bucket{le="+Inf"} 100
cloudsql_cache_apply_duration_milliseconds_sum 100
cloudsql_cache_apply_duration_milliseconds_count 100
`

func TestParseAndQuantiles(t *testing.T) {
	s, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if s.Outcomes["applied"] != 100 || s.Outcomes["stale"] != 3 {
		t.Fatalf("outcomes %v", s.Outcomes)
	}
	// 100 samples: 50 at or under 500 ms, 50 in (500, 1000].
	p50, ok := s.LagQuantile(0.5, Snapshot{})
	if !ok || p50 != 500 {
		t.Fatalf("p50 %v %v", p50, ok)
	}
	if p99, _ := s.LagQuantile(0.99, Snapshot{}); math.Abs(p99-990) > 1e-9 {
		t.Fatalf("p99 %v", p99)
	}
	// Since an earlier snapshot: only what happened in between counts.
	earlier, err := Parse(strings.NewReader(strings.NewReplacer(`le="1000"} 90`, `le="1000"} 40`, `le="+Inf"} 90`, `le="+Inf"} 40`, `{table="shop.a"} 90`, `{table="shop.a"} 40`).Replace(sample)))
	if err != nil {
		t.Fatal(err)
	}
	if p50, ok := s.LagQuantile(0.5, earlier); !ok || p50 != 750 {
		t.Fatalf("windowed p50 %v %v", p50, ok)
	}
	if _, ok := s.LagQuantile(0.5, s); ok {
		t.Fatal("a quantile with no observations")
	}
}

func TestParseRefusesWhatIsNotTheFormat(t *testing.T) {
	for name, text := range map[string]string{
		"not the text format": "cloudsql_cache_events_total{outcome=\"applied\" 1\n",
		"lag not a histogram": "# TYPE cloudsql_cache_replication_lag_milliseconds gauge\ncloudsql_cache_replication_lag_milliseconds 1\n",
	} {
		if _, err := Parse(strings.NewReader(text)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}
