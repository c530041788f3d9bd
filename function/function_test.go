package function_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/function"
	"github.com/cloudsql-cache/cloudsql-cache/function/push"
)

func envFunc(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFromEnv(t *testing.T) {
	c, err := function.ConfigFromEnv(envFunc(map[string]string{
		"REDIS_ADDR":            "10.0.0.3:6378",
		"DEAD_LETTER_TOPIC":     "projects/p/topics/dl",
		"CACHE_TABLES":          "inventory.customers, inventory.orders",
		"CACHE_EXCLUDE_COLUMNS": "inventory.customers.email",
		"CACHE_KEY_TEMPLATES":   "inventory.orders=order:{id}",
		"CACHE_VERSION_EPOCH":   "3",
		"CACHE_TOMBSTONE_TTL":   "48h",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.Timeout != time.Second || c.ApplyTimeout != 10*time.Second || c.TombstoneTTL != 48*time.Hour ||
		c.Policy.Epoch != 3 || len(c.Policy.Tables) != 2 || c.Policy.KeyTemplates["inventory.orders"] != "order:{id}" ||
		c.MaxBodyBytes != push.DefaultMaxBody {
		t.Fatalf("config %+v", c)
	}

	_, err = function.ConfigFromEnv(envFunc(map[string]string{
		"REDIS_TLS":           "yes please",
		"REDIS_TIMEOUT":       "soon",
		"CACHE_VERSION_EPOCH": "-1",
		"CACHE_KEY_TEMPLATES": "inventory.orders",
		"CACHE_TOMBSTONE_TTL": "-5s",
		"MAX_BODY_BYTES":      "12",
		"DEAD_LETTER_TOPIC":   "dl",
		"REDIS_DB":            "x",
		"REDIS_WAIT_REPLICAS": "many",
		// Removed: the function refuses to start rather than order tables differently than configured.
		"CACHE_VERSION_COLUMNS": "inventory.orders=updated_at",
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"REDIS_ADDR", "REDIS_TLS", "REDIS_TIMEOUT", "CACHE_VERSION_EPOCH", "CACHE_KEY_TEMPLATES", "CACHE_TOMBSTONE_TTL", "MAX_BODY_BYTES", "DEAD_LETTER_TOPIC", "REDIS_DB", "CACHE_VERSION_COLUMNS", "REDIS_WAIT_REPLICAS"} {
		if !strings.Contains(err.Error(), name+": ") {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	// WAIT's answer comes back under the read timeout: a wait as long as REDIS_TIMEOUT could never be
	// answered.
	_, err = function.ConfigFromEnv(envFunc(map[string]string{"REDIS_ADDR": "r:6379", "DEAD_LETTER_TOPIC": "nack", "REDIS_WAIT_REPLICAS": "1", "REDIS_WAIT_TIMEOUT": "1s"}))
	if err == nil || !strings.Contains(err.Error(), "REDIS_WAIT_TIMEOUT: ") {
		t.Fatalf("a wait as long as REDIS_TIMEOUT: %v", err)
	}
	c, err = function.ConfigFromEnv(envFunc(map[string]string{"REDIS_ADDR": "r:6379", "DEAD_LETTER_TOPIC": "nack", "REDIS_WAIT_REPLICAS": "1"}))
	if err != nil || c.WaitReplicas != 1 || c.WaitTimeout != 500*time.Millisecond {
		t.Fatalf("REDIS_WAIT_REPLICAS=1: %+v %v", c, err)
	}
	// On a cluster the watcher would watch one node: refused. The replica wait is the written shard's.
	_, err = function.ConfigFromEnv(envFunc(map[string]string{"REDIS_MODE": "cluster", "REDIS_ADDR": "a:6379,b:6379", "DEAD_LETTER_TOPIC": "nack",
		"REDIS_WAIT_REPLICAS": "1", "REPAIR_SUBSCRIPTIONS": "projects/p/subscriptions/s"}))
	if err == nil || strings.Contains(err.Error(), "REDIS_WAIT_REPLICAS") || !strings.Contains(err.Error(), "REPAIR_SUBSCRIPTIONS: must be empty with REDIS_MODE=cluster") {
		t.Fatalf("a replica wait and a repair on a cluster: %v", err)
	}
	if c, err = function.ConfigFromEnv(envFunc(map[string]string{"REDIS_MODE": "cluster", "REDIS_ADDR": "a:6379,b:6379", "DEAD_LETTER_TOPIC": "nack", "REDIS_WAIT_REPLICAS": "1"})); err != nil || c.WaitReplicas != 1 {
		t.Fatalf("a replica wait on a cluster: %+v %v", c, err)
	}
	if c, err = function.ConfigFromEnv(envFunc(map[string]string{"REDIS_MODE": "cluster", "REDIS_ADDR": "a:6379,b:6379", "DEAD_LETTER_TOPIC": "nack"})); err != nil {
		t.Fatalf("a cluster with the defaults: %v", err)
	}
	_, err = function.ConfigFromEnv(envFunc(map[string]string{"REDIS_ADDR": "r:6379", "DEAD_LETTER_TOPIC": "nack", "CACHE_KEY_TEMPLATE": "{pk}"}))
	if err == nil || !strings.Contains(err.Error(), "CACHE_") {
		t.Fatalf("bad template: %v", err)
	}
}

// Env is the contract with the README and the Terraform module: it must list exactly the variables
// the configuration code reads.
func TestEnvListsEveryVariableRead(t *testing.T) {
	var src []byte
	for _, f := range []string{"config.go", filepath.Join("..", "redisenv", "redisenv.go"), filepath.Join("..", "tablepolicy", "env.go")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?:get|getenv|duration|list|pairs|bad)\("([A-Z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		read[m[1]] = true
	}
	listed := map[string]bool{}
	for _, e := range function.Vars() {
		listed[e.Name] = true
	}
	var missing, extra []string
	for n := range read {
		if !listed[n] {
			missing = append(missing, n)
		}
	}
	for n := range listed {
		if !read[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("read but not in Env: %v; in Env but not read: %v", missing, extra)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for n := range listed {
		if !bytes.Contains(readme, []byte("`"+n+"`")) {
			t.Errorf("README.md does not document %s", n)
		}
	}
}
