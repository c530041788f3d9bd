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

// get by table and key values gives the key the function writes, for the default template, {pk} with
// a composite key, and a template naming its columns (name=value); problems come all at once.
func TestGetByTable(t *testing.T) {
	srv := redisserver.StartForTest(t, redisserver.Options{})
	ctx := context.Background()
	st := rowcache.NewStore(srv.Client(), 0)
	v := rowcache.Version{File: 3, Pos: 10}
	for key, row := range map[string]string{"inventory.customers:1004": `{"id":1004}`, "app.line_items:7:a%3Ab": `{"o":7,"l":"a:b"}`, "order:eu:42": `{"tenant":"eu","id":42}`} {
		if _, err := st.Upsert(ctx, key, "f", v, []byte(row)); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{"REDIS_ADDR": srv.Addr(), "CACHE_KEY_TEMPLATES": "shop.orders=order:{tenant}:{id}"}
	call := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		code := run(ctx, args, func(k string) string { return env[k] }, &out, &errb)
		return code, out.String(), errb.String()
	}
	for args, want := range map[string]string{
		"inventory.customers 1004":    "inventory.customers:1004: version 0.0.3.10.0",
		"app.line_items 7 a:b":        "app.line_items:7:a%3Ab: version",
		"shop.orders id=42 tenant=eu": "order:eu:42: version",
		"shop.orders tenant=eu id=42": "order:eu:42: version",
		"inventory.customers:1004":    "inventory.customers:1004: version",
		"inventory.customers 1005":    "inventory.customers:1005: not cached",
	} {
		_, out, errs := call(append([]string{"get"}, strings.Fields(args)...)...)
		if !strings.Contains(out, want) {
			t.Errorf("get %s: %q %q, want %q", args, out, errs, want)
		}
	}
	if code, _, errs := call("get", "shop.orders", "eu", "42"); code != 2 || !strings.Contains(errs, "column=value") {
		t.Errorf("unnamed values for a named template: %d %q", code, errs)
	}
	env = map[string]string{"REDIS_TLS": "maybe", "CACHE_TABLES": "a.b"}
	code, _, errs := call("get", "inventory.customers", "1")
	for _, want := range []string{"REDIS_ADDR: required", "REDIS_TLS", "inventory.customers is not cached"} {
		if code != 2 || !strings.Contains(errs, want) {
			t.Errorf("exit %d, does not say %q:\n%s", code, want, errs)
		}
	}
}
