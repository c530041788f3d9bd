// Package mariadbserver runs a private mariadbd on loopback with the binlog settings Debezium requires on
// Cloud SQL (ROW format, FULL row image, GTIDs, a server id), in a directory of its own, not as a system
// service: the one way this repository starts one, for `make run`, the benchmarks and the end-to-end
// tests (Start) and for tests (StartForTest, which fails the test rather than skip when it cannot have a
// server).
//
// A server is started on a free port (internal/freeport) unless one is given; because another process
// can take that port before mariadbd binds it, the start checks that the server answering serves this
// server's data directory and, if not, tries again on another port. A server is shut down with its
// parent (Pdeathsig), so none outlives a killed test binary or `make run`.
package mariadbserver

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-sql-driver/mysql" // also the database/sql driver for DSNs this package hands out

	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testcerts"
)

// Options configure a server.
type Options struct {
	// Dir holds the data directory, socket, pid file and logs; it is initialised on first start.
	Dir string
	// Port on 127.0.0.1; 0 picks a free one.
	Port int
	// ServerID is the server_id; 0 means 1.
	ServerID int
	// TLS serves TLS with a certificate signed by a fresh CA (its PEM is then in Server.CAFile) and
	// refuses every connection over TCP without it (require_secure_transport), as Cloud SQL does with
	// ssl_mode ENCRYPTED_ONLY. DSN then connects with TLS, verified against that CA.
	TLS bool
}

// Server is a running mariadbd.
type Server struct {
	// CAFile is the PEM of the CA that signed the server's certificate (Options.TLS).
	CAFile string

	opts Options
	// tlsName is the driver's name for the TLS configuration DSN uses (Options.TLS).
	tlsName string
	bin     string
	port    int
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
}

// Start initialises opts.Dir if needed, starts mariadbd and waits until it accepts connections as
// root without a password over TCP.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, err := find("mariadbd")
	if err != nil {
		return nil, err
	}
	if opts.ServerID == 0 {
		opts.ServerID = 1
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	opts.Dir = dir
	s := &Server{opts: opts, port: opts.Port, bin: bin}
	if err := s.initialise(ctx); err != nil {
		return nil, err
	}
	if opts.TLS {
		if err := s.writeTLS(); err != nil {
			return nil, err
		}
	}
	if opts.Port != 0 {
		if err := s.start(ctx); err != nil {
			return nil, err
		}
		return s, nil
	}
	// The port is picked only now, after the slow initialisation, to leave another process little time
	// to take it; if one did (mariadbd exits, or another server answers there), try another.
	for attempt := 1; ; attempt++ {
		if s.port, err = freeport.Get(); err != nil {
			return nil, err
		}
		err = s.start(ctx)
		if err == nil {
			return s, nil
		}
		if !errors.Is(err, errPortLost) || attempt == startAttempts || ctx.Err() != nil {
			return nil, err
		}
	}
}

// startAttempts bounds the tries with a fresh port when mariadbd could not have the one picked.
const startAttempts = 3

// installTimeout bounds mariadb-install-db, retries included; it takes seconds unless it hangs.
const installTimeout = 2 * time.Minute

// errPortLost marks a start that failed because the port was not ours: mariadbd exited during start-up
// (the usual cause: another process took the port) or another server answered on it.
var errPortLost = errors.New("the port may be another process's")

func (s *Server) dataDir() string { return filepath.Join(s.opts.Dir, "data") }

func (s *Server) initialise(ctx context.Context) error {
	if _, err := os.Stat(filepath.Join(s.dataDir(), "mysql")); err == nil {
		return nil
	}
	if err := os.MkdirAll(s.dataDir(), 0o755); err != nil {
		return err
	}
	args := []string{"--no-defaults", "--datadir=" + s.dataDir(), "--auth-root-authentication-method=normal",
		"--skip-test-db", "--skip-name-resolve"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	install, err := find("mariadb-install-db")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeoutCause(ctx, installTimeout, fmt.Errorf("no result within %v: %w", installTimeout, context.DeadlineExceeded))
	defer cancel()
	// mariadb-install-db bootstraps a server of its own; on a loaded machine it occasionally fails for
	// no reason it reports. A fresh data directory and another try is what a person would do.
	for attempt := 1; ; attempt++ {
		cmd := exec.CommandContext(ctx, install, args...)
		// It is a script that runs mariadbd --bootstrap: on timeout kill the whole process group, and
		// stop waiting for output pipes a straggler might hold open.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
		cmd.WaitDelay = 5 * time.Second
		out, err := cmd.CombinedOutput()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("mariadbserver: mariadb-install-db (attempt %d): %w\n%s", attempt, context.Cause(ctx), out)
		}
		if attempt == 3 {
			return fmt.Errorf("mariadbserver: mariadb-install-db (%d attempts): %w\n%s", attempt, err, out)
		}
		if rerr := os.RemoveAll(s.dataDir()); rerr != nil {
			return fmt.Errorf("mariadbserver: mariadb-install-db: %w (and cleaning up: %v)", err, rerr)
		}
		if merr := os.MkdirAll(s.dataDir(), 0o755); merr != nil {
			return merr
		}
	}
}

func (s *Server) start(ctx context.Context) error {
	args := []string{
		"--no-defaults",
		"--datadir=" + s.dataDir(),
		"--socket=" + filepath.Join(s.opts.Dir, "mysqld.sock"),
		"--pid-file=" + filepath.Join(s.opts.Dir, "mysqld.pid"),
		"--log-error=" + filepath.Join(s.opts.Dir, "error.log"),
		"--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(s.port),
		"--skip-name-resolve",
		// What Debezium needs from Cloud SQL: a row-based binlog with full images and GTIDs.
		"--server-id=" + strconv.Itoa(s.opts.ServerID),
		"--log-bin=" + filepath.Join(s.dataDir(), "mysql-bin"),
		"--binlog-format=ROW",
		"--binlog-row-image=FULL",
		"--gtid-strict-mode=ON",
		"--log-slave-updates=ON",
		"--character-set-server=utf8mb4",
		"--collation-server=utf8mb4_general_ci",
		"--default-time-zone=+00:00",
		// Small and quick to start: this is a test and demo server.
		"--innodb-buffer-pool-size=64M",
		"--innodb-log-file-size=32M",
		"--innodb-flush-log-at-trx-commit=2",
		"--sync-binlog=0",
		"--max-connections=200",
		"--performance-schema=OFF",
	}
	if s.opts.TLS {
		dir := s.tlsDir()
		args = append(args, "--ssl-ca="+filepath.Join(dir, "ca.pem"), "--ssl-cert="+filepath.Join(dir, "server.pem"),
			"--ssl-key="+filepath.Join(dir, "server.key"), "--require-secure-transport=ON")
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	cmd := exec.Command(s.bin, args...)
	// Its own process group, so a Ctrl-C in the terminal reaches only us and we stop it cleanly; and
	// SIGTERM (a clean shutdown) if we die without stopping it, e.g. a test binary killed by its timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("mariadbserver: start mariadbd: %w", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	db, err := sql.Open("mysql", s.DSN(""))
	if err != nil {
		s.Stop()
		return err
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-done:
			s.Stop() // forgets the exited process
			log, _ := os.ReadFile(filepath.Join(s.opts.Dir, "error.log"))
			return fmt.Errorf("mariadbserver: mariadbd exited during start-up (port %d): %w\n%s", s.port, errPortLost, tail(log))
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		err := s.checkOurs(pctx, db)
		cancel()
		if err == nil {
			return nil
		}
		if errors.Is(err, errPortLost) {
			s.Stop()
			return err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.Stop()
			log, _ := os.ReadFile(filepath.Join(s.opts.Dir, "error.log"))
			return fmt.Errorf("mariadbserver: not ready after 60s: %v\n%s", err, tail(log))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// checkOurs pings the server on s.port and checks that it is the one serving s's data directory: a
// server that answers there while ours is still starting (or failed to bind) is someone else's.
func (s *Server) checkOurs(ctx context.Context, db *sql.DB) error {
	var dataDir string
	if err := db.QueryRowContext(ctx, "SELECT @@datadir").Scan(&dataDir); err != nil {
		return err
	}
	theirs, err1 := os.Stat(dataDir)
	ours, err2 := os.Stat(s.dataDir())
	if err1 != nil || err2 != nil || !os.SameFile(theirs, ours) {
		return fmt.Errorf("mariadbserver: the server on port %d serves %s, not %s: %w", s.port, dataDir, s.dataDir(), errPortLost)
	}
	return nil
}

// find looks a MariaDB program up on PATH, then in /usr/sbin and /usr/bin, where Debian installs them
// (/usr/sbin is not on every user's PATH).
func find(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/usr/bin"} {
		p := filepath.Join(dir, name)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("mariadbserver: %s not found on PATH or in /usr/sbin (apt-get install mariadb-server)", name)
}

// Port is the TCP port on 127.0.0.1.
func (s *Server) Port() int { return s.port }

// Addr is host:port.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// DSN is a go-sql-driver/mysql DSN for root on database db ("" for none), in UTC (see mysqlrow.CheckDSN);
// with Options.TLS, over TLS verified against CAFile.
func (s *Server) DSN(db string) string {
	dsn := "root@tcp(" + s.Addr() + ")/" + db + "?parseTime=false&loc=UTC&time_zone=%27%2B00%3A00%27&multiStatements=true"
	if s.tlsName != "" {
		dsn += "&tls=" + s.tlsName
	}
	return dsn
}

func (s *Server) tlsDir() string { return filepath.Join(s.opts.Dir, "tls") }

// writeTLS makes the server's certificates and registers the client configuration DSN names.
func (s *Server) writeTLS() error {
	if err := os.MkdirAll(s.tlsDir(), 0o700); err != nil {
		return fmt.Errorf("mariadbserver: %w", err)
	}
	var err error
	if s.CAFile, err = testcerts.Write(s.tlsDir()); err != nil {
		return fmt.Errorf("mariadbserver: TLS certificates: %w", err)
	}
	cfg, err := testcerts.ClientTLS(s.CAFile)
	if err != nil {
		return fmt.Errorf("mariadbserver: %w", err)
	}
	// The driver's registry is process-wide: one name per data directory keeps servers apart.
	sum := sha256.Sum256([]byte(s.opts.Dir))
	s.tlsName = "mariadbserver-" + hex.EncodeToString(sum[:8])
	if err := mysql.RegisterTLSConfig(s.tlsName, cfg); err != nil {
		return fmt.Errorf("mariadbserver: %w", err)
	}
	return nil
}

// Stop shuts mariadbd down cleanly (SIGTERM) and waits for it, killing it after 30 s.
func (s *Server) Stop() { s.signal(syscall.SIGTERM, 30*time.Second) }

// Kill kills mariadbd at once (a crash).
func (s *Server) Kill() { s.signal(syscall.SIGKILL, 10*time.Second) }

func (s *Server) signal(sig syscall.Signal, wait time.Duration) {
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
	case <-time.After(wait):
		_ = cmd.Process.Kill()
		<-done
	}
}

// Restart stops and starts the server on the same port and data.
func (s *Server) Restart(ctx context.Context) error {
	s.Stop()
	return s.start(ctx)
}

func tail(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}
