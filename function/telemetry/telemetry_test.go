package telemetry

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOTLPEndpointPathAndPrometheus(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	defer recv.Close()
	env := func(string) string { return "" }
	p, err := Start(context.Background(), Config{Exporter: ExporterOTLP, OTLPEndpoint: recv.URL + "/otlp", Interval: time.Hour, PrometheusAddr: "127.0.0.1:0"}, env, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := p.Meter("t").Int64Counter("cloudsql_cache.events")
	c.Add(context.Background(), 3)
	resp, err := http.Get("http://" + p.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), "cloudsql_cache_events_total{") || !strings.Contains(string(b), "} 3\n") {
		t.Fatalf("/metrics:\n%s", b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := p.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 1 || paths[0] != "POST /otlp/v1/metrics" {
		t.Fatalf("OTLP requests %v", paths)
	}
	if _, err := http.Get("http://" + p.MetricsAddr() + "/metrics"); err == nil {
		t.Fatal("/metrics still served after Shutdown")
	}
}

func TestAutoExportsOnlyWithAnEndpointOrOnCloudRun(t *testing.T) {
	p, err := Start(context.Background(), Config{Exporter: ExporterAuto}, func(string) string { return "" }, nil)
	if err != nil {
		t.Fatal(err)
	}
	if p.MetricsAddr() != "" {
		t.Fatal("/metrics served without an address")
	}
	if err := p.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := Start(context.Background(), Config{Exporter: ExporterOTLP, OTLPEndpoint: "localhost:4318"}, nil, nil); err == nil {
		t.Fatal("an endpoint without a scheme was accepted")
	}
}
