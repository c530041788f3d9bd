package redisserver

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestServer is a redis-server owned by one test: killed when the test ends, and killed (SIGKILL)
// with the test binary if that dies first.
type TestServer struct {
	*Server
	t testing.TB
}

// StartForTest starts redis-server for t (in a temporary directory unless opts.Dir is set) and waits
// until it answers. A test that cannot have its server fails; it never skips, so a CI machine without
// redis-server goes red instead of silently testing nothing.
func StartForTest(t testing.TB, opts Options) *TestServer {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := start(context.Background(), opts, syscall.SIGKILL)
	if s != nil {
		t.Cleanup(s.Kill)
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	return &TestServer{Server: s, t: t}
}

// Client returns a go-redis client for the server, closed when the test ends.
func (s *TestServer) Client() *redis.Client {
	c := redis.NewClient(s.ClientOptions())
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

// Restart kills the server (if it runs) and starts it again on the same port, failing the test if it
// cannot.
func (s *TestServer) Restart() {
	s.t.Helper()
	if err := s.Server.Restart(context.Background()); err != nil {
		s.t.Fatalf("redisserver: restart on the same port: %v", err)
	}
}

// TestCluster is a local Redis Cluster owned by one test: every node killed when the test ends, and
// killed (SIGKILL) with the test binary if that dies first. Its methods fail the test when the cluster
// does not do what they ask.
type TestCluster struct {
	*Cluster
	t testing.TB
}

// StartClusterForTest starts a cluster for t (in a temporary directory unless opts.Dir is set) and
// waits until it is healthy (Cluster.WaitHealthy). A test that cannot have its cluster fails; it never
// skips.
func StartClusterForTest(t testing.TB, opts ClusterOptions) *TestCluster {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	c, err := startCluster(context.Background(), opts, syscall.SIGKILL)
	if c != nil {
		t.Cleanup(c.KillAll)
	}
	if err != nil {
		t.Fatalf("%v", err)
	}
	return &TestCluster{Cluster: c, t: t}
}

// Client returns a go-redis cluster client for the cluster, closed when the test ends.
func (c *TestCluster) Client() *redis.ClusterClient {
	rdb := redis.NewClusterClient(c.ClusterOptions())
	c.t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// NodeClient returns a plain client of the node at addr, closed when the test ends.
func (c *TestCluster) NodeClient(addr string) *redis.Client {
	rdb := redis.NewClient(c.NodeOptions(addr))
	c.t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// Primaries returns the running primaries, failing the test if the cluster cannot say.
func (c *TestCluster) Primaries() []Node {
	c.t.Helper()
	ps, err := c.Cluster.Primaries(context.Background())
	if err != nil {
		c.t.Fatal(err)
	}
	return ps
}

// Failover hands the primary at addr over to its replica gracefully (Cluster.Failover) and returns the
// new primary.
func (c *TestCluster) Failover(addr string) Node {
	c.t.Helper()
	n, err := c.Cluster.Failover(context.Background(), addr)
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// KillPrimary kills the primary at addr and promotes its replica (Cluster.KillPrimary); it returns the
// new primary.
func (c *TestCluster) KillPrimary(addr string) Node {
	c.t.Helper()
	n, err := c.Cluster.KillPrimary(context.Background(), addr)
	if err != nil {
		c.t.Fatal(err)
	}
	return n
}

// RestartNode starts the node at addr again and waits until it has rejoined (Cluster.RestartNode).
func (c *TestCluster) RestartNode(addr string) {
	c.t.Helper()
	if err := c.Cluster.RestartNode(context.Background(), addr); err != nil {
		c.t.Fatal(err)
	}
}

// Reshard moves slots slots with their keys from one primary to another (Cluster.Reshard).
func (c *TestCluster) Reshard(fromID, toID string, slots int) {
	c.t.Helper()
	if err := c.Cluster.Reshard(context.Background(), fromID, toID, slots); err != nil {
		c.t.Fatal(err)
	}
}

// KeySlot returns key's hash slot.
func (c *TestCluster) KeySlot(key string) int {
	c.t.Helper()
	slot, err := c.Cluster.KeySlot(context.Background(), key)
	if err != nil {
		c.t.Fatal(err)
	}
	return slot
}

// Promote makes the replica a primary, failing the test if it cannot.
func (s *TestServer) Promote() {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Server.Promote(ctx); err != nil {
		s.t.Fatalf("%v", err)
	}
}

// WaitLinked waits until the replica's link to its primary is up and its initial sync done, failing
// the test after 30 s.
func (s *TestServer) WaitLinked() {
	s.t.Helper()
	c := redis.NewClient(s.ClientOptions())
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		info, err := c.Info(context.Background(), "replication").Result()
		if err == nil && strings.Contains(info, "master_link_status:up") && strings.Contains(info, "master_sync_in_progress:0") {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("redisserver: replica %s never linked to its primary: %v\n%s", s.Addr(), err, info)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
