package apply_test

import (
	"fmt"
	"testing"
)

// incrementalRead is a chunk row of Debezium's incremental snapshot as the MySQL and MariaDB connectors
// emit it (AbstractIncrementalSnapshotChangeEventSource.sendWindowEvents): op r, source.snapshot
// "incremental", at the binlog position of the event that closed its chunk's window (the rows are
// emitted when the watermark is read back from the binlog), and no transaction block (the snapshot
// receiver bypasses the transaction monitor). compact is the same row through the compact format.
func incrementalRead(pos uint64, id int, v string, compact bool) []byte {
	if compact {
		return []byte(fmt.Sprintf(`{"id":%d,"v":%q,"__op":"r","__name":"local","__db":"shop","__table":"t","__file":"mysql-bin.000004","__pos":%d,"__row":0,"__snapshot":"incremental","__source_ts_ms":1700000000000,"__total_order":null,"__deleted":"false"}`, id, v, pos))
	}
	return []byte(fmt.Sprintf(`{"before":null,"after":{"id":%d,"v":%q},"source":{"version":"3.6.1.Final","connector":"mysql","name":"local","ts_ms":1700000000000,"snapshot":"incremental","db":"shop","sequence":null,"table":"t","server_id":1,"gtid":null,"file":"mysql-bin.000004","pos":%d,"row":0,"thread":null,"query":null},"transaction":null,"op":"r","ts_ms":1700000000100}`, id, v, pos))
}

// streamed is a streamed change of shop.t with transaction metadata, as the shipped configuration
// publishes it.
func streamed(op byte, pos uint64, id int, v string) []byte {
	before, after := "null", fmt.Sprintf(`{"id":%d,"v":%q}`, id, v)
	if op == 'd' {
		before, after = after, "null"
	}
	return []byte(fmt.Sprintf(`{"before":%s,"after":%s,"source":{"version":"3.6.1.Final","connector":"mysql","name":"local","ts_ms":1700000000000,"snapshot":null,"db":"shop","sequence":null,"table":"t","server_id":1,"gtid":null,"file":"mysql-bin.000004","pos":%d,"row":0,"thread":9,"query":null},"transaction":{"id":"tx","total_order":1,"data_collection_order":1},"op":"%c","ts_ms":1700000000100}`, before, after, pos, op))
}

// An incremental snapshot runs while streaming goes on, and its chunk rows are versioned by the
// position that closed their window: a chunk row wins over the changes before it (it was read after
// them) and loses to every change after it, whatever order a replay delivers them in (Debezium
// restarted mid-snapshot, a Pub/Sub redelivery). A deleted row is never brought back by a chunk row
// read before the delete, and no chunk row completes or sweeps anything.
func TestIncrementalSnapshotChunkRows(t *testing.T) {
	for _, compact := range []bool{false, true} {
		t.Run(fmt.Sprintf("compact=%v", compact), func(t *testing.T) {
			e := newEnv(t)
			key := func(id int) string { return fmt.Sprintf(`{"id":%d}`, id) }
			e.mustDeliver(streamed('c', 1000, 1, "streamed before"), key(1), "applied")
			e.mustDeliver(streamed('c', 1100, 2, "streamed before"), key(2), "applied")
			e.mustDeliver(incrementalRead(2000, 1, "read", compact), key(1), "applied")
			e.mustDeliver(incrementalRead(2000, 2, "read", compact), key(2), "applied")
			e.mustDeliver(incrementalRead(2000, 3, "read", compact), key(3), "applied")
			if got := e.get("shop.t:1"); got != `{"id":1,"v":"read"}` {
				t.Fatalf("the chunk row read after the streamed change: %s", got)
			}
			e.mustDeliver(streamed('u', 3000, 1, "streamed after"), key(1), "applied")
			e.mustDeliver(streamed('d', 3100, 2, "read"), key(2), "applied")
			// The chunk rows again, after the newer changes.
			e.mustDeliver(incrementalRead(2000, 1, "read", compact), key(1), "stale")
			e.mustDeliver(incrementalRead(2000, 2, "read", compact), key(2), "stale")
			e.mustDeliver(incrementalRead(2000, 3, "read", compact), key(3), "duplicate")
			for k, want := range map[string]string{"shop.t:1": `{"id":1,"v":"streamed after"}`, "shop.t:2": "<deleted>", "shop.t:3": `{"id":3,"v":"read"}`} {
				if got := e.get(k); got != want {
					t.Errorf("%s = %s, want %s", k, got, want)
				}
			}
			// A later chunk of the same table (the snapshot restarted at a newer position) wins again.
			e.mustDeliver(incrementalRead(5000, 1, "re-read", compact), key(1), "applied")
			if n := e.counts()["applied/snapshot_sweep"]; n != 0 {
				t.Errorf("%d completions from chunk rows", n)
			}
		})
	}
}
