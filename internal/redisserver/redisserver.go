// Package redisserver runs a private redis-server on loopback, in a directory of its own: the one way
// this repository starts one, for `make run`, the benchmarks and the end-to-end tests (Start) and for
// tests (StartForTest, which fails the test rather than skip when it cannot have a server). It also
// runs a local Redis Cluster of such servers (StartCluster, StartClusterForTest): primaries with
// replicas joined by redis-cli --cluster create, with the failovers and slot migrations tests need.
//
// A server is started on a free port (internal/freeport) unless one is given; because another process
// can take that port before redis-server binds it, the start checks that the server answering is the
// process it started (INFO's process_id) and, if not, tries again on another port. A server is
// stopped with its parent (Pdeathsig), so none outlives a killed test binary or `make run`.
package redisserver

import (
	"context"
	"crypto/tls"
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
	"github.com/cloudsql-cache/cloudsql-cache/internal/testcerts"
)

// Options configure a server.
type Options struct {
	// Dir holds the server's files (log, append-only file, TLS certificates). StartForTest uses a
	// temporary directory when it is empty.
	Dir string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// Persistent turns on the append-only file, fsynced on every write, so a restart keeps every
	// acknowledged write: the model of Memorystore's standard tier, whose failover keeps the data.
	// Without it a restart empties the cache, also of a server that was a replica.
	Persistent bool
	// AppendFsync is the append-only file's fsync policy when Persistent: "always" (the default) or
	// "everysec", Memorystore's AOF setting, which can lose about a second of acknowledged writes in a
	// crash of the machine.
	AppendFsync string
	// ReplicaOf makes the server a replica of the primary at this host:port, as a Memorystore standard
	// tier's replica is: asynchronous, read-only. Promote makes it a primary.
	ReplicaOf string
	// Password turns on AUTH (requirepass), as Memorystore's AUTH does.
	Password string
	// TLS serves TLS only (no plaintext port), as Memorystore with in-transit encryption does, with a
	// certificate signed by a fresh CA whose PEM is then in Server.CAFile.
	TLS bool

	// node makes the server a Redis Cluster node (StartCluster); nil for a standalone server.
	node *nodeOptions
}

// nodeOptions are what a cluster node needs beyond a standalone server.
type nodeOptions struct {
	// busPort is the cluster bus port; 0 picks a free one alongside the client port (redis-server's
	// default, port+10000, may be anyone's).
	busPort int
	// timeout is cluster-node-timeout.
	timeout time.Duration
	// certDir holds the cluster's one CA and server certificate (ca.pem, server.pem, server.key),
	// shared by every node so that each trusts the others on the bus.
	certDir string
}

// Server is a running redis-server.
type Server struct {
	// CAFile is the PEM of the CA that signed the server's certificate (Options.TLS).
	CAFile string

	opts Options
	// parentDeath is the signal the server gets when the process that started it dies.
	parentDeath syscall.Signal
	tlsConfig   *tls.Config

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// ErrPortLost marks a start that failed because the port was not ours: redis-server exited during
// start-up (the usual cause: another process took the port) or another server answered on it.
var ErrPortLost = errors.New("the port may be another process's")

// startAttempts bounds the tries with a fresh port when redis-server could not have the one picked.
const startAttempts = 3

// startTimeout bounds the wait for a started server's first answer (a loaded CI machine is slow).
const startTimeout = 30 * time.Second

// Start starts redis-server and waits until it answers PING. It is stopped with SIGTERM (a clean
// shutdown) if this process dies first.
func Start(ctx context.Context, opts Options) (*Server, error) {
	return start(ctx, opts, syscall.SIGTERM)
}

func start(ctx context.Context, opts Options, parentDeath syscall.Signal) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, fmt.Errorf("redisserver: redis-server not found on PATH (apt-get install redis-server): %w", err)
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("redisserver: %w", err)
	}
	opts.Dir = dir
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("redisserver: %w", err)
	}
	s := &Server{opts: opts, parentDeath: parentDeath}
	if opts.TLS {
		if opts.node != nil {
			s.CAFile = filepath.Join(opts.node.certDir, "ca.pem")
		} else if s.CAFile, err = testcerts.Write(dir); err != nil {
			return nil, fmt.Errorf("redisserver: TLS certificates: %w", err)
		}
		if s.tlsConfig, err = testcerts.ClientTLS(s.CAFile); err != nil {
			return nil, fmt.Errorf("redisserver: %w", err)
		}
	}
	if opts.Port != 0 && (opts.node == nil || opts.node.busPort != 0) {
		return s, s.start(ctx)
	}
	// The ports are picked just before the start; if another process takes one meanwhile (redis-server
	// exits, or another server answers there), try others.
	for attempt := 1; ; attempt++ {
		if opts.Port == 0 {
			if s.opts.Port, err = freeport.Get(); err != nil {
				return nil, fmt.Errorf("redisserver: %w", err)
			}
		}
		if opts.node != nil && opts.node.busPort == 0 {
			n := *opts.node
			if n.busPort, err = freeport.Get(); err != nil {
				return nil, fmt.Errorf("redisserver: %w", err)
			}
			s.opts.node = &n
			// A node that failed to bind may have written its configuration with the lost ports.
			_ = os.Remove(filepath.Join(dir, "nodes.conf"))
		}
		err = s.start(ctx)
		if err == nil || !errors.Is(err, ErrPortLost) || attempt == startAttempts || ctx.Err() != nil {
			return s, err
		}
	}
}

// Pid is the server process's id (0 when stopped), e.g. to read its CPU time.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Addr is host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.opts.Port) }

// ClientOptions are go-redis options reaching the server: its address, password and TLS.
func (s *Server) ClientOptions() *redis.Options {
	o := &redis.Options{Addr: s.Addr(), Password: s.opts.Password}
	if s.tlsConfig != nil {
		o.TLSConfig = s.tlsConfig.Clone()
	}
	return o
}

func (s *Server) start(ctx context.Context) error {
	logPath := filepath.Join(s.opts.Dir, "redis.log")
	args := []string{"--bind", "127.0.0.1", "--dir", s.opts.Dir, "--save", "", "--daemonize", "no", "--logfile", logPath,
		// A replica's first sync starts at once, not after the default 5 s of waiting for more replicas.
		"--repl-diskless-sync-delay", "0"}
	if s.opts.Persistent {
		fsync := s.opts.AppendFsync
		if fsync == "" {
			fsync = "always"
		}
		args = append(args, "--appendonly", "yes", "--appendfsync", fsync)
	} else {
		// Nothing on disk: a replica loads its primary's snapshot from the socket into memory, where by
		// default it writes it to dump.rdb first, which a restart would load (no longer empty).
		args = append(args, "--appendonly", "no", "--repl-diskless-load", "swapdb")
	}
	if s.opts.TLS {
		certDir := s.opts.Dir
		if s.opts.node != nil {
			certDir = s.opts.node.certDir
		}
		args = append(args, "--port", "0", "--tls-port", strconv.Itoa(s.opts.Port),
			"--tls-cert-file", filepath.Join(certDir, "server.pem"),
			"--tls-key-file", filepath.Join(certDir, "server.key"),
			"--tls-ca-cert-file", s.CAFile,
			"--tls-auth-clients", "no")
	} else {
		args = append(args, "--port", strconv.Itoa(s.opts.Port))
	}
	if s.opts.Password != "" {
		args = append(args, "--requirepass", s.opts.Password, "--masterauth", s.opts.Password)
	}
	if s.opts.ReplicaOf != "" {
		host, port, ok := strings.Cut(s.opts.ReplicaOf, ":")
		if !ok {
			return fmt.Errorf("redisserver: ReplicaOf %q is not host:port", s.opts.ReplicaOf)
		}
		args = append(args, "--replicaof", host, port)
	}
	if n := s.opts.node; n != nil {
		// nodes.conf in the node's own directory keeps its identity across a restart, so a killed
		// primary comes back as the same node (and rejoins as a replica of its successor).
		args = append(args, "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(n.busPort),
			"--cluster-node-timeout", strconv.FormatInt(n.timeout.Milliseconds(), 10),
			// A replica's first sync starts at once rather than after the 5 s redis-server waits by
			// default for more replicas to share the transfer.
			"--repl-diskless-sync-delay", "0")
		if s.opts.Password != "" {
			args = append(args, "--masterauth", s.opts.Password)
		}
		if s.opts.TLS {
			args = append(args, "--tls-cluster", "yes", "--tls-replication", "yes")
		}
	}
	cmd := exec.Command("redis-server", args...)
	// Its own process group, so a Ctrl-C in the terminal reaches only us and we stop it in order; and
	// stopped when we die without stopping it, e.g. a test binary killed by its timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: s.parentDeath}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redisserver: start redis-server: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	o := s.ClientOptions()
	o.MaxRetries = -1
	c := redis.NewClient(o)
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case <-done:
			s.Kill() // forgets the exited process
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("redisserver: redis-server exited during start-up (port %d): %w\n%s", s.opts.Port, ErrPortLost, tail(log))
		default:
		}
		// Another process's server on this port would answer too: make sure it is ours.
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := CheckOurs(pctx, c, cmd.Process.Pid)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, ErrPortLost) {
			s.Kill()
			return fmt.Errorf("redisserver: port %d: %w", s.opts.Port, err)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Kill()
			log, _ := os.ReadFile(logPath)
			return fmt.Errorf("redisserver: no PING answer on %s after %v: %w\n%s", s.Addr(), startTimeout, err, tail(log))
		}
		time.Sleep(20 * time.Millisecond)
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

// Promote makes a replica a primary (REPLICAOF NO ONE), as a failover does, and waits until it says
// so. Restart starts it as a primary from then on.
func (s *Server) Promote(ctx context.Context) error {
	c := redis.NewClient(s.ClientOptions())
	defer c.Close()
	if err := c.Do(ctx, "REPLICAOF", "NO", "ONE").Err(); err != nil {
		return fmt.Errorf("redisserver: promote %s: %w", s.Addr(), err)
	}
	s.opts.ReplicaOf = ""
	for {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "role:master") {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("redisserver: promote %s: %w", s.Addr(), ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Stop shuts redis-server down (SIGTERM) and waits, killing it after 20 s.
func (s *Server) Stop() { s.signal(syscall.SIGTERM) }

// Kill kills redis-server at once, as a crash would, and waits for it to exit.
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

// running reports whether the server's process runs (it may have been killed).
func (s *Server) running() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd != nil
}

// Restart kills the server (if it runs) and starts it again on the same port and directory. Without
// Persistent its data is gone, as after a crash of an instance without persistence.
func (s *Server) Restart(ctx context.Context) error {
	s.Kill()
	return s.start(ctx)
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
