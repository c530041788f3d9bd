package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"

	_ "github.com/go-sql-driver/mysql"

	"github.com/cloudsql-cache/cloudsql-cache/internal/dbzsignal"
	"github.com/cloudsql-cache/cloudsql-cache/mysqlenv"
)

var (
	userName = regexp.MustCompile(`^[A-Za-z0-9_]{1,32}$`)
	dbName   = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)
)

// grantDebezium narrows the Debezium user to what the MySQL connector and its JDBC offset and schema
// history stores need (Cloud SQL gives every user its API creates the broad cloudsqlsuperuser role), and
// creates the signal table in the state database.
// Run as an administrator (the Terraform module runs it as its admin user from a Cloud Run job on
// every change of what it grants).
func (e env) grantDebezium(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("grant-debezium", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	user := fs.String("user", "debezium", "the Debezium MySQL user")
	host := fs.String("host", "%", "its host part")
	state := fs.String("state-database", "debezium_state", "the database of its offsets and schema history (all privileges there)")
	databases := fs.String("databases", "", "comma-separated captured databases (SELECT there; required)")
	lockTables := fs.Bool("lock-tables", false, "also LOCK TABLES on the captured databases (snapshot.locking.mode minimal or extended)")
	dsnFlag := fs.String("dsn", "", "DSN of an administrator (default: $MYSQL_DSN, or $MYSQL_ADDR, $MYSQL_USER, $MYSQL_PASSWORD)")
	dryRun := fs.Bool("dry-run", false, "print the statements, run nothing")
	recreate := fs.Bool("recreate-signal-table", false, "drop the signal table and create it again, once, while Debezium streams: for a deployment whose Debezium streamed before it captured the state database (debezium-server/README.md)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var problems []error
	if !userName.MatchString(*user) {
		problems = append(problems, fmt.Errorf("-user %q: 1-32 letters, digits or underscores", *user))
	}
	if strings.ContainsAny(*host, `'\`) || *host == "" {
		problems = append(problems, fmt.Errorf("-host %q: a MySQL host pattern without quotes", *host))
	}
	dbs := splitList(*databases)
	if len(dbs) == 0 {
		problems = append(problems, errors.New("-databases: required, the captured databases"))
	}
	for _, d := range append(dbs, *state) {
		if !dbName.MatchString(d) {
			problems = append(problems, fmt.Errorf("database %q: letters, digits, _ or $", d))
		}
	}
	var dsn string
	if !*dryRun {
		var err error
		if dsn, err = e.mysqlDSN(*dsnFlag, "an administrator's connection"); err != nil {
			problems = append(problems, err)
		}
	}
	if err := errors.Join(problems...); err != nil {
		return e.invalid(err)
	}
	account := "'" + *user + "'@'" + *host + "'"
	on := "SELECT"
	if *lockTables {
		on += ", LOCK TABLES"
	}
	grants := []string{
		// What the MySQL connector needs server-wide: the binlog (REPLICATION SLAVE, REPLICATION CLIENT),
		// the databases list, and RELOAD for the snapshot's FLUSH (with a locking mode other than none).
		"GRANT RELOAD, SHOW DATABASES, REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO " + account,
	}
	for _, d := range dbs {
		grants = append(grants, "GRANT "+on+" ON `"+d+"`.* TO "+account)
	}
	grants = append(grants, "GRANT ALL PRIVILEGES ON `"+*state+"`.* TO "+account)
	// The signal table (cachectl snapshot writes signals there, Debezium its chunk watermarks): created
	// here, before Debezium starts with it configured, so that its schema is in Debezium's history.
	if signal, err := dbzsignal.CreateTable(*state); err == nil {
		if *recreate {
			// Debezium records the schema of the table it sees created in the binlog.
			grants = append(grants, "DROP TABLE IF EXISTS `"+*state+"`.`"+dbzsignal.Table+"`")
		}
		grants = append(grants, signal)
	}
	if *dryRun {
		fmt.Fprintf(e.stdout, "-- revoke every role and privilege of %s, then:\nREVOKE ALL PRIVILEGES, GRANT OPTION FROM %s;\n%s;\n", account, account, strings.Join(grants, ";\n"))
		return 0
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		fmt.Fprintf(e.stderr, "cachectl: %v\n", err)
		return 2
	}
	defer db.Close()
	// One connection: the statements are a sequence.
	db.SetMaxOpenConns(1)
	roles, err := rolesOf(ctx, db, account)
	if err != nil {
		fmt.Fprintf(e.stderr, "cachectl: %v\n", err)
		return 1
	}
	var stmts []string
	for _, r := range roles {
		stmts = append(stmts, "REVOKE "+r+" FROM "+account)
	}
	stmts = append(stmts, "REVOKE ALL PRIVILEGES, GRANT OPTION FROM "+account)
	stmts = append(stmts, grants...)
	for _, s := range stmts {
		if _, err := db.ExecContext(ctx, s); err != nil {
			fmt.Fprintf(e.stderr, "cachectl: %s: %v (safe to run again)\n", s, err)
			return 1
		}
		fmt.Fprintln(e.stdout, s)
	}
	if len(roles) > 0 {
		// No default role left to activate at login: MySQL 8 says SET DEFAULT ROLE NONE TO, MariaDB FOR.
		s := "SET DEFAULT ROLE NONE TO " + account
		if _, err := db.ExecContext(ctx, s); err != nil {
			s = "SET DEFAULT ROLE NONE FOR " + account
			if _, err2 := db.ExecContext(ctx, s); err2 != nil {
				fmt.Fprintf(e.stderr, "cachectl: SET DEFAULT ROLE NONE: %v; %v (safe to run again)\n", err, err2)
				return 1
			}
		}
		fmt.Fprintln(e.stdout, s)
	}
	after, err := showGrants(ctx, db, account)
	if err != nil {
		fmt.Fprintf(e.stderr, "cachectl: %v\n", err)
		return 1
	}
	fmt.Fprintf(e.stdout, "-- %s now holds:\n%s\n", account, strings.Join(after, "\n"))
	return 0
}

// mysqlDSN is the DSN of the -dsn flag's value, else of the MYSQL_* variables (mysqlenv); what names
// the connection in the error.
func (e env) mysqlDSN(flagValue, what string) (string, error) {
	mc, err := mysqlenv.FromEnv(mysqlenv.WithDSN(flagValue, e.getenv))
	if err != nil {
		return "", fmt.Errorf("%s (-dsn, or MYSQL_DSN, or MYSQL_ADDR with MYSQL_USER and MYSQL_PASSWORD): %w", what, err)
	}
	dsn, err := mc.FormatDSN()
	if err != nil {
		return "", fmt.Errorf("%s (-dsn, or MYSQL_DSN, or MYSQL_ADDR with MYSQL_USER and MYSQL_PASSWORD): %w", what, err)
	}
	return dsn, nil
}

// rolesOf returns the roles granted to account, each as SHOW GRANTS names it (`r`@`%` in MySQL, `r`
// in MariaDB), ready for a REVOKE.
func rolesOf(ctx context.Context, db *sql.DB, account string) ([]string, error) {
	lines, err := showGrants(ctx, db, account)
	if err != nil {
		return nil, err
	}
	var roles []string
	for _, l := range lines {
		what, _, ok := strings.Cut(strings.TrimPrefix(l, "GRANT "), " TO ")
		if !strings.HasPrefix(l, "GRANT ") || !ok || strings.Contains(what, " ON ") {
			continue // a privilege grant (GRANT … ON … TO …), not a role
		}
		for _, r := range strings.Split(what, ",") {
			roles = append(roles, strings.TrimSpace(r))
		}
	}
	return roles, nil
}

func showGrants(ctx context.Context, db *sql.DB, account string) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SHOW GRANTS FOR "+account)
	if err != nil {
		return nil, fmt.Errorf("the grants of %s (does the user exist?): %w", account, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// verify runs the verify binary installed next to cachectl (the tools image has both): a Cloud Run
// job's execution can override only the arguments of its container, not the command.
func (e env) verify(args []string) int {
	self, err := os.Executable()
	if err != nil {
		fmt.Fprintf(e.stderr, "cachectl: %v\n", err)
		return 2
	}
	bin := filepath.Join(filepath.Dir(self), "verify")
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(e.stderr, "cachectl: no verify binary next to cachectl (%v): run verify directly (go run ./cmd/verify)\n", err)
		return 2
	}
	err = syscall.Exec(bin, append([]string{bin}, args...), os.Environ())
	fmt.Fprintf(e.stderr, "cachectl: exec %s: %v\n", bin, err)
	return 2
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
