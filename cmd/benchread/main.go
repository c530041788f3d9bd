// Command benchread is the read-path experiment: zipfian reads over a table while writes flow through
// the whole local pipeline, for each way of handling a miss, with the L1 on and off, reporting the hit
// ratio, database queries per second, read latency, Redis memory and consistency (readcache's Sampler,
// and an oracle over every read). The method is local/readbench's; this command reads its flags.
//
//	go run ./cmd/benchread -rows 100000 -write-rates 0,100,1000 -duration 20s
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/local/readbench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "benchread: %v\n", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("benchread", flag.ContinueOnError)
	c := readbench.Config{Progress: os.Stderr, Seed: 1}
	fs.IntVar(&c.Rows, "rows", 100000, "rows in the table")
	fs.IntVar(&c.RowBytes, "row-bytes", 500, "payload bytes per row")
	setups := fs.String("setups", "warm-nofill,warm-fill,cold-fill", "set-ups, in order (cold-fill flushes Redis: last)")
	l1 := fs.String("l1", "off,on", "the L1 off, on, or both")
	fs.IntVar(&c.L1Size, "l1-size", 10000, "rows in the L1 when on")
	rates := fs.String("write-rates", "0,100,1000", "row updates per second")
	fs.Float64Var(&c.ReadRate, "read-rate", 2000, "reads per second, open loop")
	fs.IntVar(&c.Readers, "readers", 32, "reading goroutines")
	fs.IntVar(&c.Conns, "conns", 16, "writer connections")
	fs.Float64Var(&c.ZipfS, "zipf-s", 1.1, "exponent of the zipfian distribution of reads (> 1)")
	fs.BoolVar(&c.ZipfWrites, "zipf-writes", false, "draw updated rows from the reads' distribution (hot rows change most) instead of uniformly")
	fs.DurationVar(&c.Warmup, "warmup", 3*time.Second, "time per cell before measuring")
	fs.DurationVar(&c.Duration, "duration", 20*time.Second, "measured time per cell")
	fs.Float64Var(&c.SampleFraction, "sample-fraction", 0.25, "share of reads the consistency sampler judges")
	fs.Float64Var(&c.SampleMax, "sample-max", 500, "sampled reads per second at most")
	fs.DurationVar(&c.RedisTimeout, "redis-timeout", 0, "readcache's RedisTimeout (0: its default, 50ms)")
	fs.DurationVar(&c.CatchUpMax, "catch-up-max", 2*time.Minute, "how long a cell waits after its writes for Redis to hold every row's last write")
	keepDir := fs.Bool("keep", false, "keep the temp dir (logs) instead of deleting it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, s := range strings.Split(*setups, ",") {
		c.Setups = append(c.Setups, readbench.Setup(strings.TrimSpace(s)))
	}
	for _, s := range strings.Split(*l1, ",") {
		switch strings.TrimSpace(s) {
		case "off":
			c.L1 = append(c.L1, false)
		case "on":
			c.L1 = append(c.L1, true)
		default:
			return fmt.Errorf("-l1: %q is not off or on", s)
		}
	}
	for _, s := range strings.Split(*rates, ",") {
		r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil {
			return fmt.Errorf("-write-rates: %q", s)
		}
		c.WriteRates = append(c.WriteRates, r)
	}
	dir, err := os.MkdirTemp("", "benchread")
	if err != nil {
		return err
	}
	if *keepDir {
		fmt.Fprintf(os.Stderr, "benchread: logs in %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	c.Dir = dir
	return readbench.Run(ctx, c, os.Stdout)
}
