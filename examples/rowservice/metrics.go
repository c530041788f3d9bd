package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// meters is the service's OpenTelemetry meter provider, which readcache and its sampler record
// through: served in the Prometheus format at metricsAddr (if set), and pushed over OTLP/HTTP every
// interval when OTEL_EXPORTER_OTLP_ENDPOINT is set (the exporter reads the standard OTEL_EXPORTER_OTLP_*
// variables itself; on Cloud Run, point it at a collector sidecar that writes to Cloud Monitoring).
type meters struct {
	*sdkmetric.MeterProvider
	server *http.Server
}

func newMeters(ctx context.Context, metricsAddr string, otlp bool, interval time.Duration) (*meters, error) {
	var opts []sdkmetric.Option
	m := &meters{}
	if otlp {
		exp, err := otlpmetrichttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_ENDPOINT: %w", err)
		}
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(exp, sdkmetric.WithInterval(interval))))
	}
	if metricsAddr != "" {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg))
		if err != nil {
			return nil, fmt.Errorf("prometheus exporter: %w", err)
		}
		opts = append(opts, sdkmetric.WithReader(exp))
		l, err := net.Listen("tcp", metricsAddr)
		if err != nil {
			return nil, fmt.Errorf("METRICS_ADDR: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		m.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := m.server.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				fmt.Printf("rowservice: metrics endpoint stopped: %v\n", err)
			}
		}()
	}
	m.MeterProvider = sdkmetric.NewMeterProvider(opts...)
	return m, nil
}

// shutdown exports what is pending and stops the endpoint.
func (m *meters) shutdown(ctx context.Context) error {
	err := m.MeterProvider.Shutdown(ctx)
	if m.server != nil {
		err = errors.Join(err, m.server.Shutdown(ctx))
	}
	return err
}
