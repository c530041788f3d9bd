// Package mysqlrow turns MySQL row values into exactly the JSON Debezium's MySQL connector publishes
// with schemas off and the settings the README recommends (decimal.handling.mode=string,
// bigint.unsigned.handling.mode=long, time.precision.mode=adaptive_time_microseconds,
// binary.handling.mode=base64), from a database/sql query: the drift checker compares the database
// with the cache through it, and the read path fills the cache with it on a miss, so its bytes are
// those the function writes from Debezium's streamed changes (SameRow says where a snapshot's differ).
package mysqlrow

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/go-sql-driver/mysql"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

// Column is one column of a table, as information_schema.COLUMNS describes it.
type Column struct {
	Name       string
	DataType   string // DATA_TYPE, lower case: "int", "decimal", "datetime", "enum", …
	ColumnType string // COLUMN_TYPE: "int(10) unsigned", "decimal(10,2)", "enum('a','b')", …
	Unsigned   bool
	Scale      int // NUMERIC_SCALE of DECIMAL
	FSP        int // DATETIME_PRECISION of DATETIME, TIMESTAMP and TIME
	// Length is the byte length of BINARY(n) (binlog strips its trailing zero bytes; Debezium pads
	// them back) and the bit count of BIT(n).
	Length int
	// Members are the values of an ENUM or SET, in definition order.
	Members []string
	// Collation is COLLATION_NAME of a character column ("" for others): it decides what "=" on the
	// column matches (case, accents, trailing spaces).
	Collation string
}

// Table is a table's columns in ordinal order and its primary key.
type Table struct {
	DB, Name   string
	Columns    []Column
	PrimaryKey []string // column names in key order; empty for a table without a primary key
}

// ErrUnsupported is wrapped by the error LoadTable returns for a column whose type this package cannot
// encode as Debezium does (spatial types, MariaDB's UUID/INET types, non-UTF-8 character sets).
var ErrUnsupported = errors.New("mysqlrow: unsupported column")

// LoadTable reads schema.table's columns and primary key from information_schema. It also checks that
// db's connections run in UTC (see CheckDSN): TIMESTAMP values are returned in the session time zone.
func LoadTable(ctx context.Context, db *sql.DB, schema, table string) (*Table, error) {
	if err := checkSession(ctx, db); err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx, `SELECT COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE,
		COALESCE(NUMERIC_SCALE, 0), COALESCE(NUMERIC_PRECISION, 0), COALESCE(DATETIME_PRECISION, 0),
		COALESCE(CHARACTER_OCTET_LENGTH, 0), COALESCE(CHARACTER_SET_NAME, ''), COALESCE(COLLATION_NAME, '')
		FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("mysqlrow: columns of %s.%s: %w", schema, table, err)
	}
	defer rows.Close()
	t := &Table{DB: schema, Name: table}
	for rows.Next() {
		var c Column
		var precision, octets int64
		var charset string
		if err := rows.Scan(&c.Name, &c.DataType, &c.ColumnType, &c.Scale, &precision, &c.FSP, &octets, &charset, &c.Collation); err != nil {
			return nil, fmt.Errorf("mysqlrow: columns of %s.%s: %w", schema, table, err)
		}
		if err := c.init(precision, octets, charset); err != nil {
			return nil, fmt.Errorf("%s.%s: %w", schema, table, err)
		}
		t.Columns = append(t.Columns, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("mysqlrow: columns of %s.%s: %w", schema, table, err)
	}
	if len(t.Columns) == 0 {
		return nil, fmt.Errorf("mysqlrow: table %s.%s does not exist (or has no columns visible to this user)", schema, table)
	}
	pk, err := db.QueryContext(ctx, `SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
		WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`, schema, table)
	if err != nil {
		return nil, fmt.Errorf("mysqlrow: primary key of %s.%s: %w", schema, table, err)
	}
	defer pk.Close()
	for pk.Next() {
		var name string
		if err := pk.Scan(&name); err != nil {
			return nil, fmt.Errorf("mysqlrow: primary key of %s.%s: %w", schema, table, err)
		}
		t.PrimaryKey = append(t.PrimaryKey, name)
	}
	if err := pk.Err(); err != nil {
		return nil, fmt.Errorf("mysqlrow: primary key of %s.%s: %w", schema, table, err)
	}
	return t, nil
}

func (c *Column) init(precision, octets int64, charset string) error {
	c.Unsigned = strings.Contains(strings.ToLower(c.ColumnType), "unsigned")
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "bigint", "decimal", "numeric", "float", "double", "real", "year", "json":
	case "date", "datetime", "timestamp", "time":
	case "bit":
		c.Length = int(precision)
	case "binary":
		c.Length = int(octets)
	case "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
	case "char", "varchar", "tinytext", "text", "mediumtext", "longtext":
		switch strings.ToLower(charset) {
		case "utf8mb4", "utf8mb3", "utf8", "ascii", "":
		default:
			// The binlog carries the column's own bytes while a query returns them converted to the
			// connection's utf8mb4: the two paths would disagree.
			return fmt.Errorf("%w: column %s has character set %s; only utf8mb4, utf8mb3 and ascii are supported", ErrUnsupported, c.Name, charset)
		}
	case "enum", "set":
		m, err := parseMembers(c.ColumnType)
		if err != nil {
			return fmt.Errorf("column %s: %w", c.Name, err)
		}
		c.Members = m
	default:
		return fmt.Errorf("%w: column %s has type %s", ErrUnsupported, c.Name, c.ColumnType)
	}
	return nil
}

// parseMembers reads the quoted values of "enum('a','b”c')" or "set(…)".
func parseMembers(columnType string) ([]string, error) {
	open := strings.IndexByte(columnType, '(')
	if open < 0 || !strings.HasSuffix(columnType, ")") {
		return nil, fmt.Errorf("mysqlrow: cannot read the members of %q", columnType)
	}
	s := columnType[open+1 : len(columnType)-1]
	var out []string
	for len(s) > 0 {
		if s[0] != '\'' {
			return nil, fmt.Errorf("mysqlrow: cannot read the members of %q", columnType)
		}
		var b strings.Builder
		i := 1
		for ; i < len(s); i++ {
			if s[i] == '\'' {
				if i+1 < len(s) && s[i+1] == '\'' {
					b.WriteByte('\'')
					i++
					continue
				}
				break
			}
			if s[i] == '\\' && i+1 < len(s) {
				i++
			}
			b.WriteByte(s[i])
		}
		if i >= len(s) {
			return nil, fmt.Errorf("mysqlrow: unterminated member in %q", columnType)
		}
		out = append(out, b.String())
		s = strings.TrimPrefix(s[i+1:], ",")
	}
	return out, nil
}

// Column returns the named column.
func (t *Table) Column(name string) (*Column, bool) {
	for i := range t.Columns {
		if t.Columns[i].Name == name {
			return &t.Columns[i], true
		}
	}
	return nil, false
}

// SelectList is the select list that ScanRow reads: every column in ordinal order, quoted. FLOAT
// columns are read as CAST(… AS DOUBLE) because the text protocol prints a FLOAT with only 6
// significant digits, which would not round-trip to the stored value Debezium sees in the binlog.
func (t *Table) SelectList() string {
	var b strings.Builder
	for i, c := range t.Columns {
		if i > 0 {
			b.WriteByte(',')
		}
		if c.DataType == "float" {
			b.WriteString("CAST(" + QuoteIdent(c.Name) + " AS DOUBLE) AS " + QuoteIdent(c.Name))
			continue
		}
		b.WriteString(QuoteIdent(c.Name))
	}
	return b.String()
}

// QuoteIdent quotes a MySQL identifier with backticks.
func QuoteIdent(name string) string { return "`" + strings.ReplaceAll(name, "`", "``") + "`" }

// QualifiedName is `db`.`table`, quoted.
func (t *Table) QualifiedName() string { return QuoteIdent(t.DB) + "." + QuoteIdent(t.Name) }

// ScanRow reads the current row of rows, which must come from a query selecting t.SelectList(), as
// ordered columns with Debezium's JSON values.
func (t *Table) ScanRow(rows *sql.Rows) (debezium.Row, error) {
	row, _, err := t.scan(rows, false)
	return row, err
}

// ScanRowText is ScanRow that also returns each column's value as the server printed it (nil for
// NULL), e.g. to continue a keyset pagination from the last primary key.
func (t *Table) ScanRowText(rows *sql.Rows) (debezium.Row, []*string, error) {
	return t.scan(rows, true)
}

func (t *Table) scan(rows *sql.Rows, keepText bool) (debezium.Row, []*string, error) {
	raw := make([]sql.RawBytes, len(t.Columns))
	dest := make([]any, len(raw))
	for i := range raw {
		dest[i] = &raw[i]
	}
	if err := rows.Scan(dest...); err != nil {
		return nil, nil, fmt.Errorf("mysqlrow: scan %s.%s (select t.SelectList(), and only it): %w", t.DB, t.Name, err)
	}
	var text []*string
	if keepText {
		text = make([]*string, len(raw))
		for i, v := range raw {
			if v != nil {
				s := string(v)
				text[i] = &s
			}
		}
	}
	row := make(debezium.Row, len(t.Columns))
	for i := range t.Columns {
		c := &t.Columns[i]
		var v []byte
		if raw[i] != nil {
			v = raw[i]
		}
		j, err := c.FromText(v, raw[i] == nil)
		if err != nil {
			return nil, nil, fmt.Errorf("mysqlrow: %s.%s: %w", t.DB, t.Name, err)
		}
		row[i] = debezium.Column{Name: c.Name, Value: j}
	}
	return row, text, nil
}

// Key returns the primary-key columns of row, in key order: Debezium's message key. It returns nil for
// a table without a primary key (Debezium then sends no key).
func (t *Table) Key(row debezium.Row) (debezium.Row, error) {
	if len(t.PrimaryKey) == 0 {
		return nil, nil
	}
	key := make(debezium.Row, 0, len(t.PrimaryKey))
	for _, name := range t.PrimaryKey {
		v, ok := row.Get(name)
		if !ok {
			return nil, fmt.Errorf("mysqlrow: %s.%s: key column %s is not in the row", t.DB, t.Name, name)
		}
		key = append(key, debezium.Column{Name: name, Value: v})
	}
	return key, nil
}

// CheckDSN validates a go-sql-driver/mysql DSN for this package and returns it with the settings it
// needs filled in: parseTime must be off (ScanRow reads DATETIME and TIMESTAMP as text, exactly as the
// server prints them), and the session time zone must be UTC (time_zone='+00:00'), because the server
// prints TIMESTAMP values in the session's time zone while Debezium sends them in UTC. loc is set to UTC
// so that nothing else in the driver converts them.
func CheckDSN(dsn string) (string, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return "", fmt.Errorf("mysqlrow: bad DSN: %w", err)
	}
	if cfg.ParseTime {
		return "", errors.New("mysqlrow: DSN has parseTime=true; remove it: rows are read as the server's text")
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	switch tz := cfg.Params["time_zone"]; tz {
	case "":
		cfg.Params["time_zone"] = "'+00:00'"
	case "'+00:00'", "'UTC'", "%27%2B00%3A00%27":
	default:
		return "", fmt.Errorf("mysqlrow: DSN sets time_zone=%s; it must be '+00:00' (TIMESTAMP values are read in the session time zone)", tz)
	}
	return cfg.FormatDSN(), nil
}

func checkSession(ctx context.Context, db *sql.DB) error {
	var tz, system string
	if err := db.QueryRowContext(ctx, "SELECT @@session.time_zone, @@system_time_zone").Scan(&tz, &system); err != nil {
		return fmt.Errorf("mysqlrow: read the session time zone: %w", err)
	}
	switch {
	case tz == "+00:00" || tz == "UTC" || tz == "+0:00":
	case tz == "SYSTEM" && (system == "UTC" || system == "GMT"):
	default:
		return fmt.Errorf("mysqlrow: the session time zone is %q (system %q); open the database with a DSN passed through CheckDSN (time_zone='+00:00')", tz, system)
	}
	return nil
}
