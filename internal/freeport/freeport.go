// Package freeport picks a free TCP port on the loopback interface, for a server about to be started
// there (the test and local redis-server, mariadbd, the function).
package freeport

import (
	"fmt"
	"net"
)

// Get asks the kernel for a port on 127.0.0.1 that is free now. Another process may take it before the
// caller's server binds it: servers started on it check that the one answering is theirs and retry on
// another port (see internal/redisserver and internal/mariadbserver).
func Get() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("freeport: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
