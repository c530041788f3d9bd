package verify_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/verify"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

func TestFindsMissingExtraAndDifferentRows(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := srv.DB("app")
	srv.Exec(db, "CREATE TABLE t (k VARCHAR(10) NOT NULL, n INT NOT NULL, v DECIMAL(5,2), PRIMARY KEY (k, n))")
	for i := 0; i < 25; i++ {
		srv.Exec(db, "INSERT INTO t VALUES ('a', "+itoa(i)+", 1.5)")
	}
	srv.Exec(db, "INSERT INTO t VALUES ('B', 1, NULL)", "INSERT INTO t VALUES ('b', 2, NULL)")
	rdb := redisserver.StartForTest(t, redisserver.Options{}).Client()
	ctx := context.Background()
	policy, err := tablepolicy.New(tablepolicy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	store := rowcache.NewStore(rdb, time.Hour)
	v := rowcache.Version{File: 1, Pos: 4}
	put := func(key, row string) {
		if _, err := store.Upsert(ctx, key, "floor", v, []byte(row)); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 25; i++ {
		if i == 3 {
			continue // missing
		}
		row := `{"k":"a","n":` + itoa(i) + `,"v":"1.50"}`
		if i == 7 {
			row = `{"k":"a","n":7,"v":"9.99"}` // different
		}
		put("app.t:a:"+itoa(i), row)
	}
	put("app.t:B:1", `{"k":"B","n":1,"v":null}`)
	put("app.t:b:2", `{"k":"b","n":2,"v":null}`)
	put("app.t:a:99", `{"k":"a","n":99,"v":"1.50"}`) // extra
	// Keys the SCAN pattern "app.t:*" matches but app.t can never have (a raw space; an escape of a
	// letter): another application's, whatever their values look like. Not app.t's extra rows.
	put("app.t:a b:1", `{"k":"a b","n":1,"v":null}`)
	put("app.t:%61:97", `{"k":"a","n":97,"v":null}`)
	if _, err := store.Delete(ctx, "app.t:a:98", "floor", v); err != nil { // a tombstone is not extra
		t.Fatal(err)
	}
	rep, err := verify.Run(ctx, verify.Config{DB: db, Redis: rdb, Policy: policy, Tables: []string{"app.t"}, ChunkSize: 4, Settle: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tr := rep.Tables[0]
	if tr.Rows != 27 || tr.Missing != 1 || tr.Extra != 1 || tr.Different != 1 {
		t.Errorf("report %+v", tr)
	}
	for _, d := range rep.Diffs {
		t.Logf("%s %s db=%s cache=%s", d.Kind, d.Key, d.DB, d.Cache)
	}
	if rep.Drift() != 3 {
		t.Errorf("drift %d", rep.Drift())
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
