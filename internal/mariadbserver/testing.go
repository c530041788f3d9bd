package mariadbserver

import (
	"context"
	"database/sql"
	"testing"
)

// TestServer is a mariadbd owned by one test, shut down when the test ends.
type TestServer struct {
	*Server
	t testing.TB
}

// StartForTest starts mariadbd for t (in a temporary directory unless opts.Dir is set) and waits until
// it accepts connections. A test that cannot have its server fails; it never skips, so a CI machine
// without mariadb-server goes red instead of silently testing nothing.
func StartForTest(t testing.TB, opts Options) *TestServer {
	t.Helper()
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	s, err := Start(context.Background(), opts)
	if err != nil {
		t.Fatalf("%v", err)
	}
	t.Cleanup(s.Stop)
	return &TestServer{Server: s, t: t}
}

// DB opens database name (created if missing), closed when the test ends.
func (s *TestServer) DB(name string) *sql.DB {
	s.t.Helper()
	if name != "" {
		root := s.open("")
		if _, err := root.Exec("CREATE DATABASE IF NOT EXISTS `" + name + "`"); err != nil {
			s.t.Fatalf("mariadbserver: create database %s: %v", name, err)
		}
	}
	return s.open(name)
}

func (s *TestServer) open(name string) *sql.DB {
	db, err := sql.Open("mysql", s.DSN(name))
	if err != nil {
		s.t.Fatalf("mariadbserver: %v", err)
	}
	s.t.Cleanup(func() { _ = db.Close() })
	return db
}

// Exec runs statements on db, failing the test on error.
func (s *TestServer) Exec(db *sql.DB, stmts ...string) {
	s.t.Helper()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			s.t.Fatalf("mariadbserver: %s: %v", q, err)
		}
	}
}
