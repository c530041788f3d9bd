package function

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/change"
	"github.com/cloudsql-cache/cloudsql-cache/push"
)

// NackDeadLetters is the DEAD_LETTER_TOPIC value that answers bad messages with 400 instead of
// publishing them, leaving them to the subscription's own dead-letter policy.
const NackDeadLetters = "nack"

// Config is the function's configuration, read from the environment by ConfigFromEnv.
type Config struct {
	RedisAddr     string
	RedisUsername string
	RedisPassword string
	RedisDB       int
	RedisTLS      bool
	RedisCAFile   string
	RedisTimeout  time.Duration

	// DeadLetterTopic is "projects/<project>/topics/<topic>", or NackDeadLetters.
	DeadLetterTopic string

	Policy       change.Config
	TombstoneTTL time.Duration

	ApplyTimeout time.Duration
	MaxBodyBytes int64
}

// Env lists every variable ConfigFromEnv reads, with its default; the README's configuration
// reference and the Terraform module's tests are held to it.
var Env = []struct{ Name, Default, Help string }{
	{"REDIS_ADDR", "", "host:port of Redis (Memorystore: the instance's host and port 6378 with TLS). Required."},
	{"REDIS_USERNAME", "", "ACL user name, if any."},
	{"REDIS_PASSWORD", "", "AUTH string (Memorystore: the instance's auth string, from Secret Manager)."},
	{"REDIS_DB", "0", "Database number."},
	{"REDIS_TLS", "false", "true to connect with TLS (Memorystore in-transit encryption)."},
	{"REDIS_CA_FILE", "", "PEM file of the CA that signed the server's certificate (Memorystore: the server CA); empty uses the system roots."},
	{"REDIS_TIMEOUT", "1s", "Dial, read and write timeout of one Redis command."},
	{"DEAD_LETTER_TOPIC", "", "projects/<project>/topics/<topic> for permanently bad messages, or \"nack\" to answer them 400 and let the subscription's dead-letter policy take them. Required."},
	{"CACHE_TABLES", "", "Comma-separated db.table include-list; empty caches every table Debezium sends."},
	{"CACHE_EXCLUDE_COLUMNS", "", "Comma-separated db.table.column list never written to the cache."},
	{"CACHE_KEY_TEMPLATE", change.DefaultKeyTemplate, "Key of every table without its own template."},
	{"CACHE_KEY_TEMPLATES", "", "Comma-separated db.table=template overrides."},
	{"CACHE_VERSION_COLUMNS", "", "Comma-separated db.table=column: order that table's changes by the column first."},
	{"CACHE_VERSION_EPOCH", "0", "First component of every version; raise it when the database is restored or replaced."},
	{"CACHE_TOMBSTONE_TTL", "168h", "How long a deleted row's tombstone is kept (0: forever). Must outlast redelivery and replay."},
	{"APPLY_TIMEOUT", "10s", "Upper bound on handling one message."},
	{"MAX_BODY_BYTES", strconv.Itoa(push.DefaultMaxBody), "Largest push request accepted."},
}

// ConfigFromEnv reads and validates the configuration. Its error lists every problem, each saying which
// variable to fix and how.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	get := func(name string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		for _, e := range Env {
			if e.Name == name {
				return e.Default
			}
		}
		return ""
	}
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	duration := func(name string) time.Duration {
		d, err := time.ParseDuration(get(name))
		if err != nil || d < 0 {
			bad(name, "%q is not a non-negative duration such as 500ms, 10s or 168h", get(name))
		}
		return d
	}
	list := func(name string) []string {
		var out []string
		for _, s := range strings.Split(get(name), ",") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	pairs := func(name string) map[string]string {
		m := map[string]string{}
		for _, s := range list(name) {
			k, v, ok := strings.Cut(s, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			if !ok || k == "" || v == "" {
				bad(name, "%q is not db.table=value", s)
				continue
			}
			if _, dup := m[k]; dup {
				bad(name, "%s is given twice", k)
			}
			m[k] = v
		}
		return m
	}

	c := Config{
		RedisAddr:       get("REDIS_ADDR"),
		RedisUsername:   getenv("REDIS_USERNAME"),
		RedisPassword:   getenv("REDIS_PASSWORD"),
		RedisCAFile:     get("REDIS_CA_FILE"),
		RedisTimeout:    duration("REDIS_TIMEOUT"),
		DeadLetterTopic: get("DEAD_LETTER_TOPIC"),
		TombstoneTTL:    duration("CACHE_TOMBSTONE_TTL"),
		ApplyTimeout:    duration("APPLY_TIMEOUT"),
		Policy: change.Config{
			Tables:         list("CACHE_TABLES"),
			ExcludeColumns: list("CACHE_EXCLUDE_COLUMNS"),
			KeyTemplate:    get("CACHE_KEY_TEMPLATE"),
			KeyTemplates:   pairs("CACHE_KEY_TEMPLATES"),
			VersionColumns: pairs("CACHE_VERSION_COLUMNS"),
		},
	}
	if c.RedisAddr == "" {
		bad("REDIS_ADDR", "required: set it to the Redis host:port (for Memorystore with in-transit encryption, <host>:6378 and REDIS_TLS=true)")
	} else if i := strings.LastIndexByte(c.RedisAddr, ':'); i <= 0 || i == len(c.RedisAddr)-1 {
		bad("REDIS_ADDR", "%q is not host:port", c.RedisAddr)
	}
	var err error
	if c.RedisDB, err = strconv.Atoi(get("REDIS_DB")); err != nil || c.RedisDB < 0 {
		bad("REDIS_DB", "%q is not a database number (0, 1, …)", get("REDIS_DB"))
	}
	if c.RedisTLS, err = strconv.ParseBool(get("REDIS_TLS")); err != nil {
		bad("REDIS_TLS", "%q is not true or false", get("REDIS_TLS"))
	}
	if c.RedisCAFile != "" {
		if !c.RedisTLS {
			bad("REDIS_CA_FILE", "is set but REDIS_TLS is not true")
		} else if _, err := os.Stat(c.RedisCAFile); err != nil {
			bad("REDIS_CA_FILE", "cannot read the CA file: %v", err)
		}
	}
	if c.RedisTimeout == 0 {
		bad("REDIS_TIMEOUT", "must be more than 0, or a dead Redis would hang every delivery")
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
	if c.Policy.Epoch, err = strconv.ParseUint(get("CACHE_VERSION_EPOCH"), 10, 64); err != nil {
		bad("CACHE_VERSION_EPOCH", "%q is not a non-negative integer", get("CACHE_VERSION_EPOCH"))
	}
	if c.MaxBodyBytes, err = strconv.ParseInt(get("MAX_BODY_BYTES"), 10, 64); err != nil || c.MaxBodyBytes < 1024 {
		bad("MAX_BODY_BYTES", "%q is not a byte count of at least 1024", get("MAX_BODY_BYTES"))
	}
	if len(errs) == 0 {
		if _, err := change.NewPolicy(c.Policy); err != nil {
			errs = append(errs, fmt.Errorf("CACHE_* table settings: %w", err))
		}
	}
	if len(errs) > 0 {
		return Config{}, fmt.Errorf("invalid configuration:\n%w", errors.Join(errs...))
	}
	return c, nil
}
