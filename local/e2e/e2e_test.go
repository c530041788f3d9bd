package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// TestPipeline runs the scenarios in order on one pipeline; each ends with the drift checker finding
// no difference after the pipeline has gone quiet, while a watcher checks that no cached version ever
// goes back. A scenario that fails stops the run: the next one would start from its drift.
func TestPipeline(t *testing.T) {
	start := time.Now()
	s := newStack(t, stackOptions{})
	runSteps(t, []step{
		{"SnapshotUnderConcurrentWrites", s.snapshotUnderWrites},
		{"RandomWorkload", func(t *testing.T) { s.run(t, scenario{d: 8 * time.Second}) }},
		{"DuplicatePushes", s.duplicatePushes},
		{"HousekeepingDuringABurst", s.housekeepingBurst},
		{"RedisRestarted", s.redisRestarted},
		{"FunctionKilledLongerThanTheAckDeadline", s.functionKilled},
		{"DebeziumKilledMidStream", s.debeziumKilledMidStream},
		{"DebeziumStoppedWhileRowsChange", s.debeziumStopped},
		{"MariaDBRestartedUnderLoad", s.mariadbRestarted},
		{"SchemaChanges", s.schemaChanges},
		{"BinlogsPurgedWhileStoppedThenKilledMidSnapshot", s.binlogsPurgedThenKilledMidSnapshot},
	}, nil)
	// Every periodic task of the pipeline ran, and did what it is for: the emulator's housekeeping
	// (checked in its scenario), the relay's ack-deadline renewals (no message handed out twice, even
	// with the function down for longer than the deadline), Debezium's heartbeats (acknowledged and
	// ignored by the function).
	st := s.p.Relay.Stats()
	if st.Extends == 0 || st.Redelivered != 0 {
		t.Errorf("ack-deadline renewals: %d rounds, %d messages handed out again", st.Extends, st.Redelivered)
	}
	if n := s.ignoredHeartbeats(t); n == 0 {
		t.Error("the function ignored no Debezium heartbeat: none arrived")
	}
	exits, restarts := s.p.DebeziumExits()
	t.Logf("all scenarios: %.1f s; housekeeping cleared the emulator's record %d times; %d ack-deadline renewal rounds; Debezium exited by itself %d times (%v), restarted %d times",
		time.Since(start).Seconds(), s.p.Forgets(), st.Extends, len(exits), exits, restarts)
}

// The first start of Debezium takes its snapshot while the workload and a writer of every customer
// row commit, with the shipped snapshot.locking.mode=none: Debezium reads the binlog position before
// the first SELECT creates the transaction's read view, so a commit in between is in the snapshot (op
// r, at the snapshot's position) and streamed (at its own, later position). The test finds such commits
// (every name written is unique) and the version guard absorbs them: the streamed change wins, whichever
// arrives first.
func (s *stack) snapshotUnderWrites(t *testing.T) {
	for lo := 1; lo <= snapshotRows; lo += 500 {
		var vals []string
		for id := lo; id < lo+500 && id <= snapshotRows; id++ {
			vals = append(vals, fmt.Sprintf("(%d, 'seed%d', 'c%d@example.org', 'free')", id, id, id))
		}
		sqlExec(t, s.db, "INSERT INTO customers (id, name, email, tier) VALUES "+strings.Join(vals, ","))
	}
	s.capture(true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	regressions := s.watch(ctx)
	var wg sync.WaitGroup
	wg.Add(2)
	var n int
	go func() { defer wg.Done(); n = s.workload(ctx, 1) }()
	go func() { // every customer row, not only the hot ones
		defer wg.Done()
		rnd := rand.New(rand.NewPCG(2, 2))
		for ctx.Err() == nil {
			_, _ = s.db.Exec(fmt.Sprintf("UPDATE customers SET name = 'w%d' WHERE id = %d", writes.Add(1), 1+rnd.IntN(snapshotRows)))
		}
	}()
	t0 := time.Now()
	if err := s.p.StartDebezium(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Logf("Debezium Server healthy after %.1f s", time.Since(t0).Seconds())
	s.waitStreaming(t)
	progress := s.p.Debezium().Progress()
	t.Logf("snapshot done after %.1f s: %s", time.Since(t0).Seconds(), progress)
	if !progress.Snapshotted || progress.SnapshotRows < snapshotRows {
		t.Errorf("the first start's snapshot: %#v", progress)
	}
	time.Sleep(2 * time.Second) // and the writes go on into the stream
	cancel()
	wg.Wait()
	s.settle(t, false)
	for _, r := range regressions() {
		t.Errorf("version regression: %s", r)
	}
	t.Logf("workload: %d random changes", n)

	// The proof: commits that are both in the snapshot and in the stream.
	sub := s.p.Emu.SubscriptionName("local.shop.customers")
	type read struct {
		name, file, outcome string
		pos                 int64
	}
	reads := map[string]read{}
	positions := map[string]bool{}
	streamed := map[string]map[string]delivery{} // key → name → the streamed change that wrote it
	for _, d := range s.capture(false) {
		if d.sub != sub || !d.acked || d.repeat {
			continue
		}
		var name string
		_ = json.Unmarshal(d.after["name"], &name)
		switch {
		case d.op == "r":
			reads[d.key] = read{name: name, file: d.file, pos: d.pos, outcome: d.outcome}
			positions[fmt.Sprintf("%s:%d", d.file, d.pos)] = true
		case d.op == "c" || d.op == "u":
			if streamed[d.key] == nil {
				streamed[d.key] = map[string]delivery{}
			}
			streamed[d.key][name] = d
		}
	}
	if len(reads) < snapshotRows-hotCustomers || len(positions) != 1 {
		t.Fatalf("%d snapshot reads of customers at %d positions (want ≥ %d at one)", len(reads), len(positions), snapshotRows-hotCustomers)
	}
	twice, readStale := 0, 0
	for key, r := range reads {
		d, ok := streamed[key][r.name]
		if !ok || r.name == "" || strings.HasPrefix(r.name, "seed") {
			continue
		}
		if d.file < r.file || d.file == r.file && d.pos <= r.pos {
			t.Errorf("%s: the streamed change of %s is at %s:%d, not after the snapshot's %s:%d", key, r.name, d.file, d.pos, r.file, r.pos)
		}
		twice++
		if r.outcome == "stale" {
			readStale++
		}
	}
	t.Logf("%d commits landed between the snapshot's binlog position and its read view: each arrived twice, as a snapshot read and streamed (%d reads arrived after their streamed change and were stale, the rest were overwritten by it)", twice, readStale)
	if twice == 0 {
		t.Error("no commit landed between the snapshot's position and its read: the case was not exercised")
	}
}

func (s *stack) duplicatePushes(t *testing.T) {
	before := s.p.Relay.Stats().Duplicates
	s.p.Relay.SetDuplicateRate(0.10)
	defer s.p.Relay.SetDuplicateRate(0)
	s.run(t, scenario{d: 6 * time.Second})
	if s.p.Relay.Stats().Duplicates == before {
		t.Error("no duplicate was delivered")
	}
}

// A burst of ~900 B rows that spans many housekeeping rounds (every 300 ms here): the emulator's
// record is dropped only when nothing waits in a subscription, so every row arrives. (Clearing it at
// any moment, as the pipeline used to every minute, lost the rows waiting to be pulled.)
func (s *stack) housekeepingBurst(t *testing.T) {
	before := s.p.Forgets()
	const statements, rows = 4, 500
	t0 := time.Now()
	for i := 0; i < statements; i++ {
		var vals []string
		for j := 0; j < rows; j++ {
			id := i*rows + j
			vals = append(vals, fmt.Sprintf("(%d, REPEAT('%c', 900))", id, 'a'+id%26))
		}
		sqlExec(t, s.db, "INSERT INTO bulk VALUES "+strings.Join(vals, ","))
	}
	s.settle(t, false)
	forgets := s.p.Forgets() - before
	t.Logf("%d rows in %.1f s; the emulator's record was cleared %d times meanwhile", statements*rows, time.Since(t0).Seconds(), forgets)
	if forgets == 0 {
		t.Error("housekeeping never cleared during the burst: the test checked nothing")
	}
	var n int
	if err := s.db.QueryRow("SELECT COUNT(*) FROM bulk").Scan(&n); err != nil || n != statements*rows {
		t.Fatalf("bulk holds %d rows (%v)", n, err)
	}
}

// Redis runs with an fsynced append-only file, as Memorystore's standard tier fails over with its data:
// a restart loses nothing acknowledged.
func (s *stack) redisRestarted(t *testing.T) {
	s.run(t, scenario{d: 8 * time.Second, during: func(t *testing.T) {
		s.redis.Kill()
		time.Sleep(time.Second)
		if err := s.redis.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
	}})
}

// The function is down for longer than the subscriptions' ack deadline (10 s here): the relay holds
// the messages, retries them, and renews their deadlines, so the emulator hands none out twice.
func (s *stack) functionKilled(t *testing.T) {
	before := s.p.Relay.Stats()
	s.run(t, scenario{d: 8 * time.Second, fnRestarted: true, during: func(t *testing.T) {
		s.fn.Kill()
		killed := time.Now()
		waitUntil(t, "a delivery to the killed function", 30*time.Second, func() bool {
			return s.p.Relay.Stats().Outcomes["unreachable"] > before.Outcomes["unreachable"]
		})
		time.Sleep(time.Until(killed.Add(s.p.Emu.AckDeadline() + time.Second)))
		s.relayAppliedAtFnStart = s.p.Relay.Stats().Outcomes["applied"] // nothing is applied while it is down
		if err := s.fn.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
	}})
	after := s.p.Relay.Stats()
	if after.Redelivered != before.Redelivered || after.Extends == before.Extends {
		t.Errorf("while the function was down: %d messages handed out again, %d renewal rounds", after.Redelivered-before.Redelivered, after.Extends-before.Extends)
	}
}

// SIGKILL: Debezium commits nothing on the way down and replays from the last offset it flushed
// (offset.flush.interval.ms, 5 s): those changes arrive twice, the second time stale or duplicate.
func (s *stack) debeziumKilledMidStream(t *testing.T) {
	before := s.p.Relay.Stats()
	s.run(t, scenario{d: 9 * time.Second, during: func(t *testing.T) {
		s.p.KillDebezium()
		time.Sleep(time.Second)
		if err := s.p.StartDebezium(context.Background()); err != nil {
			t.Fatal(err)
		}
	}})
	after := s.p.Relay.Stats()
	replayed := after.Outcomes["duplicate"] + after.Outcomes["stale"] - before.Outcomes["duplicate"] - before.Outcomes["stale"]
	t.Logf("%d changes arrived again after the kill", replayed)
	if replayed == 0 {
		t.Error("nothing was replayed after the kill: the fault did not happen")
	}
	if p := s.p.Debezium().Progress(); p.Snapshotted {
		t.Errorf("a snapshot after a mid-stream kill: %s", p)
	}
}

// A clean stop commits the offsets: the restart streams what changed meanwhile, without a snapshot.
func (s *stack) debeziumStopped(t *testing.T) {
	s.run(t, scenario{d: 9 * time.Second, during: func(t *testing.T) {
		if err := s.p.StopDebezium(0); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // rows change while it is down
		if err := s.p.StartDebezium(context.Background()); err != nil {
			t.Fatal(err)
		}
	}})
	if p := s.p.Debezium().Progress(); p.Snapshotted || p.Phase != "streaming" {
		t.Errorf("after a clean restart: %s", p)
	}
}

// MariaDB stops cleanly and starts again (a new binlog file) while the workload runs; Debezium loses
// its connections, and the pipeline restarts it if it exits, as the worker pool would.
func (s *stack) mariadbRestarted(t *testing.T) {
	exits, _ := s.p.DebeziumExits()
	s.run(t, scenario{d: 9 * time.Second, during: func(t *testing.T) {
		if err := s.mysql.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
	}})
	after, restarts := s.p.DebeziumExits()
	t.Logf("Debezium exited by itself %d times during the restart (restarted %d times in all): %v", len(after)-len(exits), restarts, after[len(exits):])
	for _, line := range strings.Split(s.p.Debezium().LogTail(400), "\n") {
		if strings.Contains(line, "lost connection") || strings.Contains(line, "Connected to binlog") || strings.Contains(line, "Trying to restore") {
			t.Logf("Debezium: %.200s", line)
		}
	}
}

// Each kind of DDL while the workload runs: TRUNCATE, ADD COLUMN, DROP COLUMN, RENAME TABLE and DROP
// TABLE. Debezium sends nothing for the rows these statements remove or reshape, only the truncate's
// op t and schema changes on topic.prefix; the function raises the tables' floors on them (README:
// Floors), so no cached row is left that the database does not have in that form. A swept table is
// cold: its rows are missing until they change, which verify counts, so the test rewrites the
// customers and two of shaped's rows and holds the DDL tables to "nothing different, nothing extra".
func (s *stack) schemaChanges(t *testing.T) {
	ctx := context.Background()
	for _, k := range []string{"shop.shaped:3", "shop.doomed:1", "shop.renamed_from:1"} { // cached by the first snapshot
		if e, found, err := rowcache.Get(ctx, s.rdb, k); err != nil || !found || e.Deleted() {
			t.Fatalf("%s is not cached before the DDL (%v): the scenario would check nothing", k, err)
		}
	}
	sweepsBefore, noRowsBefore := s.reasons(t, "applied")["ddl_sweep"], s.reasons(t, "ignored")["ddl_no_rows"]
	s.run(t, scenario{d: 8 * time.Second, during: func(t *testing.T) {
		sqlExec(t, s.db, "TRUNCATE TABLE order_lines")
		time.Sleep(time.Second)
		sqlExec(t, s.db,
			"ALTER TABLE customers ADD COLUMN note VARCHAR(10) NOT NULL DEFAULT 'n'",
			"ALTER TABLE shaped DROP COLUMN b",
			"RENAME TABLE renamed_from TO renamed_to",
			"INSERT INTO renamed_to VALUES (9, 9)",
			"DROP TABLE doomed")
	}, after: func(t *testing.T) {
		sqlExec(t, s.db, "UPDATE customers SET note = 'rewritten'", "UPDATE shaped SET a = a + 10 WHERE id <= 2")
	}})
	e, found, err := rowcache.Get(ctx, s.rdb, "shop.customers:100")
	if err != nil || !found || !strings.Contains(string(e.Row), `"note":"rewritten"`) {
		t.Errorf("the new column is not in the cache: %s (%v)", e.Row, err)
	}
	for table, want := range map[string]rowcache.FloorReason{"shop.order_lines": rowcache.FloorTruncate, "shop.customers": rowcache.FloorDDL,
		"shop.shaped": rowcache.FloorDDL, "shop.renamed_from": rowcache.FloorDDL, "shop.renamed_to": rowcache.FloorDDL, "shop.doomed": rowcache.FloorDDL} {
		v, err := s.rdb.Get(ctx, tablepolicy.MetaPrefix+"truncated:"+table).Result()
		if err != nil {
			t.Errorf("no floor for %s (%v)", table, err)
			continue
		}
		if _, why, err := rowcache.ParseFloor(v); err != nil || why != want {
			t.Errorf("the floor of %s is %q (%v), want one for a %s", table, v, err, want)
		}
	}
	// A statement's message retried after its floors were raised and its table's new shape recorded
	// (the replicas confirmed too late, a timeout: TestCluster waits for replicas under load) finds
	// the shape unchanged and is acknowledged as ddl_no_rows; the floors above show it swept.
	sweeps, retried := s.reasons(t, "applied")["ddl_sweep"]-sweepsBefore, s.reasons(t, "ignored")["ddl_no_rows"]-noRowsBefore
	if sweeps+retried < 4 || sweeps == 0 {
		t.Errorf("the function swept %d times on the schema changes (and acknowledged %d without rows), want one per statement (4)", sweeps, retried)
	}
	// Dropped and renamed away: nothing of theirs is left.
	for _, table := range []string{"shop.doomed", "shop.renamed_from"} {
		if keys, err := s.keys(ctx, table+":*"); err != nil || len(keys) != 0 {
			t.Errorf("%s keeps %v in the cache (%v)", table, keys, err)
		}
	}
	// Reshaped and renamed to: cold, never wrong.
	for table, missing := range map[string]int{"shop.shaped": 2, "shop.renamed_to": 3} {
		tr := s.verifyTable(t, table)
		if tr.Different != 0 || tr.Extra != 0 || tr.Missing != missing {
			t.Errorf("%s after its DDL: %d rows, %d different, %d extra, %d missing (want %d missing: the rows not written since)", table, tr.Rows, tr.Different, tr.Extra, tr.Missing, missing)
		}
	}
}

// Debezium is stopped, rows are deleted, and the binary logs holding those deletes are purged (an outage
// longer than the binlog retention). With MySQL, Debezium's when_needed start finds its GTIDs purged
// (gtid_purged) and snapshots again. Debezium 3.6.1's MariaDB connector cannot tell (it reports an
// empty purged set, MariaDbConnection.purgedGtidSet): it connects, MariaDB answers error 1236, and the
// server exits, again at every restart. The operator's repair is the re-snapshot procedure (locally:
// the offsets deleted, `make run RUN_FLAGS=-resnapshot`). Debezium is then killed while the new
// snapshot is being delivered and started again: the killed snapshot recorded no offset, so the restart
// takes it again from the start. When the snapshot completes, the function removes the rows it did
// not find (the snapshot floor): the rows deleted while the binlog was lost leave the cache.
func (s *stack) binlogsPurgedThenKilledMidSnapshot(t *testing.T) {
	ctx := context.Background()
	const firstGone = snapshotRows - 49 // not hot: cached by the first snapshot, never written since
	for id := firstGone; id <= snapshotRows; id++ {
		if e, found, err := rowcache.Get(ctx, s.rdb, fmt.Sprintf("shop.customers:%d", id)); err != nil || !found || e.Deleted() {
			t.Fatalf("shop.customers:%d is not cached before the scenario (%v)", id, err)
		}
	}
	exitsBefore, _ := s.p.DebeziumExits()
	s.run(t, scenario{d: 6 * time.Second, during: func(t *testing.T) {
		if err := s.p.StopDebezium(0); err != nil {
			t.Fatal(err)
		}
		sqlExec(t, s.db, fmt.Sprintf("DELETE FROM customers WHERE id >= %d", firstGone))
		s.purgeBinlogs(t)
		exits, _ := s.p.DebeziumExits()
		if err := s.p.StartDebezium(ctx); err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "Debezium to exit on the purged binlog", 2*time.Minute, func() bool {
			now, _ := s.p.DebeziumExits()
			return len(now) > len(exits)
		})
		if p := s.p.Debezium().Progress(); p.Snapshotted {
			t.Errorf("MariaDB's connector snapshotted after the purge: %s (the test's premise changed: check purgedGtidSet)", p)
		}
		if log := s.p.Debezium().LogTail(3000); !strings.Contains(log, "Could not find GTID state requested by slave in any binlog files") {
			t.Errorf("Debezium exited after the purge, but not on error 1236:\n%s", log)
		}
		// The repair, then the kill mid-snapshot.
		if err := s.p.StopDebezium(0); err != nil {
			t.Fatal(err)
		}
		if err := s.p.ResetState(ctx); err != nil {
			t.Fatal(err)
		}
		s.capture(true)
		if err := s.p.StartDebezium(ctx); err != nil {
			t.Fatal(err)
		}
		reads := func() int {
			s.mu.Lock()
			defer s.mu.Unlock()
			n := 0
			for _, d := range s.captured {
				if d.op == "r" {
					n++
				}
			}
			return n
		}
		waitUntil(t, "the new snapshot to publish", 2*time.Minute, func() bool { return reads() > 0 })
		p := s.p.Debezium().Progress()
		s.p.KillDebezium()
		n := reads()
		s.capture(false)
		t.Logf("killed with %d snapshot reads delivered; Debezium's log said: %s", n, p)
		if n >= snapshotRows {
			t.Fatalf("the kill came after the snapshot was delivered (%d reads): make the tables larger", n)
		}
		if err := s.p.StartDebezium(ctx); err != nil {
			t.Fatal(err)
		}
		s.waitStreaming(t)
		if p := s.p.Debezium().Progress(); !p.Snapshotted || p.SnapshotRows < snapshotRows-50 {
			t.Errorf("the start after the kill did not snapshot everything again: %#v", p)
		}
	}})
	// The crash loop ended with the stop before the repair: one exit, perhaps a second from a restart
	// that had begun. (A supervisor left over from the crash would go on failing to restart the
	// repaired server, an exit recorded every second.)
	if exits, _ := s.p.DebeziumExits(); len(exits)-len(exitsBefore) > 3 {
		t.Errorf("%d exits of Debezium recorded during the scenario, want at most 3: %v", len(exits)-len(exitsBefore), exits[len(exitsBefore):])
	}
	for id := firstGone; id <= snapshotRows; id++ {
		if e, found, err := rowcache.Get(ctx, s.rdb, fmt.Sprintf("shop.customers:%d", id)); err != nil || found {
			t.Errorf("shop.customers:%d, deleted while the binlog was lost, is still cached: %s (%v)", id, e.Row, err)
			break
		}
	}
	if n := s.reasons(t, "applied")["snapshot_sweep"]; n == 0 {
		t.Error("no snapshot completed a table (no snapshot_sweep)")
	}
	// The tables the schema-change scenario left cold are whole again: the snapshot read every row.
	for _, table := range []string{"shop.shaped", "shop.renamed_to"} {
		if tr := s.verifyTable(t, table); tr.Drift() != 0 {
			t.Errorf("%s after the re-snapshot: %d rows, %d different, %d extra, %d missing", table, tr.Rows, tr.Different, tr.Extra, tr.Missing)
		}
	}
}
