package mysqlrow

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

// GoValue converts one column value from Debezium's JSON (what FromText writes, and what the function
// caches from Debezium's own events) to the Go value database/sql gives for the column, so a row read
// from the cache and the same row scanned from MySQL hold the same values. nil is SQL NULL (and
// MySQL's zero dates, which Debezium sends as null).
//
//	TINYINT … INT, YEAR       int64 (TINYINT(1)/BOOLEAN too: it is a number in MySQL and in Debezium)
//	BIGINT                    int64; BIGINT UNSIGNED uint64 (Debezium's wrapped long undone)
//	DECIMAL, NUMERIC          string, exactly the column's scale ("12.30")
//	FLOAT                     float32; DOUBLE float64
//	DATE                      time.Time, midnight UTC
//	DATETIME                  time.Time in UTC (the wall clock as stored: DATETIME has no zone)
//	TIMESTAMP                 time.Time in UTC
//	TIME                      time.Duration (TIME is a duration in MySQL: -838:59:59 to 838:59:59)
//	BIT(1)                    bool; BIT(n) []byte, big-endian, ceil(n/8) bytes as MySQL returns it
//	BINARY, VARBINARY, BLOBs  []byte
//	JSON                      json.RawMessage, compact with sorted keys (CanonicalJSON)
//	CHAR … TEXT, ENUM, SET    string
func (c *Column) GoValue(v json.RawMessage) (any, error) {
	v = bytes.TrimSpace(v)
	if len(v) == 0 || string(v) == "null" {
		return nil, nil
	}
	out, err := c.goValue(v)
	if err != nil {
		return nil, fmt.Errorf("mysqlrow: column %s (%s) value %s: %w", c.Name, c.ColumnType, clip(v), err)
	}
	return out, nil
}

func (c *Column) goValue(v json.RawMessage) (any, error) {
	switch c.DataType {
	case "tinyint", "smallint", "mediumint", "int", "integer", "year":
		return strconv.ParseInt(string(v), 10, 64)
	case "bigint":
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return nil, err
		}
		if c.Unsigned {
			return uint64(n), nil // bigint.unsigned.handling.mode=long wrapped it
		}
		return n, nil
	case "float":
		f, err := strconv.ParseFloat(string(v), 32)
		return float32(f), err
	case "double", "real":
		return strconv.ParseFloat(string(v), 64)
	case "date":
		days, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return nil, err
		}
		return time.Unix(days*86400, 0).UTC(), nil
	case "datetime":
		n, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return nil, err
		}
		if c.FSP <= 3 {
			return time.UnixMilli(n).UTC(), nil // io.debezium.time.Timestamp
		}
		return time.UnixMicro(n).UTC(), nil // io.debezium.time.MicroTimestamp
	case "time":
		us, err := strconv.ParseInt(string(v), 10, 64)
		if err != nil {
			return nil, err
		}
		return time.Duration(us) * time.Microsecond, nil
	case "bit":
		if c.Length == 1 {
			var b bool
			err := json.Unmarshal(v, &b)
			return b, err
		}
		le, err := base64String(v)
		if err != nil {
			return nil, err
		}
		// io.debezium.data.Bits is little-endian; MySQL returns the value big-endian.
		be := make([]byte, (c.Length+7)/8)
		for i := 0; i < len(be) && i < len(le); i++ {
			be[len(be)-1-i] = le[i]
		}
		return be, nil
	case "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob":
		return base64String(v)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("want a JSON string: %w", err)
	}
	switch c.DataType {
	case "timestamp":
		return time.Parse(time.RFC3339Nano, s) // io.debezium.time.ZonedTimestamp, always in UTC ("Z")
	case "json":
		doc, err := CanonicalJSON([]byte(s))
		return json.RawMessage(doc), err
	}
	return s, nil // decimal (decimal.handling.mode=string), character types, ENUM, SET
}

func base64String(v json.RawMessage) ([]byte, error) {
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		return nil, fmt.Errorf("want a base64 string: %w", err)
	}
	return base64.StdEncoding.DecodeString(s)
}

// CanonicalJSON is a JSON document compact, with its objects' keys sorted and its numbers as written:
// the form FromText caches a JSON column in, so a document printed by MySQL and the same document
// printed by Debezium's binlog decoder compare equal.
func CanonicalJSON(doc []byte) ([]byte, error) { return canonicalJSON(doc) }

// SplitRow splits a cached row, a JSON object, into its columns in order.
func SplitRow(b []byte) (debezium.Row, error) {
	cols, ok := columns(b)
	if !ok {
		return nil, fmt.Errorf("mysqlrow: the row is not a JSON object: %s", clip(b))
	}
	row := make(debezium.Row, len(cols))
	for i, c := range cols {
		row[i] = debezium.Column{Name: c.name, Value: c.value}
	}
	return row, nil
}
