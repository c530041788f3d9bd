package apply_test

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// snapshotEvent is a snapshot read at pos as Debezium emits it: source.snapshot set, row 0, source name
// "local" (the join of a snapshot's completion is per source and position).
func snapshotEvent(db, table string, pos uint64, marker, after string) []byte {
	return []byte(fmt.Sprintf(`{"before":null,"after":%s,"source":{"version":"3.6.1.Final","connector":"mysql","name":"local","ts_ms":1700000000000,"snapshot":%q,"db":%q,"table":%q,"server_id":0,"gtid":null,"file":"mysql-bin.000001","pos":%d,"row":0,"thread":null,"query":null},"transaction":null,"op":"r","ts_ms":1700000000100}`,
		after, marker, db, table, pos))
}

// snapshotSchemaEvent is the snapshot's schema-phase record of table (CREATE, at the snapshot's pos).
func snapshotSchemaEvent(db, table string, pos uint64) []byte {
	return []byte(fmt.Sprintf(`{"source":{"version":"3.6.1.Final","connector":"mysql","name":"local","ts_ms":1700000000000,"snapshot":"true","db":%q,"sequence":null,"table":%q,"server_id":0,"gtid":null,"file":"mysql-bin.000001","pos":%d,"row":0,"thread":null,"query":null},"ts_ms":1700000000100,"databaseName":%q,"schemaName":null,"ddl":"CREATE TABLE %s (id INT PRIMARY KEY, v INT)","tableChanges":[{"type":"CREATE","id":"\"%s\".\"%s\"","table":{"defaultCharsetName":"utf8mb4","primaryKeyColumnNames":["id"],"columns":[{"name":"id","typeName":"INT","position":1,"optional":false},{"name":"v","typeName":"INT","position":2,"optional":true}],"comment":null}}]}`,
		db, table, pos, db, table, db, table))
}

// The property with floors: random per-key histories with a TRUNCATE and a re-snapshot in them,
// delivered with duplicates, replays, reordering within a key, interleaving across keys, and the
// truncate and the snapshot's schema record at any moment (their own ordering keys and topics). The
// snapshot's last record is another table's, so the table completes only through the join. The cache
// ends with what the binlog says: each key's newest effect among its changes, the truncate (nothing)
// and the snapshot (its row, or nothing for a key the snapshot did not find).
func TestPropertyRandomHistoriesWithFloors(t *testing.T) {
	for seed := uint64(1); seed <= 6; seed++ {
		e := newEnv(t)
		rng := rand.New(rand.NewPCG(seed, 42))
		table := fmt.Sprintf("f%d", seed)
		// The snapshot late, so that some keys are not changed after it: what it did not find must go.
		const keys, steps = 20, 200
		truncAt, snapAt := rng.IntN(steps), steps-1-rng.IntN(steps/8)
		var pos uint64 = 4
		hist := make([][]histEvent, keys)
		state := make([]string, keys) // "" absent, "<deleted>", or the row
		var truncate, schema, last []byte
		for step := 0; step < steps; step++ {
			if step == truncAt {
				pos += 10
				truncate = event("app", table, 't', 1, pos, 3, "", "")
				for k := range state {
					state[k] = ""
				}
			}
			if step == snapAt {
				pos += 10
				schema = snapshotSchemaEvent("app", table, pos)
				last = snapshotEvent("app", "marker", pos, "last", `{"id":0}`)
				for k := range state {
					if live := state[k] != "" && state[k] != "<deleted>"; live {
						hist[k] = append(hist[k], histEvent{k, snapshotEvent("app", table, pos, "true", state[k]), state[k]})
					} else {
						state[k] = ""
					}
				}
			}
			pos += uint64(1 + rng.IntN(20))
			k := rng.IntN(keys)
			id := fmt.Sprintf(`{"id":%d}`, k)
			var ev histEvent
			if live := state[k] != "" && state[k] != "<deleted>"; live && rng.IntN(4) == 0 {
				ev = histEvent{k, event("app", table, 'd', 1, pos, 0, id, ""), "<deleted>"}
			} else {
				row := fmt.Sprintf(`{"id":%d,"v":%d}`, k, step)
				op := byte('u')
				if !live {
					op = 'c'
				}
				ev = histEvent{k, event("app", table, op, 1, pos, uint64(rng.IntN(3)), "", row), row}
			}
			state[k] = ev.want
			hist[k] = append(hist[k], ev)
		}
		type delivery struct {
			data []byte
			key  string
		}
		queues := make([][]delivery, keys+1)
		for k, h := range hist {
			for i := range h {
				queues[k] = append(queues[k], delivery{h[i].data, fmt.Sprintf(`{"id":%d}`, k)})
				if rng.IntN(6) == 0 {
					queues[k] = append(queues[k], delivery{h[i].data, fmt.Sprintf(`{"id":%d}`, k)})
				}
				if rng.IntN(15) == 0 && i > 0 {
					for _, r := range h[rng.IntN(i) : i+1] {
						queues[k] = append(queues[k], delivery{r.data, fmt.Sprintf(`{"id":%d}`, k)})
					}
				}
			}
		}
		// The truncate, the schema record and the last record: each once or twice, on their own keys.
		for _, d := range []delivery{{truncate, "default"}, {schema, `{"databaseName":"app"}`}, {last, `{"id":0}`}} {
			for n := 1 + rng.IntN(2); n > 0; n-- {
				queues[keys] = append(queues[keys], d)
			}
		}
		rng.Shuffle(len(queues[keys]), func(i, j int) { queues[keys][i], queues[keys][j] = queues[keys][j], queues[keys][i] })
		for {
			var open []int
			for k := range queues {
				if len(queues[k]) > 0 {
					open = append(open, k)
				}
			}
			if len(open) == 0 {
				break
			}
			k := open[rng.IntN(len(open))]
			d := queues[k][0]
			queues[k] = queues[k][1:]
			if code, body := e.deliver(d.data, d.key); code != 200 || strings.HasPrefix(body, "dead") {
				t.Fatalf("seed %d: %d %q", seed, code, body)
			}
		}
		for k := range state {
			if got := e.get(fmt.Sprintf("app.%s:%d", table, k)); got != state[k] {
				t.Fatalf("seed %d (truncate at step %d, snapshot at step %d) key %d: cached %q, want %q", seed, truncAt, snapAt, k, got, state[k])
			}
		}
	}
}
