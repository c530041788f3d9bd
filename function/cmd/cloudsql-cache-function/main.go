// Command cloudsql-cache-function serves the apply function with the Functions Framework: the
// container entry point on Cloud Run, and what `make run-function` starts locally.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/GoogleCloudPlatform/functions-framework-go/funcframework"

	"github.com/cloudsql-cache/cloudsql-cache/function"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	closeFn, err := function.Register(ctx, os.Getenv, function.Deps{})
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
	errc := make(chan error, 1)
	go func() { errc <- funcframework.StartHostPort(os.Getenv("HOST"), port) }()
	select {
	case err := <-errc:
		_ = closeFn()
		fmt.Fprintf(os.Stderr, "cloudsql-cache-function: %v\n", err)
		os.Exit(1)
	case <-ctx.Done():
		// Cloud Run sends SIGTERM about 10 s before it kills the instance. Deliveries still in flight are
		// not acknowledged and Pub/Sub redelivers them; the version guard makes that harmless.
		_ = closeFn()
	}
}
