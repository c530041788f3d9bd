package rowcache

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
)

// Would coalescing concurrent requests' script calls into pipelines raise an instance's throughput
// (issue 19)? Against a real redis-server, 32 goroutines (the function's concurrent requests) each
// apply 1 KB-row upserts at newer versions over 10,000 keys:
//
//		go test ./rowcache -run '^$' -bench CoalescedApply -benchtime 20000x -count 3
//
//	  - set: a bare SET of the same value, unpipelined: the baseline of benchapply's target;
//	  - script: Store.Upsert, one EVALSHA round trip per change, as the function does today;
//	  - coalesced: the same script calls handed to one flusher, which sends whatever is waiting (up to
//	    128) as one pipeline and hands each caller its reply: natural batching, no timer, so a lone
//	    request waits for no one.
//
// The coalescer here is the benchmark's, to measure the idea before building it into Store; the ratio
// against set in the same run is what BENCHMARKS.md reports. Only the Redis side is measured: the
// function's own CPU per request (HTTP, decoding) is outside it.
func BenchmarkCoalescedApply(b *testing.B) {
	srv := redisserver.StartForTest(b, redisserver.Options{})
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), PoolSize: 64, Protocol: 2})
	b.Cleanup(func() { _ = rdb.Close() })
	ctx := context.Background()
	st := NewStore(rdb, 0).WithInvalidationChannel("")
	if err := st.script.Load(ctx, rdb).Err(); err != nil {
		b.Fatal(err)
	}
	row := []byte(`{"id":1,"pad":"` + strings.Repeat("x", 1000) + `"}`)
	keys := make([]string, 10000)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench.t:%d", i)
	}
	const floorKey = "cloudsql-cache:truncated:bench.t"
	var pos atomic.Uint64
	co := newCoalescer(ctx, st, 128)
	b.Cleanup(co.stop)
	for _, c := range []struct {
		name  string
		apply func(i int) error
	}{
		{"set", func(i int) error { return rdb.Set(ctx, "plain."+keys[i%len(keys)], row, 0).Err() }}, // keys of its own: the script refuses foreign values
		{"script", func(i int) error {
			_, err := st.Upsert(ctx, keys[i%len(keys)], floorKey, Version{File: 1, Pos: pos.Add(1)}, row)
			return err
		}},
		{"coalesced", func(i int) error {
			v := Version{File: 1, Pos: pos.Add(1)}
			r, err := co.run([]string{keys[i%len(keys)], floorKey}, "u", v.String(), EncodeRow(v, row), "0", "")
			if err == nil && r != 1 && r != 0 && r != -1 {
				err = fmt.Errorf("script reply %d", r)
			}
			return err
		}},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.SetParallelism(16) // 32 goroutines on 2 cores
			var n atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := c.apply(int(n.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
	b.Logf("coalesced: %d pipelines for %d calls (%.1f per pipeline)", co.pipelines.Load(), co.calls.Load(), float64(co.calls.Load())/float64(max(co.pipelines.Load(), 1)))
}

type coalescedCall struct {
	keys  []string
	args  []any
	reply chan coalescedReply
}

type coalescedReply struct {
	n   int64
	err error
}

// coalescer sends the script calls waiting at once as one pipeline.
type coalescer struct {
	ctx              context.Context
	st               *Store
	max              int
	calls, pipelines atomic.Int64
	in               chan coalescedCall
	done             chan struct{}
}

func newCoalescer(ctx context.Context, st *Store, max int) *coalescer {
	c := &coalescer{ctx: ctx, st: st, max: max, in: make(chan coalescedCall, 1024), done: make(chan struct{})}
	go c.loop()
	return c
}

func (c *coalescer) run(keys []string, args ...any) (int64, error) {
	reply := make(chan coalescedReply, 1)
	c.in <- coalescedCall{keys: keys, args: args, reply: reply}
	r := <-reply
	return r.n, r.err
}

func (c *coalescer) stop() { close(c.in); <-c.done }

func (c *coalescer) loop() {
	defer close(c.done)
	for first := range c.in {
		batch := []coalescedCall{first}
	more:
		for len(batch) < c.max {
			select {
			case call, ok := <-c.in:
				if !ok {
					break more
				}
				batch = append(batch, call)
			default:
				break more
			}
		}
		pipe := c.st.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(batch))
		for i, call := range batch {
			cmds[i] = c.st.script.EvalSha(c.ctx, pipe, call.keys, call.args...)
		}
		_, _ = pipe.Exec(c.ctx)
		c.pipelines.Add(1)
		c.calls.Add(int64(len(batch)))
		for i, call := range batch {
			n, err := cmds[i].Int64()
			call.reply <- coalescedReply{n, err}
		}
	}
}
