package apply_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// The real snapshot (testdata/debezium/real, step "snapshot") was read at mysql-bin.000001:8393. An
// earlier stream of the same database had cached, at older positions, rows the snapshot no longer
// finds: they were deleted while the binlog that held their deletes was purged.
const snapshotPos = 8393

// oldState writes what a stream before the snapshot left in the cache.
func oldState(e *env) {
	e.t.Helper()
	e.mustDeliver(event("shop", "customers", 'c', 1, 1000, 0, "", `{"id":1,"name":"old"}`), `{"id":1}`, "applied")
	e.mustDeliver(event("shop", "customers", 'c', 1, 1100, 0, "", `{"id":99,"name":"gone"}`), `{"id":99}`, "applied")
	e.mustDeliver(event("shop", "customers", 'd', 1, 1200, 0, `{"id":50}`, ""), `{"id":50}`, "applied")
	e.mustDeliver(event("shop", "doomed", 'c', 1, 1300, 0, "", `{"id":5}`), `{"id":5}`, "applied")
	e.mustDeliver(event("shop", "products", 'c', 1, 1400, 0, "", `{"sku":"gone"}`), `{"sku":"gone"}`, "applied")
	if ok, err := rowcache.NewStore(e.rdb, 0).Fill(context.Background(), "shop.wide:77", "cloudsql-cache:truncated:shop.wide", "", []byte(`{"id":77}`), time.Minute); err != nil || !ok {
		e.t.Fatalf("fill: %v %v", ok, err)
	}
	e.rdb.Set(context.Background(), "shop.customers:foreign", "42", 0) // another application's key
}

// snapshotRecords are the real snapshot's schema records (topic "local") and data records.
func snapshotRecords(t *testing.T, all []realMessage) (schema, data []realMessage) {
	for _, m := range all {
		if m.Step != "snapshot" {
			continue
		}
		if m.Topic == "local" {
			schema = append(schema, m)
		} else {
			data = append(data, m)
		}
	}
	if len(schema) == 0 || len(data) == 0 {
		t.Fatal("no real snapshot records")
	}
	return schema, data
}

// checkResnapshot: what the snapshot did not find is gone, what it read is cached, what came later stays.
func checkResnapshot(e *env, gone []string, want map[string]string) {
	e.t.Helper()
	for _, k := range append(gone, "shop.customers:50", "shop.wide:77") {
		if got := e.get(k); got != "" {
			e.t.Errorf("%s is still cached (%q) after the snapshot completed", k, got)
		}
	}
	for k, w := range want {
		if got := e.get(k); got != w {
			e.t.Errorf("%s = %q, want %q", k, got, w)
		}
	}
	if got := e.rdb.Get(context.Background(), "shop.customers:foreign").Val(); got != "42" {
		e.t.Errorf("the completion sweep touched a foreign value: %q", got)
	}
}

// A re-snapshot is a statement about every row of every table it read: when it completes, the rows it
// did not find are removed, whatever order its records (unordered across keys and topics) arrive in.
func TestResnapshotRemovesRowsItDidNotFind(t *testing.T) {
	all := realMessages(t)
	schema, data := snapshotRecords(t, all)
	last := one(t, data, "snapshot", "", `"snapshot":"last"`)
	customer1 := one(t, data, "snapshot", ".customers", `"snapshot":"first"`)
	// A change streamed after the snapshot position, delivered before the snapshot completes.
	later := one(t, all, "insert", ".customers")

	full := map[string]string{
		"shop.customers:1": `{"id":1,"name":"Anne Kretchmar","email":"annek@example.org","tier":"pro","created_at":"2026-01-02T03:04:05.678Z"}`,
		"shop.customers:2": `{"id":2,"name":"Sally Thomas","email":"sally@example.org","tier":"free","created_at":"2026-01-02T03:04:06Z"}`,
		"shop.doomed:1":    `{"id":1}`,
		"shop.customers:4": `{"id":4,"name":"Chloé Zhao","email":"chloe@example.org","tier":"pro","created_at":"2026-03-04T05:06:07.890Z"}`,
	}
	// Without doomed's only row the table looks empty (no data record, no marker); without two of the
	// customers, customers is a first table with one row, marked "first" and never
	// "last_in_data_collection". Only the join of the schema records and "last" completes them.
	markerless := without(data, one(t, data, "snapshot", ".doomed"), one(t, data, "snapshot", ".customers", `"id":2`), one(t, data, "snapshot", ".customers", `"id":3`))
	scenarios := []struct {
		name string
		data []realMessage
		gone []string
		want map[string]string
	}{
		{"every marker", data, []string{"shop.customers:99", "shop.doomed:5", "shop.products:gone"}, full},
		{"empty table and a one-row first table", markerless, []string{"shop.customers:99", "shop.doomed:5", "shop.doomed:1", "shop.customers:2", "shop.products:gone"},
			map[string]string{"shop.customers:1": full["shop.customers:1"], "shop.customers:4": full["shop.customers:4"]}},
	}
	orders := map[string]func(rng *rand.Rand, schema, data []realMessage) []realMessage{
		"schema records first": func(_ *rand.Rand, schema, data []realMessage) []realMessage {
			return append(append([]realMessage{}, schema...), data...)
		},
		"last record first": func(_ *rand.Rand, schema, data []realMessage) []realMessage {
			out := []realMessage{last}
			out = append(out, without(data, last)...)
			return append(out, schema...)
		},
		"last between the schema records": func(_ *rand.Rand, schema, data []realMessage) []realMessage {
			out := append([]realMessage{}, schema[:len(schema)/2]...)
			out = append(out, last)
			out = append(out, schema[len(schema)/2:]...)
			return append(out, without(data, last)...)
		},
		"shuffled": func(rng *rand.Rand, schema, data []realMessage) []realMessage {
			out := append(append([]realMessage{}, schema...), data...)
			rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
			return out
		},
	}
	for _, sc := range scenarios {
		for name, order := range orders {
			t.Run(sc.name+"/"+name, func(t *testing.T) {
				e := newEnv(t)
				oldState(e)
				e.mustDeliverReal(later, "applied")
				for _, m := range order(rand.New(rand.NewPCG(7, uint64(len(name)))), schema, sc.data) {
					e.mustDeliverReal(m, "")
				}
				checkResnapshot(e, sc.gone, sc.want)
				// An old-stream change delivered after the completion is below the floor.
				e.mustDeliver(event("shop", "customers", 'u', 1, 8000, 3, `{"id":1}`, `{"id":1,"name":"late"}`), `{"id":1}`, "stale: resnapshot")
				e.mustDeliver(event("shop", "customers", 'c', 1, 8000, 4, "", `{"id":99,"name":"gone"}`), `{"id":99}`, "stale: resnapshot")
				// The snapshot's own rows delivered late still land (or are duplicates).
				e.mustDeliverReal(customer1, "duplicate")
				if got := e.get("shop.customers:1"); got != full["shop.customers:1"] {
					t.Fatalf("customers:1 = %q after late deliveries", got)
				}
				if n := e.counts()["applied/snapshot_sweep"]; n == 0 {
					t.Fatal("no message counted the snapshot's completion")
				}
			})
		}
	}
}

// A snapshot row that arrives after its table completed is applied: the floor is the snapshot's own
// position, and equal is kept.
func TestLateSnapshotRowAfterCompletion(t *testing.T) {
	all := realMessages(t)
	schema, data := snapshotRecords(t, all)
	held := one(t, data, "snapshot", ".customers", `"id":2`)
	e := newEnv(t)
	oldState(e)
	for _, m := range append(schema, without(data, held)...) {
		e.mustDeliverReal(m, "")
	}
	if got := e.get("shop.customers:99"); got != "" {
		t.Fatalf("not completed: %q", got)
	}
	e.mustDeliverReal(held, "applied")
	if got := e.get("shop.customers:2"); !strings.Contains(got, "Sally") {
		t.Fatalf("late snapshot row: %q", got)
	}
}

// The join of the schema records and the last record, delivered concurrently (the two topics have
// separate subscriptions, each with its own concurrency): every announced table completes.
func TestSnapshotCompletionWithConcurrentDeliveries(t *testing.T) {
	all := realMessages(t)
	schema, data := snapshotRecords(t, all)
	last := one(t, data, "snapshot", "", `"snapshot":"last"`)
	for round := 0; round < 6; round++ {
		e := newEnv(t)
		oldState(e)
		var wg sync.WaitGroup
		for _, m := range append([]realMessage{last}, schema...) {
			wg.Add(1)
			go func(m realMessage) {
				defer wg.Done()
				if code, body := e.deliverReal(m); code != 200 {
					t.Errorf("%s: %d %q", m.File, code, body)
				}
			}(m)
		}
		wg.Wait()
		// doomed and products were only announced (their rows were not delivered): completed by the join.
		for _, k := range []string{"shop.doomed:5", "shop.products:gone", "shop.customers:99"} {
			if got := e.get(k); got != "" {
				t.Fatalf("round %d: %s still cached: %q", round, k, got)
			}
		}
	}
}

// What does not say "every row of this table was read" completes nothing: incremental snapshot
// chunks, the snapshot-phase DROP TABLE IF EXISTS / DROP DATABASE IF EXISTS records without the
// snapshot's last record.
func TestWhatCompletesNothing(t *testing.T) {
	all := realMessages(t)
	schema, data := snapshotRecords(t, all)
	cases := map[string][]realMessage{}
	var incremental []realMessage
	for _, m := range data {
		incremental = append(incremental, withSnapshotMarker(m, "incremental"))
	}
	cases["incremental snapshot"] = incremental
	cases["snapshot-phase drops"] = pick(t, schema, "snapshot", "local", `"ddl":"DROP `)
	for name, ms := range cases {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			oldState(e)
			for _, m := range ms {
				e.mustDeliverReal(m, "")
			}
			for _, k := range []string{"shop.customers:99", "shop.doomed:5", "shop.products:gone"} {
				if e.get(k) == "" {
					t.Errorf("%s was removed", k)
				}
			}
			if n := e.counts()["applied/snapshot_sweep"]; n != 0 {
				t.Errorf("%d completions counted", n)
			}
		})
	}
}

// A snapshot in which no table has a row: its last record is its last schema record, marked "last".
// Every table it announced completes, and what the tables no longer hold goes.
func TestSnapshotOfEmptyTables(t *testing.T) {
	all := realMessages(t)
	schema, _ := snapshotRecords(t, all)
	ms := append(append([]realMessage{}, schema[:len(schema)-1]...), withSnapshotMarker(schema[len(schema)-1], "last"))
	for _, reversed := range []bool{false, true} {
		e := newEnv(t)
		oldState(e)
		order := append([]realMessage{}, ms...)
		if reversed {
			for i, j := 0, len(order)-1; i < j; i, j = i+1, j-1 {
				order[i], order[j] = order[j], order[i]
			}
		}
		for _, m := range order {
			e.mustDeliverReal(m, "")
		}
		for _, k := range []string{"shop.customers:1", "shop.customers:99", "shop.doomed:5", "shop.products:gone"} {
			if got := e.get(k); got != "" {
				t.Errorf("reversed=%v: %s still cached: %q", reversed, k, got)
			}
		}
	}
}

// A restore with a raised epoch: the new database's snapshot (epoch 1) completes above every version
// of the old epoch, so its completion removes every row the new database does not have, tables it no
// longer has included, without cachectl sweep-epoch.
func TestSnapshotInNewEpochRemovesOldEpochRows(t *testing.T) {
	all := realMessages(t)
	schema, data := snapshotRecords(t, all)
	old := newEnv(t)
	// Rows the old database had at positions far beyond the new database's snapshot position.
	for i := 0; i < 5; i++ {
		old.mustDeliver(event("shop", "customers", 'c', 9, uint64(100000+i), 0, "", fmt.Sprintf(`{"id":%d}`, 100+i)), fmt.Sprintf(`{"id":%d}`, 100+i), "applied")
	}
	// A table the old database had and the restored one does not: no schema record of the new
	// snapshot names it, but its database's DROP DATABASE IF EXISTS record covers it.
	old.mustDeliver(event("shop", "retired", 'c', 9, 100100, 0, "", `{"id":1}`), `{"id":1}`, "applied")
	e := old.withEpoch(1)
	for _, m := range append(schema, data...) {
		e.mustDeliverReal(m, "")
	}
	if got := e.get("shop.retired:1"); got != "" {
		t.Fatalf("a table the new database does not have kept its old-epoch row: %q", got)
	}
	for i := 0; i < 5; i++ {
		if got := e.get(fmt.Sprintf("shop.customers:%d", 100+i)); got != "" {
			t.Fatalf("old-epoch row %d survived the new epoch's snapshot: %q", 100+i, got)
		}
	}
	if got := e.get("shop.customers:1"); !strings.Contains(got, "Anne") {
		t.Fatalf("snapshot row: %q", got)
	}
}
