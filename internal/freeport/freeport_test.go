package freeport

import (
	"net"
	"strconv"
	"testing"
)

// The port given is free: a listener can bind it.
func TestGet(t *testing.T) {
	p, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	if p <= 0 || p > 65535 {
		t.Fatalf("port %d", p)
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
	if err != nil {
		t.Fatalf("port %d is not free: %v", p, err)
	}
	l.Close()
}
