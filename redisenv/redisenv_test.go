package redisenv

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testcerts"
)

// Every problem is reported at once, each naming its variable, in one error.
func TestFromEnvReportsEveryProblem(t *testing.T) {
	env := map[string]string{"REDIS_DB": "x", "REDIS_TLS": "maybe", "REDIS_TIMEOUT": "0s", "REDIS_POOL_SIZE": "-1"}
	_, err := FromEnv(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"REDIS_ADDR: required", `REDIS_DB: "x"`, `REDIS_TLS: "maybe"`, `REDIS_TIMEOUT: "0s"`, `REDIS_POOL_SIZE: "-1"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q\ndoes not say %q", err, want)
		}
	}
	c, err := FromEnv(func(k string) string { return map[string]string{"REDIS_ADDR": "r:6379"}[k] })
	if err != nil || c.Addr != "r:6379" || c.Timeout.String() != "1s" || c.PoolSize != 0 {
		t.Fatalf("%+v %v", c, err)
	}
}

// REDIS_POOL_SIZE reaches go-redis; 0 leaves its default; too many or not a number is refused.
func TestPoolSize(t *testing.T) {
	for v, want := range map[string]int{"80": 80, "0": 0, "10000": 10000} {
		c, err := FromEnv(func(k string) string { return map[string]string{"REDIS_ADDR": "r:6379", "REDIS_POOL_SIZE": v}[k] })
		if err != nil {
			t.Fatalf("%s: %v", v, err)
		}
		o, err := c.Options()
		if err != nil || o.PoolSize != want {
			t.Fatalf("%s: pool %d, want %d (%v)", v, o.PoolSize, want, err)
		}
		c, err = FromEnv(func(k string) string {
			return map[string]string{"REDIS_MODE": "cluster", "REDIS_ADDR": "a:6379,b:6379", "REDIS_POOL_SIZE": v}[k]
		})
		if err != nil {
			t.Fatalf("cluster %s: %v", v, err)
		}
		co, err := c.ClusterOptions()
		if err != nil || co.PoolSize != want {
			t.Fatalf("cluster %s: pool %d, want %d (%v)", v, co.PoolSize, want, err)
		}
	}
	for _, v := range []string{"10001", "x", "1.5", "-3"} {
		_, err := FromEnv(func(k string) string { return map[string]string{"REDIS_ADDR": "r:6379", "REDIS_POOL_SIZE": v}[k] })
		if err == nil || !strings.Contains(err.Error(), "REDIS_POOL_SIZE") {
			t.Errorf("%s: %v", v, err)
		}
	}
}

// NewClient reaches Redis with TLS verified against REDIS_CA_FILE and AUTH, as Memorystore with
// in-transit encryption and AUTH requires, and fails without either.
func TestNewClientTLSAndAUTH(t *testing.T) {
	rs := redisserver.StartForTest(t, redisserver.Options{TLS: true, Password: "auth string"})
	otherCA, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"REDIS_ADDR": rs.Addr(), "REDIS_TLS": "true", "REDIS_CA_FILE": rs.CAFile, "REDIS_PASSWORD": "auth string"}
	for name, tc := range map[string]struct {
		change map[string]string
		refuse string
	}{
		"as the function":  {nil, ""},
		"no TLS":           {map[string]string{"REDIS_TLS": "false", "REDIS_CA_FILE": ""}, "*"}, // the server drops the connection
		"another CA":       {map[string]string{"REDIS_CA_FILE": otherCA}, "certificate signed by unknown authority"},
		"the system roots": {map[string]string{"REDIS_CA_FILE": ""}, "certificate signed by unknown authority"},
		"no AUTH":          {map[string]string{"REDIS_PASSWORD": ""}, "NOAUTH"},
		"a wrong password": {map[string]string{"REDIS_PASSWORD": "guess"}, "WRONGPASS"},
	} {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tc.change {
			env[k] = v
		}
		rdb, err := NewClient(func(k string) string { return env[k] })
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !rdb.Options().ContextTimeoutEnabled {
			t.Errorf("%s: ContextTimeoutEnabled is off; readcache refuses such a client", name)
		}
		err = rdb.Ping(context.Background()).Err()
		rdb.Close()
		if tc.refuse == "" && err != nil || tc.refuse != "" && (err == nil || tc.refuse != "*" && !strings.Contains(err.Error(), tc.refuse)) {
			t.Errorf("%s: %v, want %q", name, err, tc.refuse)
		}
	}
	if _, err := NewClient(func(string) string { return "" }); err == nil || !strings.Contains(err.Error(), "REDIS_ADDR: required") {
		t.Errorf("no REDIS_ADDR: %v", err)
	}
}

// REDIS_MODE and a comma-separated REDIS_ADDR: every problem named at once, with what to set.
func TestFromEnvMode(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want []string // in the error; none: valid
	}{
		{map[string]string{"REDIS_MODE": "sentinel", "REDIS_ADDR": "r:6379"}, []string{`REDIS_MODE: "sentinel" is not standalone`}},
		{map[string]string{"REDIS_ADDR": "a:1,b:2"}, []string{"REDIS_ADDR: lists 2 addresses, but a standalone Redis has one", "REDIS_MODE=cluster"}},
		{map[string]string{"REDIS_MODE": "cluster", "REDIS_ADDR": "a:1,,b:x,a:1", "REDIS_DB": "2"}, []string{`REDIS_ADDR: "" is not host:port`, `REDIS_ADDR: "b:x" is not host:port`, "REDIS_ADDR: names a:1 twice", "REDIS_DB: is 2, but a cluster has only database 0"}},
		{map[string]string{"REDIS_MODE": "cluster", "REDIS_ADDR": "a:1,:2,a:70000"}, []string{`":2" is not host:port`, `"a:70000" is not host:port`}},
		{map[string]string{"REDIS_MODE": "cluster", "REDIS_ADDR": "10.0.0.5:6379"}, nil},
		{map[string]string{"REDIS_MODE": "cluster", "REDIS_ADDR": "10.0.0.5:11000, 10.0.0.5:11001,[fd00::1]:11002"}, nil},
		{map[string]string{"REDIS_ADDR": "redis.internal:6378"}, nil},
	} {
		c, err := FromEnv(func(k string) string { return tc.env[k] })
		if len(tc.want) == 0 {
			if err != nil {
				t.Errorf("%v: %v", tc.env, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%v: no error, config %+v", tc.env, c)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%v:\n%v\ndoes not say %q", tc.env, err, w)
			}
		}
	}
	c, err := FromEnv(func(k string) string {
		return map[string]string{"REDIS_MODE": "cluster", "REDIS_ADDR": "10.0.0.5:11000, 10.0.0.5:11001"}[k]
	})
	if err != nil || c.Mode != ModeCluster || len(c.Addrs) != 2 || c.Addrs[1] != "10.0.0.5:11001" || c.Addr != "10.0.0.5:11000" {
		t.Fatalf("%+v %v", c, err)
	}
	// A cluster configuration never becomes a single-node client, and a standalone one never a cluster's.
	if _, err := c.Options(); !errors.Is(err, ErrCluster) {
		t.Errorf("Options of a cluster: %v", err)
	}
	if _, err := c.NewClient(); !errors.Is(err, ErrCluster) || !strings.Contains(err.Error(), "REDIS_MODE") {
		t.Errorf("NewClient of a cluster: %v", err)
	}
	c.Mode = ModeStandalone
	if _, err := c.ClusterOptions(); err == nil {
		t.Error("ClusterOptions of a standalone Redis")
	}
	c, err = FromEnv(func(k string) string { return map[string]string{"REDIS_ADDR": "r:6379"}[k] })
	if err != nil || c.Mode != ModeStandalone || len(c.Addrs) != 1 {
		t.Fatalf("default mode: %+v %v", c, err)
	}
}

// NewUniversalClient: for a standalone Redis the client NewClient makes; for a cluster a cluster
// client with the same timeouts, protocol and context deadlines.
func TestNewUniversalClientOptions(t *testing.T) {
	env := map[string]string{"REDIS_ADDR": "r:6379", "REDIS_TIMEOUT": "750ms", "REDIS_PASSWORD": "p"}
	rdb, err := NewUniversalClient(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	single, ok := rdb.(*redis.Client)
	if !ok {
		t.Fatalf("standalone: a %T", rdb)
	}
	c, _ := FromEnv(func(k string) string { return env[k] })
	want, _ := c.Options()
	if got := single.Options(); got.Addr != want.Addr || got.Protocol != 2 || got.ReadTimeout != 750*time.Millisecond || !got.ContextTimeoutEnabled || got.Password != "p" || got.MaxRetries != want.MaxRetries {
		t.Errorf("standalone options %+v, want those of Options %+v", got, want)
	}
	env["REDIS_MODE"], env["REDIS_ADDR"] = "cluster", "a:1,b:2"
	rdb, err = NewUniversalClient(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	cl, ok := rdb.(*redis.ClusterClient)
	if !ok {
		t.Fatalf("cluster: a %T", rdb)
	}
	o := cl.Options()
	if len(o.Addrs) != 2 || o.Protocol != 2 || o.ReadTimeout != 750*time.Millisecond || o.WriteTimeout != 750*time.Millisecond || o.DialTimeout != 750*time.Millisecond || o.PoolTimeout != 750*time.Millisecond || !o.ContextTimeoutEnabled || o.Password != "p" {
		t.Errorf("cluster options %+v", o)
	}
}

// Which failures make a cluster client reload its slot map: those without a server's answer, and
// CLUSTERDOWN; never a server's ordinary answer or the caller's cancellation.
func TestStaleTopology(t *testing.T) {
	for err, want := range map[error]bool{
		nil:                      false,
		redis.Nil:                false,
		context.Canceled:         false,
		redis.ErrClosed:          false,
		context.DeadlineExceeded: true,
		&net.OpError{Op: "dial", Err: errors.New("connection refused")}: true,
		io.EOF: true,
	} {
		if got := staleTopology(err); got != want {
			t.Errorf("%v: %v, want %v", err, got, want)
		}
	}
}
