package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
)

// The bound of each table's key JSON is at least the key Debezium would publish for the widest row
// MariaDB accepts (encoded as Debezium does, by mysqlrow), and the tables whose key can pass Pub/Sub's
// 1,024-byte ordering key are named, with exit status 1.
func TestKeyCheck(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	db := srv.DB("")
	ctx := context.Background()
	srv.Exec(db,
		"CREATE DATABASE k",
		"CREATE TABLE k.ints (id INT NOT NULL PRIMARY KEY)",
		"CREATE TABLE k.wide (k VARCHAR(255) CHARACTER SET utf8mb4 NOT NULL PRIMARY KEY)",
		"CREATE TABLE k.mid (a VARCHAR(100) CHARACTER SET utf8mb4 NOT NULL, b VARCHAR(80) CHARACTER SET utf8mb4 NOT NULL, PRIMARY KEY (a, b))",
		"CREATE TABLE k.mixed (ts TIMESTAMP(6) NOT NULL, d DECIMAL(30,10) NOT NULL, ubi BIGINT UNSIGNED NOT NULL, bin BINARY(16) NOT NULL, e ENUM('a','it''s long') NOT NULL, dt DATETIME(6) NOT NULL, tm TIME(6) NOT NULL, PRIMARY KEY (ts, d, ubi, bin, e, dt, tm))",
		"CREATE TABLE k.nokey (x INT)",
		"INSERT INTO k.ints VALUES (-2147483648)",
		"INSERT INTO k.wide VALUES (REPEAT('😀', 255))",
		"INSERT INTO k.mid VALUES (REPEAT(CHAR(1), 100), REPEAT(CHAR(31), 80))",
		"INSERT INTO k.mixed VALUES ('2038-01-19 03:14:07.999999', '-12345678901234567890.0123456789', 18446744073709551615, UNHEX('FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF'), 'it''s long', '1000-01-01 00:00:00.000001', '-838:59:59.000000')",
	)
	bounds, err := keyBounds(ctx, db, []string{"k"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]keyBound{}
	for _, b := range bounds {
		got[b.table] = b
	}
	// The real key JSON of the widest rows, as Debezium writes it.
	check := db
	for _, table := range []string{"ints", "wide", "mid", "mixed"} {
		tbl, err := mysqlrow.LoadTable(ctx, check, "k", table)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := check.QueryContext(ctx, "SELECT "+tbl.SelectList()+" FROM "+tbl.QualifiedName())
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			row, err := tbl.ScanRow(rows)
			if err != nil {
				t.Fatal(err)
			}
			key, err := tbl.Key(row)
			if err != nil {
				t.Fatal(err)
			}
			n := len(key.AppendJSON(nil, nil))
			b := got["k."+table]
			if n > b.escaped || (!strings.Contains(string(key.AppendJSON(nil, nil)), `\u00`) && n > b.plain) {
				t.Errorf("k.%s: a real key is %d bytes, above the bound %d/%d: %.80s", table, n, b.plain, b.escaped, key.AppendJSON(nil, nil))
			}
			t.Logf("k.%s: real key %d bytes, bound %d (%d with escapes)", table, n, b.plain, b.escaped)
		}
		rows.Close()
	}
	var out, errb bytes.Buffer
	code := run(ctx, []string{"keycheck", "-dsn", srv.DSN(""), "-databases", "k"}, func(string) string { return "" }, &out, &errb)
	if code != 1 {
		t.Fatalf("exit %d, want 1: %s %s", code, out.String(), errb.String())
	}
	for _, want := range []string{
		"k.ints: key (id) at most 18 bytes: fits",
		"k.wide: key (k) up to 1028 bytes: CAN EXCEED",
		"k.mid: key (a, b) up to ",
		"if its strings hold control characters",
		"k.mixed: key (ts, d, ubi, bin, e, dt, tm) at most",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not say %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := run(ctx, []string{"keycheck", "-dsn", srv.DSN(""), "-tables", "k.ints,k.nokey"}, func(string) string { return "" }, &out, &errb); code != 1 || !strings.Contains(out.String(), "k.nokey: cannot bound its key (no primary key") {
		t.Fatalf("a table without a key: %d\n%s", code, out.String())
	}
	out.Reset()
	if code := run(ctx, []string{"keycheck"}, func(k string) string {
		return map[string]string{"MYSQL_DSN": srv.DSN(""), "CACHE_TABLES": "k.ints"}[k]
	}, &out, &errb); code != 0 || !strings.Contains(out.String(), "k.ints") || strings.Contains(out.String(), "k.wide") {
		t.Fatalf("CACHE_TABLES as the default: %d\n%s", code, out.String())
	}
	if code := run(ctx, []string{"keycheck"}, func(string) string { return "" }, &out, &errb); code != 2 {
		t.Fatalf("no DSN: exit %d", code)
	}
}
