package rowcache_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// A floor keeps what carries exactly its position (a snapshot's own rows) and refuses what is strictly
// older, with the reason that raised it.
func TestFloorRuleAndReasons(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	tk := rowcache.TableKeys{FloorKey: floor, Pattern: "db.t:*"}
	snap := v(3, 8128, 0) // every record of a snapshot carries the position it read, row 0
	// Before the completion: an old row, an old tombstone, a fill, and a snapshot row already applied.
	st.Upsert(ctx, "db.t:gone", floor, v(2, 50, 0), []byte(`{"id":"gone"}`))
	st.Delete(ctx, "db.t:deleted", floor, v(2, 60, 1))
	st.Fill(ctx, "db.t:filled", floor, "", []byte(`{"id":"filled"}`), time.Minute)
	st.Upsert(ctx, "db.t:kept", floor, snap, []byte(`{"id":"kept"}`))
	st.Upsert(ctx, "db.t:newer", floor, v(3, 9000, 2), []byte(`{"id":"newer"}`))
	res, n, err := st.RaiseFloor(ctx, tk, rowcache.Version{File: 3, Pos: 8128, Row: 7, Column: 5}, rowcache.FloorSnapshot)
	if err != nil || res != rowcache.Applied || n != 3 {
		t.Fatalf("raise: %v, deleted %d, %v; want applied, 3", res, n, err)
	}
	if got := rdb.Get(ctx, floor).Val(); got != "0.0.3.8128.0 snapshot" {
		t.Fatalf("floor %q: column and row must be zeroed, the reason kept", got)
	}
	for key, want := range map[string]bool{"db.t:gone": false, "db.t:deleted": false, "db.t:filled": false, "db.t:kept": true, "db.t:newer": true} {
		if got := rdb.Exists(ctx, key).Val() == 1; got != want {
			t.Errorf("%s present=%v, want %v", key, got, want)
		}
	}
	// A late snapshot row (same position) lands; an older change does not, for the floor's reason.
	if r, err := st.Upsert(ctx, "db.t:late", floor, snap, []byte(`{"id":"late"}`)); err != nil || r != rowcache.Applied {
		t.Fatalf("late snapshot row: %v %v", r, err)
	}
	for _, del := range []bool{false, true} {
		var r rowcache.Result
		if del {
			r, err = st.Delete(ctx, "db.t:gone", floor, v(3, 8127, 9))
		} else {
			r, err = st.Upsert(ctx, "db.t:gone", floor, v(3, 8127, 9), []byte(`{"id":"gone"}`))
		}
		if err != nil || r != rowcache.Resnapshotted || !r.BelowFloor() {
			t.Fatalf("old change (delete=%v) after the completion: %v %v, want resnapshot", del, r, err)
		}
	}
	if v, why, err := rowcache.ParseFloor(rdb.Get(ctx, floor).Val()); err != nil || why != rowcache.FloorSnapshot || v != snap {
		t.Fatalf("ParseFloor: %v %v %v", v, why, err)
	}
	// Floors only go up; the same floor again is a duplicate.
	if r, _, _ := st.RaiseFloor(ctx, tk, snap, rowcache.FloorSnapshot); r != rowcache.Duplicate {
		t.Fatalf("same floor: %v", r)
	}
	if r, _, _ := st.RaiseFloor(ctx, tk, v(3, 100, 0), rowcache.FloorDDL); r != rowcache.Stale {
		t.Fatalf("lower floor: %v", r)
	}
	if r, _, _ := st.RaiseFloor(ctx, tk, v(3, 9500, 0), rowcache.FloorDDL); r != rowcache.Applied {
		t.Fatalf("higher floor: %v", r)
	}
	if r, _ := st.Upsert(ctx, "db.t:newer", floor, v(3, 9001, 0), []byte(`{}`)); r != rowcache.SchemaChanged {
		t.Fatalf("below a ddl floor: %v", r)
	}
	if _, found, _ := rowcache.Get(ctx, rdb, "db.t:newer"); found {
		t.Fatal("the ddl sweep kept a row older than its floor")
	}
	// A truncate's floor is a bare version, as floors were before they had reasons.
	if r, _, _ := st.Truncate(ctx, tk, v(3, 9600, 4)); r != rowcache.Applied {
		t.Fatalf("truncate: %v", r)
	}
	if got := rdb.Get(ctx, floor).Val(); got != "0.0.3.9600.0" {
		t.Fatalf("truncate floor %q", got)
	}
	if v, why, err := rowcache.ParseFloor("0.0.3.9600.0"); err != nil || why != rowcache.FloorTruncate || v != (rowcache.Version{File: 3, Pos: 9600}) {
		t.Fatalf("ParseFloor of a truncate's: %v %v %v", v, why, err)
	}
	for _, bad := range []string{"", "1.2.3", "0.0.1.2.0 because", "0.0.1.2.0 "} {
		if _, _, err := rowcache.ParseFloor(bad); err == nil {
			t.Errorf("ParseFloor(%q): want an error", bad)
		}
	}
	// A floor written before floors had reasons is a truncate's, compared strictly.
	rdb.Set(ctx, floor, "0.0.4.10.3", 0)
	if r, _ := st.Upsert(ctx, "db.t:x", floor, v(4, 9, 5), []byte(`{}`)); r != rowcache.Truncated {
		t.Fatalf("below a legacy floor: %v", r)
	}
	if r, _ := st.Upsert(ctx, "db.t:x", floor, v(4, 11, 0), []byte(`{}`)); r != rowcache.Applied {
		t.Fatalf("above a legacy floor: %v", r)
	}
}

// Two different changes under one version (rows of a compressed transaction without transaction
// metadata): the later delivery is stored and reported, never counted as a duplicate.
func TestVersionCollisionIsAppliedAndReported(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	same := v(3, 500, 0)
	steps := []struct {
		del  bool
		row  string
		want rowcache.Result
	}{
		{false, `{"id":1,"v":"insert"}`, rowcache.Applied},
		{false, `{"id":1,"v":"update"}`, rowcache.Collided},
		{false, `{"id":1,"v":"update"}`, rowcache.Duplicate},
		{true, "", rowcache.Collided},
		{true, "", rowcache.Duplicate},
		{false, `{"id":1,"v":"reinsert"}`, rowcache.Collided},
	}
	for i, s := range steps {
		var r rowcache.Result
		var err error
		if s.del {
			r, err = st.Delete(ctx, "db.t:1", floor, same)
		} else {
			r, err = st.Upsert(ctx, "db.t:1", floor, same, []byte(s.row))
		}
		if err != nil || r != s.want {
			t.Fatalf("step %d: %v %v, want %v", i, r, err, s.want)
		}
		e, _, _ := rowcache.Get(ctx, rdb, "db.t:1")
		if string(e.Row) != s.row {
			t.Fatalf("step %d: stored %q, want %q", i, e.Row, s.row)
		}
	}
}

// A sweep examines only the keys its table owns, whatever its glob matches.
func TestSweepsTakeOnlyOwnedKeys(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	for i := 0; i < 1200; i++ {
		st.Upsert(ctx, fmt.Sprintf("x.y:%d", i), floor, v(1, 1, 0), []byte(`{}`))
		st.Upsert(ctx, fmt.Sprintf("x.y:z:%d", i), "other-floor", v(1, 1, 0), []byte(`{}`)) // another table's keys
	}
	owns := func(k string) bool { return !strings.Contains(strings.TrimPrefix(k, "x.y:"), ":") }
	_, n, err := st.Truncate(ctx, rowcache.TableKeys{FloorKey: floor, Pattern: "x.y:*", Owns: owns}, v(2, 1, 0))
	if err != nil || n != 1200 {
		t.Fatalf("truncate deleted %d (%v), want 1200", n, err)
	}
	n, err = st.SweepEpoch(ctx, rowcache.TableKeys{Pattern: "x.y:*", Owns: func(string) bool { return false }}, 1)
	if err != nil || n != 0 {
		t.Fatalf("epoch sweep with an owner of nothing deleted %d (%v)", n, err)
	}
	if got := rdb.DBSize(ctx).Val(); got != 1200+2 { // the other table's rows, the floor and its progress
		t.Fatalf("%d keys left, want 1202", got)
	}
}

// Either order of a snapshot's last record and a table's announcement completes the table: the later
// of the two sees the earlier.
func TestSnapshotJoin(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	k := rowcache.SnapshotKeys{Tables: "snap:tables", Last: "snap:last"}
	if seen, err := st.SnapshotTable(ctx, k, "shop.a"); err != nil || seen {
		t.Fatalf("announce before last: %v %v", seen, err)
	}
	tables, err := st.SnapshotLast(ctx, k)
	if err != nil || strings.Join(tables, ",") != "shop.a" {
		t.Fatalf("last: %v %v", tables, err)
	}
	if seen, err := st.SnapshotTable(ctx, k, "shop.b"); err != nil || !seen {
		t.Fatalf("announce after last: %v %v", seen, err)
	}
	if ttl := rdb.TTL(ctx, k.Last).Val(); ttl < 29*24*time.Hour {
		t.Fatalf("last mark TTL %v", ttl)
	}
	if ttl := rdb.TTL(ctx, k.Tables).Val(); ttl < 29*24*time.Hour {
		t.Fatalf("announced tables TTL %v", ttl)
	}
}

func TestFingerprintOnlyMovesForward(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, time.Hour)
	if _, _, ok, err := st.Fingerprint(ctx, "fp"); ok || err != nil {
		t.Fatalf("absent: %v %v", ok, err)
	}
	st.SetFingerprint(ctx, "fp", v(1, 100, 0), "aaa")
	st.SetFingerprint(ctx, "fp", v(1, 50, 0), "old") // a replayed older record
	if ver, fp, ok, err := st.Fingerprint(ctx, "fp"); !ok || err != nil || fp != "aaa" || ver != v(1, 100, 0) {
		t.Fatalf("got %v %q %v %v", ver, fp, ok, err)
	}
	st.SetFingerprint(ctx, "fp", v(1, 200, 0), "bbb")
	if _, fp, _, _ := st.Fingerprint(ctx, "fp"); fp != "bbb" {
		t.Fatalf("got %q", fp)
	}
}
