package mysqlrow

import (
	"bytes"
	"encoding/json"
	"time"
)

// SameRow reports whether a and b, row JSON objects as Debezium sends them and the function caches
// them (columns in table order), hold the same row of t: byte for byte, except that the two strings of
// a TIMESTAMP column are the same when they name the same instant. Debezium writes TIMESTAMP(n) with
// exactly n fraction digits from the binlog but drops the fraction's trailing zeros in a snapshot (its
// ZonedTimestamp formats the JDBC value with ISO_OFFSET_DATE_TIME and the binlog value with the
// column's width), so a row a snapshot cached reads "…:08.68Z" where the same row streamed, and this
// package, read "…:08.680Z".
func (t *Table) SameRow(a, b []byte) bool {
	if bytes.Equal(a, b) {
		return true
	}
	ca, ok := columns(a)
	if !ok {
		return false
	}
	cb, ok := columns(b)
	if !ok || len(ca) != len(cb) {
		return false
	}
	for i := range ca {
		if ca[i].name != cb[i].name {
			return false
		}
		if bytes.Equal(ca[i].value, cb[i].value) {
			continue
		}
		c, ok := t.Column(ca[i].name)
		if !ok || c.DataType != "timestamp" || !sameInstant(ca[i].value, cb[i].value) {
			return false
		}
	}
	return true
}

type namedValue struct {
	name  string
	value json.RawMessage
}

// columns splits a JSON object into its members, in order.
func columns(b []byte) ([]namedValue, bool) {
	d := json.NewDecoder(bytes.NewReader(b))
	if tok, err := d.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out []namedValue
	for d.More() {
		tok, err := d.Token()
		if err != nil {
			return nil, false
		}
		name, ok := tok.(string)
		if !ok {
			return nil, false
		}
		var v json.RawMessage
		if err := d.Decode(&v); err != nil {
			return nil, false
		}
		out = append(out, namedValue{name, v})
	}
	if tok, err := d.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	return out, true
}

func sameInstant(a, b json.RawMessage) bool {
	var sa, sb string
	if json.Unmarshal(a, &sa) != nil || json.Unmarshal(b, &sb) != nil {
		return false
	}
	ta, err := time.Parse(time.RFC3339Nano, sa)
	if err != nil {
		return false
	}
	tb, err := time.Parse(time.RFC3339Nano, sb)
	return err == nil && ta.Equal(tb)
}
