// Command benchlag measures end-to-end lag through the whole local pipeline — MariaDB → Debezium
// Server → Pub/Sub emulator → push relay → the real function binary → redis-server — at fixed offered
// rates of row changes, and finds the rate it can no longer keep up with. The method is
// local/lagbench's; this command reads its flags. Debezium runs the shipped configuration; -dbz sets a
// property on top of it, to measure what a setting would do before shipping it:
//
//	go run ./cmd/benchlag -rates 500,1000,2000,5000 -duration 20s
//	go run ./cmd/benchlag -rates 1000 -dbz debezium.source.poll.interval.ms=500
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/local/lagbench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchlag: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("benchlag", flag.ContinueOnError)
	rates := fs.String("rates", "500,1000,2000,5000", "comma-separated offered rates, row changes per second, in increasing order")
	c := lagbench.Config{Progress: os.Stderr, Properties: map[string]string{}}
	fs.Func("dbz", "a Debezium Server `property=value` on top of the shipped configuration (repeatable), e.g. debezium.source.poll.interval.ms=500", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return fmt.Errorf("%q is not property=value", v)
		}
		c.Properties[k] = val
		return nil
	})
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "measured time per rate (after the warm-up)")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "load at the rate before measuring")
	fs.DurationVar(&c.KeepUp, "keep-up", 5*time.Second, "a rate is kept up with when the outstanding changes drain within this after the load stops")
	fs.DurationVar(&c.DrainMax, "drain-max", 30*time.Second, "give up waiting for the drain after this (the run then ends)")
	fs.IntVar(&c.Keys, "keys", 10000, "rows in the table at the start")
	fs.IntVar(&c.Batch, "batch", 100, "at most this many rows per statement")
	fs.IntVar(&c.Conns, "conns", 8, "database connections of the load generator")
	fs.IntVar(&c.RowBytes, "row-bytes", 1000, "payload bytes per row")
	fs.IntVar(&c.MaxDeliveryAttempts, "max-delivery-attempts", 50, "push attempts before the dead-letter topic")
	fs.StringVar(&c.JavaOpts, "dbz-java-opts", "", "Debezium's JAVA_OPTS instead of the default, e.g. '-Xmx1g -XX:StartFlightRecording=filename=/tmp/dbz.jfr,settings=profile' for a profile (jfr print --events jdk.ExecutionSample)")
	keepDir := fs.Bool("keep", false, "keep the temp dir (logs) instead of deleting it")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the emulator, the relay and the load generator) to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("-rates: %q", s)
		}
		c.Rates = append(c.Rates, r)
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("-cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return fmt.Errorf("go list -m (run benchlag from the repository): %w", err)
	}
	c.ModuleDir = strings.TrimSpace(string(root))
	dir, err := os.MkdirTemp("", "benchlag")
	if err != nil {
		return err
	}
	if *keepDir {
		fmt.Fprintf(os.Stderr, "benchlag: logs in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	c.Dir = dir
	return lagbench.Run(ctx, c, os.Stdout)
}
