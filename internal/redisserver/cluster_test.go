package redisserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// writeKeys sets n keys through the cluster client and returns them; each write is acknowledged by
// the primary's replicas too (WAIT), so a failover that loses unreplicated writes loses none of these.
func writeKeys(t *testing.T, c *TestCluster, rdb *redis.ClusterClient, prefix string, n int) []string {
	t.Helper()
	ctx := context.Background()
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s:%d", prefix, i)
		if err := rdb.Set(ctx, keys[i], keys[i], 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if c.opts.Replicas > 0 {
		err := rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
			return m.Wait(ctx, c.opts.Replicas, 5*time.Second).Err()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

// readKeys checks that every key reads back as its own name.
func readKeys(t *testing.T, rdb *redis.ClusterClient, keys []string) {
	t.Helper()
	for _, k := range keys {
		if v, err := rdb.Get(context.Background(), k).Result(); err != nil || v != k {
			t.Fatalf("GET %s = %q, %v", k, v, err)
		}
	}
}

// Three primaries with a replica each: every slot served once, each primary with its own replica, and
// keys spread over all three.
func TestClusterSlotsCovered(t *testing.T) {
	t.Parallel()
	c := StartClusterForTest(t, ClusterOptions{Primaries: 3, Replicas: 1})
	ctx := context.Background()
	nodes, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 6 {
		t.Fatalf("%d nodes, want 6", len(nodes))
	}
	covered := make([]int, Slots)
	replicas := map[string]int{}
	for _, n := range nodes {
		if n.Failed {
			t.Errorf("node %s failed", n.Addr)
		}
		if !n.Primary {
			replicas[n.PrimaryID]++
			continue
		}
		for _, r := range n.Slots {
			for s := r[0]; s <= r[1]; s++ {
				covered[s]++
			}
		}
	}
	for s, n := range covered {
		if n != 1 {
			t.Fatalf("slot %d served by %d primaries", s, n)
		}
	}
	ps := c.Primaries()
	if len(ps) != 3 {
		t.Fatalf("%d primaries, want 3", len(ps))
	}
	for _, p := range ps {
		if replicas[p.ID] != 1 {
			t.Errorf("primary %s has %d replicas, want 1", p.Addr, replicas[p.ID])
		}
	}
	rdb := c.Client()
	writeKeys(t, c, rdb, "k", 300)
	var mu sync.Mutex
	perPrimary := map[string]int64{}
	err = rdb.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		mu.Lock()
		perPrimary[m.Options().Addr] = n
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(perPrimary) != 3 {
		t.Fatalf("keys on %d primaries: %v", len(perPrimary), perPrimary)
	}
	for addr, n := range perPrimary {
		if n == 0 {
			t.Errorf("primary %s holds no key of 300: %v", addr, perPrimary)
		}
	}
	// A key's slot is where the cluster says it is.
	slot := c.KeySlot("k:0")
	owner, err := c.SlotOwner(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := c.NodeClient(owner.Addr).Get(ctx, "k:0").Result(); err != nil || v != "k:0" {
		t.Errorf("slot %d's owner %s: GET k:0 = %q, %v", slot, owner.Addr, v, err)
	}
}

// A graceful failover and a hard kill each put a replica in the primary's place with every replicated
// key, and the killed node rejoins as a replica.
func TestClusterFailover(t *testing.T) {
	t.Parallel()
	c := StartClusterForTest(t, ClusterOptions{Primaries: 3, Replicas: 1})
	ctx := context.Background()
	rdb := c.Client()
	keys := writeKeys(t, c, rdb, "f", 200)

	ps := c.Primaries()
	old := ps[0]
	promoted := c.Failover(old.Addr)
	if promoted.ID == old.ID || !promoted.Owns(old.Slots[0][0]) {
		t.Fatalf("after a failover of %s, slot %d is served by %s", old.Addr, old.Slots[0][0], promoted.Addr)
	}
	nodes, err := c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == old.ID && (n.Primary || n.PrimaryID != promoted.ID) {
			t.Errorf("the old primary %s is not a replica of %s after the failover: %+v", old.Addr, promoted.Addr, n)
		}
	}
	readKeys(t, rdb, keys)

	victim := c.Primaries()[1]
	successor := c.KillPrimary(victim.Addr)
	if successor.ID == victim.ID || !successor.Owns(victim.Slots[0][0]) {
		t.Fatalf("after killing %s, slot %d is served by %s", victim.Addr, victim.Slots[0][0], successor.Addr)
	}
	if ps := c.Primaries(); len(ps) != 3 {
		t.Fatalf("%d running primaries after the kill, want 3: %+v", len(ps), ps)
	}
	// A new client: one made before keeps sending the dead node's slots to it (connection refused)
	// until it reloads the slot map, which go-redis does only on a MOVED, on ReloadState, or every
	// ClusterStateReloadInterval (60 s by default); what the cluster looks like is the point here.
	rdb = c.Client()
	readKeys(t, rdb, keys)
	if err := rdb.Set(ctx, keys[0], keys[0], 0).Err(); err != nil {
		t.Fatalf("a write after the promotion: %v", err)
	}

	c.RestartNode(victim.Addr)
	nodes, err = c.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.Addr == victim.Addr && (n.Primary || n.PrimaryID != successor.ID || n.Failed) {
			t.Errorf("the restarted node %s did not rejoin as %s's replica: %+v", victim.Addr, successor.Addr, n)
		}
	}
	readKeys(t, rdb, keys)
}

// Resharding under load moves the slots' keys to the target while a writer and a reader keep going
// without an error; a step-by-step migration shows the ASK a plain client gets and the cluster client
// follows.
func TestClusterReshard(t *testing.T) {
	t.Parallel()
	c := StartClusterForTest(t, ClusterOptions{Primaries: 3})
	ctx := context.Background()
	rdb := c.Client()
	keys := writeKeys(t, c, rdb, "r", 2000)
	ps := c.Primaries()
	from, to := ps[0], ps[1]

	// Load: a writer and a reader over the same keys while 100 slots move.
	var stop atomic.Bool
	var ops atomic.Int64
	loadErr := make(chan error, 2)
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load(); i++ {
				k := keys[i%len(keys)]
				var err error
				if w == 0 {
					err = rdb.Set(ctx, k, k, 0).Err()
				} else if v, gerr := rdb.Get(ctx, k).Result(); gerr != nil || v != k {
					err = fmt.Errorf("GET %s = %q, %v", k, v, gerr)
				}
				if err != nil {
					loadErr <- err
					return
				}
				ops.Add(1)
			}
		}()
	}
	c.Reshard(from.ID, to.ID, 100)
	stop.Store(true)
	wg.Wait()
	close(loadErr)
	for err := range loadErr {
		t.Errorf("under resharding: %v", err)
	}
	t.Logf("%d operations during the reshard", ops.Load())

	// The 100 slots are the target's now, and so are their keys.
	var movedSlots []int
	after := c.Primaries()
	for _, p := range after {
		if p.ID != to.ID {
			continue
		}
		for s := range Slots {
			if from.Owns(s) && p.Owns(s) {
				movedSlots = append(movedSlots, s)
			}
		}
	}
	if len(movedSlots) != 100 {
		t.Fatalf("%d of %s's slots moved to %s, want 100", len(movedSlots), from.Addr, to.Addr)
	}
	target := c.NodeClient(to.Addr)
	moved := 0
	for _, k := range keys {
		s := c.KeySlot(k)
		if !from.Owns(s) || !containsInt(movedSlots, s) {
			continue
		}
		moved++
		if v, err := target.Get(ctx, k).Result(); err != nil || v != k {
			t.Errorf("key %s of moved slot %d on the target: %q, %v", k, s, v, err)
		}
	}
	if moved == 0 {
		t.Fatal("no key was in the moved slots: the test proves nothing")
	}
	readKeys(t, rdb, keys)

	// Step by step: one slot with a few keys, half of them moved.
	slot := c.KeySlot(keys[0])
	owner, err := c.SlotOwner(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	var dest Node
	for _, p := range after {
		if p.ID != owner.ID {
			dest = p
			break
		}
	}
	tagged := make([]string, 6)
	for i := range tagged {
		// A hash tag puts them all in keys[0]'s slot.
		tagged[i] = fmt.Sprintf("{%s}:%d", keys[0], i)
		if err := rdb.Set(ctx, tagged[i], tagged[i], 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	m, err := c.StartMigration(ctx, slot, dest.Addr)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := m.MoveKeys(ctx, 3); err != nil || n != 3 {
		t.Fatalf("MoveKeys(3) = %d, %v", n, err)
	}
	src := c.NodeClient(owner.Addr)
	asks := 0
	for _, k := range append([]string{keys[0]}, tagged...) {
		err := src.Get(ctx, k).Err()
		var rerr redis.Error
		if errors.As(err, &rerr) && strings.HasPrefix(err.Error(), "ASK ") {
			asks++
		} else if err != nil {
			t.Errorf("source GET %s mid-migration: %v", k, err)
		}
	}
	if asks != 3 {
		t.Errorf("the source answered ASK for %d keys, want the 3 moved", asks)
	}
	readKeys(t, rdb, append([]string{keys[0]}, tagged...))
	if err := m.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if o, err := c.SlotOwner(ctx, slot); err != nil || o.ID != dest.ID {
		t.Fatalf("slot %d owner after the migration: %+v, %v; want %s", slot, o, err, dest.Addr)
	}
	n, err := c.NodeClient(dest.Addr).ClusterCountKeysInSlot(ctx, slot).Result()
	if err != nil || int(n) < len(tagged)+1 {
		t.Errorf("the target holds %d keys of slot %d (%v), want at least %d", n, slot, err, len(tagged)+1)
	}
	readKeys(t, rdb, append([]string{keys[0]}, tagged...))
}

func containsInt(s []int, v int) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// With TLS and AUTH every node (bus and replication included) takes TLS only and the password only,
// as Memorystore for Redis Cluster with in-transit encryption does.
func TestClusterTLSAndPassword(t *testing.T) {
	t.Parallel()
	c := StartClusterForTest(t, ClusterOptions{Primaries: 3, Replicas: 1, TLS: true, Password: "s3cret"})
	ctx := context.Background()
	rdb := c.Client()
	readKeys(t, rdb, writeKeys(t, c, rdb, "t", 50))

	ping := func(o *redis.ClusterOptions) error {
		o.MaxRedirects = -1
		cl := redis.NewClusterClient(o)
		defer cl.Close()
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		return cl.Set(ctx, "t:0", "x", 0).Err()
	}
	o := c.ClusterOptions()
	o.Password = ""
	if err := ping(o); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("without the password: %v, want NOAUTH", err)
	}
	o = c.ClusterOptions()
	o.TLSConfig = nil
	if err := ping(o); err == nil {
		t.Error("answered in plaintext")
	}
}

// The harness refuses what redis-cli cannot build.
func TestClusterOptionsRefused(t *testing.T) {
	for _, o := range []ClusterOptions{{Primaries: 2}, {Primaries: 3, Replicas: -1}} {
		if _, err := StartCluster(context.Background(), ClusterOptions{Dir: t.TempDir(), Primaries: o.Primaries, Replicas: o.Replicas}); err == nil || !strings.Contains(err.Error(), "at least 3 primaries") {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
