package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
)

// A Redis already on the port is refused, not reused: its data, its configuration and its owner are
// someone else's.
func TestRedisAlreadyOnThePortIsRefused(t *testing.T) {
	other := redisserver.StartForTest(t, redisserver.Options{})
	_, port, _ := strings.Cut(other.Addr(), ":")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"-state", t.TempDir(), "-redis-port", port, "-module", "../.."}, func(string) string { return "" }, &out, &errb, nil)
	if code != 2 || !strings.Contains(errb.String(), "taken by another process") || !strings.Contains(errb.String(), "REDIS_ADDR=127.0.0.1:"+port) {
		t.Fatalf("exit %d, want 2 and the port named as taken:\n%s%s", code, out.String(), errb.String())
	}
}

// With an absolute -state, the function and its own Redis start, and apply a change.
func TestAbsoluteStateServes(t *testing.T) {
	state := t.TempDir() // absolute
	redisPort, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	data, err := os.ReadFile("../../testdata/debezium/mysql-create-noschema-serde-testfixture.json")
	if err != nil {
		t.Fatal(err)
	}
	answer := ""
	var out, errb bytes.Buffer
	code := run(ctx, []string{"-state", state, "-redis-port", itoa(redisPort), "-port", itoa(port), "-module", "../.."}, func(string) string { return "" }, &out, &errb, func(url string) {
		defer cancel()
		body := `{"message":{"messageId":"1","orderingKey":"{\"id\":1004}","data":"` + base64.StdEncoding.EncodeToString(data) + `"}}`
		resp, err := http.Post(url, "application/json", strings.NewReader(body))
		if err != nil {
			answer = err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		answer = strings.TrimSpace(string(b))
	})
	if code != 0 || answer != "applied" {
		t.Fatalf("exit %d, answer %q\n%s%s", code, answer, out.String(), errb.String())
	}
	if _, err := os.Stat(filepath.Join(state, "redis", "redis.log")); err != nil {
		t.Errorf("no redis-server under the absolute -state: %v", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
