package redisenv

import (
	"strings"
	"testing"
)

// Every problem is reported at once, each naming its variable, in one error.
func TestFromEnvReportsEveryProblem(t *testing.T) {
	env := map[string]string{"REDIS_DB": "x", "REDIS_TLS": "maybe", "REDIS_TIMEOUT": "0s"}
	_, err := FromEnv(func(k string) string { return env[k] })
	if err == nil {
		t.Fatal("no error")
	}
	for _, want := range []string{"REDIS_ADDR: required", `REDIS_DB: "x"`, `REDIS_TLS: "maybe"`, `REDIS_TIMEOUT: "0s"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%q\ndoes not say %q", err, want)
		}
	}
	c, err := FromEnv(func(k string) string { return map[string]string{"REDIS_ADDR": "r:6379"}[k] })
	if err != nil || c.Addr != "r:6379" || c.Timeout.String() != "1s" {
		t.Fatalf("%+v %v", c, err)
	}
}
