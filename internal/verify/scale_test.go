package verify_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/verify"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// fixture is a database and a cache holding exactly its rows (cacheAll), which a test then breaks.
type fixture struct {
	t      *testing.T
	srv    *mariadbserver.TestServer
	db     *sql.DB
	rdb    *redis.Client
	store  *rowcache.Store
	policy *tablepolicy.Policy
}

func newFixture(t *testing.T, schema ...string) *fixture {
	t.Helper()
	f := &fixture{t: t, srv: mariadbserver.StartForTest(t, mariadbserver.Options{})}
	f.db = f.srv.DB("app")
	f.srv.Exec(f.db, schema...)
	f.rdb = redisserver.StartForTest(t, redisserver.Options{}).Client()
	f.store = rowcache.NewStore(f.rdb, time.Hour)
	var err error
	if f.policy, err = tablepolicy.New(tablepolicy.Config{}); err != nil {
		t.Fatal(err)
	}
	return f
}

// cacheAll writes every row of app.<table> to the cache as the function would.
func (f *fixture) cacheAll(table string) {
	f.t.Helper()
	ctx := context.Background()
	mt, err := mysqlrow.LoadTable(ctx, f.db, "app", table)
	if err != nil {
		f.t.Fatal(err)
	}
	pt, _ := f.policy.Table("app", table)
	rows, err := f.db.QueryContext(ctx, "SELECT "+mt.SelectList()+" FROM "+mt.QualifiedName())
	if err != nil {
		f.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		row, err := mt.ScanRow(rows)
		if err != nil {
			f.t.Fatal(err)
		}
		pk, _ := mt.Key(row)
		key, err := pt.Key(pk)
		if err != nil {
			f.t.Fatal(err)
		}
		if _, err := f.store.Upsert(ctx, key, pt.FloorKey, rowcache.Version{File: 1, Pos: 4}, pt.RowJSON(row)); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := rows.Err(); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) put(key, row string) {
	f.t.Helper()
	if _, err := f.store.Upsert(context.Background(), key, "floor", rowcache.Version{File: 1, Pos: 4}, []byte(row)); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) run(cfg verify.Config) (*verify.Report, error) {
	cfg.DB, cfg.Redis, cfg.Policy = f.db, f.rdb, f.policy
	if cfg.Settle == 0 {
		cfg.Settle = time.Millisecond
	}
	return verify.Run(context.Background(), cfg)
}

func (f *fixture) mustRun(cfg verify.Config) *verify.Report {
	f.t.Helper()
	rep, err := f.run(cfg)
	if err != nil {
		f.t.Fatal(err)
	}
	return rep
}

// numbers fills app.n with n rows (id 1..n) and caches them.
func numbers(t *testing.T, n int) *fixture {
	f := newFixture(t, "CREATE TABLE n (id INT NOT NULL PRIMARY KEY, v VARCHAR(20) NOT NULL)")
	f.srv.Exec(f.db, fmt.Sprintf("INSERT INTO n SELECT seq, CONCAT('v', seq) FROM seq_1_to_%d", n))
	f.cacheAll("n")
	return f
}

// drift breaks rows of app.n in the cache: three missing, two different, two extra and a tombstone
// for a row that does not exist (not drift).
func (f *fixture) drift() {
	ctx := context.Background()
	for _, id := range []int{5, 150, 299} {
		if err := f.rdb.Del(ctx, fmt.Sprintf("app.n:%d", id)).Err(); err != nil {
			f.t.Fatal(err)
		}
	}
	f.rdb.Set(ctx, "app.n:7", "0.0.1.4.0 {\"id\":7,\"v\":\"wrong\"}", 0)
	f.rdb.Set(ctx, "app.n:201", "0.0.1.4.0 {\"id\":201,\"v\":\"wrong\"}", 0)
	f.put("app.n:1000", `{"id":1000,"v":"gone"}`)
	f.put("app.n:1001", `{"id":1001,"v":"gone"}`)
	if _, err := f.store.Delete(ctx, "app.n:1002", "floor", rowcache.Version{File: 1, Pos: 4}); err != nil {
		f.t.Fatal(err)
	}
}

func counts(tr verify.TableReport) string {
	return fmt.Sprintf("rows %d missing %d extra %d different %d", tr.Rows, tr.Missing, tr.Extra, tr.Different)
}

// A full check finds every kind of drift, with a difference queue far smaller than the differences
// (it waits for the oldest instead of growing), and in chunks smaller than the table.
func TestFullCheckWithABoundedQueue(t *testing.T) {
	f := numbers(t, 300)
	f.drift()
	rep := f.mustRun(verify.Config{Tables: []string{"app.n"}, ChunkSize: 16, MaxPending: 1, Settle: 20 * time.Millisecond})
	if got, want := counts(rep.Tables[0]), "rows 300 missing 3 extra 2 different 2"; got != want {
		t.Errorf("%s, want %s", got, want)
	}
	if tr := rep.Tables[0]; tr.Keys != 300 || tr.Looked != 3 || tr.FilterBytes == 0 || tr.FalsePositive > 1e-3 { // 297 rows (3 deleted), 2 extras, 1 tombstone
		t.Errorf("the extras pass looked at %d keys (want 300) and up %d (want 3: the two extras and the tombstone, which no row read has; a %d-byte filter, false positives %g)", tr.Keys, tr.Looked, tr.FilterBytes, tr.FalsePositive)
	}
	var got []string
	for _, d := range rep.Diffs {
		got = append(got, string(d.Kind)+" "+d.Key)
	}
	sort.Strings(got)
	if want := "different app.n:201,different app.n:7,extra app.n:1000,extra app.n:1001,missing app.n:150,missing app.n:299,missing app.n:5"; strings.Join(got, ",") != want {
		t.Errorf("diffs %v, want %s", got, want)
	}
}

// Without the Bloom filter every cached key is looked up, with the same result; with a filter far too
// small for the table every key tests present, the extras hide behind false positives, and the report
// says how likely that was.
func TestExtrasFilter(t *testing.T) {
	f := numbers(t, 300)
	f.drift()
	exact := f.mustRun(verify.Config{Tables: []string{"app.n"}, ChunkSize: 16, ExtrasFilterBytes: -1}).Tables[0]
	if got, want := counts(exact), "rows 300 missing 3 extra 2 different 2"; got != want || exact.Looked != 300 || exact.FilterBytes != 0 {
		t.Errorf("without a filter: %s, looked up %d of %d keys, want %s and every key", got, exact.Looked, exact.Keys, want)
	}
	tiny := f.mustRun(verify.Config{Tables: []string{"app.n"}, ChunkSize: 16, ExtrasFilterBytes: 8}).Tables[0]
	if tiny.FalsePositive < 0.99 || tiny.Looked > 1 || tiny.Extra > 0 {
		t.Errorf("a 64-bit filter of 300 keys: false-positive rate %g, %d keys looked up, %d extras found; want a rate near 1 and the extras hidden", tiny.FalsePositive, tiny.Looked, tiny.Extra)
	}
}

// A key range checks only its rows, and no extras; two ranges that split the table check each row
// exactly once.
func TestKeyRanges(t *testing.T) {
	f := numbers(t, 300)
	f.drift()
	low := f.mustRun(verify.Config{Tables: []string{"app.n"}, ChunkSize: 16, To: []string{"200"}})
	high := f.mustRun(verify.Config{Tables: []string{"app.n"}, ChunkSize: 16, From: []string{"200"}})
	if got, want := counts(low.Tables[0]), "rows 199 missing 2 extra 0 different 1"; got != want {
		t.Errorf("[1,200): %s, want %s", got, want)
	}
	if got, want := counts(high.Tables[0]), "rows 101 missing 1 extra 0 different 1"; got != want {
		t.Errorf("[200,∞): %s, want %s", got, want)
	}
	if low.Tables[0].ExtrasSkipped == "" || low.Tables[0].Keys != 0 {
		t.Errorf("a range ran the extras pass: %+v", low.Tables[0])
	}
	mid := f.mustRun(verify.Config{Tables: []string{"app.n"}, From: []string{"100"}, To: []string{"151"}, Extras: verify.ExtrasOn})
	if got, want := counts(mid.Tables[0]), "rows 51 missing 1 extra 2 different 0"; got != want {
		t.Errorf("[100,151) with extras: %s, want %s", got, want)
	}
	if _, err := f.run(verify.Config{Tables: []string{"app.n", "app.m"}, From: []string{"1"}}); err == nil {
		t.Error("a range over two tables was accepted")
	}
}

// An interrupted check resumes from its checkpoint, in the rows pass and in the extras pass, and the
// resumed check's report is the uninterrupted one's: every row counted once, every difference found.
func TestResumeFromACheckpoint(t *testing.T) {
	f := numbers(t, 300)
	f.drift()
	want := counts(f.mustRun(verify.Config{Tables: []string{"app.n"}, ChunkSize: 16}).Tables[0])
	for _, phase := range []string{"rows", "extras"} {
		t.Run(phase, func(t *testing.T) {
			cp := filepath.Join(t.TempDir(), "verify.checkpoint")
			ctx, cancel := context.WithCancel(context.Background())
			var stoppedAt int64
			cfg := verify.Config{DB: f.db, Redis: f.rdb, Policy: f.policy, Tables: []string{"app.n"}, ChunkSize: 16,
				Settle: time.Millisecond, Checkpoint: cp, ProgressEvery: time.Nanosecond,
				Progress: func(p verify.Progress) {
					if p.Phase == phase && p.Done >= 100 && stoppedAt == 0 {
						stoppedAt = p.Done
						cancel()
					}
				}}
			_, err := verify.Run(ctx, cfg)
			if !errors.Is(err, verify.ErrInterrupted) {
				t.Fatalf("interrupted run: %v, want ErrInterrupted", err)
			}
			if _, err := os.Stat(cp); err != nil {
				t.Fatalf("no checkpoint after the interruption: %v", err)
			}
			var resumed []verify.Progress
			cfg.Progress = func(p verify.Progress) { resumed = append(resumed, p) }
			rep, err := verify.Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := counts(rep.Tables[0]); got != want {
				t.Errorf("resumed: %s, want %s (as uninterrupted)", got, want)
			}
			if len(resumed) == 0 || resumed[0].Phase != phase || resumed[0].Done <= stoppedAt-16 {
				t.Errorf("the resumed check did not start where it stopped (%s at %d): %+v", phase, stoppedAt, resumed[:min(1, len(resumed))])
			}
			if _, err := os.Stat(cp); !os.IsNotExist(err) {
				t.Errorf("the checkpoint of a completed check is still there: %v", err)
			}
		})
	}
	cp := filepath.Join(t.TempDir(), "other.checkpoint")
	if err := os.WriteFile(cp, []byte(`{"version":1,"check":"{\"Tables\":[\"app.other\"]}"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.run(verify.Config{Tables: []string{"app.n"}, Checkpoint: cp}); err == nil || !strings.Contains(err.Error(), "another check") {
		t.Errorf("a checkpoint of another check was not refused: %v", err)
	}
}

// A sample checks a fraction of the rows and brackets the table's true drift rate (10%) in its 95%
// interval; the seed makes it repeatable. A table whose first key column is not an integer is refused.
func TestSampleEstimatesTheDrift(t *testing.T) {
	f := numbers(t, 2000)
	ctx := context.Background()
	for id := 10; id <= 2000; id += 10 {
		f.rdb.Set(ctx, fmt.Sprintf("app.n:%d", id), fmt.Sprintf("0.0.1.4.0 {\"id\":%d,\"v\":\"stale\"}", id), 0)
	}
	f.srv.Exec(f.db, "ANALYZE TABLE n")
	rep := f.mustRun(verify.Config{Tables: []string{"app.n"}, Sample: 25, SampleChunk: 20, Seed: 7})
	tr := rep.Tables[0]
	if tr.Rows == 0 || tr.Rows > 500 || tr.Keys != 0 {
		t.Fatalf("a sample of 25×20 rows checked %d rows and %d keys", tr.Rows, tr.Keys)
	}
	e := tr.Estimate
	if e == nil || e.RateLow > 0.1 || e.RateHigh < 0.1 || e.TableRows < 1000 {
		t.Errorf("estimate %+v does not bracket the true 10%% (table of 2000 rows)", e)
	}
	again := f.mustRun(verify.Config{Tables: []string{"app.n"}, Sample: 25, SampleChunk: 20, Seed: 7})
	if again.Tables[0].Rows != tr.Rows || again.Tables[0].Different != tr.Different {
		t.Errorf("the same seed sampled differently: %s, then %s", counts(tr), counts(again.Tables[0]))
	}
	f.srv.Exec(f.db, "CREATE TABLE s (k VARCHAR(10) PRIMARY KEY)")
	if _, err := f.run(verify.Config{Tables: []string{"app.s"}, Sample: 5}); err == nil || !strings.Contains(err.Error(), "integer first primary-key column") {
		t.Errorf("a sample of a VARCHAR key: %v", err)
	}
}

// The extras pass reads the primary key back from the cached row, for key types the cached JSON
// encodes differently from SQL (DATETIME as microseconds, VARBINARY as base64, TIMESTAMP in ISO), and
// compares keys, not values: under a case-insensitive collation the cached 'Alice' is an extra when the
// table holds 'alice'. Foreign values in the table's key space are counted, not drift; a key another
// table's template owns is left to it.
func TestExtrasAcrossKeyTypes(t *testing.T) {
	f := newFixture(t,
		"CREATE TABLE d (at DATETIME(6) NOT NULL, bin VARBINARY(8) NOT NULL, ts TIMESTAMP(3) NOT NULL, v INT, PRIMARY KEY (at, bin, ts))",
		"INSERT INTO d VALUES ('2024-05-06 07:08:09.123456', X'00ff10', '2024-01-02 03:04:05.678', 1), ('2024-05-06 07:08:10', X'41', '2024-01-02 03:04:05', 2)",
		"CREATE TABLE u (name VARCHAR(20) NOT NULL PRIMARY KEY, v INT) COLLATE utf8mb4_general_ci",
		"INSERT INTO u VALUES ('alice', 1)")
	f.cacheAll("d")
	f.cacheAll("u")
	f.put("app.u:Alice", `{"name":"Alice","v":1}`)
	f.rdb.Set(context.Background(), "app.u:bob", "not ours", 0)
	rep := f.mustRun(verify.Config{Tables: []string{"app.d", "app.u"}})
	if got, want := counts(rep.Tables[0]), "rows 2 missing 0 extra 0 different 0"; got != want || rep.Tables[0].Keys != 2 {
		t.Errorf("app.d: %s, %d keys, want %s and 2 keys (%s)", got, rep.Tables[0].Keys, want, rep.Tables[0].ExtrasSkipped)
	}
	u := rep.Tables[1]
	if got, want := counts(u), "rows 1 missing 0 extra 1 different 0"; got != want || u.Foreign != 1 {
		t.Errorf("app.u: %s, foreign %d, want %s and 1 foreign", got, u.Foreign, want)
	}
	// A deleted DATETIME-keyed row is found as an extra from its cached JSON alone.
	f.srv.Exec(f.db, "DELETE FROM d WHERE v = 2")
	if got, want := counts(f.mustRun(verify.Config{Tables: []string{"app.d"}}).Tables[0]), "rows 1 missing 0 extra 1 different 0"; got != want {
		t.Errorf("app.d after a delete: %s, want %s", got, want)
	}
	// An owner that disowns the key: it is not the table's to report.
	notAlice := func(pt *tablepolicy.Table, key string) bool {
		return verify.PrefixOwner(pt, key) && key != "app.u:Alice"
	}
	if got := f.mustRun(verify.Config{Tables: []string{"app.u"}, Owner: notAlice}).Tables[0]; got.Extra != 0 {
		t.Errorf("a key the owner disowns was reported: %s", counts(got))
	}
}
