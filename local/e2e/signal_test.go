package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/dbzsignal"
)

// lateRows are in shop.late, a table of a captured database that is not captured at first, before it
// is added: enough for ten of Debezium's 1,024-row chunks, so that the writes below land in windows.
const lateRows = 10000

// TestAddTableWithIncrementalSnapshot adds a table to a running deployment as the README's "Adding a
// table" says: Debezium restarted with the longer include-list (the table's schema is in the schema
// history already, store.only.captured.tables.ddl=false), then an execute-snapshot signal through the
// signal table (dbzsignal, what cachectl snapshot sends). The snapshot runs in chunks while streaming
// goes on and writers update, delete and insert the table's rows; afterwards the cache holds exactly
// the table's rows, and no other table was snapshotted again.
func TestAddTableWithIncrementalSnapshot(t *testing.T) {
	start := time.Now()
	ctx := context.Background()
	s := newStack(t, stackOptions{})
	sqlExec(t, s.db, "CREATE TABLE late (id INT NOT NULL PRIMARY KEY, v INT NOT NULL, note VARCHAR(40) NOT NULL)")
	for lo := 1; lo <= lateRows; lo += 1000 {
		var vals []string
		for id := lo; id < lo+1000; id++ {
			vals = append(vals, fmt.Sprintf("(%d, 0, 'seed')", id))
		}
		sqlExec(t, s.db, "INSERT INTO late VALUES "+strings.Join(vals, ","))
	}
	if err := s.p.StartDebezium(ctx); err != nil {
		t.Fatal(err)
	}
	s.waitStreaming(t)
	s.settle(t, false)
	if n := s.cachedKeys(t, "shop.late:*"); n != 0 {
		t.Fatalf("%d rows of the uncaptured table are cached", n)
	}

	// Rows change while Debezium is down for the restart: streamed once it is back (the table's events
	// after the stored offset are now included), then overtaken by the snapshot.
	if err := s.p.StopDebezium(0); err != nil {
		t.Fatal(err)
	}
	sqlExec(t, s.db, "UPDATE late SET v = 1, note = 'while stopped' WHERE id <= 100", "DELETE FROM late WHERE id BETWEEN 101 AND 110")
	if err := s.p.SetTables(ctx, append(append([]string{}, tables...), "shop.late")); err != nil {
		t.Fatal(err)
	}
	// Recorded from the restart on: it must not snapshot anything again either.
	s.capture(true)
	if err := s.p.StartDebezium(ctx); err != nil {
		t.Fatal(err)
	}
	s.waitStreaming(t)

	wctx, stopWriters := context.WithCancel(ctx)
	var writes atomic.Int64
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 17))
			for n := 0; wctx.Err() == nil; n++ {
				id := 1 + r.IntN(lateRows+200) // some beyond the snapshot's last key: streamed only
				var q string
				switch r.IntN(10) {
				case 0, 1:
					q = fmt.Sprintf("DELETE FROM late WHERE id = %d", id)
				case 2, 3:
					q = fmt.Sprintf("INSERT INTO late VALUES (%d, %d, 'inserted') ON DUPLICATE KEY UPDATE v = v + 1, note = 'upserted'", id, n)
				default:
					q = fmt.Sprintf("UPDATE late SET v = v + 1, note = 'w%d-%d' WHERE id = %d", w, n, id)
				}
				if _, err := s.db.ExecContext(wctx, q); err == nil {
					writes.Add(1)
				}
				if n%20 == 0 {
					// And the other tables go on streaming meanwhile.
					_, _ = s.db.ExecContext(wctx, fmt.Sprintf("REPLACE INTO markers VALUES (2, %d)", n))
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	waitUntil(t, "the writers to start", time.Minute, func() bool { return writes.Load() > 50 })

	root := s.mysql.DB("")
	id, err := dbzsignal.Send(ctx, root, "debezium_state", dbzsignal.Snapshot{DB: "shop", Table: "late"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("signal %s sent after %d writes", id, writes.Load())
	finished := regexp.MustCompile(`incremental snapshotting of table '?shop\.late'? finished`)
	deadline := time.Now().Add(2 * time.Minute)
	for !finished.MatchString(s.p.Debezium().LogTail(400)) { // the whole log is read: not every 50 ms
		if time.Now().After(deadline) {
			t.Fatalf("the incremental snapshot of shop.late did not finish in 2 minutes: %s", s.p.Debezium().Progress())
		}
		time.Sleep(500 * time.Millisecond)
	}
	// A little more writing after the last chunk, then the pipeline settles.
	target := writes.Load() + 100
	waitUntil(t, "writes after the snapshot", time.Minute, func() bool { return writes.Load() > target })
	stopWriters()
	wg.Wait()
	s.settle(t, false)
	got := s.capture(false)

	rep := s.verifyTable(t, "shop.late")
	t.Logf("verify shop.late: %d rows, missing %d, extra %d, different %d", rep.Rows, rep.Missing, rep.Extra, rep.Different)
	if rep.Missing+rep.Extra+rep.Different != 0 || rep.Rows < lateRows/2 {
		t.Errorf("shop.late after its incremental snapshot: %+v", rep)
	}

	// Since the restart only shop.late was read, every read marked incremental, and streamed changes of
	// it were delivered while its chunks were.
	var reads, streamedDuring, stale int
	first, last := -1, -1
	positions := map[string]bool{} // the binlog positions the reads carry: one per chunk's window
	for i, d := range got {
		if d.op != "r" {
			continue
		}
		if !strings.Contains(d.sub, "shop.late") || d.snapshot != "incremental" {
			t.Errorf("a snapshot read of %s marked %q: only shop.late's incremental snapshot should read rows", d.sub, d.snapshot)
			continue
		}
		reads++
		positions[fmt.Sprintf("%s:%d", d.file, d.pos)] = true
		if d.outcome == "stale" {
			stale++
		}
		if first < 0 {
			first = i
		}
		last = i
	}
	for i := max(first, 0); i <= last; i++ {
		if d := got[i]; strings.Contains(d.sub, "shop.late") && (d.op == "u" || d.op == "d" || d.op == "c") {
			streamedDuring++
		}
	}
	dedup := strings.Count(s.p.Debezium().LogTail(100000), "from window")
	t.Logf("%d incremental reads of shop.late (%d stale) at %d binlog positions, %d streamed changes of it delivered among them, %d writes in all; Debezium dropped %d chunk rows for a change in their window",
		reads, stale, len(positions), streamedDuring, writes.Load(), dedup)
	if reads < lateRows/2 {
		t.Errorf("%d incremental reads for a table of %d rows", reads, lateRows)
	}
	if len(positions) < lateRows/1024 {
		// Each chunk's rows carry the position of the watermark that closed its window: that is what
		// orders them against the streamed changes (function/apply TestIncrementalSnapshotChunkRows).
		t.Errorf("%d incremental reads carried %d distinct positions: fewer than one per chunk", reads, len(positions))
	}
	if streamedDuring == 0 {
		t.Error("no streamed change of shop.late was delivered during its snapshot: the test tested no concurrency")
	}
	if exits, _ := s.p.DebeziumExits(); len(exits) > 0 {
		t.Errorf("Debezium exited by itself: %v", exits)
	}
	t.Logf("adding a table with an incremental snapshot: %.1f s", time.Since(start).Seconds())
}

// cachedKeys counts the keys matching pattern.
func (s *stack) cachedKeys(t *testing.T, pattern string) int {
	t.Helper()
	keys, err := s.rdb.Keys(context.Background(), pattern).Result()
	if err != nil {
		t.Fatal(err)
	}
	return len(keys)
}
