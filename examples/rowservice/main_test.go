package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
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
		return map[string]string{"MYSQL_DSN": "root@tcp(127.0.0.1:1)/?parseTime=true", "READ_FILL_TTL": "soon"}[k]
	})
	for _, want := range []string{"REDIS_ADDR", "MYSQL_DSN", "READ_FILL_TTL"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %s: %v", want, err)
		}
	}
}
