// Command benchhotrow measures a hot row: one row updated at fixed rates, pushed with a simulated
// cloud round trip, with ordering on and off; lag p99 and backlog growth per phase. The method is
// local/hotrowbench's:
//
//	go run ./cmd/benchhotrow -rates 100,500,1000 -rtt 10ms -baseline -duration 15s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/local/hotrowbench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchhotrow: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("benchhotrow", flag.ContinueOnError)
	rates := fs.String("rates", "100,500,1000", "comma-separated updates of the row per second")
	modes := fs.String("modes", "ordered,unordered", "delivery modes to measure: ordered, unordered or both")
	c := hotrowbench.Config{Progress: os.Stderr}
	fs.DurationVar(&c.RTT, "rtt", 10*time.Millisecond, "round-trip time added to every push (the cloud's)")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "load before measuring")
	fs.DurationVar(&c.Duration, "duration", 15*time.Second, "measured load per phase")
	fs.DurationVar(&c.DrainMax, "drain-max", 10*time.Second, "wait at most this for the backlog after the load")
	fs.BoolVar(&c.Baseline, "baseline", false, "also measure unordered without the RTT at every rate (the same run's baseline)")
	fs.IntVar(&c.Window, "window", 1000, "the push window's ceiling (it slow-starts from 3)")
	fs.IntVar(&c.InstanceConcurrency, "concurrency", 80, "concurrent requests per function instance (Terraform's function_concurrency)")
	fs.IntVar(&c.Instances, "instances", 1, "function instances (one process runs here)")
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
	for _, m := range strings.Split(*modes, ",") {
		switch strings.TrimSpace(m) {
		case "ordered":
			c.Ordered = append(c.Ordered, true)
		case "unordered":
			c.Ordered = append(c.Ordered, false)
		default:
			return fmt.Errorf("-modes: %q is not ordered or unordered", m)
		}
	}
	root, err := exec.CommandContext(ctx, "go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		return fmt.Errorf("go list -m (run benchhotrow from the repository): %w", err)
	}
	c.ModuleDir = strings.TrimSpace(string(root))
	dir, err := os.MkdirTemp("", "benchhotrow")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	c.Dir = dir
	return hotrowbench.Run(ctx, c, os.Stdout)
}
