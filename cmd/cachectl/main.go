// Command cachectl is the operator's tool for a cloudsql-cache Redis: read a cached row with its
// version, remove what an older version epoch left behind, and check before streaming that no table's
// key can exceed Pub/Sub's ordering-key limit.
//
//	cachectl get <key>
//	cachectl sweep-epoch -epoch N [-match PATTERN]
//	cachectl keycheck -dsn DSN [-databases a,b | -tables db.t,…]
//
// It connects to Redis with the function's variables: REDIS_ADDR, REDIS_PASSWORD, REDIS_TLS,
// REDIS_CA_FILE, …
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/redisenv"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

const usage = `usage:
  cachectl get <key>                            print a cached row's version and JSON (or "deleted")
  cachectl sweep-epoch -epoch N [-match GLOB]   delete rows and tombstones of epochs older than N
  cachectl keycheck -dsn DSN [-databases LIST | -tables LIST]
                                                tables whose key JSON can exceed Pub/Sub's 1,024-byte
                                                ordering key (exit 1 if any); default tables: CACHE_TABLES

Redis is reached with REDIS_ADDR, REDIS_USERNAME, REDIS_PASSWORD, REDIS_DB, REDIS_TLS, REDIS_CA_FILE
and REDIS_TIMEOUT, as the function does.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	if args[0] == "keycheck" {
		return runKeyCheck(ctx, args[1:], getenv, stdout, stderr)
	}
	cfg, err := redisenv.FromEnv(getenv)
	if err != nil {
		fmt.Fprintf(stderr, "cachectl: %v\n", err)
		return 2
	}
	// An operator's command may scan a large keyspace: give each command more room than the function's.
	cfg.Timeout = max(cfg.Timeout, 5*time.Second)
	opts, err := cfg.Options()
	if err != nil {
		fmt.Fprintf(stderr, "cachectl: %v\n", err)
		return 2
	}
	rdb := redis.NewClient(opts)
	defer rdb.Close()

	switch args[0] {
	case "get":
		if len(args) != 2 {
			fmt.Fprint(stderr, usage)
			return 2
		}
		e, found, err := rowcache.Get(ctx, rdb, args[1])
		switch {
		case err != nil:
			fmt.Fprintf(stderr, "cachectl: %v\n", err)
			return 1
		case !found:
			fmt.Fprintf(stdout, "%s: not cached\n", args[1])
			return 1
		case e.Deleted():
			fmt.Fprintf(stdout, "%s: deleted at version %s\n", args[1], e.Version)
		default:
			fmt.Fprintf(stdout, "%s: version %s\n%s\n", args[1], e.Version, e.Row)
		}
		return 0
	case "sweep-epoch":
		fs := flag.NewFlagSet("sweep-epoch", flag.ContinueOnError)
		fs.SetOutput(stderr)
		epoch := fs.Uint64("epoch", 0, "the current CACHE_VERSION_EPOCH; keys of older epochs are deleted (required, > 0)")
		match := fs.String("match", "*", "SCAN MATCH glob limiting the keys examined (e.g. 'inventory.*')")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *epoch == 0 {
			fmt.Fprintln(stderr, "cachectl: sweep-epoch needs -epoch N with N > 0, the epoch the function now runs with")
			return 2
		}
		n, err := rowcache.NewStore(rdb, 0).SweepEpoch(ctx, rowcache.TableKeys{Pattern: *match}, *epoch)
		fmt.Fprintf(stdout, "deleted %d keys of epochs older than %d\n", n, *epoch)
		if err != nil {
			fmt.Fprintf(stderr, "cachectl: %v (safe to run again)\n", err)
			return 1
		}
		return 0
	}
	fmt.Fprint(stderr, usage)
	return 2
}

func runKeyCheck(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("keycheck", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dsn := fs.String("dsn", getenv("MYSQL_DSN"), "go-sql-driver/mysql DSN of a user that can read information_schema (default $MYSQL_DSN)")
	databases := fs.String("databases", "", "comma-separated databases whose every table is checked")
	tables := fs.String("tables", "", "comma-separated db.table to check (default: CACHE_TABLES; with neither, every table)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *databases == "" && *tables == "" {
		*tables = getenv("CACHE_TABLES")
	}
	if *dsn == "" {
		fmt.Fprintln(stderr, "cachectl: keycheck needs -dsn (or MYSQL_DSN)")
		return 2
	}
	db, err := sql.Open("mysql", *dsn)
	if err != nil {
		fmt.Fprintf(stderr, "cachectl: -dsn: %v\n", err)
		return 2
	}
	defer db.Close()
	return keyCheck(ctx, db, list(*databases), list(*tables), stdout, stderr)
}

func list(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
