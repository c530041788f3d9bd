package redisenv

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testcerts"
)

// Against a real cluster with TLS and AUTH, as Memorystore for Redis Cluster with in-transit
// encryption: NewUniversalClient reaches every shard with REDIS_MODE=cluster and the seeds in
// REDIS_ADDR, and fails with another CA, without AUTH, with a wrong password or without TLS;
// CheckServer tells a mode that is not the server's; after a primary is killed and its replica
// promoted the same client finds the new primary by itself.
func TestClusterClient(t *testing.T) {
	rc := redisserver.StartClusterForTest(t, redisserver.ClusterOptions{Primaries: 3, Replicas: 1, TLS: true, Password: "auth string"})
	ctx := context.Background()
	otherCA, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"REDIS_MODE": "cluster", "REDIS_ADDR": rc.Addrs()[0], "REDIS_TLS": "true", "REDIS_CA_FILE": rc.CAFile, "REDIS_PASSWORD": "auth string", "REDIS_TIMEOUT": "2s"}
	client := func(change map[string]string) (Config, redis.UniversalClient) {
		t.Helper()
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range change {
			env[k] = v
		}
		c, err := FromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		rdb, err := c.NewUniversalClient()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = rdb.Close() })
		return c, rdb
	}
	for name, tc := range map[string]struct {
		change map[string]string
		refuse string
	}{
		"one seed":         {nil, ""},
		"every node":       {map[string]string{"REDIS_ADDR": rc.Seeds()}, ""},
		"another CA":       {map[string]string{"REDIS_CA_FILE": otherCA}, "certificate signed by unknown authority"},
		"no AUTH":          {map[string]string{"REDIS_PASSWORD": ""}, "NOAUTH"},
		"a wrong password": {map[string]string{"REDIS_PASSWORD": "guess"}, "WRONGPASS"},
		"no TLS":           {map[string]string{"REDIS_TLS": "false", "REDIS_CA_FILE": ""}, "*"},
	} {
		_, rdb := client(tc.change)
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := rdb.Set(cctx, "k", "v", 0).Err()
		cancel()
		if tc.refuse == "" && err != nil || tc.refuse != "" && (err == nil || tc.refuse != "*" && !strings.Contains(err.Error(), tc.refuse)) {
			t.Errorf("%s: %v, want %q", name, err, tc.refuse)
		}
	}

	c, rdb := client(nil)
	cl := rdb.(*redis.ClusterClient)
	// Keys on every shard, each written through to its replica.
	keys := make([]string, 300)
	for i := range keys {
		keys[i] = fmt.Sprintf("key:%d", i)
		if err := rdb.Set(ctx, keys[i], keys[i], 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var shards atomic.Int32 // ForEachMaster calls fn for every primary at once
	err = cl.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		if n, err := m.DBSize(ctx).Result(); err != nil || n == 0 {
			return fmt.Errorf("%s holds %d keys: %v", m.Options().Addr, n, err)
		}
		shards.Add(1)
		return m.Wait(ctx, 1, 5*time.Second).Err()
	})
	if err != nil || shards.Load() != 3 {
		t.Fatalf("%d shards: %v", shards.Load(), err)
	}

	if err := c.CheckServer(ctx, rdb); err != nil {
		t.Errorf("CheckServer, cluster against a cluster: %v", err)
	}
	standalone := c
	standalone.Mode = ModeStandalone
	node := redis.NewClient(rc.NodeOptions(rc.Addrs()[0]))
	defer node.Close()
	if err := standalone.CheckServer(ctx, node); err == nil || !strings.Contains(err.Error(), "set REDIS_MODE=cluster") {
		t.Errorf("CheckServer, standalone against a cluster: %v", err)
	}
	one := redisserver.StartForTest(t, redisserver.Options{})
	if err := c.CheckServer(ctx, one.Client()); err == nil || !strings.Contains(err.Error(), "set REDIS_MODE=standalone") {
		t.Errorf("CheckServer, cluster against a standalone Redis: %v", err)
	}

	// A primary crashes and its replica is promoted: the client, which still maps the primary's slots
	// to the dead address, finds the new primary by itself (it reloads the map on the failures).
	victim := rc.Primaries()[0]
	var key string
	for _, k := range keys {
		if victim.Owns(rc.KeySlot(k)) {
			key = k
			break
		}
	}
	rc.KillPrimary(victim.Addr)
	deadline := time.Now().Add(20 * time.Second) // go-redis alone would wait up to a minute
	var errs []error
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		v, err := rdb.Get(cctx, key).Result()
		cancel()
		if err == nil {
			if v != key {
				t.Fatalf("GET %s after the failover = %q", key, v)
			}
			break
		}
		errs = append(errs, err)
		if time.Now().After(deadline) {
			t.Fatalf("GET %s still fails 20 s after the promotion: %v", key, errors.Join(errs...))
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d failed GETs before the client found the new primary", len(errs))
	for _, k := range keys {
		if v, err := rdb.Get(ctx, k).Result(); err != nil || v != k {
			t.Fatalf("GET %s after the failover = %q, %v", k, v, err)
		}
	}
}
