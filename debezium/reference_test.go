package debezium

import (
	"bytes"
	"encoding/json"
	"strings"
)

type refWireEvent struct {
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
}

type refWireSource struct {
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

// referenceDecode is Decode as it was written with json.Unmarshal into structs, before the hot path
// moved to jsonscan: the differential fuzz target holds the two to the same answers.
func referenceDecode(data []byte) (*Event, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return &Event{Kind: Tombstone}, nil
	}
	var w refWireEvent
	if err := json.Unmarshal(data, &w); err != nil {
		return nil, invalid("not a JSON object: %v", err)
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
		w = refWireEvent{}
		if err := json.Unmarshal(payload, &w); err != nil {
			return nil, invalid("payload is not a JSON object: %v", err)
		}
		if s.Name == heartbeatSchema {
			return refHeartbeat(w)
		}
		types = s.rowTypes()
	}
	switch {
	case w.Op != nil:
		return refDecodeChange(w, types)
	case w.DDL != nil || w.TableChanges != nil || w.DatabaseName != nil:
		return &Event{Kind: SchemaChange, TsMs: deref(w.TsMs)}, nil
	case w.Status != nil:
		if *w.Status != "BEGIN" && *w.Status != "END" {
			return nil, invalid("transaction metadata with status %q (want BEGIN or END)", *w.Status)
		}
		return &Event{Kind: Transaction, TsMs: deref(w.TsMs)}, nil
	case w.TsMs != nil && w.Source == nil && w.Before == nil && w.After == nil:
		return refHeartbeat(w)
	}
	return nil, invalid("unrecognized message: no op, ddl, transaction status or heartbeat ts_ms")
}

func refHeartbeat(w refWireEvent) (*Event, error) {
	if w.TsMs == nil {
		return nil, invalid("heartbeat without ts_ms")
	}
	return &Event{Kind: Heartbeat, TsMs: *w.TsMs}, nil
}

func refDecodeChange(w refWireEvent, types logicalTypes) (*Event, error) {
	ev := &Event{Kind: Change, TsMs: deref(w.TsMs)}
	if len(*w.Op) != 1 || !strings.Contains("cudrt", *w.Op) {
		return nil, invalid("unknown op %q", *w.Op)
	}
	ev.Op = Op((*w.Op)[0])
	src, err := refDecodeSource(w.Source)
	if err != nil {
		return nil, err
	}
	ev.Source = src
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

func refDecodeSource(raw json.RawMessage) (Source, error) {
	if raw == nil || isNull(raw) {
		return Source{}, invalid("change event without a source block")
	}
	var ws refWireSource
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
	if s.DB == "" || s.Table == "" {
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
	// Old events carry snapshot as a boolean, current ones as a string enum.
	switch snap := strings.Trim(string(bytes.TrimSpace(ws.Snapshot)), `"`); snap {
	case "", "null":
	default:
		s.Snapshot = snap
	}
	return s, nil
}

func deref(p *int64) int64 {
	if p == nil {
		return 0
	}
	return *p
}
