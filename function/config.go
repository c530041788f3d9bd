package function

import (
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/envvar"
	"github.com/cloudsql-cache/cloudsql-cache/function/push"
	"github.com/cloudsql-cache/cloudsql-cache/function/telemetry"
	"github.com/cloudsql-cache/cloudsql-cache/redisenv"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// NackDeadLetters is the DEAD_LETTER_TOPIC value that answers bad messages with 400 instead of
// publishing them, leaving them to the subscription's own dead-letter policy.
const NackDeadLetters = "nack"

// Config is the function's configuration, read from the environment by ConfigFromEnv.
type Config struct {
	Redis redisenv.Config

	// DeadLetterTopic is "projects/<project>/topics/<topic>", or NackDeadLetters.
	DeadLetterTopic string

	Policy       tablepolicy.Config
	TombstoneTTL time.Duration
	// InvalidationChannel is where every changed key is published for the read path's in-process
	// caches; "" publishes nothing.
	InvalidationChannel string

	// WaitReplicas is how many replicas must confirm a message's writes before it is acknowledged (0:
	// none), each wait bounded by WaitTimeout.
	WaitReplicas int
	WaitTimeout  time.Duration

	// WatchInterval is how often Redis is checked for restarts, failovers and lost writes (0: never).
	WatchInterval time.Duration
	// RepairSubscriptions are the push subscriptions sought back past a loss (none: detect only).
	RepairSubscriptions []string
	// SeekMargin and SeekMax bound the repair's seek (losswatch.Options).
	SeekMargin, SeekMax time.Duration

	ApplyTimeout time.Duration
	MaxBodyBytes int64

	// Project is the Google Cloud project, for trace correlation in logs; "" on Cloud Run means: ask
	// the metadata server (telemetry.ProjectID).
	Project string

	// Metrics says where the OpenTelemetry metrics go.
	Metrics telemetry.Config
}

// Vars returns every variable ConfigFromEnv reads, with its default; the README's configuration
// reference and the Terraform module's tests are held to it.
func Vars() []envvar.Var {
	vars := append(redisenv.Vars(), tablepolicy.Vars()...)
	return append(vars, []envvar.Var{
		{Name: "DEAD_LETTER_TOPIC", Default: "", Help: "projects/<project>/topics/<topic> for permanently bad messages, or \"nack\" to answer them 400 and let the subscription's dead-letter policy take them. Required."},
		{Name: "CACHE_TOMBSTONE_TTL", Default: "168h", Help: "How long a deleted row's tombstone is kept (0: forever). Must outlast redelivery and replay."},
		{Name: "CACHE_INVALIDATION_CHANNEL", Default: rowcache.DefaultInvalidationChannel, Help: "Redis pub/sub channel announcing every changed key to the read path's in-process (L1) caches; \"off\" publishes nothing."},
		{Name: "REDIS_WAIT_REPLICAS", Default: "0", Help: "Replicas that must hold a message's writes (Redis WAIT) before it is acknowledged; 0: acknowledged once the primary has them. 1 on Memorystore's standard tier and on a cluster with replicas, whose replication is asynchronous (on a cluster: replicas of the shard that took the write)."},
		{Name: "REDIS_WAIT_TIMEOUT", Default: "500ms", Help: "How long a message waits for REDIS_WAIT_REPLICAS; then it is answered 503 and retried. Less than REDIS_TIMEOUT."},
		{Name: "REDIS_WATCH_INTERVAL", Default: "5s", Help: "How often Redis is checked for a restart, a failover or lost writes (its run_id, a marker and a heartbeat key); 0 turns the check off."},
		{Name: "REPAIR_SUBSCRIPTIONS", Default: "", Help: "Comma-separated projects/<project>/subscriptions/<name>: the push subscriptions sought back past a loss Redis suffered, so Pub/Sub delivers their messages again (they need retain_acked_messages). Empty: losses are detected and alerted on, not repaired."},
		{Name: "REPAIR_SEEK_MARGIN", Default: "10m", Help: "How much earlier than the loss the subscriptions are sought to: the longest a change waits in Pub/Sub (retries) before it is applied."},
		{Name: "REPAIR_SEEK_MAX", Default: "168h", Help: "How far back Pub/Sub retains messages to replay (the topics' message_retention_duration; the Terraform module sets it): a loss that began earlier is reported (cloudsql_cache.repairs state beyond_retention), and still sought back to, so that the subscriptions' older unacknowledged messages stay."},
		{Name: "APPLY_TIMEOUT", Default: "10s", Help: "Upper bound on handling one message."},
		{Name: "MAX_BODY_BYTES", Default: strconv.Itoa(push.DefaultMaxBody), Help: "Largest push request accepted."},
		{Name: "GOOGLE_CLOUD_PROJECT", Default: "", Help: "Project of the traces that log lines are correlated with; empty: from the metadata server on Cloud Run."},
		{Name: "METRICS_EXPORTER", Default: telemetry.ExporterAuto, Help: "Where metrics are pushed: \"otlp\" (OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT), \"none\", or \"auto\" (otlp when an endpoint is set or on Cloud Run, else none)."},
		{Name: "OTEL_EXPORTER_OTLP_ENDPOINT", Default: "", Help: "OTLP/HTTP base URL (\"/v1/metrics\" is appended); empty: Google's Telemetry API, https://telemetry.googleapis.com, with Application Default Credentials. A collector sidecar: http://localhost:4318."},
		{Name: "METRICS_EXPORT_INTERVAL", Default: "60s", Help: "Interval between OTLP exports; at least 5s (Cloud Monitoring's per-series write limit)."},
		{Name: "METRICS_ADDR", Default: "", Help: "host:port on which /metrics is served in the Prometheus format (e.g. 127.0.0.1:9464); empty: not served."},
	}...)
}

// ConfigFromEnv reads and validates the configuration. Its error lists every problem, each saying which
// variable to fix and how.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := envvar.Lookup(Vars(), getenv)
	var problems envvar.Problems
	bad := problems.Add
	duration := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d < 0 {
			bad(name, "%q is not a non-negative duration such as 500ms, 10s or 168h", get(name))
		}
		return d
	}
	rc, err := redisenv.FromEnv(getenv)
	problems.AddErr(err)
	policy, err := tablepolicy.FromEnv(getenv)
	problems.AddErr(err)
	c := Config{
		Redis:               rc,
		DeadLetterTopic:     get("DEAD_LETTER_TOPIC"),
		TombstoneTTL:        duration("CACHE_TOMBSTONE_TTL"),
		InvalidationChannel: get("CACHE_INVALIDATION_CHANNEL"),
		ApplyTimeout:        duration("APPLY_TIMEOUT"),
		Policy:              policy,
	}
	c.Project = get("GOOGLE_CLOUD_PROJECT")
	c.Metrics = telemetry.Config{
		Exporter:       get("METRICS_EXPORTER"),
		OTLPEndpoint:   get("OTEL_EXPORTER_OTLP_ENDPOINT"),
		Interval:       duration("METRICS_EXPORT_INTERVAL"),
		PrometheusAddr: get("METRICS_ADDR"),
	}
	switch c.Metrics.Exporter {
	case telemetry.ExporterAuto, telemetry.ExporterOTLP, telemetry.ExporterNone:
	default:
		bad("METRICS_EXPORTER", "%q is not auto, otlp or none", c.Metrics.Exporter)
	}
	if e := c.Metrics.OTLPEndpoint; e != "" {
		if u, err := url.Parse(e); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("OTEL_EXPORTER_OTLP_ENDPOINT", "%q is not an http:// or https:// URL", e)
		}
	}
	if c.Metrics.Interval < 5*time.Second {
		bad("METRICS_EXPORT_INTERVAL", "must be at least 5s")
	}
	if a := c.Metrics.PrometheusAddr; a != "" {
		if _, _, err := net.SplitHostPort(a); err != nil {
			bad("METRICS_ADDR", "%q is not host:port", a)
		}
	}
	if n, err := strconv.Atoi(get("REDIS_WAIT_REPLICAS")); err != nil || n < 0 || n > 5 {
		// Memorystore for Redis has at most 5 read replicas.
		bad("REDIS_WAIT_REPLICAS", "%q is not a replica count from 0 to 5", get("REDIS_WAIT_REPLICAS"))
	} else {
		c.WaitReplicas = n
	}
	c.WaitTimeout = duration("REDIS_WAIT_TIMEOUT")
	if c.WaitReplicas > 0 {
		switch {
		case c.WaitTimeout < time.Millisecond:
			bad("REDIS_WAIT_TIMEOUT", "must be at least 1ms when REDIS_WAIT_REPLICAS is set (WAIT 0 would wait forever)")
		case rc.Timeout > 0 && c.WaitTimeout >= rc.Timeout:
			bad("REDIS_WAIT_TIMEOUT", "%v must be less than REDIS_TIMEOUT (%v), which bounds the reply that carries WAIT's answer", c.WaitTimeout, rc.Timeout)
		}
	}
	c.WatchInterval = duration("REDIS_WATCH_INTERVAL")
	c.SeekMargin = duration("REPAIR_SEEK_MARGIN")
	c.SeekMax = duration("REPAIR_SEEK_MAX")
	for _, sub := range strings.Split(get("REPAIR_SUBSCRIPTIONS"), ",") {
		if sub = strings.TrimSpace(sub); sub == "" {
			continue
		}
		p := strings.Split(sub, "/")
		if len(p) != 4 || p[0] != "projects" || p[1] == "" || p[2] != "subscriptions" || p[3] == "" {
			bad("REPAIR_SUBSCRIPTIONS", "%q is not projects/<project>/subscriptions/<subscription>", sub)
			continue
		}
		c.RepairSubscriptions = append(c.RepairSubscriptions, sub)
	}
	if rc.Mode == redisenv.ModeCluster && len(c.RepairSubscriptions) > 0 {
		// The watcher reads one node's run_id and keys: on a cluster it would say nothing about the
		// other shards. (REDIS_WAIT_REPLICAS works on a cluster: the WAIT goes to the primary that took
		// the write, rowcache.Store.)
		bad("REPAIR_SUBSCRIPTIONS", "must be empty with REDIS_MODE=cluster: the loss watcher does not run on a cluster yet")
	}
	if len(c.RepairSubscriptions) > 0 {
		switch {
		case c.WatchInterval == 0:
			bad("REDIS_WATCH_INTERVAL", "must be more than 0 when REPAIR_SUBSCRIPTIONS is set: nothing would notice a loss to repair")
		case c.SeekMargin == 0:
			bad("REPAIR_SEEK_MARGIN", "must be more than 0")
		case c.SeekMax < c.SeekMargin:
			bad("REPAIR_SEEK_MAX", "%v is less than REPAIR_SEEK_MARGIN (%v)", c.SeekMax, c.SeekMargin)
		}
	}
	if c.InvalidationChannel == "off" {
		c.InvalidationChannel = ""
	}
	if c.ApplyTimeout == 0 {
		bad("APPLY_TIMEOUT", "must be more than 0")
	}
	switch t := c.DeadLetterTopic; {
	case t == "":
		bad("DEAD_LETTER_TOPIC", "required: set it to projects/<project>/topics/<topic> so bad messages are preserved before they are acknowledged, or to %q to answer them 400 and rely on the subscription's dead-letter policy", NackDeadLetters)
	case t == NackDeadLetters:
	default:
		p := strings.Split(t, "/")
		if len(p) != 4 || p[0] != "projects" || p[1] == "" || p[2] != "topics" || p[3] == "" {
			bad("DEAD_LETTER_TOPIC", "%q is not projects/<project>/topics/<topic>", t)
		}
	}
	if c.MaxBodyBytes, err = strconv.ParseInt(get("MAX_BODY_BYTES"), 10, 64); err != nil || c.MaxBodyBytes < 1024 {
		bad("MAX_BODY_BYTES", "%q is not a byte count of at least 1024", get("MAX_BODY_BYTES"))
	}
	if err := problems.Err(); err != nil {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", err)
	}
	return c, nil
}
