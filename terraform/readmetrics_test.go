package terraform_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
)

// The read path's metrics (readcache's, and its consistency sampler's) are exported by the services
// that read through readcache, not by the function. examples/rowservice is such a service: it is run
// here as a user would run it, with the sampler on and OTLP export to a local receiver, so that the
// dashboard's read-path tiles are held to what a real readcache service exports, exactly as the
// function's tiles are held to the function binary's export.

var (
	readOnce     sync.Once
	readExported []otlpMetric
	readErr      error
)

// readServiceMetrics runs examples/rowservice against MariaDB and Redis with READ_SAMPLE_FRACTION=1,
// reads a row (a miss, then a hit) and a missing row, waits until the sampler has judged the reads,
// scrapes /metrics, stops it with SIGTERM (its final OTLP export) and returns the OTLP metrics after
// checking /metrics served the same.
func readServiceMetrics(t *testing.T) []otlpMetric {
	t.Helper()
	readOnce.Do(func() {
		readErr = fmt.Errorf("running examples/rowservice failed in an earlier test (%s)", t.Name())
		readExported, readErr = runReadService(t)
	})
	if readErr != nil {
		t.Fatal(readErr)
	}
	return readExported
}

func runReadService(t *testing.T) ([]otlpMetric, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	bin := filepath.Join(sharedTemp, "rowservice")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./examples/rowservice")
	build.Dir = ".."
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build ./examples/rowservice: %w\n%s", err, out)
	}
	my := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := my.DB("shop")
	my.Exec(db, "CREATE TABLE products (sku VARCHAR(16) PRIMARY KEY, price DECIMAL(8,2) NOT NULL)",
		"INSERT INTO products VALUES ('tea', 4.5)")
	rs := redisserver.StartForTest(t, redisserver.Options{})
	recv := &otlpReceiver{}
	otlp := httptest.NewServer(recv)
	defer otlp.Close()
	port, err := freeport.Get()
	if err != nil {
		return nil, err
	}
	metricsPort, err := freeport.Get()
	if err != nil {
		return nil, err
	}
	metricsURL := "http://127.0.0.1:" + strconv.Itoa(metricsPort) + "/metrics"
	var logs bytes.Buffer
	svc, err := functionproc.Start(ctx, bin, port, []string{
		// No function runs here to publish its policy: ifpublished lets the service fill without one.
		"MYSQL_DSN=" + my.DSN(""), "REDIS_ADDR=" + rs.Addr(), "READ_POLICY_CHECK=ifpublished",
		"READ_SAMPLE_FRACTION=1", "READ_SAMPLE_MAX_PER_SECOND=1000000",
		"METRICS_ADDR=127.0.0.1:" + strconv.Itoa(metricsPort),
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + otlp.URL, "METRICS_EXPORT_INTERVAL=1h",
	}, &syncWriter{w: &logs})
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, logs.String())
	}
	defer svc.Kill()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	for _, r := range []struct {
		path  string
		code  int
		cache string
	}{
		{"/rows/shop.products/tea", 200, "database"}, // a miss, filled
		{"/rows/shop.products/tea", 200, "redis"},    // a hit
		{"/rows/shop.products/coffee", 404, ""},      // not found
	} {
		resp, err := http.Get(base + r.path)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != r.code || (r.cache != "" && resp.Header.Get("X-Cache") != r.cache) {
			return nil, fmt.Errorf("GET %s: %d from %q, want %d from %q\n%s", r.path, resp.StatusCode, resp.Header.Get("X-Cache"), r.code, r.cache, logs.String())
		}
	}
	var text []byte
	for deadline := time.Now().Add(time.Minute); ; {
		resp, err := http.Get(metricsURL)
		if err != nil {
			return nil, err
		}
		text, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if strings.Count(string(text), "cloudsql_cache_read_consistency_total{") >= 2 { // the database's and the redis read's
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the sampler judged no read within a minute:\n%s\n%s", text, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	svc.Stop() // SIGTERM: the final OTLP export
	metrics := recv.metrics()
	if len(metrics) == 0 {
		return nil, fmt.Errorf("rowservice exported nothing over OTLP at SIGTERM\n%s", logs.String())
	}
	if err := sameAsPrometheusEndpoint(metrics, text); err != nil {
		return nil, err
	}
	return metrics, nil
}

// exportedMetrics is what the dashboard and the alerts may query: the function's metrics and a
// readcache service's.
func exportedMetrics(t *testing.T) map[string]promMetric {
	t.Helper()
	return cloudMonitoringNames(append(append([]otlpMetric{}, functionMetrics(t)...), readServiceMetrics(t)...))
}

func TestReadServiceMetricsInCloudMonitoring(t *testing.T) {
	metrics := cloudMonitoringNames(readServiceMetrics(t))
	for name, m := range metrics {
		t.Logf("%-45s from %-35s labels %v", name, m.otel, keys(m.labels))
	}
	for _, want := range []struct{ name, label string }{
		{"cloudsql_cache.read.consistency", "result"}, {"cloudsql_cache.read.consistency", "source"},
		{"cloudsql_cache.read.staleness_bucket", "le"}, {"cloudsql_cache.read.staleness.max", "instance"},
		{"cloudsql_cache.read.lookups", "result"},
	} {
		if !metrics[want.name].labels[want.label] {
			t.Errorf("rowservice did not export %s with label %s", want.name, want.label)
		}
	}
	for name := range metrics {
		if !strings.HasPrefix(name, "cloudsql_cache.read.") && !strings.HasPrefix(name, "target_info") {
			t.Errorf("rowservice exports %s, which is not the read path's", name)
		}
	}
}
