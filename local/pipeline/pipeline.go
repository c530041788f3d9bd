// Package pipeline wires the local stand-ins together: the CDC source publishes to the Pub/Sub
// emulator, whose push relay delivers to the apply function, which writes Redis. MariaDB, Redis and the
// function run as child processes (started by the caller); the emulator, the relay and the CDC source
// run in this process. `make run` (cmd/localrun) and the end-to-end tests use it.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/local/cdc"
	"github.com/cloudsql-cache/cloudsql-cache/local/pubsubemu"
	"github.com/cloudsql-cache/cloudsql-cache/local/relay"
)

// Config configures a pipeline.
type Config struct {
	// DSN of the database for the CDC source (see cdc.Config).
	DSN       string
	Flavor    string // "mariadb" or "mysql"
	ServerID  uint32 // the CDC source's replica id; 0 means 5401
	Prefix    string // topic prefix; "" means "local"
	Databases []string
	Tables    []string
	// StateDir holds the CDC offsets.
	StateDir string
	// Endpoint is the function's URL; set it before Start or with SetEndpoint... (the function needs
	// the emulator's address first: start the pipeline, then the function, then call Deliver).
	Endpoint string
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
	// from the same observations.
	OnApplied func(Applied)
	Logger    *slog.Logger
}

// Pipeline is a running emulator + relay + CDC source.
type Pipeline struct {
	cfg   Config
	Emu   *pubsubemu.Emulator
	Relay *relay.Relay
	lag   *lagMeter

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	cdcCancel context.CancelFunc
	cdcDone   chan error
}

// Start starts the emulator; the relay starts delivering when Deliver is called with the function's
// URL, and the CDC source with StartCDC.
func Start(ctx context.Context, cfg Config) (*Pipeline, error) {
	if cfg.Prefix == "" {
		cfg.Prefix = "local"
	}
	if cfg.ServerID == 0 {
		cfg.ServerID = 5401
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	p := &Pipeline{cfg: cfg, lag: newLagMeter()}
	p.ctx, p.cancel = context.WithCancel(context.Background())
	var r *relay.Relay
	var pending []string
	var rmu sync.Mutex
	if cfg.Housekeeping == 0 {
		cfg.Housekeeping = time.Minute
	}
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
		return nil, err
	}
	p.Emu = emu
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

// observe measures an applied change's lag and hands it to Config.OnApplied.
func (p *Pipeline) observe(d relay.Delivery) {
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

// StartCDC starts the CDC source (from the offset in the state dir). Errors are logged and the source
// stays stopped; CDCErr reports them.
func (p *Pipeline) StartCDC() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cdcCancel != nil {
		return errors.New("pipeline: the CDC source is running")
	}
	src, err := cdc.New(cdc.Config{DSN: p.cfg.DSN, Flavor: p.cfg.Flavor, ServerID: p.cfg.ServerID, Prefix: p.cfg.Prefix,
		Databases: p.cfg.Databases, Tables: p.cfg.Tables, StateDir: p.cfg.StateDir, Sink: p.Emu, Logger: p.cfg.Logger})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(p.ctx)
	done := make(chan error, 1)
	p.cdcCancel, p.cdcDone = cancel, done
	go func() {
		err := src.Run(ctx)
		src.Close()
		if err != nil {
			p.cfg.Logger.Error("CDC source stopped", "error", err.Error())
		}
		done <- err
	}()
	return nil
}

// StopCDC stops the CDC source (as a crash would: nothing more is published; the offset holds what
// was confirmed) and returns its error, if it had one.
func (p *Pipeline) StopCDC() error {
	p.mu.Lock()
	cancel, done := p.cdcCancel, p.cdcDone
	p.cdcCancel, p.cdcDone = nil, nil
	p.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	return <-done
}

// CDCErr returns the CDC source's error if it stopped by itself.
func (p *Pipeline) CDCErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cdcDone == nil {
		return nil
	}
	select {
	case err := <-p.cdcDone:
		p.cdcDone <- err
		if err == nil {
			err = errors.New("the CDC source stopped")
		}
		return err
	default:
		return nil
	}
}

// Close stops everything in this process.
func (p *Pipeline) Close() {
	_ = p.StopCDC()
	p.cancel()
	p.wg.Wait()
	p.Emu.Close()
}

// Quiesce waits until the relay has had nothing to deliver for a while and every published message
// was acknowledged.
func (p *Pipeline) Quiesce(ctx context.Context, quiet time.Duration) error {
	var last int64 = -1
	since := time.Now()
	for {
		s := p.Relay.Stats()
		if s.Backlog == 0 && s.Acked == last {
			if time.Since(since) >= quiet {
				return nil
			}
		} else {
			last, since = s.Acked, time.Now()
		}
		if err := p.CDCErr(); err != nil {
			return fmt.Errorf("pipeline: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pipeline: not quiet (backlog %d): %w", s.Backlog, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
