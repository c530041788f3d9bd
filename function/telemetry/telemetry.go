// Package telemetry sets up the function's OpenTelemetry meter provider: a Prometheus /metrics endpoint
// for local runs and scrapers, and OTLP export for Cloud Monitoring (directly to Google's Telemetry API,
// telemetry.googleapis.com, with Application Default Credentials, or to a collector sidecar), with the
// Cloud Run resource detected.
package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/otlptranslator"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"golang.org/x/oauth2/google"
)

// Exporter choices for Config.Exporter.
const (
	ExporterAuto = "auto" // OTLP if an endpoint is set or on Cloud Run, else none
	ExporterOTLP = "otlp"
	ExporterNone = "none"
)

// GoogleTelemetryEndpoint is Google's OTLP endpoint (the Telemetry API), which writes metrics to Cloud
// Monitoring as workload.googleapis.com/<name>.
const GoogleTelemetryEndpoint = "https://telemetry.googleapis.com"

// Config says where metrics go. The function reads it from the environment (function.ConfigFromEnv).
type Config struct {
	// Exporter is ExporterAuto, ExporterOTLP or ExporterNone.
	Exporter string
	// OTLPEndpoint is the OTLP/HTTP base URL; "/v1/metrics" is appended to its path. Empty: Google's
	// Telemetry API. Requests to a googleapis.com host carry Application Default Credentials.
	OTLPEndpoint string
	// Interval between OTLP exports.
	Interval time.Duration
	// PrometheusAddr, if set, is where /metrics is served in the Prometheus text format.
	PrometheusAddr string
	// ServiceName names the service in the resource when not on Cloud Run.
	ServiceName string
}

// Provider is a meter provider with its exporters. Shutdown flushes and stops them.
type Provider struct {
	*sdkmetric.MeterProvider
	server   *http.Server
	listener net.Listener
}

// Start builds the meter provider for cfg. getenv reads Cloud Run's variables (K_SERVICE, …) for the
// resource; metadata answers what the environment does not (nil: the GCE metadata server, asked only on
// Cloud Run).
func Start(ctx context.Context, cfg Config, getenv func(string) string, log *slog.Logger) (*Provider, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res, err := DetectResource(ctx, getenv, cfg.ServiceName)
	if err != nil {
		return nil, err
	}
	opts := []sdkmetric.Option{sdkmetric.WithResource(res)}
	p := &Provider{}
	exporter := cfg.Exporter
	if exporter == "" || exporter == ExporterAuto {
		exporter = ExporterNone
		if cfg.OTLPEndpoint != "" || getenv("K_SERVICE") != "" {
			exporter = ExporterOTLP
		}
	}
	if exporter == ExporterOTLP {
		exp, err := newOTLPExporter(context.WithoutCancel(ctx), cfg.OTLPEndpoint)
		if err != nil {
			return nil, err
		}
		interval := cfg.Interval
		if interval <= 0 {
			interval = time.Minute
		}
		// Each export is bounded well under Cloud Run's 10 s between SIGTERM and the kill.
		opts = append(opts, sdkmetric.WithReader(sdkmetric.NewPeriodicReader(batchingExporter{exp, MaxPointsPerExport},
			sdkmetric.WithInterval(interval), sdkmetric.WithTimeout(5*time.Second))))
	}
	if cfg.PrometheusAddr != "" {
		reg := prometheus.NewRegistry()
		exp, err := otelprom.New(otelprom.WithRegisterer(reg),
			otelprom.WithTranslationStrategy(otlptranslator.UnderscoreEscapingWithSuffixes))
		if err != nil {
			return nil, fmt.Errorf("telemetry: Prometheus exporter: %w", err)
		}
		opts = append(opts, sdkmetric.WithReader(exp))
		l, err := net.Listen("tcp", cfg.PrometheusAddr)
		if err != nil {
			return nil, fmt.Errorf("telemetry: METRICS_ADDR: %w", err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		p.listener = l
		p.server = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go func() {
			if err := p.server.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("metrics endpoint stopped", "error", err.Error())
			}
		}()
	}
	p.MeterProvider = sdkmetric.NewMeterProvider(opts...)
	return p, nil
}

// MetricsAddr is the address /metrics is served on ("" if not served).
func (p *Provider) MetricsAddr() string {
	if p.listener == nil {
		return ""
	}
	return p.listener.Addr().String()
}

// Meter is here so *Provider is a metric.MeterProvider whatever the embedded type adds.
func (p *Provider) Meter(name string, opts ...metric.MeterOption) metric.Meter {
	return p.MeterProvider.Meter(name, opts...)
}

// Shutdown exports what is pending, then stops the exporters and the /metrics server, all within ctx's
// deadline: on Cloud Run, SIGTERM comes about 10 s before the kill. The periodic reader's Shutdown does
// the final collection and export itself; a ForceFlush before it would write every series twice within
// milliseconds, and Cloud Monitoring refuses a second point of a series within 5 s.
func (p *Provider) Shutdown(ctx context.Context) error {
	var errs []error
	errs = append(errs, p.MeterProvider.Shutdown(ctx))
	if p.server != nil {
		errs = append(errs, p.server.Shutdown(ctx))
	}
	return errors.Join(errs...)
}

func newOTLPExporter(ctx context.Context, endpoint string) (sdkmetric.Exporter, error) {
	if endpoint == "" {
		endpoint = GoogleTelemetryEndpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("telemetry: OTLP endpoint %q is not an http(s) URL", endpoint)
	}
	opts := []otlpmetrichttp.Option{
		otlpmetrichttp.WithEndpoint(u.Host),
		otlpmetrichttp.WithURLPath(path.Join("/", u.Path, "v1/metrics")),
		otlpmetrichttp.WithTimeout(5 * time.Second),
	}
	if u.Scheme == "http" {
		opts = append(opts, otlpmetrichttp.WithInsecure())
	}
	if h := u.Hostname(); h == "googleapis.com" || strings.HasSuffix(h, ".googleapis.com") {
		// Google's Telemetry API: Application Default Credentials (on Cloud Run, the service account's).
		client, err := google.DefaultClient(ctx, "https://www.googleapis.com/auth/cloud-platform")
		if err != nil {
			return nil, fmt.Errorf("telemetry: credentials for %s: %w", u.Host, err)
		}
		opts = append(opts, otlpmetrichttp.WithHTTPClient(client))
	}
	exp, err := otlpmetrichttp.New(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("telemetry: OTLP exporter: %w", err)
	}
	return exp, nil
}
