// Package pipeline wires the local pipeline together: the real Debezium Server (local/debeziumserver,
// a child process) reads the MariaDB binlog and publishes to the Pub/Sub emulator, whose push relay
// delivers to the apply function, which writes Redis. MariaDB, Redis and the function are started by
// the caller; the emulator and the relay run in this process. `make run` (cmd/localrun), the benchmark
// (local/lagbench) and the end-to-end tests use it.
package pipeline

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	_ "github.com/go-sql-driver/mysql" // the driver of RootDSN

	"github.com/cloudsql-cache/cloudsql-cache/local/debeziumserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/pubsubemu"
	"github.com/cloudsql-cache/cloudsql-cache/local/relay"
)

// Config configures a pipeline.
type Config struct {
	// DBAddr is the source database's host:port; RootDSN a go-sql-driver/mysql DSN with the privilege
	// to create the Debezium user and its state database (debeziumserver.PrepareDatabase).
	DBAddr  string
	RootDSN string
	// Tables are the captured tables, "db.table": Debezium's include lists, and a topic each.
	Tables []string
	// ConfigDir is the repository's debezium-server/ (the shipped template and entry point).
	ConfigDir string
	// StateDir holds Debezium Server's run directory and log (debezium.log). Its offsets and schema
	// history are in the source database, as in production.
	StateDir string
	// Prefix is Debezium's topic.prefix; "" means "local".
	Prefix string
	// ServerID is Debezium's binlog client id; 0 means 5501.
	ServerID uint32
	// DebeziumEnv sets the template's variables (HEARTBEAT_INTERVAL_MS, …). DebeziumProperties adds
	// system properties beyond the local overrides: for tuning experiments and tests only, since with
	// them the server no longer runs the shipped configuration.
	DebeziumEnv, DebeziumProperties map[string]string
	// DebeziumJavaOpts replaces JAVA_OPTS (e.g. to add a flight recording); empty keeps the default.
	DebeziumJavaOpts string
	// DebeziumHTTPPort serves its /q/health; 0 picks a free port.
	DebeziumHTTPPort int
	// RestartDelay: when Debezium Server exits by itself (it does on any connector or publish failure),
	// the pipeline starts it again after this delay, as the Cloud Run worker pool restarts its instance;
	// 0 means 2 s, negative never.
	RestartDelay time.Duration
	// FetchLog receives Maven's output when the distribution is not cached yet (nil: discarded).
	FetchLog io.Writer

	// MaxDeliveryAttempts of the push subscriptions; 0 means 5.
	MaxDeliveryAttempts int
	// MinBackoff, MaxBackoff: the subscriptions' retry policy; 0 means 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// AckDeadline of the subscriptions (0: 600 s) and ExtendEvery, how often the relay renews it for
	// the messages it holds (0: a minute).
	AckDeadline, ExtendEvery time.Duration
	// Housekeeping is how often the emulator's record of published messages is dropped (0: a minute);
	// see pubsubemu.Emulator.Forget.
	Housekeeping time.Duration
	// DuplicateRate: share of pushes delivered twice (fault injection).
	DuplicateRate float64
	Seed          uint64
	// OnApplied, if set, is called with every change the function applied, at its answer (from the
	// relay's delivering goroutines: quick, and safe for concurrent use). The pipeline measures Lag
	// from the same observations. OnDelivery is called with every answered push.
	OnApplied  func(Applied)
	OnDelivery func(relay.Delivery)
	Logger     *slog.Logger
}

// Pipeline is a running emulator + relay, and Debezium Server once StartDebezium is called.
type Pipeline struct {
	cfg   Config
	Emu   *pubsubemu.Emulator
	Relay *relay.Relay
	lag   *lagMeter
	root  *sql.DB
	dbz   debeziumserver.Config

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	srv    *debeziumserver.Server
	wanted bool // Debezium should be running: an exit is a failure, and it is restarted
	// run counts StartDebezium, StopDebezium and KillDebezium calls: a supervisor restarts the server
	// only while the run it watches is the current one, so a stop and a start during its restart delay
	// leave one supervisor, not two.
	run      int
	exits    []error
	restarts int
}

// Start fetches Debezium Server (cached after the first time), prepares its user and state database,
// starts the emulator and creates every topic Debezium publishes to; the relay starts delivering when
// Deliver is called with the function's URL, and Debezium with StartDebezium.
func Start(ctx context.Context, cfg Config) (*Pipeline, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "local"
	}
	if cfg.ServerID == 0 {
		cfg.ServerID = 5501
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Housekeeping == 0 {
		cfg.Housekeeping = time.Minute
	}
	if cfg.RestartDelay == 0 {
		cfg.RestartDelay = 2 * time.Second
	}
	host, portText, err := net.SplitHostPort(cfg.DBAddr)
	if err != nil {
		return nil, fmt.Errorf("pipeline: DBAddr %q: %w", cfg.DBAddr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return nil, fmt.Errorf("pipeline: DBAddr %q: %w", cfg.DBAddr, err)
	}
	dist, err := debeziumserver.Fetch(ctx, debeziumserver.FetchOptions{Log: cfg.FetchLog})
	if err != nil {
		return nil, err
	}
	if cfg.DebeziumEnv["EVENT_FORMAT"] == "compact" {
		// Its truncate route is a Groovy ContentBasedRouter, from the distribution's lib_opt/.
		if err := debeziumserver.FetchScripting(ctx, debeziumserver.FetchOptions{Log: cfg.FetchLog}, dist); err != nil {
			return nil, err
		}
	}
	java, err := debeziumserver.FindJava(os.Getenv)
	if err != nil {
		return nil, err
	}
	p := &Pipeline{cfg: cfg, lag: newLagMeter()}
	p.root, err = sql.Open("mysql", cfg.RootDSN)
	if err != nil {
		return nil, fmt.Errorf("pipeline: %w", err)
	}
	db := debeziumserver.DB{Host: host, Port: port, User: "debezium", Password: "dbz-local-pw", ServerID: cfg.ServerID, StateDatabase: "debezium_state"}
	if err := debeziumserver.PrepareDatabase(ctx, p.root, db); err != nil {
		p.root.Close()
		return nil, err
	}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	var r *relay.Relay
	var pending []string
	var rmu sync.Mutex
	emu, err := pubsubemu.Start(ctx, pubsubemu.Options{
		MaxDeliveryAttempts: cfg.MaxDeliveryAttempts,
		AckDeadline:         cfg.AckDeadline,
		OnSubscription: func(name string) {
			rmu.Lock()
			defer rmu.Unlock()
			if r == nil {
				pending = append(pending, name)
				return
			}
			r.AddSubscription(name)
		},
	})
	if err != nil {
		p.root.Close()
		return nil, err
	}
	p.Emu = emu
	p.dbz = debeziumserver.Config{Dist: dist, Java: java, ConfigDir: cfg.ConfigDir, RunDir: cfg.StateDir, DB: db,
		TopicPrefix: cfg.Prefix, Tables: cfg.Tables, PubSub: debeziumserver.PubSub{Project: emu.Project(), EmulatorAddr: emu.Addr()},
		HTTPPort: cfg.DebeziumHTTPPort, Env: cfg.DebeziumEnv, Properties: cfg.DebeziumProperties, JavaOpts: cfg.DebeziumJavaOpts}
	topics, err := p.dbz.Topics()
	if err == nil {
		for _, t := range topics {
			if err = emu.EnsureTopic(ctx, t); err != nil {
				break
			}
		}
	}
	if err != nil {
		emu.Close()
		p.root.Close()
		return nil, err
	}
	dlq := emu.Client().Publisher(emu.DeadLetterTopic())
	dlq.PublishSettings.DelayThreshold = time.Millisecond
	rr, err := relay.New(relay.Config{
		Client:              emu.Client(),
		Endpoint:            "http://unset.invalid/",
		MaxDeliveryAttempts: emu.MaxDeliveryAttempts(),
		DeadLetter:          dlq,
		MinBackoff:          cfg.MinBackoff,
		MaxBackoff:          cfg.MaxBackoff,
		AckDeadline:         emu.AckDeadline(),
		ExtendEvery:         cfg.ExtendEvery,
		DuplicateRate:       cfg.DuplicateRate,
		Seed:                cfg.Seed,
		OnAck:               emu.Acked,
		OnDelivery:          p.observe,
		Logger:              cfg.Logger,
	})
	if err != nil {
		emu.Close()
		p.root.Close()
		return nil, err
	}
	rmu.Lock()
	r = rr
	for _, s := range pending {
		r.AddSubscription(s)
	}
	rmu.Unlock()
	p.Relay = r
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.housekeeping()
	}()
	return p, nil
}

// Topics are the topic ids Debezium publishes to (each with a push subscription to the function).
func (p *Pipeline) Topics() ([]string, error) { return p.dbz.Topics() }

// housekeeping drops pstest's copy of every message ever published every Config.Housekeeping, at a
// moment when nothing waits in a subscription (Forget holds publishes back up to forgetPause for
// that); when the subscriptions do not drain in time it tries again a second later.
func (p *Pipeline) housekeeping() {
	next := p.cfg.Housekeeping
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(next):
		}
		next = p.cfg.Housekeeping
		if !p.Emu.Forget(forgetPause) {
			next = min(time.Second, p.cfg.Housekeeping)
		}
	}
}

// forgetPause bounds how long housekeeping holds publishes back.
const forgetPause = 100 * time.Millisecond

// Forgets is how many times housekeeping dropped the emulator's record.
func (p *Pipeline) Forgets() int { return p.Emu.Forgets() }

// observe measures an applied change's lag and hands the delivery to the observers.
func (p *Pipeline) observe(d relay.Delivery) {
	if p.cfg.OnDelivery != nil {
		p.cfg.OnDelivery(d)
	}
	a, ok := appliedOf(d)
	if !ok {
		return
	}
	p.lag.observe(a)
	if p.cfg.OnApplied != nil {
		p.cfg.OnApplied(a)
	}
}

// Lag is the lag of the changes applied recently (since ResetLag, at most the last 4096).
func (p *Pipeline) Lag() Lag { return p.lag.lag() }

// ResetLag forgets the lag observed so far, so that Lag shows what comes next.
func (p *Pipeline) ResetLag() { p.lag.reset() }

// Deliver starts the relay towards the function at endpoint.
func (p *Pipeline) Deliver(endpoint string) {
	p.Relay.SetEndpoint(endpoint)
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.Relay.Run(p.ctx)
	}()
}

// StartDebezium starts Debezium Server (or starts it again after StopDebezium or KillDebezium) and
// returns once its /q/health is UP: it resumes from its stored offsets, or takes a snapshot when it
// has none. From then on an exit the pipeline did not ask for is restarted after Config.RestartDelay.
func (p *Pipeline) StartDebezium(ctx context.Context) error {
	p.mu.Lock()
	if p.wanted {
		p.mu.Unlock()
		return errors.New("pipeline: Debezium Server is running")
	}
	p.wanted = true
	p.run++
	run := p.run
	srv := p.srv
	p.mu.Unlock()
	var err error
	if srv == nil {
		srv, err = debeziumserver.Start(ctx, p.dbz)
		if err == nil {
			p.mu.Lock()
			p.srv = srv
			p.mu.Unlock()
		}
	} else {
		err = srv.Start(ctx)
	}
	if err != nil {
		p.mu.Lock()
		p.wanted = false
		p.mu.Unlock()
		return err
	}
	p.supervise(srv, srv.Exited(), run)
	return nil
}

// supervise waits for the process behind exited to end; if nobody asked for that, it records the exit
// and starts the server again, as the worker pool would.
func (p *Pipeline) supervise(srv *debeziumserver.Server, exited <-chan struct{}, run int) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		select {
		case <-p.ctx.Done():
			return
		case <-exited:
		}
		p.mu.Lock()
		if !p.wanted || p.run != run {
			p.mu.Unlock()
			return
		}
		err := srv.Err()
		if err == nil {
			err = errors.New("exited with status 0")
		}
		p.exits = append(p.exits, err)
		p.mu.Unlock()
		p.cfg.Logger.Error("Debezium Server exited by itself", "error", err.Error(), "log", srv.LogTail(20))
		for p.cfg.RestartDelay > 0 {
			select {
			case <-p.ctx.Done():
				return
			case <-time.After(p.cfg.RestartDelay):
			}
			p.mu.Lock()
			current := p.wanted && p.run == run
			p.mu.Unlock()
			if !current {
				return
			}
			if err := srv.Start(p.ctx); err != nil {
				p.cfg.Logger.Error("restarting Debezium Server", "error", err.Error())
				p.mu.Lock()
				p.exits = append(p.exits, err)
				p.mu.Unlock()
				continue
			}
			p.mu.Lock()
			p.restarts++
			current = p.wanted && p.run == run
			p.mu.Unlock()
			if !current { // stopped while it was starting
				_ = srv.Stop(0)
				return
			}
			p.supervise(srv, srv.Exited(), run)
			return
		}
	}()
}

// StopDebezium stops Debezium Server cleanly (SIGTERM: it commits its offsets), killing it after
// timeout (0: 30 s).
func (p *Pipeline) StopDebezium(timeout time.Duration) error {
	srv := p.unwant()
	if srv == nil {
		return nil
	}
	return srv.Stop(timeout)
}

// KillDebezium kills Debezium Server (SIGKILL: a crash; it commits nothing).
func (p *Pipeline) KillDebezium() {
	if srv := p.unwant(); srv != nil {
		srv.Kill()
	}
}

func (p *Pipeline) unwant() *debeziumserver.Server {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wanted = false
	p.run++
	return p.srv
}

// ResetState deletes Debezium Server's offsets and schema history, so that its next start takes a new
// snapshot of every captured table (the local form of re-snapshotting). Debezium must not be running.
func (p *Pipeline) ResetState(ctx context.Context) error {
	p.mu.Lock()
	running := p.wanted
	p.mu.Unlock()
	if running {
		return errors.New("pipeline: stop Debezium Server before resetting its state")
	}
	return debeziumserver.ResetState(ctx, p.root, p.dbz)
}

// Debezium is the server (nil before the first StartDebezium): Progress, Health, Pid, its log.
func (p *Pipeline) Debezium() *debeziumserver.Server {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.srv
}

// DebeziumExits are the exits of Debezium Server nobody asked for, and Restarts how many times the
// pipeline started it again after one.
func (p *Pipeline) DebeziumExits() (exits []error, restarts int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]error(nil), p.exits...), p.restarts
}

// Close stops Debezium Server (cleanly), the relay and the emulator.
func (p *Pipeline) Close() {
	_ = p.StopDebezium(0)
	p.cancel()
	p.wg.Wait()
	if srv := p.Debezium(); srv != nil {
		_ = srv.Close()
	}
	p.Emu.Close()
	p.root.Close()
}

// Quiesce waits until nothing is waiting to be delivered — every published message acknowledged,
// the relay holding none — and no acknowledgement has happened for quiet.
func (p *Pipeline) Quiesce(ctx context.Context, quiet time.Duration) error {
	var last int64 = -1
	since := time.Now()
	for {
		s := p.Relay.Stats()
		if s.Backlog == 0 && s.Acked == last && p.Emu.Outstanding() == 0 {
			if time.Since(since) >= quiet {
				return nil
			}
		} else {
			last, since = s.Acked, time.Now()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pipeline: not quiet (backlog %d, %d outstanding): %w", s.Backlog, p.Emu.Outstanding(), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
