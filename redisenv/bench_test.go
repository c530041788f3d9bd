package redisenv

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
)

// What the cluster client costs on the simplest operations, against one primary in the same run
// (BENCHMARKS.md, section 7):
//
//	go test ./redisenv -run '^$' -bench Cluster -benchtime 20000x -count 3
//
// Every target is a local redis-server without TLS, replicas or persistence, reached through the
// client NewUniversalClient makes: standalone is REDIS_MODE=standalone on one server; cluster is
// REDIS_MODE=cluster on 3 primaries with 10,000 keys spread over every slot; cluster-1slot is the same
// cluster with every key in one slot (a hash tag), so one primary serves them all, as in standalone:
// the cluster client's own cost without the spread. serial is one command at a time; parallel is 32
// goroutines (RunParallel), which on this 2-core machine share the cores with the servers.

// benchKeys is the key set of every benchmark: the version-guard shape of rowcache, 1 KB values.
const benchKeys = 10000

// benchScript is a one-key script of the apply script's shape: read the stored value, write only if it
// differs.
var benchScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1])
return 1`)

func BenchmarkCluster(b *testing.B) {
	single := redisserver.StartForTest(b, redisserver.Options{})
	cluster := redisserver.StartClusterForTest(b, redisserver.ClusterOptions{Primaries: 3})
	value := strings.Repeat("x", 1024)
	ctx := context.Background()
	type target struct {
		name string
		ops  map[string]func(i int) error
	}
	var targets []target
	for _, t := range []struct{ name, mode, addr, keyFormat string }{
		{"standalone", ModeStandalone, single.Addr(), "bench:%d"},
		{"cluster", ModeCluster, cluster.Addrs()[0], "bench:%d"},
		{"cluster-1slot", ModeCluster, cluster.Addrs()[0], "{bench}:%d"},
	} {
		env := map[string]string{"REDIS_MODE": t.mode, "REDIS_ADDR": t.addr}
		rdb, err := NewUniversalClient(func(k string) string { return env[k] })
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = rdb.Close() })
		keys := make([]string, benchKeys)
		for i := range keys {
			keys[i] = fmt.Sprintf(t.keyFormat, i)
			if err := rdb.Set(ctx, keys[i], value, 0).Err(); err != nil {
				b.Fatal(err)
			}
		}
		if err := benchScript.Load(ctx, rdb).Err(); err != nil {
			b.Fatal(err)
		}
		targets = append(targets, target{t.name, map[string]func(i int) error{
			"get": func(i int) error { return rdb.Get(ctx, keys[i%benchKeys]).Err() },
			"set": func(i int) error { return rdb.Set(ctx, keys[i%benchKeys], value, 0).Err() },
			// A new value each time (the counter in front), so the script writes as an applied change does.
			"evalsha": func(i int) error {
				return benchScript.EvalSha(ctx, rdb, []string{keys[i%benchKeys]}, fmt.Sprint(i)+value).Err()
			},
		}})
	}
	// Targets side by side for each operation, so that a change in the machine's load between
	// operations does not skew one target's figures against another's.
	for _, op := range []string{"get", "set", "evalsha"} {
		for _, t := range targets {
			do := t.ops[op]
			b.Run(op+"/serial/"+t.name, func(b *testing.B) {
				for i := 0; b.Loop(); i++ {
					if err := do(i); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		for _, t := range targets {
			do := t.ops[op]
			b.Run(op+"/parallel/"+t.name, func(b *testing.B) {
				b.SetParallelism(16) // 32 goroutines on GOMAXPROCS 2
				var worker atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					// Each goroutine on keys of its own, spread over the key set.
					for i := int(worker.Add(1)) * 7919; pb.Next(); i++ {
						if err := do(i); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
