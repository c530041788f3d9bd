package funcmetrics

import (
	"math"
	"strings"
	"testing"
)

const sample = `# HELP cloudsql_cache_events_total Change events handled.
# TYPE cloudsql_cache_events_total counter
cloudsql_cache_events_total{op="u",otel_scope_name="x",outcome="applied",reason="",table="shop.a"} 90
cloudsql_cache_events_total{op="c",otel_scope_name="x",outcome="applied",reason="",table="shop.b"} 10
cloudsql_cache_events_total{op="u",otel_scope_name="x",outcome="stale",reason="truncated",table="shop.a"} 3
cloudsql_cache_replication_lag_milliseconds_bucket{table="shop.a",le="500"} 40
cloudsql_cache_replication_lag_milliseconds_bucket{table="shop.a",le="1000"} 90
cloudsql_cache_replication_lag_milliseconds_bucket{table="shop.a",le="+Inf"} 90
cloudsql_cache_replication_lag_milliseconds_bucket{table="shop.b",le="500"} 10
cloudsql_cache_replication_lag_milliseconds_bucket{table="shop.b",le="1000"} 10
cloudsql_cache_replication_lag_milliseconds_bucket{table="shop.b",le="+Inf"} 10
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
	earlier, _ := Parse(strings.NewReader(strings.NewReplacer(`le="500"} 40`, `le="500"} 40`, `le="1000"} 90`, `le="1000"} 40`, `le="+Inf"} 90`, `le="+Inf"} 40`).Replace(sample)))
	if p50, ok := s.LagQuantile(0.5, earlier); !ok || p50 != 750 {
		t.Fatalf("windowed p50 %v %v", p50, ok)
	}
	if _, ok := s.LagQuantile(0.5, s); ok {
		t.Fatal("a quantile with no observations")
	}
}
