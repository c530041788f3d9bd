package main

import (
	"bytes"
	"math"
	"strings"
	"testing"
	"time"
)

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func lineUSD(t *testing.T, e Estimate, prefix string) float64 {
	t.Helper()
	for _, l := range e.Lines {
		if strings.HasPrefix(l.Component, prefix) {
			return l.USD
		}
	}
	t.Fatalf("no line %q", prefix)
	return 0
}

// A hand-computed case: 3.6M events/hour = 1000/s, 1 KB rows.
func TestHandComputed(t *testing.T) {
	in := defaultInput()
	in.EventsPerHour, in.CPUMicros = 3.6e6, 140
	in.Format, in.Retention = "full", 7*24*time.Hour
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	// A full-format update: 2×1024 + 493 + 36 = 2577 B per message, above the 1000 B request minimum.
	if got := in.BilledRequestBytes(); got != 2577 {
		t.Errorf("billed bytes = %v, want 2577", got)
	}
	// 1000/s × 140 µs = 0.14 vCPU; / (1 × 0.6) = 0.233 → 1 instance.
	if got := in.FunctionInstances(); got != 1 {
		t.Errorf("instances = %d, want 1", got)
	}
	e := in.Estimate()
	// Throughput: 3.6e6 × 730 msgs × 2 × 2577 B / 2^40 × $40.
	if got, want := lineUSD(t, e, "Pub/Sub throughput"), 3.6e6*730*2*2577/math.Pow(2, 40)*40; !near(got, want) {
		t.Errorf("throughput = %v, want %v", got, want)
	}
	// Storage: 3.6e6/h × 168 h × 2577 B / 2^30 × $0.27.
	if got, want := lineUSD(t, e, "Pub/Sub topic"), 3.6e6*168*2577/math.Pow(2, 30)*0.27; !near(got, want) {
		t.Errorf("storage = %v, want %v", got, want)
	}
	// The compact format without topic retention: 1024 + 206 + 36 = 1266 B, and no storage.
	in.Format, in.Retention = "compact", 0
	if got := in.BilledRequestBytes(); got != 1266 {
		t.Errorf("compact billed bytes = %v, want 1266", got)
	}
	if got := lineUSD(t, in.Estimate(), "Pub/Sub topic"); got != 0 {
		t.Errorf("storage without topic retention = %v, want 0", got)
	}
	// An op mix weighs each op's measured shape: 0.5 × (2×1024+493+36) + 0.5 × (1024+497+36) in full.
	in.Format, in.Mix = "full", OpMix{'u': 0.5, 'c': 0.5}
	if got, want := in.MessageBytes(), 0.5*2577+0.5*1557; !near(got, want) {
		t.Errorf("mixed message bytes = %v, want %v", got, want)
	}
	// Function: 1 instance × 730 h × 3600 s × (1 × 0.000018 + 0.5 × 0.000002) = $49.932.
	if got := lineUSD(t, e, "Cloud Run: apply"); !near(got, 49.932) {
		t.Errorf("function = %v, want 49.932", got)
	}
	// Debezium: 2,628,000 s × (0.000018 + 2 × 0.000002) = $57.816.
	if got := lineUSD(t, e, "Cloud Run: Debezium"); !near(got, 57.816) {
		t.Errorf("debezium = %v, want 57.816", got)
	}
	// Redis: STANDARD_HA 5 GB is M2: 5 × 0.054 × 730 = $197.10.
	if got := lineUSD(t, e, "Memorystore"); !near(got, 197.1) {
		t.Errorf("redis = %v, want 197.1", got)
	}
	// Samples: 1 × 10 × 147 × 43,800 exports = 64,386,000 → × $0.06/M.
	if SamplesPerTableExport != 147 {
		t.Errorf("samples per table = %d, want 147", SamplesPerTableExport)
	}
	if got := lineUSD(t, e, "Cloud Monitoring"); !near(got, 64.386*0.06) {
		t.Errorf("monitoring = %v, want %v", got, 64.386*0.06)
	}
	sum := 0.0
	for _, l := range e.Lines {
		sum += l.USD
	}
	if !near(e.Total, sum) {
		t.Errorf("total %v != sum of lines %v", e.Total, sum)
	}
}

func TestSmallMessagesBilledAtRequestMinimum(t *testing.T) {
	in := defaultInput()
	in.RowBytes, in.Mix = 100, OpMix{'c': 1}
	if got := in.BilledRequestBytes(); got != 1000 {
		t.Errorf("billed bytes = %v, want the 1000 B minimum", got)
	}
}

func TestInstancesNeeded(t *testing.T) {
	in := defaultInput()
	in.EventsPerHour, in.CPUMicros = 100e6, 140 // 27,777.8/s × 140 µs = 3.889 vCPU; / 0.6 = 6.48 → 7
	if got := in.FunctionInstances(); got != 7 {
		t.Errorf("instances = %d, want 7", got)
	}
	in.MinInstances = 10
	if got := in.FunctionInstances(); got != 10 {
		t.Errorf("instances = %d, want the minimum 10", got)
	}
	in = defaultInput()
	in.EventsPerHour, in.LatencyMs, in.Concurrency = 3.6e6, 1000, 10 // 1000 in flight / 10 → 100
	if got := in.FunctionInstances(); got != 100 {
		t.Errorf("instances = %d, want 100 (concurrency bound)", got)
	}
	if e := in.Estimate(); len(e.Warnings) == 0 {
		t.Error("no warning for instances above max-instances")
	}
}

func TestPrometheusTiers(t *testing.T) {
	if got, want := prometheusCost(60e9), 50e3*0.06+10e3*0.048; !near(got, want) {
		t.Errorf("60G samples = %v, want %v", got, want)
	}
	if got, want := prometheusCost(600e9), 50e3*0.06+200e3*0.048+250e3*0.036+100e3*0.024; !near(got, want) {
		t.Errorf("600G samples = %v, want %v", got, want)
	}
}

func TestMonotonic(t *testing.T) {
	for _, rows := range []float64{50, 1024, 8192} {
		prev := Estimate{}
		for r := 1e3; r <= 1e9; r *= 1.7 {
			in := defaultInput()
			in.EventsPerHour, in.RowBytes = r, rows
			e := in.Estimate()
			if e.Total < prev.Total {
				t.Fatalf("rows %v: %v events/h costs %v, less than %v", rows, r, e.Total, prev.Total)
			}
			for i := range e.Lines {
				if prev.Lines != nil && e.Lines[i].USD < prev.Lines[i].USD {
					t.Fatalf("rows %v: %s fell at %v events/h", rows, e.Lines[i].Component, r)
				}
			}
			prev = e
		}
	}
}

func TestFlagValidation(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "-events-per-hour"},
		{[]string{"-events-per-hour", "-5"}, "-events-per-hour"},
		{[]string{"-events-per-hour", "1e6", "-vcpu", "3"}, "-vcpu"},
		{[]string{"-events-per-hour", "1e6", "-redis-tier", "PREMIUM"}, "-redis-tier"},
		{[]string{"-events-per-hour", "1e6", "-redis-gb", "0"}, "-redis-gb"},
		{[]string{"-events-per-hour", "1e6", "-retention", "1m"}, "-retention"},
		{[]string{"-events-per-hour", "1e6", "-target-util", "1.5"}, "-target-util"},
		{[]string{"-events-per-hour", "1e6", "-tables", "0"}, "-tables"},
		{[]string{"-events-per-hour", "1e6", "-min-instances", "5", "-max-instances", "2"}, "-max-instances"},
		{[]string{"-events-per-hour", "1e6", "-metrics-interval", "1s"}, "-metrics-interval"},
		{[]string{"-events-per-hour", "1e6", "extra"}, "unexpected arguments"},
		{[]string{"-events-per-hour", "lots"}, "invalid value"},
		{[]string{"-events-per-hour", "1e6", "-format", "avro"}, "-format"},
		{[]string{"-events-per-hour", "1e6", "-op-mix", "u=0.5"}, "-op-mix"},
		{[]string{"-events-per-hour", "1e6", "-op-mix", "t=1"}, "-op-mix"},
		{[]string{"-events-per-hour", "1e6", "-op-mix", "u=0.5,u=0.5"}, "-op-mix"},
		{[]string{"-events-per-hour", "1e6", "-redis-engine", "memcached"}, "-redis-engine"},
		{[]string{"-events-per-hour", "1e6", "-redis-engine", "valkey"}, "-node-usd-hour"},
		{[]string{"-events-per-hour", "1e6", "-redis-engine", "redis_cluster", "-node-usd-hour", "0.2", "-node-type", "HUGE"}, "-node-type"},
		{[]string{"-events-per-hour", "1e6", "-redis-engine", "valkey", "-node-usd-hour", "0.2", "-replicas", "3"}, "-replicas"},
		{[]string{"-events-per-hour", "1e6", "-subscriptions-per-topic", "0"}, "-subscriptions-per-topic"},
	} {
		var out, errb bytes.Buffer
		err := run(tc.args, &out, &errb)
		if err == nil || !strings.Contains(err.Error()+errb.String(), tc.want) {
			t.Errorf("%v: err = %v, want one naming %q", tc.args, err, tc.want)
		}
	}
}

func TestOutput(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run([]string{"-events-per-hour", "1e6"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "| **total** |") || !strings.Contains(s, "| Memorystore | for Redis STANDARD_HA 5 GB") {
		t.Errorf("output lacks the table:\n%s", s)
	}
	out.Reset()
	if err := run([]string{"-table"}, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "100.0M/h before") || !strings.Contains(s, "100.0M/h new") || !strings.Contains(s, "**total / month**") ||
		!strings.Contains(s, "| compact format, no topic retention, acknowledged messages kept 7 days per subscription |") ||
		!strings.Contains(s, "| compact format, topic retention 94205 s (repair_by_seek's default), no acknowledged messages kept |") ||
		!strings.Contains(s, "| HIGHMEM_MEDIUM | 39.0 GB | 6 | 4380 × P |") {
		t.Errorf("-table output:\n%s", s)
	}
}

// The repair's storage: a topic's retention is billed once whatever its subscriptions; acknowledged
// messages retained by subscriptions once per subscription. The default is the module's: the topics keep
// 94,205 s (terraform/tests/pubsub_settings.tftest.hcl holds the module to the same figure), no
// subscription keeps acknowledged messages.
func TestRepairStorage(t *testing.T) {
	in := defaultInput()
	in.EventsPerHour = 100e6
	if in.Retention != 94205*time.Second || in.AckedRetention != 0 {
		t.Fatalf("defaults: topic retention %v, acknowledged %v; want the module's 94205s and none", in.Retention, in.AckedRetention)
	}
	e := in.Estimate()
	// 100e6/h × 94205/3600 h × 1266 B / 2^30 × $0.27.
	topic := 100e6 * 94205 / 3600 * 1266 / math.Pow(2, 30) * 0.27
	if got := lineUSD(t, e, "Pub/Sub topic retention"); !near(got, topic) {
		t.Errorf("topic retention = %v, want %v", got, topic)
	}
	if got := lineUSD(t, e, "Pub/Sub subscriptions'"); got != 0 {
		t.Errorf("acknowledged messages = %v, want 0", got)
	}
	in.SubscriptionsPerTopic = 2
	if got := lineUSD(t, in.Estimate(), "Pub/Sub topic retention"); !near(got, topic) {
		t.Errorf("a second subscription changed the topic's storage: %v, want %v", got, topic)
	}
	// Issue 13's first repair: 7 days kept by each subscription.
	in.Retention, in.AckedRetention = 0, 7*24*time.Hour
	acked := 100e6 * 168 * 1266 / math.Pow(2, 30) * 0.27
	if got := lineUSD(t, in.Estimate(), "Pub/Sub subscriptions'"); !near(got, 2*acked) {
		t.Errorf("two subscriptions' acknowledged messages = %v, want %v", got, 2*acked)
	}
}

// Issue 19's targets with the defaults: at most $10,000 a month at 100M changes/hour; $350 at 1M is
// not met (Memorystore for Redis's 5 GB STANDARD_HA is half of it), and is with redis_memory_size_gb 3.
func TestIssue19Targets(t *testing.T) {
	in := defaultInput()
	in.EventsPerHour = 100e6
	if got := in.Estimate().Total; got > 10000 {
		t.Errorf("100M/h: $%.0f, above $10,000", got)
	}
	in.EventsPerHour = 1e6
	e := in.Estimate()
	if e.Total <= 350 {
		t.Errorf("1M/h: $%.0f; the README says the defaults miss $350", e.Total)
	}
	if redis := lineUSD(t, e, "Memorystore"); redis < e.Total/2 {
		t.Errorf("1M/h: Memorystore $%.0f of $%.0f; the README says it is the largest half", redis, e.Total)
	}
	in.RedisGB = 3
	if got := in.Estimate().Total; got > 350 {
		t.Errorf("1M/h with 3 GB: $%.0f, above $350", got)
	}
}

// A cluster engine bills every node, primaries and replicas, at the given price.
func TestClusterEngine(t *testing.T) {
	in := defaultInput()
	in.EventsPerHour, in.RedisEngine, in.NodeType, in.Shards, in.Replicas, in.NodeUSDHour = 1e6, "valkey", "STANDARD_SMALL", 4, 2, 0.25
	if err := in.Validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := lineUSD(t, in.Estimate(), "Memorystore"), 4*3*730*0.25; !near(got, want) {
		t.Errorf("valkey 4 shards × 3 nodes = %v, want %v", got, want)
	}
}
