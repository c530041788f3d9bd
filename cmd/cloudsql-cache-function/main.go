// Command cloudsql-cache-function serves the apply function with the Functions Framework: the
// container entry point on Cloud Run, and what `make run-function` starts locally.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"
	"go.opentelemetry.io/otel"

	"github.com/cloudsql-cache/cloudsql-cache/function"
	"github.com/cloudsql-cache/cloudsql-cache/function/telemetry"
)

// flushTimeout bounds the metrics flush after SIGTERM: Cloud Run kills the instance about 10 s after it.
const flushTimeout = 7 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	cfg, err := function.ConfigFromEnv(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cloudsql-cache-function: %v\n", err)
		os.Exit(2)
	}
	project := cfg.Project
	if project == "" && os.Getenv("K_SERVICE") != "" {
		project = telemetry.ProjectID(ctx) // on Cloud Run
	}
	logger, closeLog, err := function.NewProjectLogger(os.Stdout, slog.LevelInfo, project)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cloudsql-cache-function: %v\n", err)
		os.Exit(2)
	}
	// Failed exports (the SDK retries them until the next interval) are logged like every other failure.
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("OpenTelemetry: metrics not exported", "error", err.Error())
	}))
	metrics, err := telemetry.Start(ctx, cfg.Metrics, os.Getenv, logger)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cloudsql-cache-function: %v\n", err)
		os.Exit(2)
	}
	closeFn, err := function.RegisterConfig(ctx, cfg, function.Deps{Logger: logger, MeterProvider: metrics, Version: function.Version(os.Getenv)})
	if err != nil {
		fmt.Fprintf(os.Stderr, "cloudsql-cache-function: %v\n", err)
		os.Exit(2)
	}
	if os.Getenv("FUNCTION_TARGET") == "" {
		// Serve the one function at "/", where the push subscription posts.
		os.Setenv("FUNCTION_TARGET", function.Name)
	}
	port := os.Getenv("PORT")
	if port == "" {
		port = "8080"
	}
	shutdown := func() {
		// Export what the periodic reader has not sent yet, then release the clients. Deliveries still in
		// flight are not acknowledged and Pub/Sub redelivers them; the version guard makes that harmless.
		fctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
		defer cancel()
		if err := metrics.Shutdown(fctx); err != nil {
			logger.Warn("metrics not flushed at shutdown", "error", err.Error())
		}
		_ = closeFn()
		// Last: what runs above may still log.
		_ = closeLog()
	}
	errc := make(chan error, 1)
	go func() { errc <- funcframework.StartHostPort(os.Getenv("HOST"), port) }()
	select {
	case err := <-errc:
		shutdown()
		fmt.Fprintf(os.Stderr, "cloudsql-cache-function: %v\n", err)
		os.Exit(1)
	case <-ctx.Done():
		// Cloud Run sends SIGTERM about 10 s before it kills the instance.
		shutdown()
	}
}
