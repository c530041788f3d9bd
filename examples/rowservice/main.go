// Command rowservice is an example of the service a user writes on top of cloudsql-cache: an HTTP API
// that serves rows through the readcache package (L1, then Redis, then the database).
//
//	GET /rows/<db>.<table>/<pk>[/<pk>…]   the row as JSON; X-Cache says where it came from
//	GET /healthz
//
// Configuration: the database from the MYSQL_* variables (mysqlenv: MYSQL_ADDR, MYSQL_USER,
// MYSQL_PASSWORD, MYSQL_CA_FILE for Cloud SQL's TLS, or a whole MYSQL_DSN), the function's REDIS_* and
// CACHE_* variables, PORT (default 8081), READ_L1_SIZE (default 10000 rows; 0 turns the L1 off),
// READ_MISS (fill or nofill, default fill), READ_POLICY_CHECK (require, ifpublished or off, default
// require: fill only while the function's published policy is this service's CACHE_* policy; GET
// /healthz says how it stands), READ_FILL_TTL (10m), READ_NOT_FOUND_TTL (0s: off); the
// consistency sampler with READ_SAMPLE_FRACTION (default 0: off; e.g. 0.01) and
// READ_SAMPLE_MAX_PER_SECOND (100), which checks reads against the same database (its user needs
// REPLICATION CLIENT, or BINLOG MONITOR on MariaDB); metrics at METRICS_ADDR (/metrics, Prometheus
// format) and over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set, every METRICS_EXPORT_INTERVAL
// (60s).
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/mysqlenv"
	"github.com/cloudsql-cache/cloudsql-cache/readcache"
	"github.com/cloudsql-cache/cloudsql-cache/redisenv"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Getenv); err != nil {
		fmt.Fprintf(os.Stderr, "rowservice: %v\n", err)
		os.Exit(2)
	}
}

func run(ctx context.Context, getenv func(string) string) error {
	h, closeFn, err := newHandler(ctx, getenv)
	if err != nil {
		return err
	}
	defer closeFn()
	port := getenv("PORT")
	if port == "" {
		port = "8081"
	}
	srv := &http.Server{Addr: "127.0.0.1:" + port, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	slog.Info("rowservice listening", "addr", srv.Addr)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}

func newHandler(ctx context.Context, getenv func(string) string) (http.Handler, func(), error) {
	rc, err := redisenv.FromEnv(getenv)
	errs := []error{err}
	tables, err := tablepolicy.FromEnv(getenv)
	errs = append(errs, err)
	mc, err := mysqlenv.FromEnv(getenv)
	errs = append(errs, err)
	dur := func(name, def string) time.Duration {
		v := getenv(name)
		if v == "" {
			v = def
		}
		d, err := time.ParseDuration(v)
		if err != nil || d < 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a duration such as 10m", name, v))
		}
		return d
	}
	fillTTL, notFoundTTL := dur("READ_FILL_TTL", "10m"), dur("READ_NOT_FOUND_TTL", "0s")
	exportEvery := dur("METRICS_EXPORT_INTERVAL", "60s")
	miss := readcache.MissFill
	if v := getenv("READ_MISS"); v != "" {
		m, err := readcache.ParseMissMode(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("READ_MISS: %q is not fill or nofill", v))
		}
		miss = m
	}
	policyCheck := readcache.PolicyRequire
	if v := getenv("READ_POLICY_CHECK"); v != "" {
		p, err := readcache.ParsePolicyCheck(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("READ_POLICY_CHECK: %q is not require, ifpublished or off", v))
		}
		policyCheck = p
	}
	num := func(name string, def, lo, hi float64) float64 {
		v := getenv(name)
		if v == "" {
			return def
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f < lo || f > hi {
			errs = append(errs, fmt.Errorf("%s: %q is not a number within %g..%g", name, v, lo, hi))
		}
		return f
	}
	sampleFraction := num("READ_SAMPLE_FRACTION", 0, 0, 1)
	samplePerSecond := num("READ_SAMPLE_MAX_PER_SECOND", 100, 1, 1e6)
	l1 := 10000
	if v := getenv("READ_L1_SIZE"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			errs = append(errs, fmt.Errorf("READ_L1_SIZE: %q is not a row count", v))
		}
		l1 = n
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	mp, err := newMeters(ctx, getenv("METRICS_ADDR"), getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "", exportEvery)
	if err != nil {
		return nil, nil, err
	}
	db, err := mc.Open()
	if err != nil {
		_ = mp.shutdown(ctx)
		return nil, nil, err
	}
	// REDIS_MODE=cluster gives a cluster client, which readcache reads a cluster with.
	rdb, err := rc.NewUniversalClient()
	if err != nil {
		db.Close()
		_ = mp.shutdown(ctx)
		return nil, nil, err
	}
	c, err := readcache.New(ctx, readcache.Options{
		Redis: rdb, DB: db, Tables: tables, Miss: miss, PolicyCheck: policyCheck,
		FillTTL: fillTTL, NotFoundTTL: notFoundTTL, L1Size: l1,
		InvalidationChannel: getenv("CACHE_INVALIDATION_CHANNEL"),
		MeterProvider:       mp,
	})
	if err != nil {
		rdb.Close()
		db.Close()
		_ = mp.shutdown(ctx)
		return nil, nil, err
	}
	var sampler *readcache.Sampler
	if sampleFraction > 0 {
		if sampler, err = readcache.NewSampler(ctx, c, readcache.SamplerOptions{Fraction: sampleFraction, MaxPerSecond: samplePerSecond}); err != nil {
			c.Close()
			rdb.Close()
			db.Close()
			_ = mp.shutdown(ctx)
			return nil, nil, fmt.Errorf("READ_SAMPLE_FRACTION: %w", err)
		}
	}
	mux := http.NewServeMux()
	if st := c.PolicyStatus(); !st.FillAllowed {
		slog.Warn("rowservice: misses will not fill the cache until the function's published policy is this service's", "check", st.Check.String(), "reason", st.Err)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		// Healthy either way: reads are served; the policy line says whether misses fill.
		fmt.Fprintln(w, "ok")
		if st := c.PolicyStatus(); st.FillAllowed {
			fmt.Fprintf(w, "policy %s: fills on\n", st.Check)
		} else {
			fmt.Fprintf(w, "policy %s: fills off: %v\n", st.Check, st.Err)
		}
	})
	mux.HandleFunc("GET /rows/{table}/{pk...}", func(w http.ResponseWriter, r *http.Request) {
		pk := strings.Split(r.PathValue("pk"), "/")
		args := make([]any, len(pk))
		for i, v := range pk {
			args[i] = v
		}
		row, err := c.Get(r.Context(), r.PathValue("table"), args...)
		switch {
		case errors.Is(err, readcache.ErrNotFound):
			http.Error(w, "not found", http.StatusNotFound)
		case errors.Is(err, readcache.ErrUnavailable):
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadRequest)
		default:
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Cache", string(row.From))
			w.Header().Set("X-Cache-Version", row.Version.String())
			w.Write(append(row.JSON, '\n'))
		}
	})
	return mux, func() {
		// The last OTLP export first, while the sampler still observes its gauge.
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = mp.shutdown(sctx)
		if sampler != nil {
			sampler.Close()
		}
		c.Close()
		rdb.Close()
		db.Close()
	}, nil
}
