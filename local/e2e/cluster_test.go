package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
)

// TestCluster runs the pipeline on a local Redis Cluster of 3 primaries, each with a replica, the
// function in REDIS_MODE=cluster waiting for one replica of the written shard before it acknowledges
// (REDIS_WAIT_REPLICAS=1). The scenarios run in order on one stack, each ending with the drift checker
// at zero: the random workload; a truncate and every kind of DDL; a graceful failover of one primary
// and slot migrations under load; a crashed primary under load, after which no acknowledged change is
// missing.
func TestCluster(t *testing.T) {
	start := time.Now()
	var c *redisserver.TestCluster
	s := newStack(t, stackOptions{
		redis: func(t *testing.T) ([]string, redis.UniversalClient) {
			c = redisserver.StartClusterForTest(t, redisserver.ClusterOptions{Primaries: 3, Replicas: 1})
			return []string{"REDIS_MODE=cluster", "REDIS_ADDR=" + c.Seeds()}, c.Client()
		},
		// The wait is shorter than REDIS_TIMEOUT (300ms), as the function requires.
		fnEnv: []string{"REDIS_WAIT_REPLICAS=1", "REDIS_WAIT_TIMEOUT=200ms"},
	})
	cs := &clusterStack{stack: s, c: c}
	runSteps(t, []step{
		{"Snapshot", cs.snapshot},
		{"RandomWorkload", func(t *testing.T) { s.run(t, scenario{d: 8 * time.Second}) }},
		{"SchemaChanges", s.schemaChanges},
		{"FailoverUnderLoad", cs.failover},
		{"SlotMigrationUnderLoad", cs.migration},
		{"PrimaryCrashUnderLoad", cs.crash},
	}, nil)
	t.Logf("all scenarios: %.1f s; function retries by reason %v", time.Since(start).Seconds(), s.reasons(t, "retry"))
}

// clusterStack is the stack with the cluster under it.
type clusterStack struct {
	*stack
	c *redisserver.TestCluster
}

// clusterCustomers are the customers in the database before Debezium's first start: the schema-change
// scenario rewrites them and checks one that is not hot (shop.customers:100).
const clusterCustomers = 200

// snapshot seeds the customers and starts Debezium: its snapshot goes through the function into every
// shard.
func (cs *clusterStack) snapshot(t *testing.T) {
	var vals []string
	for id := 1; id <= clusterCustomers; id++ {
		vals = append(vals, fmt.Sprintf("(%d, 'seed%d', 'c%d@example.org', 'free')", id, id, id))
	}
	sqlExec(t, cs.db, "INSERT INTO customers (id, name, email, tier) VALUES "+strings.Join(vals, ","))
	if err := cs.p.StartDebezium(context.Background()); err != nil {
		t.Fatal(err)
	}
	cs.waitStreaming(t)
	cs.settle(t, false)
	// The rows are spread over every shard: the cluster was exercised, not one node of it.
	for _, p := range cs.c.Primaries() {
		n, err := cs.c.NodeClient(p.Addr).Eval(context.Background(), `return #redis.call('keys', 'shop.customers:*')`, nil).Int()
		if err != nil || n == 0 {
			t.Errorf("primary %s holds %d customers (%v)", p.Addr, n, err)
		}
	}
}

// ownerOf returns the primary serving key's slot.
func (cs *clusterStack) ownerOf(t *testing.T, key string) redisserver.Node {
	t.Helper()
	slot := cs.c.KeySlot(key)
	for _, p := range cs.c.Primaries() {
		if p.Owns(slot) {
			return p
		}
	}
	t.Fatalf("no primary serves the slot %d of %s", slot, key)
	return redisserver.Node{}
}

// failover hands the primary of a hot key over to its replica the graceful way (CLUSTER FAILOVER, as
// Memorystore's maintenance does) while the workload runs: the old primary refuses writes while its
// replica catches up, the function retries them (503) and the slots' new owner takes them.
func (cs *clusterStack) failover(t *testing.T) {
	old := cs.ownerOf(t, "shop.customers:1")
	var promoted redisserver.Node
	cs.run(t, scenario{d: 8 * time.Second, during: func(t *testing.T) {
		promoted = cs.c.Failover(old.Addr)
	}})
	if now := cs.ownerOf(t, "shop.customers:1"); now.ID != promoted.ID || now.ID == old.ID {
		t.Errorf("shop.customers:1 is served by %s, want the promoted %s", now.Addr, promoted.Addr)
	}
	t.Logf("failover: %s handed its slots to %s", old.Addr, promoted.Addr)
}

// migration moves slots while the workload runs: the slots of two hot keys one at a time by the
// MIGRATE/SETSLOT sequence, with the workload going on while their keys are split between the two
// primaries (ASK, TRYAGAIN), then a resharding of 200 slots by redis-cli --cluster reshard.
func (cs *clusterStack) migration(t *testing.T) {
	ctx := context.Background()
	hot := []string{"shop.products:s01", "shop.types:1"}
	cs.run(t, scenario{d: 10 * time.Second, during: func(t *testing.T) {
		for _, key := range hot {
			from := cs.ownerOf(t, key)
			var to redisserver.Node
			for _, p := range cs.c.Primaries() {
				if p.ID != from.ID {
					to = p
					break
				}
			}
			m, err := cs.c.StartMigration(ctx, cs.c.KeySlot(key), to.Addr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := m.MoveKeys(ctx, 3); err != nil {
				t.Fatal(err)
			}
			time.Sleep(time.Second) // load, not a wait: the slot is split between the two meanwhile
			if err := m.Finish(ctx); err != nil {
				t.Fatal(err)
			}
			if now := cs.ownerOf(t, key); now.ID != to.ID {
				t.Fatalf("%s's slot is served by %s after its migration to %s", key, now.Addr, to.Addr)
			}
		}
		ps := cs.c.Primaries()
		cs.c.Reshard(ps[0].ID, ps[1].ID, 200)
	}})
}

// bulkIDs numbers the rows the crash scenario inserts, each once.
var bulkIDs atomic.Int64

// crash kills the primary of a hot key (SIGKILL, a crashed machine) while the workload runs and a
// writer inserts rows that are never written again, so that a change lost by the crash could not be
// hidden by a later change of its row. Its replica is promoted; the shard then has no replica, so the
// function acknowledges none of its writes (503, retried) until the killed node is back as the new
// primary's replica. Every change was acknowledged only once a replica held it, so none is missing
// afterwards: the drift checker, which checks the inserted rows too, finds no difference.
func (cs *clusterStack) crash(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	bulkIDs.Store(100_000)
	inserted := make(chan int64)
	go func() { inserted <- insertUntil(ctx, cs.db) }()
	killed := cs.ownerOf(t, "shop.customers:1")
	waitsBefore := cs.reasons(t, "retry")["replica_wait"]
	cs.run(t, scenario{d: 8 * time.Second, during: func(t *testing.T) {
		promoted := cs.c.KillPrimary(killed.Addr)
		t.Logf("killed %s, promoted %s", killed.Addr, promoted.Addr)
		cs.c.RestartNode(killed.Addr)
	}, after: func(t *testing.T) {
		cancel()
		t.Logf("%d rows inserted across the crash", <-inserted-100_000)
	}})
	tr := cs.verifyTable(t, "shop.bulk")
	if tr.Rows == 0 || tr.Drift() != 0 {
		t.Errorf("shop.bulk after the crash: %d rows, %d missing, %d different, %d extra", tr.Rows, tr.Missing, tr.Different, tr.Extra)
	}
	// The promoted primary had no replica until the killed node was back: its shard's changes waited.
	if n := cs.reasons(t, "retry")["replica_wait"] - waitsBefore; n == 0 {
		t.Error("no change was refused for want of a replica while the crashed shard had none: the function did not wait for replicas")
	}
	for _, n := range cs.c.Primaries() {
		if n.Addr == killed.Addr {
			t.Errorf("the killed node %s came back as a primary", n.Addr)
		}
	}
}

// insertUntil inserts rows of shop.bulk, one a statement, until ctx ends, and returns the last id.
func insertUntil(ctx context.Context, db *sql.DB) int64 {
	for ctx.Err() == nil {
		// A failed insert's id is not reused: it may have committed all the same.
		_, _ = db.ExecContext(ctx, fmt.Sprintf("INSERT INTO bulk VALUES (%d, 'crash')", bulkIDs.Add(1)))
		time.Sleep(3 * time.Millisecond)
	}
	return bulkIDs.Load()
}
