package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/internal/dbzsignal"
)

// snapshot sends Debezium an execute-snapshot signal of type incremental for one table through the
// signal table in its state database (README: Adding a table): Debezium reads the table in chunks
// while it keeps streaming, and the function applies the rows under the version guard. The table must
// already be in Debezium's include-list (Terraform's tables) and Debezium restarted with it; a table
// Debezium does not capture is skipped by Debezium with a warning in its log.
func (e env) snapshot(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("snapshot", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	table := fs.String("table", "", "the table to snapshot, db.table (required)")
	where := fs.String("where", "", "snapshot only the rows matching this SQL condition (Debezium's additional-conditions)")
	state := fs.String("state-database", "debezium_state", "Debezium's state database, which holds the signal table "+dbzsignal.Table)
	dsnFlag := fs.String("dsn", "", "DSN of a user with INSERT on the signal table (default: $MYSQL_DSN, or $MYSQL_ADDR, $MYSQL_USER, $MYSQL_PASSWORD)")
	dryRun := fs.Bool("dry-run", false, "print the signal, send nothing")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var problems []error
	if fs.NArg() > 0 {
		problems = append(problems, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	db, name, ok := strings.Cut(*table, ".")
	if *table == "" {
		problems = append(problems, errors.New("-table: required, db.table"))
	} else if !ok || strings.Contains(name, ".") {
		problems = append(problems, fmt.Errorf("-table %q: want db.table", *table))
	}
	s := dbzsignal.Snapshot{DB: db, Table: name, Where: *where}
	stmt, sigArgs, err := dbzsignal.Insert(*state, s)
	if err != nil && *table != "" && ok {
		problems = append(problems, err)
	}
	var dsn string
	if !*dryRun {
		var err error
		if dsn, err = e.mysqlDSN(*dsnFlag, "a MySQL connection"); err != nil {
			problems = append(problems, err)
		}
		if ok && len(problems) == 0 {
			// The function would ignore every row of a table it does not cache: the apply that adds the
			// table to Terraform's tables comes first (the operator job has the function's CACHE_*).
			if _, err := e.table(*table); err != nil {
				problems = append(problems, fmt.Errorf("%w: add it to Terraform's tables and apply first", err))
			}
		}
	}
	if err := errors.Join(problems...); err != nil {
		return e.invalid(err)
	}
	if *dryRun {
		fmt.Fprintf(e.stdout, "%s; -- with id %q, type %q, data %s\n", stmt, sigArgs[0], sigArgs[1], sigArgs[2])
		return 0
	}
	conn, err := sql.Open("mysql", dsn)
	if err != nil {
		fmt.Fprintf(e.stderr, "cachectl: %v\n", err)
		return 2
	}
	defer conn.Close()
	id, err := dbzsignal.Send(ctx, conn, *state, s)
	if err != nil {
		fmt.Fprintf(e.stderr, "cachectl: %v\n", err)
		return 1
	}
	fmt.Fprintf(e.stdout, "sent execute-snapshot %s of %s (incremental). Debezium logs \"incremental snapshotting of table '%s' finished\" at its end; then run cachectl verify -tables %s.\n",
		id, *table, *table, *table)
	return 0
}
