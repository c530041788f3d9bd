package debezium

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestCompactDecode(t *testing.T) {
	meta := `"__op":"u","__name":"local","__db":"shop","__table":"t","__file":"mysql-bin.000007","__pos":1234,"__row":2,"__snapshot":null,"__source_ts_ms":1700000000000,"__total_order":3`
	cases := []struct {
		name, data string
		want       Event
	}{
		{"update", `{"id":1,"v":"x","__deleted":"false",` + meta + `}`, Event{Kind: Change, Op: Update,
			Source:      Source{Name: "local", DB: "shop", Table: "t", File: "mysql-bin.000007", FileSeq: 7, Pos: 1234, Row: 2, TsMs: 1700000000000},
			After:       Row{{"id", json.RawMessage(`1`)}, {"v", json.RawMessage(`"x"`)}},
			Transaction: &TransactionInfo{TotalOrder: 3}}},
		{"delete", `{"id":1,"v":"x","__deleted":"true","__op":"d","__name":"local","__db":"shop","__table":"t","__file":"b.000001","__pos":9,"__row":0,"__snapshot":null,"__source_ts_ms":5,"__total_order":null}`,
			Event{Kind: Change, Op: Delete, Source: Source{Name: "local", DB: "shop", Table: "t", File: "b.000001", FileSeq: 1, Pos: 9, TsMs: 5},
				Before: Row{{"id", json.RawMessage(`1`)}, {"v", json.RawMessage(`"x"`)}}}},
		{"snapshot read", `{"id":2,"__deleted":"false","__op":"r","__name":"local","__db":"shop","__table":"t","__file":"b.000002","__pos":4,"__row":0,"__snapshot":"last_in_data_collection","__source_ts_ms":6,"__total_order":null}`,
			Event{Kind: Change, Op: Read, Source: Source{Name: "local", DB: "shop", Table: "t", File: "b.000002", FileSeq: 2, Pos: 4, Snapshot: "last_in_data_collection", TsMs: 6},
				After: Row{{"id", json.RawMessage(`2`)}}}},
		// Columns named like envelope members, with other types, are columns: "__op" decides.
		{"envelope-like columns", `{"op":5,"before":"b","after":[1],"source":null,"ts_ms":"x","schema":{},"payload":1,"__x":true,"__op":"c","__name":"n","__db":"d","__table":"t","__file":"f.3","__pos":1}`,
			Event{Kind: Change, Op: Create, Source: Source{Name: "n", DB: "d", Table: "t", File: "f.3", FileSeq: 3, Pos: 1},
				After: Row{{"op", json.RawMessage(`5`)}, {"before", json.RawMessage(`"b"`)}, {"after", json.RawMessage(`[1]`)}, {"source", json.RawMessage(`null`)},
					{"ts_ms", json.RawMessage(`"x"`)}, {"schema", json.RawMessage(`{}`)}, {"payload", json.RawMessage(`1`)}, {"__x", json.RawMessage(`true`)}}}},
		// With schemas on, the payload is the flat row and the schema's fields give the logical types.
		{"schema envelope", `{"schema":{"type":"struct","fields":[{"field":"id","type":"int32"},{"field":"total","type":"bytes","name":"org.apache.kafka.connect.data.Decimal","parameters":{"scale":"2"}},{"field":"__op","type":"string"}]},` +
			`"payload":{"id":7,"total":"BNI=","__deleted":"false","__op":"c","__name":"n","__db":"d","__table":"t","__file":"f.3","__pos":1,"__row":0}}`,
			Event{Kind: Change, Op: Create, Source: Source{Name: "n", DB: "d", Table: "t", File: "f.3", FileSeq: 3, Pos: 1},
				After: Row{{"id", json.RawMessage(`7`)}, {"total", json.RawMessage(`"12.34"`)}}}},
	}
	for _, c := range cases {
		ev, err := Decode([]byte(c.data))
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if !reflect.DeepEqual(*ev, c.want) {
			t.Fatalf("%s:\n got %+v\nwant %+v", c.name, *ev, c.want)
		}
	}
}

func TestCompactDecodeRejects(t *testing.T) {
	base := map[string]string{"__op": `"c"`, "__name": `"n"`, "__db": `"d"`, "__table": `"t"`, "__file": `"f.1"`, "__pos": `1`}
	build := func(change map[string]string) string {
		parts := []string{`"id":1`}
		for _, k := range []string{"__deleted", "__op", "__name", "__db", "__table", "__file", "__pos", "__row", "__total_order"} {
			v, ok := base[k]
			if c, set := change[k]; set {
				v, ok = c, c != ""
			}
			if ok {
				parts = append(parts, fmt.Sprintf("%q:%s", k, v))
			}
		}
		return "{" + strings.Join(parts, ",") + "}"
	}
	for name, change := range map[string]map[string]string{
		"truncate op":          {"__op": `"t"`},
		"unknown op":           {"__op": `"x"`},
		"op not a string":      {"__op": `1`},
		"no db":                {"__db": ""},
		"empty table":          {"__table": `""`},
		"no name":              {"__name": ""},
		"no file":              {"__file": ""},
		"file without a seq":   {"__file": `"binlog"`},
		"no pos":               {"__pos": ""},
		"negative pos":         {"__pos": `-1`},
		"fractional pos":       {"__pos": `1.5`},
		"negative row":         {"__row": `-2`},
		"zero total_order":     {"__total_order": `0`},
		"deleted on an insert": {"__deleted": `"true"`},
		"deleted not a string": {"__deleted": `true`},
		"live delete":          {"__op": `"d"`, "__deleted": `"false"`},
	} {
		_, err := Decode([]byte(build(change)))
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %s: got %v, want ErrInvalid", name, build(change), err)
		}
	}
	if _, err := Decode([]byte(`{"id":1,"id":2,"__op":"c","__name":"n","__db":"d","__table":"t","__file":"f.1","__pos":1}`)); !errors.Is(err, ErrInvalid) {
		t.Errorf("repeated column: %v", err)
	}
}

// encodeCompact writes a change as the unwrap SMT does with the shipped add.fields: the row, then
// __deleted, then the added fields in their listed order.
func encodeCompact(ev *Event) []byte {
	str := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	img, deleted := ev.After, "false"
	if ev.Op == Delete {
		img, deleted = ev.Before, "true"
	}
	b := img.AppendJSON(nil, nil)
	b = b[:len(b)-1]
	if len(img) > 0 {
		b = append(b, ',')
	}
	snapshot, order := "null", "null"
	if ev.Source.Snapshot != "" {
		snapshot = str(ev.Source.Snapshot)
	}
	if ev.Transaction != nil {
		order = fmt.Sprint(ev.Transaction.TotalOrder)
	}
	b = fmt.Appendf(b, `"__deleted":%q,"__op":%s,"__name":%s,"__db":%s,"__table":%s,"__file":%s,"__pos":%d,"__row":%d,"__snapshot":%s,"__source_ts_ms":%d,"__total_order":%s}`,
		deleted, str(string(ev.Op)), str(ev.Source.Name), str(ev.Source.DB), str(ev.Source.Table), str(ev.Source.File), ev.Source.Pos, ev.Source.Row,
		snapshot, ev.Source.TsMs, order)
	return b
}

// compactSeeds are the real compact fixtures (testdata/debezium/compact/compact).
func compactSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "debezium", "compact", "*", "*.json"))
	for _, file := range files {
		if filepath.Base(file) == "messages.json" {
			continue
		}
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"id":1,"__deleted":"false","__op":"c","__name":"n","__db":"d","__table":"t","__file":"f.1","__pos":1,"__row":0,"__snapshot":null,"__source_ts_ms":0,"__total_order":null}`))
	f.Add([]byte(`{"op":"x","__op":"d","__deleted":"true","__name":"n","__db":"d","__table":"t","__file":"f.1","__pos":1,"__total_order":2}`))
}

// FuzzDecodeCompact: whatever Decode accepts in the compact form is a well-formed change, and written
// back in that form (encodeCompact) decodes to the same event; every error wraps ErrInvalid.
func FuzzDecodeCompact(f *testing.F) {
	compactSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Decode(data)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error not wrapping ErrInvalid: %v", err)
			}
			return
		}
		var probe struct {
			Op json.RawMessage `json:"__op"`
		}
		if json.Unmarshal(data, &probe) != nil || probe.Op == nil {
			return // not the compact form
		}
		if ev.Kind != Change || ev.Source.DB == "" || ev.Source.Table == "" {
			t.Fatalf("compact %q decoded to %+v", data, ev)
		}
		if (ev.Op == Delete) != (ev.Before != nil) || (ev.Op == Delete) == (ev.After != nil) {
			t.Fatalf("compact %q: op %q with before %v after %v", data, ev.Op, ev.Before, ev.After)
		}
		// Only the fields the shipped add.fields carry survive the round trip.
		want := *ev
		want.TsMs, want.Source.GTID = 0, ""
		if want.Transaction != nil {
			want.Transaction = &TransactionInfo{TotalOrder: want.Transaction.TotalOrder}
		}
		again := encodeCompact(&want)
		got, err := Decode(again)
		if err != nil {
			if strings.ContainsAny(ev.Source.Snapshot, "\x00") {
				return
			}
			t.Fatalf("%q, written back as %q, does not decode: %v", data, again, err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("%q, written back as %q:\n got %+v\nwant %+v", data, again, *got, want)
		}
	})
}

// FuzzCompactMatchesFull: a change Decode accepts in the full envelope, written in the compact form,
// decodes to the same change: op, source, total order and the image the function stores (after; before
// for a delete). (tablepolicy's FuzzCompactResolvesLikeFull holds the resulting cache writes equal.)
func FuzzCompactMatchesFull(f *testing.F) {
	entries, _ := os.ReadDir(filepath.Join("..", "testdata", "debezium"))
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".json") {
			f.Add(fixture(f, e.Name()))
		}
	}
	files, _ := filepath.Glob(filepath.Join("..", "testdata", "debezium", "real", "0*.json"))
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := Decode(data)
		if err != nil || ev.Kind != Change || ev.Op == Truncate {
			return // truncates are not transformed: they arrive in the full form either way
		}
		if ev.Op == Delete && ev.Before == nil {
			return // the SMT cannot write a delete without its before image (Debezium always sends one)
		}
		got, err := Decode(encodeCompact(ev))
		if err != nil {
			t.Fatalf("%q in the compact form %q does not decode: %v", data, encodeCompact(ev), err)
		}
		want := *ev
		if want.Op != Delete {
			want.Before = nil
		}
		want.TsMs, want.Source.GTID, want.Source.Connector = 0, "", ""
		if want.Transaction != nil {
			want.Transaction = &TransactionInfo{TotalOrder: want.Transaction.TotalOrder}
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("%q in the compact form %q:\n got %+v\nwant %+v", data, encodeCompact(ev), *got, want)
		}
	})
}
