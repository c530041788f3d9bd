package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

func TestGetAndSweepEpoch(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	rdb := srv.Client()
	ctx := context.Background()
	st := rowcache.NewStore(rdb, 0)
	st.Upsert(ctx, "app.t:1", "f", rowcache.Version{File: 3, Pos: 10}, []byte(`{"id":1}`))
	st.Upsert(ctx, "app.t:2", "f", rowcache.Version{Epoch: 1, File: 1, Pos: 4}, []byte(`{"id":2}`))
	st.Delete(ctx, "app.t:3", "f", rowcache.Version{Epoch: 1, File: 1, Pos: 5})
	rdb.Set(ctx, "app.t:rate", "0.25", 0) // another application's value that looks like a version
	env := func(k string) string { return map[string]string{"REDIS_ADDR": srv.Addr()}[k] }
	call := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(ctx, args, env, &out, &errb)
		return code, out.String(), errb.String()
	}
	if code, out, _ := call("get", "app.t:1"); code != 0 || out != "app.t:1: version 0.0.3.10.0\n{\"id\":1}\n" {
		t.Fatalf("get: %d %q", code, out)
	}
	if code, out, _ := call("get", "app.t:3"); code != 0 || !strings.Contains(out, "deleted at version 1.0.1.5.0") {
		t.Fatalf("get tombstone: %d %q", code, out)
	}
	if code, _, errs := call("sweep-epoch"); code != 2 || !strings.Contains(errs, "-epoch N") {
		t.Fatalf("sweep without epoch: %d %q", code, errs)
	}
	if code, out, _ := call("sweep-epoch", "-epoch", "1"); code != 0 || out != "deleted 1 keys of epochs older than 1\n" {
		t.Fatalf("sweep: %d %q", code, out)
	}
	if code, out, _ := call("get", "app.t:1"); code != 1 || !strings.Contains(out, "not cached") {
		t.Fatalf("after sweep: %d %q", code, out)
	}
	if got := rdb.Get(ctx, "app.t:rate").Val(); got != "0.25" {
		t.Fatalf("sweep-epoch touched a foreign value: %q", got)
	}
	var errb bytes.Buffer
	if code := run(ctx, []string{"get", "x"}, func(string) string { return "" }, &bytes.Buffer{}, &errb); code != 2 || !strings.Contains(errb.String(), "REDIS_ADDR") {
		t.Fatalf("no REDIS_ADDR: %d %q", code, errb.String())
	}
}
