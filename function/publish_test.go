package function_test

import (
	"bytes"
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/function"
	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy/published"
)

// syncBuffer is a log destination the heartbeat goroutine and the test can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// waitPublished polls the published policies until one is seen after since, or fails the test.
func waitPublished(t *testing.T, rs *redisserver.TestServer, since time.Time) published.Publication {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := published.Load(context.Background(), rs.Client(), time.Now())
		if err == nil && s.Publications[0].LastSeen.After(since) {
			return s.Publications[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("no policy published after %v within 30s: %+v %v", since, s, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// The function publishes its policy when it starts and keeps publishing it while it runs, so readers
// can hold their own policy to it.
func TestPublishesItsPolicy(t *testing.T) {
	rs := redisserver.StartForTest(t, redisserver.Options{})
	env := map[string]string{"REDIS_ADDR": rs.Addr(), "DEAD_LETTER_TOPIC": "nack",
		"CACHE_TABLES": "shop.customers", "CACHE_EXCLUDE_COLUMNS": "shop.customers.email"}
	cfg, err := function.ConfigFromEnv(envFunc(env))
	if err != nil {
		t.Fatal(err)
	}
	want, err := tablepolicy.New(cfg.Policy)
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now().Add(-time.Second)
	_, closeFn, err := function.New(context.Background(), cfg, function.Deps{Logger: slog.New(slog.DiscardHandler),
		Version: "cloudsql-cache-apply-00042-abc", PolicyHeartbeat: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s, err := published.Load(context.Background(), rs.Client(), time.Now())
	if err != nil {
		t.Fatalf("not published at start-up: %v", err)
	}
	p := s.Publications[0]
	if len(s.Publications) != 1 || p.Fingerprint != want.Fingerprint() || p.FunctionVersion != "cloudsql-cache-apply-00042-abc" || p.PublishedAt.Before(before) {
		t.Fatalf("%+v", s)
	}
	if err := s.Check(want); err != nil {
		t.Fatalf("the function's own policy: %v", err)
	}
	waitPublished(t, rs, p.LastSeen) // the heartbeat
	if err := closeFn(); err != nil {
		t.Fatal(err)
	}
}

// A function that starts while Redis is down starts anyway, says so, and publishes its policy once
// Redis answers.
func TestPublishesOnceRedisAnswers(t *testing.T) {
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"REDIS_ADDR": "127.0.0.1:" + strconv.Itoa(port), "DEAD_LETTER_TOPIC": "nack", "REDIS_TIMEOUT": "200ms"}
	cfg, err := function.ConfigFromEnv(envFunc(env))
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	_, closeFn, err := function.New(context.Background(), cfg, function.Deps{Logger: slog.New(slog.NewTextHandler(&logs, nil)),
		PolicyHeartbeat: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	if !strings.Contains(logs.String(), "the table policy is not published yet") {
		t.Fatalf("no warning at start-up:\n%s", logs.String())
	}
	rs := redisserver.StartForTest(t, redisserver.Options{Port: port})
	if p := waitPublished(t, rs, time.Time{}); p.FunctionVersion != "unknown" {
		t.Fatalf("%+v", p)
	}
}
