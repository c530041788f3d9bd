package apply_test

import (
	"fmt"
	"testing"
)

// compressed is a change of a binlog_transaction_compression=ON transaction as Debezium 3.6 emits it:
// every change carries the TRANSACTION_PAYLOAD event's position and source.row restarts at 0 in each
// inner rows event, so the INSERT and the DELETE of one key both have (file, pos, row) = (4, 4321, 0).
// order > 0 adds the transaction block of provide.transaction.metadata=true.
func compressed(op byte, before, after string, order int) []byte {
	img := func(s string) string {
		if s == "" {
			return "null"
		}
		return s
	}
	tx := "null"
	if order > 0 {
		tx = fmt.Sprintf(`{"id":"3e11fa47-71ca-11e1-9e33-c80aa9429562:23","total_order":%d,"data_collection_order":%d}`, order, order)
	}
	return []byte(fmt.Sprintf(`{"before":%s,"after":%s,"source":{"version":"3.6.1.Final","connector":"mysql","name":"local","ts_ms":1700000000000,"snapshot":"false","db":"shop","sequence":null,"table":"t","server_id":1,"gtid":"3e11fa47-71ca-11e1-9e33-c80aa9429562:23","file":"mysql-bin.000004","pos":4321,"row":0,"thread":9,"query":null},"transaction":%s,"op":"%c","ts_ms":1700000000100}`,
		img(before), img(after), tx, op))
}

// With transaction metadata, total_order makes the two changes' versions distinct: the DELETE wins.
func TestCompressedTransactionWithMetadata(t *testing.T) {
	e := newEnv(t)
	e.mustDeliver(compressed('c', "", `{"id":1,"v":"new"}`, 1), `{"id":1}`, "applied")
	e.mustDeliver(compressed('d', `{"id":1,"v":"new"}`, "", 2), `{"id":1}`, "applied")
	e.mustDeliver(compressed('c', "", `{"id":1,"v":"new"}`, 1), `{"id":1}`, "stale") // a replay
	if got := e.get("shop.t:1"); got != "<deleted>" {
		t.Fatalf("cached %q, want the DELETE's tombstone", got)
	}
	e.mustDeliver(compressed('u', `{"id":2,"v":"a"}`, `{"id":2,"v":"b"}`, 3), `{"id":2}`, "applied")
	e.mustDeliver(compressed('u', `{"id":2,"v":"b"}`, `{"id":2,"v":"c"}`, 4), `{"id":2}`, "applied")
	if got := e.get("shop.t:2"); got != `{"id":2,"v":"c"}` {
		t.Fatalf("cached %q, want the second UPDATE", got)
	}
}

// Without metadata the versions collide: the later delivery (the later change, in the key's order) is
// stored and counted as a version collision, never taken for a duplicate.
func TestCompressedTransactionWithoutMetadata(t *testing.T) {
	e := newEnv(t)
	e.mustDeliver(compressed('c', "", `{"id":1,"v":"new"}`, 0), `{"id":1}`, "applied")
	e.mustDeliver(compressed('d', `{"id":1,"v":"new"}`, "", 0), `{"id":1}`, "applied: version_collision")
	e.mustDeliver(compressed('d', `{"id":1,"v":"new"}`, "", 0), `{"id":1}`, "duplicate")
	if got := e.get("shop.t:1"); got != "<deleted>" {
		t.Fatalf("cached %q, want the DELETE's tombstone", got)
	}
	if n := e.counts()["applied/version_collision"]; n != 1 {
		t.Fatalf("%d version collisions counted, want 1", n)
	}
}
