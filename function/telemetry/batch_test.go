package telemetry

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

type recordingExporter struct {
	sdkmetric.Exporter
	got []*metricdata.ResourceMetrics
}

func (r *recordingExporter) Export(_ context.Context, rm *metricdata.ResourceMetrics) error {
	r.got = append(r.got, rm)
	return nil
}

func TestExportsHoldAtMost200Points(t *testing.T) {
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	m := mp.Meter("a")
	events, _ := m.Int64Counter("cloudsql_cache.events", metric.WithUnit("{event}"))
	lag, _ := m.Float64Histogram("cloudsql_cache.replication_lag", metric.WithUnit("ms"))
	for i := range 450 {
		events.Add(context.Background(), 1, metric.WithAttributes(attribute.String("table", fmt.Sprint("db.t", i))))
	}
	for i := range 30 {
		lag.Record(context.Background(), 5, metric.WithAttributes(attribute.String("table", fmt.Sprint("db.t", i))))
	}
	mp.Meter("b").Int64Counter("other") // a second scope with no data
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	rec := &recordingExporter{}
	if err := (batchingExporter{rec, MaxPointsPerExport}).Export(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	if len(rec.got) != 3 {
		t.Fatalf("%d requests, want 3 (480 points)", len(rec.got))
	}
	total, perName := 0, map[string]int{}
	for _, part := range rec.got {
		n := 0
		if part.Resource != rm.Resource {
			t.Error("resource not kept")
		}
		for _, sm := range part.ScopeMetrics {
			if sm.Scope.Name != "a" {
				t.Errorf("scope %q", sm.Scope.Name)
			}
			for _, m := range sm.Metrics {
				p := points(m.Data)
				n += p
				perName[m.Name+" "+m.Unit] += p
				if s, ok := m.Data.(metricdata.Sum[int64]); ok && (!s.IsMonotonic || s.Temporality != metricdata.CumulativeTemporality) {
					t.Errorf("sum lost its kind: %+v", s)
				}
			}
		}
		if n > MaxPointsPerExport {
			t.Errorf("a request with %d points", n)
		}
		total += n
	}
	if total != 480 || perName["cloudsql_cache.events {event}"] != 450 || perName["cloudsql_cache.replication_lag ms"] != 30 {
		t.Fatalf("points %d %v", total, perName)
	}
}
