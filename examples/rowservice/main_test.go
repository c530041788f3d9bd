package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy/published"
)

// Against a database and a Redis that, like Cloud SQL with ENCRYPTED_ONLY and Memorystore with
// in-transit encryption and AUTH, take TLS connections only, configured as the README says.
func TestServesRowsThroughTheCache(t *testing.T) {
	my := mariadbserver.StartForTest(t, mariadbserver.Options{TLS: true})
	db := my.DB("shop")
	my.Exec(db, "CREATE TABLE products (sku VARCHAR(16) PRIMARY KEY, price DECIMAL(8,2) NOT NULL)",
		"INSERT INTO products VALUES ('tea', 4.5)",
		"CREATE USER 'reader'@'%' IDENTIFIED BY 'pw'", "GRANT SELECT ON shop.products TO 'reader'@'%'")
	rs := redisserver.StartForTest(t, redisserver.Options{TLS: true, Password: "auth"})
	env := map[string]string{
		"MYSQL_ADDR": my.Addr(), "MYSQL_USER": "reader", "MYSQL_PASSWORD": "pw", "MYSQL_CA_FILE": my.CAFile,
		"REDIS_ADDR": rs.Addr(), "REDIS_TLS": "true", "REDIS_CA_FILE": rs.CAFile, "REDIS_PASSWORD": "auth",
		"READ_L1_SIZE": "0"}
	// The function publishes its policy; this one's CACHE_* settings are the function's (none).
	fn, err := tablepolicy.New(tablepolicy.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := published.Publish(context.Background(), rs.Client(), fn, "test-function", time.Now()); err != nil {
		t.Fatal(err)
	}
	h, closeFn, err := newHandler(context.Background(), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	srv := httptest.NewServer(h)
	defer srv.Close()
	get := func(path string) (int, string, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("X-Cache"), strings.TrimSpace(string(b))
	}
	if code, from, body := get("/rows/shop.products/tea"); code != 200 || from != "database" || body != `{"sku":"tea","price":"4.50"}` {
		t.Fatalf("first read: %d %s %s", code, from, body)
	}
	if code, from, _ := get("/rows/shop.products/tea"); code != 200 || from != "redis" {
		t.Fatalf("second read: %d %s", code, from)
	}
	// The apply function writes a change: the service serves it.
	st := rowcache.NewStore(rs.Client(), time.Hour)
	if _, err := st.Upsert(context.Background(), "shop.products:tea", "cloudsql-cache:truncated:shop.products", rowcache.Version{File: 1, Pos: 9}, []byte(`{"sku":"tea","price":"5.00"}`)); err != nil {
		t.Fatal(err)
	}
	if code, _, body := get("/rows/shop.products/tea"); code != 200 || body != `{"sku":"tea","price":"5.00"}` {
		t.Fatalf("after the change: %d %s", code, body)
	}
	if code, _, _ := get("/rows/shop.products/coffee"); code != 404 {
		t.Fatalf("missing row: %d", code)
	}
	if code, _, _ := get("/rows/shop/tea"); code != 400 {
		t.Fatalf("bad table: %d", code)
	}
}

func TestRefusesBadConfiguration(t *testing.T) {
	_, _, err := newHandler(context.Background(), func(k string) string {
		return map[string]string{"MYSQL_DSN": "root@tcp(127.0.0.1:1)/?parseTime=true", "READ_FILL_TTL": "soon", "READ_POLICY_CHECK": "sometimes"}[k]
	})
	for _, want := range []string{"REDIS_ADDR", "MYSQL_DSN", "READ_FILL_TTL", "READ_POLICY_CHECK"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}

// No fill and the sampler: misses stay misses, every read is judged, and /metrics says so.
func TestNoFillWithTheSampler(t *testing.T) {
	my := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := my.DB("shop")
	my.Exec(db, "CREATE TABLE products (sku VARCHAR(16) PRIMARY KEY, price DECIMAL(8,2) NOT NULL)",
		"INSERT INTO products VALUES ('tea', 4.5)")
	rs := redisserver.StartForTest(t, redisserver.Options{})
	port, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	metrics := fmt.Sprintf("127.0.0.1:%d", port)
	env := map[string]string{"MYSQL_DSN": my.DSN(""), "REDIS_ADDR": rs.Addr(), "READ_L1_SIZE": "0", "READ_MISS": "nofill",
		"READ_SAMPLE_FRACTION": "1", "READ_SAMPLE_MAX_PER_SECOND": "1000000", "METRICS_ADDR": metrics}
	h, closeFn, err := newHandler(context.Background(), func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn()
	srv := httptest.NewServer(h)
	defer srv.Close()
	for i := 0; i < 3; i++ {
		resp, err := http.Get(srv.URL + "/rows/shop.products/tea")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != "database" {
			t.Fatalf("read %d: %d from %s", i, resp.StatusCode, resp.Header.Get("X-Cache"))
		}
	}
	if n := rs.Client().DBSize(context.Background()).Val(); n != 0 {
		t.Fatalf("READ_MISS=nofill wrote %d keys", n)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if strings.Contains(string(b), `cloudsql_cache_read_consistency_total{otel_scope_name="github.com/cloudsql-cache/cloudsql-cache/readcache",otel_scope_schema_url="",otel_scope_version="",result="current",source="database"} 3`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/metrics does not count 3 current reads:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A service whose CACHE_* policy is not the function's published one serves reads but does not fill,
// and /healthz says why; with READ_POLICY_CHECK=off it fills.
func TestDivergedPolicyDoesNotFill(t *testing.T) {
	my := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := my.DB("shop")
	my.Exec(db, "CREATE TABLE products (sku VARCHAR(16) PRIMARY KEY, price DECIMAL(8,2) NOT NULL)",
		"INSERT INTO products VALUES ('tea', 4.5)")
	rs := redisserver.StartForTest(t, redisserver.Options{})
	fn, err := tablepolicy.New(tablepolicy.Config{ExcludeColumns: []string{"shop.products.price"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := published.Publish(context.Background(), rs.Client(), fn, "test-function", time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, check := range []string{"", "off"} {
		env := map[string]string{"MYSQL_DSN": my.DSN(""), "REDIS_ADDR": rs.Addr(), "READ_L1_SIZE": "0", "READ_POLICY_CHECK": check}
		h, closeFn, err := newHandler(context.Background(), func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(h)
		for i := 0; i < 2; i++ {
			resp, err := http.Get(srv.URL + "/rows/shop.products/tea")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			want := "database"
			if check == "off" && i == 1 {
				want = "redis"
			}
			if resp.StatusCode != 200 || resp.Header.Get("X-Cache") != want {
				t.Fatalf("READ_POLICY_CHECK=%q, read %d: %d from %s, want %s", check, i, resp.StatusCode, resp.Header.Get("X-Cache"), want)
			}
		}
		resp, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		wantHealth := "fills off"
		if check == "off" {
			wantHealth = "fills on"
		}
		if !strings.Contains(string(body), wantHealth) || (check == "" && !strings.Contains(string(body), "CACHE_EXCLUDE_COLUMNS")) {
			t.Fatalf("READ_POLICY_CHECK=%q: /healthz %q, want %q (and the setting to change)", check, body, wantHealth)
		}
		srv.Close()
		closeFn()
		rs.Client().Del(context.Background(), "shop.products:tea")
	}
}
