package main

import (
	"bytes"
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
)

// grant-debezium leaves the Debezium user exactly the privileges the connector and its state stores
// need, whatever it held before (Cloud SQL's cloudsqlsuperuser role, modelled here as a MariaDB role
// with every privilege), and running it again changes nothing.
func TestGrantDebezium(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{})
	root := srv.DB("")
	srv.Exec(root,
		"CREATE DATABASE shop", "CREATE TABLE shop.orders (id INT PRIMARY KEY)", "INSERT INTO shop.orders VALUES (1)",
		"CREATE DATABASE hr", "CREATE TABLE hr.salaries (id INT PRIMARY KEY)",
		"CREATE DATABASE debezium_state",
		"CREATE ROLE cloudsqlsuperuser", "GRANT ALL PRIVILEGES ON *.* TO cloudsqlsuperuser WITH GRANT OPTION",
		"CREATE USER 'debezium'@'%' IDENTIFIED BY 'secret'", "GRANT cloudsqlsuperuser TO 'debezium'@'%'",
		"SET DEFAULT ROLE cloudsqlsuperuser FOR 'debezium'@'%'", "GRANT SELECT ON hr.* TO 'debezium'@'%'")
	env := map[string]string{"MYSQL_DSN": "root@tcp(" + srv.Addr() + ")/"}
	grant := func() (int, string) {
		var out, errb bytes.Buffer
		code := run(context.Background(), []string{"grant-debezium", "-databases", "shop"}, func(k string) string { return env[k] }, &out, &errb)
		return code, out.String() + errb.String()
	}
	code, out := grant()
	if code != 0 {
		t.Fatalf("grant-debezium: %d\n%s", code, out)
	}
	first := grantsOf(t, root)
	for _, want := range []string{"RELOAD", "SHOW DATABASES", "ON `shop`.*", "ON `debezium_state`.*"} {
		if !strings.Contains(first, want) {
			t.Errorf("the grants do not hold %q:\n%s", want, first)
		}
	}
	for _, gone := range []string{"cloudsqlsuperuser", "`hr`", "WITH GRANT OPTION", "ALL PRIVILEGES ON *.*"} {
		if strings.Contains(first, gone) {
			t.Errorf("the grants still hold %q:\n%s", gone, first)
		}
	}
	if code, out := grant(); code != 0 || grantsOf(t, root) != first {
		t.Errorf("a second run changed the grants or failed: %d\n%s", code, out)
	}
	// As the Debezium user: it reads the captured database and the binlog, writes its state, and no more.
	cfg := mysql.NewConfig()
	cfg.User, cfg.Passwd, cfg.Net, cfg.Addr = "debezium", "secret", "tcp", srv.Addr()
	dbz, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	defer dbz.Close()
	for q, ok := range map[string]bool{
		"SELECT id FROM shop.orders": true,
		"SHOW BINARY LOGS":           true,
		"CREATE TABLE debezium_state.offsets (id INT PRIMARY KEY)": true,
		"SELECT id FROM hr.salaries":                               false,
		"INSERT INTO shop.orders VALUES (2)":                       false,
		"CREATE USER 'x'@'%'":                                      false,
	} {
		_, err := dbz.Exec(q)
		if (err == nil) != ok {
			t.Errorf("as debezium, %s: error %v, want allowed=%v", q, err, ok)
		}
	}
}

func grantsOf(t *testing.T, db *sql.DB) string {
	rows, err := db.Query("SHOW GRANTS FOR 'debezium'@'%'")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var lines []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		lines = append(lines, l)
	}
	return strings.Join(lines, "\n")
}
