// Package dbzsignal is Debezium's source signalling channel as cloudsql-cache configures it
// (debezium-server/application.properties.tmpl): the signal table in the Debezium state database, and
// the execute-snapshot signal that makes Debezium snapshot one table incrementally, in chunks, while
// it keeps streaming.
//
// A signal is a row of the table, read by Debezium from the binlog in order with the changes around
// it. Debezium also writes the snapshot's chunk watermarks there, which is why the Debezium user needs
// write access to it (it holds all privileges on the state database).
package dbzsignal

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// Table is the signal table's name in the state database, as the shipped configuration's
// signal.data.collection names it.
const Table = "debezium_signal"

// MaxData is the size of the table's data column: a signal longer than that cannot be stored.
const MaxData = 2048

var name = regexp.MustCompile(`^[A-Za-z0-9_$]{1,64}$`)

// CreateTable is the statement that creates the signal table in stateDB unless it exists. The columns
// are the ones Debezium requires (id, type, data, in that order); id holds Debezium's own watermark ids
// (a UUID and a suffix, 42 characters) as well as the signals'.
func CreateTable(stateDB string) (string, error) {
	if !name.MatchString(stateDB) {
		return "", fmt.Errorf("dbzsignal: state database %q: want 1-64 letters, digits, _ or $", stateDB)
	}
	return fmt.Sprintf("CREATE TABLE IF NOT EXISTS `%s`.`%s` (id VARCHAR(64) NOT NULL PRIMARY KEY, type VARCHAR(32) NOT NULL, data VARCHAR(%d) NULL)",
		stateDB, Table, MaxData), nil
}

// Snapshot asks for an incremental snapshot of one table, optionally of the rows matching Where only
// (Debezium's additional-conditions: a SQL condition it adds to every chunk query).
type Snapshot struct {
	DB, Table string
	Where     string
}

// Validate reports every problem with s at once.
func (s Snapshot) Validate() error {
	var errs []error
	if !name.MatchString(s.DB) || !name.MatchString(s.Table) {
		errs = append(errs, fmt.Errorf("table %q.%q: want db.table, each 1-64 letters, digits, _ or $", s.DB, s.Table))
	}
	if strings.ContainsAny(s.Where, ";#") || strings.Contains(s.Where, "--") || strings.Contains(s.Where, "/*") {
		// Debezium appends the condition to every chunk query: a comment would swallow the rest of it.
		errs = append(errs, fmt.Errorf("condition %q: no comments (--, #, /*) and no ;", s.Where))
	} else if err := balanced(s.Where); err != nil {
		errs = append(errs, fmt.Errorf("condition %q: %w", s.Where, err))
	}
	if _, err := s.Data(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Data is the signal's data column: the table as an anchored regular expression (Debezium matches
// data-collections as patterns against db.table, so a bare "a.b" would also match "aXb").
func (s Snapshot) Data() (string, error) {
	pattern := regexp.QuoteMeta(s.DB) + `\.` + regexp.QuoteMeta(s.Table)
	type condition struct {
		DataCollection string `json:"data-collection"`
		Filter         string `json:"filter"`
	}
	d := struct {
		DataCollections []string    `json:"data-collections"`
		Type            string      `json:"type"`
		Conditions      []condition `json:"additional-conditions,omitempty"`
	}{DataCollections: []string{pattern}, Type: "incremental"}
	if s.Where != "" {
		// Debezium appends the filter bare, "WHERE <chunk bounds> AND <filter>" (JdbcConnection's
		// buildSelectWithRowLimits): unparenthesized, "a OR b" would bind as "(bounds AND a) OR b" and
		// every chunk would read b's rows wherever they are, outside its key range.
		d.Conditions = []condition{{DataCollection: pattern, Filter: filter(s.Where)}}
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false) // a condition's < > & as written, for the operator reading the signal table
	if err := enc.Encode(d); err != nil {
		return "", fmt.Errorf("dbzsignal: %w", err)
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(b) > MaxData {
		return "", fmt.Errorf("dbzsignal: the signal's data is %d bytes, the signal table holds %d: shorten the condition", len(b), MaxData)
	}
	return string(b), nil
}

// Insert is the statement that sends s, with its arguments (id, type, data).
func Insert(stateDB string, s Snapshot) (stmt string, args []any, err error) {
	if !name.MatchString(stateDB) {
		return "", nil, fmt.Errorf("dbzsignal: state database %q: want 1-64 letters, digits, _ or $", stateDB)
	}
	if err := s.Validate(); err != nil {
		return "", nil, err
	}
	data, _ := s.Data() // valid: Validate
	id := make([]byte, 16)
	_, _ = rand.Read(id) // never fails (crypto/rand)
	return fmt.Sprintf("INSERT INTO `%s`.`%s` (id, type, data) VALUES (?, ?, ?)", stateDB, Table),
		[]any{"cloudsql-cache-" + hex.EncodeToString(id), "execute-snapshot", data}, nil
}

// Check reports, before a signal is sent, what would make Debezium skip or fail it: a missing signal
// table, a missing table, a table without a primary key (Debezium snapshots incrementally by key
// ranges and skips such a table), or a condition the database refuses (every chunk query would fail).
func Check(ctx context.Context, db *sql.DB, stateDB string, s Snapshot) error {
	if err := s.Validate(); err != nil {
		return err
	}
	var n int
	if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?", stateDB, Table).Scan(&n); err != nil {
		return fmt.Errorf("dbzsignal: look up the signal table: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("dbzsignal: no signal table %s.%s: create it with cachectl grant-debezium (Terraform's db-setup job runs it), then restart Debezium", stateDB, Table)
	}
	var keys int
	err := db.QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ?), "+
		"(SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND INDEX_NAME = 'PRIMARY')",
		s.DB, s.Table, s.DB, s.Table).Scan(&n, &keys)
	if err != nil {
		return fmt.Errorf("dbzsignal: look up %s.%s: %w", s.DB, s.Table, err)
	}
	if n == 0 {
		return fmt.Errorf("dbzsignal: no table %s.%s (or no privilege to see it)", s.DB, s.Table)
	}
	if keys == 0 {
		return fmt.Errorf("dbzsignal: %s.%s has no primary key: Debezium snapshots incrementally by key ranges and would skip it", s.DB, s.Table)
	}
	if s.Where != "" {
		// The shape of Debezium's chunk query: bounds, then the filter as the signal carries it.
		q := fmt.Sprintf("SELECT 1 FROM `%s`.`%s` WHERE 1 = 0 AND %s LIMIT 0", s.DB, s.Table, filter(s.Where))
		rows, err := db.QueryContext(ctx, q)
		if err != nil {
			return fmt.Errorf("dbzsignal: the condition %q: %w", s.Where, err)
		}
		rows.Close()
	}
	return nil
}

// Send checks s (Check) and inserts it into the signal table; it returns the signal's id, which
// Debezium's log names when the snapshot starts.
func Send(ctx context.Context, db *sql.DB, stateDB string, s Snapshot) (string, error) {
	if err := Check(ctx, db, stateDB, s); err != nil {
		return "", err
	}
	stmt, args, err := Insert(stateDB, s)
	if err != nil {
		return "", err
	}
	if _, err := db.ExecContext(ctx, stmt, args...); err != nil {
		return "", fmt.Errorf("dbzsignal: send the signal: %w", err)
	}
	return args[0].(string), nil
}

// filter is a condition as the signal carries it: parenthesized, so that it binds as one term of the
// chunk query's AND (Validate has checked that its parentheses balance, so it cannot close them).
func filter(where string) string { return "(" + where + ")" }

// balanced reports an error unless every parenthesis of cond outside quotes ('…', "…", `…`) is
// closed, none before it opens, and every quote is closed: a condition such as "1) OR (1" would
// otherwise escape the parentheses filter puts around it.
func balanced(cond string) error {
	depth := 0
	var quote byte
	for i := 0; i < len(cond); i++ {
		ch := cond[i]
		switch {
		case quote != 0:
			switch {
			case ch == '\\' && quote != '`':
				i++ // MySQL's backslash escape in a string (NO_BACKSLASH_ESCAPES off)
			case ch == quote && i+1 < len(cond) && cond[i+1] == quote:
				i++ // a doubled quote stands for itself
			case ch == quote:
				quote = 0
			}
		case ch == '\'' || ch == '"' || ch == '`':
			quote = ch
		case ch == '(':
			depth++
		case ch == ')':
			if depth == 0 {
				return errors.New("a ) closes a parenthesis it did not open")
			}
			depth--
		}
	}
	switch {
	case quote != 0:
		return fmt.Errorf("an unterminated %c", quote)
	case depth > 0:
		return errors.New("a ( is not closed")
	}
	return nil
}
