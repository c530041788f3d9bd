// Package testmysql starts a real MariaDB for tests: on a free loopback port, in a temporary directory,
// with a ROW/FULL/GTID binlog, stopped when the test ends. A test that cannot start one fails; it never
// skips, so a CI machine without mariadb-server goes red instead of silently testing nothing.
package testmysql

import (
	"context"
	"database/sql"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/local/mariadb"
)

// Server is a mariadbd owned by one test.
type Server struct {
	*mariadb.Server
	t testing.TB
}

// Start launches mariadbd and waits until it accepts connections.
func Start(t testing.TB) *Server {
	t.Helper()
	s, err := mariadb.Start(context.Background(), mariadb.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatalf("testmysql: %v", err)
	}
	t.Cleanup(s.Stop)
	return &Server{Server: s, t: t}
}

// DB opens database name (created if missing), closed when the test ends.
func (s *Server) DB(name string) *sql.DB {
	s.t.Helper()
	if name != "" {
		root := s.open("")
		if _, err := root.Exec("CREATE DATABASE IF NOT EXISTS `" + name + "`"); err != nil {
			s.t.Fatalf("testmysql: create database %s: %v", name, err)
		}
	}
	return s.open(name)
}

func (s *Server) open(name string) *sql.DB {
	db, err := sql.Open("mysql", s.DSN(name))
	if err != nil {
		s.t.Fatalf("testmysql: %v", err)
	}
	s.t.Cleanup(func() { _ = db.Close() })
	return db
}

// Exec runs statements on database name, failing the test on error.
func (s *Server) Exec(db *sql.DB, stmts ...string) {
	s.t.Helper()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			s.t.Fatalf("testmysql: %s: %v", q, err)
		}
	}
}
