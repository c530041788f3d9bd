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

	RedisGB   float64 // redis_memory_size_gb
	RedisTier string  // redis_tier

	Retention time.Duration // topic_message_retention_duration (0: topics keep no messages)
	// AckedRetention is how long the push subscriptions keep acknowledged messages (0: none): with
	// repair_by_seek (the default) they retain them for message_retention_duration, 7 days, so that the
	// function can seek back past a Redis loss, and Pub/Sub bills them as storage.
	AckedRetention time.Duration
	MetricInterval time.Duration // METRICS_EXPORT_INTERVAL
	LogGiB         float64       // logs per month
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
		Concurrency:    80,                 // function_concurrency = 80
		VCPU:           1,                  // function_cpu = "1"
		MemoryMiB:      512,                // function_memory = "512Mi"
		MinInstances:   1,                  // function_min_instances = 1
		MaxInstances:   20,                 // function_max_instances = 20
		DebeziumVCPU:   1,                  // debezium_cpu = "1" (terraform/debezium.tf: 1 instance, MANUAL scaling)
		DebeziumMemGiB: 2,                  // debezium_memory = "2Gi"
		RedisGB:        5,                  // redis_memory_size_gb = 5
		RedisTier:      "STANDARD_HA",      // redis_tier = "STANDARD_HA"
		Retention:      0,                  // topic_message_retention_duration = null
		AckedRetention: 7 * 24 * time.Hour, // repair_by_seek = true: retain_acked_messages for message_retention_duration = 7 days
		MetricInterval: 60 * time.Second,   // METRICS_EXPORT_INTERVAL default (function/config.go)
		LogGiB:         0,                  // no per-event logs on the success path
	}
}

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
	if in.RedisTier != "STANDARD_HA" && in.RedisTier != "BASIC" {
		bad("redis-tier", "must be STANDARD_HA or BASIC (got %q)", in.RedisTier)
	}
	if in.RedisGB < 1 || in.RedisGB > 300 {
		bad("redis-gb", "must be 1-300 (Memorystore for Redis) (got %v)", in.RedisGB)
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

	// Pub/Sub throughput: every message is published once and pushed once (redeliveries ignored).
	thr := msgs * 2 * in.BilledRequestBytes()
	add("Pub/Sub throughput", fmt.Sprintf("%s msgs × (publish + push) × %.0f B = %.2f TiB",
		count(msgs), in.BilledRequestBytes(), thr/tib), thr/tib*pubsubPerTiB)

	// Pub/Sub storage: the table topics keep every message for the retention; each message reaches one
	// push subscription, which keeps it after its acknowledgement for AckedRetention (repair_by_seek), and
	// otherwise ~nothing (the function keeping up, the unacknowledged backlog is small).
	stored := in.EventsPerHour * in.Retention.Hours() * in.MessageBytes() / gib
	add("Pub/Sub topic retention", fmt.Sprintf("%.0f GiB kept %s", stored, in.Retention),
		stored*pubsubStoragePerGiBMon)
	acked := in.EventsPerHour * in.AckedRetention.Hours() * in.MessageBytes() / gib
	add("Pub/Sub subscriptions' acknowledged messages (repair_by_seek)", fmt.Sprintf("%.0f GiB kept %s", acked, in.AckedRetention),
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

	// Memorystore: billed on provisioned capacity.
	rate, band := redisGBHour(in.RedisTier, in.RedisGB)
	add("Memorystore for Redis", fmt.Sprintf("%s %g GB, %s, $%.3f/GB-h", in.RedisTier, in.RedisGB, band, rate),
		in.RedisGB*rate*hoursPerMonth)

	// Cloud Monitoring: the function's custom metrics (cumulative: every series every interval).
	samples := float64(n*in.Tables*SamplesPerTableExport) * monthSec / in.MetricInterval.Seconds()
	add("Cloud Monitoring (Prometheus samples)", fmt.Sprintf("%d inst × %d tables × %d samples / %s = %s samples",
		n, in.Tables, SamplesPerTableExport, in.MetricInterval, count(samples)), prometheusCost(samples))

	add("Cloud Logging", fmt.Sprintf("%g GiB (no per-event logs)", in.LogGiB), in.LogGiB*loggingPerGiB)
	return e
}

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

// today is the deployment before issue 19 (the full format, 7 days of topic retention); shipped is the
// Terraform defaults now.
var (
	today   = scenario{"today", "full", 7 * 24 * time.Hour, 0}
	shipped = scenario{"new", "compact", 0, 7 * 24 * time.Hour}
)

func (sc scenario) apply(in Input) Input {
	in.Format, in.Retention, in.AckedRetention = sc.format, sc.retention, sc.acked
	return in
}

func (sc scenario) String() string {
	r := "no topic retention"
	if sc.retention > 0 {
		r = fmt.Sprintf("%s topic retention", sc.retention)
		if sc.retention%(24*time.Hour) == 0 {
			r = fmt.Sprintf("%d days of topic retention", sc.retention/(24*time.Hour))
		}
	}
	a := ", no acknowledged messages kept (repair_by_seek = false)"
	if sc.acked > 0 {
		a = fmt.Sprintf(", acknowledged messages kept %d days (repair_by_seek)", sc.acked/(24*time.Hour))
	}
	return sc.format + " format, " + r + a
}

// writeTable prints today's and the shipped figures side by side for each rate, then the totals of
// every format and retention combination.
func writeTable(w io.Writer, base Input) {
	base.RowBytes, base.Tables = 1024, 10
	type col struct {
		head string
		est  Estimate
	}
	var cols []col
	for _, r := range tableRates {
		for _, sc := range []scenario{today, shipped} {
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
	fmt.Fprintf(w, "today: %s; new: %s (the Terraform defaults).\n\n", today, shipped)

	fmt.Fprintln(w, "| format, topic retention, subscriptions | bytes/message | 1M/h | 10M/h | 100M/h |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|")
	week := 7 * 24 * time.Hour
	for _, sc := range []scenario{{"", "full", week, 0}, {"", "full", 0, 0}, {"", "compact", week, 0}, {"", "compact", 0, 0}, {"", "full", 0, week}, {"", "compact", 0, week}} {
		in := sc.apply(base)
		row := fmt.Sprintf("| %s | %.0f |", sc, in.MessageBytes())
		for _, r := range tableRates {
			in.EventsPerHour = r
			row += fmt.Sprintf(" $%.0f |", in.Estimate().Total)
		}
		fmt.Fprintln(w, row)
	}
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

func full(in Input) Input { in.Format = "full"; return in }

func assumptions(in Input) []string {
	return []string{
		fmt.Sprintf("%s list prices read %s (`cmd/costmodel/prices.go`, with sources; Memorystore, Prometheus-sample and Cloud Run memory prices unconfirmed there); %d h/month; no free tiers, no committed-use discounts; Cloud SQL excluded.", priceRegion, priceDate, hoursPerMonth),
		fmt.Sprintf("Rows of %g B, %d tables, op mix %s; a message weighs what real Debezium Server 3.6.1 published for the ~1 KB-row fixture table in each format (`cmd/costmodel/shapes.go`, from testdata/debezium/compact): %.0f B in the %s format here (the full format: %.0f B), plus %d B of message id and publish time, billed at max(1000 B, size) per publish and per push request (one message per request: an upper bound for publishes).", in.RowBytes, in.Tables, in.Mix, in.MessageBytes(), in.Format, full(in).MessageBytes(), messageMetaBytes),
		"Topic retention (topic_message_retention_duration) stores every message for its duration; with repair_by_seek (the default) each push subscription keeps its acknowledged messages for message_retention_duration (7 days), billed as storage the same way; the function keeping up, no unacknowledged backlog; no redeliveries.",
		fmt.Sprintf("Function: %g µs CPU per event (`go run ./cmd/benchapply`), instances = ceil(events/s × CPU / (%g vCPU × %.0f%%)), at least %d (function_min_instances) and enough for %g ms requests at concurrency %d; CPU always allocated (instance-based billing: no request fee), %g MiB each.", in.CPUMicros, in.VCPU, in.TargetUtil*100, in.MinInstances, in.LatencyMs, in.Concurrency, in.MemoryMiB),
		fmt.Sprintf("Debezium: one worker-pool instance, %g vCPU and %g GiB, always on, priced as instance-based Cloud Run.", in.DebeziumVCPU, in.DebeziumMemGiB),
		fmt.Sprintf("Memorystore: %s, %g GB (redis_tier, redis_memory_size_gb), whatever the rate: size it for the data (`make memory`).", in.RedisTier, in.RedisGB),
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
	fs.DurationVar(&in.Retention, "retention", in.Retention, "topic message retention (topic_message_retention_duration; 0: none)")
	fs.DurationVar(&in.AckedRetention, "acked-retention", in.AckedRetention, "how long the push subscriptions keep acknowledged messages (repair_by_seek: message_retention_duration; 0: repair_by_seek = false)")
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
