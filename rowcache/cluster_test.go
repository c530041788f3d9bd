package rowcache_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// KeySlot is the server's CLUSTER KEYSLOT, hash tags included, and every slot's floor copy is in that
// slot; the tags are part of the data layout and may never change.
func TestSlotLayout(t *testing.T) {
	rc := redisserver.StartClusterForTest(t, redisserver.ClusterOptions{Primaries: 3})
	rdb := rc.Client()
	ctx := context.Background()
	keys := []string{"", "a", "{", "}", "{}", "{}x", "x{}", "a{b}c", "a{b", "{a}{b}", "{{a}}", "shop.orders:{\"id\":7}", "é{ü}"}
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		b := make([]byte, r.IntN(12))
		for j := range b {
			b[j] = "ab{}:x"[r.IntN(6)]
		}
		keys = append(keys, string(b))
	}
	for _, k := range keys {
		want, err := rdb.ClusterKeySlot(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		if got := rowcache.KeySlot(k); int64(got) != want {
			t.Errorf("KeySlot(%q) = %d, server says %d", k, got, want)
		}
	}
	seen := map[string]bool{}
	for slot := 0; slot < rowcache.Slots; slot++ {
		k := rowcache.SlotFloorKey("cloudsql-cache:truncated:shop.orders", slot)
		if got := rowcache.KeySlot(k); got != slot || seen[k] {
			t.Fatalf("slot %d: floor copy %q is in slot %d (or twice)", slot, k, got)
		}
		seen[k] = true
		if slot%1024 == 0 {
			if want := rdb.ClusterKeySlot(ctx, k).Val(); want != int64(slot) {
				t.Errorf("server puts %q in slot %d, want %d", k, want, slot)
			}
		}
	}
	for slot, tag := range map[int]string{0: "3560", 16383: "39296", 13907: "0", 9842: "1"} {
		if rowcache.SlotTag(slot) != tag || rowcache.KeySlot("{"+tag+"}") != slot {
			t.Errorf("SlotTag(%d) = %q, want %q", slot, rowcache.SlotTag(slot), tag)
		}
	}
}

const clusterFloor = "cloudsql-cache:truncated:db.t"

// clusterRows returns n row keys of table db.t and fails unless they cover every primary.
func clusterRows(t *testing.T, rc *redisserver.TestCluster, n int) []string {
	t.Helper()
	keys := make([]string, n)
	shards := map[string]bool{}
	for i := range keys {
		keys[i] = fmt.Sprintf("db.t:%d", i)
		for _, p := range rc.Primaries() {
			if p.Owns(rowcache.KeySlot(keys[i])) {
				shards[p.ID] = true
			}
		}
	}
	if len(shards) != len(rc.Primaries()) {
		t.Fatalf("the rows are on %d of %d primaries", len(shards), len(rc.Primaries()))
	}
	return keys
}

// On a 3-primary cluster with replicas: random histories with duplicates, replays and reordering end
// with the newest version of every row; a floor raised in every slot removes the older rows of every
// shard and refuses older changes everywhere, keeping newer ones; a fill across a floor change is
// refused; every changed key is announced once on the sharded channel; and no call ever fails
// (CROSSSLOT, or anything else).
func TestClusterApplyHistoriesFloorsAndFills(t *testing.T) {
	rc := redisserver.StartClusterForTest(t, redisserver.ClusterOptions{Primaries: 3, Replicas: 1})
	rdb := rc.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	if st.Cluster() == nil || st.FloorKeyOf(clusterFloor, "db.t:1") == clusterFloor {
		t.Fatal("a Store on a cluster client must use the cluster's layout")
	}
	if one := rowcache.NewStore(redis.NewClient(&redis.Options{}), 0); one.FloorKeyOf(clusterFloor, "db.t:1") != clusterFloor {
		t.Fatal("a Store on one instance keeps today's floor key")
	}
	sub := rdb.SSubscribe(ctx, rowcache.DefaultInvalidationChannel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil {
		t.Fatal(err)
	}
	announced := make(chan string, 100000)
	go func() {
		for m := range sub.Channel() {
			announced <- m.Payload
		}
	}()

	keys := clusterRows(t, rc, 300)
	r := rand.New(rand.NewPCG(3, 4))
	newest := map[string]rowcache.Version{}
	type change struct {
		key string
		v   rowcache.Version
		del bool
	}
	var history []change
	for _, k := range keys {
		for i := 0; i < 1+r.IntN(6); i++ {
			c := change{key: k, v: rowcache.Version{File: 1, Pos: uint64(100 + r.IntN(50)), Row: uint64(r.IntN(3))}, del: r.IntN(4) == 0}
			history = append(history, c)
			if r.IntN(3) == 0 {
				history = append(history, c) // a duplicate
			}
			if c.v.Compare(newest[k]) > 0 {
				newest[k] = c.v
			}
		}
	}
	r.Shuffle(len(history), func(i, j int) { history[i], history[j] = history[j], history[i] })
	deleted := map[string]bool{}
	for _, c := range history {
		var err error
		if c.del {
			_, err = st.Delete(ctx, c.key, clusterFloor, c.v)
		} else {
			_, err = st.Upsert(ctx, c.key, clusterFloor, c.v, []byte(fmt.Sprintf(`{"v":%q}`, c.v)))
		}
		if err != nil {
			t.Fatalf("%s %s: %v", c.key, c.v, err)
		}
		if c.v == newest[c.key] {
			deleted[c.key] = c.del
		}
	}
	for _, k := range keys {
		e, found, err := rowcache.Get(ctx, rdb, k)
		if err != nil || !found || e.Version != newest[k] || e.Deleted() != deleted[k] {
			t.Fatalf("%s: %+v found=%v %v; want version %s deleted=%v", k, e, found, err, newest[k], deleted[k])
		}
	}

	// A fill that read the floor before the table's floor moved is refused; one that read it after
	// lands.
	fillKey := "db.t:fill"
	before := rdb.Get(ctx, st.FloorKeyOf(clusterFloor, fillKey)).Val()
	floor := rowcache.Version{File: 1, Pos: 125}
	res, n, err := st.Truncate(ctx, rowcache.TableKeys{FloorKey: clusterFloor, Pattern: "db.t:*"}, floor)
	if err != nil || res != rowcache.Applied {
		t.Fatalf("truncate: %v %v", res, err)
	}
	wantDeleted := 0
	for _, k := range keys {
		if newest[k].Compare(floor) < 0 {
			wantDeleted++
		}
	}
	if n != wantDeleted {
		t.Errorf("the truncate deleted %d keys, want %d (the rows older than the floor on every shard)", n, wantDeleted)
	}
	for _, k := range keys {
		found := rdb.Exists(ctx, k).Val() == 1
		if want := newest[k].Compare(floor) >= 0; found != want {
			t.Errorf("%s (version %s) present=%v after the truncate at %s", k, newest[k], found, floor)
		}
		old, err := st.Upsert(ctx, k, clusterFloor, rowcache.Version{File: 1, Pos: 124, Row: 9}, []byte(`{"late":1}`))
		if err != nil || old != rowcache.Truncated {
			t.Fatalf("%s: a change from before the truncate: %v %v, want truncated", k, old, err)
		}
	}
	if ok, err := st.Fill(ctx, fillKey, clusterFloor, before, []byte(`{"stale":1}`), time.Minute); err != nil || ok {
		t.Errorf("a fill across the truncate: stored=%v %v, want refused", ok, err)
	}
	after := rdb.Get(ctx, st.FloorKeyOf(clusterFloor, fillKey)).Val()
	if after != floor.String() || rdb.Get(ctx, clusterFloor).Val() != floor.String() {
		t.Fatalf("the floor in %s's slot is %q, the table's %q; want %s", fillKey, after, rdb.Get(ctx, clusterFloor).Val(), floor)
	}
	if ok, err := st.Fill(ctx, fillKey, clusterFloor, after, []byte(`{"fresh":1}`), time.Minute); err != nil || !ok {
		t.Errorf("a fill after the truncate: stored=%v %v", ok, err)
	}
	// Every slot has its copy.
	missing := 0
	for slot := 0; slot < rowcache.Slots; slot += 97 {
		if rdb.Get(ctx, rowcache.SlotFloorKey(clusterFloor, slot)).Val() != floor.String() {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d sampled slots have no copy of the floor", missing)
	}
	// A replay of the truncate (the same version) does not sweep again; an older one is stale.
	if res, n, err := st.Truncate(ctx, rowcache.TableKeys{FloorKey: clusterFloor, Pattern: "db.t:*"}, floor); err != nil || res != rowcache.Duplicate || n != 0 {
		t.Errorf("replayed truncate: %v %d %v", res, n, err)
	}
	if res, _, err := st.Truncate(ctx, rowcache.TableKeys{FloorKey: clusterFloor, Pattern: "db.t:*"}, rowcache.Version{File: 1, Pos: 1}); err != nil || res != rowcache.Stale {
		t.Errorf("older truncate: %v %v", res, err)
	}

	// Every key the history changed and the truncate removed was announced on the sharded channel.
	time.Sleep(200 * time.Millisecond)
	got := map[string]bool{}
	for len(announced) > 0 {
		got[<-announced] = true
	}
	for _, k := range keys {
		if !got[k] {
			t.Errorf("%s was never announced", k)
			break
		}
	}
}

// Changes applied without pause while 2,000 slots move between primaries (redis-cli --cluster reshard)
// and then a primary fails over to its replica: every error is one a retry resolves (a redirect the
// client could not follow in time, TRYAGAIN while a slot's keys are split, a connection cut by the
// failover), never CROSSSLOT; retried as Pub/Sub redelivers, every row ends at its newest version, and
// a truncate afterwards reaches every shard.
func TestClusterApplyDuringReshardAndFailover(t *testing.T) {
	rc := redisserver.StartClusterForTest(t, redisserver.ClusterOptions{Primaries: 3, Replicas: 1})
	rdb := rc.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	keys := clusterRows(t, rc, 200)

	var mu sync.Mutex
	last := map[string]rowcache.Version{}
	errs := map[string]int{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for pos := uint64(1); ; pos++ {
				select {
				case <-stop:
					return
				default:
				}
				for i := w; i < len(keys); i += 4 {
					v := rowcache.Version{File: 1, Pos: pos, Row: uint64(i)}
					for {
						_, err := st.Upsert(ctx, keys[i], clusterFloor, v, []byte(`{"x":1}`))
						if err == nil {
							break
						}
						mu.Lock()
						kind := strings.Fields(strings.TrimPrefix(err.Error(), "rowcache: apply to "+keys[i]+": "))
						if len(kind) > 0 {
							errs[kind[0]]++
						}
						mu.Unlock()
						if strings.Contains(err.Error(), "CROSSSLOT") {
							t.Errorf("%s: %v", keys[i], err)
							return
						}
						time.Sleep(20 * time.Millisecond) // Pub/Sub's backoff, shortened
					}
					mu.Lock()
					last[keys[i]] = v
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(300 * time.Millisecond)
	ps := rc.Primaries()
	rc.Reshard(ps[0].ID, ps[1].ID, 2000)
	time.Sleep(300 * time.Millisecond)
	rc.Failover(ps[2].Addr)
	time.Sleep(500 * time.Millisecond)
	close(stop)
	wg.Wait()
	t.Logf("errors retried, by kind: %v", errs)

	for _, k := range keys {
		e, found, err := rowcache.Get(ctx, rdb, k)
		if err != nil || !found || e.Version != last[k] {
			t.Errorf("%s: %v found=%v %v, want the last applied %s", k, e.Version, found, err, last[k])
		}
	}
	res, n, err := st.Truncate(ctx, rowcache.TableKeys{FloorKey: clusterFloor, Pattern: "db.t:*"}, rowcache.Version{File: 2})
	if err != nil || res != rowcache.Applied || n != len(keys) {
		t.Fatalf("truncate after the reshard and failover: %v, %d deleted, %v; want %d", res, n, err, len(keys))
	}
	for _, k := range keys {
		if r, err := st.Upsert(ctx, k, clusterFloor, rowcache.Version{File: 1, Pos: 1 << 40}, []byte(`{}`)); err != nil || r != rowcache.Truncated {
			t.Fatalf("%s after the truncate: %v %v", k, r, err)
		}
	}
}

// A slot moved one step at a time: while its keys are split between the two primaries a change of a
// row of the slot gets TRYAGAIN (never CROSSSLOT, never a write against another node's floor), and once
// the row and its floor copy are on one node, wherever that is, it applies under the floor.
func TestClusterApplyDuringSlotMigration(t *testing.T) {
	rc := redisserver.StartClusterForTest(t, redisserver.ClusterOptions{Primaries: 3})
	rdb := rc.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	tk := rowcache.TableKeys{FloorKey: clusterFloor, Pattern: "db.t:*"}
	if _, _, err := st.Truncate(ctx, tk, rowcache.Version{File: 1, Pos: 100}); err != nil {
		t.Fatal(err)
	}
	key := "db.t:42"
	slot := rowcache.KeySlot(key)
	if _, err := st.Upsert(ctx, key, clusterFloor, rowcache.Version{File: 1, Pos: 200}, []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	owner, err := rc.Cluster.SlotOwner(ctx, slot)
	if err != nil {
		t.Fatal(err)
	}
	var to string
	for _, p := range rc.Primaries() {
		if p.ID != owner.ID && to == "" {
			to = p.Addr
		}
	}
	m, err := rc.StartMigration(ctx, slot, to)
	if err != nil {
		t.Fatal(err)
	}
	// Move the row but not the floor copy: the script's two keys are on two nodes.
	src := rc.NodeClient(owner.Addr)
	host, port, _ := strings.Cut(to, ":")
	if err := src.Do(ctx, "migrate", host, port, "", 0, 5000, "keys", key).Err(); err != nil {
		t.Fatal(err)
	}
	_, err = st.Upsert(ctx, key, clusterFloor, rowcache.Version{File: 1, Pos: 300}, []byte(`{"n":2}`))
	if err == nil || !strings.Contains(err.Error(), "TRYAGAIN") {
		t.Fatalf("a change while its row and floor are split: %v, want TRYAGAIN", err)
	}
	if err := m.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	if r, err := st.Upsert(ctx, key, clusterFloor, rowcache.Version{File: 1, Pos: 300}, []byte(`{"n":2}`)); err != nil || r != rowcache.Applied {
		t.Fatalf("after the migration: %v %v", r, err)
	}
	if r, err := st.Upsert(ctx, key, clusterFloor, rowcache.Version{File: 1, Pos: 50}, []byte(`{"n":0}`)); err != nil || r != rowcache.Truncated {
		t.Fatalf("below the floor after the migration: %v %v; the floor copy must have moved with its slot", r, err)
	}
}

// A floor raise cut off part-way (the apply timeout) resumes where it stopped when the change is
// redelivered, and ends with the floor in every slot and the rows swept.
func TestClusterRaiseFloorResumes(t *testing.T) {
	rc := redisserver.StartClusterForTest(t, redisserver.ClusterOptions{Primaries: 3})
	rdb := rc.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	keys := clusterRows(t, rc, 50)
	for _, k := range keys {
		if _, err := st.Upsert(ctx, k, clusterFloor, rowcache.Version{File: 1, Pos: 5}, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	tk := rowcache.TableKeys{FloorKey: clusterFloor, Pattern: "db.t:*"}
	floor := rowcache.Version{File: 1, Pos: 10}
	attempts := 0
	var progress []string
	for timeout := 20 * time.Millisecond; ; timeout *= 2 {
		attempts++
		cctx, cancel := context.WithTimeout(ctx, timeout)
		_, n, err := st.Truncate(cctx, tk, floor)
		cancel()
		progress = append(progress, rdb.Get(ctx, clusterFloor+":sweep").Val())
		if err == nil {
			if attempts > 1 && n == 0 && rdb.Exists(ctx, keys[0]).Val() == 1 {
				t.Fatal("the resumed raise did not sweep")
			}
			break
		}
		if attempts > 12 {
			t.Fatalf("no raise finished: %v", err)
		}
	}
	t.Logf("%d attempts, progress after each: %q", attempts, progress)
	if attempts < 2 {
		t.Fatal("the first attempt was not cut off: the test shows nothing")
	}
	for slot := 0; slot < rowcache.Slots; slot++ {
		if got := rdb.Get(ctx, rowcache.SlotFloorKey(clusterFloor, slot)).Val(); got != floor.String() {
			t.Fatalf("slot %d's floor is %q after the resumed raise", slot, got)
		}
	}
	for _, k := range keys {
		if rdb.Exists(ctx, k).Val() == 1 {
			t.Errorf("%s survived the truncate", k)
		}
	}
}
