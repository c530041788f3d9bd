package tablepolicy

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

// FuzzCompactResolvesLikeFull: one change written as Debezium's full envelope and as the unwrap SMT's
// compact form (debezium-server/compact.properties) resolves to the same cache write, or to the same
// refusal: kind, key, version and stored row. The fuzzer picks the op, position, transaction order,
// snapshot marker, row object and message key.
func FuzzCompactResolvesLikeFull(f *testing.F) {
	f.Add(byte('c'), uint16(3), uint32(154), uint8(0), uint8(0), "", `{"id":1,"v":"x"}`, `{"id":1}`)
	f.Add(byte('u'), uint16(7), uint32(9), uint8(2), uint8(3), "", `{"id":2,"n":null,"d":"1.50"}`, `{"id":2}`)
	f.Add(byte('d'), uint16(1), uint32(4), uint8(0), uint8(1), "", `{"id":3}`, `{"id":3}`)
	f.Add(byte('r'), uint16(2), uint32(77), uint8(0), uint8(0), "last_in_data_collection", `{"a":"k","b":2}`, `{"a":"k","b":2}`)
	f.Add(byte('u'), uint16(2), uint32(77), uint8(0), uint8(0), "", `{"id":4}`, `{"id":5}`)
	f.Fuzz(func(t *testing.T, op byte, file uint16, pos uint32, row, order uint8, snapshot, image, key string) {
		if !strings.ContainsRune("cudr", rune(op)) || !json.Valid([]byte(image)) || !strings.HasPrefix(strings.TrimSpace(image), "{") {
			return
		}
		var members map[string]json.RawMessage
		if json.Unmarshal([]byte(image), &members) != nil {
			return
		}
		for name := range members {
			// Debezium refuses a table with a column the SMT adds (it cannot add a field twice).
			if strings.Contains(",__deleted,__op,__name,__db,__table,__file,__pos,__row,__snapshot,__source_ts_ms,__total_order,__ts_ms,__gtid,__id,__data_collection_order,", ","+name+",") {
				return
			}
		}
		snap, _ := json.Marshal(snapshot)
		snapCompact := string(snap)
		if snapshot == "" {
			snap, snapCompact = []byte(`"false"`), "null"
		}
		tx, txCompact := "null", "null"
		if order > 0 {
			tx = fmt.Sprintf(`{"id":"0-1-9","total_order":%d,"data_collection_order":%d}`, order, order)
			txCompact = fmt.Sprint(order)
		}
		before, after := "null", image
		if op == 'd' {
			before, after = image, "null"
		} else if op == 'u' {
			before = image
		}
		full := fmt.Sprintf(`{"before":%s,"after":%s,"source":{"version":"3.6.1.Final","connector":"mariadb","name":"local","ts_ms":1700000000000,"snapshot":%s,"db":"shop","sequence":null,"ts_us":1,"ts_ns":1,"table":"t","server_id":1,"gtid":null,"file":"mysql-bin.%06d","pos":%d,"row":%d,"thread":null,"query":null},"transaction":%s,"op":"%c","ts_ms":1700000000001}`,
			before, after, snap, file, pos, row, tx, op)
		deleted := "false"
		if op == 'd' {
			deleted = "true"
		}
		body := strings.TrimSpace(image)
		body = strings.TrimSpace(body[:len(body)-1])
		if body != "{" {
			body += ","
		}
		compact := fmt.Sprintf(`%s"__deleted":"%s","__op":"%c","__name":"local","__db":"shop","__table":"t","__file":"mysql-bin.%06d","__pos":%d,"__row":%d,"__snapshot":%s,"__source_ts_ms":1700000000000,"__total_order":%s}`,
			body, deleted, op, file, pos, row, snapCompact, txCompact)

		p, err := New(Config{})
		if err != nil {
			t.Fatal(err)
		}
		resolve := func(data string) (Change, string) {
			ev, err := debezium.Decode([]byte(data))
			if err != nil {
				return Change{}, "decode: " + err.Error()
			}
			if ev.Kind != debezium.Change {
				return Change{}, "kind " + ev.Kind.String()
			}
			c, ok, err := p.Resolve(ev, key)
			if err != nil || !ok {
				return Change{}, fmt.Sprintf("resolve: %v %v", ok, err)
			}
			return c, ""
		}
		cf, errFull := resolve(full)
		cc, errCompact := resolve(compact)
		if errFull != "" {
			// A row whose own members collide with the envelope cannot be in the full form the same
			// way; the compact form may still decode. Refusals must agree only on what both accept.
			if errCompact == "" && !strings.Contains(errFull, "decode") {
				t.Fatalf("full %s refused (%s), compact %s resolved to %+v", full, errFull, compact, cc)
			}
			return
		}
		if errCompact != "" {
			t.Fatalf("full %s resolved to %+v, compact %s refused: %s", full, cf, compact, errCompact)
		}
		if cf.Kind != cc.Kind || cf.Key != cc.Key || cf.Version != cc.Version || string(cf.Row) != string(cc.Row) || !reflect.DeepEqual(cf.Table, cc.Table) {
			t.Fatalf("full %s\n  -> %v %s %v %s\ncompact %s\n  -> %v %s %v %s", full, cf.Kind, cf.Key, cf.Version, cf.Row, compact, cc.Kind, cc.Key, cc.Version, cc.Row)
		}
	})
}
