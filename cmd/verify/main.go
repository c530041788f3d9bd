// Command verify compares a MySQL-compatible database with the cache, row by row, and exits 1 if they
// differ (missing, extra or different rows), 2 on bad configuration or an error, 3 when interrupted
// after saving a checkpoint (the same command resumes), 0 if they agree.
//
//	REDIS_ADDR=127.0.0.1:6390 verify -dsn 'user:pass@tcp(10.0.0.5:3306)/' -databases shop
//
// Redis is configured with the function's REDIS_* variables and the table policy with its CACHE_*
// variables, so the keys and row JSON it expects are exactly the ones the function writes. The
// database is -dsn, MYSQL_DSN, or MYSQL_ADDR with MYSQL_USER and MYSQL_PASSWORD (mysqlenv: TLS with MYSQL_TLS and MYSQL_CA_FILE, e.g. the Cloud SQL server CA).
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/verify"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlenv"
	"github.com/cloudsql-cache/cloudsql-cache/redisenv"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

func main() {
	// SIGTERM too: Cloud Run stops a job's task with it, and the checkpoint is saved on the way out.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsnFlag := fs.String("dsn", "", "go-sql-driver/mysql DSN of a user with SELECT, e.g. user:pass@tcp(host:3306)/ (default: $MYSQL_DSN, or $MYSQL_ADDR, $MYSQL_USER, $MYSQL_PASSWORD); a read replica keeps the load off the primary")
	tables := fs.String("tables", "", "comma-separated db.table to check (default: CACHE_TABLES)")
	databases := fs.String("databases", "", "comma-separated databases whose every table is checked")
	chunk := fs.Int("chunk", 500, "rows per query (keyset pagination in primary-key order) and keys per extras batch")
	pause := fs.Duration("pause", 10*time.Millisecond, "pause between chunks (with -rate, a second bound on the load)")
	rowsPerSecond := fs.Float64("rate", 0, "at most this many rows read (and cached keys looked up) per second; 0: no limit")
	settle := fs.Duration("settle", 2*time.Second, "wait before checking a difference again (changes in flight; against a read replica, more than its lag)")
	maxDiffs := fs.Int("max-diffs", 100, "differences listed (all are counted)")
	from := fs.String("from", "", "check rows whose primary key is >= this (one table): a value, or a JSON array of the first key columns' values")
	to := fs.String("to", "", "check rows whose primary key is < this (one table), as -from")
	extras := fs.String("extras", "auto", "the pass looking for cached rows the database no longer has: auto (full checks only), on, off")
	filterMiB := fs.Int64("extras-filter-mib", 256, "the extras pass skips the cached keys of the rows read, by a Bloom filter of at most this many MiB (about 20 bits a row); 0: look every cached key up in the database (exact; one random read per cached row)")
	sample := fs.Int("sample", 0, "check only this many chunks from random points of the table (integer first key column) and estimate the drift")
	sampleChunk := fs.Int("sample-chunk", 20, "rows read at each random point of -sample")
	seed := fs.Uint64("seed", 0, "seed of -sample's random points (0: random)")
	checkpoint := fs.String("checkpoint", "", "file recording progress; the same command with the same file resumes an interrupted check")
	progress := fs.Duration("progress", 10*time.Second, "interval of progress lines on stderr; 0: none")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var problems []error
	bad := func(format string, a ...any) { problems = append(problems, fmt.Errorf(format, a...)) }
	if fs.NArg() > 0 {
		bad("unexpected arguments %q: every setting is a flag", fs.Args())
	}
	if *chunk < 1 || *chunk > 100000 {
		bad("-chunk %d: must be 1..100000", *chunk)
	}
	if *rowsPerSecond < 0 {
		bad("-rate %g: must not be negative", *rowsPerSecond)
	}
	if *filterMiB < 0 {
		bad("-extras-filter-mib %d: must not be negative", *filterMiB)
	}
	if *sample < 0 || *sampleChunk < 1 {
		bad("-sample %d, -sample-chunk %d: -sample must not be negative, -sample-chunk must be at least 1", *sample, *sampleChunk)
	}
	mode := map[string]verify.ExtrasMode{"auto": verify.ExtrasAuto, "on": verify.ExtrasOn, "off": verify.ExtrasOff}
	extrasMode, ok := mode[*extras]
	if !ok {
		bad("-extras %q: want auto, on or off", *extras)
	}
	fromKey, err := keyFlag("-from", *from)
	problems = append(problems, err)
	toKey, err := keyFlag("-to", *to)
	problems = append(problems, err)
	var checked string
	mc, err := mysqlenv.FromEnv(mysqlenv.WithDSN(*dsnFlag, getenv))
	if err != nil && *dsnFlag != "" {
		err = fmt.Errorf("-dsn, read as MYSQL_DSN:\n%w", err)
	}
	problems = append(problems, err)
	if err == nil {
		if dsn, err := mc.FormatDSN(); err != nil {
			bad("MYSQL_*: %w", err)
		} else {
			checked = interpolated(dsn)
		}
	}
	rc, err := redisenv.FromEnv(getenv)
	problems = append(problems, err)
	var opts *redis.Options
	if err == nil {
		opts, err = rc.Options()
		problems = append(problems, err)
	}
	pc, perr := tablepolicy.FromEnv(getenv)
	problems = append(problems, perr)
	var policy *tablepolicy.Policy
	if perr == nil {
		if policy, err = tablepolicy.New(pc); err != nil {
			bad("CACHE_* table settings: %w", err)
		}
	}
	names := splitList(*tables)
	if len(names) == 0 && *databases == "" {
		names = pc.Tables
		if len(names) == 0 && perr == nil {
			bad("nothing to check: give -tables or -databases (or set CACHE_TABLES)")
		}
	}
	if (fromKey != nil || toKey != nil) && (len(names) != 1 || *databases != "") {
		bad("-from and -to check one table: give exactly one with -tables")
	}
	if err := errors.Join(problems...); err != nil {
		fmt.Fprintf(stderr, "verify: invalid configuration:\n%v\n", err)
		return 2
	}
	db, err := sql.Open("mysql", checked)
	if err != nil {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return 2
	}
	defer db.Close()
	db.SetMaxOpenConns(2)
	rdb := redis.NewClient(opts)
	defer rdb.Close()

	for _, d := range splitList(*databases) {
		more, err := baseTables(ctx, db, d)
		if err != nil {
			fmt.Fprintf(stderr, "verify: %v\n", err)
			return 2
		}
		names = append(names, more...)
	}
	cfg := verify.Config{DB: db, Redis: rdb, Policy: policy, Tables: names, ChunkSize: *chunk, Pause: *pause,
		RowsPerSecond: *rowsPerSecond, Settle: *settle, MaxDiffs: *maxDiffs, From: fromKey, To: toKey,
		Extras: extrasMode, ExtrasFilterBytes: filterBytes(*filterMiB), Sample: *sample, SampleChunk: *sampleChunk, Seed: *seed, Checkpoint: *checkpoint}
	if *progress > 0 {
		cfg.ProgressEvery = *progress
		cfg.Progress = func(p verify.Progress) { fmt.Fprintln(stderr, progressLine(p)) }
	}
	rep, err := verify.Run(ctx, cfg)
	if errors.Is(err, verify.ErrInterrupted) {
		fmt.Fprintf(stderr, "verify: %v\nrun the same command again to resume\n", err)
		return 3
	}
	if err != nil {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return 2
	}
	printReport(stdout, rep)
	if n := rep.Drift(); n > 0 {
		fmt.Fprintf(stdout, "DRIFT: %d rows differ\n", n)
		return 1
	}
	if *sample > 0 {
		fmt.Fprintln(stdout, "OK: no sampled row differs (see the estimates above for what a sample can tell)")
		return 0
	}
	fmt.Fprintln(stdout, "OK: the cache matches the database")
	return 0
}

func filterBytes(mib int64) int64 {
	if mib == 0 {
		return -1 // no filter
	}
	return mib << 20
}

func printReport(w io.Writer, rep *verify.Report) {
	for _, t := range rep.Tables {
		if t.Skipped != "" {
			fmt.Fprintf(w, "%-30s skipped: %s\n", t.Table, t.Skipped)
			continue
		}
		fmt.Fprintf(w, "%-30s %9d rows  missing %d  extra %d  different %d", t.Table, t.Rows, t.Missing, t.Extra, t.Different)
		if t.Keys > 0 {
			fmt.Fprintf(w, "  (%d cached keys, %d looked up", t.Keys, t.Looked)
			if t.Foreign > 0 {
				fmt.Fprintf(w, ", %d not cloudsql-cache's", t.Foreign)
			}
			if t.Unchecked > 0 {
				fmt.Fprintf(w, ", %d without their key columns", t.Unchecked)
			}
			fmt.Fprint(w, ")")
		}
		fmt.Fprintln(w)
		if t.FilterBytes > 0 {
			fmt.Fprintf(w, "%-30s extras: keys of rows read skipped by a %.1f MiB Bloom filter; the chance that it hid an extra row is %.2g per extra (-extras-filter-mib 0 looks every key up)\n", "", float64(t.FilterBytes)/(1<<20), t.FalsePositive)
		}
		if t.ExtrasSkipped != "" {
			fmt.Fprintf(w, "%-30s extras not checked: %s\n", "", t.ExtrasSkipped)
		}
		if e := t.Estimate; e != nil {
			fmt.Fprintf(w, "%-30s estimate: %.3f%% of rows differ (95%%: %.3f%%..%.3f%%), %d..%d of ~%d rows\n", "",
				100*e.Rate, 100*e.RateLow, 100*e.RateHigh, e.DriftLow, e.DriftHigh, e.TableRows)
		}
	}
	for _, d := range rep.Diffs {
		fmt.Fprintf(w, "%s %s\n  database: %s\n  cache:    %s\n", d.Kind, d.Key, d.DB, d.Cache)
	}
}

func progressLine(p verify.Progress) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %-7s %10d", p.Table, p.Phase, p.Done)
	if p.Fraction >= 0 {
		fmt.Fprintf(&b, " %5.1f%%", 100*p.Fraction)
	}
	fmt.Fprintf(&b, "  %.0f/s", p.Rate)
	switch {
	case p.Final:
		b.WriteString("  done")
	case p.ETA >= 0:
		fmt.Fprintf(&b, "  ETA %s", p.ETA.Round(time.Second))
	}
	fmt.Fprintf(&b, "  missing %d extra %d different %d", p.Missing, p.Extra, p.Different)
	return b.String()
}

// interpolated turns on the driver's client-side parameter interpolation: each chunk and each lookup
// is then one round trip instead of three (prepare, execute, close), and the server parses no
// throw-away prepared statements.
func interpolated(dsn string) string {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return dsn
	}
	cfg.InterpolateParams = true
	return cfg.FormatDSN()
}

// keyFlag reads -from or -to: a JSON array of values (strings or numbers), or one bare value.
func keyFlag(name, s string) ([]string, error) {
	if s == "" {
		return nil, nil
	}
	if !strings.HasPrefix(strings.TrimSpace(s), "[") {
		return []string{s}, nil
	}
	var raw []json.RawMessage
	if err := json.Unmarshal([]byte(s), &raw); err != nil || len(raw) == 0 {
		return nil, fmt.Errorf("%s %s: not a JSON array of key values, such as [42] or [\"eu\", 7]", name, s)
	}
	out := make([]string, len(raw))
	for i, r := range raw {
		var str string
		if err := json.Unmarshal(r, &str); err == nil {
			out[i] = str
			continue
		}
		var num json.Number
		if err := json.Unmarshal(r, &num); err != nil {
			return nil, fmt.Errorf("%s %s: element %d is neither a string nor a number", name, s, i+1)
		}
		out[i] = num.String()
	}
	return out, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func baseTables(ctx context.Context, db *sql.DB, schema string) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME", schema)
	if err != nil {
		return nil, fmt.Errorf("tables of %s: %w", schema, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, err
		}
		out = append(out, schema+"."+t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("database %s has no tables (or does not exist)", schema)
	}
	return out, nil
}
