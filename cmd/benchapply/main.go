// Command benchapply measures the apply function's throughput, handler latency and CPU cost per event,
// beside a baseline measured in the same run: the bare Redis command the script replaces (a SET of the
// same value), unpipelined, at the same concurrency, from the same machine.
//
// Method: a real redis-server and the real function binary run as separate processes on loopback. A
// load generator in this process POSTs pre-encoded push envelopes carrying realistic Debezium events
// (~1 KB rows; 20% inserts, 70% updates, 10% deletes over many keys, positions increasing, so almost
// every event is applied) with C concurrent keep-alive connections. The function's CPU time is read
// from /proc/<pid>/stat before and after each run. Everything shares the machine's cores, the load
// generator included, so absolute numbers are a floor; the ratio to the baseline is what holds.
//
//	go run ./cmd/benchapply -events 20000 -concurrency 1,8,32
//
// With -wait it measures instead the cost of REDIS_WAIT_REPLICAS=1: a replica of the redis-server, and
// two function processes, one acknowledging once the primary has a change and one once the replica
// has it too, run alternately on the same workload.
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/function/push"
	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/proccpu"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "benchapply: %v\n", err)
		os.Exit(1)
	}
}

type result struct {
	eventsPerSec float64
	p50, p99     time.Duration
	cpuPerEvent  time.Duration // function process only
}

func run() error {
	events := flag.Int("events", 20000, "events per run")
	conc := flag.String("concurrency", "1,8,32", "comma-separated concurrency levels")
	keys := flag.Int("keys", 10000, "distinct rows")
	pools := flag.String("pool-sizes", "", "compare REDIS_POOL_SIZE values (e.g. 10,82: go-redis's default at 1 vCPU, and Terraform's for concurrency 80) at the last -concurrency level, instead of the SET baseline")
	rtt := flag.Duration("redis-rtt", time.Millisecond, "with -pool-sizes: the simulated round trip to Redis")
	procs := flag.Int("function-cpus", 1, "GOMAXPROCS of the function process: Cloud Run's CPU limit sets it (Terraform function_cpu, default 1); 0 leaves Go's default (this machine's cores)")
	wait := flag.Bool("wait", false, "measure apply with REDIS_WAIT_REPLICAS=1 against without, both against a primary with a replica")
	flag.Parse()
	var levels []int
	for _, s := range strings.Split(*conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("-concurrency: %q", s)
		}
		levels = append(levels, n)
	}
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "benchapply")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	rport, err := freeport.Get()
	if err != nil {
		return err
	}
	rs, err := redisserver.Start(ctx, redisserver.Options{Dir: filepath.Join(dir, "redis"), Port: rport})
	if err != nil {
		return err
	}
	defer rs.Stop()
	bin := filepath.Join(dir, "function")
	if err := functionproc.Build(ctx, ".", bin); err != nil {
		return err
	}
	fport, err := freeport.Get()
	if err != nil {
		return err
	}
	env := []string{"REDIS_ADDR=" + rs.Addr(), "DEAD_LETTER_TOPIC=nack"}
	if *procs > 0 {
		// Go sizes GOMAXPROCS from the container's CPU limit, as Cloud Run sets it; here the process
		// would otherwise run one scheduler thread per core of the machine.
		env = append(env, "GOMAXPROCS="+strconv.Itoa(*procs))
	}
	fn, err := functionproc.Start(ctx, bin, fport, env, io.Discard)
	if err != nil {
		return err
	}
	defer fn.Stop()
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr(), PoolSize: 128})
	defer rdb.Close()

	bodies, values := workload(*events, *keys)
	if *wait {
		return waitRuns(ctx, dir, bin, rs, rdb, env, bodies, levels)
	}
	if *pools != "" {
		var sizes []int
		for _, s := range strings.Split(*pools, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 1 {
				return fmt.Errorf("-pool-sizes: %q", s)
			}
			sizes = append(sizes, n)
		}
		fn.Stop()
		return poolCompare(ctx, bin, rs.Addr(), rdb, env[1:], bodies, levels[len(levels)-1], sizes, *rtt)
	}
	fmt.Printf("apply function vs bare SET, %d events of ~%d B rows per run, %d keys, %s, %d cores\n\n",
		*events, avgLen(values), *keys, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU())
	fmt.Println("| concurrency | apply events/s | p50 | p99 | function CPU/event | bare SET ops/s | p50 | p99 | apply ÷ SET |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|")
	for _, c := range levels {
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			return err
		}
		a, err := applyRun(fn, bodies, c)
		if err != nil {
			return err
		}
		if err := rdb.FlushAll(ctx).Err(); err != nil {
			return err
		}
		b, err := setRun(ctx, rdb, values, c)
		if err != nil {
			return err
		}
		fmt.Printf("| %d | %.0f | %s | %s | %.1f µs | %.0f | %s | %s | %.2f |\n", c,
			a.eventsPerSec, us(a.p50), us(a.p99), float64(a.cpuPerEvent.Nanoseconds())/1000,
			b.eventsPerSec, us(b.p50), us(b.p99), a.eventsPerSec/b.eventsPerSec)
	}
	return nil
}

// waitRuns measures apply with WAIT (REDIS_WAIT_REPLICAS=1) against without, alternately, against rs
// with a replica.
func waitRuns(ctx context.Context, dir, bin string, rs *redisserver.Server, rdb *redis.Client, env []string, bodies [][]byte, levels []int) error {
	replica, err := redisserver.Start(ctx, redisserver.Options{Dir: filepath.Join(dir, "replica"), ReplicaOf: rs.Addr()})
	if err != nil {
		return err
	}
	defer replica.Stop()
	rc := redis.NewClient(replica.ClientOptions())
	defer rc.Close()
	for {
		info, err := rc.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	fport, err := freeport.Get()
	if err != nil {
		return err
	}
	fnw, err := functionproc.Start(ctx, bin, fport, append(slices.Clone(env), "REDIS_WAIT_REPLICAS=1", "REDIS_WAIT_TIMEOUT=500ms"), io.Discard)
	if err != nil {
		return err
	}
	defer fnw.Stop()
	fport, err = freeport.Get()
	if err != nil {
		return err
	}
	fn, err := functionproc.Start(ctx, bin, fport, env, io.Discard)
	if err != nil {
		return err
	}
	defer fn.Stop()
	fmt.Printf("apply with REDIS_WAIT_REPLICAS=1 vs without, a primary and one replica, %d events per run, %s, %d cores\n\n",
		len(bodies), runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU())
	fmt.Println("| concurrency | without WAIT events/s | p50 | p99 | CPU/event | with WAIT events/s | p50 | p99 | CPU/event | with ÷ without |")
	fmt.Println("|---|---|---|---|---|---|---|---|---|---|")
	for _, c := range levels {
		var r [2]result
		for i, f := range []*functionproc.Process{fn, fnw} {
			if err := rdb.FlushAll(ctx).Err(); err != nil {
				return err
			}
			if r[i], err = applyRun(f, bodies, c); err != nil {
				return err
			}
		}
		fmt.Printf("| %d | %.0f | %s | %s | %.1f µs | %.0f | %s | %s | %.1f µs | %.2f |\n", c,
			r[0].eventsPerSec, us(r[0].p50), us(r[0].p99), float64(r[0].cpuPerEvent.Nanoseconds())/1000,
			r[1].eventsPerSec, us(r[1].p50), us(r[1].p99), float64(r[1].cpuPerEvent.Nanoseconds())/1000,
			r[1].eventsPerSec/r[0].eventsPerSec)
	}
	return nil
}

// workload builds n push bodies over keys rows, and the stored value each would write (for the
// baseline).
func workload(n, keys int) (bodies, values [][]byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	live := make([]bool, keys)
	pos := uint64(4)
	bio := strings.Repeat("lorem ipsum dolor sit amet ", 34) // ~900 B of text
	for i := 0; i < n; i++ {
		k := rng.IntN(keys)
		pos += uint64(100 + rng.IntN(400))
		row := fmt.Sprintf(`{"id":%d,"email":"user%d@example.com","name":"User %d","balance":"%d.%02d","created_at":1700000000000000,"updated_at":%d,"bio":%q}`,
			k, k, k, rng.IntN(100000), rng.IntN(100), 1700000000000000+pos, bio[:850+rng.IntN(50)])
		op, before, after := "u", row, row
		switch r := rng.IntN(10); {
		case !live[k] || r < 2:
			op, before = "c", "null"
			live[k] = true
		case r == 9:
			op, after = "d", "null"
			live[k] = false
		}
		data := fmt.Sprintf(`{"before":%s,"after":%s,"source":{"version":"3.6.1.Final","connector":"mysql","name":"bench","ts_ms":%d,"snapshot":"false","db":"shop","table":"customers","server_id":1,"gtid":null,"file":"mysql-bin.000007","pos":%d,"row":0,"thread":7,"query":null},"op":"%s","ts_ms":%d}`,
			before, after, time.Now().UnixMilli(), pos, op, time.Now().UnixMilli())
		body, _ := push.Encode(&push.Message{ID: strconv.Itoa(i), Data: []byte(data), OrderingKey: fmt.Sprintf(`{"id":%d}`, k),
			PublishTime: time.Now(), Subscription: "projects/p/subscriptions/bench"})
		bodies = append(bodies, body)
		values = append(values, rowcache.EncodeRow(rowcache.Version{File: 7, Pos: pos}, []byte(row)))
	}
	return bodies, values
}

func applyRun(fn *functionproc.Process, bodies [][]byte, c int) (result, error) {
	tr := &http.Transport{MaxIdleConnsPerHost: c, MaxConnsPerHost: c}
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	defer tr.CloseIdleConnections()
	url := fn.URL()
	cpu0, err := proccpu.Time(fn.Pid())
	if err != nil {
		return result{}, err
	}
	var failed atomic.Int64
	r := drive(len(bodies), c, func(i int) {
		resp, err := client.Post(url, "application/json", bytes.NewReader(bodies[i]))
		if err != nil {
			failed.Add(1)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			failed.Add(1)
		}
	})
	cpu1, err := proccpu.Time(fn.Pid())
	if err != nil {
		return result{}, err
	}
	if f := failed.Load(); f > 0 {
		return result{}, fmt.Errorf("%d of %d deliveries failed", f, len(bodies))
	}
	r.cpuPerEvent = (cpu1 - cpu0) / time.Duration(len(bodies))
	return r, nil
}

func setRun(ctx context.Context, rdb *redis.Client, values [][]byte, c int) (result, error) {
	var failed atomic.Int64
	r := drive(len(values), c, func(i int) {
		if err := rdb.Set(ctx, "shop.customers:"+strconv.Itoa(i%10000), values[i], 0).Err(); err != nil {
			failed.Add(1)
		}
	})
	if f := failed.Load(); f > 0 {
		return result{}, fmt.Errorf("%d SETs failed", f)
	}
	return r, nil
}

// drive runs op for 0..n-1 on c workers and measures throughput and per-op latency.
func drive(n, c int, op func(i int)) result {
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < c; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				t := time.Now()
				op(i)
				lat[i] = time.Since(t)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(lat)
	return result{eventsPerSec: float64(n) / elapsed.Seconds(), p50: lat[n/2], p99: lat[n*99/100]}
}

func us(d time.Duration) string { return fmt.Sprintf("%.0f µs", float64(d.Nanoseconds())/1000) }

func avgLen(v [][]byte) int {
	t := 0
	for _, b := range v {
		t += len(b)
	}
	return t / len(v)
}
