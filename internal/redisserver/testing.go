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
