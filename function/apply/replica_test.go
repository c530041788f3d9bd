package apply_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/function/apply"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// failoverRun is a steady apply load through the handler against Memorystore's shape: a primary and
// an asynchronous replica behind one endpoint (a proxy). Each key's changes are delivered in order and
// redelivered until acknowledged, as a push subscription does; acked holds the newest acknowledged
// position of each key.
type failoverRun struct {
	t        *testing.T
	e        *env
	endpoint *redisserver.Proxy
	primary  *redisserver.TestServer
	replica  *redisserver.TestServer
	link     *redisserver.Proxy

	mu    sync.Mutex
	acked map[int]uint64
	pos   atomic.Uint64
	total atomic.Int64
}

func startFailoverRun(t *testing.T, waitReplicas int) *failoverRun {
	t.Helper()
	r := &failoverRun{t: t, acked: map[int]uint64{}}
	r.primary = redisserver.StartForTest(t, redisserver.Options{})
	r.link = r.primary.StartProxyForTest()
	r.replica = redisserver.StartForTest(t, redisserver.Options{ReplicaOf: r.link.Addr()})
	r.replica.WaitLinked()
	r.endpoint = r.primary.StartProxyForTest()
	rdb := redis.NewClient(&redis.Options{Addr: r.endpoint.Addr(), ReadTimeout: time.Second, WriteTimeout: time.Second, DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	r.e = newEnv(t, func(_ *tablepolicy.Config, o *apply.Options) {
		o.Store = rowcache.NewStore(rdb, time.Hour).WithReplicaWait(waitReplicas, 200*time.Millisecond)
	})
	return r
}

// load runs workers until stop is closed, each delivering changes to keys of its own.
func (r *failoverRun) load(stop <-chan struct{}, workers, keysEach int) *sync.WaitGroup {
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				for k := w * keysEach; k < (w+1)*keysEach; k++ {
					select {
					case <-stop:
						return
					default:
					}
					pos := r.pos.Add(1)
					ev := event("app", "t", 'u', 1, pos, 0, fmt.Sprintf(`{"id":%d}`, k), fmt.Sprintf(`{"id":%d,"n":%d}`, k, pos))
					for {
						code, _ := r.e.deliver(ev, fmt.Sprintf(`{"id":%d}`, k))
						if code == http.StatusOK {
							break
						}
						select {
						case <-stop:
							return // never acknowledged: Pub/Sub would still hold it
						case <-time.After(10 * time.Millisecond):
						}
					}
					r.mu.Lock()
					r.acked[k] = pos
					r.mu.Unlock()
					r.total.Add(1)
				}
			}
		}()
	}
	return &wg
}

func (r *failoverRun) waitAcks(n int64) {
	r.t.Helper()
	start := r.total.Load()
	deadline := time.Now().Add(30 * time.Second)
	for r.total.Load() < start+n {
		if time.Now().After(deadline) {
			r.t.Fatalf("fewer than %d acknowledgements in 30 s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// failover: the link to the replica holds what the primary sends, the primary crashes, the replica
// is promoted and the endpoint moves to it; a new replica replaces the lost node.
func (r *failoverRun) failover() {
	r.primary.Kill()
	r.link.Cut()
	r.replica.Promote()
	r.endpoint.SetTarget(r.replica.Addr())
	r.primary, r.replica = r.replica, redisserver.StartForTest(r.t, redisserver.Options{ReplicaOf: r.replica.Addr()})
	r.replica.WaitLinked()
}

// missing lists the keys whose newest acknowledged change the primary does not hold.
func (r *failoverRun) missing() []string {
	r.t.Helper()
	rdb := r.primary.Client()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for k, pos := range r.acked {
		e, found, err := rowcache.Get(context.Background(), rdb, fmt.Sprintf("app.t:%d", k))
		if err != nil {
			r.t.Fatal(err)
		}
		if !found || e.Version.Pos < pos {
			out = append(out, fmt.Sprintf("app.t:%d holds %v, acknowledged pos %d", k, e.Version, pos))
		}
	}
	return out
}

func TestFailoverUnderLoad(t *testing.T) {
	t.Run("REDIS_WAIT_REPLICAS=0 loses acknowledged changes", func(t *testing.T) {
		r := startFailoverRun(t, 0)
		stop := make(chan struct{})
		wg := r.load(stop, 4, 25)
		r.waitAcks(200)
		r.link.Hold()
		r.waitAcks(50) // acknowledged while no replica receives anything
		// The rows go quiet (a later change would hide the loss until the row's next change), then
		// the failover.
		close(stop)
		wg.Wait()
		r.failover()
		if m := r.missing(); len(m) == 0 {
			t.Fatal("no acknowledged change was lost: the test does not model the failover's loss")
		}
	})
	t.Run("REDIS_WAIT_REPLICAS=1 loses none", func(t *testing.T) {
		r := startFailoverRun(t, 1)
		stop := make(chan struct{})
		wg := r.load(stop, 4, 25)
		r.waitAcks(200)
		r.link.Hold()
		time.Sleep(300 * time.Millisecond) // deliveries keep coming, and are answered 503
		held := r.total.Load()
		r.failover()
		r.waitAcks(200)
		close(stop)
		wg.Wait()
		if m := r.missing(); len(m) > 0 {
			t.Fatalf("%d acknowledged changes lost in the failover, e.g. %s", len(m), m[0])
		}
		// And the one more failover right after: every acknowledged change is on the replica too.
		r.failover()
		if m := r.missing(); len(m) > 0 {
			t.Fatalf("%d acknowledged changes lost in the second failover, e.g. %s", len(m), m[0])
		}
		c := r.e.counts()
		if c["retry/replica_wait"] == 0 {
			t.Fatalf("no retry with reason replica_wait counted: %v", c)
		}
		t.Logf("%d acknowledged, %d before the failover; outcomes %v", r.total.Load(), held, c)
	})
}

// A truncate's floor and sweep are written outside the pipelined script: the handler waits for them
// before acknowledging, as for a row.
func TestFloorIsAcknowledgedOnlyOnceReplicated(t *testing.T) {
	r := startFailoverRun(t, 1)
	// As Pub/Sub would, the first change is delivered again until acknowledged: on a loaded machine the
	// replica may confirm later than the wait's timeout with its link up. Its retry finds it stored.
	if body := deliverUntilAcked(t, r.e, event("app", "t", 'c', 1, 10, 0, "", `{"id":1}`), `{"id":1}`); body != "applied" && body != "duplicate" {
		t.Fatalf("the first change: acknowledged as %q, want applied (or duplicate after a retry)", body)
	}
	trunc := []byte(`{"source":{"version":"3.6.1.Final","connector":"mysql","name":"srv","ts_ms":1,"snapshot":"false","db":"app","table":"t","server_id":1,"file":"mysql-bin.000001","pos":500,"row":0},"op":"t","ts_ms":2}`)
	r.link.Hold()
	if code, body := r.e.deliver(trunc, "default"); code != http.StatusServiceUnavailable {
		t.Fatalf("truncate with the replica cut off: %d %q, want 503", code, body)
	}
	r.link.Release()
	deliverUntilAcked(t, r.e, trunc, "default")
	if c := r.e.counts(); c["retry/replica_wait"] == 0 {
		t.Fatalf("counts: %v", c)
	}
}

// deliverUntilAcked delivers data again, as Pub/Sub redelivers, until it is answered 200 (at most 30 s)
// and returns the outcome it was acknowledged with.
func deliverUntilAcked(t *testing.T, e *env, data []byte, key string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, body := e.deliver(data, key)
		if code == http.StatusOK {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery of %s never acknowledged: %d %q", truncate(string(data)), code, body)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
