package debeziumserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Config configures a local Debezium Server.
type Config struct {
	Dist *Dist
	Java Java
	// ConfigDir holds application.properties.tmpl and entrypoint.sh: the repository's debezium-server/.
	ConfigDir string
	// RunDir is this server's SERVER_HOME: the distribution linked in, the template and entry point
	// copied in, config/application.properties as the entry point renders it, and debezium.log. The
	// offsets and schema history are not here: they are in DB.StateDatabase, as in production.
	RunDir string
	DB     DB
	// TopicPrefix is topic.prefix: topics are <TopicPrefix>.<db>.<table>.
	TopicPrefix string
	// Tables are the captured tables, "db.table": they make TABLE_INCLUDE_LIST and DATABASE_INCLUDE_LIST
	// (as Terraform makes them from its tables list), and Topics.
	Tables []string
	PubSub PubSub
	// HTTPPort serves /q/health on 127.0.0.1; 0 picks a free port.
	HTTPPort int
	// Env sets more of the template's variables (SNAPSHOT_MODE, HEARTBEAT_INTERVAL_MS, HEARTBEAT_PREFIX,
	// LOG_JSON, COLUMN_EXCLUDE_LIST, …); LOG_JSON defaults to false here, for a readable log.
	Env map[string]string
	// Properties are more system properties beyond Overrides, e.g. a test's
	// debezium.source.include.schema.changes=true. Keep them out of anything that claims to run the
	// shipped configuration.
	Properties map[string]string
	// JavaOpts is JAVA_OPTS; empty: -Xmx1g -XX:+ExitOnOutOfMemoryError.
	JavaOpts string
	// StartTimeout bounds Start's wait for /q/health to report UP; 0 means 3 minutes.
	StartTimeout time.Duration

	httpPort int
}

// DB is the source database and the Debezium user on it (see PrepareDatabase).
type DB struct {
	Host           string
	Port           int
	User, Password string
	// ServerID is the binlog client's server_id, unique among the source's replicas.
	ServerID uint32
	// StateDatabase holds the offsets and schema history (DB_STATE_DATABASE).
	StateDatabase string
}

// PubSub is where the sink publishes.
type PubSub struct {
	Project string
	// EmulatorAddr is the emulator's host:port (gRPC, plaintext).
	EmulatorAddr string
}

// Server is Debezium Server running as a child process.
type Server struct {
	cfg Config
	log *os.File

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	err      error // the exit status once done is closed
	progress *progressReader
	starts   int
}

// Start assembles cfg.RunDir, starts the entry point there and waits until /q/health reports UP (the
// connector's task has started: it is snapshotting or streaming).
func Start(ctx context.Context, cfg Config) (*Server, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	cfg.httpPort = cfg.HTTPPort
	if cfg.httpPort == 0 {
		p, err := freePort()
		if err != nil {
			return nil, err
		}
		cfg.httpPort = p
	}
	if err := assemble(cfg); err != nil {
		return nil, err
	}
	log, err := os.OpenFile(cfg.LogPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, fmt.Errorf("debeziumserver: %w", err)
	}
	s := &Server{cfg: cfg, log: log}
	if err := s.Start(ctx); err != nil {
		log.Close()
		return nil, err
	}
	return s, nil
}

func (c Config) validate() error {
	var errs []error
	if c.Dist == nil {
		errs = append(errs, errors.New("Dist is not set (Fetch)"))
	}
	if c.Java.Home == "" {
		errs = append(errs, errors.New("Java is not set (FindJava)"))
	} else if c.Java.Feature < MinJava {
		errs = append(errs, fmt.Errorf("Java %d at %s: Debezium Server needs %d+", c.Java.Feature, c.Java.Home, MinJava))
	}
	for _, f := range []struct{ name, v string }{{"ConfigDir", c.ConfigDir}, {"RunDir", c.RunDir}, {"DB.Host", c.DB.Host},
		{"DB.User", c.DB.User}, {"DB.Password", c.DB.Password}, {"DB.StateDatabase", c.DB.StateDatabase},
		{"TopicPrefix", c.TopicPrefix}, {"PubSub.Project", c.PubSub.Project}, {"PubSub.EmulatorAddr", c.PubSub.EmulatorAddr}} {
		if f.v == "" {
			errs = append(errs, fmt.Errorf("%s is not set", f.name))
		}
	}
	if c.DB.Port == 0 || c.DB.ServerID == 0 {
		errs = append(errs, errors.New("DB.Port and DB.ServerID must be set"))
	}
	if len(c.Tables) == 0 {
		errs = append(errs, errors.New("Tables is empty"))
	}
	for _, t := range c.Tables {
		if db, table, ok := strings.Cut(t, "."); !ok || db == "" || table == "" || strings.Contains(table, ".") {
			errs = append(errs, fmt.Errorf("table %q is not db.table", t))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("debeziumserver: %w", errors.Join(errs...))
	}
	return nil
}

// LogPath is the server's log file (stdout and stderr of every start, appended).
func (c Config) LogPath() string { return filepath.Join(c.RunDir, "debezium.log") }

// assemble lays out RunDir as the image lays out /debezium: the distribution (linked), the template and
// the entry point (copied afresh, so edits to debezium-server/ take effect), and an empty config/.
func assemble(c Config) error {
	if err := os.MkdirAll(filepath.Join(c.RunDir, "config"), 0o755); err != nil {
		return fmt.Errorf("debeziumserver: %w", err)
	}
	entries, err := os.ReadDir(c.Dist.Home)
	if err != nil {
		return fmt.Errorf("debeziumserver: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if name == "config" || strings.HasPrefix(name, ".") {
			continue
		}
		link := filepath.Join(c.RunDir, name)
		_ = os.Remove(link)
		if err := os.Symlink(filepath.Join(c.Dist.Home, name), link); err != nil {
			return fmt.Errorf("debeziumserver: %w", err)
		}
	}
	if c.Dist.LibOpt != "" {
		link := filepath.Join(c.RunDir, "lib_opt")
		_ = os.Remove(link)
		if err := os.Symlink(c.Dist.LibOpt, link); err != nil {
			return fmt.Errorf("debeziumserver: %w", err)
		}
	}
	for _, f := range []struct {
		name string
		mode os.FileMode
	}{{"application.properties.tmpl", 0o644}, {"entrypoint.sh", 0o755}, {"compact.properties", 0o644}} {
		b, err := os.ReadFile(filepath.Join(c.ConfigDir, f.name))
		if err != nil {
			return fmt.Errorf("debeziumserver: the shipped configuration: %w", err)
		}
		if err := os.WriteFile(filepath.Join(c.RunDir, f.name), b, f.mode); err != nil {
			return fmt.Errorf("debeziumserver: %w", err)
		}
		if err := os.Chmod(filepath.Join(c.RunDir, f.name), f.mode); err != nil {
			return fmt.Errorf("debeziumserver: %w", err)
		}
	}
	return nil
}

// environment is the entry point's whole environment: not this process's, so that no stray
// DEBEZIUM_* or QUARKUS_* variable (which MicroProfile Config would read) changes the configuration.
func (c Config) environment() ([]string, error) {
	props, err := systemProperties(c)
	if err != nil {
		return nil, err
	}
	var dbs []string
	var tables []string
	seen := map[string]bool{}
	for _, t := range c.Tables {
		db, _, _ := strings.Cut(t, ".")
		if !seen[db] {
			seen[db] = true
			dbs = append(dbs, regexp.QuoteMeta(db))
		}
		tables = append(tables, regexp.QuoteMeta(t))
	}
	javaOpts := c.JavaOpts
	if javaOpts == "" {
		javaOpts = "-Xmx1g -XX:+ExitOnOutOfMemoryError"
	}
	if c.Java.Feature >= 24 {
		// Quarkus's jboss-threads resets thread locals through reflection, which Java 24 and later refuse
		// without this ("to use the thread-local-reset capability on Java 24 or later, use this JVM
		// option"); the upstream image runs Java 21, which does not need it.
		javaOpts += " --add-opens=java.base/java.lang=ALL-UNNAMED"
		// And grpc-netty loads its native transport, which Java 24+ warns about on every start.
		javaOpts += " --enable-native-access=ALL-UNNAMED"
	}
	env := map[string]string{
		"PATH":                  os.Getenv("PATH"),
		"HOME":                  os.Getenv("HOME"),
		"TZ":                    "UTC",
		"JAVA_HOME":             c.Java.Home,
		"JAVA_OPTS":             javaOpts,
		"DEBEZIUM_OPTS":         strings.Join(props, " "),
		"SERVER_HOME":           c.RunDir,
		"LOG_JSON":              "false",
		"GCP_PROJECT":           c.PubSub.Project,
		"PUBSUB_REGION":         "local", // required by the entry point; the sink ignores it once an address is set
		"DB_HOST":               c.DB.Host,
		"DB_PORT":               strconv.Itoa(c.DB.Port),
		"DB_USER":               c.DB.User,
		"DB_PASSWORD":           c.DB.Password,
		"DB_SERVER_ID":          strconv.FormatUint(uint64(c.DB.ServerID), 10),
		"DB_STATE_DATABASE":     c.DB.StateDatabase,
		"TOPIC_PREFIX":          c.TopicPrefix,
		"DATABASE_INCLUDE_LIST": strings.Join(dbs, ","),
		"TABLE_INCLUDE_LIST":    strings.Join(tables, ","),
	}
	for k, v := range c.Env {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for _, k := range sortedKeys(env) {
		out = append(out, k+"="+env[k])
	}
	return out, nil
}

// SetTables changes the captured tables (TABLE_INCLUDE_LIST, DATABASE_INCLUDE_LIST) of the server's
// next Start, as a Terraform apply with a longer tables list restarts Debezium with longer lists. The
// server must be stopped.
func (s *Server) SetTables(tables []string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return errors.New("debeziumserver: stop the server before changing its tables")
	}
	c := s.cfg
	c.Tables = append([]string(nil), tables...)
	if err := c.validate(); err != nil {
		return err
	}
	s.cfg = c
	return nil
}

// Start starts the server again after Stop or Kill, on the same run directory and port: it resumes
// from the offsets in the state database.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	if s.cmd != nil {
		s.mu.Unlock()
		return errors.New("debeziumserver: already running")
	}
	s.mu.Unlock()
	env, err := s.cfg.environment()
	if err != nil {
		return err
	}
	fmt.Fprintf(s.log, "\n=== cloudsql-cache: starting Debezium Server %s at %s (Java %d, %s) ===\n", Version,
		time.Now().UTC().Format(time.RFC3339Nano), s.cfg.Java.Feature, s.cfg.Java.Home)
	offset, err := s.log.Seek(0, io.SeekEnd)
	if err != nil {
		return fmt.Errorf("debeziumserver: %w", err)
	}
	cmd := exec.Command(filepath.Join(s.cfg.RunDir, "entrypoint.sh"))
	cmd.Dir = s.cfg.RunDir
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = s.log, s.log
	// Its own process group, so a Ctrl-C in the terminal reaches only us and we stop it in order; SIGTERM
	// (a clean shutdown) if we die first. The entry point execs run.sh, which execs java: one process.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("debeziumserver: start %s: %w", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.err = err
		if s.cmd == cmd { // it exited by itself: it can be started again
			s.cmd = nil
		}
		s.mu.Unlock()
		close(done)
	}()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.progress = newProgressReader(s.cfg.LogPath(), offset)
	s.starts++
	s.mu.Unlock()
	return s.waitHealthy(ctx, done)
}

func (s *Server) waitHealthy(ctx context.Context, done chan struct{}) error {
	timeout := s.cfg.StartTimeout
	if timeout == 0 {
		timeout = 3 * time.Minute
	}
	deadline := time.Now().Add(timeout)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		up, _ := s.health(ctx, client, "/q/health")
		if up {
			return nil
		}
		select {
		case <-done:
			s.mu.Lock()
			err := s.err
			s.cmd = nil
			s.mu.Unlock()
			return fmt.Errorf("debeziumserver: exited during start-up (%v); the end of %s:\n%s", err, s.cfg.LogPath(), s.LogTail(40))
		case <-ctx.Done():
			s.Kill()
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Kill()
			return fmt.Errorf("debeziumserver: /q/health not UP after %v; the end of %s:\n%s", timeout, s.cfg.LogPath(), s.LogTail(40))
		}
	}
}

// health GETs path and reports whether it answered 200 (Quarkus answers 503 while a check is DOWN).
func (s *Server) health(ctx context.Context, client *http.Client, path string) (bool, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.HealthURL(path), nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode == http.StatusOK, string(b)
}

// Health reports /q/health (liveness and readiness together): UP while the connector's task runs; the
// body is Quarkus's JSON.
func (s *Server) Health(ctx context.Context) (up bool, body string) {
	return s.health(ctx, &http.Client{Timeout: 2 * time.Second}, "/q/health")
}

// HealthURL is the server's URL for path (/q/health, /q/health/live, /q/health/ready).
func (s *Server) HealthURL(path string) string {
	return "http://127.0.0.1:" + strconv.Itoa(s.cfg.httpPort) + path
}

// Progress is what the connector of the current (or last) start is doing, from its log.
func (s *Server) Progress() Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.progress == nil {
		return Progress{Phase: "stopped"}
	}
	p := s.progress.read()
	if s.cmd == nil {
		p.Phase = "stopped"
	} else {
		select {
		case <-s.done:
			p.Phase = "stopped"
		default:
		}
	}
	return p
}

// Starts is how many times the server was started.
func (s *Server) Starts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.starts
}

// Pid is the Java process's id, 0 when stopped.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Exited is closed when the current process ends (nil when none runs); Err then says how.
func (s *Server) Exited() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.done
}

// Err is the exit status of the last process that ended.
func (s *Server) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Stop asks Debezium Server to shut down (SIGTERM, what Cloud Run sends: it stops the connector and
// commits its offsets) and kills it if it has not exited after timeout (0: 30 s).
func (s *Server) Stop(timeout time.Duration) error {
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	return s.signal(syscall.SIGTERM, timeout)
}

// Kill kills the server at once (SIGKILL: a crash; nothing is committed).
func (s *Server) Kill() { _ = s.signal(syscall.SIGKILL, 10*time.Second) }

func (s *Server) signal(sig syscall.Signal, wait time.Duration) error {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.cmd = nil
	s.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	select {
	case <-done:
		return nil
	case <-time.After(wait):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("debeziumserver: still running %v after %v; killed", wait, sig)
	}
}

// Close stops the server (if running) and closes its log.
func (s *Server) Close() error {
	err := s.Stop(0)
	s.log.Close()
	return err
}

// LogTail is the end of the log, n lines.
func (s *Server) LogTail(n int) string {
	b, err := os.ReadFile(s.cfg.LogPath())
	if err != nil {
		return err.Error()
	}
	return lastLines(string(b), n)
}

// HTTPPort is the port /q/health is served on.
func (s *Server) HTTPPort() int { return s.cfg.httpPort }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("debeziumserver: free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
