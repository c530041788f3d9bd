// Package testredis starts a real redis-server for tests: on a free loopback port, in a temporary
// directory, without persistence, stopped when the test ends. A test that cannot start one fails; it
// never skips, so a CI machine without redis-server goes red instead of silently testing nothing.
package testredis

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/local/redisproc"
)

// Options configure a test server.
type Options struct {
	// Password turns on AUTH (requirepass), as Memorystore's AUTH does.
	Password string
	// TLS serves TLS only (no plaintext port), as Memorystore with in-transit encryption does, with a
	// certificate signed by a fresh test CA whose PEM is then in Server.CAFile.
	TLS bool
}

// Server is a redis-server process owned by one test.
type Server struct {
	t    testing.TB
	dir  string
	port int
	opts Options
	// CAFile is the PEM of the CA that signed the server's certificate (Options.TLS).
	CAFile string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has exited
}

// Start launches a plain redis-server and waits until it answers PING.
func Start(t testing.TB) *Server { return StartWith(t, Options{}) }

// StartWith launches redis-server with opts and waits until it answers PING.
func StartWith(t testing.TB, opts Options) *Server {
	t.Helper()
	_, err := exec.LookPath("redis-server")
	if err != nil {
		t.Fatalf("testredis: redis-server not found on PATH (install it: apt-get install redis-server): %v", err)
	}
	s := &Server{t: t, dir: t.TempDir(), opts: opts}
	if opts.TLS {
		s.CAFile = writeCerts(t, s.dir)
	}
	t.Cleanup(s.Stop)
	// A free port can be taken by another test process between the probe and redis-server's bind: a
	// server that could not bind is started again on another port.
	for attempt := 0; attempt < 3; attempt++ {
		if s.port, err = freeport.Get(); err != nil {
			t.Fatalf("testredis: %v", err)
		}
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("testredis: %v", err)
	return nil
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Client returns a go-redis client for the server, closed when the test ends.
func (s *Server) Client() *redis.Client {
	c := redis.NewClient(s.options())
	s.t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *Server) options() *redis.Options {
	o := &redis.Options{Addr: s.Addr(), Password: s.opts.Password}
	if s.opts.TLS {
		o.TLSConfig = clientTLS(s.t, s.CAFile)
	}
	return o
}

// start launches redis-server on s.port and waits until it answers PING. An error means it could not
// serve on that port (it exited, or another server answers there); anything else fails the test.
func (s *Server) start() error {
	s.t.Helper()
	args := []string{
		"--bind", "127.0.0.1",
		"--dir", s.dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", filepath.Join(s.dir, "redis.log"),
	}
	if s.opts.TLS {
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(s.port),
			"--tls-cert-file", filepath.Join(s.dir, "server.pem"),
			"--tls-key-file", filepath.Join(s.dir, "server.key"),
			"--tls-ca-cert-file", s.CAFile,
			"--tls-auth-clients", "no")
	} else {
		args = append(args, "--port", strconv.Itoa(s.port))
	}
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password)
	}
	cmd := exec.Command("redis-server", args...)
	// Killed with the test binary, even when a timeout kills that: no server outlives its test.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("testredis: start redis-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.mu.Lock()
	s.cmd, s.exited = cmd, exited
	s.mu.Unlock()
	o := s.options()
	o.MaxRetries = -1
	c := redis.NewClient(o)
	defer c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-exited:
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server on %s exited: %s", s.Addr(), tail(log))
		default:
		}
		// Another process's server on this port would answer too: make sure it is ours.
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := redisproc.CheckOurs(ctx, c, cmd.Process.Pid)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, redisproc.ErrPortLost) {
			s.Stop()
			return fmt.Errorf("port %d: %w", s.port, err)
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.t.Fatalf("testredis: redis-server on %s did not answer: %v\n%s", s.Addr(), err, tail(log))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Stop kills the server (as a crash would: no shutdown save) and waits for it to exit.
func (s *Server) Stop() {
	s.mu.Lock()
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// Restart starts the server again on the same port after Stop. Its data is gone, as after a crash of
// an instance without persistence.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("testredis: restart on the same port: %v", err)
	}
}

func tail(b []byte) string {
	lines := []string{}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
