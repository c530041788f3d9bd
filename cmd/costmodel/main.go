// Command costmodel estimates the monthly (730 h) Google Cloud cost of the deployed pipeline per
// component, from the change rate and the Terraform sizing: Pub/Sub, the apply function on Cloud Run,
// the Debezium worker pool, Memorystore for Redis, Cloud Monitoring (Managed Service for Prometheus
// samples) and logging. Cloud SQL is not included (it exists without the cache). Prices: prices.go.
//
//	go run ./cmd/costmodel -events-per-hour 10000000 -row-bytes 1024 -tables 10
//	go run ./cmd/costmodel -table    # the README table: 1M, 10M and 100M events/hour
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strings"
	"time"
)

const hoursPerMonth = 730

// Input is what the estimate depends on. Defaults mirror terraform/variables.tf.
type Input struct {
	EventsPerHour float64
	RowBytes      float64 // average row JSON size
	Tables        int

	// Debezium's message per op, measured (shapes.go): the event format (event_format) and the op mix.
	Format string // "full" or "compact"
	Mix    OpMix

	CPUMicros    float64 // function CPU per event, measured by cmd/benchapply
	TargetUtil   float64 // CPU utilisation the instances are sized for
	LatencyMs    float64 // time a push request is in flight (for the concurrency bound)
	Concurrency  int     // function_concurrency
	VCPU         float64 // function_cpu
	MemoryMiB    float64 // function_memory
	MinInstances int     // function_min_instances
	MaxInstances int     // function_max_instances

	DebeziumVCPU   float64 // debezium_cpu
	DebeziumMemGiB float64 // debezium_memory

	RedisEngine string  // redis_engine: redis, redis_cluster or valkey
	RedisGB     float64 // redis_memory_size_gb (redis)
	RedisTier   string  // redis_tier (redis)
	NodeType    string  // redis_node_type (redis_cluster, valkey)
	Shards      int     // redis_shard_count
	Replicas    int     // redis_replica_count
	// NodeUSDHour is the cluster engine's list price per node-hour in your region: required for
	// redis_cluster and valkey, whose prices are not in prices.go (see there).
	NodeUSDHour float64

	// Retention is the topics' message retention (topic_message_retention_duration; 0: none). With
	// repair_by_seek (the default) the module sizes it to the losses the repair must cover: stored once
	// per topic, whatever its subscriptions.
	Retention time.Duration
	// AckedRetention is how long each push subscription keeps acknowledged messages (0: none, the
	// module's default now). Issue 13's first design kept them for message_retention_duration, 7 days,
	// for the repair's seek: billed per subscription, -acked-retention 168h prices it.
	AckedRetention time.Duration
	// SubscriptionsPerTopic: push subscriptions on each table topic (1 in the module; another consumer
	// adds one): each is delivered every message, and each keeps its own acknowledged messages.
	SubscriptionsPerTopic int
	MetricInterval        time.Duration // METRICS_EXPORT_INTERVAL
	LogGiB                float64       // logs per month
}

// defaultInput: the Terraform variables' defaults (terraform/variables.tf) and the function's.
func defaultInput() Input {
	return Input{
		RowBytes:       1024,
		Tables:         10,
		Format:         "compact",     // event_format = "compact"
		Mix:            OpMix{'u': 1}, // every change an update: the heaviest op in the full format
		CPUMicros:      160,           // go run ./cmd/benchapply: 154.5–159.5 µs at concurrency 8–32 (encoding/json decoders, issue 12), GOMAXPROCS 1
		TargetUtil:     0.6,           // Cloud Run's autoscaler aims at ~60% CPU
		LatencyMs:      5,
		Concurrency:    80,               // function_concurrency = 80
		VCPU:           1,                // function_cpu = "1"
		MemoryMiB:      512,              // function_memory = "512Mi"
		MinInstances:   1,                // function_min_instances = 1
		MaxInstances:   20,               // function_max_instances = 20
		DebeziumVCPU:   1,                // debezium_cpu = "1" (terraform/debezium.tf: 1 instance, MANUAL scaling)
		DebeziumMemGiB: 2,                // debezium_memory = "2Gi"
		RedisEngine:    "redis",          // redis_engine = "redis"
		RedisGB:        5,                // redis_memory_size_gb = 5
		RedisTier:      "STANDARD_HA",    // redis_tier = "STANDARD_HA"
		NodeType:       "HIGHMEM_MEDIUM", // redis_node_type = "HIGHMEM_MEDIUM"
		Shards:         3,                // redis_shard_count = 3
		Replicas:       1,                // redis_replica_count = 1
		Retention:      repairRetention,  // topic_message_retention_duration = null with repair_by_seek
		AckedRetention: 0,                // retain_acked_messages = false
		MetricInterval: 60 * time.Second, // METRICS_EXPORT_INTERVAL default (function/config.go)
		LogGiB:         0,                // no per-event logs on the success path

		SubscriptionsPerTopic: 1,
	}
}

// repairRetention is the topics' retention the module sizes for repair_by_seek with its defaults
// (terraform/main.tf, local.repair_retention_needed): the ONE_HOUR RDB snapshot period, the 10m
// repair_seek_margin, the 5s redis_watch_interval, an hour for Memorystore to recover, and a day to
// fix a repair that fails: 94,205 s.
const repairRetention = time.Hour + 10*time.Minute + 5*time.Second + time.Hour + 24*time.Hour

// Validate reports every invalid field.
func (in Input) Validate() error {
	var errs []error
	bad := func(flag, format string, a ...any) {
		errs = append(errs, fmt.Errorf("-%s: "+format, append([]any{flag}, a...)...))
	}
	if !(in.EventsPerHour > 0) || math.IsInf(in.EventsPerHour, 0) {
		bad("events-per-hour", "must be > 0 (got %v)", in.EventsPerHour)
	}
	if !(in.RowBytes > 0) || in.RowBytes > 10<<20 {
		bad("row-bytes", "must be in (0, 10 MiB] (Pub/Sub's message limit) (got %v)", in.RowBytes)
	}
	if in.Tables < 1 {
		bad("tables", "must be at least 1 (got %d)", in.Tables)
	}
	if measuredShapes[in.Format] == nil {
		bad("format", "must be compact or full (event_format) (got %q)", in.Format)
	}
	if len(in.Mix) == 0 {
		bad("op-mix", "must name at least one op")
	}
	if !(in.CPUMicros > 0) {
		bad("cpu-us", "must be > 0 (got %v)", in.CPUMicros)
	}
	if !(in.TargetUtil > 0 && in.TargetUtil <= 1) {
		bad("target-util", "must be in (0, 1] (got %v)", in.TargetUtil)
	}
	if !(in.LatencyMs > 0) {
		bad("latency-ms", "must be > 0 (got %v)", in.LatencyMs)
	}
	if in.Concurrency < 1 || in.Concurrency > 1000 {
		bad("concurrency", "must be 1-1000 (Cloud Run's limit) (got %d)", in.Concurrency)
	}
	switch in.VCPU {
	case 1, 2, 4, 6, 8:
	default:
		bad("vcpu", "must be 1, 2, 4, 6 or 8 (function_cpu) (got %v)", in.VCPU)
	}
	if in.MemoryMiB < 128 || in.MemoryMiB > 32768 {
		bad("memory-mib", "must be 128-32768 (got %v)", in.MemoryMiB)
	}
	if in.MinInstances < 0 {
		bad("min-instances", "must be >= 0 (got %d)", in.MinInstances)
	}
	if in.MaxInstances < 1 || in.MaxInstances < in.MinInstances {
		bad("max-instances", "must be >= 1 and >= -min-instances (got %d)", in.MaxInstances)
	}
	if !(in.DebeziumVCPU > 0) || !(in.DebeziumMemGiB > 0) {
		bad("debezium-vcpu/-debezium-memory-gib", "must be > 0")
	}
	switch in.RedisEngine {
	case "redis":
		if in.RedisTier != "STANDARD_HA" && in.RedisTier != "BASIC" {
			bad("redis-tier", "must be STANDARD_HA or BASIC (got %q)", in.RedisTier)
		}
		if in.RedisGB < 1 || in.RedisGB > 300 {
			bad("redis-gb", "must be 1-300 (Memorystore for Redis) (got %v)", in.RedisGB)
		}
	case "redis_cluster", "valkey":
		if _, ok := clusterNodeGB[in.NodeType]; !ok {
			bad("node-type", "must be one of %s (redis_node_type) (got %q)", strings.Join(clusterNodeTypes(), ", "), in.NodeType)
		}
		if in.Shards < 1 || in.Shards > 250 {
			bad("shards", "must be 1-250 (redis_shard_count) (got %d)", in.Shards)
		}
		if in.Replicas < 0 || in.Replicas > 2 {
			bad("replicas", "must be 0, 1 or 2 (redis_replica_count) (got %d)", in.Replicas)
		}
		if !(in.NodeUSDHour > 0) || math.IsInf(in.NodeUSDHour, 0) {
			bad("node-usd-hour", "the list price of one %s %s node per hour in your region is required (%s): %s",
				in.RedisEngine, in.NodeType, clusterPricingPage[in.RedisEngine], clusterPriceStatus)
		}
	default:
		bad("redis-engine", "must be redis, redis_cluster or valkey (got %q)", in.RedisEngine)
	}
	if in.SubscriptionsPerTopic < 1 {
		bad("subscriptions-per-topic", "must be at least 1 (got %d)", in.SubscriptionsPerTopic)
	}
	if in.Retention != 0 && (in.Retention < 10*time.Minute || in.Retention > 31*24*time.Hour) {
		bad("retention", "must be 0 (no topic retention) or 10m-744h (Pub/Sub) (got %v)", in.Retention)
	}
	if in.AckedRetention != 0 && (in.AckedRetention < 10*time.Minute || in.AckedRetention > 31*24*time.Hour) {
		bad("acked-retention", "must be 0 (repair_by_seek = false) or 10m-744h (Pub/Sub) (got %v)", in.AckedRetention)
	}
	if in.MetricInterval < 5*time.Second {
		bad("metrics-interval", "must be at least 5s (got %v)", in.MetricInterval)
	}
	if in.LogGiB < 0 {
		bad("log-gib", "must be >= 0 (got %v)", in.LogGiB)
	}
	return errors.Join(errs...)
}

// Line is one component of the estimate.
type Line struct {
	Component string
	Usage     string
	USD       float64
}

// Estimate is the monthly cost.
type Estimate struct {
	Lines     []Line
	Total     float64
	Instances int      // function instances
	Warnings  []string // e.g. more instances than function_max_instances
}

// MessageBytes is the mean billed volume of one message (data, attributes, ordering key, id,
// timestamp) over the op mix, in the input's format.
func (in Input) MessageBytes() float64 {
	b := 0.0
	for op, share := range in.Mix {
		b += share * (measuredShapes[in.Format][op].Bytes(in.RowBytes) + messageMetaBytes)
	}
	return b
}

// BilledRequestBytes is what one publish or push request of one message is billed at: at least 1000
// bytes per request, op by op. Push delivers one message per request; publishes are modelled the same
// way (an upper bound: Debezium's client batches, and a batch is billed on its total).
func (in Input) BilledRequestBytes() float64 {
	b := 0.0
	for op, share := range in.Mix {
		b += share * math.Max(pubsubMinRequestBytes, measuredShapes[in.Format][op].Bytes(in.RowBytes)+messageMetaBytes)
	}
	return b
}

// FunctionInstances: enough vCPU for the events at the target utilisation, enough slots for the
// requests in flight, never fewer than the minimum.
func (in Input) FunctionInstances() int {
	perSec := in.EventsPerHour / 3600
	byCPU := math.Ceil(perSec * in.CPUMicros / 1e6 / (in.VCPU * in.TargetUtil))
	byConc := math.Ceil(perSec * in.LatencyMs / 1000 / float64(in.Concurrency))
	return max(in.MinInstances, int(byCPU), int(byConc))
}

// SamplesPerTableExport is how many samples one instance exports per table and interval, as
// Managed Service for Prometheus counts them (a histogram: one per bucket incl. +Inf, _sum, _count —
// the Prometheus exposition's count, an upper bound if distributions are billed as fewer). Series on
// the success path (function/apply/metrics.go):
//
//	cloudsql_cache.events           counter   table×op×outcome×reason: ~4 (c/u/d applied, 1 other)
//	cloudsql_cache.apply.duration   histogram table×op×outcome: 3 × (15 bounds + 3)
//	cloudsql_cache.replication_lag  histogram table×op: 3 × (16 bounds + 3)
//	cloudsql_cache.delivery.delay   histogram table: 1 × (16 + 3)
//	cloudsql_cache.delivery.attempts histogram table×outcome: 1 × (8 + 3)
//	cloudsql_cache.source.position, .commit_time  gauges: 2
//	cloudsql_cache.redis.errors     none while Redis is healthy
const SamplesPerTableExport = 4 + 3*18 + 3*19 + 19 + 11 + 2

// Estimate computes the monthly cost.
func (in Input) Estimate() Estimate {
	var e Estimate
	add := func(c, u string, usd float64) {
		e.Lines = append(e.Lines, Line{c, u, usd})
		e.Total += usd
	}
	const tib, gib = float64(1 << 40), float64(1 << 30)
	msgs := in.EventsPerHour * hoursPerMonth
	monthSec := float64(hoursPerMonth * 3600)

	// Pub/Sub throughput: every message is published once and pushed once to each subscription
	// (redeliveries ignored).
	subs := float64(in.SubscriptionsPerTopic)
	thr := msgs * (1 + subs) * in.BilledRequestBytes()
	add("Pub/Sub throughput", fmt.Sprintf("%s msgs × (publish + %g push) × %.0f B = %.2f TiB",
		count(msgs), subs, in.BilledRequestBytes(), thr/tib), thr/tib*pubsubPerTiB)

	// Pub/Sub storage: a topic with retention keeps every message once for it, however many
	// subscriptions it has; a subscription retaining acknowledged messages keeps its own copy for
	// AckedRetention. The unacknowledged backlog is ~nothing (the function keeping up; Pub/Sub bills it
	// only past 24 hours).
	stored := in.EventsPerHour * in.Retention.Hours() * in.MessageBytes() / gib
	add("Pub/Sub topic retention (repair_by_seek)", fmt.Sprintf("%.0f GiB kept %s, once per topic", stored, in.Retention),
		stored*pubsubStoragePerGiBMon)
	acked := subs * in.EventsPerHour * in.AckedRetention.Hours() * in.MessageBytes() / gib
	add("Pub/Sub subscriptions' acknowledged messages", fmt.Sprintf("%.0f GiB kept %s, per subscription", acked, in.AckedRetention),
		acked*pubsubStoragePerGiBMon)

	// Apply function: instance-based billing, so every instance is billed all month.
	n := in.FunctionInstances()
	e.Instances = n
	if n > in.MaxInstances {
		e.Warnings = append(e.Warnings, fmt.Sprintf(
			"%d function instances needed, more than -max-instances %d: raise function_max_instances or the backlog grows",
			n, in.MaxInstances))
	}
	vcpuS := float64(n) * in.VCPU * monthSec
	gibS := float64(n) * in.MemoryMiB / 1024 * monthSec
	add("Cloud Run: apply function", fmt.Sprintf("%d × (%g vCPU, %g MiB) always on; %s requests at $0",
		n, in.VCPU, in.MemoryMiB, count(msgs)),
		vcpuS*runVCPUSecond+gibS*runGiBSecond+msgs/1e6*runPerMRequests)

	// Debezium worker pool: one instance, always on.
	add("Cloud Run: Debezium worker pool", fmt.Sprintf("1 × (%g vCPU, %g GiB) always on", in.DebeziumVCPU, in.DebeziumMemGiB),
		monthSec*(in.DebeziumVCPU*runVCPUSecond+in.DebeziumMemGiB*runGiBSecond))

	// Memorystore: billed on provisioned capacity; the cluster engines per node (primaries and replicas).
	if in.RedisEngine == "redis" {
		rate, band := redisGBHour(in.RedisTier, in.RedisGB)
		add("Memorystore", fmt.Sprintf("for Redis %s %g GB, %s, $%.3f/GB-h", in.RedisTier, in.RedisGB, band, rate),
			in.RedisGB*rate*hoursPerMonth)
	} else {
		nodes := in.Nodes()
		add("Memorystore", fmt.Sprintf("for %s: %d shards × %d nodes = %d %s (%g GB each) × $%g/node-h",
			clusterProduct[in.RedisEngine], in.Shards, 1+in.Replicas, nodes, in.NodeType, clusterNodeGB[in.NodeType], in.NodeUSDHour),
			float64(nodes)*in.NodeUSDHour*hoursPerMonth)
	}

	// Cloud Monitoring: the function's custom metrics (cumulative: every series every interval).
	samples := float64(n*in.Tables*SamplesPerTableExport) * monthSec / in.MetricInterval.Seconds()
	add("Cloud Monitoring (Prometheus samples)", fmt.Sprintf("%d inst × %d tables × %d samples / %s = %s samples",
		n, in.Tables, SamplesPerTableExport, in.MetricInterval, count(samples)), prometheusCost(samples))

	add("Cloud Logging", fmt.Sprintf("%g GiB (no per-event logs)", in.LogGiB), in.LogGiB*loggingPerGiB)
	return e
}

// Nodes is how many nodes a cluster engine bills: every shard's primary and replicas.
func (in Input) Nodes() int { return in.Shards * (1 + in.Replicas) }

// count formats a large number with an SI-like suffix.
func count(x float64) string {
	switch {
	case x >= 1e12:
		return fmt.Sprintf("%.2fT", x/1e12)
	case x >= 1e9:
		return fmt.Sprintf("%.2fG", x/1e9)
	case x >= 1e6:
		return fmt.Sprintf("%.1fM", x/1e6)
	case x >= 1e3:
		return fmt.Sprintf("%.1fk", x/1e3)
	}
	return fmt.Sprintf("%.0f", x)
}

func writeEstimate(w io.Writer, in Input) {
	e := in.Estimate()
	fmt.Fprintf(w, "Estimate for %s events/hour, %g B rows, %d tables (%s, %s list prices, %d h/month)\n\n",
		count(in.EventsPerHour), in.RowBytes, in.Tables, priceRegion, priceDate, hoursPerMonth)
	fmt.Fprintln(w, "| component | usage | monthly USD |")
	fmt.Fprintln(w, "|---|---|---:|")
	for _, l := range e.Lines {
		fmt.Fprintf(w, "| %s | %s | %.2f |\n", l.Component, l.Usage, l.USD)
	}
	fmt.Fprintf(w, "| **total** | | **%.2f** |\n", e.Total)
	for _, s := range e.Warnings {
		fmt.Fprintf(w, "\nwarning: %s\n", s)
	}
}

// tableRates are the README table's rates.
var tableRates = []float64{1e6, 10e6, 100e6}

// scenario is one column pair of the README table.
type scenario struct {
	name      string
	format    string
	retention time.Duration
	acked     time.Duration // the subscriptions' retention of acknowledged messages
}

// before is the repair of issue 13 as it was first built (the subscriptions keep acknowledged messages
// 7 days); shipped is the Terraform defaults now (the topics keep every message for what the repair
// needs, nothing is kept per subscription).
var (
	week    = 7 * 24 * time.Hour
	before  = scenario{"before", "compact", 0, week}
	shipped = scenario{"new", "compact", repairRetention, 0}
)

func (sc scenario) apply(in Input) Input {
	in.Format, in.Retention, in.AckedRetention = sc.format, sc.retention, sc.acked
	return in
}

func (sc scenario) String() string {
	r := "no topic retention"
	switch {
	case sc.retention == repairRetention:
		r = fmt.Sprintf("topic retention %.0f s (repair_by_seek's default)", sc.retention.Seconds())
	case sc.retention > 0:
		r = fmt.Sprintf("%s of topic retention", days(sc.retention))
	}
	a := ", no acknowledged messages kept"
	if sc.acked > 0 {
		a = fmt.Sprintf(", acknowledged messages kept %s per subscription", days(sc.acked))
	}
	return sc.format + " format, " + r + a
}

func days(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

// writeTable prints the repair's first design and the shipped figures side by side for each rate,
// then the totals of every format and retention combination, then the cluster engines.
func writeTable(w io.Writer, base Input) {
	base.RowBytes, base.Tables = 1024, 10
	type col struct {
		head string
		est  Estimate
	}
	var cols []col
	for _, r := range tableRates {
		for _, sc := range []scenario{before, shipped} {
			in := sc.apply(base)
			in.EventsPerHour = r
			cols = append(cols, col{fmt.Sprintf("%s/h %s", count(r), sc.name), in.Estimate()})
		}
	}
	header, sep := "| component |", "|---|"
	for _, c := range cols {
		header += " " + c.head + " |"
		sep += "---:|"
	}
	fmt.Fprintln(w, header)
	fmt.Fprintln(w, sep)
	for i, l := range cols[0].est.Lines {
		row := "| " + l.Component + " |"
		for _, c := range cols {
			row += fmt.Sprintf(" $%.0f |", c.est.Lines[i].USD)
		}
		fmt.Fprintln(w, row)
	}
	row := "| **total / month** |"
	for _, c := range cols {
		row += fmt.Sprintf(" **$%.0f** |", c.est.Total)
	}
	fmt.Fprintln(w, row)
	row = "| function instances |"
	for _, c := range cols {
		row += fmt.Sprintf(" %d |", c.est.Instances)
	}
	fmt.Fprintln(w, row)
	fmt.Fprintln(w)
	fmt.Fprintf(w, "before: %s (issue 13's first repair); new: %s (the Terraform defaults).\n\n", before, shipped)

	fmt.Fprintln(w, "| format, topic retention, subscriptions | bytes/message | 1M/h | 10M/h | 100M/h |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	for _, sc := range []scenario{{"", "full", week, 0}, {"", "full", 0, 0}, {"", "full", 0, week}, {"", "full", repairRetention, 0},
		{"", "compact", week, 0}, {"", "compact", 0, 0}, {"", "compact", 0, week}, {"", "compact", repairRetention, 0}} {
		in := sc.apply(base)
		row := fmt.Sprintf("| %s | %.0f |", sc, in.MessageBytes())
		for _, r := range tableRates {
			in.EventsPerHour = r
			row += fmt.Sprintf(" $%.0f |", in.Estimate().Total)
		}
		fmt.Fprintln(w, row)
	}
	fmt.Fprintln(w)
	writeClusterRows(w, shipped.apply(base))
	fmt.Fprintln(w)
	for _, a := range assumptions(shipped.apply(base)) {
		fmt.Fprintln(w, "- "+a)
	}
	for _, c := range cols {
		for _, s := range c.est.Warnings {
			fmt.Fprintln(w, "- warning: "+c.head+": "+s)
		}
	}
}

// writeClusterRows prices the cluster engines (redis_engine redis_cluster, valkey) per node type with
// the module's default shape: nodes × 730 h × the node price, which is the reader's to supply
// (prices.go: not found), and what everything else costs beside them.
func writeClusterRows(w io.Writer, base Input) {
	in := base
	in.RedisEngine, in.NodeUSDHour = "redis_cluster", 1 // any price: the Memorystore line is left out below
	fmt.Fprintf(w, "| redis_engine redis_cluster or valkey: redis_node_type | capacity of %d shards | nodes (%d shards × %d) | Memorystore / month |\n", in.Shards, in.Shards, 1+in.Replicas)
	fmt.Fprintln(w, "|---|---:|---:|---:|")
	for _, nt := range clusterNodeTypes() {
		fmt.Fprintf(w, "| %s | %.1f GB | %d | %d × P |\n", nt, float64(in.Shards)*clusterNodeGB[nt], in.Nodes(), in.Nodes()*hoursPerMonth)
	}
	rest := "\nEverything else beside a cluster engine (the new design):"
	for i, r := range tableRates {
		in.EventsPerHour = r
		e := in.Estimate()
		usd := e.Total
		for _, l := range e.Lines {
			if l.Component == "Memorystore" {
				usd -= l.USD
			}
		}
		if i > 0 {
			rest += ","
		}
		rest += fmt.Sprintf(" $%.0f at %s/h", usd, count(r))
	}
	fmt.Fprintf(w, "%s. P: the node type's list price per node-hour in your region (%s, %s): %s; `-redis-engine redis_cluster -node-type … -node-usd-hour P` prices one.\n",
		rest, clusterPricingPage["redis_cluster"], clusterPricingPage["valkey"], clusterPriceStatus)
}

func full(in Input) Input { in.Format = "full"; return in }

func assumptions(in Input) []string {
	return []string{
		fmt.Sprintf("%s list prices read %s (`cmd/costmodel/prices.go`, with sources; Memorystore, Prometheus-sample and Cloud Run memory prices unconfirmed there); %d h/month; no free tiers, no committed-use discounts; Cloud SQL excluded.", priceRegion, priceDate, hoursPerMonth),
		fmt.Sprintf("Rows of %g B, %d tables, op mix %s; a message weighs what real Debezium Server 3.6.1 published for the ~1 KB-row fixture table in each format (`cmd/costmodel/shapes.go`, from testdata/debezium/compact): %.0f B in the %s format here (the full format: %.0f B), plus %d B of message id and publish time, billed at max(1000 B, size) per publish and per push request (one message per request: an upper bound for publishes).", in.RowBytes, in.Tables, in.Mix, in.MessageBytes(), in.Format, full(in).MessageBytes(), messageMetaBytes),
		fmt.Sprintf("Topic retention (topic_message_retention_duration) stores every message once per topic for its duration: with repair_by_seek (the default) the module sizes it to %.0f s (the ONE_HOUR RDB snapshot period, the 10m repair_seek_margin, the 5s watch interval, an hour for Memorystore to recover, a day to fix a failing repair). Acknowledged messages a subscription retains (-acked-retention; issue 13's first repair kept them 7 days) are billed per subscription, %d per topic here; the function keeping up, no unacknowledged backlog; no redeliveries.", repairRetention.Seconds(), in.SubscriptionsPerTopic),
		fmt.Sprintf("Function: %g µs CPU per event (`go run ./cmd/benchapply`), instances = ceil(events/s × CPU / (%g vCPU × %.0f%%)), at least %d (function_min_instances) and enough for %g ms requests at concurrency %d; CPU always allocated (instance-based billing: no request fee), %g MiB each.", in.CPUMicros, in.VCPU, in.TargetUtil*100, in.MinInstances, in.LatencyMs, in.Concurrency, in.MemoryMiB),
		fmt.Sprintf("Debezium: one worker-pool instance, %g vCPU and %g GiB, always on, priced as instance-based Cloud Run.", in.DebeziumVCPU, in.DebeziumMemGiB),
		fmt.Sprintf("Memorystore for Redis: %s, %g GB (redis_tier, redis_memory_size_gb), whatever the rate: size it for the data (`make memory`). The cluster engines: nodes = shards × (1 + replicas), node capacities from Memorystore's node specification pages; their node prices are not in prices.go.", in.RedisTier, in.RedisGB),
		fmt.Sprintf("Metrics: %d samples per table per instance every %s (histograms counted as buckets + _sum + _count); Cloud Run, Pub/Sub and Redis system metrics are free.", SamplesPerTableExport, in.MetricInterval),
		"Logging: no per-event logs on the success path, so ~0 (within the 50 GiB/project free allotment in any case).",
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	in := defaultInput()
	fs := flag.NewFlagSet("costmodel", flag.ContinueOnError)
	fs.SetOutput(stderr)
	table := fs.Bool("table", false, "print the README table for 1M, 10M and 100M events/hour (1 KB rows, 10 tables)")
	fs.Float64Var(&in.EventsPerHour, "events-per-hour", 0, "change events per hour (required unless -table)")
	fs.Float64Var(&in.RowBytes, "row-bytes", in.RowBytes, "average row JSON size in bytes")
	fs.IntVar(&in.Tables, "tables", in.Tables, "captured tables")
	fs.StringVar(&in.Format, "format", in.Format, "event_format: compact or full")
	mix := fs.String("op-mix", in.Mix.String(), "share of each op among the changes, e.g. u=0.7,c=0.2,d=0.1")
	fs.Float64Var(&in.CPUMicros, "cpu-us", in.CPUMicros, "function CPU per event in µs (go run ./cmd/benchapply)")
	fs.Float64Var(&in.TargetUtil, "target-util", in.TargetUtil, "CPU utilisation the function is sized for, (0,1]")
	fs.Float64Var(&in.LatencyMs, "latency-ms", in.LatencyMs, "push request duration in ms (concurrency bound)")
	fs.IntVar(&in.Concurrency, "concurrency", in.Concurrency, "function_concurrency")
	fs.Float64Var(&in.VCPU, "vcpu", in.VCPU, "function_cpu")
	fs.Float64Var(&in.MemoryMiB, "memory-mib", in.MemoryMiB, "function_memory in MiB")
	fs.IntVar(&in.MinInstances, "min-instances", in.MinInstances, "function_min_instances")
	fs.IntVar(&in.MaxInstances, "max-instances", in.MaxInstances, "function_max_instances (a warning above it)")
	fs.Float64Var(&in.DebeziumVCPU, "debezium-vcpu", in.DebeziumVCPU, "debezium_cpu")
	fs.Float64Var(&in.DebeziumMemGiB, "debezium-memory-gib", in.DebeziumMemGiB, "debezium_memory in GiB")
	fs.Float64Var(&in.RedisGB, "redis-gb", in.RedisGB, "redis_memory_size_gb")
	fs.StringVar(&in.RedisTier, "redis-tier", in.RedisTier, "redis_tier: STANDARD_HA or BASIC")
	fs.StringVar(&in.RedisEngine, "redis-engine", in.RedisEngine, "redis_engine: redis, redis_cluster or valkey")
	fs.StringVar(&in.NodeType, "node-type", in.NodeType, "redis_node_type (redis_cluster, valkey): "+strings.Join(clusterNodeTypes(), ", "))
	fs.IntVar(&in.Shards, "shards", in.Shards, "redis_shard_count (redis_cluster, valkey)")
	fs.IntVar(&in.Replicas, "replicas", in.Replicas, "redis_replica_count (redis_cluster, valkey)")
	fs.Float64Var(&in.NodeUSDHour, "node-usd-hour", in.NodeUSDHour, "list price of one node per hour in your region (required with redis_cluster and valkey)")
	fs.DurationVar(&in.Retention, "retention", in.Retention, "topic message retention (topic_message_retention_duration; the default is repair_by_seek's; 0: none)")
	fs.DurationVar(&in.AckedRetention, "acked-retention", in.AckedRetention, "how long each push subscription keeps acknowledged messages (0, the module's default; 168h: issue 13's first repair)")
	fs.IntVar(&in.SubscriptionsPerTopic, "subscriptions-per-topic", in.SubscriptionsPerTopic, "subscriptions on each table topic (the module: 1)")
	fs.DurationVar(&in.MetricInterval, "metrics-interval", in.MetricInterval, "METRICS_EXPORT_INTERVAL")
	fs.Float64Var(&in.LogGiB, "log-gib", in.LogGiB, "logs per month in GiB")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	m, err := ParseOpMix(*mix)
	if err != nil {
		return fmt.Errorf("-op-mix: %w", err)
	}
	in.Mix = m
	if *table {
		check := in
		check.EventsPerHour = tableRates[0]
		if err := check.Validate(); err != nil {
			return err
		}
		writeTable(stdout, in)
		return nil
	}
	if err := in.Validate(); err != nil {
		return err
	}
	writeEstimate(stdout, in)
	return nil
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "costmodel:", err)
		}
		os.Exit(2)
	}
}
