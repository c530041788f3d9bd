// Package debezium decodes the MySQL change events that Debezium Server publishes to Pub/Sub in its JSON
// format, with or without the Kafka Connect schema envelope, into a small event model: what kind of
// message it is, the operation, the source position, and the row images as ordered columns.
package debezium

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/cloudsql-cache/cloudsql-cache/internal/jsonscan"
)

// Kind is the kind of message Debezium published.
type Kind int

const (
	// Change is a row change (op c, u, d, r) or a table truncate (op t).
	Change Kind = iota + 1
	// Heartbeat is a periodic {"ts_ms":…} message proving the connector is alive.
	Heartbeat
	// SchemaChange is a DDL event (include.schema.changes=true).
	SchemaChange
	// Transaction is a BEGIN or END transaction-metadata event (provide.transaction.metadata=true).
	Transaction
	// Tombstone is a message with no data: the Kafka-style tombstone that follows a delete when
	// tombstones.on.delete=true. The delete before it carries the change.
	Tombstone
)

func (k Kind) String() string {
	switch k {
	case Change:
		return "change"
	case Heartbeat:
		return "heartbeat"
	case SchemaChange:
		return "schema_change"
	case Transaction:
		return "transaction"
	case Tombstone:
		return "tombstone"
	}
	return "unknown"
}

// Op is a row change operation.
type Op byte

const (
	Create   Op = 'c'
	Update   Op = 'u'
	Delete   Op = 'd'
	Read     Op = 'r' // snapshot read, initial or incremental
	Truncate Op = 't'
)

func (o Op) String() string { return string(o) }

// Column is one column of a row image or key, in the order Debezium sent it.
type Column struct {
	Name  string
	Value json.RawMessage
}

// Row is a row image (or a key) as ordered columns. A nil Row means the image is absent (null).
type Row []Column

// Get returns the value of the named column.
func (r Row) Get(name string) (json.RawMessage, bool) {
	for _, c := range r {
		if c.Name == name {
			return c.Value, true
		}
	}
	return nil, false
}

// AppendJSON appends r as a JSON object, leaving out the columns for which skip returns true.
func (r Row) AppendJSON(b []byte, skip func(name string) bool) []byte {
	b = append(b, '{')
	first := true
	for _, c := range r {
		if skip != nil && skip(c.Name) {
			continue
		}
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendJSONString(b, c.Name)
		b = append(b, ':')
		b = append(b, c.Value...)
	}
	return append(b, '}')
}

func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			q, _ := json.Marshal(s) // cannot fail for a string
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// Source is the position and origin of a change, from the event's source block.
type Source struct {
	Connector string
	Name      string // topic.prefix
	DB        string
	Table     string
	File      string // binlog file name, e.g. mysql-bin.000003
	FileSeq   uint64 // the binlog file's sequence number (3 for mysql-bin.000003)
	Pos       uint64 // position of the binlog event holding the row
	Row       uint64 // index of the row within that event
	GTID      string
	Snapshot  string // "", "false", "true", "first", "last", "first_in_data_collection", "last_in_data_collection", "incremental"
	TsMs      int64  // commit time in the database, ms since the Unix epoch (0 for snapshot reads in old versions)
}

// Event is one decoded Debezium message.
type Event struct {
	Kind   Kind
	Op     Op     // for Change
	Source Source // for Change
	Before Row
	After  Row
	TsMs   int64 // when Debezium processed the event (heartbeat: when it was sent)
}

// ErrInvalid is wrapped by every decoding error: the message can never be applied as it is.
var ErrInvalid = errors.New("debezium: invalid event")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// wireEvent holds the members of an event (or of its payload) that decoding looks at, as raw values;
// nil means absent. A JSON null is kept as the raw "null", as json.RawMessage would keep it.
type wireEvent struct {
	schema, payload                 []byte
	op, before, after, source, tsMs []byte
	ddl, tableChanges, databaseName []byte
	status                          []byte
}

func (w *wireEvent) set(name string, v []byte) error {
	var field *[]byte
	switch name {
	case "schema":
		field = &w.schema
	case "payload":
		field = &w.payload
	case "op":
		field = &w.op
	case "before":
		field = &w.before
	case "after":
		field = &w.after
	case "source":
		field = &w.source
	case "ts_ms":
		field = &w.tsMs
	case "ddl":
		field = &w.ddl
	case "tableChanges":
		field = &w.tableChanges
	case "databaseName":
		field = &w.databaseName
	case "status":
		field = &w.status
	default:
		return nil
	}
	if *field != nil {
		return fmt.Errorf("member %q appears twice", name)
	}
	*field = v
	return nil
}

func scanEvent(raw []byte) (wireEvent, error) {
	var w wireEvent
	err := jsonscan.EachMember(raw, w.set)
	return w, err
}

// optString is jsonscan.OptString with the member's name in the error.
func optString(name string, v []byte) (string, bool, error) {
	s, ok, err := jsonscan.OptString(v)
	if err != nil {
		return "", false, invalid("%s: %v", name, err)
	}
	return s, ok, nil
}

// optInt64 is jsonscan.OptInt64 with the member's name in the error.
func optInt64(name string, v []byte) (int64, bool, error) {
	n, ok, err := jsonscan.OptInt64(v)
	if err != nil {
		return 0, false, invalid("%s: %v", name, err)
	}
	return n, ok, nil
}

const heartbeatSchema = "io.debezium.connector.common.Heartbeat"

// Decode decodes the data of one Debezium message (the Pub/Sub message's data).
//
// The data is validated once (jsonscan.Valid: json.Valid's answers, faster) and then walked with
// jsonscan: the row images stay slices of data, and nothing is decoded that the cache does not use.
// data must not be modified while the Event is in use.
func Decode(data []byte) (*Event, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return &Event{Kind: Tombstone}, nil
	}
	if !jsonscan.Valid(data) {
		return nil, invalid("not valid JSON: %v", jsonError(data))
	}
	w, err := scanEvent(data)
	if err != nil {
		return nil, invalid("not a JSON object: %v", err)
	}
	var types logicalTypes
	if w.schema != nil && w.payload != nil {
		// The schema envelope: {"schema": {...}, "payload": {...}}.
		var s connectSchema
		if err := json.Unmarshal(w.schema, &s); err != nil {
			return nil, invalid("schema: %v", err)
		}
		if jsonscan.IsNull(w.payload) {
			return &Event{Kind: Tombstone}, nil
		}
		if w, err = scanEvent(w.payload); err != nil {
			return nil, invalid("payload is not a JSON object: %v", err)
		}
		if s.Name == heartbeatSchema {
			return heartbeat(w)
		}
		types = s.rowTypes()
	}
	op, hasOp, err := optString("op", w.op)
	if err != nil {
		return nil, err
	}
	tsMs, hasTs, err := optInt64("ts_ms", w.tsMs)
	if err != nil {
		return nil, err
	}
	_, hasDDL, err := optString("ddl", w.ddl)
	if err != nil {
		return nil, err
	}
	_, hasDB, err := optString("databaseName", w.databaseName)
	if err != nil {
		return nil, err
	}
	status, hasStatus, err := optString("status", w.status)
	if err != nil {
		return nil, err
	}
	switch {
	case hasOp:
		return decodeChange(w, op, tsMs, types)
	case hasDDL || w.tableChanges != nil || hasDB:
		return &Event{Kind: SchemaChange, TsMs: tsMs}, nil
	case hasStatus:
		if status != "BEGIN" && status != "END" {
			return nil, invalid("transaction metadata with status %q (want BEGIN or END)", status)
		}
		return &Event{Kind: Transaction, TsMs: tsMs}, nil
	case hasTs && w.source == nil && w.before == nil && w.after == nil:
		return &Event{Kind: Heartbeat, TsMs: tsMs}, nil
	}
	return nil, invalid("unrecognized message: no op, ddl, transaction status or heartbeat ts_ms")
}

// jsonError says where data stops being JSON, in encoding/json's words.
func jsonError(data []byte) error {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return err
	}
	return errors.New("invalid JSON")
}

func heartbeat(w wireEvent) (*Event, error) {
	ts, ok, err := optInt64("ts_ms", w.tsMs)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, invalid("heartbeat without ts_ms")
	}
	return &Event{Kind: Heartbeat, TsMs: ts}, nil
}

func decodeChange(w wireEvent, op string, tsMs int64, types logicalTypes) (*Event, error) {
	ev := &Event{Kind: Change, TsMs: tsMs}
	if len(op) != 1 || !strings.Contains("cudrt", op) {
		return nil, invalid("unknown op %q", op)
	}
	ev.Op = Op(op[0])
	src, err := decodeSource(w.source)
	if err != nil {
		return nil, err
	}
	ev.Source = src
	if ev.Before, err = decodeRow(w.before, types.before); err != nil {
		return nil, invalid("before: %v", err)
	}
	if ev.After, err = decodeRow(w.after, types.after); err != nil {
		return nil, invalid("after: %v", err)
	}
	switch ev.Op {
	case Create, Update, Read:
		if ev.After == nil {
			return nil, invalid("op %q without an after image", ev.Op)
		}
	case Delete:
		if ev.After != nil {
			return nil, invalid("delete with an after image")
		}
	}
	return ev, nil
}

func decodeSource(raw []byte) (Source, error) {
	if raw == nil || jsonscan.IsNull(raw) {
		return Source{}, invalid("change event without a source block")
	}
	var s Source
	var pos, row []byte
	var hasTable bool
	err := jsonscan.EachMember(raw, func(name string, v []byte) error {
		var err error
		switch name {
		case "connector":
			s.Connector, _, err = optString("source.connector", v)
		case "name":
			s.Name, _, err = optString("source.name", v)
		case "db":
			s.DB, _, err = optString("source.db", v)
		case "table":
			s.Table, hasTable, err = optString("source.table", v)
		case "file":
			s.File, _, err = optString("source.file", v)
		case "gtid":
			s.GTID, _, err = optString("source.gtid", v)
		case "ts_ms":
			s.TsMs, _, err = optInt64("source.ts_ms", v)
		case "pos":
			pos = v
		case "row":
			row = v
		case "snapshot":
			// Old events carry snapshot as a boolean, current ones as a string enum.
			switch snap := strings.Trim(string(bytes.TrimSpace(v)), `"`); snap {
			case "", "null":
			default:
				s.Snapshot = snap
			}
		}
		return err
	})
	if err != nil {
		var inv error
		if errors.Is(err, ErrInvalid) {
			inv = err
		} else {
			inv = invalid("source: %v", err)
		}
		return Source{}, inv
	}
	if s.DB == "" || !hasTable || s.Table == "" {
		return Source{}, invalid("source has no db or table")
	}
	p, hasPos, err := optInt64("source.pos", pos)
	if err != nil {
		return Source{}, err
	}
	if !hasPos || p < 0 {
		return Source{}, invalid("source.pos missing or negative")
	}
	s.Pos = uint64(p)
	r, _, err := optInt64("source.row", row)
	if err != nil {
		return Source{}, err
	}
	if r < 0 {
		return Source{}, invalid("source.row negative")
	}
	s.Row = uint64(r)
	if s.FileSeq, err = FileSequence(s.File); err != nil {
		return Source{}, err
	}
	return s, nil
}

// FileSequence returns the sequence number of a binlog file name ("mysql-bin.000003" → 3).
func FileSequence(file string) (uint64, error) {
	dot := strings.LastIndexByte(file, '.')
	if dot < 0 || dot == len(file)-1 {
		return 0, invalid("source.file %q has no numeric binlog sequence suffix", file)
	}
	n, err := strconv.ParseUint(file[dot+1:], 10, 64)
	if err != nil {
		return 0, invalid("source.file %q has no numeric binlog sequence suffix", file)
	}
	return n, nil
}

// decodeRow splits a JSON object into ordered columns, converting logical types where the schema
// names them. null gives a nil Row.
func decodeRow(raw json.RawMessage, types map[string]logicalType) (Row, error) {
	if raw == nil || isNull(raw) {
		return nil, nil
	}
	row, err := splitObject(raw)
	if err != nil {
		return nil, err
	}
	for i := range row {
		if lt, ok := types[row[i].Name]; ok {
			v, err := lt.convert(row[i].Value)
			if err != nil {
				return nil, fmt.Errorf("column %q: %w", row[i].Name, err)
			}
			row[i].Value = v
		}
	}
	return row, nil
}

// splitObject splits a JSON object into its members in order, without copying: each value is a slice
// of raw. Its callers have validated raw (jsonscan.Valid); it still reports, rather than panics on,
// anything malformed.
func splitObject(raw []byte) (Row, error) {
	row := make(Row, 0, 16)
	err := jsonscan.EachMember(raw, func(name string, v []byte) error {
		row = append(row, Column{Name: name, Value: json.RawMessage(v)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := noDuplicates(row); err != nil {
		return nil, err
	}
	return row, nil
}

func noDuplicates(row Row) error {
	if len(row) <= 32 {
		for i := range row {
			for j := i + 1; j < len(row); j++ {
				if row[i].Name == row[j].Name {
					return fmt.Errorf("column %q appears twice", row[i].Name)
				}
			}
		}
		return nil
	}
	seen := make(map[string]bool, len(row))
	for _, c := range row {
		if seen[c.Name] {
			return fmt.Errorf("column %q appears twice", c.Name)
		}
		seen[c.Name] = true
	}
	return nil
}

// DecodeKey decodes a Debezium message key, as carried in the Pub/Sub ordering key: a JSON object of
// the primary-key columns, with or without the schema envelope.
func DecodeKey(key string) (Row, error) {
	var w struct {
		Schema  json.RawMessage `json:"schema"`
		Payload json.RawMessage `json:"payload"`
	}
	raw := json.RawMessage(key)
	var types map[string]logicalType
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, invalid("key %q is not a JSON object (a table without a primary key has no key: exclude it, or give it one with Debezium's message.key.columns)", truncate(key, 80))
	}
	if w.Schema != nil && w.Payload != nil {
		var s connectSchema
		if err := json.Unmarshal(w.Schema, &s); err != nil {
			return nil, invalid("key schema: %v", err)
		}
		types = s.fieldTypes()
		raw = w.Payload
	}
	row, err := decodeRow(raw, types)
	if err != nil {
		return nil, invalid("key: %v", err)
	}
	if len(row) == 0 {
		return nil, invalid("key %q has no columns", truncate(key, 80))
	}
	for _, c := range row {
		if isNull(c.Value) {
			return nil, invalid("key column %q is null", c.Name)
		}
	}
	return row, nil
}

func isNull(raw []byte) bool { return jsonscan.IsNull(raw) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
