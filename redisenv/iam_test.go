package redisenv

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
)

type tokens struct {
	token string
	err   error
	calls int
}

func (t *tokens) Token() (*oauth2.Token, error) {
	t.calls++
	if t.err != nil {
		return nil, t.err
	}
	return &oauth2.Token{AccessToken: t.token, Expiry: time.Now().Add(time.Hour)}, nil
}

// With REDIS_IAM_AUTH the access token is each connection's AUTH password, on a cluster (whose nodes
// require it, as Memorystore's do with IAM authentication) and on one instance; a wrong token or none
// fails the command, and REDIS_PASSWORD beside it is refused at start-up.
func TestIAMAuth(t *testing.T) {
	const token = "ya29.access-token"
	rc := redisserver.StartClusterForTest(t, redisserver.ClusterOptions{Primaries: 3, Password: token})
	one := redisserver.StartForTest(t, redisserver.Options{Password: token})
	ctx := context.Background()
	for _, tc := range []struct {
		mode, addr string
	}{{ModeCluster, rc.Seeds()}, {ModeStandalone, one.Addr()}} {
		c, err := FromEnv(func(k string) string {
			return map[string]string{"REDIS_MODE": tc.mode, "REDIS_ADDR": tc.addr, "REDIS_IAM_AUTH": "true", "REDIS_TIMEOUT": "2s"}[k]
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, ts := range []struct {
			src    *tokens
			refuse string
		}{{&tokens{token: token}, ""}, {&tokens{token: "another"}, "WRONGPASS"}, {&tokens{err: errors.New("metadata server unreachable")}, "IAM access token"}} {
			c.TokenSource = ts.src
			rdb, err := c.NewUniversalClient()
			if err != nil {
				t.Fatal(err)
			}
			err = rdb.Set(ctx, "k", "v", 0).Err()
			_ = rdb.Close()
			if ts.refuse == "" && err != nil || ts.refuse != "" && (err == nil || !strings.Contains(err.Error(), ts.refuse)) {
				t.Errorf("%s, token %q: %v, want %q", tc.mode, ts.src.token, err, ts.refuse)
			}
			if ts.src.calls == 0 {
				t.Errorf("%s: the token source was never asked", tc.mode)
			}
		}
	}
	_, err := FromEnv(func(k string) string {
		return map[string]string{"REDIS_ADDR": "a:1", "REDIS_IAM_AUTH": "true", "REDIS_PASSWORD": "x"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), "REDIS_IAM_AUTH") {
		t.Errorf("REDIS_IAM_AUTH with REDIS_PASSWORD: %v", err)
	}
}
