package rowcache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

const waitTimeout = 200 * time.Millisecond

// pair is a primary and an asynchronous replica of it, linked through a proxy: the network between
// them, which can hold back what the primary sends.
type pair struct {
	primary, replica *redisserver.TestServer
	link             *redisserver.Proxy
}

func primaryAndReplica(t *testing.T) pair {
	t.Helper()
	primary := redisserver.StartForTest(t, redisserver.Options{})
	link := primary.StartProxyForTest()
	replica := redisserver.StartForTest(t, redisserver.Options{ReplicaOf: link.Addr()})
	replica.WaitLinked()
	return pair{primary, replica, link}
}

// replicaOf starts a new replica of primary, as Memorystore replaces a failed node after a failover.
func replicaOf(t *testing.T, primary *redisserver.TestServer) *redisserver.TestServer {
	t.Helper()
	r := redisserver.StartForTest(t, redisserver.Options{ReplicaOf: primary.Addr()})
	r.WaitLinked()
	return r
}

func stored(t *testing.T, rdb *redis.Client, key string) rowcache.Version {
	t.Helper()
	e, found, err := rowcache.Get(context.Background(), rdb, key)
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		return rowcache.Version{}
	}
	return e.Version
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// failover kills the primary while the link holds (so the replica never gets what it held back), then
// promotes the replica: Memorystore's failover of a primary that crashed.
func (p pair) failover() {
	p.primary.Kill()
	p.link.Cut()
	p.replica.Promote()
}

// Without WAIT an acknowledged write that had not reached the replica is gone after a failover; with
// it the write is not acknowledged until a replica holds it, and the retry after the failover lands
// on the new primary and its new replica, where a second failover keeps it.
func TestFailoverLosesOnlyUnconfirmedWrites(t *testing.T) {
	ctx := context.Background()
	v1, v2 := v(1, 100, 0), v(1, 200, 0)
	const key, floor = "shop.t:1", "cloudsql-cache:truncated:shop.t"

	t.Run("without WAIT an acknowledged write is lost", func(t *testing.T) {
		p := primaryAndReplica(t)
		primary, replica := p.primary, p.replica
		store := rowcache.NewStore(primary.Client(), 0)
		if r, err := store.Upsert(ctx, key, floor, v1, []byte(`{"id":1,"n":1}`)); err != nil || r != rowcache.Applied {
			t.Fatalf("v1: %v %v", r, err)
		}
		rc := replica.Client()
		waitFor(t, "v1 on the replica", func() bool { return stored(t, rc, key) == v1 })
		p.link.Hold()
		if r, err := store.Upsert(ctx, key, floor, v2, []byte(`{"id":1,"n":2}`)); err != nil || r != rowcache.Applied {
			t.Fatalf("v2 was not acknowledged: %v %v", r, err)
		}
		p.failover()
		if got := stored(t, rc, key); got != v1 {
			t.Fatalf("after the failover the new primary holds %v; the model of the loss expects the acknowledged v2 to be gone (v1)", got)
		}
	})

	t.Run("with WAIT the write is acknowledged only once a replica holds it", func(t *testing.T) {
		p := primaryAndReplica(t)
		primary, replica := p.primary, p.replica
		store := rowcache.NewStore(primary.Client(), 0).WithReplicaWait(1, waitTimeout)
		// Retried as Pub/Sub would: on a loaded machine the replica may take longer than the wait to
		// confirm even with its link up (a retry then finds the write already stored: a duplicate).
		var r rowcache.Result
		var err error
		waitFor(t, "v1 to be acknowledged", func() bool {
			r, err = store.Upsert(ctx, key, floor, v1, []byte(`{"id":1,"n":1}`))
			return !errors.Is(err, rowcache.ErrNotReplicated)
		})
		if err != nil || (r != rowcache.Applied && r != rowcache.Duplicate) {
			t.Fatalf("v1: %v %v", r, err)
		}
		p.link.Hold()
		_, err = store.Upsert(ctx, key, floor, v2, []byte(`{"id":1,"n":2}`))
		if !errors.Is(err, rowcache.ErrNotReplicated) {
			t.Fatalf("v2 with the replica paused: %v, want ErrNotReplicated (not acknowledged)", err)
		}
		p.failover()
		newPrimary := replica
		rc := newPrimary.Client()
		if got := stored(t, rc, key); got != v1 {
			t.Fatalf("after the failover the new primary holds %v, want v1 (v2 never reached it)", got)
		}
		// The retry, through the same endpoint after the failover: the new primary has no replica
		// yet, so it is refused again, until its replacement replica has synced.
		store = rowcache.NewStore(rc, 0).WithReplicaWait(1, waitTimeout)
		if _, err := store.Upsert(ctx, key, floor, v2, []byte(`{"id":1,"n":2}`)); !errors.Is(err, rowcache.ErrNotReplicated) {
			t.Fatalf("retry without any replica: %v, want ErrNotReplicated", err)
		}
		newReplica := replicaOf(t, newPrimary)
		// Retried as Pub/Sub would, until acknowledged: the new primary counts its replica once that
		// has confirmed its first offset.
		waitFor(t, "the retry to be acknowledged", func() bool {
			r, err = store.Upsert(ctx, key, floor, v2, []byte(`{"id":1,"n":2}`))
			return !errors.Is(err, rowcache.ErrNotReplicated)
		})
		if err != nil || (r != rowcache.Applied && r != rowcache.Duplicate) {
			t.Fatalf("retry with a replica: %v %v", r, err)
		}
		// Acknowledged now: a second failover, right away, keeps it.
		newPrimary.Kill()
		newReplica.Promote()
		if got := stored(t, newReplica.Client(), key); got != v2 {
			t.Fatalf("after the second failover: %v, want the acknowledged v2", got)
		}
	})
}

// A retry that finds its change already stored writes nothing, and WAIT alone would then wait only for
// its own connection's earlier writes: the barrier makes it wait for the earlier attempt's write too.
func TestDuplicateWaitsForTheEarlierAttemptsWrite(t *testing.T) {
	ctx := context.Background()
	p := primaryAndReplica(t)
	primary, replica := p.primary, p.replica
	const key, floor = "shop.t:1", "cloudsql-cache:truncated:shop.t"
	ver := v(1, 100, 0)
	row := []byte(`{"id":1}`)
	p.link.Hold()
	first := rowcache.NewStore(primary.Client(), 0).WithReplicaWait(1, waitTimeout)
	if _, err := first.Upsert(ctx, key, floor, ver, row); !errors.Is(err, rowcache.ErrNotReplicated) {
		t.Fatalf("first attempt: %v, want ErrNotReplicated", err)
	}
	// The retry on another connection (another client: a fresh connection that never wrote).
	retry := rowcache.NewStore(primary.Client(), 0).WithReplicaWait(1, waitTimeout)
	r, err := retry.Upsert(ctx, key, floor, ver, row)
	if !errors.Is(err, rowcache.ErrNotReplicated) {
		t.Fatalf("retry while the replica still lacks the write: %v %v, want ErrNotReplicated", r, err)
	}
	if err := retry.Replicated(ctx); !errors.Is(err, rowcache.ErrNotReplicated) {
		t.Fatalf("Replicated while the replica lacks the write: %v, want ErrNotReplicated", err)
	}
	p.link.Release()
	waitFor(t, "the retry to be acknowledged", func() bool {
		r, err = retry.Upsert(ctx, key, floor, ver, row)
		return !errors.Is(err, rowcache.ErrNotReplicated)
	})
	if err != nil || r != rowcache.Duplicate {
		t.Fatalf("retry once the replica caught up: %v %v, want duplicate", r, err)
	}
	if err := retry.Replicated(ctx); err != nil {
		t.Fatalf("Replicated: %v", err)
	}
	if got := stored(t, replica.Client(), key); got != ver {
		t.Fatalf("replica holds %v, want %v", got, ver)
	}
}
