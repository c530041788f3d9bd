package losswatch_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cloudsql-cache/cloudsql-cache/function/losswatch"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

const margin = time.Minute

// seeks records every seek.
type seeks struct {
	mu sync.Mutex
	to []time.Time
	// fail makes the next seeks fail.
	fail int
}

func (s *seeks) Seek(_ context.Context, t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail > 0 {
		s.fail--
		return os.ErrDeadlineExceeded
	}
	s.to = append(s.to, t)
	return nil
}

func (s *seeks) all() []time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Time(nil), s.to...)
}

type clock struct{ now time.Time }

func (c *clock) Now() time.Time                    { return c.now }
func (c *clock) advance(d time.Duration) time.Time { c.now = c.now.Add(d); return c.now }

type watch struct {
	t      *testing.T
	w      *losswatch.Watcher
	seeks  *seeks
	clock  *clock
	reader *sdkmetric.ManualReader
}

func newWatch(t *testing.T, o losswatch.Options) *watch {
	t.Helper()
	w := &watch{t: t, seeks: &seeks{}, clock: &clock{now: time.Now().Truncate(time.Millisecond)}, reader: sdkmetric.NewManualReader()}
	o.Seeker, o.Now, o.SeekMargin = w.seeks, w.clock.Now, margin
	o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(w.reader))
	var err error
	if w.w, err = losswatch.New(o); err != nil {
		t.Fatal(err)
	}
	return w
}

// check advances the clock by 5 s and checks.
func (w *watch) check() losswatch.Report {
	w.t.Helper()
	w.clock.advance(5 * time.Second)
	r, err := w.w.Check(context.Background())
	if err != nil {
		w.t.Fatal(err)
	}
	return r
}

func (w *watch) want(r losswatch.Report, kind losswatch.Kind) {
	w.t.Helper()
	if r.Kind != kind {
		w.t.Fatalf("check: %+v, want kind %q", r, kind)
	}
}

// counts sums each counter by its attributes, "name{k=v}".
func (w *watch) counts() map[string]int64 {
	w.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := w.reader.Collect(context.Background(), &rm); err != nil {
		w.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				k := m.Name + "{"
				for i, kv := range dp.Attributes.ToSlice() {
					if i > 0 {
						k += ","
					}
					k += string(kv.Key) + "=" + kv.Value.AsString()
				}
				out[k+"}"] += dp.Value
			}
		}
	}
	return out
}

func TestSameServerIsNoEvent(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	w := newWatch(t, losswatch.Options{Redis: srv.Client()})
	w.want(w.check(), losswatch.Started)
	for range 3 {
		w.want(w.check(), losswatch.None)
	}
	if s := w.seeks.all(); len(s) != 0 {
		t.Fatalf("seeks without an event: %v", s)
	}
}

// A restart without persistence empties Redis: the marker is gone, and the repair seeks back to when
// the data set began (the marker's time), less the margin.
func TestRestartWithoutPersistenceIsATotalLoss(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	w := newWatch(t, losswatch.Options{Redis: srv.Client()})
	started := w.check().Survived
	w.check()
	markerAt := w.clock.now.Add(-5 * time.Second) // the first check's time
	srv.Restart()
	r := w.check()
	w.want(r, losswatch.TotalLoss)
	if !started.IsZero() {
		t.Fatalf("a fresh Redis had a heartbeat: %v", started)
	}
	if want := markerAt.Add(-margin); !r.SeekTo.Equal(want) || !r.Repaired {
		t.Fatalf("repair: %+v, want a seek to %v", r, want)
	}
	if s := w.seeks.all(); len(s) != 1 {
		t.Fatalf("seeks: %v", s)
	}
	c := w.counts()
	if c[losswatch.MetricLosses+"{extent=total}"] != 1 || c[losswatch.MetricRestarts+"{kind=restart}"] != 1 ||
		c[losswatch.MetricRepairs+"{reason=total_loss,state=started}"] != 1 || c[losswatch.MetricRepairs+"{reason=total_loss,state=finished}"] != 1 {
		t.Fatalf("metrics: %v", c)
	}
	w.want(w.check(), losswatch.None) // and the new data set is watched from then on
}

// SIGKILL with an append-only file fsynced every second: Redis comes back with its data, or without its
// last writes (it postpones writing its buffer to the file while an fsync is slow, seen here on a loaded
// machine). Either way the repair seeks back past the heartbeat that survived: without a loss, writes
// after the last heartbeat could still be gone without the heartbeat moving.
func TestRestartFromAOFEverysecSeeksPastTheLastHeartbeat(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{Persistent: true, AppendFsync: "everysec"})
	w := newWatch(t, losswatch.Options{Redis: srv.Client()})
	w.check()
	before := w.clock.now
	w.check()
	hb := w.clock.now
	srv.Restart() // SIGKILL, then a start from the append-only file
	r := w.check()
	switch r.Kind {
	case losswatch.Restart:
		if !r.Survived.Equal(hb) {
			t.Fatalf("a restart without a loss: %+v, want the heartbeat %v to have survived", r, hb)
		}
	case losswatch.PartialLoss:
		if r.Survived.After(before) {
			t.Fatalf("a partial loss: %+v, want an older heartbeat than %v to have survived", r, hb)
		}
		t.Logf("the restart lost the last writes: %+v", r)
	default:
		t.Fatalf("after the restart: %+v, want a restart or a partial loss", r)
	}
	if !r.SeekTo.Equal(r.Survived.Add(-margin)) || !r.Repaired {
		t.Fatalf("after the restart: %+v, want a seek to %v", r, r.Survived.Add(-margin))
	}
}

// Redis restarted from an older append-only file (a backup, or a crash of the machine that lost what
// was not fsynced) holds an older heartbeat: a partial loss, repaired from that heartbeat.
func TestRestartFromAnOlderAOFIsAPartialLoss(t *testing.T) {
	dir := t.TempDir()
	srv := redisserver.StartForTest(t, redisserver.Options{Dir: dir, Persistent: true})
	w := newWatch(t, losswatch.Options{Redis: srv.Client()})
	w.check()
	w.check()
	kept := w.clock.now
	backup := filepath.Join(t.TempDir(), "aof")
	if out, err := exec.Command("cp", "-a", filepath.Join(dir, "appendonlydir"), backup).CombinedOutput(); err != nil {
		t.Fatalf("copy the append-only file: %v %s", err, out)
	}
	w.check()
	w.check()
	srv.Kill()
	if err := os.RemoveAll(filepath.Join(dir, "appendonlydir")); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", backup, filepath.Join(dir, "appendonlydir")).CombinedOutput(); err != nil {
		t.Fatalf("restore the append-only file: %v %s", err, out)
	}
	srv.Restart()
	r := w.check()
	w.want(r, losswatch.PartialLoss)
	if !r.Survived.Equal(kept) || !r.SeekTo.Equal(kept.Add(-margin)) || !r.Repaired {
		t.Fatalf("after the restore: %+v, want the heartbeat %v and a seek to %v", r, kept, kept.Add(-margin))
	}
	if c := w.counts(); c[losswatch.MetricLosses+"{extent=partial}"] != 1 {
		t.Fatalf("metrics: %v", c)
	}
}

// A failover to a replica: the promoted replica continues the old primary's replication history.
// With the heartbeat waited for (REDIS_WAIT_REPLICAS), a heartbeat the replica never got does not
// count, so only a failover is seen; without, the replica's older heartbeat is a partial loss.
func TestFailover(t *testing.T) {
	for _, waited := range []bool{true, false} {
		t.Run(map[bool]string{true: "heartbeat waited for", false: "heartbeat not waited for"}[waited], func(t *testing.T) {
			primary := redisserver.StartForTest(t, redisserver.Options{})
			link := primary.StartProxyForTest()
			replica := redisserver.StartForTest(t, redisserver.Options{ReplicaOf: link.Addr()})
			replica.WaitLinked()
			endpoint := primary.StartProxyForTest()
			rdb := redisClient(t, endpoint.Addr())
			o := losswatch.Options{Redis: rdb}
			if waited {
				o.Replicated = rowcache.NewStore(rdb, 0).WithReplicaWait(1, 200*time.Millisecond).Replicated
			}
			w := newWatch(t, o)
			w.check()
			// Until the replica has the heartbeat for sure.
			deadline := time.Now().Add(10 * time.Second)
			for {
				w.check()
				v, _ := replica.Client().Get(context.Background(), losswatch.HeartbeatKey).Int64()
				if v == w.clock.now.UnixMilli() {
					break
				}
				if time.Now().After(deadline) {
					t.Fatal("the replica never got the heartbeat")
				}
			}
			kept := w.clock.now
			link.Hold()
			w.check() // a heartbeat the replica never gets
			primary.Kill()
			link.Cut()
			replica.Promote()
			endpoint.SetTarget(replica.Addr())
			r := w.check()
			want := losswatch.PartialLoss
			if waited {
				want = losswatch.Failover
			}
			w.want(r, want)
			if !r.Survived.Equal(kept) || !r.SeekTo.Equal(kept.Add(-margin)) {
				t.Fatalf("after the failover: %+v, want the heartbeat %v and a seek to %v", r, kept, kept.Add(-margin))
			}
			if c := w.counts(); c[losswatch.MetricRestarts+"{kind=failover}"] != 1 {
				t.Fatalf("metrics: %v", c)
			}
		})
	}
}

// Every instance of the function watches; one repairs each event. A failed seek is retried.
func TestOneRepairPerEventAndRetries(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	a := newWatch(t, losswatch.Options{Redis: srv.Client()})
	b := newWatch(t, losswatch.Options{Redis: srv.Client()})
	a.check()
	b.check()
	srv.Restart()
	a.seeks.fail = 1
	if r := a.check(); r.Kind != losswatch.TotalLoss || r.Repaired {
		t.Fatalf("a: %+v, want a total loss whose seek failed", r)
	}
	if r := b.check(); r.Kind != losswatch.TotalLoss || r.Repaired {
		t.Fatalf("b: %+v, want a total loss left to a", r)
	}
	if r := a.check(); !r.Repaired {
		t.Fatalf("a's retry: %+v", r)
	}
	if n := len(a.seeks.all()) + len(b.seeks.all()); n != 1 {
		t.Fatalf("%d seeks for one event", n)
	}
	if c := a.counts(); c[losswatch.MetricRepairs+"{reason=total_loss,state=failed}"] != 1 || c[losswatch.MetricRepairs+"{reason=total_loss,state=finished}"] != 1 {
		t.Fatalf("metrics: %v", c)
	}
}

func redisClient(t *testing.T, addr string) *redis.Client {
	c := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, ReadTimeout: time.Second})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// A loss that began before the oldest message Pub/Sub retains (REPAIR_SEEK_MAX, the topics' retention)
// cannot be replayed whole: the seek goes to the oldest retained time, and the watcher says so
// (state beyond_retention) instead of a repair that looks complete. Both ways there: a snapshot older
// than the retention (the heartbeat went back further), and a loss within it whose seek failed until
// the retention had passed it.
func TestLossBeyondTheRetentionIsReported(t *testing.T) {
	const retention = time.Hour
	beyond := losswatch.MetricRepairs + "{reason=partial_loss,state=" + losswatch.StateBeyondRetention + "}"
	t.Run("within the retention", func(t *testing.T) {
		srv := redisserver.StartForTest(t, redisserver.Options{})
		w := newWatch(t, losswatch.Options{Redis: srv.Client(), SeekMax: retention})
		w.check()
		kept := w.clock.now.Add(-retention / 2)
		if err := srv.Client().Set(context.Background(), losswatch.HeartbeatKey, kept.UnixMilli(), 0).Err(); err != nil {
			t.Fatal(err)
		}
		r := w.check()
		w.want(r, losswatch.PartialLoss)
		if !r.Repaired || r.BeyondRetention || !r.SeekTo.Equal(kept.Add(-margin)) {
			t.Fatalf("%+v, want a whole repair from %v", r, kept.Add(-margin))
		}
		if c := w.counts(); c[beyond] != 0 {
			t.Fatalf("metrics: %v", c)
		}
	})
	t.Run("a snapshot older than the retention", func(t *testing.T) {
		srv := redisserver.StartForTest(t, redisserver.Options{})
		w := newWatch(t, losswatch.Options{Redis: srv.Client(), SeekMax: retention})
		w.check()
		kept := w.clock.now.Add(-2 * retention)
		if err := srv.Client().Set(context.Background(), losswatch.HeartbeatKey, kept.UnixMilli(), 0).Err(); err != nil {
			t.Fatal(err)
		}
		r := w.check()
		w.want(r, losswatch.PartialLoss)
		if oldest := w.clock.now.Add(-retention); !r.Repaired || !r.BeyondRetention || !r.SeekTo.Equal(oldest) {
			t.Fatalf("%+v, want a seek to the oldest retained time %v, reported beyond the retention", r, oldest)
		}
		if c := w.counts(); c[beyond] != 1 || c[losswatch.MetricRepairs+"{reason=partial_loss,state=finished}"] != 1 {
			t.Fatalf("metrics: %v", c)
		}
	})
	t.Run("seeks failing until the retention passed the loss", func(t *testing.T) {
		srv := redisserver.StartForTest(t, redisserver.Options{})
		w := newWatch(t, losswatch.Options{Redis: srv.Client(), SeekMax: retention})
		w.check()
		kept := w.clock.now.Add(-10 * time.Minute)
		if err := srv.Client().Set(context.Background(), losswatch.HeartbeatKey, kept.UnixMilli(), 0).Err(); err != nil {
			t.Fatal(err)
		}
		w.seeks.fail = 1
		if r := w.check(); r.Kind != losswatch.PartialLoss || r.Repaired || r.BeyondRetention {
			t.Fatalf("%+v, want a partial loss whose seek failed, within the retention", r)
		}
		w.clock.advance(retention)
		r := w.check()
		if oldest := w.clock.now.Add(-retention); !r.Repaired || !r.BeyondRetention || !r.SeekTo.Equal(oldest) {
			t.Fatalf("the retry: %+v, want a seek to %v reported beyond the retention", r, oldest)
		}
		if s := w.seeks.all(); len(s) != 1 || !s[0].Equal(r.SeekTo) {
			t.Fatalf("seeks: %v", s)
		}
		if c := w.counts(); c[beyond] != 1 || c[losswatch.MetricRepairs+"{reason=partial_loss,state=failed}"] != 1 {
			t.Fatalf("metrics: %v", c)
		}
	})
}
