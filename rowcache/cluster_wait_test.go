package rowcache_test

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// shard is the primary serving a key's slot and its replica, with a read-only client of the replica.
type shard struct {
	primary, replica redisserver.Node
	replicaClient    *redis.Client
}

func shardOf(t *testing.T, rc *redisserver.TestCluster, key string) shard {
	t.Helper()
	nodes, err := rc.Nodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var sh shard
	slot := rc.KeySlot(key)
	for _, n := range nodes {
		if n.Primary && n.Owns(slot) {
			sh.primary = n
		}
	}
	for _, n := range nodes {
		if !n.Primary && n.PrimaryID == sh.primary.ID {
			sh.replica = n
		}
	}
	if sh.primary.ID == "" || sh.replica.ID == "" {
		t.Fatalf("no primary with a replica serves %s's slot %d: %+v", key, slot, nodes)
	}
	opts := rc.NodeOptions(sh.replica.Addr)
	opts.OnConnect = func(ctx context.Context, cn *redis.Conn) error {
		return cn.ReadOnly(ctx).Err() // READONLY: a replica answers reads of its primary's slots
	}
	sh.replicaClient = redis.NewClient(opts)
	t.Cleanup(func() { _ = sh.replicaClient.Close() })
	return sh
}

// hold pauses the replica's processing of its replication stream (CLIENT PAUSE WRITE on a replica
// holds back the writes its primary sends, and with them its acknowledged offset); the returned
// function releases it.
func (sh shard) hold(t *testing.T) (release func()) {
	t.Helper()
	ctx := context.Background()
	if err := sh.replicaClient.Do(ctx, "CLIENT", "PAUSE", 60_000, "WRITE").Err(); err != nil {
		t.Fatal(err)
	}
	released := false
	release = func() {
		if !released {
			released = true
			if err := sh.replicaClient.Do(ctx, "CLIENT", "UNPAUSE").Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(release)
	return release
}

// acknowledged retries f as Pub/Sub would while the replicas have not confirmed (a loaded machine may
// confirm later than the wait) and returns its last answer.
func acknowledged(t *testing.T, f func() (rowcache.Result, error)) (rowcache.Result, error) {
	t.Helper()
	var r rowcache.Result
	var err error
	waitFor(t, "the write to be acknowledged", func() bool {
		r, err = f()
		return !errors.Is(err, rowcache.ErrNotReplicated)
	})
	return r, err
}

// On a cluster a Store that waits for a replica waits for one of the primary that took the write, on
// the connection the write went over: with that shard's replica held back, a write is not acknowledged,
// nor is a retry that finds it already stored, nor Replicated (on fresh connections); a write to another shard is, whose replica is not held. Once the replica holds the write
// it is acknowledged, and a crash of the primary right after keeps it. (Before, a Store on a cluster
// did not wait: every write here was acknowledged.)
func TestClusterReplicaWait(t *testing.T) {
	ctx := context.Background()
	rc := redisserver.StartClusterForTest(t, redisserver.ClusterOptions{Primaries: 3, Replicas: 1})
	store := rowcache.NewStore(rc.Client(), 0).WithReplicaWait(1, waitTimeout)
	if store.ReplicaWait() != 1 {
		t.Fatalf("ReplicaWait() = %d on a cluster, want 1", store.ReplicaWait())
	}
	const key, floor = "shop.t:1", "cloudsql-cache:truncated:shop.t"
	sh := shardOf(t, rc, key)
	var other string // a key of another shard
	for _, k := range []string{"shop.t:2", "shop.t:3", "shop.t:4", "shop.t:5", "shop.t:6", "shop.t:7", "shop.t:8"} {
		if !sh.primary.Owns(rc.KeySlot(k)) {
			other = k
			break
		}
	}
	v1, v2, v3 := v(1, 100, 0), v(1, 200, 0), v(1, 300, 0)
	upsert := func(s *rowcache.Store, k string, ver rowcache.Version) func() (rowcache.Result, error) {
		return func() (rowcache.Result, error) { return s.Upsert(ctx, k, floor, ver, []byte(`{"id":1}`)) }
	}
	if r, err := acknowledged(t, upsert(store, key, v1)); err != nil || (r != rowcache.Applied && r != rowcache.Duplicate) {
		t.Fatalf("v1: %v %v", r, err)
	}
	if got := stored(t, sh.replicaClient, key); got != v1 {
		t.Fatalf("v1 was acknowledged, its shard's replica holds %v", got)
	}

	release := sh.hold(t)
	if r, err := store.Upsert(ctx, key, floor, v2, []byte(`{"id":1}`)); !errors.Is(err, rowcache.ErrNotReplicated) {
		t.Fatalf("v2 with its shard's replica held back: %v %v, want ErrNotReplicated (not acknowledged)", r, err)
	}
	retry := rowcache.NewStore(rc.Client(), 0).WithReplicaWait(1, waitTimeout)
	if r, err := retry.Upsert(ctx, key, floor, v2, []byte(`{"id":1}`)); !errors.Is(err, rowcache.ErrNotReplicated) {
		t.Fatalf("the retry of v2, a duplicate, while the replica lacks it: %v %v, want ErrNotReplicated", r, err)
	}
	// Replicated on fresh connections, which wrote nothing: it waits for everything the primary wrote
	// before. (WAIT is documented to wait for the connection's own writes, hence the barrier, a write
	// in one of the primary's slots; the local redis-server 7.0 also holds back a fresh connection's
	// WAIT without it, so this does not tell the barrier's need.)
	fresh := rowcache.NewStore(rc.Client(), 0).WithReplicaWait(1, waitTimeout)
	if err := fresh.Replicated(ctx); !errors.Is(err, rowcache.ErrNotReplicated) {
		t.Fatalf("Replicated while a shard's replica lacks a write: %v, want ErrNotReplicated", err)
	}
	if r, err := acknowledged(t, upsert(retry, other, v1)); err != nil || r != rowcache.Applied {
		t.Fatalf("a write to another shard while %s's replica is held: %v %v, want it acknowledged", key, r, err)
	}
	release()
	if r, err := acknowledged(t, upsert(retry, key, v2)); err != nil || r != rowcache.Duplicate {
		t.Fatalf("the retry of v2 once the replica is back: %v %v, want a duplicate", r, err)
	}
	if got := stored(t, sh.replicaClient, key); got != v2 {
		t.Fatalf("v2 was acknowledged, the replica holds %v", got)
	}
	if err := retry.Replicated(ctx); err != nil {
		t.Fatalf("Replicated with every replica up: %v", err)
	}

	// Acknowledged, then the primary crashes at once: its replica, promoted, has the write.
	if r, err := acknowledged(t, upsert(store, key, v3)); err != nil || (r != rowcache.Applied && r != rowcache.Duplicate) {
		t.Fatalf("v3: %v %v", r, err)
	}
	promoted := rc.KillPrimary(sh.primary.Addr)
	var err error
	newPrimary := rc.NodeClient(promoted.Addr)
	if got := stored(t, newPrimary, key); got != v3 {
		t.Fatalf("after the crash the promoted replica holds %v, want the acknowledged v3", got)
	}
	// The shard has no replica now: nothing of it is acknowledged until the killed node is back as one.
	// (The first attempts may meet the dead node or a stale slot map: errors retried, never an
	// acknowledgement.)
	v4 := v(1, 400, 0)
	waitFor(t, "the shard without a replica to refuse for want of one", func() bool {
		r, err := store.Upsert(ctx, key, floor, v4, []byte(`{"id":1}`))
		if err == nil {
			t.Fatalf("a write to a shard without a replica was acknowledged: %v", r)
		}
		return errors.Is(err, rowcache.ErrNotReplicated)
	})
	rc.RestartNode(sh.primary.Addr)
	var r rowcache.Result
	waitFor(t, "a write to be acknowledged once the killed node is back as a replica", func() bool {
		r, err = store.Upsert(ctx, key, floor, v4, []byte(`{"id":1}`))
		return err == nil
	})
	if r != rowcache.Applied && r != rowcache.Duplicate {
		t.Fatalf("v4: %v", r)
	}
	if got := stored(t, shardOf(t, rc, key).replicaClient, key); got != v4 {
		t.Fatalf("v4 was acknowledged, the replica holds %v", got)
	}
}

// The WAIT must follow the script to the node that ran it, so a redirect is not followed: while the
// row's slot is migrating and its keys have moved (ASK), and once the slot has moved and the client's
// slot map is stale (MOVED), the write is refused with the redirect, and a retry after the client
// reloaded its map is acknowledged by the new owner's replica.
func TestClusterReplicaWaitRedirects(t *testing.T) {
	ctx := context.Background()
	rc := redisserver.StartClusterForTest(t, redisserver.ClusterOptions{Primaries: 3, Replicas: 1})
	store := rowcache.NewStore(rc.Client(), 0).WithReplicaWait(1, waitTimeout)
	const key, floor = "shop.t:1", "cloudsql-cache:truncated:shop.t"
	upsert := func(ver rowcache.Version) func() (rowcache.Result, error) {
		return func() (rowcache.Result, error) { return store.Upsert(ctx, key, floor, ver, []byte(`{"id":1}`)) }
	}
	if r, err := acknowledged(t, upsert(v(1, 100, 0))); err != nil || (r != rowcache.Applied && r != rowcache.Duplicate) {
		t.Fatalf("v1: %v %v", r, err)
	}
	from := shardOf(t, rc, key).primary
	var to redisserver.Node
	for _, p := range rc.Primaries() {
		if p.ID != from.ID {
			to = p
			break
		}
	}
	m, err := rc.StartMigration(ctx, rc.KeySlot(key), to.Addr)
	if err != nil {
		t.Fatal(err)
	}
	for {
		n, err := m.MoveKeys(ctx, 100)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
	}
	_, err = store.Upsert(ctx, key, floor, v(1, 200, 0), []byte(`{"id":1}`))
	if _, ask := redis.IsAskError(err); !ask {
		t.Fatalf("a write of a key moved to the importing node: %v, want the ASK answer", err)
	}
	if err := m.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = store.Upsert(ctx, key, floor, v(1, 200, 0), []byte(`{"id":1}`))
	if _, moved := redis.IsMovedError(err); !moved {
		t.Fatalf("a write through the slot map from before the migration: %v, want the MOVED answer", err)
	}
	var r rowcache.Result
	waitFor(t, "the write to reach the slot's new owner", func() bool {
		r, err = store.Upsert(ctx, key, floor, v(1, 200, 0), []byte(`{"id":1}`))
		return err == nil
	})
	if r != rowcache.Applied && r != rowcache.Duplicate {
		t.Fatalf("v2 on the new owner: %v", r)
	}
	sh := shardOf(t, rc, key)
	if sh.primary.ID != to.ID {
		t.Fatalf("%s is served by %s, want %s", key, sh.primary.Addr, to.Addr)
	}
	if got := stored(t, sh.replicaClient, key); got != v(1, 200, 0) {
		t.Fatalf("v2 was acknowledged, the new owner's replica holds %v", got)
	}
}
