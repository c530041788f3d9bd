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

// Against a database that refuses connections without TLS (Cloud SQL's ENCRYPTED_ONLY), verify
// connects with the MYSQL_* variables and the server's CA, and a -dsn flag overrides the address and
// user while keeping that TLS; without the CA it cannot connect and says so.
func TestTLSDatabase(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{TLS: true})
	db := srv.DB("app")
	srv.Exec(db, "CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))", "INSERT INTO t VALUES (1, 'x')")
	rs := redisserver.StartForTest(t, redisserver.Options{})
	store := rowcache.NewStore(rs.Client(), time.Hour)
	if _, err := store.Upsert(context.Background(), "app.t:1", "f", rowcache.Version{Pos: 1}, []byte(`{"id":1,"v":"x"}`)); err != nil {
		t.Fatal(err)
	}
	call := func(env map[string]string, args ...string) (int, string) {
		env["REDIS_ADDR"] = rs.Addr()
		var out, errb bytes.Buffer
		code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := call(map[string]string{"MYSQL_ADDR": srv.Addr(), "MYSQL_USER": "root", "MYSQL_CA_FILE": srv.CAFile}, "-tables", "app.t"); code != 0 || !strings.Contains(out, "OK") {
		t.Errorf("MYSQL_* with the CA: exit %d\n%s", code, out)
	}
	if code, out := call(map[string]string{"MYSQL_ADDR": "127.0.0.1:1", "MYSQL_USER": "nobody", "MYSQL_CA_FILE": srv.CAFile}, "-dsn", "root@tcp("+srv.Addr()+")/", "-tables", "app.t"); code != 0 {
		t.Errorf("-dsn over MYSQL_ADDR, TLS from MYSQL_CA_FILE: exit %d\n%s", code, out)
	}
	if code, out := call(map[string]string{"MYSQL_ADDR": srv.Addr(), "MYSQL_USER": "root"}, "-tables", "app.t"); code != 2 || !strings.Contains(out, "Error 1045") {
		t.Errorf("without TLS: exit %d\n%s", code, out)
	}
	if code, out := call(map[string]string{"MYSQL_ADDR": srv.Addr(), "MYSQL_USER": "root", "MYSQL_TLS": "verify-ca"}, "-tables", "app.t"); code != 2 || !strings.Contains(out, "MYSQL_CA_FILE: required") {
		t.Errorf("verify-ca without a CA: exit %d\n%s", code, out)
	}
}
