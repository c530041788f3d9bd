package telemetry

import (
	"context"
	"errors"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
)

// MaxPointsPerExport is the Telemetry API's limit of data points in one export request.
const MaxPointsPerExport = 200

// batchingExporter splits each export into requests of at most max data points, so a function with many
// tables (events by table × op × outcome × reason, histograms by table) is not refused by the Telemetry
// API as it grows.
type batchingExporter struct {
	sdkmetric.Exporter
	max int
}

func (b batchingExporter) Export(ctx context.Context, rm *metricdata.ResourceMetrics) error {
	var errs []error
	for _, part := range splitPoints(rm, b.max) {
		errs = append(errs, b.Exporter.Export(ctx, part))
	}
	return errors.Join(errs...)
}

// splitPoints returns rm as parts holding at most max data points each, preserving the resource, the
// scopes and every metric's name, description, unit, temporality and monotonicity.
func splitPoints(rm *metricdata.ResourceMetrics, max int) []*metricdata.ResourceMetrics {
	var parts []*metricdata.ResourceMetrics
	cur := &metricdata.ResourceMetrics{Resource: rm.Resource}
	n := 0
	flush := func() {
		if n > 0 {
			parts = append(parts, cur)
		}
		cur, n = &metricdata.ResourceMetrics{Resource: rm.Resource}, 0
	}
	add := func(sm metricdata.ScopeMetrics, m metricdata.Metrics, points int) {
		if l := len(cur.ScopeMetrics); l == 0 || cur.ScopeMetrics[l-1].Scope != sm.Scope {
			cur.ScopeMetrics = append(cur.ScopeMetrics, metricdata.ScopeMetrics{Scope: sm.Scope})
		}
		last := &cur.ScopeMetrics[len(cur.ScopeMetrics)-1]
		last.Metrics = append(last.Metrics, m)
		n += points
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, chunk := range chunks(m, max) {
				p := points(chunk.Data)
				if n+p > max {
					flush()
				}
				add(sm, chunk, p)
			}
		}
	}
	flush()
	return parts
}

func points(d metricdata.Aggregation) int {
	switch d := d.(type) {
	case metricdata.Sum[int64]:
		return len(d.DataPoints)
	case metricdata.Sum[float64]:
		return len(d.DataPoints)
	case metricdata.Gauge[int64]:
		return len(d.DataPoints)
	case metricdata.Gauge[float64]:
		return len(d.DataPoints)
	case metricdata.Histogram[int64]:
		return len(d.DataPoints)
	case metricdata.Histogram[float64]:
		return len(d.DataPoints)
	case metricdata.ExponentialHistogram[int64]:
		return len(d.DataPoints)
	case metricdata.ExponentialHistogram[float64]:
		return len(d.DataPoints)
	case metricdata.Summary:
		return len(d.DataPoints)
	}
	return 1
}

// chunks splits one metric's data points into pieces of at most max.
func chunks(m metricdata.Metrics, max int) []metricdata.Metrics {
	if points(m.Data) <= max {
		return []metricdata.Metrics{m}
	}
	var out []metricdata.Metrics
	with := func(d metricdata.Aggregation) { c := m; c.Data = d; out = append(out, c) }
	switch d := m.Data.(type) {
	case metricdata.Sum[int64]:
		for _, dp := range split(d.DataPoints, max) {
			with(metricdata.Sum[int64]{DataPoints: dp, Temporality: d.Temporality, IsMonotonic: d.IsMonotonic})
		}
	case metricdata.Sum[float64]:
		for _, dp := range split(d.DataPoints, max) {
			with(metricdata.Sum[float64]{DataPoints: dp, Temporality: d.Temporality, IsMonotonic: d.IsMonotonic})
		}
	case metricdata.Gauge[int64]:
		for _, dp := range split(d.DataPoints, max) {
			with(metricdata.Gauge[int64]{DataPoints: dp})
		}
	case metricdata.Gauge[float64]:
		for _, dp := range split(d.DataPoints, max) {
			with(metricdata.Gauge[float64]{DataPoints: dp})
		}
	case metricdata.Histogram[int64]:
		for _, dp := range split(d.DataPoints, max) {
			with(metricdata.Histogram[int64]{DataPoints: dp, Temporality: d.Temporality})
		}
	case metricdata.Histogram[float64]:
		for _, dp := range split(d.DataPoints, max) {
			with(metricdata.Histogram[float64]{DataPoints: dp, Temporality: d.Temporality})
		}
	default:
		return []metricdata.Metrics{m} // not produced by this program's instruments
	}
	return out
}

func split[T any](s []T, max int) [][]T {
	var out [][]T
	for len(s) > max {
		out = append(out, s[:max:max])
		s = s[max:]
	}
	return append(out, s)
}
