package mariadbserver

import (
	"context"
	"errors"
	"net"
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
