package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
)

// cachectl snapshot sends one execute-snapshot signal of type incremental to the signal table that
// grant-debezium created, in the form Debezium reads (data-collections as an anchored pattern, the
// condition as additional-conditions), and refuses with a clear error, sending nothing, what Debezium
// would skip or fail on.
func TestSnapshotSignal(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	root := srv.DB("")
	srv.Exec(root,
		"CREATE DATABASE shop", "CREATE TABLE shop.orders (id INT PRIMARY KEY, n INT)", "CREATE TABLE shop.nokey (n INT)",
		"CREATE DATABASE debezium_state", "CREATE USER 'debezium'@'%' IDENTIFIED BY 'secret'")
	env := map[string]string{"MYSQL_DSN": "root@tcp(" + srv.Addr() + ")/"}
	cachectl := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errb)
		return code, out.String() + errb.String()
	}
	signals := func() int {
		var n int
		if err := root.QueryRow("SELECT COUNT(*) FROM debezium_state.debezium_signal").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	if code, out := cachectl("snapshot", "-table", "shop.orders"); code != 1 || !strings.Contains(out, "no signal table debezium_state.debezium_signal") || !strings.Contains(out, "grant-debezium") {
		t.Fatalf("before grant-debezium: %d %s", code, out)
	}
	if code, out := cachectl("grant-debezium", "-databases", "shop"); code != 0 || !strings.Contains(out, "CREATE TABLE IF NOT EXISTS `debezium_state`.`debezium_signal`") {
		t.Fatalf("grant-debezium: %d %s", code, out)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"-table", "shop"}, 2, `-table "shop": want db.table`},
		{[]string{}, 2, "-table: required"},
		{[]string{"-table", "shop.orders", "-where", "id > 1 -- and"}, 2, "no comments"},
		{[]string{"-table", "shop.orders", "-where", strings.Repeat("x", 3000)}, 2, "shorten the condition"},
		{[]string{"-table", "shop.missing"}, 1, "no table shop.missing"},
		{[]string{"-table", "shop.nokey"}, 1, "has no primary key"},
		{[]string{"-table", "shop.orders", "-where", "nope > 1"}, 1, "the condition"},
	} {
		code, out := cachectl(append([]string{"snapshot"}, tc.args...)...)
		if code != tc.code || !strings.Contains(out, tc.want) {
			t.Errorf("snapshot %q: %d %s, want %d and %q", tc.args, code, out, tc.code, tc.want)
		}
	}
	env["CACHE_TABLES"] = "shop.other"
	if code, out := cachectl("snapshot", "-table", "shop.orders"); code != 2 || !strings.Contains(out, "shop.orders is not cached: it is not in CACHE_TABLES: add it to Terraform's tables and apply first") {
		t.Errorf("a table the function does not cache: %d %s", code, out)
	}
	delete(env, "CACHE_TABLES")
	if n := signals(); n != 0 {
		t.Fatalf("%d signals sent by refused commands", n)
	}
	// A dry run needs no database and sends nothing.
	delete(env, "MYSQL_DSN")
	if code, out := cachectl("snapshot", "-table", "shop.orders", "-dry-run"); code != 0 || !strings.Contains(out, "INSERT INTO `debezium_state`.`debezium_signal`") || !strings.Contains(out, `shop\\.orders`) {
		t.Fatalf("dry run: %d %s", code, out)
	}
	env["MYSQL_DSN"] = "root@tcp(" + srv.Addr() + ")/"
	if n := signals(); n != 0 {
		t.Fatalf("the dry run sent %d signals", n)
	}

	for _, where := range []string{"", "id > 100"} {
		args := []string{"snapshot", "-table", "shop.orders"}
		if where != "" {
			args = append(args, "-where", where)
		}
		code, out := cachectl(args...)
		if code != 0 || !strings.Contains(out, "sent execute-snapshot cloudsql-cache-") {
			t.Fatalf("%q: %d %s", args, code, out)
		}
		var typ, data string
		var got struct {
			DataCollections []string `json:"data-collections"`
			Type            string   `json:"type"`
			Conditions      []struct {
				DataCollection string `json:"data-collection"`
				Filter         string `json:"filter"`
			} `json:"additional-conditions"`
		}
		row := root.QueryRow("SELECT type, data FROM debezium_state.debezium_signal WHERE data LIKE ?", "%"+where+"%")
		if where == "" {
			row = root.QueryRow("SELECT type, data FROM debezium_state.debezium_signal WHERE data NOT LIKE '%additional%'")
		}
		if err := row.Scan(&typ, &data); err != nil {
			t.Fatalf("the signal of %q: %v", args, err)
		}
		if err := json.Unmarshal([]byte(data), &got); err != nil {
			t.Fatalf("data %s: %v", data, err)
		}
		if typ != "execute-snapshot" || got.Type != "incremental" || len(got.DataCollections) != 1 || got.DataCollections[0] != `shop\.orders` {
			t.Errorf("signal %s %s", typ, data)
		}
		if where == "" && len(got.Conditions) != 0 || where != "" && (len(got.Conditions) != 1 || got.Conditions[0].Filter != "("+where+")" || got.Conditions[0].DataCollection != `shop\.orders`) {
			t.Errorf("conditions of %q: %s", where, data)
		}
	}
	if n := signals(); n != 2 {
		t.Errorf("%d signals, want 2", n)
	}
	// Running grant-debezium again keeps the table; -recreate-signal-table makes it afresh, empty.
	if code, out := cachectl("grant-debezium", "-databases", "shop"); code != 0 || signals() != 2 {
		t.Fatalf("grant-debezium again: %d %s", code, out)
	}
	if code, out := cachectl("grant-debezium", "-databases", "shop", "-recreate-signal-table"); code != 0 || signals() != 0 || !strings.Contains(out, "DROP TABLE IF EXISTS `debezium_state`.`debezium_signal`") {
		t.Fatalf("grant-debezium -recreate-signal-table: %d %s", code, out)
	}
}
