package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/mysqlenv"
)

// OrderingKeyLimit is Pub/Sub's limit on an ordering key, in bytes ("up to 1 KB"), which is also the
// limit on an attribute value: Debezium's ordering key is the row's key JSON, and a primary-key change
// carries the other key in a header (an attribute). A publish above it fails, and Debezium Server
// then exits and replays the same record on every restart: every table stalls.
const OrderingKeyLimit = 1024

// keyBound is how long one table's key JSON can get.
type keyBound struct {
	table   string
	columns []string
	// plain is the longest key JSON without escaped characters; escaped allows every character of a
	// string to be a control character (escaped as \u00XX, 6 bytes). unbounded names a column whose
	// length cannot be bounded.
	plain, escaped int
	unbounded      string
}

// keyColumn is a primary-key column as information_schema describes it.
type keyColumn struct {
	table, name, dataType, columnType string
	charLen, octetLen                 int64
	precision, scale                  int64
}

// keyBounds reads the primary keys of the tables of dbs (every non-system database when empty), or of
// tables (db.table), from information_schema and bounds their key JSON as Debezium writes it with key
// schemas off.
func keyBounds(ctx context.Context, db *sql.DB, dbs, tables []string) ([]keyBound, error) {
	q := `SELECT CONCAT(k.TABLE_SCHEMA, '.', k.TABLE_NAME), k.COLUMN_NAME, LOWER(c.DATA_TYPE), c.COLUMN_TYPE,
		COALESCE(c.CHARACTER_MAXIMUM_LENGTH, 0), COALESCE(c.CHARACTER_OCTET_LENGTH, 0),
		COALESCE(c.NUMERIC_PRECISION, 0), COALESCE(c.NUMERIC_SCALE, 0)
		FROM information_schema.KEY_COLUMN_USAGE k
		JOIN information_schema.COLUMNS c ON c.TABLE_SCHEMA = k.TABLE_SCHEMA AND c.TABLE_NAME = k.TABLE_NAME AND c.COLUMN_NAME = k.COLUMN_NAME
		WHERE k.CONSTRAINT_NAME = 'PRIMARY' AND k.TABLE_SCHEMA NOT IN ('mysql', 'sys', 'information_schema', 'performance_schema')`
	var args []any
	if len(dbs) > 0 {
		q += " AND k.TABLE_SCHEMA IN (?" + strings.Repeat(", ?", len(dbs)-1) + ")"
		for _, d := range dbs {
			args = append(args, d)
		}
	}
	q += " ORDER BY k.TABLE_SCHEMA, k.TABLE_NAME, k.ORDINAL_POSITION"
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("primary keys from information_schema: %w", err)
	}
	defer rows.Close()
	want := map[string]bool{}
	for _, t := range tables {
		want[t] = true
	}
	var out []keyBound
	for rows.Next() {
		var c keyColumn
		if err := rows.Scan(&c.table, &c.name, &c.dataType, &c.columnType, &c.charLen, &c.octetLen, &c.precision, &c.scale); err != nil {
			return nil, fmt.Errorf("primary keys from information_schema: %w", err)
		}
		if len(want) > 0 && !want[c.table] {
			continue
		}
		if len(out) == 0 || out[len(out)-1].table != c.table {
			out = append(out, keyBound{table: c.table, plain: 2, escaped: 2}) // {}
		}
		b := &out[len(out)-1]
		if len(b.columns) > 0 {
			b.plain++ // ,
			b.escaped++
		}
		b.columns = append(b.columns, c.name)
		name, _ := json.Marshal(c.name)
		plain, escaped, ok := valueBound(c)
		if !ok {
			b.unbounded = c.name + " " + c.columnType
		}
		b.plain += len(name) + 1 + plain
		b.escaped += len(name) + 1 + escaped
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("primary keys from information_schema: %w", err)
	}
	for _, t := range tables {
		found := false
		for _, b := range out {
			found = found || b.table == t
		}
		if !found {
			out = append(out, keyBound{table: t, unbounded: "no primary key (or no such table)"})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].table < out[j].table })
	return out, nil
}

// valueBound bounds one key value's JSON under the shipped settings (decimal.handling.mode=string,
// bigint.unsigned.handling.mode=long, time.precision.mode=adaptive_time_microseconds,
// binary.handling.mode=base64): plain without escapes, escaped with every string character a control
// character.
func valueBound(c keyColumn) (plain, escaped int, ok bool) {
	fixed := func(n int) (int, int, bool) { return n, n, true }
	base64 := func(bytes int64) (int, int, bool) { return fixed(int(4*((bytes+2)/3)) + 2) }
	switch c.dataType {
	case "tinyint":
		return fixed(4)
	case "smallint":
		return fixed(6)
	case "mediumint":
		return fixed(8)
	case "int", "integer":
		return fixed(11)
	case "bigint":
		return fixed(20) // unsigned above 2^63 is written negative with long
	case "year":
		return fixed(4)
	case "decimal", "numeric":
		return fixed(int(c.precision) + 5) // "-0.ddd"
	case "float", "double", "real":
		return fixed(32)
	case "date":
		return fixed(8) // days since the epoch
	case "datetime", "time":
		return fixed(21) // microseconds
	case "timestamp":
		return fixed(32) // "2038-01-19T03:14:07.999999Z"
	case "bit":
		if c.precision <= 1 {
			return fixed(5)
		}
		return base64((c.precision + 7) / 8)
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return base64(c.octetLen)
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		// UTF-8 as it is, or 2 bytes for an escaped quote or backslash (more than a 1-byte character set's 1).
		return int(max(c.octetLen, 2*c.charLen)) + 2, int(6*c.charLen) + 2, true
	case "enum", "set":
		members := strings.TrimSuffix(c.columnType[strings.IndexByte(c.columnType, '(')+1:], ")")
		// The members' quoted list is at least as long as the longest member (enum) or all of them
		// joined with commas (set).
		return len(members) + 2, 6*len(members) + 2, true
	}
	return 0, 0, false
}

// keyCheck prints, for every table, how long its key JSON can get, and returns 1 if any can exceed
// OrderingKeyLimit.
func keyCheck(ctx context.Context, db *sql.DB, dbs, tables []string, stdout, stderr io.Writer) int {
	bounds, err := keyBounds(ctx, db, dbs, tables)
	if err != nil {
		fmt.Fprintf(stderr, "cachectl: %v\n", err)
		return 2
	}
	code := 0
	for _, b := range bounds {
		cols := strings.Join(b.columns, ", ")
		switch {
		case b.unbounded != "":
			fmt.Fprintf(stdout, "%s: cannot bound its key (%s): check it by hand\n", b.table, b.unbounded)
			code = 1
		case b.plain > OrderingKeyLimit:
			fmt.Fprintf(stdout, "%s: key (%s) up to %d bytes: CAN EXCEED Pub/Sub's %d-byte ordering key; Debezium would stall every table on such a row\n", b.table, cols, b.plain, OrderingKeyLimit)
			code = 1
		case b.escaped > OrderingKeyLimit:
			fmt.Fprintf(stdout, "%s: key (%s) up to %d bytes, %d if its strings hold control characters (escaped \\u00XX): CAN EXCEED Pub/Sub's %d-byte ordering key\n", b.table, cols, b.plain, b.escaped, OrderingKeyLimit)
			code = 1
		default:
			fmt.Fprintf(stdout, "%s: key (%s) at most %d bytes: fits\n", b.table, cols, b.escaped)
		}
	}
	if code != 0 {
		fmt.Fprintln(stdout, "Fix before streaming such a table: give it a shorter key for Debezium (message.key.columns with a short unique column set, and a key template naming those columns), or leave it out of tables (README: Limits).")
	}
	return code
}

// keyCheck runs "cachectl keycheck": the database from -dsn or the MYSQL_* variables (mysqlenv).
func (e env) keyCheck(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("keycheck", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	dsnFlag := fs.String("dsn", "", "DSN of a user that can read information_schema (default: $MYSQL_DSN, or $MYSQL_ADDR, $MYSQL_USER, $MYSQL_PASSWORD)")
	databases := fs.String("databases", "", "comma-separated databases whose every table is checked")
	tables := fs.String("tables", "", "comma-separated db.table to check (default: CACHE_TABLES; with neither, every table)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *databases == "" && *tables == "" {
		*tables = e.getenv("CACHE_TABLES")
	}
	mc, err := mysqlenv.FromEnv(mysqlenv.WithDSN(*dsnFlag, e.getenv))
	if err != nil {
		return e.invalid(fmt.Errorf("the database (-dsn, or MYSQL_DSN, or MYSQL_ADDR with MYSQL_USER and MYSQL_PASSWORD): %w", err))
	}
	db, err := mc.Open()
	if err != nil {
		return e.invalid(err)
	}
	defer db.Close()
	return keyCheck(ctx, db, splitList(*databases), splitList(*tables), e.stdout, e.stderr)
}
