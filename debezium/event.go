// Package debezium decodes the MySQL change events that Debezium Server publishes to Pub/Sub in its JSON
// format, with or without the Kafka Connect schema envelope, into a small event model: what kind of
// message it is, the operation, the source position, and the row images as ordered columns. A change
// may come in the full envelope (before, after, source, transaction) or in the compact form of the
// ExtractNewRecordState SMT (compact.go); each message is told apart on its own.
package debezium

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
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
	Source Source // for Change and SchemaChange
	Before Row
	After  Row
	TsMs   int64 // when Debezium processed the event (heartbeat: when it was sent)
	// Transaction is a change's transaction block (provide.transaction.metadata=true); nil when the
	// event has none (metadata off, snapshot reads).
	Transaction *TransactionInfo
	// Schema is what a SchemaChange event says; nil for other kinds.
	Schema *SchemaChangeInfo
}

// TransactionInfo is the transaction block Debezium adds to every change of a transaction.
type TransactionInfo struct {
	ID string
	// TotalOrder is the change's 1-based number among the changes Debezium emitted for the
	// transaction: unique and increasing within it, and the same when the transaction is replayed.
	TotalOrder uint64
	// DataCollectionOrder is the same count among the transaction's changes of the change's table.
	DataCollectionOrder uint64
}

// SchemaChangeInfo is the content of a schema-change event (include.schema.changes=true), published on
// the topic named topic.prefix with the ordering key {"databaseName":…}.
type SchemaChangeInfo struct {
	DatabaseName string
	DDL          string
	// Tables are the event's tableChanges: none for database-level statements (DROP DATABASE, …).
	Tables []TableChange
}

// TableChange is one element of a schema change's tableChanges.
type TableChange struct {
	Type      string // "CREATE", "ALTER" or "DROP"
	DB, Table string // from the element's id, "db"."table"
	// Fingerprint identifies the table's row shape: its primary key and, per column, name, type,
	// length, scale, charset, enum values, position and nullability (not defaults, comments or
	// indexes, which change no stored row). "" when the element has no table (DROP).
	Fingerprint string
}

// ErrInvalid is wrapped by every decoding error: the message can never be applied as it is.
var ErrInvalid = errors.New("debezium: invalid event")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// wireEvent holds the members of an event (or of its payload) that decoding looks at; nil means absent.
// A JSON null stays the raw "null" in the RawMessage fields.
type wireEvent struct {
	Schema  json.RawMessage `json:"schema"`
	Payload json.RawMessage `json:"payload"`

	Op     *string         `json:"op"`
	Before json.RawMessage `json:"before"`
	After  json.RawMessage `json:"after"`
	Source json.RawMessage `json:"source"`
	TsMs   *int64          `json:"ts_ms"`

	DDL          *string         `json:"ddl"`
	TableChanges json.RawMessage `json:"tableChanges"`
	DatabaseName *string         `json:"databaseName"`

	Status *string `json:"status"`

	Transaction json.RawMessage `json:"transaction"`

	// CompactOp marks the compact form (compact.go); json.RawMessage takes any value.
	CompactOp json.RawMessage `json:"__op"`
}

// wireSource is the part of the source block decoding looks at.
type wireSource struct {
	Connector string          `json:"connector"`
	Name      string          `json:"name"`
	DB        string          `json:"db"`
	Table     *string         `json:"table"`
	File      string          `json:"file"`
	Pos       *int64          `json:"pos"`
	Row       *int64          `json:"row"`
	GTID      *string         `json:"gtid"`
	Snapshot  json.RawMessage `json:"snapshot"`
	TsMs      int64           `json:"ts_ms"`
}

const heartbeatSchema = "io.debezium.connector.common.Heartbeat"

// Decode decodes the data of one Debezium message (the Pub/Sub message's data) with encoding/json.
// Members are matched as json.Unmarshal matches struct fields (case-insensitively, the last of a
// repeated member winning); the columns of a row image keep Debezium's order, and a repeated column
// is refused.
func Decode(data []byte) (*Event, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return &Event{Kind: Tombstone}, nil
	}
	var w wireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		// A compact event's columns may have the names of envelope members with other types
		// (a column "op" holding a number): decodeCompact reads it member by member instead.
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || w.CompactOp == nil {
			return nil, invalid("not a JSON object: %v", err)
		}
	}
	if w.CompactOp != nil {
		return decodeCompact(data, nil)
	}
	var types logicalTypes
	if w.Schema != nil && w.Payload != nil {
		// The schema envelope: {"schema": {...}, "payload": {...}}.
		var s connectSchema
		if err := json.Unmarshal(w.Schema, &s); err != nil {
			return nil, invalid("schema: %v", err)
		}
		if isNull(w.Payload) {
			return &Event{Kind: Tombstone}, nil
		}
		payload := w.Payload
		w = wireEvent{}
		if err := json.Unmarshal(payload, &w); err != nil {
			var te *json.UnmarshalTypeError
			if !errors.As(err, &te) || w.CompactOp == nil {
				return nil, invalid("payload is not a JSON object: %v", err)
			}
		}
		if w.CompactOp != nil {
			return decodeCompact(payload, s.fieldTypes())
		}
		if s.Name == heartbeatSchema {
			return heartbeat(w)
		}
		types = s.rowTypes()
	}
	switch {
	case w.Op != nil:
		return decodeChange(w, types)
	case w.DDL != nil || w.TableChanges != nil || w.DatabaseName != nil:
		return decodeSchemaChange(w)
	case w.Status != nil:
		if *w.Status != "BEGIN" && *w.Status != "END" {
			return nil, invalid("transaction metadata with status %q (want BEGIN or END)", *w.Status)
		}
		return &Event{Kind: Transaction, TsMs: deref(w.TsMs)}, nil
	case w.TsMs != nil && w.Source == nil && w.Before == nil && w.After == nil:
		return heartbeat(w)
	}
	return nil, invalid("unrecognized message: no op, ddl, transaction status or heartbeat ts_ms")
}

func heartbeat(w wireEvent) (*Event, error) {
	if w.TsMs == nil {
		return nil, invalid("heartbeat without ts_ms")
	}
	return &Event{Kind: Heartbeat, TsMs: *w.TsMs}, nil
}

func decodeChange(w wireEvent, types logicalTypes) (*Event, error) {
	ev := &Event{Kind: Change, TsMs: deref(w.TsMs)}
	if len(*w.Op) != 1 || !strings.Contains("cudrt", *w.Op) {
		return nil, invalid("unknown op %q", *w.Op)
	}
	ev.Op = Op((*w.Op)[0])
	src, err := decodeSource(w.Source, true)
	if err != nil {
		return nil, err
	}
	ev.Source = src
	if ev.Transaction, err = decodeTransaction(w.Transaction); err != nil {
		return nil, err
	}
	if ev.Before, err = decodeRow(w.Before, types.before); err != nil {
		return nil, invalid("before: %v", err)
	}
	if ev.After, err = decodeRow(w.After, types.after); err != nil {
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

// decodeSource decodes a source block; a change's must name its table, a schema change's may not.
func decodeSource(raw json.RawMessage, needTable bool) (Source, error) {
	if raw == nil || isNull(raw) {
		return Source{}, invalid("change event without a source block")
	}
	var ws wireSource
	if err := json.Unmarshal(raw, &ws); err != nil {
		return Source{}, invalid("source: %v", err)
	}
	s := Source{Connector: ws.Connector, Name: ws.Name, DB: ws.DB, File: ws.File, TsMs: ws.TsMs}
	if ws.Table != nil {
		s.Table = *ws.Table
	}
	if ws.GTID != nil {
		s.GTID = *ws.GTID
	}
	if needTable && (s.DB == "" || s.Table == "") {
		return Source{}, invalid("source has no db or table")
	}
	if ws.Pos == nil || *ws.Pos < 0 {
		return Source{}, invalid("source.pos missing or negative")
	}
	s.Pos = uint64(*ws.Pos)
	if ws.Row != nil {
		if *ws.Row < 0 {
			return Source{}, invalid("source.row negative")
		}
		s.Row = uint64(*ws.Row)
	}
	seq, err := FileSequence(s.File)
	if err != nil {
		return Source{}, err
	}
	s.FileSeq = seq
	// Old events carry snapshot as a boolean, current ones as a string enum (unescaped as JSON, so that
	// the compact form's __snapshot, read as a JSON string, decodes to the same value).
	snap := string(bytes.TrimSpace(ws.Snapshot))
	var str string
	if json.Unmarshal(ws.Snapshot, &str) == nil {
		snap = str
	}
	switch snap {
	case "", "null":
	default:
		s.Snapshot = snap
	}
	return s, nil
}

func decodeTransaction(raw json.RawMessage) (*TransactionInfo, error) {
	if raw == nil || isNull(raw) {
		return nil, nil
	}
	var w struct {
		ID         *string `json:"id"`
		TotalOrder *int64  `json:"total_order"`
		DataOrder  *int64  `json:"data_collection_order"`
	}
	if err := json.Unmarshal(raw, &w); err != nil {
		return nil, invalid("transaction: %v", err)
	}
	if w.TotalOrder == nil || *w.TotalOrder < 1 {
		return nil, invalid("transaction block without a positive total_order")
	}
	tx := &TransactionInfo{TotalOrder: uint64(*w.TotalOrder)}
	if w.ID != nil {
		tx.ID = *w.ID
	}
	if w.DataOrder != nil && *w.DataOrder > 0 {
		tx.DataCollectionOrder = uint64(*w.DataOrder)
	}
	return tx, nil
}

// wireTableChange is one element of tableChanges, the part decoding looks at.
type wireTableChange struct {
	Type  string          `json:"type"`
	ID    string          `json:"id"`
	Table json.RawMessage `json:"table"`
}

// rowShape is what a table definition fixes about the rows stored from it: the fingerprint's input.
type rowShape struct {
	PrimaryKey []string `json:"primaryKeyColumnNames"`
	Columns    []struct {
		Name       string   `json:"name"`
		TypeName   string   `json:"typeName"`
		Length     *int64   `json:"length"`
		Scale      *int64   `json:"scale"`
		Charset    *string  `json:"charsetName"`
		EnumValues []string `json:"enumValues"`
		Position   int64    `json:"position"`
		Optional   bool     `json:"optional"`
	} `json:"columns"`
}

func decodeSchemaChange(w wireEvent) (*Event, error) {
	src, err := decodeSource(w.Source, false)
	if err != nil {
		return nil, err
	}
	sc := &SchemaChangeInfo{}
	if w.DatabaseName != nil {
		sc.DatabaseName = *w.DatabaseName
	}
	if w.DDL != nil {
		sc.DDL = *w.DDL
	}
	var tcs []wireTableChange
	if w.TableChanges != nil && !isNull(w.TableChanges) {
		if err := json.Unmarshal(w.TableChanges, &tcs); err != nil {
			return nil, invalid("schema change: tableChanges: %v", err)
		}
	}
	for _, tc := range tcs {
		db, table, err := ParseTableID(tc.ID)
		if err != nil {
			return nil, invalid("schema change: %v", err)
		}
		c := TableChange{Type: tc.Type, DB: db, Table: table}
		switch tc.Type {
		case "CREATE", "ALTER", "DROP":
		default:
			return nil, invalid("schema change: table change type %q (want CREATE, ALTER or DROP)", tc.Type)
		}
		if tc.Table != nil && !isNull(tc.Table) {
			var shape rowShape
			if err := json.Unmarshal(tc.Table, &shape); err != nil {
				return nil, invalid("schema change: table %s.%s: %v", db, table, err)
			}
			canon, _ := json.Marshal(shape) // cannot fail: strings, numbers and booleans
			sum := sha256.Sum256(canon)
			c.Fingerprint = hex.EncodeToString(sum[:16])
		}
		sc.Tables = append(sc.Tables, c)
	}
	return &Event{Kind: SchemaChange, Source: src, TsMs: deref(w.TsMs), Schema: sc}, nil
}

// ParseTableID splits a Debezium table id in its double-quoted form, "db"."table" (a doubled quote
// inside a part is a quote), into the database and the table.
func ParseTableID(id string) (db, table string, err error) {
	var parts []string
	rest := id
	for {
		if !strings.HasPrefix(rest, `"`) {
			return "", "", fmt.Errorf("table id %q is not \"db\".\"table\"", truncate(id, 80))
		}
		var b strings.Builder
		i := 1
		for {
			j := strings.IndexByte(rest[i:], '"')
			if j < 0 {
				return "", "", fmt.Errorf("table id %q has an unclosed quote", truncate(id, 80))
			}
			b.WriteString(rest[i : i+j])
			i += j + 1
			if i < len(rest) && rest[i] == '"' { // a doubled quote
				b.WriteByte('"')
				i++
				continue
			}
			break
		}
		parts = append(parts, b.String())
		rest = rest[i:]
		if rest == "" {
			break
		}
		if rest[0] != '.' {
			return "", "", fmt.Errorf("table id %q is not \"db\".\"table\"", truncate(id, 80))
		}
		rest = rest[1:]
	}
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return "", "", fmt.Errorf("table id %q is not \"db\".\"table\"", truncate(id, 80))
	}
	return parts[0], parts[1], nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
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

// splitObject splits a JSON object into its members in Debezium's order, with encoding/json's token
// reader: the order of a row's columns is the cached JSON's, which json.Unmarshal into a map would lose.
func splitObject(raw []byte) (Row, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil {
		return nil, err
	} else if tok != json.Delim('{') {
		return nil, fmt.Errorf("want a JSON object, got %s", truncate(string(raw), 40))
	}
	row := make(Row, 0, 16)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		name, _ := tok.(string) // a member name: the decoder refuses anything else here
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, fmt.Errorf("column %q: %w", name, err)
		}
		row = append(row, Column{Name: name, Value: v})
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data after the object")
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

func isNull(raw []byte) bool { return string(bytes.TrimSpace(raw)) == "null" }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
