package redisserver

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"
)

// A TLS-only server with AUTH answers a client holding the CA and the password, and nobody else.
func TestTLSAndPassword(t *testing.T) {
	s := StartForTest(t, Options{TLS: true, Password: "s3cret"})
	ctx := context.Background()
	if err := s.Client().Ping(ctx).Err(); err != nil {
		t.Fatalf("with the CA and the password: %v", err)
	}
	ping := func(o *redis.Options) error {
		c := redis.NewClient(o)
		defer c.Close()
		return c.Ping(ctx).Err()
	}
	o := s.ClientOptions()
	o.Password = ""
	if err := ping(o); err == nil {
		t.Fatal("answered without the password")
	}
	o = s.ClientOptions()
	o.TLSConfig = nil
	o.MaxRetries = -1
	if err := ping(o); err == nil {
		t.Fatal("answered in plaintext")
	}
}

// A server asked for a port another server holds does not mistake that one for itself.
func TestTakenPortIsLost(t *testing.T) {
	other := StartForTest(t, Options{})
	s, err := Start(context.Background(), Options{Dir: t.TempDir(), Port: other.opts.Port})
	if s != nil {
		t.Cleanup(s.Kill)
	}
	if !errors.Is(err, ErrPortLost) {
		t.Fatalf("err = %v, want ErrPortLost", err)
	}
}

// A restart keeps the data with Persistent (every write fsynced) and loses it without.
func TestRestart(t *testing.T) {
	ctx := context.Background()
	for _, persistent := range []bool{true, false} {
		s := StartForTest(t, Options{Persistent: persistent})
		c := s.Client()
		if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		s.Restart()
		n, err := c.Exists(ctx, "k").Result()
		if err != nil {
			t.Fatal(err)
		}
		if want := map[bool]int64{true: 1, false: 0}[persistent]; n != want {
			t.Fatalf("persistent=%v: %d keys after the restart, want %d", persistent, n, want)
		}
	}
}

// A server without persistence that was a replica restarts empty too: by default a replica writes the
// snapshot of its primary's full sync to dump.rdb, which the restart would load.
func TestRestartWithoutPersistenceEmptiesAFormerReplica(t *testing.T) {
	ctx := context.Background()
	p := StartForTest(t, Options{})
	if err := p.Client().Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	r := StartForTest(t, Options{ReplicaOf: p.Addr()})
	r.WaitLinked()
	c := r.Client()
	if n, err := c.Exists(ctx, "k").Result(); err != nil || n != 1 {
		t.Fatalf("the replica has %d of the primary's keys (%v)", n, err)
	}
	r.Promote()
	r.Restart()
	if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
		t.Fatalf("%d keys after a restart without persistence (%v), want none", n, err)
	}
}
