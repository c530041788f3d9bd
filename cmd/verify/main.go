// Command verify compares a MySQL-compatible database with the cache, row by row, and exits 1 if they
// differ (missing, extra or different rows), 2 on bad configuration or an error, 0 if they agree.
//
//	REDIS_ADDR=127.0.0.1:6390 verify -dsn 'user:pass@tcp(10.0.0.5:3306)/' -databases shop
//	MYSQL_ADDR=10.0.0.5:3306 MYSQL_USER=verifier MYSQL_PASSWORD=… MYSQL_CA_FILE=server-ca.pem verify -databases shop
//
// Redis is configured with the function's REDIS_* variables and the table policy with its CACHE_*
// variables, so the keys and row JSON it expects are exactly the ones the function writes. The database
// is configured with the MYSQL_* variables (mysqlenv: TLS with the Cloud SQL server CA); -dsn overrides
// MYSQL_DSN and the address, user, password and database, while MYSQL_TLS and MYSQL_CA_FILE still apply.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/verify"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlenv"
	"github.com/cloudsql-cache/cloudsql-cache/redisenv"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("verify", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", "", "go-sql-driver/mysql DSN of a user with SELECT, e.g. user:pass@tcp(host:3306)/, without tls= (MYSQL_TLS and MYSQL_CA_FILE set TLS); default: the MYSQL_* variables")
	tables := fs.String("tables", "", "comma-separated db.table to check (default: CACHE_TABLES)")
	databases := fs.String("databases", "", "comma-separated databases whose every table is checked")
	chunk := fs.Int("chunk", 500, "rows per query (keyset pagination in primary-key order)")
	pause := fs.Duration("pause", 10*time.Millisecond, "pause between chunks, to bound the load on the database")
	settle := fs.Duration("settle", 2*time.Second, "wait before checking a difference again (changes in flight)")
	maxDiffs := fs.Int("max-diffs", 100, "differences listed (all are counted)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var errs []error
	mysqlGetenv := getenv
	if *dsn != "" {
		mysqlGetenv = func(k string) string {
			switch k {
			case "MYSQL_DSN":
				return *dsn
			case "MYSQL_ADDR", "MYSQL_USER", "MYSQL_PASSWORD", "MYSQL_PASSWORD_FILE", "MYSQL_DATABASE":
				return ""
			}
			return getenv(k)
		}
	}
	mc, err := mysqlenv.FromEnv(mysqlGetenv)
	if err != nil && *dsn != "" {
		err = fmt.Errorf("-dsn, read as MYSQL_DSN:\n%w", err)
	}
	errs = append(errs, err)
	if *chunk < 1 || *chunk > 100000 {
		errs = append(errs, fmt.Errorf("-chunk %d: must be 1..100000", *chunk))
	}
	rc, err := redisenv.FromEnv(getenv)
	errs = append(errs, err)
	pc, perr := tablepolicy.FromEnv(getenv)
	errs = append(errs, perr)
	var policy *tablepolicy.Policy
	if perr == nil {
		if policy, err = tablepolicy.New(pc); err != nil {
			errs = append(errs, fmt.Errorf("CACHE_* table settings: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(stderr, "verify: invalid configuration:\n%v\n", err)
		return 2
	}
	db, err := mc.Open()
	if err != nil {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return 2
	}
	defer db.Close()
	db.SetMaxOpenConns(2)
	opts, err := rc.Options()
	if err != nil {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return 2
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()

	names := splitList(*tables)
	if len(names) == 0 && *databases == "" {
		names = pc.Tables
	}
	for _, d := range splitList(*databases) {
		more, err := baseTables(ctx, db, d)
		if err != nil {
			fmt.Fprintf(stderr, "verify: %v\n", err)
			return 2
		}
		names = append(names, more...)
	}
	if len(names) == 0 {
		fmt.Fprintln(stderr, "verify: nothing to check: give -tables or -databases (or set CACHE_TABLES)")
		return 2
	}
	rep, err := verify.Run(ctx, verify.Config{DB: db, Redis: rdb, Policy: policy, Tables: names, ChunkSize: *chunk, Pause: *pause, Settle: *settle, MaxDiffs: *maxDiffs})
	if err != nil {
		fmt.Fprintf(stderr, "verify: %v\n", err)
		return 2
	}
	for _, t := range rep.Tables {
		if t.Skipped != "" {
			fmt.Fprintf(stdout, "%-30s skipped: %s\n", t.Table, t.Skipped)
			continue
		}
		fmt.Fprintf(stdout, "%-30s %8d rows  missing %d  extra %d  different %d\n", t.Table, t.Rows, t.Missing, t.Extra, t.Different)
	}
	for _, d := range rep.Diffs {
		fmt.Fprintf(stdout, "%s %s\n  database: %s\n  cache:    %s\n", d.Kind, d.Key, d.DB, d.Cache)
	}
	if n := rep.Drift(); n > 0 {
		fmt.Fprintf(stdout, "DRIFT: %d rows differ\n", n)
		return 1
	}
	fmt.Fprintln(stdout, "OK: the cache matches the database")
	return 0
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
