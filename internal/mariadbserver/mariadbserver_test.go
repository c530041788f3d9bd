package mariadbserver

import (
	"context"
	"database/sql"
	"errors"
	"net"
	"strings"
	"testing"
)

// A server asked for a port another process holds reports the port lost (so Start retries on another
// one) instead of waiting for, or mistaking, whatever listens there.
func TestTakenPortIsLost(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s, err := Start(context.Background(), Options{Dir: t.TempDir(), Port: l.Addr().(*net.TCPAddr).Port})
	if err == nil {
		s.Stop()
	}
	if !errors.Is(err, errPortLost) {
		t.Fatalf("err = %v, want a lost port", err)
	}
}

// A TLS server refuses connections without TLS, as Cloud SQL with ssl_mode ENCRYPTED_ONLY does, and
// DSN reaches it over TLS verified against its CA.
func TestTLSOnly(t *testing.T) {
	s := StartForTest(t, Options{TLS: true})
	if s.CAFile == "" {
		t.Fatal("no CA file")
	}
	var name, cipher string
	if err := s.DB("").QueryRow("SHOW SESSION STATUS LIKE 'Ssl_cipher'").Scan(&name, &cipher); err != nil || cipher == "" {
		t.Fatalf("DSN's connection: cipher %q, %v", cipher, err)
	}
	plain, err := sql.Open("mysql", "root@tcp("+s.Addr()+")/")
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	// MariaDB refuses it as "Access denied" (1045): the same user is let in over TLS above.
	if err := plain.Ping(); err == nil || !strings.Contains(err.Error(), "Error 1045") {
		t.Fatalf("a connection without TLS: %v, want it refused", err)
	}
	var required string
	if err := s.DB("").QueryRow("SELECT @@require_secure_transport").Scan(&required); err != nil || required != "1" {
		t.Fatalf("require_secure_transport = %q, %v", required, err)
	}
}
