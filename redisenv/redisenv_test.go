package redisenv

import (
	"context"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testcerts"
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
