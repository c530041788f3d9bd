package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// The function's environments in this suite. The loss watcher checks every 200 ms throughout; it
// repairs (seeks the push subscriptions) only where repairEnv adds the subscriptions, so that the
// failover scenarios hold what the replica wait alone keeps.
var (
	waitEnv   = []string{"REDIS_WAIT_REPLICAS=1", "REDIS_WAIT_TIMEOUT=200ms", "REDIS_WATCH_INTERVAL=200ms", "REPAIR_SUBSCRIPTIONS="}
	noWaitEnv = []string{"REDIS_WAIT_REPLICAS=0", "REDIS_WATCH_INTERVAL=200ms", "REPAIR_SUBSCRIPTIONS="}
)

// quietCustomers exist before the snapshot and are never written by the workload: after a total loss
// only the repair brings them back.
const quietCustomers = 400

// TestRedisFailoverAndLosses runs the whole pipeline (the real Debezium Server) on a Redis primary with
// an asynchronous replica behind a stable endpoint (a TCP proxy, as Memorystore's IP), through what an
// acknowledgement must survive (README: What an acknowledgement survives), in order on one stack:
//
//   - FailoverWithReplicaWait: REDIS_WAIT_REPLICAS=1; the replica stops receiving, the primary is
//     SIGKILLed under load, the replica promoted and the endpoint moved to it; no acknowledged change
//     is missing and verify finds no drift, without any repair;
//   - AOFEverysecKilledUnderLoad: the promoted node (append-only file, appendfsync everysec) is
//     SIGKILLed under load and its file cut back to before its last acknowledged writes, as a crash of
//     the machine loses what was not fsynced; the loss watcher's repair brings every change back;
//   - FailoverWithoutReplicaWait: the control. REDIS_WAIT_REPLICAS=0 and the same failover: the ledger's
//     check finds acknowledged changes missing (so it can fail), the watcher reports the failover, and
//     a seek by hand repairs it;
//   - RestartWithoutPersistence: the primary, without persistence, is restarted empty under load; the
//     watcher reports a total loss (metric and log) and its repair brings the cache back to zero drift.
//
// After every scenario the ledger holds the cache to every change the relay saw acknowledged since the
// start: the cached version of each key is at least the newest acknowledged one.
func TestRedisFailoverAndLosses(t *testing.T) {
	start := time.Now()
	h := &haRedis{top: t}
	s := newStack(t, stackOptions{redis: h.start, fnEnv: waitEnv})
	l := &ledger{newest: map[string]rowcache.Version{}}
	s.capture(true)
	runSteps(t, []step{
		{"Snapshot", func(t *testing.T) { s.snapshotQuiet(t) }},
		{"FailoverWithReplicaWait", func(t *testing.T) { s.failoverWithWait(t, h) }},
		{"AOFEverysecKilledUnderLoad", func(t *testing.T) { s.aofKilled(t, h) }},
		{"FailoverWithoutReplicaWait", func(t *testing.T) { s.failoverWithoutWait(t, h, l) }},
		{"RestartWithoutPersistence", func(t *testing.T) { s.restartWithoutPersistence(t, h) }},
	}, func(t *testing.T, name string) bool {
		if name == "FailoverWithoutReplicaWait" { // the control checks its own ledger
			return true
		}
		return t.Run("NoAcknowledgedChangeMissingAfter"+name, func(t *testing.T) {
			l.add(t, s.capture(true))
			if missing := l.missing(t, s); len(missing) > 0 {
				t.Errorf("%d keys lack their newest acknowledged change, e.g. %s", len(missing), strings.Join(missing[:min(5, len(missing))], "; "))
			}
		})
	})
	t.Logf("all scenarios: %.1f s; %d keys in the ledger of acknowledged changes", time.Since(start).Seconds(), len(l.newest))
}

// haRedis is the Redis of the suite: a primary, perhaps a replica linked to it through a proxy (so
// the test can hold what the primary sends it), and the endpoint through which the function and the
// test reach the primary.
type haRedis struct {
	top      *testing.T // the servers live as long as the suite
	primary  *redisserver.Server
	replica  *redisserver.Server
	link     *redisserver.Proxy
	endpoint *redisserver.Proxy
	// primaryDir and replicaDir are the servers' directories (their append-only files).
	primaryDir, replicaDir string
}

// start is the stack's Redis: a primary without persistence, and a replica with an append-only file
// fsynced every second (it is the primary after the first failover).
func (h *haRedis) start(t *testing.T) ([]string, redis.UniversalClient) {
	var err error
	h.primaryDir = t.TempDir()
	if h.primary, err = redisserver.Start(context.Background(), redisserver.Options{Dir: h.primaryDir}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.primary.Kill)
	if h.endpoint, err = redisserver.StartProxy(h.primary.Addr()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.endpoint.Close)
	h.addReplica(t, redisserver.Options{Persistent: true, AppendFsync: "everysec"})
	return []string{"REDIS_ADDR=" + h.endpoint.Addr()}, redis.NewClient(&redis.Options{Addr: h.endpoint.Addr()})
}

// addReplica starts a replica of the primary, linked through a proxy, and waits until it has synced.
func (h *haRedis) addReplica(t *testing.T, o redisserver.Options) {
	t.Helper()
	link, err := redisserver.StartProxy(h.primary.Addr())
	if err != nil {
		t.Fatal(err)
	}
	h.top.Cleanup(link.Close)
	o.Dir, o.ReplicaOf = h.top.TempDir(), link.Addr()
	r, err := redisserver.Start(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	h.top.Cleanup(r.Kill)
	c := redis.NewClient(r.ClientOptions())
	defer c.Close()
	waitUntil(t, "the replica to sync", time.Minute, func() bool {
		info, err := c.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up") && strings.Contains(info, "master_sync_in_progress:0")
	})
	h.replica, h.link, h.replicaDir = r, link, o.Dir
}

// failover is Memorystore's failover of a crashed primary: the primary is SIGKILLed, what it had sent
// the replica and the link still held is lost, the replica is promoted (REPLICAOF NO ONE) and the
// endpoint moves to it, cutting every client connection.
func (h *haRedis) failover(t *testing.T) {
	t.Helper()
	h.primary.Kill()
	h.link.Cut()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := h.replica.Promote(ctx); err != nil {
		t.Fatal(err)
	}
	h.endpoint.SetTarget(h.replica.Addr())
	h.primary, h.replica, h.link = h.replica, nil, nil
	h.primaryDir, h.replicaDir = h.replicaDir, ""
}

// restartFunction stops the function (SIGTERM, as Cloud Run does) and starts it again with env added
// to (and overriding) the stack's. Its counters start from zero, so it is done with the pipeline quiet.
func (s *stack) restartFunction(t *testing.T, env ...string) {
	t.Helper()
	s.fn.Stop()
	s.relayAppliedAtFnStart = s.p.Relay.Stats().Outcomes["applied"]
	fn, err := functionproc.Start(context.Background(), functionBin, s.fnPort, append(append([]string(nil), s.fnEnv...), env...), s.fnLog)
	if err != nil {
		t.Fatal(err)
	}
	s.fn = fn // killed at the stack's end, not the scenario's
}

// repairEnv has the function seek every push subscription back past a loss (REPAIR_SUBSCRIPTIONS), as
// the Terraform module configures it. The margin covers the longest a change waits in Pub/Sub here.
func (s *stack) repairEnv(t *testing.T) []string {
	t.Helper()
	return []string{"REPAIR_SUBSCRIPTIONS=" + strings.Join(s.subscriptions(t), ","), "REPAIR_SEEK_MARGIN=10s"}
}

func (s *stack) subscriptions(t *testing.T) []string {
	t.Helper()
	topics, err := s.p.Topics()
	if err != nil {
		t.Fatal(err)
	}
	var subs []string
	for _, topic := range topics {
		subs = append(subs, s.p.Emu.SubscriptionName(topic))
	}
	return subs
}

// snapshotQuiet fills the tables, takes Debezium's first snapshot and waits for the cache to hold it.
func (s *stack) snapshotQuiet(t *testing.T) {
	var vals []string
	for id := 1; id <= quietCustomers; id++ {
		vals = append(vals, fmt.Sprintf("(%d, 'seed%d', 'c%d@example.org', 'free')", id, id, id))
	}
	sqlExec(t, s.db, "INSERT INTO customers (id, name, email, tier) VALUES "+strings.Join(vals, ","))
	if err := s.p.StartDebezium(context.Background()); err != nil {
		t.Fatal(err)
	}
	s.waitStreaming(t)
	s.settle(t, false)
}

// The replica stops receiving (the link holds what the primary sends) while the workload runs: the
// changes the function applies meanwhile are not confirmed by the replica and are answered 503
// (replica_wait), never acknowledged. The primary is then SIGKILLed, the replica promoted, the endpoint
// moved, and a new replica joins; the function reconnects and Pub/Sub's redeliveries write the
// changes again. The watcher reports the failover; it repairs nothing here (no REPAIR_SUBSCRIPTIONS),
// so the suite's ledger check after it holds the wait alone to every acknowledged change.
func (s *stack) failoverWithWait(t *testing.T, h *haRedis) {
	s.run(t, scenario{d: 9 * time.Second, lossy: true, during: func(t *testing.T) {
		before := s.reasons(t, "retry")["replica_wait"]
		h.link.Hold()
		waitUntil(t, "a change applied on the primary that the held replica could not confirm (503, replica_wait)", time.Minute, func() bool {
			return s.reasons(t, "retry")["replica_wait"] > before
		})
		h.failover(t)
		h.addReplica(t, redisserver.Options{}) // a new node, without persistence
	}})
	if n := s.counter(t, "cloudsql_cache_redis_restarts_total", `kind="failover"`); n != 1 {
		t.Errorf("the watcher counted %d failovers, want 1", n)
	}
	t.Logf("503 replica_wait answers: %d", s.reasons(t, "retry")["replica_wait"])
}

// aofTail is the append-only file Redis in dir appends to (the last incremental file of its manifest)
// and that file's size.
func aofTail(t *testing.T, dir string) (string, int64) {
	t.Helper()
	aofDir := filepath.Join(dir, "appendonlydir")
	manifest, err := os.ReadFile(filepath.Join(aofDir, "appendonly.aof.manifest"))
	if err != nil {
		t.Fatal(err)
	}
	var name string
	for _, line := range strings.Split(string(manifest), "\n") {
		if f := strings.Fields(line); len(f) == 6 && f[0] == "file" && f[4] == "type" && f[5] == "i" {
			name = f[1]
		}
	}
	if name == "" {
		t.Fatalf("no incremental file in the manifest:\n%s", manifest)
	}
	fi, err := os.Stat(filepath.Join(aofDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return fi.Name(), fi.Size()
}

// The primary (the node promoted by the first failover: an append-only file, appendfsync everysec) is
// SIGKILLed under load and started again from its file. A kill of the process alone loses nothing the
// kernel was given, so the test also cuts the file back to the size it had before a sentinel row was
// written and acknowledged: what a crash of the machine does to the writes of the last second, which
// were not fsynced. The sentinel, a row nothing writes again, comes back only through the repair: the
// watcher sees the restart (and the heartbeat gone back) and seeks every push subscription back past
// the last heartbeat that survived. The function waits for the replica (REDIS_WAIT_REPLICAS=1), which
// does not help here: the replica resynchronizes from the restarted primary.
func (s *stack) aofKilled(t *testing.T, h *haRedis) {
	s.restartFunction(t, append(append([]string(nil), waitEnv...), s.repairEnv(t)...)...)
	dir := h.primaryDir
	s.marker++
	sentinel := s.marker
	s.run(t, scenario{d: 9 * time.Second, lossy: true, during: func(t *testing.T) {
		file, size := aofTail(t, dir)
		sqlExec(t, s.db, fmt.Sprintf("REPLACE INTO markers VALUES (2, %d)", sentinel))
		want := fmt.Sprintf(`"n":%d}`, sentinel)
		waitUntil(t, "the sentinel row to be cached", time.Minute, func() bool {
			e, found, err := rowcache.Get(context.Background(), s.rdb, "shop.markers:2")
			return err == nil && found && strings.HasSuffix(string(e.Row), want)
		})
		repairs := s.counter(t, "cloudsql_cache_repairs_total", `state="finished"`)
		h.primary.Kill()
		if now, _ := aofTail(t, dir); now != file {
			t.Fatalf("Redis moved to another append-only file (%s, then %s): the cut would miss the last writes", file, now)
		}
		path := filepath.Join(dir, "appendonlydir", file)
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, size); err != nil {
			t.Fatal(err)
		}
		t.Logf("append-only file cut from %d to %d bytes", fi.Size(), size)
		if err := h.primary.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
		s.waitWatcher(t, "the watcher to notice the restart and repair", func() bool {
			return s.counter(t, "cloudsql_cache_repairs_total", `state="finished"`) > repairs
		})
	}})
	e, found, err := rowcache.Get(context.Background(), s.rdb, "shop.markers:2")
	if err != nil || !found || !strings.HasSuffix(string(e.Row), fmt.Sprintf(`"n":%d}`, sentinel)) {
		t.Errorf("the sentinel, lost with the file's tail, was not repaired: %s found=%v (%v)", e.Row, found, err)
	}
	restarts := s.counter(t, "cloudsql_cache_redis_restarts_total", `kind="restart"`)
	partial := s.counter(t, "cloudsql_cache_redis_losses_total", `extent="partial"`)
	t.Logf("the watcher counted %d restarts and %d partial losses", restarts, partial)
	if restarts != 1 {
		t.Errorf("the watcher counted %d restarts, want 1", restarts)
	}
}

// The control: the function acknowledges without waiting for the replica (REDIS_WAIT_REPLICAS=0) and
// the same failover happens, with the rows quiet before the kill so that no later change can hide a
// loss. The ledger's check finds the changes acknowledged while the replica received nothing missing
// on the promoted replica, which is what it would find after the first failover if the wait did
// nothing. The watcher reports the failover; with no REPAIR_SUBSCRIPTIONS it does not repair, so the
// repair is a seek by hand to before the link was held (what the watcher does), and the scenario ends
// at zero drift for the next.
func (s *stack) failoverWithoutWait(t *testing.T, h *haRedis, l *ledger) {
	s.restartFunction(t, noWaitEnv...)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() { s.workload(ctx, uint64(time.Now().UnixNano())); close(done) }()
	applied := func() int64 { return s.p.Relay.Stats().Outcomes["applied"] }
	n := applied()
	waitUntil(t, "changes applied", time.Minute, func() bool { return applied() > n+100 })
	held := time.Now()
	h.link.Hold()
	n = applied()
	waitUntil(t, "changes acknowledged while the replica receives nothing", time.Minute, func() bool { return applied() > n+100 })
	cancel()
	<-done
	dctx, dcancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer dcancel()
	s.drain(dctx, t) // every change acknowledged, by the primary alone
	h.failover(t)

	l.add(t, s.capture(true))
	missing := l.missing(t, s)
	t.Logf("after the failover without the wait, %d keys lack their newest acknowledged change, e.g. %s", len(missing), strings.Join(missing[:min(3, len(missing))], "; "))
	if len(missing) == 0 {
		t.Error("no acknowledged change was lost in a failover with the replica held and REDIS_WAIT_REPLICAS=0: the check cannot tell")
	}
	var drift int
	for _, table := range []string{"shop.customers", "shop.products", "shop.order_lines", "shop.types"} {
		drift += s.verifyTable(t, table).Drift()
	}
	t.Logf("verify finds %d rows different, missing or extra", drift)
	s.waitWatcher(t, "the watcher to count the failover", func() bool {
		return s.counter(t, "cloudsql_cache_redis_restarts_total", `kind="failover"`) == 1
	})
	for _, sub := range s.subscriptions(t) {
		if _, err := s.p.Emu.Client().SubscriptionAdminClient.Seek(context.Background(), &pb.SeekRequest{Subscription: sub,
			Target: &pb.SeekRequest_Time{Time: timestamppb.New(held.Add(-10 * time.Second))}}); err != nil {
			t.Fatalf("seek %s: %v", sub, err)
		}
	}
	s.settle(t, false)
	if missing := l.missing(t, s); len(missing) > 0 {
		t.Errorf("after the seek, %d keys still lack their newest acknowledged change, e.g. %s", len(missing), missing[0])
	}
}

// The primary has no persistence and no replica (Memorystore's basic tier) and is restarted empty
// under load: every row, tombstone and floor is gone. The watcher finds its marker gone, counts a
// total loss and logs it, and seeks every push subscription back to before the cache's data set began,
// so the rows no change touches since the snapshot come back too.
func (s *stack) restartWithoutPersistence(t *testing.T, h *haRedis) {
	s.restartFunction(t, append(append([]string(nil), noWaitEnv...), s.repairEnv(t)...)...)
	s.run(t, scenario{d: 8 * time.Second, lossy: true, during: func(t *testing.T) {
		if err := h.primary.Restart(context.Background()); err != nil { // SIGKILL, then an empty start
			t.Fatal(err)
		}
		s.waitWatcher(t, "the watcher to notice the loss and repair it", func() bool {
			return s.counter(t, "cloudsql_cache_repairs_total", `reason="total_loss"`, `state="finished"`) > 0
		})
	}})
	if n := s.counter(t, "cloudsql_cache_redis_losses_total", `extent="total"`); n != 1 {
		t.Errorf("the watcher counted %d total losses, want 1", n)
	}
	logged, err := os.ReadFile(s.fnLogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(logged), "Redis lost its data") {
		t.Error("the function did not log the loss")
	}
	if e, found, err := rowcache.Get(context.Background(), s.rdb, fmt.Sprintf("shop.customers:%d", quietCustomers)); err != nil || !found || e.Deleted() {
		t.Errorf("shop.customers:%d, not written since the snapshot, is not back: found=%v (%v)", quietCustomers, found, err)
	}
}

// waitWatcher waits for cond, a finding of the loss watcher's; when it does not come, the failure shows
// what the watcher logged.
func (s *stack) waitWatcher(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(s.fnLogPath)
			var lines []string
			for _, line := range strings.Split(string(b), "\n") {
				if strings.Contains(line, "Redis") && !strings.Contains(line, "change event not applied") || strings.Contains(line, "repair") {
					lines = append(lines, line)
				}
			}
			t.Fatalf("waited a minute for %s in vain; the watcher logged:\n%s", what, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ledger is every change the relay saw acknowledged: the newest version of each cache key.
type ledger struct {
	newest map[string]rowcache.Version
}

// add records the acknowledged row changes among ds.
func (l *ledger) add(t *testing.T, ds []delivery) {
	t.Helper()
	policy, err := tablepolicy.New(tablepolicy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if !d.acked {
			continue
		}
		ev, err := debezium.Decode(d.data)
		if err != nil {
			t.Errorf("an acknowledged message does not decode: %v", err)
			continue
		}
		if ev.Kind != debezium.Change {
			continue
		}
		ch, ok, err := policy.Resolve(ev, d.key)
		if err != nil || !ok || ch.Kind == tablepolicy.Truncate {
			continue // dead-lettered (settle fails on it), not cached, or a floor
		}
		if v, had := l.newest[ch.Key]; !had || ch.Version.Compare(v) > 0 {
			l.newest[ch.Key] = ch.Version
		}
	}
}

// missing lists the keys whose cached version (a row or a tombstone) is older than their newest
// acknowledged change, or that are gone without a floor of their table having swept them.
func (l *ledger) missing(t *testing.T, s *stack) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for key, v := range l.newest {
		e, found, err := rowcache.Get(ctx, s.rdb, key)
		if err != nil {
			t.Fatal(err)
		}
		if (!found || e.Version.Compare(v) < 0) && !s.flooredSince(ctx, key, v) {
			out = append(out, fmt.Sprintf("%s holds %v (found %v), acknowledged %v", key, e.Version, found, v))
		}
	}
	return out
}
