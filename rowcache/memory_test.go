package rowcache_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// usedMemory is INFO memory's used_memory.
func usedMemory(t *testing.T, rdb *redis.Client) int64 {
	t.Helper()
	info, err := rdb.Info(context.Background(), "memory").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "used_memory:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no used_memory in INFO")
	return 0
}

// perRow measures the Redis memory one row costs when n rows are written by write, from the
// difference in used_memory (jemalloc's real allocations, not MEMORY USAGE's estimate).
func perRow(t *testing.T, rdb *redis.Client, n int, write func(p redis.Pipeliner, i int)) float64 {
	t.Helper()
	ctx := context.Background()
	rdb.FlushAll(ctx)
	before := usedMemory(t, rdb)
	for lo := 0; lo < n; lo += 1000 {
		p := rdb.Pipeline()
		for i := lo; i < min(lo+1000, n); i++ {
			write(p, i)
		}
		if _, err := p.Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return float64(usedMemory(t, rdb)-before) / float64(n)
}

// rowOfSize is a row JSON of size bytes on average, spread uniformly over ±size/4 as real rows are.
// The spread matters: jemalloc rounds allocations up to size classes (16 bytes apart near 100, 256 near
// 1,000), so a few extra bytes cost nothing for most rows and a whole class step for the rows just
// under a boundary; only a spread of sizes measures the average.
func rowOfSize(size, i int) string {
	pad := size - 40 - size/4 + i%(size/2)
	return fmt.Sprintf(`{"id":%d,"name":"user-%d","bio":"%s"}`, i, i, strings.Repeat("x", max(pad, 1)))
}

// TestMemoryOverhead measures what the version costs per row against a plain SET of the same JSON, for
// the format chosen (one string: "<version> <json>") and the alternative (a hash with the version and
// the JSON as two fields), and what a tombstone costs. It fails if the chosen format's overhead grows
// past 40 bytes a row (for a typical version of 19 characters plus the separator).
func TestMemoryOverhead(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	const n = 20000
	ver := rowcache.Version{File: 1234, Pos: 987654321, Row: 3} // "0.0.1234.987654321.3"
	for _, size := range []int{100, 1000} {
		plain := perRow(t, rdb, n, func(p redis.Pipeliner, i int) {
			p.Set(context.Background(), "app.users:"+strconv.Itoa(i), rowOfSize(size, i), 0)
		})
		chosen := perRow(t, rdb, n, func(p redis.Pipeliner, i int) {
			p.Set(context.Background(), "app.users:"+strconv.Itoa(i), rowcache.EncodeRow(ver, []byte(rowOfSize(size, i))), 0)
		})
		hash := perRow(t, rdb, n, func(p redis.Pipeliner, i int) {
			p.HSet(context.Background(), "app.users:"+strconv.Itoa(i), "v", ver.String(), "d", rowOfSize(size, i))
		})
		t.Logf("row ~%4d B: plain SET %.1f B/row; version+row string %.1f B/row (+%.1f); hash{v,d} %.1f B/row (+%.1f)",
			size, plain, chosen, chosen-plain, hash, hash-plain)
		if chosen-plain > 40 {
			t.Errorf("row ~%d B: the versioned string costs %.1f bytes more than a plain SET; budget 40", size, chosen-plain)
		}
	}
	tomb := perRow(t, rdb, n, func(p redis.Pipeliner, i int) {
		p.Set(context.Background(), "app.users:"+strconv.Itoa(i), ver.String(), 3600e9)
	})
	t.Logf("tombstone (with TTL): %.1f B/row", tomb)
}

// What a row and a table's floor cost on a 3-primary cluster, against one instance in the same run
// (make memory): used_memory summed over the primaries before and after 20,000 rows, then after one
// truncate floor (its 16,384 slot copies).
func TestClusterMemory(t *testing.T) {
	const n = 20000
	single := redisserver.StartForTest(t, redisserver.Options{}).Client()
	rc := redisserver.StartClusterForTest(t, redisserver.ClusterOptions{Primaries: 3})
	cluster := rc.Client()
	ctx := context.Background()
	total := func(rdb redis.UniversalClient) (mem, keys int64) {
		measure := func(c *redis.Client) { mem += usedMemory(t, c); keys += c.DBSize(ctx).Val() }
		if _, ok := rdb.(*redis.ClusterClient); ok {
			for _, p := range rc.Primaries() {
				measure(rc.NodeClient(p.Addr))
			}
			return mem, keys
		}
		measure(rdb.(*redis.Client))
		return mem, keys
	}
	row := []byte(`{"id":12345,"name":"a customer","balance":"12.30","updated_at":"2026-01-01 00:00:00"}`)
	for _, tc := range []struct {
		name string
		rdb  redis.UniversalClient
	}{{"one instance", single}, {"cluster", cluster}} {
		st := rowcache.NewStore(tc.rdb, 0).WithInvalidationChannel("")
		m0, _ := total(tc.rdb)
		for i := 0; i < n; i++ {
			if _, err := st.Upsert(ctx, fmt.Sprintf("shop.customers:%d", i), "cloudsql-cache:truncated:shop.customers", rowcache.Version{File: 7, Pos: uint64(1000 + i)}, row); err != nil {
				t.Fatal(err)
			}
		}
		m1, k1 := total(tc.rdb)
		if _, _, err := st.Truncate(ctx, rowcache.TableKeys{FloorKey: "cloudsql-cache:truncated:other", Pattern: "other:*"}, rowcache.Version{File: 7, Pos: 1}); err != nil {
			t.Fatal(err)
		}
		m2, k2 := total(tc.rdb)
		t.Logf("%s: %.0f bytes per row (%d rows); a table's floor: %d keys, %.1f KiB", tc.name, float64(m1-m0)/n, n, k2-k1, float64(m2-m1)/1024)
		wantFloorKeys := int64(2) // the floor and its sweep's progress
		if tc.rdb == cluster {
			wantFloorKeys += rowcache.Slots
		}
		if k1 != n || k2-k1 != wantFloorKeys {
			t.Errorf("%s: %d row keys, %d floor keys; want %d, %d", tc.name, k1, k2-k1, n, wantFloorKeys)
		}
	}
}
