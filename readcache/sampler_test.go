package readcache

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// The sampler's tests play the function by hand: a change is committed in MariaDB, and written to
// Redis (with the version Debezium would give it: the binlog position its events start at) when the
// test decides, so the lag is whatever the test makes it.

// binlogEnd is MariaDB's binlog position now: where the next transaction's events will start.
func binlogEnd(t *testing.T, db *sql.DB) rowcache.Version {
	t.Helper()
	var file, pos, doDB, ignoreDB string
	if err := db.QueryRow("SHOW MASTER STATUS").Scan(&file, &pos, &doDB, &ignoreDB); err != nil {
		t.Fatal(err)
	}
	seq, err := strconv.ParseUint(file[strings.LastIndexByte(file, '.')+1:], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	p, err := strconv.ParseUint(pos, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return rowcache.Version{File: seq, Pos: p}
}

// commit runs q and returns the version of the change it made, and when it was sent and returned.
func commit(t *testing.T, db *sql.DB, q string) (v rowcache.Version, sent, done time.Time) {
	t.Helper()
	v = binlogEnd(t, db)
	sent = time.Now()
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
	return v, sent, time.Now()
}

func (f *fixture) sampler(c *Client, mod func(*SamplerOptions)) *Sampler {
	f.t.Helper()
	o := SamplerOptions{Fraction: 1, MaxPerSecond: 1e6, MaxWait: 5 * time.Second}
	if mod != nil {
		mod(&o)
	}
	s, err := NewSampler(context.Background(), c, o)
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { _ = s.Close() })
	// Sample only once the history is complete, or the first reads are skipped.
	waitFor(f.t, "the sampler's subscription", func() bool { return s.hist.covers(time.Now()) })
	return s
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func judged(t *testing.T, s *Sampler, n int64) SamplerStats {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d judged reads", n), func() bool { return s.Stats().Judged()+s.Stats().Skipped >= n })
	st := s.Stats()
	if st.Skipped > 0 || st.Dropped > 0 {
		t.Fatalf("skipped %d, dropped %d: %+v", st.Skipped, st.Dropped, st)
	}
	return st
}

const ann = `{"id":1,"name":"Ann","balance":"12.30"}`

// before is a version of a change committed before now (the binlog's end is where the next change
// will start).
func before(t *testing.T, db *sql.DB) rowcache.Version {
	t.Helper()
	v := binlogEnd(t, db)
	v.Pos--
	return v
}

func TestSamplerCurrentRead(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, before(t, f.db), []byte(ann)); err != nil {
		t.Fatal(err)
	}
	s := f.sampler(c, nil)
	if row, err := c.Get(ctx, "shop.customers", 1); err != nil || row.From != FromRedis {
		t.Fatalf("%v %v", row.From, err)
	}
	if _, err := c.Get(ctx, "shop.customers", 2); err != nil { // a miss: from the database
		t.Fatal(err)
	}
	st := judged(t, s, 2)
	if st.Current != 2 || st.Stale != 0 || st.Unresolved != 0 {
		t.Fatalf("%+v, want 2 current", st)
	}
}

// The row changes in the database; the function applies the change 500 ms later; a read in between
// serves the old row: stale by about the time since the commit.
func TestSamplerStaleReadByLag(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, before(t, f.db), []byte(ann)); err != nil {
		t.Fatal(err)
	}
	s := f.sampler(c, nil)
	v2, sent, done := commit(t, f.db, "UPDATE customers SET name = 'Ann 2' WHERE id = 1")
	time.Sleep(500 * time.Millisecond) // the replication lag
	start := time.Now()
	if row, err := c.Get(ctx, "shop.customers", 1); err != nil || string(row.JSON) != ann {
		t.Fatalf("%s %v", row.JSON, err)
	}
	// The sampler waits for the change that explains the difference.
	waitFor(t, "the read to wait", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.pending) == 1 })
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, v2, []byte(`{"id":1,"name":"Ann 2","balance":"12.30"}`)); err != nil {
		t.Fatal(err)
	}
	st := judged(t, s, 1)
	if st.Stale != 1 {
		t.Fatalf("%+v, want 1 stale", st)
	}
	// The commit happened between sent and done; the sampler dates it no later than the commit and
	// at most one clock reading earlier. The bounds below are from the test's own clock readings.
	lo, hi := ms(start.Sub(done)), ms(start.Sub(sent))+1000
	if got := st.Staleness.Max; got < lo || got > hi {
		t.Fatalf("staleness %.1f ms, want within [%.1f, %.1f]", got, lo, hi)
	}
	if st.Within(100*time.Millisecond) != 0 || st.StaleOver(100*time.Millisecond) != 1 {
		t.Fatalf("within 100 ms: %v, stale over 100 ms: %d", st.Within(100*time.Millisecond), st.StaleOver(100*time.Millisecond))
	}
	t.Logf("stale by %.1f ms (commit returned %.1f ms before the read)", st.Staleness.Max, lo)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// The row changes after the read started: the read was current, whether the function applied the
// change before the sampler looked (the history decides) or after (the database differs; the sampler
// waits for the change, then finds it committed after the read).
func TestSamplerChangeAfterTheReadIsCurrent(t *testing.T) {
	for _, appliedFirst := range []bool{true, false} {
		t.Run(fmt.Sprintf("applied_before_the_check=%v", appliedFirst), func(t *testing.T) {
			f := newFixture(t)
			c := f.client(nil)
			ctx := context.Background()
			if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, before(t, f.db), []byte(ann)); err != nil {
				t.Fatal(err)
			}
			s := f.sampler(c, nil)
			var v2 rowcache.Version
			apply := func() {
				if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, v2, []byte(`{"id":1,"name":"Ann 2","balance":"12.30"}`)); err != nil {
					t.Error(err)
				}
			}
			s.beforeJudge = func(observation) {
				v2, _, _ = commit(t, f.db, "UPDATE customers SET name = 'Ann 2' WHERE id = 1")
				if appliedFirst {
					apply()
					waitFor(t, "the change in the history", func() bool {
						_, ok := s.hist.superseding("shop.customers:1", time.Time{}, rowcache.Version{})
						return ok
					})
				}
			}
			if row, err := c.Get(ctx, "shop.customers", 1); err != nil || string(row.JSON) != ann {
				t.Fatalf("%s %v", row.JSON, err)
			}
			if !appliedFirst {
				waitFor(t, "the read to wait", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.pending) == 1 })
				apply()
			}
			if st := judged(t, s, 1); st.Current != 1 {
				t.Fatalf("%+v, want 1 current", st)
			}
		})
	}
}

// A difference no applied change explains is unresolved once MaxWait is over: the cache did not
// catch up (here: the change is never applied).
func TestSamplerUnresolved(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, before(t, f.db), []byte(ann)); err != nil {
		t.Fatal(err)
	}
	s := f.sampler(c, func(o *SamplerOptions) { o.MaxWait = 300 * time.Millisecond })
	commit(t, f.db, "UPDATE customers SET name = 'lost' WHERE id = 1")
	if _, err := c.Get(ctx, "shop.customers", 1); err != nil {
		t.Fatal(err)
	}
	if st := judged(t, s, 1); st.Unresolved != 1 || st.ConsistentFraction() != 0 || st.StaleOver(time.Second) != 1 {
		t.Fatalf("%+v, want 1 unresolved", st)
	}
}

// A value read from Redis before a change the function applied, served later (as the L1 does while
// its invalidations are late), is stale by the time since that change committed.
func TestSamplerValueServedAfterItsChangeWasApplied(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	v1 := before(t, f.db)
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, v1, []byte(ann)); err != nil {
		t.Fatal(err)
	}
	s := f.sampler(c, nil)
	fetched := time.Now()
	v2, sent, done := commit(t, f.db, "UPDATE customers SET name = 'Ann 2' WHERE id = 1")
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, v2, []byte(`{"id":1,"name":"Ann 2","balance":"12.30"}`)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the change in the history", func() bool { _, ok := s.hist.superseding("shop.customers:1", fetched, v1); return ok })
	time.Sleep(200 * time.Millisecond)
	tbl, meta, key, err := c.locate(ctx, "shop.customers", []any{1})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	s.offer([]any{1}, Row{JSON: []byte(ann), Version: v1, From: FromL1}, served{t: tbl, meta: meta, key: key, version: v1, from: FromL1, fetched: fetched}, nil, start, start)
	st := judged(t, s, 1)
	if st.Stale != 1 {
		t.Fatalf("%+v, want 1 stale", st)
	}
	if lo, hi := ms(start.Sub(done)), ms(start.Sub(sent))+1000; st.Staleness.Max < lo || st.Staleness.Max > hi {
		t.Fatalf("staleness %.1f ms, want within [%.1f, %.1f]", st.Staleness.Max, lo, hi)
	}
}

// Two changes of one key applied before the sampler read the first one's version: that version is
// unknown (between its neighbours'), not taken for the second's.
func TestHistoryMarksAnOverwrittenVersionUnknown(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	h := &history{rdb: f.rdb, timeout: time.Second, keep: time.Minute, changes: map[string][]*change{}}
	v1, v2, v3 := rowcache.Version{Pos: 1}, rowcache.Version{Pos: 2}, rowcache.Version{Pos: 3}
	if _, err := f.store.Upsert(ctx, "k", floorKey, v1, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	h.read(ctx, []heard{{"k", time.Unix(1, 0)}}) // v1, read in time
	if _, err := f.store.Upsert(ctx, "k", floorKey, v2, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.Upsert(ctx, "k", floorKey, v3, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	h.read(ctx, []heard{{"k", time.Unix(2, 0)}, {"k", time.Unix(3, 0)}}) // v2's and v3's, both read as v3
	got := h.changes["k"]
	if len(got) != 3 || !got[0].known || got[0].version != v1 || got[1].known || !got[2].known || got[2].version != v3 {
		t.Fatalf("history %+v %+v %+v", got[0], got[1], got[2])
	}
	ch, ok := h.superseding("k", time.Unix(1, 500), v1)
	if !ok || ch.known || ch.next == nil || ch.next.version != v3 {
		t.Fatalf("superseding v1: %+v %v", ch, ok)
	}
}

// The sampler's metrics: reads by result and source, and the staleness histogram.
func TestSamplerMetrics(t *testing.T) {
	f := newFixture(t)
	c := f.client(nil)
	ctx := context.Background()
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, before(t, f.db), []byte(ann)); err != nil {
		t.Fatal(err)
	}
	s := f.sampler(c, nil)
	for i := 0; i < 3; i++ {
		if _, err := c.Get(ctx, "shop.customers", 1); err != nil {
			t.Fatal(err)
		}
	}
	judged(t, s, 3)
	var rm metricdata.ResourceMetrics
	if err := f.reader.Collect(ctx, &rm); err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			switch d := m.Data.(type) {
			case metricdata.Sum[int64]:
				if m.Name == "cloudsql_cache.read.consistency" {
					for _, dp := range d.DataPoints {
						r, _ := dp.Attributes.Value("result")
						src, _ := dp.Attributes.Value("source")
						if r.AsString() == "current" && src.AsString() == "redis" && dp.Value == 3 {
							found[m.Name] = true
						}
					}
				}
			case metricdata.Histogram[float64]:
				if m.Name == "cloudsql_cache.read.staleness" && len(d.DataPoints) == 1 && d.DataPoints[0].Count == 3 && d.DataPoints[0].Sum == 0 {
					found[m.Name] = true
				}
			case metricdata.Gauge[float64]:
				if m.Name == "cloudsql_cache.read.staleness.max" {
					found[m.Name] = true
				}
			}
		}
	}
	for _, name := range []string{"cloudsql_cache.read.consistency", "cloudsql_cache.read.staleness", "cloudsql_cache.read.staleness.max"} {
		if !found[name] {
			t.Errorf("%s not recorded as expected: %+v", name, rm.ScopeMetrics)
		}
	}
}

// Without the right to read the binlog position the sampler refuses to start, and says what is
// missing.
func TestSamplerNeedsTheBinlogPosition(t *testing.T) {
	f := newFixture(t)
	for _, q := range []string{
		"CREATE USER 'reader'@'%' IDENTIFIED BY 'pw'",
		"GRANT SELECT ON shop.* TO 'reader'@'%'",
	} {
		if _, err := f.db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	var port int
	if err := f.db.QueryRow("SELECT @@port").Scan(&port); err != nil {
		t.Fatal(err)
	}
	dsn, err := CheckDSN(fmt.Sprintf("reader:pw@tcp(127.0.0.1:%d)/shop", port))
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c := f.client(nil)
	_, err = NewSampler(context.Background(), c, SamplerOptions{DB: db})
	if err == nil || !strings.Contains(err.Error(), "BINLOG MONITOR") {
		t.Fatalf("err = %v, want one naming the privilege", err)
	}
}

// A read that joins a query another read began (concurrent misses share one) gets the row as of that
// query: if a change committed in between, the read is stale, and the sampler says so. The first read,
// whose own query it was, is current.
func TestSamplerJoinedQueryMissesALaterCommit(t *testing.T) {
	f := newFixture(t)
	c := f.client(func(o *Options) { o.Miss = MissNoFill })
	ctx := context.Background()
	s := f.sampler(c, nil)
	var joined atomic.Int64
	c.joined = func(string) { joined.Add(1) }
	var v2 rowcache.Version
	var sent, done, secondStart time.Time
	second := make(chan error, 1)
	c.afterLoad = func(string) {
		c.afterLoad = nil
		v2, sent, done = commit(t, f.db, "UPDATE customers SET name = 'Ann 2' WHERE id = 1")
		time.Sleep(300 * time.Millisecond)
		secondStart = time.Now()
		go func() {
			row, err := c.Get(ctx, "shop.customers", 1)
			if err == nil && string(row.JSON) != ann {
				err = fmt.Errorf("the joined read served %s, want the shared query's row", row.JSON)
			}
			second <- err
		}()
		waitFor(t, "the second read to join", func() bool { return joined.Load() >= 2 }) // the first, then it
	}
	if row, err := c.Get(ctx, "shop.customers", 1); err != nil || string(row.JSON) != ann {
		t.Fatalf("%s %v", row.JSON, err)
	}
	if err := <-second; err != nil {
		t.Fatal(err)
	}
	if joined.Load() != 2 {
		t.Fatalf("%d callers joined the query, want 2", joined.Load())
	}
	waitFor(t, "the joined read to wait", func() bool { s.mu.Lock(); defer s.mu.Unlock(); return len(s.pending) == 1 })
	if _, err := f.store.Upsert(ctx, "shop.customers:1", floorKey, v2, []byte(`{"id":1,"name":"Ann 2","balance":"12.30"}`)); err != nil {
		t.Fatal(err)
	}
	st := judged(t, s, 2)
	if st.Current != 1 || st.Stale != 1 {
		t.Fatalf("%+v, want the first read current and the joined one stale", st)
	}
	if lo, hi := ms(secondStart.Sub(done)), ms(secondStart.Sub(sent))+1000; st.Staleness.Max < lo || st.Staleness.Max > hi {
		t.Fatalf("staleness %.1f ms, want within [%.1f, %.1f]", st.Staleness.Max, lo, hi)
	}
}
