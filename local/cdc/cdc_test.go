package cdc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/local/cdc"
)

// memSink keeps every message; Publish succeeds at once.
type memSink struct {
	mu   sync.Mutex
	msgs []cdc.Message
}

func (s *memSink) Publish(_ context.Context, m cdc.Message) func(context.Context) error {
	s.mu.Lock()
	s.msgs = append(s.msgs, m)
	s.mu.Unlock()
	return func(context.Context) error { return nil }
}

func (s *memSink) waitFor(t *testing.T, n int) []cdc.Message {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		s.mu.Lock()
		got := append([]cdc.Message(nil), s.msgs...)
		s.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			for _, m := range got {
				t.Logf("%s %s %s", m.Topic, m.OrderingKey, m.Data)
			}
			t.Fatalf("got %d messages, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type running struct {
	cancel context.CancelFunc
	done   chan error
	dir    string
}

func start(t *testing.T, srv *mariadbserver.TestServer, dir string, sink cdc.Sink) *running {
	t.Helper()
	src, err := cdc.New(cdc.Config{DSN: srv.DSN(""), Flavor: "mariadb", ServerID: 9001, Prefix: "local", Databases: []string{"app"}, StateDir: dir, Sink: sink, SaveEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), dir: dir}
	go func() { r.done <- src.Run(ctx); src.Close() }()
	t.Cleanup(r.stop)
	return r
}

func (r *running) stop() {
	r.cancel()
	<-r.done
	r.done <- nil
}

// waitSnapshotted waits until the source has saved an offset with the initial snapshot completed:
// from then on every change reaches it through the binlog, not the snapshot. A sleep instead lets a slow
// machine snapshot after the test's changes, which then arrive as reads (op "r").
func (r *running) waitSnapshotted(t *testing.T) {
	t.Helper()
	const limit = 60 * time.Second
	deadline := time.Now().Add(limit)
	for {
		off, ok, err := cdc.LoadOffset(r.dir)
		if err != nil {
			t.Fatal(err)
		}
		if ok && off.SnapshotCompleted {
			return
		}
		select {
		case err := <-r.done:
			r.done <- err // for stop
			t.Fatalf("the source stopped before its snapshot completed: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no completed snapshot recorded in %s after %v (offset %+v, file present %v)", r.dir, limit, off, ok)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func decode(t *testing.T, m cdc.Message) *debezium.Event {
	t.Helper()
	ev, err := debezium.Decode(m.Data)
	if err != nil {
		t.Fatalf("%s: %v", m.Data, err)
	}
	return ev
}

func TestSnapshotThenStream(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := srv.DB("app")
	srv.Exec(db,
		"CREATE TABLE items (tenant INT NOT NULL, id INT NOT NULL, price DECIMAL(10,2), at DATETIME(6), PRIMARY KEY (tenant, id))",
		"CREATE TABLE log (msg VARCHAR(20))",
		"INSERT INTO items VALUES (1,1,'1.50','2024-01-02 03:04:05.000001'),(1,2,'2.00',NULL)",
		"INSERT INTO log VALUES ('x')")
	dir := t.TempDir()
	sink := &memSink{}
	r := start(t, srv, dir, sink)
	got := sink.waitFor(t, 3)
	var snaps []string
	for _, m := range got[:3] {
		ev := decode(t, m)
		if ev.Op != debezium.Read {
			t.Fatalf("snapshot op %c: %s", ev.Op, m.Data)
		}
		snaps = append(snaps, ev.Source.Snapshot)
	}
	if fmt.Sprint(snaps) != "[first last_in_data_collection last]" {
		t.Errorf("snapshot markers %v", snaps)
	}
	if got[0].Topic != "local.app.items" || got[0].OrderingKey != `{"tenant":1,"id":1}` {
		t.Errorf("topic %q key %q", got[0].Topic, got[0].OrderingKey)
	}
	if got[2].OrderingKey != cdc.NullKey {
		t.Errorf("keyless table: ordering key %q", got[2].OrderingKey)
	}
	srv.Exec(db,
		"UPDATE items SET price = price + 1 WHERE tenant = 1", // 2 updates in one event
		"UPDATE items SET id = 3 WHERE tenant = 1 AND id = 2", // a key change: delete + create
		"BEGIN", "DELETE FROM items WHERE id = 1", "INSERT INTO items VALUES (2,1,'9.99',NULL)", "COMMIT",
		"TRUNCATE TABLE log",
		"ALTER TABLE items ADD COLUMN note VARCHAR(10) DEFAULT 'n'",
		"INSERT INTO items (tenant, id) VALUES (3,1)")
	got = sink.waitFor(t, 3+2+2+2+1+1)[3:]
	want := []string{
		`u {"tenant":1,"id":1} row 0`, `u {"tenant":1,"id":2} row 1`,
		`d {"tenant":1,"id":2} row 0`, `c {"tenant":1,"id":3} row 0`,
		`d {"tenant":1,"id":1} row 0`, `c {"tenant":2,"id":1} row 0`,
		`t default row 0`, `c {"tenant":3,"id":1} row 0`,
	}
	var have []string
	var lastPos uint64
	for _, m := range got {
		ev := decode(t, m)
		have = append(have, fmt.Sprintf("%c %s row %d", ev.Op, m.OrderingKey, ev.Source.Row))
		if ev.Source.Pos < lastPos {
			t.Errorf("position went back: %s", m.Data)
		}
		lastPos = ev.Source.Pos
		if ev.Source.GTID == "" || !strings.HasPrefix(ev.Source.File, "mysql-bin.") {
			t.Errorf("source block: %s", m.Data)
		}
	}
	if strings.Join(have, "\n") != strings.Join(want, "\n") {
		t.Errorf("stream:\n%s\nwant\n%s", strings.Join(have, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(string(got[len(got)-1].Data), `"note":"n"`) {
		t.Errorf("the new column is missing: %s", got[len(got)-1].Data)
	}

	// A restart resumes after the last transaction: nothing is published again.
	r.stop()
	off, ok, err := cdc.LoadOffset(dir)
	if err != nil || !ok || !off.SnapshotCompleted {
		t.Fatalf("offset %+v %v %v", off, ok, err)
	}
	sink2 := &memSink{}
	start(t, srv, dir, sink2)
	srv.Exec(db, "INSERT INTO items (tenant, id) VALUES (4,1)")
	got = sink2.waitFor(t, 1)
	time.Sleep(300 * time.Millisecond)
	if got = sink2.waitFor(t, 1); len(got) != 1 || got[0].OrderingKey != `{"tenant":4,"id":1}` {
		for _, m := range got {
			t.Logf("%s", m.Data)
		}
		t.Errorf("after restart got %d messages", len(got))
	}
}

// TestBinlogMatchesQuery holds the two paths of mysqlrow to the same bytes: every type through the
// binlog equals the same row read with database/sql.
func TestBinlogMatchesQuery(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := srv.DB("app")
	srv.Exec(db, "CREATE TABLE types (id INT UNSIGNED NOT NULL PRIMARY KEY, ti TINYINT, b BOOLEAN, si SMALLINT UNSIGNED, mi MEDIUMINT UNSIGNED, i INT UNSIGNED, bi BIGINT, ubi BIGINT UNSIGNED,"+
		"d DECIMAL(10,2), d0 DECIMAL(5,0), dn DECIMAL(30,10), f FLOAT, db DOUBLE, dt0 DATETIME, dt3 DATETIME(3), dt6 DATETIME(6), ts0 TIMESTAMP NULL, ts3 TIMESTAMP(3) NULL, ts6 TIMESTAMP(6) NULL,"+
		"dd DATE, tm TIME, tm6 TIME(6), y YEAR, c CHAR(4), vc VARCHAR(40), tx TEXT, bin BINARY(4), vb VARBINARY(8), bl BLOB, bt1 BIT(1), bt10 BIT(10), e ENUM('small','it''s big'), st SET('a','b','c'), js JSON)")
	sink := &memSink{}
	dir := t.TempDir()
	start(t, srv, dir, sink).waitSnapshotted(t) // the rows below must come through the binlog
	srv.Exec(db,
		"INSERT INTO types VALUES (1, -128, TRUE, 65535, 16777215, 4294967295, -9000000000, 18446744073709551615,"+
			"'-12.3', 42, '-12345678901234567890.0123456789', 3.14159274, 0.30000000000000004, '2024-01-02 03:04:05', '1969-12-31 23:59:59.999', '2024-01-02 03:04:05.123456',"+
			"'2024-01-02 03:04:05', '2024-01-02 03:04:05.120', '2038-01-19 03:14:07.999999', '1960-01-02', '-838:59:59', '12:00:00.000005', 1901,"+
			"'ab ', 'h\"é\\n\\t<>\\\\', REPEAT('x', 300), X'0100', X'00ff00', X'cafe', b'0', b'1000000001', 'it''s big', 'a,b,c', '{\"b\": 1, \"a\": [true, null, 1.5e300]}')",
		"INSERT INTO types (id) VALUES (2)",
		"INSERT INTO types (id, f, db, e, st, bt10) VALUES (3, -0.000001, 1e20, 'small', '', b'0')")
	got := sink.waitFor(t, 3)
	tbl, err := mysqlrow.LoadTable(context.Background(), db, "app", "types")
	if err != nil {
		t.Fatal(err)
	}
	rows, err := db.Query("SELECT " + tbl.SelectList() + " FROM types ORDER BY id")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for rows.Next() {
		r, err := tbl.ScanRow(rows)
		if err != nil {
			t.Fatal(err)
		}
		want := string(r.AppendJSON(nil, nil))
		ev := decode(t, got[i])
		if have := string(ev.After.AppendJSON(nil, nil)); have != want {
			t.Errorf("row %d:\nbinlog %s\nquery  %s", i+1, have, want)
		}
		i++
	}
}

// TestContractAgainstDebeziumFixtures holds the events against Debezium's own: the same fields in the
// envelope and in the source block, each with the same JSON type.
func TestContractAgainstDebeziumFixtures(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := srv.DB("app")
	srv.Exec(db, "CREATE TABLE customers (id INT NOT NULL AUTO_INCREMENT PRIMARY KEY, first_name VARCHAR(255) NOT NULL, last_name VARCHAR(255) NOT NULL, email VARCHAR(255) NOT NULL UNIQUE)")
	sink := &memSink{}
	dir := t.TempDir()
	start(t, srv, dir, sink).waitSnapshotted(t) // the changes below must be binlog events, not snapshot reads
	srv.Exec(db,
		"INSERT INTO customers VALUES (1004, 'Anne', 'Kretchmar', 'annek@noanswer.org')",
		"UPDATE customers SET first_name = 'Anne Marie' WHERE id = 1004",
		"DELETE FROM customers WHERE id = 1004",
		"TRUNCATE TABLE customers")
	got := sink.waitFor(t, 4)
	for _, m := range got {
		t.Logf("%s %s %s", m.Topic, m.OrderingKey, m.Data)
	}
	fixtures := map[string]string{
		"c": "mysql-create-noschema-serde-testfixture.json",
		"u": "mysql-update-noschema-docs.json",
		"d": "mysql-delete-noschema-docs.json",
		"t": "mysql-truncate-noschema-docs.json",
	}
	for i, op := range []string{"c", "u", "d", "t"} {
		raw, err := os.ReadFile(filepath.Join("..", "..", "testdata", "debezium", fixtures[op]))
		if err != nil {
			t.Fatal(err)
		}
		var want, have map[string]any
		if err := json.Unmarshal(raw, &want); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(got[i].Data, &have); err != nil {
			t.Fatal(err)
		}
		if have["op"] != op {
			t.Fatalf("message %d is op %v, want %s", i, have["op"], op)
		}
		compareShape(t, op, "", want, have)
		compareShape(t, op, "source.", want["source"].(map[string]any), have["source"].(map[string]any))
		if op == "c" || op == "u" {
			if fmt.Sprint(have["after"]) != fmt.Sprint(want["after"]) {
				t.Errorf("%s: after %v, want %v", op, have["after"], want["after"])
			}
		}
		if got[i].OrderingKey != `{"id":1004}` && op != "t" {
			t.Errorf("%s: ordering key %q", op, got[i].OrderingKey)
		}
	}
}

// compareShape checks that have has exactly want's fields with the same JSON types, allowing what
// differs legitimately between Debezium versions and settings.
func compareShape(t *testing.T, op, prefix string, want, have map[string]any) {
	t.Helper()
	// Fields newer Debezium versions add, and ones the fixtures' versions lack.
	optional := map[string]bool{"ts_us": true, "ts_ns": true, "transaction": true, "source.ts_us": true, "source.ts_ns": true, "source.sequence": true, "source.query": true}
	// Optional fields a fixture shows set and this pipeline leaves null (or the reverse), and the
	// snapshot marker, a boolean in old versions and a string since.
	either := map[string]bool{"source.gtid": true, "source.thread": true, "source.query": true, "source.snapshot": true}
	var names []string
	for k := range want {
		names = append(names, k)
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		w, inWant := want[k]
		h, inHave := have[k]
		if inWant != inHave {
			if !optional[prefix+k] {
				t.Errorf("%s: field %s%s: in Debezium %v, in ours %v", op, prefix, k, inWant, inHave)
			}
			continue
		}
		if either[prefix+k] || w == nil || h == nil && (k == "before" || k == "after") {
			continue
		}
		if fmt.Sprintf("%T", w) != fmt.Sprintf("%T", h) {
			t.Errorf("%s: field %s%s: Debezium %T (%v), ours %T (%v)", op, prefix, k, w, w, h, h)
		}
	}
}
