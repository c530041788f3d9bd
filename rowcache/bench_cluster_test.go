package rowcache_test

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// The apply script's throughput on one primary against a 3-primary cluster, in the same run
// (BENCHMARKS.md, section 7):
//
//	go test ./rowcache -run '^$' -bench ClusterApply -benchtime 20000x -count 3
//
// Each op is Store.Upsert of a 1 KB row at a newer version (the function's common case), over 10,000
// keys: on the cluster the row and its floor copy in its slot. serial is one at a time; parallel is 32
// goroutines. On this 2-core machine the three primaries and the client share the cores: the ratio
// shows the cluster client's and the redirect-free routing's overhead, not a cluster's scaling.
func BenchmarkClusterApply(b *testing.B) {
	single := redisserver.StartForTest(b, redisserver.Options{})
	cluster := redisserver.StartClusterForTest(b, redisserver.ClusterOptions{Primaries: 3})
	row := []byte(`{"id":1,"pad":"` + strings.Repeat("x", 1000) + `"}`)
	ctx := context.Background()
	for _, t := range []struct {
		name string
		rdb  redis.UniversalClient
	}{
		{"standalone", redis.NewClient(&redis.Options{Addr: single.Addr(), PoolSize: 64, Protocol: 2})},
		{"cluster", redis.NewClusterClient(&redis.ClusterOptions{Addrs: cluster.Addrs(), PoolSize: 64, Protocol: 2})},
	} {
		b.Cleanup(func() { _ = t.rdb.Close() })
		st := rowcache.NewStore(t.rdb, 0).WithInvalidationChannel("")
		keys := make([]string, 10000)
		for i := range keys {
			keys[i] = fmt.Sprintf("bench.t:%d", i)
		}
		var pos atomic.Uint64
		apply := func(i int) error {
			_, err := st.Upsert(ctx, keys[i%len(keys)], "cloudsql-cache:truncated:bench.t", rowcache.Version{File: 1, Pos: pos.Add(1)}, row)
			return err
		}
		if err := apply(0); err != nil {
			b.Fatal(err)
		}
		b.Run(t.name+"/serial", func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				if err := apply(i); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(t.name+"/parallel", func(b *testing.B) {
			b.SetParallelism(16) // 32 goroutines on 2 cores
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := apply(int(n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
