package cdc

import (
	"strconv"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
)

// Version is what this stand-in reports as source.version: the Debezium release whose event format it
// reproduces.
const Version = "3.6.1.Final"

// position is where a change was read: the source block of Debezium's envelope.
type position struct {
	TsMs     int64  // commit time (binlog event time; whole seconds on MariaDB and MySQL 5.7)
	Snapshot string // "true", "first", "last", "first_in_data_collection", "last_in_data_collection", "false"
	DB       string
	Table    string
	ServerID uint32
	GTID     string // "" for none
	File     string
	Pos      uint64
	Row      int
	Thread   int64 // -1 for none
}

// envelope encodes one change with schemas off, field for field as Debezium's MySQL connector does:
// {"before","after","source":{…},"op","ts_ms","ts_us","ts_ns","transaction":null}.
func envelope(prefix string, op byte, before, after debezium.Row, p position, nowUs int64) []byte {
	b := make([]byte, 0, 512)
	b = append(b, `{"before":`...)
	b = appendRow(b, before)
	b = append(b, `,"after":`...)
	b = appendRow(b, after)
	b = append(b, `,"source":{"version":"`+Version+`","connector":"mysql","name":`...)
	b = appendString(b, prefix)
	b = append(b, `,"ts_ms":`...)
	b = strconv.AppendInt(b, p.TsMs, 10)
	b = append(b, `,"ts_us":`...)
	b = strconv.AppendInt(b, p.TsMs*1000, 10)
	b = append(b, `,"ts_ns":`...)
	b = strconv.AppendInt(b, p.TsMs*1000_000, 10)
	b = append(b, `,"snapshot":`...)
	b = appendString(b, p.Snapshot)
	b = append(b, `,"db":`...)
	b = appendString(b, p.DB)
	b = append(b, `,"sequence":null,"table":`...)
	b = appendString(b, p.Table)
	b = append(b, `,"server_id":`...)
	b = strconv.AppendUint(b, uint64(p.ServerID), 10)
	b = append(b, `,"gtid":`...)
	if p.GTID == "" {
		b = append(b, "null"...)
	} else {
		b = appendString(b, p.GTID)
	}
	b = append(b, `,"file":`...)
	b = appendString(b, p.File)
	b = append(b, `,"pos":`...)
	b = strconv.AppendUint(b, p.Pos, 10)
	b = append(b, `,"row":`...)
	b = strconv.AppendInt(b, int64(p.Row), 10)
	b = append(b, `,"thread":`...)
	if p.Thread < 0 {
		b = append(b, "null"...)
	} else {
		b = strconv.AppendInt(b, p.Thread, 10)
	}
	// include.query is off by default: Debezium then sends "query":null.
	b = append(b, `,"query":null},"op":"`...)
	b = append(b, op)
	b = append(b, `","ts_ms":`...)
	b = strconv.AppendInt(b, nowUs/1000, 10)
	b = append(b, `,"ts_us":`...)
	b = strconv.AppendInt(b, nowUs, 10)
	b = append(b, `,"ts_ns":`...)
	b = strconv.AppendInt(b, nowUs*1000, 10)
	return append(b, `,"transaction":null}`...)
}

// keyJSON is the message key with schemas off: the primary-key columns as a JSON object, or "" for a
// table without a primary key (Debezium sends a null key).
func keyJSON(key debezium.Row) string {
	if key == nil {
		return ""
	}
	return string(key.AppendJSON(nil, nil))
}

func appendRow(b []byte, r debezium.Row) []byte {
	if r == nil {
		return append(b, "null"...)
	}
	return r.AppendJSON(b, nil)
}

func appendString(b []byte, s string) []byte { return mysqlrow.AppendJSONString(b, s) }
