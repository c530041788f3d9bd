package readcache

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

type metrics struct {
	lookups     metric.Int64Counter
	fills       metric.Int64Counter
	dbQueries   metric.Int64Counter
	redisErrors metric.Int64Counter
	duration    metric.Float64Histogram
	// Attribute sets built once: building them per read would cost more than an L1 hit.
	resultAttrs              map[string]metric.MeasurementOption
	sourceAttrs              map[Source]metric.MeasurementOption
	fillStored, fillConflict metric.MeasurementOption
}

func newMetrics(mp metric.MeterProvider) (metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/cloudsql-cache/cloudsql-cache/readcache")
	var ms metrics
	var errs [5]error
	ms.lookups, errs[0] = m.Int64Counter("cloudsql_cache.read.lookups", metric.WithUnit("{lookup}"),
		metric.WithDescription("Reads by result: l1_hit, hit, deleted (tombstone), miss (read from the database), fallback (Redis failed or skipped)."))
	ms.fills, errs[1] = m.Int64Counter("cloudsql_cache.read.fills", metric.WithUnit("{fill}"),
		metric.WithDescription("Cache fills after a miss: stored, or conflict (a change or another fill was there first)."))
	ms.dbQueries, errs[2] = m.Int64Counter("cloudsql_cache.read.db_queries", metric.WithUnit("{query}"),
		metric.WithDescription("Database queries made on misses (concurrent misses of one key share one)."))
	ms.redisErrors, errs[3] = m.Int64Counter("cloudsql_cache.read.redis_errors", metric.WithUnit("{error}"),
		metric.WithDescription("Redis calls that failed or timed out."))
	ms.duration, errs[4] = m.Float64Histogram("cloudsql_cache.read.duration", metric.WithUnit("ms"),
		metric.WithDescription("Get latency by where the row came from."),
		metric.WithExplicitBucketBoundaries(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 1000))
	ms.resultAttrs = map[string]metric.MeasurementOption{}
	for _, r := range []string{"l1_hit", "hit", "deleted", "miss", "fallback"} {
		ms.resultAttrs[r] = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", r)))
	}
	ms.fillStored = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "stored")))
	ms.fillConflict = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", "conflict")))
	ms.sourceAttrs = map[Source]metric.MeasurementOption{}
	for _, s := range []Source{FromL1, FromRedis, FromDatabase} {
		ms.sourceAttrs[s] = metric.WithAttributeSet(attribute.NewSet(attribute.String("source", string(s))))
	}
	for _, err := range errs {
		if err != nil {
			return ms, fmt.Errorf("readcache: metrics: %w", err)
		}
	}
	return ms, nil
}

func (m metrics) lookup(ctx context.Context, result string, from Source, start time.Time) {
	m.lookups.Add(ctx, 1, m.resultAttrs[result])
	m.duration.Record(ctx, float64(time.Since(start).Nanoseconds())/1e6, m.sourceAttrs[from])
}
