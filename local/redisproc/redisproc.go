// Package redisproc runs a private redis-server on loopback in a directory of its own, for `make run`
// and the end-to-end tests.
package redisproc

import (
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
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
)

// Options configure a server.
type Options struct {
	Dir string
	// Port on 127.0.0.1; 0 picks a free one.
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
	if opts.Port != 0 {
		return s, s.start(ctx)
	}
	// The port is picked just before the start; if another process takes it meanwhile (redis-server
	// exits, or another server answers there), try another.
	for attempt := 1; ; attempt++ {
		if s.opts.Port, err = freeport.Get(); err != nil {
			return nil, err
		}
		err = s.start(ctx)
		if err == nil || !errors.Is(err, ErrPortLost) || attempt == startAttempts || ctx.Err() != nil {
			return s, err
		}
	}
}

// startAttempts bounds the tries with a fresh port when redis-server could not have the one picked.
const startAttempts = 3

// ErrPortLost marks a start that failed because the port was not ours: redis-server exited during
// start-up (the usual cause: another process took the port) or another server answered on it.
var ErrPortLost = errors.New("the port may be another process's")

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
		select {
		case <-done:
			s.Kill() // forgets the exited process
			log, _ := os.ReadFile(filepath.Join(s.opts.Dir, "redis.log"))
			return fmt.Errorf("redisproc: redis-server exited during start-up (port %d): %w: %s", s.opts.Port, ErrPortLost, log)
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		err := CheckOurs(pctx, c, cmd.Process.Pid)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrPortLost) {
			s.Kill()
			return fmt.Errorf("redisproc: port %d: %w", s.opts.Port, err)
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("redisproc: no PING answer after 15s: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// CheckOurs checks that the server answering on c is ready and is the process pid: one that answers
// while ours is still starting (or failed to bind) is someone else's, and the error wraps ErrPortLost.
// Any other error means not ready yet.
func CheckOurs(ctx context.Context, c *redis.Client, pid int) error {
	// PING first: it is refused while the append-only file loads; INFO is not.
	if err := c.Ping(ctx).Err(); err != nil {
		return err
	}
	info, err := c.Info(ctx, "server").Result()
	if err != nil {
		return err
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "process_id:"); ok {
			if v != strconv.Itoa(pid) {
				return fmt.Errorf("the redis-server answering is process %s, not ours (%d): %w", v, pid, ErrPortLost)
			}
			return nil
		}
	}
	return fmt.Errorf("no process_id in INFO server: %w", ErrPortLost)
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
