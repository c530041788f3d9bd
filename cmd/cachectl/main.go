// Command cachectl is the operator's tool for a cloudsql-cache deployment: read a cached row with its
// version, list and replay dead letters, narrow the Debezium MySQL user's grants, have Debezium snapshot
// one table incrementally, remove what an older version epoch left behind, and check before streaming
// that no table's key can exceed Pub/Sub's ordering-key limit.
//
//	cachectl get <key> | <db.table> <key value>...
//	cachectl dlq list|replay [flags]
//	cachectl grant-debezium [flags]
//	cachectl snapshot -table db.table [-where COND] [-dry-run]
//	cachectl sweep-epoch -epoch N [-match PATTERN]
//	cachectl verify [verify's flags]
//	cachectl keycheck [-databases a,b | -tables db.t,…]
//
// Redis is reached with the function's variables (REDIS_ADDR, REDIS_PASSWORD, REDIS_TLS,
// REDIS_CA_FILE, …), the table policy read from its CACHE_* variables, Pub/Sub with Application Default
// Credentials, MySQL with MYSQL_DSN or MYSQL_ADDR, MYSQL_USER, MYSQL_PASSWORD (mysqlenv).
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

const usage = `usage:
  cachectl get <key>                            a cached row's version and JSON (or "deleted")
  cachectl get <db.table> <value>...            the same, by the row's primary-key values in key order
                                                (name=value for a template that names its columns)
  cachectl dlq list [flags]                     the dead letters, with their reason, table and key
  cachectl dlq replay [-dry-run] [flags]        republish dead letters to their table's topic with their
                                                original ordering key, then acknowledge them
  cachectl grant-debezium [flags]               narrow the Debezium MySQL user to what it needs, and
                                                create its signal table
  cachectl snapshot -table db.table [-where COND] [-dry-run]
                                                signal Debezium to snapshot one table incrementally
                                                while it streams (adding a table)
  cachectl sweep-epoch -epoch N [-match GLOB]   delete rows and tombstones of epochs older than N
  cachectl verify [flags]                       run verify (the drift checker) from the tools image
  cachectl keycheck [-databases LIST | -tables LIST]
                                                tables whose key JSON can exceed Pub/Sub's 1,024-byte
                                                ordering key (exit 1 if any); default tables: CACHE_TABLES

Run "cachectl <command> -h" for a command's flags. Redis is reached with REDIS_ADDR, REDIS_USERNAME,
REDIS_PASSWORD, REDIS_DB, REDIS_TLS, REDIS_CA_FILE and REDIS_TIMEOUT, as the function does; tables
with CACHE_*; MySQL with MYSQL_DSN or MYSQL_ADDR, MYSQL_USER, MYSQL_PASSWORD, MYSQL_CA_FILE.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

// deps are what tests replace: nothing yet but the environment and the output.
type env struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	e := env{getenv: getenv, stdout: stdout, stderr: stderr}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	switch args[0] {
	case "get":
		return e.get(ctx, args[1:])
	case "sweep-epoch":
		return e.sweepEpoch(ctx, args[1:])
	case "dlq":
		return e.dlq(ctx, args[1:])
	case "grant-debezium":
		return e.grantDebezium(ctx, args[1:])
	case "snapshot":
		return e.snapshot(ctx, args[1:])
	case "verify":
		return e.verify(args[1:])
	case "keycheck":
		return e.keyCheck(ctx, args[1:])
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	}
	fmt.Fprintf(stderr, "cachectl: unknown command %q\n%s", args[0], usage)
	return 2
}

// fail reports invalid configuration: every problem, at once.
func (e env) invalid(err error) int {
	fmt.Fprintf(e.stderr, "cachectl: invalid configuration:\n%v\n", err)
	return 2
}
