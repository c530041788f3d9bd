package rowcache_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

const floor = "cloudsql-cache:truncate:db.t"

func v(file, pos, row uint64) rowcache.Version {
	return rowcache.Version{File: file, Pos: pos, Row: row}
}

func TestApplyRules(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	st := rowcache.NewStore(rdb, time.Hour)
	ctx := context.Background()

	steps := []struct {
		name    string
		del     bool
		ver     rowcache.Version
		row     string
		want    rowcache.Result
		wantRow string // "" = tombstone
	}{
		{"insert", false, v(3, 154, 0), `{"id":1,"n":"a"}`, rowcache.Applied, `{"id":1,"n":"a"}`},
		{"duplicate", false, v(3, 154, 0), `{"id":1,"n":"a"}`, rowcache.Duplicate, `{"id":1,"n":"a"}`},
		{"update", false, v(3, 200, 1), `{"id":1,"n":"b"}`, rowcache.Applied, `{"id":1,"n":"b"}`},
		{"older update is stale", false, v(3, 200, 0), `{"id":1,"n":"old"}`, rowcache.Stale, `{"id":1,"n":"b"}`},
		{"older file is stale", false, v(2, 9999, 0), `{"id":1,"n":"old"}`, rowcache.Stale, `{"id":1,"n":"b"}`},
		{"delete", true, v(4, 10, 0), "", rowcache.Applied, ""},
		{"late insert after delete is stale", false, v(3, 900, 0), `{"id":1,"n":"zombie"}`, rowcache.Stale, ""},
		{"duplicate delete", true, v(4, 10, 0), "", rowcache.Duplicate, ""},
		{"reinsert", false, v(4, 20, 0), `{"id":1,"n":"c"}`, rowcache.Applied, `{"id":1,"n":"c"}`},
		{"new epoch wins over larger positions", false, rowcache.Version{Epoch: 1, File: 1, Pos: 4}, `{"id":1,"n":"e1"}`, rowcache.Applied, `{"id":1,"n":"e1"}`},
		{"old epoch is stale", false, v(99, 99, 99), `{"id":1,"n":"e0"}`, rowcache.Stale, `{"id":1,"n":"e1"}`},
	}
	for _, s := range steps {
		var got rowcache.Result
		var err error
		if s.del {
			got, err = st.Delete(ctx, "db.t:1", floor, s.ver)
		} else {
			got, err = st.Upsert(ctx, "db.t:1", floor, s.ver, []byte(s.row))
		}
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if got != s.want {
			t.Fatalf("%s: result %v, want %v", s.name, got, s.want)
		}
		e, found, err := rowcache.Get(ctx, rdb, "db.t:1")
		if err != nil || !found {
			t.Fatalf("%s: get: found=%v err=%v", s.name, found, err)
		}
		if string(e.Row) != s.wantRow {
			t.Fatalf("%s: stored row %q, want %q", s.name, e.Row, s.wantRow)
		}
	}
}

func TestTombstoneTTLAndResurrectionClearsIt(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, 90*time.Second)
	if _, err := st.Delete(ctx, "k", floor, v(1, 1, 0)); err != nil {
		t.Fatal(err)
	}
	ttl := rdb.PTTL(ctx, "k").Val()
	if ttl <= 80*time.Second || ttl > 90*time.Second {
		t.Fatalf("tombstone TTL %v, want about 90s", ttl)
	}
	if _, err := st.Upsert(ctx, "k", floor, v(1, 2, 0), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, "k").Val(); ttl != -1 {
		t.Fatalf("a live row must not expire; PTTL=%v", ttl)
	}
	forever := rowcache.NewStore(rdb, 0)
	if _, err := forever.Delete(ctx, "k", floor, v(1, 3, 0)); err != nil {
		t.Fatal(err)
	}
	if ttl := rdb.PTTL(ctx, "k").Val(); ttl != -1 {
		t.Fatalf("TTL 0 means keep tombstones; PTTL=%v", ttl)
	}
}

// The script compares versions component by component on decimal strings; this holds it to
// Version.Compare on random versions, including components beyond 2^53 where doubles lose precision.
func TestScriptOrderMatchesCompare(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, 0)
	rng := rand.New(rand.NewPCG(1, 2))
	comp := func() uint64 {
		switch rng.IntN(5) {
		case 0:
			return 0
		case 1:
			return uint64(rng.IntN(3))
		case 2:
			return 1<<53 + uint64(rng.IntN(3))
		case 3:
			return math.MaxUint64 - uint64(rng.IntN(3))
		}
		return rng.Uint64N(1 << 40)
	}
	rv := func() rowcache.Version {
		return rowcache.Version{Epoch: uint64(rng.IntN(2)), Column: comp(), File: comp(), Pos: comp(), Row: comp()}
	}
	for i := 0; i < 2000; i++ {
		a, b := rv(), rv()
		if rng.IntN(4) == 0 {
			b = a
			b.Row = a.Row + uint64(rng.IntN(2))
			if b.Row < a.Row {
				b.Row = a.Row
			}
		}
		key := fmt.Sprintf("cmp:%d", i)
		if _, err := st.Upsert(ctx, key, floor, a, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		got, err := st.Upsert(ctx, key, floor, b, []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		want := map[int]rowcache.Result{1: rowcache.Applied, 0: rowcache.Duplicate, -1: rowcache.Stale}[b.Compare(a)]
		if got != want {
			t.Fatalf("stored %v then %v: script says %v, Compare says %v", a, b, got, want)
		}
	}
}

func TestTruncateSweepsOlderRowsAndFencesLateOnes(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	for i := 0; i < 2500; i++ { // more than one SCAN batch
		if _, err := st.Upsert(ctx, fmt.Sprintf("db.t:%d", i), floor, v(1, uint64(100+i), 0), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	// A row inserted after the truncate whose event arrived before it (the truncate is not ordered with
	// row keys), and another table's row with the same prefix shape.
	if _, err := st.Upsert(ctx, "db.t:after", floor, v(2, 50, 0), []byte(`{"after":true}`)); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Upsert(ctx, "db.t2:1", "cloudsql-cache:truncate:db.t2", v(1, 1, 0), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx, "db.t:foreign", "not ours", 0)
	// Version-column tables: a large column value does not save a row written before the truncate.
	if _, err := st.Upsert(ctx, "db.t:col", floor, rowcache.Version{Column: 1 << 60, File: 1, Pos: 1}, []byte(`{}`)); err != nil {
		t.Fatal(err)
	}

	res, n, err := st.Truncate(ctx, rowcache.TableKeys{FloorKey: floor, Pattern: "db.t:*"}, v(2, 10, 0))
	if err != nil || res != rowcache.Applied {
		t.Fatalf("truncate: %v %v", res, err)
	}
	if n != 2501 {
		t.Fatalf("swept %d rows, want 2501", n)
	}
	if e, found, _ := rowcache.Get(ctx, rdb, "db.t:after"); !found || string(e.Row) != `{"after":true}` {
		t.Fatalf("row written after the truncate was swept: %v %q", found, e.Row)
	}
	if _, found, _ := rowcache.Get(ctx, rdb, "db.t2:1"); !found {
		t.Fatal("another table's row was swept")
	}
	if rdb.Get(ctx, "db.t:foreign").Val() != "not ours" {
		t.Fatal("a foreign key matching the pattern was touched")
	}
	// A change from before the truncate, delivered late, must not bring a row back.
	for _, del := range []bool{false, true} {
		var got rowcache.Result
		if del {
			got, err = st.Delete(ctx, "db.t:7", floor, v(1, 5000, 0))
		} else {
			got, err = st.Upsert(ctx, "db.t:7", floor, v(1, 5000, 0), []byte(`{}`))
		}
		if err != nil || got != rowcache.Truncated {
			t.Fatalf("late pre-truncate change (delete=%v): %v %v, want truncated", del, got, err)
		}
	}
	if _, found, _ := rowcache.Get(ctx, rdb, "db.t:7"); found {
		t.Fatal("late pre-truncate change resurrected a row")
	}
	if got, _ := st.Upsert(ctx, "db.t:col", floor, rowcache.Version{Column: 1 << 61, File: 1, Pos: 2}, []byte(`{}`)); got != rowcache.Truncated {
		t.Fatalf("late pre-truncate change with a large version column: %v, want truncated", got)
	}
	if got, _ := st.Upsert(ctx, "db.t:col", floor, rowcache.Version{Column: 5, File: 2, Pos: 11}, []byte(`{}`)); got != rowcache.Applied {
		t.Fatalf("post-truncate change with a small version column: %v, want applied", got)
	}
	// An interrupted sweep resumes from its saved cursor; a finished one is not run again.
	if p := rdb.Get(ctx, floor+":sweep").Val(); p != "0.0.2.10.0 done" {
		t.Fatalf("sweep progress %q", p)
	}
	// Replay of the same truncate is a duplicate; an older truncate is stale.
	if res, _, _ := st.Truncate(ctx, rowcache.TableKeys{FloorKey: floor, Pattern: "db.t:*"}, v(2, 10, 0)); res != rowcache.Duplicate {
		t.Fatalf("replayed truncate: %v", res)
	}
	if res, _, _ := st.Truncate(ctx, rowcache.TableKeys{FloorKey: floor, Pattern: "db.t:*"}, v(1, 1, 0)); res != rowcache.Stale {
		t.Fatalf("older truncate: %v", res)
	}
}

func TestForeignValueIsReportedNotOverwritten(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, 0)
	rdb.Set(ctx, "s", "hello world", 0)
	rdb.LPush(ctx, "l", "x")
	for _, k := range []string{"s", "l"} {
		_, err := st.Upsert(ctx, k, floor, v(1, 1, 0), []byte(`{}`))
		if !errors.Is(err, rowcache.ErrForeignValue) {
			t.Fatalf("%s: err = %v, want ErrForeignValue", k, err)
		}
	}
	if rdb.Get(ctx, "s").Val() != "hello world" {
		t.Fatal("foreign value overwritten")
	}
}

func TestScriptCacheFlushFallsBackToEval(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, 0)
	for i := uint64(1); i <= 3; i++ {
		if err := rdb.ScriptFlush(ctx).Err(); err != nil {
			t.Fatal(err)
		}
		if res, err := st.Upsert(ctx, "k", floor, v(1, i, 0), []byte(`{}`)); err != nil || res != rowcache.Applied {
			t.Fatalf("after SCRIPT FLUSH: %v %v", res, err)
		}
	}
	if _, _, err := st.Truncate(ctx, rowcache.TableKeys{FloorKey: floor, Pattern: "k*"}, v(1, 9, 0)); err != nil {
		t.Fatal(err)
	}
}

// Many goroutines deliver the same shuffled history of one key at once, each message several times.
// The script's atomicity must leave exactly the newest version, and never let the stored version go
// backwards while they run.
func TestConcurrentDeliveriesOfOneKey(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	const n = 200
	type ev struct {
		ver rowcache.Version
		del bool
	}
	hist := make([]ev, n)
	for i := range hist {
		hist[i] = ev{ver: v(1, uint64(10*i+10), uint64(i%3)), del: i%7 == 3}
	}
	last := hist[n-1]
	stop := make(chan struct{})
	watchErr := make(chan error, 1)
	go func() { // the watcher: versions only move forward
		var prev rowcache.Version
		for {
			select {
			case <-stop:
				watchErr <- nil
				return
			default:
			}
			e, found, err := rowcache.Get(ctx, rdb, "hot")
			if err != nil {
				watchErr <- err
				return
			}
			if found {
				if e.Version.Compare(prev) < 0 {
					watchErr <- fmt.Errorf("version went back from %v to %v", prev, e.Version)
					return
				}
				prev = e.Version
			}
		}
	}()
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, 7))
			order := rng.Perm(n * 2)
			for _, i := range order {
				e := hist[i%n]
				var err error
				if e.del {
					_, err = st.Delete(ctx, "hot", floor, e.ver)
				} else {
					_, err = st.Upsert(ctx, "hot", floor, e.ver, []byte(fmt.Sprintf(`{"v":%q}`, e.ver)))
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}(uint64(w))
	}
	wg.Wait()
	close(stop)
	if err := <-watchErr; err != nil {
		t.Fatal(err)
	}
	e, _, err := rowcache.Get(ctx, rdb, "hot")
	if err != nil {
		t.Fatal(err)
	}
	if e.Version != last.ver || e.Deleted() != last.del {
		t.Fatalf("final %v deleted=%v, want %v deleted=%v", e.Version, e.Deleted(), last.ver, last.del)
	}
}

func TestSweepEpoch(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, 0)
	for i := 0; i < 1500; i++ {
		if _, err := st.Upsert(ctx, fmt.Sprintf("db.t:%d", i), floor, rowcache.Version{Epoch: 0, File: 9, Pos: uint64(i)}, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	// The new source's snapshot rewrote rows 0..999 in epoch 1; rows 1000.. no longer exist there.
	for i := 0; i < 1000; i++ {
		if _, err := st.Upsert(ctx, fmt.Sprintf("db.t:%d", i), floor, rowcache.Version{Epoch: 1, File: 1, Pos: 4}, []byte(`{"new":true}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.Delete(ctx, "db.t:5", floor, rowcache.Version{Epoch: 1, File: 1, Pos: 5}); err != nil {
		t.Fatal(err)
	}
	rdb.Set(ctx, "other", "not ours", 0)
	n, err := st.SweepEpoch(ctx, rowcache.TableKeys{Pattern: "*"}, 1)
	if err != nil || n != 500 {
		t.Fatalf("swept %d (%v), want 500", n, err)
	}
	if rdb.DBSize(ctx).Val() != 1001 {
		t.Fatalf("%d keys left, want 1000 rows and the foreign key", rdb.DBSize(ctx).Val())
	}
	if e, found, _ := rowcache.Get(ctx, rdb, "db.t:5"); !found || !e.Deleted() {
		t.Fatal("a current-epoch tombstone was swept")
	}
}

func TestFillNeverReplacesAndCDCAlwaysWins(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	ok, err := st.Fill(ctx, "k", floor, "", []byte(`{"from":"db"}`), time.Minute)
	if err != nil || !ok {
		t.Fatalf("fill of an empty key: %v %v", ok, err)
	}
	if ttl := rdb.PTTL(ctx, "k").Val(); ttl <= 0 || ttl > time.Minute {
		t.Fatalf("fill TTL %v", ttl)
	}
	if ok, _ := st.Fill(ctx, "k", floor, "", []byte(`{"from":"another fill"}`), time.Minute); ok {
		t.Fatal("a fill replaced a fill")
	}
	// The oldest possible change still wins over a fill: a fill has no position in the stream.
	if r, err := st.Upsert(ctx, "k", floor, rowcache.Version{Row: 1}, []byte(`{"from":"cdc"}`)); err != nil || r != rowcache.Applied {
		t.Fatalf("CDC over a fill: %v %v", r, err)
	}
	if ttl := rdb.PTTL(ctx, "k").Val(); ttl != -1 {
		t.Fatalf("a CDC row must not keep the fill's TTL: %v", ttl)
	}
	if ok, _ := st.Fill(ctx, "k", floor, "", []byte(`{"from":"late fill"}`), time.Minute); ok {
		t.Fatal("a late fill replaced a CDC row")
	}
	if _, err := st.Delete(ctx, "k", floor, v(1, 1, 0)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.Fill(ctx, "k", floor, "", []byte(`{"from":"zombie"}`), time.Minute); ok {
		t.Fatal("a fill replaced a tombstone")
	}
	// A truncate between the fill's database read and the fill: refused.
	if _, _, err := st.Truncate(ctx, rowcache.TableKeys{FloorKey: floor, Pattern: "zzz*"}, v(1, 5, 0)); err != nil {
		t.Fatal(err)
	}
	if ok, _ := st.Fill(ctx, "t", floor, "", []byte(`{"read":"before the truncate"}`), time.Minute); ok {
		t.Fatal("a fill landed across a truncate")
	}
	if ok, _ := st.Fill(ctx, "t", floor, rdb.Get(ctx, floor).Val(), []byte(`{"read":"after"}`), time.Minute); !ok {
		t.Fatal("a fill read after the truncate was refused")
	}
	// A negative fill ("not found") is a tombstone an insert overrides.
	if ok, _ := st.Fill(ctx, "n", floor, rdb.Get(ctx, floor).Val(), nil, time.Minute); !ok {
		t.Fatal("negative fill")
	}
	if e, found, _ := rowcache.Get(ctx, rdb, "n"); !found || !e.Deleted() {
		t.Fatal("negative fill is not a tombstone")
	}
	if r, _ := st.Upsert(ctx, "n", floor, v(1, 9, 0), []byte(`{}`)); r != rowcache.Applied {
		t.Fatalf("insert over a negative fill: %v", r)
	}
}

func TestChangedKeysArePublished(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	sub := rdb.Subscribe(ctx, rowcache.DefaultInvalidationChannel)
	defer sub.Close()
	if _, err := sub.Receive(ctx); err != nil { // the subscription confirmation
		t.Fatal(err)
	}
	st := rowcache.NewStore(rdb, time.Hour)
	st.Upsert(ctx, "db.t:1", floor, v(1, 1, 0), []byte(`{}`))                            // published
	st.Upsert(ctx, "db.t:1", floor, v(1, 1, 0), []byte(`{}`))                            // duplicate: not published
	st.Upsert(ctx, "db.t:1", floor, v(1, 0, 0), []byte(`{}`))                            // stale: not published
	st.Fill(ctx, "db.t:9", floor, "", []byte(`{}`), time.Minute)                         // fill: not published
	st.Delete(ctx, "db.t:1", floor, v(1, 2, 0))                                          // published
	st.Upsert(ctx, "db.t:2", floor, v(1, 3, 0), []byte(`{}`))                            // published
	st.Truncate(ctx, rowcache.TableKeys{FloorKey: floor, Pattern: "db.t:*"}, v(1, 4, 0)) // publishes the swept keys
	var got []string
	ch := sub.Channel()
	timeout := time.After(5 * time.Second)
	for len(got) < 6 {
		select {
		case m := <-ch:
			got = append(got, m.Payload)
		case <-timeout:
			t.Fatalf("published %v", got)
		}
	}
	sweep := got[3:]
	sort.Strings(sweep)
	if strings.Join(got[:3], ",") != "db.t:1,db.t:1,db.t:2" || strings.Join(sweep, ",") != "db.t:1,db.t:2,db.t:9" {
		t.Fatalf("published %v", got)
	}
	quiet := rowcache.NewStore(rdb, 0).WithInvalidationChannel("")
	quiet.Upsert(ctx, "db.t:3", floor, v(2, 1, 0), []byte(`{}`))
	select {
	case m := <-ch:
		t.Fatalf("published %q with no channel", m.Payload)
	case <-time.After(200 * time.Millisecond):
	}
}

// A truncate retried after a timeout resumes its sweep from the saved cursor rather than from the start.
func TestTruncateSweepResumes(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, 0)
	for i := 0; i < 3000; i++ {
		if _, err := st.Upsert(ctx, fmt.Sprintf("db.t:%d", i), floor, v(1, uint64(i+1), 0), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	trunc := v(2, 1, 0)
	// The first attempt got as far as one SCAN batch before it was cut off.
	firstBatch, next, err := rdb.Scan(ctx, 0, "db.t:*", 1000).Result()
	if err != nil || next == 0 {
		t.Fatalf("scan: %v %d", err, next)
	}
	rdb.Set(ctx, floor, trunc.String(), 0)
	rdb.Set(ctx, floor+":sweep", fmt.Sprintf("%s %d", trunc, next), 0)
	_, n, err := st.Truncate(ctx, rowcache.TableKeys{FloorKey: floor, Pattern: "db.t:*"}, trunc)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3000-len(firstBatch) {
		t.Fatalf("the resumed sweep deleted %d keys, want the %d after the saved cursor", n, 3000-len(firstBatch))
	}
	if rdb.Exists(ctx, firstBatch[0]).Val() != 1 {
		t.Fatal("the resumed sweep started over from the beginning")
	}
}

// FillMany makes each fill under Fill's rule in one pipeline, with an empty script cache too: a key
// that holds a change, or whose floor moved, is refused; the others are stored with their TTL.
func TestFillManyKeepsFillsRule(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, 0)
	if _, err := st.Upsert(ctx, "k2", floor, v(1, 1, 0), []byte(`{"change":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := rdb.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	res := st.FillMany(ctx, []rowcache.FillRequest{
		{Key: "k1", FloorKey: floor, Row: []byte(`{"fill":1}`), TTL: time.Minute},
		{Key: "k2", FloorKey: floor, Row: []byte(`{"fill":2}`), TTL: time.Minute},
		{Key: "k3", FloorKey: floor, TTL: time.Minute},                                                // "not found"
		{Key: "k4", FloorKey: floor, Floor: "0.1.0.0.0", Row: []byte(`{"fill":4}`), TTL: time.Minute}, // the floor read was another
	})
	want := []bool{true, false, true, false}
	for i, r := range res {
		if r.Err != nil || r.Stored != want[i] {
			t.Errorf("fill %d: %+v, want stored %v", i+1, r, want[i])
		}
	}
	if e, _, _ := rowcache.Get(ctx, rdb, "k2"); string(e.Row) != `{"change":1}` {
		t.Errorf("k2 holds %s, want the change", e.Row)
	}
	if e, found, _ := rowcache.Get(ctx, rdb, "k3"); !found || !e.Deleted() {
		t.Errorf("k3: found %v, %+v; want a fill-tombstone", found, e)
	}
	if ttl := rdb.PTTL(ctx, "k1").Val(); ttl <= 0 || ttl > time.Minute {
		t.Errorf("k1's TTL is %v, want at most a minute", ttl)
	}
	if n := rdb.Exists(ctx, "k4").Val(); n != 0 {
		t.Error("a fill whose floor moved was stored")
	}
}
