package mysqlenv

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testcerts"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Every problem is reported at once, each naming its variable.
func TestFromEnvReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		env  map[string]string
		want []string
	}{
		{map[string]string{}, []string{"MYSQL_ADDR: required", "MYSQL_USER: required"}},
		{map[string]string{"MYSQL_ADDR": "nohost", "MYSQL_USER": "u", "MYSQL_TLS": "maybe", "MYSQL_CONNECT_TIMEOUT": "0s",
			"MYSQL_PASSWORD": "p", "MYSQL_PASSWORD_FILE": filepath.Join(dir, "pw")},
			[]string{`MYSQL_ADDR: "nohost" is not host:port`, `MYSQL_TLS: "maybe"`, `MYSQL_CONNECT_TIMEOUT: "0s"`, "MYSQL_PASSWORD_FILE: is set together with MYSQL_PASSWORD"}},
		{map[string]string{"MYSQL_ADDR": "h:3306", "MYSQL_USER": "u", "MYSQL_TLS": "verify-ca", "MYSQL_TLS_SERVER_NAME": "x"},
			[]string{"MYSQL_CA_FILE: required with MYSQL_TLS=verify-ca", "MYSQL_TLS_SERVER_NAME: is set but MYSQL_TLS is not verify-identity"}},
		{map[string]string{"MYSQL_ADDR": "h:3306", "MYSQL_USER": "u", "MYSQL_TLS": "require", "MYSQL_CA_FILE": "/nonexistent.pem"},
			[]string{"MYSQL_CA_FILE: is set but MYSQL_TLS=require does not verify"}},
		{map[string]string{"MYSQL_ADDR": "h:3306", "MYSQL_USER": "u", "MYSQL_CA_FILE": "/nonexistent.pem", "MYSQL_PASSWORD_FILE": "/nonexistent"},
			[]string{"MYSQL_CA_FILE: cannot read the CA file", "MYSQL_PASSWORD_FILE: cannot read the password"}},
		{map[string]string{"MYSQL_DSN": "u@tcp(h:1)/?parseTime=true", "MYSQL_ADDR": "h:1", "MYSQL_DATABASE": "d"},
			[]string{"MYSQL_ADDR: is set together with MYSQL_DSN", "MYSQL_DATABASE: is set together with MYSQL_DSN", "MYSQL_DSN: mysqlrow: DSN has parseTime=true"}},
		{map[string]string{"MYSQL_DSN": "u@tcp(h:1)/?tls=true"}, []string{"MYSQL_DSN: sets tls=true"}},
		{map[string]string{"MYSQL_DSN": "not a dsn"}, []string{"MYSQL_DSN: not a go-sql-driver/mysql DSN"}},
	} {
		_, err := FromEnv(env(tc.env))
		for _, want := range tc.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%v:\n%v\ndoes not say %q", tc.env, err, want)
			}
		}
	}
	c, err := FromEnv(env(map[string]string{"MYSQL_ADDR": "10.0.0.5:3306", "MYSQL_USER": "reader", "MYSQL_PASSWORD": " p@ss:/ "}))
	if err != nil || c.TLS != TLSDisable || c.Password != " p@ss:/ " || c.ConnectTimeout != 5*time.Second {
		t.Fatalf("%+v %v", c, err)
	}
}

// Against a server that, like Cloud SQL with ssl_mode ENCRYPTED_ONLY, refuses connections without
// TLS: each mode connects or is refused as its documentation says, and a connection it makes has the
// session readcache needs.
func TestTLSModes(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{TLS: true})
	root := srv.DB("app")
	srv.Exec(root, "CREATE TABLE t (id INT PRIMARY KEY, at TIMESTAMP NOT NULL)", "INSERT INTO t VALUES (1, '2026-01-02 03:04:05')",
		"CREATE USER 'reader'@'%' IDENTIFIED BY 'secret pw'", "GRANT SELECT ON app.t TO 'reader'@'%'")
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte("secret pw\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	otherDir := filepath.Join(dir, "other")
	if err := os.Mkdir(otherDir, 0o700); err != nil {
		t.Fatal(err)
	}
	otherCA, err := testcerts.Write(otherDir) // a CA that did not sign the server's certificate
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{"MYSQL_ADDR": srv.Addr(), "MYSQL_USER": "reader", "MYSQL_PASSWORD_FILE": pwFile}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for name, tc := range map[string]struct {
		env    map[string]string
		refuse string // "" when the connection must work
	}{
		"disable (a plain connection)":    {with(), "Error 1045"},
		"require":                         {with("MYSQL_TLS", "require"), ""},
		"verify-ca":                       {with("MYSQL_CA_FILE", srv.CAFile), ""},
		"verify-ca, another CA":           {with("MYSQL_CA_FILE", otherCA), "not signed by MYSQL_CA_FILE's CA"},
		"verify-identity":                 {with("MYSQL_TLS", "verify-identity", "MYSQL_CA_FILE", srv.CAFile), ""},
		"verify-identity, another name":   {with("MYSQL_TLS", "verify-identity", "MYSQL_CA_FILE", srv.CAFile, "MYSQL_TLS_SERVER_NAME", "db.example"), "db.example"},
		"verify-identity, system roots":   {with("MYSQL_TLS", "verify-identity"), "unknown authority"},
		"verify-ca, a wrong password":     {with("MYSQL_CA_FILE", srv.CAFile, "MYSQL_PASSWORD_FILE", "", "MYSQL_PASSWORD", "guess"), "Error 1045"},
		"verify-ca, a DSN":                {map[string]string{"MYSQL_DSN": "reader:secret pw@tcp(" + srv.Addr() + ")/app", "MYSQL_CA_FILE": srv.CAFile}, ""},
		"verify-ca, another CA and a DSN": {map[string]string{"MYSQL_DSN": "reader:secret pw@tcp(" + srv.Addr() + ")/app", "MYSQL_CA_FILE": otherCA}, "not signed by"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := FromEnv(env(tc.env))
			if err != nil {
				t.Fatal(err)
			}
			db, err := c.Open()
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var cipher, tz, at string
			err = db.QueryRowContext(ctx, "SELECT (SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = 'SSL_CIPHER'), @@session.time_zone, (SELECT at FROM app.t WHERE id = 1)").Scan(&cipher, &tz, &at)
			if tc.refuse != "" {
				if err == nil || !strings.Contains(err.Error(), tc.refuse) {
					t.Fatalf("connected (%v), want a refusal saying %q", err, tc.refuse)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// Encrypted, in UTC, and DATETIME/TIMESTAMP as the server's text (parseTime off).
			if cipher == "" || tz != "+00:00" || at != "2026-01-02 03:04:05" {
				t.Fatalf("cipher %q, time zone %q, at %q", cipher, tz, at)
			}
			// The same connection as a DSN string, for code that takes one.
			dsn, err := c.FormatDSN()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := mysqlrow.CheckDSN(dsn); err != nil {
				t.Fatalf("%s: %v", dsn, err)
			}
		})
	}
}

// FormatDSN's DSN opens with database/sql's own Open, TLS included, and a wrong CA is refused there too.
func TestFormatDSN(t *testing.T) {
	srv := mariadbserver.StartForTest(t, mariadbserver.Options{TLS: true})
	otherCA, err := testcerts.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for ca, ok := range map[string]bool{srv.CAFile: true, otherCA: false} {
		c, err := FromEnv(env(map[string]string{"MYSQL_ADDR": srv.Addr(), "MYSQL_USER": "root", "MYSQL_CA_FILE": ca}))
		if err != nil {
			t.Fatal(err)
		}
		dsn, err := c.FormatDSN()
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(dsn, "tls=mysqlenv-") {
			t.Fatalf("%s: no registered TLS configuration", dsn)
		}
		db, err := sqlOpen(dsn)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Ping()
		db.Close()
		if (err == nil) != ok {
			t.Errorf("CA %s: %v, want ok=%v", ca, err, ok)
		}
	}
}

func sqlOpen(dsn string) (*sql.DB, error) { return sql.Open("mysql", dsn) }
