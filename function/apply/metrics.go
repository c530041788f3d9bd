package apply

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/function/push"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// Metric names, as they appear in OpenTelemetry (Cloud Monitoring: workload.googleapis.com/<name>;
// Prometheus: dots become underscores, counters get _total, units are appended to histograms only by
// exporters that do so).
const (
	MetricEvents          = "cloudsql_cache.events"
	MetricApplyDuration   = "cloudsql_cache.apply.duration"
	MetricReplicationLag  = "cloudsql_cache.replication_lag"
	MetricDeliveryDelay   = "cloudsql_cache.delivery.delay"
	MetricDeliveryAttempt = "cloudsql_cache.delivery.attempts"
	MetricRedisErrors     = "cloudsql_cache.redis.errors"
	MetricSourcePosition  = "cloudsql_cache.source.position"
	MetricSourceCommit    = "cloudsql_cache.source.commit_time"
	MetricFloors          = "cloudsql_cache.floors"
	MetricSweptKeys       = "cloudsql_cache.swept_keys"
)

// Bucket boundaries in milliseconds. Lag and delivery delay span a healthy stream (tens of ms) to a
// backlog of an hour; apply latency is one or two Redis round trips unless Redis is slow.
var (
	lagBuckets      = []float64{5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 900000, 3600000}
	durationBuckets = []float64{0.25, 0.5, 1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000}
	attemptBuckets  = []float64{1, 2, 3, 5, 10, 20, 50, 100}
)

type metrics struct {
	events         metric.Int64Counter
	applyDuration  metric.Float64Histogram
	replicationLag metric.Float64Histogram
	deliveryDelay  metric.Float64Histogram
	attempts       metric.Int64Histogram
	redisErrors    metric.Int64Counter
	floors         metric.Int64Counter
	sweptKeys      metric.Int64Counter

	// The newest applied source position and commit time per table, read by the observable gauges.
	mu        sync.Mutex
	positions map[string]position
}

type position struct {
	file     string
	pos      uint64
	commitMs int64
}

func newMetrics(mp metric.MeterProvider) (*metrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/cloudsql-cache/cloudsql-cache/function/apply")
	ms := &metrics{positions: map[string]position{}}
	var errs [10]error
	ms.events, errs[0] = m.Int64Counter(MetricEvents,
		metric.WithUnit("{event}"),
		metric.WithDescription("Change events handled, by table, op, outcome and reason."))
	ms.applyDuration, errs[1] = m.Float64Histogram(MetricApplyDuration,
		metric.WithUnit("ms"),
		metric.WithDescription("Time from the handler's start to Redis's reply (or the outcome), by table, op and outcome."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	ms.replicationLag, errs[2] = m.Float64Histogram(MetricReplicationLag,
		metric.WithUnit("ms"),
		metric.WithDescription("Time from the change's commit in the database (source.ts_ms) to its application in Redis, for applied changes, by table and op."),
		metric.WithExplicitBucketBoundaries(lagBuckets...))
	ms.deliveryDelay, errs[3] = m.Float64Histogram(MetricDeliveryDelay,
		metric.WithUnit("ms"),
		metric.WithDescription("Time from the message's Pub/Sub publishTime to the handler's start, by table."),
		metric.WithExplicitBucketBoundaries(lagBuckets...))
	ms.attempts, errs[4] = m.Int64Histogram(MetricDeliveryAttempt,
		metric.WithUnit("{attempt}"),
		metric.WithDescription("Pub/Sub's deliveryAttempt of each delivery (sent only by subscriptions with a dead-letter policy), by table and outcome."),
		metric.WithExplicitBucketBoundaries(attemptBuckets...))
	ms.redisErrors, errs[5] = m.Int64Counter(MetricRedisErrors,
		metric.WithUnit("{error}"),
		metric.WithDescription("Redis calls of the apply path that failed, by kind: timeout, replica_wait (applied, but too few replicas confirmed it in time) or other."))
	ms.floors, errs[8] = m.Int64Counter(MetricFloors,
		metric.WithUnit("{floor}"),
		metric.WithDescription("Table floors raised (a truncate, a completed snapshot, a DDL that removes rows without row events), by table and reason: truncate, snapshot or ddl."))
	ms.sweptKeys, errs[9] = m.Int64Counter(MetricSweptKeys,
		metric.WithUnit("{key}"),
		metric.WithDescription("Cached rows, tombstones and fills a table's floor sweep removed, by table and reason: truncate, snapshot or ddl."))
	var posGauge, commitGauge metric.Int64ObservableGauge
	posGauge, errs[6] = m.Int64ObservableGauge(MetricSourcePosition,
		metric.WithUnit("By"),
		metric.WithDescription("The binlog position of the newest change applied, per table and binlog file."))
	commitGauge, errs[7] = m.Int64ObservableGauge(MetricSourceCommit,
		metric.WithUnit("ms"),
		metric.WithDescription("The database commit time (ms since the Unix epoch) of the newest change applied, per table."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("apply: metrics: %w", err)
	}
	_, err := m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		ms.mu.Lock()
		defer ms.mu.Unlock()
		for table, p := range ms.positions {
			if p.file != "" {
				o.ObserveInt64(posGauge, int64(p.pos), metric.WithAttributes(attribute.String("table", table), attribute.String("file", p.file)))
			}
			if p.commitMs > 0 {
				o.ObserveInt64(commitGauge, p.commitMs, metric.WithAttributes(attribute.String("table", table)))
			}
		}
		return nil
	}, posGauge, commitGauge)
	if err != nil {
		return nil, fmt.Errorf("apply: metrics: %w", err)
	}
	return ms, nil
}

// sweep counts a raised floor and the keys its sweep removed.
func (ms *metrics) sweep(ctx context.Context, table, reason string, r rowcache.Result, deleted int) {
	ctx = context.WithoutCancel(ctx)
	attrs := metric.WithAttributes(attribute.String("table", table), attribute.String("reason", reason))
	if r == rowcache.Applied {
		ms.floors.Add(ctx, 1, attrs)
	}
	if deleted > 0 {
		ms.sweptKeys.Add(ctx, int64(deleted), attrs)
	}
}

// observation is what one message contributes to the metrics besides its Result.
type observation struct {
	start     time.Time // the handler's start
	replied   time.Time // Redis's reply; zero if Redis was not reached
	source    debezium.Source
	redisErr  error
	hasSource bool
	// wrote: the message wrote to Redis; replicated: every write so far waited for the replicas
	// (pipelined with the script), so none is left to wait for.
	wrote, replicated bool
}

func (ms *metrics) record(ctx context.Context, m *push.Message, res Result, o observation) {
	// The request's context may already be cancelled; the measurements must still land.
	ctx = context.WithoutCancel(ctx)
	table := attribute.String("table", res.Table)
	op := attribute.String("op", res.Op)
	outcome := attribute.String("outcome", string(res.Outcome))
	ms.events.Add(ctx, 1, metric.WithAttributes(table, op, outcome, attribute.String("reason", res.Reason)))
	if o.start.IsZero() {
		return // not a message (a bad envelope): only counted
	}
	end := o.replied
	if end.IsZero() {
		end = time.Now()
	}
	ms.applyDuration.Record(ctx, millis(end.Sub(o.start)), metric.WithAttributes(table, op, outcome))
	if !m.PublishTime.IsZero() {
		ms.deliveryDelay.Record(ctx, max(0, millis(o.start.Sub(m.PublishTime))), metric.WithAttributes(table))
	}
	if m.DeliveryAttempt > 0 {
		ms.attempts.Record(ctx, int64(m.DeliveryAttempt), metric.WithAttributes(table, outcome))
	}
	if o.redisErr != nil {
		kind := "other"
		switch {
		case errors.Is(o.redisErr, rowcache.ErrNotReplicated):
			kind = reasonReplicaWait
		case isTimeout(o.redisErr):
			kind = "timeout"
		}
		ms.redisErrors.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", kind)))
	}
	if res.Outcome != Applied || !o.hasSource {
		return
	}
	if o.source.TsMs > 0 {
		ms.replicationLag.Record(ctx, max(0, millis(o.replied.Sub(time.UnixMilli(o.source.TsMs)))), metric.WithAttributes(table, op))
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	p := ms.positions[res.Table]
	if o.source.File != "" && (o.source.File > p.file || o.source.File == p.file && o.source.Pos > p.pos) {
		// Binlog file names share a base and a zero-padded sequence number, so they sort as they follow.
		p.file, p.pos = o.source.File, o.source.Pos
	}
	p.commitMs = max(p.commitMs, o.source.TsMs)
	ms.positions[res.Table] = p
}

func millis(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e6 }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) ||
		errors.As(err, &ne) && ne.Timeout()
}
