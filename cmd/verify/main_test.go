package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

func TestExitCodes(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := srv.DB("app")
	srv.Exec(db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO t VALUES (1, 'x')")
	rs := redisserver.StartForTest(t, redisserver.Options{})
	env := map[string]string{"REDIS_ADDR": rs.Addr()}
	getenv := func(k string) string { return env[k] }
	ctx := context.Background()
	call := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(ctx, args, getenv, &out, &errb)
		return code, out.String() + errb.String()
	}
	dsn := "root@tcp(" + srv.Addr() + ")/"
	if code, out := call("-dsn", dsn, "-databases", "app", "-settle", "1ms"); code != 1 || !strings.Contains(out, "missing app.t:1") {
		t.Errorf("empty cache: exit %d\n%s", code, out)
	}
	store := rowcache.NewStore(rs.Client(), time.Hour)
	if _, err := store.Upsert(ctx, "app.t:1", "f", rowcache.Version{Pos: 1}, []byte(`{"id":1,"v":"x"}`)); err != nil {
		t.Fatal(err)
	}
	if code, out := call("-dsn", dsn, "-tables", "app.t"); code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("in sync: exit %d\n%s", code, out)
	}
	for _, args := range [][]string{
		{"-tables", "app.t"}, // no DSN
		{"-dsn", dsn + "?parseTime=true", "-tables", "app.t"}, // refused DSN
		{"-dsn", dsn},                        // nothing to check
		{"-dsn", dsn, "-tables", "app.nope"}, // missing table
	} {
		if code, out := call(args...); code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, code, out)
		}
	}
	env["CACHE_KEY_TEMPLATES"] = "broken"
	if code, out := call("-dsn", dsn, "-tables", "app.t"); code != 2 || !strings.Contains(out, "CACHE_KEY_TEMPLATES") {
		t.Errorf("bad CACHE_*: exit %d\n%s", code, out)
	}
}

// Every configuration problem is reported in one run: flags, the database, Redis and the table policy.
func TestConfigurationErrorsAtOnce(t *testing.T) {
	env := map[string]string{"REDIS_TLS": "maybe", "CACHE_KEY_TEMPLATES": "broken", "MYSQL_ADDR": "nohost"}
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-chunk", "0", "-extras", "sometimes", "-from", "[oops", "-tables", "a.b,c.d", "-to", "5"}, func(k string) string { return env[k] }, &out, &errb)
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s", code, errb.String())
	}
	for _, want := range []string{"-chunk 0", "-extras \"sometimes\"", "-from [oops", "MYSQL_ADDR: \"nohost\"", "MYSQL_USER: required", "REDIS_ADDR: required", "REDIS_TLS: \"maybe\"", "CACHE_KEY_TEMPLATES", "-from and -to check one table"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("does not say %q:\n%s", want, errb.String())
		}
	}
}
