// Package redisproc runs a private redis-server on loopback in a directory of its own, for `make run`
// and the end-to-end tests.
package redisproc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Options configure a server.
type Options struct {
	Dir  string
	Port int
	// Persistent turns on the append-only file, fsynced on every write, so a restart keeps every
	// acknowledged write: the model of Memorystore's standard tier, whose failover keeps the data.
	// Without it a restart empties the cache.
	Persistent bool
}

// Server is a running redis-server.
type Server struct {
	opts Options
	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// Start starts redis-server and waits until it answers PING.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redisproc: redis-server not found on PATH (apt-get install redis-server): %w", err)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	s := &Server{opts: opts}
	return s, s.start(ctx)
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.opts.Port) }

func (s *Server) start(ctx context.Context) error {
	args := []string{"--port", strconv.Itoa(s.opts.Port), "--bind", "127.0.0.1", "--dir", s.opts.Dir,
		"--save", "", "--daemonize", "no", "--logfile", filepath.Join(s.opts.Dir, "redis.log")}
	if s.opts.Persistent {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command("redis-server", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM} // stopped by us, or when we die
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redisproc: start: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(15 * time.Second)
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := c.Ping(pctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			log, _ := os.ReadFile(filepath.Join(s.opts.Dir, "redis.log"))
			return fmt.Errorf("redisproc: redis-server exited: %s", log)
		default:
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redisproc: no PING answer after 15s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop shuts redis-server down (SIGTERM) and waits.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills redis-server at once.
func (s *Server) Kill() { s.signal(syscall.SIGKILL) }

func (s *Server) signal(sig syscall.Signal) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart kills the server and starts it again on the same port and directory.
func (s *Server) Restart(ctx context.Context) error {
	s.Kill()
	return s.start(ctx)
}
