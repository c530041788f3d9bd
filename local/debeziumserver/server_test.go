package debeziumserver_test

import (
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/local/debeziumserver"
)

// The real Debezium Server, from the shipped template and entry point, against MariaDB and the
// emulator: snapshot, stream, a batch above gRPC's default 4 MiB, heartbeats, then a clean restart that
// resumes from the offsets stored in the state database.
func TestSnapshotStreamRestart(t *testing.T) {
	s := newStack(t, []string{"app.items", "app.order_lines", "app.blobs"}, map[string]string{"HEARTBEAT_INTERVAL_MS": "500"}, nil)
	db := s.mysql.DB("app")
	s.exec(db,
		"CREATE TABLE items (id INT NOT NULL PRIMARY KEY, name VARCHAR(20) NOT NULL, price DECIMAL(8,2))",
		"CREATE TABLE order_lines (order_id INT NOT NULL, line_no INT NOT NULL, qty INT NOT NULL, PRIMARY KEY (line_no, order_id))",
		"CREATE TABLE blobs (id INT NOT NULL PRIMARY KEY, body MEDIUMTEXT NOT NULL)",
		"CREATE TABLE other (id INT NOT NULL PRIMARY KEY)", // not captured: no topic, no events
		"INSERT INTO items VALUES (1,'tea',4.90),(2,'mug',8.00),(3,'pot',32.00)",
		"INSERT INTO order_lines VALUES (7,1,2),(7,2,1)",
		"INSERT INTO other VALUES (1)")

	start := time.Now()
	srv := s.start()
	healthy := time.Since(start)
	items := s.waitMessages("local.app.items", 3, time.Minute)
	lines := s.waitMessages("local.app.order_lines", 2, time.Minute)
	firstEvent := time.Since(start)
	t.Logf("start-up: Fetch %v, /q/health UP after %v, snapshot on the emulator after %v", fetchTime, healthy, firstEvent)

	// The snapshot: op r, ordering key = the key columns' JSON in primary-key order. The sink publishes
	// each ordering key's messages in order but different keys concurrently, so the emulator sees the
	// rows in no particular order: the markers are checked in the order the rows were read (primary-key
	// order, table by table).
	for _, m := range append(append([]message{}, items...), lines...) {
		if m.op() != "r" {
			t.Fatalf("snapshot op %q: %s", m.op(), m.Data)
		}
	}
	marks := map[string]string{}
	for _, m := range append(append([]message{}, items...), lines...) {
		marks[m.Key] = fmt.Sprint(m.source()["snapshot"])
	}
	got := fmt.Sprint(marks[`{"id":1}`], ",", marks[`{"id":2}`], ",", marks[`{"id":3}`], ",",
		marks[`{"line_no":1,"order_id":7}`], ",", marks[`{"line_no":2,"order_id":7}`])
	if got != "first,true,last_in_data_collection,first_in_data_collection,last" {
		t.Errorf("snapshot markers in read order: %s", got)
	}
	for _, m := range items {
		want := fmt.Sprintf(`{"id":%v}`, m.image("after")["id"])
		if m.Key != want {
			t.Errorf("ordering key %s, want %s", m.Key, want)
		}
	}
	for _, m := range lines {
		a := m.image("after")
		if want := fmt.Sprintf(`{"line_no":%v,"order_id":%v}`, a["line_no"], a["order_id"]); m.Key != want {
			t.Errorf("composite ordering key %s, want %s (primary-key order)", m.Key, want)
		}
	}
	if got := s.messages("local.app.other"); len(got) != 0 {
		t.Errorf("an uncaptured table published %d messages", len(got))
	}
	// What the log says: a snapshot of the five rows, then streaming.
	progress := waitProgress(t, srv, "streaming")
	if !progress.Snapshotted || progress.SnapshotRows != 5 || progress.LastError != "" {
		t.Errorf("progress after the snapshot: %#v", progress)
	}

	// Streaming.
	s.exec(db,
		"INSERT INTO items VALUES (4,'cup',3.50)",
		"UPDATE items SET price = 5.10 WHERE id = 1",
		"DELETE FROM items WHERE id = 2")
	stream := byPosition(s.waitMessages("local.app.items", 6, time.Minute)[3:])
	want := []struct {
		op, key string
	}{{"c", `{"id":4}`}, {"u", `{"id":1}`}, {"d", `{"id":2}`}}
	for i, w := range want {
		m := stream[i]
		// snapshot is null on a streamed change: the field's default "false" is not written in place of
		// the null (debezium.format.value.replace.null.with.default=false).
		if m.op() != w.op || m.Key != w.key || m.source()["snapshot"] != nil || m.source()["gtid"] == nil {
			t.Errorf("stream event %d: op %s key %s snapshot %v gtid %v, want op %s key %s: %s", i, m.op(), m.Key, m.source()["snapshot"], m.source()["gtid"], w.op, w.key, m.Data)
		}
	}
	if b, a := stream[1].image("before"), stream[1].image("after"); b["price"] != "4.90" || a["price"] != "5.10" {
		t.Errorf("update images: before %v after %v", b, a)
	}
	if stream[2].image("before") == nil || stream[2].Event["after"] != nil {
		t.Errorf("delete: %s", stream[2].Data)
	}

	// Messages above gRPC's default 4 MiB request limit: a 5 MB row, then five 1 MB versions of another
	// row in one transaction. The sink batches by ordering key, so these are requests of 5 MB and of up
	// to 5 MB (batch.request.byte.threshold is 9.5 MB).
	s.exec(db, "INSERT INTO blobs VALUES (1, REPEAT('a', 5000000))", "INSERT INTO blobs VALUES (2, '')")
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		if _, err := tx.Exec("UPDATE blobs SET body = REPEAT(?, 1000000) WHERE id = 2", string(rune('a'+i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	blobs := byPosition(s.waitMessages("local.app.blobs", 7, time.Minute))
	for i, m := range blobs {
		want := 1000000
		switch i {
		case 0:
			want = 5000000
		case 1:
			want = 0
		}
		if body, _ := m.image("after")["body"].(string); len(body) != want {
			t.Fatalf("blob message %d: op %s, %d bytes, want %d", i, m.op(), len(body), want)
		}
	}

	// Heartbeats: on their own topic, keyed by the logical server name.
	hb := s.waitMessages("debezium-heartbeat.local", 1, 30*time.Second)
	if hb[0].Key != `{"serverName":"local"}` || hb[0].Event["ts_ms"] == nil {
		t.Errorf("heartbeat: key %s data %s", hb[0].Key, hb[0].Data)
	}

	// A clean stop, changes while it is down, a start: it resumes from the stored offsets, without a
	// new snapshot.
	if err := srv.Stop(0); err != nil {
		t.Fatal(err)
	}
	before := len(s.messages("local.app.items"))
	s.exec(db, "INSERT INTO items VALUES (5,'jar',2.00)", "UPDATE items SET name = 'big pot' WHERE id = 3")
	var offsets int
	if err := s.root.QueryRow("SELECT COUNT(*) FROM debezium_state.debezium_offsets").Scan(&offsets); err != nil || offsets == 0 {
		t.Fatalf("debezium_state.debezium_offsets: %d rows, %v", offsets, err)
	}
	restart := time.Now()
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	after := byPosition(s.waitMessages("local.app.items", before+2, time.Minute)[before:])
	t.Logf("restart: healthy and first resumed event after %v", time.Since(restart))
	for _, m := range after {
		if m.op() == "r" {
			t.Fatalf("a new snapshot after a clean restart: %s", m.Data)
		}
	}
	if p := waitProgress(t, srv, "streaming"); p.Snapshotted {
		t.Errorf("progress after a clean restart: %#v", p)
	}
	// What arrives first is what changed while it was down: a clean stop committed everything sent.
	if after[0].op() != "c" || after[0].Key != `{"id":5}` || after[1].op() != "u" || after[1].Key != `{"id":3}` {
		t.Errorf("after the restart:\n%s", dump(after))
	}
	time.Sleep(2 * time.Second) // anything replayed would have arrived by now
	if extra := s.messages("local.app.items")[before+2:]; len(extra) != 0 {
		t.Errorf("%d messages more than the two changes after a clean restart:\n%s", len(extra), dump(extra))
	}
}

// byPosition orders changes as the binlog does (file, position, row), which is the order Debezium read
// them in; publish order is that order only per ordering key.
func byPosition(ms []message) []message {
	out := append([]message(nil), ms...)
	sort.SliceStable(out, func(a, b int) bool {
		sa, sb := out[a].source(), out[b].source()
		if fa, fb := fmt.Sprint(sa["file"]), fmt.Sprint(sb["file"]); fa != fb {
			return fa < fb
		}
		pa, _ := sa["pos"].(float64)
		pb, _ := sb["pos"].(float64)
		if pa != pb {
			return pa < pb
		}
		ra, _ := sa["row"].(float64)
		rb, _ := sb["row"].(float64)
		return ra < rb
	})
	return out
}

func waitProgress(t *testing.T, srv *debeziumserver.Server, phase string) debeziumserver.Progress {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p := srv.Progress()
		if p.Phase == phase {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("progress %+v, want phase %s", p, phase)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
