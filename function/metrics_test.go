package function_test

import (
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/function"
)

func TestMetricsConfiguration(t *testing.T) {
	_, err := function.ConfigFromEnv(envFunc(map[string]string{
		"REDIS_ADDR": "r:6379", "DEAD_LETTER_TOPIC": "nack",
		"METRICS_EXPORTER": "stackdriver", "OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318",
		"METRICS_EXPORT_INTERVAL": "1s", "METRICS_ADDR": "9464",
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT", "METRICS_EXPORT_INTERVAL", "METRICS_ADDR"} {
		if !strings.Contains(err.Error(), name+": ") {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	c, err := function.ConfigFromEnv(envFunc(map[string]string{"REDIS_ADDR": "r:6379", "DEAD_LETTER_TOPIC": "nack"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Metrics.Exporter != "auto" || c.Metrics.Interval != time.Minute || c.Metrics.OTLPEndpoint != "" || c.Metrics.PrometheusAddr != "" {
		t.Fatalf("defaults %+v", c.Metrics)
	}
}
