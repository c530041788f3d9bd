package apply_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cloudsql-cache/cloudsql-cache/function/apply"
	"github.com/cloudsql-cache/cloudsql-cache/function/push"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// eventAt builds a schemaless change event committed at tsMs.
func eventAt(table string, op byte, file uint64, pos uint64, tsMs int64, after string) []byte {
	return []byte(fmt.Sprintf(`{"before":null,"after":%s,"source":{"version":"3.6.1.Final","connector":"mysql","name":"srv","ts_ms":%d,"snapshot":"false","db":"app","table":%q,"server_id":1,"gtid":null,"file":"mysql-bin.%06d","pos":%d,"row":0,"thread":7,"query":null},"op":"%c","ts_ms":%d}`,
		after, tsMs, table, file, pos, op, tsMs+5))
}

func collect(t *testing.T, r *sdkmetric.ManualReader) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

func attrs(s attribute.Set) map[string]string {
	out := map[string]string{}
	for _, kv := range s.ToSlice() {
		out[string(kv.Key)] = kv.Value.Emit()
	}
	return out
}

func sameAttrs(t *testing.T, what string, got attribute.Set, want map[string]string) {
	t.Helper()
	g := attrs(got)
	if len(g) != len(want) {
		t.Errorf("%s: attributes %v, want %v", what, g, want)
		return
	}
	for k, v := range want {
		if g[k] != v {
			t.Errorf("%s: attributes %v, want %v", what, g, want)
			return
		}
	}
}

func histogram(t *testing.T, ms map[string]metricdata.Metrics, name, unit string) []metricdata.HistogramDataPoint[float64] {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	if m.Unit != unit {
		t.Errorf("%s: unit %q, want %q", name, m.Unit, unit)
	}
	h, ok := m.Data.(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("%s is a %T, want a float64 histogram", name, m.Data)
	}
	return h.DataPoints
}

func gauge(t *testing.T, ms map[string]metricdata.Metrics, name, unit string) []metricdata.DataPoint[int64] {
	t.Helper()
	m, ok := ms[name]
	if !ok {
		t.Fatalf("no metric %s", name)
	}
	if m.Unit != unit {
		t.Errorf("%s: unit %q, want %q", name, m.Unit, unit)
	}
	g, ok := m.Data.(metricdata.Gauge[int64])
	if !ok {
		t.Fatalf("%s is a %T, want an int64 gauge", name, m.Data)
	}
	return g.DataPoints
}

func TestApplyMetrics(t *testing.T) {
	e := newEnv(t)
	commit := time.Now().Add(-2 * time.Second).UnixMilli()
	published := time.Now().Add(-500 * time.Millisecond)
	deliver := func(data []byte, attempt int, want string) {
		t.Helper()
		body, err := push.Encode(&push.Message{ID: fmt.Sprint(e.seq.Add(1)), Data: data, OrderingKey: `{"id":1}`,
			PublishTime: published, DeliveryAttempt: attempt, Subscription: "projects/p/subscriptions/cache"})
		if err != nil {
			t.Fatal(err)
		}
		if code, got := e.post(body); code != http.StatusOK || got != want {
			t.Fatalf("delivery: %d %q, want %q", code, got, want)
		}
	}
	deliver(eventAt("t", 'c', 2, 100, commit, `{"id":1}`), 3, "applied")
	deliver(eventAt("t", 'c', 2, 100, commit, `{"id":1}`), 4, "duplicate")
	deliver(eventAt("t", 'u', 1, 900, commit-1000, `{"id":1,"v":0}`), 1, "stale") // an older binlog file
	ms := collect(t, e.reader)

	// Replication lag: the applied change only, about 2 s after its commit.
	lag := histogram(t, ms, apply.MetricReplicationLag, "ms")
	if len(lag) != 1 || lag[0].Count != 1 || lag[0].Sum < 2000 || lag[0].Sum > 12000 {
		t.Fatalf("replication lag %+v", lag)
	}
	sameAttrs(t, "replication lag", lag[0].Attributes, map[string]string{"table": "app.t", "op": "c"})

	// Apply duration: every delivery, by outcome.
	dur := histogram(t, ms, apply.MetricApplyDuration, "ms")
	outcomes := map[string]uint64{}
	for _, dp := range dur {
		a := attrs(dp.Attributes)
		if len(a) != 3 || a["table"] != "app.t" || a["op"] == "" {
			t.Errorf("apply duration attributes %v", a)
		}
		if m, ok := dp.Min.Value(); !ok || m < 0 {
			t.Errorf("duration minimum %v %v", m, ok)
		}
		outcomes[a["outcome"]] += dp.Count
	}
	if outcomes["applied"] != 1 || outcomes["duplicate"] != 1 || outcomes["stale"] != 1 {
		t.Fatalf("apply duration counts %v", outcomes)
	}

	// Delivery delay: publishTime → handler start, ≥ 500 ms for each of the three.
	delay := histogram(t, ms, apply.MetricDeliveryDelay, "ms")
	if len(delay) != 1 || delay[0].Count != 3 || delay[0].Sum < 1500 {
		t.Fatalf("delivery delay %+v", delay)
	}
	sameAttrs(t, "delivery delay", delay[0].Attributes, map[string]string{"table": "app.t"})

	// Delivery attempts, as Pub/Sub numbered them.
	am, ok := ms[apply.MetricDeliveryAttempt]
	if !ok || am.Unit != "{attempt}" {
		t.Fatalf("delivery attempts: %+v", am)
	}
	var attempts int64
	for _, dp := range am.Data.(metricdata.Histogram[int64]).DataPoints {
		a := attrs(dp.Attributes)
		if len(a) != 2 || a["table"] != "app.t" || a["outcome"] == "" {
			t.Errorf("delivery attempts attributes %v", a)
		}
		attempts += dp.Sum
	}
	if attempts != 3+4+1 {
		t.Fatalf("delivery attempts sum %d", attempts)
	}

	// The newest applied position and commit time: the stale change from an older file does not move them.
	pos := gauge(t, ms, apply.MetricSourcePosition, "By")
	if len(pos) != 1 || pos[0].Value != 100 {
		t.Fatalf("source position %+v", pos)
	}
	sameAttrs(t, "source position", pos[0].Attributes, map[string]string{"table": "app.t", "file": "mysql-bin.000002"})
	ct := gauge(t, ms, apply.MetricSourceCommit, "ms")
	if len(ct) != 1 || ct[0].Value != commit {
		t.Fatalf("commit time %+v, want %d", ct, commit)
	}
	sameAttrs(t, "commit time", ct[0].Attributes, map[string]string{"table": "app.t"})

	// A later change moves the position forward, within the same file and then to the next one.
	deliver(eventAt("t", 'u', 2, 300, commit+10, `{"id":1,"v":2}`), 1, "applied")
	deliver(eventAt("t", 'u', 3, 4, commit+20, `{"id":1,"v":3}`), 1, "applied")
	ms = collect(t, e.reader)
	pos = gauge(t, ms, apply.MetricSourcePosition, "By")
	if len(pos) != 1 || pos[0].Value != 4 {
		t.Fatalf("source position %+v", pos)
	}
	sameAttrs(t, "source position", pos[0].Attributes, map[string]string{"table": "app.t", "file": "mysql-bin.000003"})
	if ct := gauge(t, ms, apply.MetricSourceCommit, "ms"); len(ct) != 1 || ct[0].Value != commit+20 {
		t.Fatalf("commit time %+v", ct)
	}
	if _, ok := ms[apply.MetricRedisErrors]; ok {
		t.Fatalf("Redis errors counted without an error: %+v", ms[apply.MetricRedisErrors])
	}

	// Events carry table, op, outcome and reason.
	ev := ms[apply.MetricEvents]
	if ev.Unit != "{event}" {
		t.Fatalf("events unit %q", ev.Unit)
	}
	for _, dp := range ev.Data.(metricdata.Sum[int64]).DataPoints {
		a := attrs(dp.Attributes)
		if _, ok := a["reason"]; !ok || len(a) != 4 {
			t.Errorf("events attributes %v", a)
		}
	}
}

func TestIgnoredAndBadMessagesHaveNoLag(t *testing.T) {
	e := newEnv(t)
	e.mustDeliver(fixture(t, "mysql-transaction-begin-docs.json"), "", "ignored: transaction")
	e.mustDeliver([]byte("garbage"), `{"id":1}`, "dead_lettered: decode")
	ms := collect(t, e.reader)
	if _, ok := ms[apply.MetricReplicationLag]; ok {
		t.Fatalf("lag recorded for messages that were not applied: %+v", ms[apply.MetricReplicationLag])
	}
	if _, ok := ms[apply.MetricSourcePosition]; ok {
		t.Fatalf("position observed without an applied change: %+v", ms[apply.MetricSourcePosition])
	}
	if n := len(histogram(t, ms, apply.MetricApplyDuration, "ms")); n != 2 {
		t.Fatalf("%d apply duration series", n)
	}
}

// A Redis that accepts connections and never answers: every command times out.
func TestRedisErrorsByKind(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
		}
	}()
	refused, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused.Close()
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	policy, err := tablepolicy.New(tablepolicy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{l.Addr().String(), refused.Addr().String()} {
		rdb := redis.NewClient(&redis.Options{Addr: addr, ReadTimeout: 100 * time.Millisecond, WriteTimeout: 100 * time.Millisecond, DialTimeout: 100 * time.Millisecond, MaxRetries: -1})
		defer rdb.Close()
		h, err := apply.New(apply.Options{Store: rowcache.NewStore(rdb, time.Hour), Policy: policy, Timeout: 2 * time.Second, MeterProvider: mp})
		if err != nil {
			t.Fatal(err)
		}
		res := h.Handle(context.Background(), &push.Message{ID: "1", OrderingKey: `{"id":1}`, Data: eventAt("t", 'c', 1, 4, time.Now().UnixMilli(), `{"id":1}`)})
		if res.Outcome != apply.Retry || res.Reason != "redis" {
			t.Fatalf("outcome %+v", res)
		}
	}
	ms := collect(t, reader)
	m, ok := ms[apply.MetricRedisErrors]
	if !ok || m.Unit != "{error}" {
		t.Fatalf("redis errors: %+v", m)
	}
	kinds := map[string]int64{}
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		a := attrs(dp.Attributes)
		if len(a) != 1 {
			t.Errorf("redis errors attributes %v", a)
		}
		kinds[a["kind"]] += dp.Value
	}
	if len(kinds) != 2 || kinds["timeout"] != 1 || kinds["other"] != 1 {
		t.Fatalf("redis errors by kind %v", kinds)
	}
}
