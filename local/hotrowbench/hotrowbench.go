// Package hotrowbench is the hot-row benchmark (cmd/benchhotrow): one row updated at fixed rates,
// delivered by push with a simulated cloud round trip, ordered and unordered, measuring the lag and
// the backlog's growth.
//
// Method: a redis-server, the real function binary (functionproc) and, per phase, a fresh Pub/Sub
// emulator (local/pubsubemu) and push relay (local/relay) run on loopback. The relay adds RTT to
// every push, slow-starts its push window (Pub/Sub's flow control) up to Window and caps the requests
// at the function at InstanceConcurrency × Instances (Cloud Run). A phase publishes, open loop, one
// row's updates at the offered rate for Warmup + Duration: real Debezium compact-format events (the
// recorded fixture testdata/debezium/compact/compact/047-update-customers-u.json, with the ordering
// key Debezium gives it), each with the next binlog position so every one is a newer version. They
// go straight to the emulator rather than through MariaDB and Debezium Server: this measures the push
// path (the per-key ceiling is a property of delivery, not of capture), and a single row at 1,000/s
// would otherwise measure the binlog and Debezium's batching on a shared machine instead.
// Ordered, the relay delivers the key one push at a time; unordered, as with
// enable_message_ordering=false, concurrently and out of order (the version guard answers the older
// ones "stale").
//
// Lag is from the Publish call to the push's acknowledgement, over the messages published in the
// measured window (a message still undelivered when the run gives up counts with its age then, a lower
// bound). Unordered, an acknowledgement answered "stale" came after a newer version was already in
// the cache, so for the cache's freshness this lag is an upper bound; every 100 ms the outstanding messages (published, not yet acknowledged) are
// sampled, and their slope over the measured window is the backlog's growth. After the load the run
// waits up to DrainMax for them to drain; what did not drain makes the lag a lower bound.
package hotrowbench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/proccpu"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/internal/stats"
	"github.com/cloudsql-cache/cloudsql-cache/local/functionproc"
	"github.com/cloudsql-cache/cloudsql-cache/local/pubsubemu"
	"github.com/cloudsql-cache/cloudsql-cache/local/relay"
)

// Fixture is the recorded Debezium message every update is made from (relative to the module).
const Fixture = "testdata/debezium/compact/compact/047-update-customers-u.json"

// fixtureKey and fixtureTopic are what Debezium Server gave the fixture (messages.json).
const (
	fixtureKey   = `{"id":1}`
	fixtureTopic = "local.shop.customers"
)

// Config configures a run.
type Config struct {
	Rates            []float64     // offered updates of the row per second
	Ordered          []bool        // the modes to measure, each at every rate
	RTT              time.Duration // added to every push
	Warmup, Duration time.Duration // load before measuring; measured load
	DrainMax         time.Duration // how long to wait for the backlog after the load
	Window           int           // the push window's ceiling (slow start grows to it)
	// Baseline adds unordered phases without the RTT at every rate: the same run's measure of what the
	// machine (not the round trip) costs.
	Baseline                       bool
	InstanceConcurrency, Instances int
	ModuleDir, Dir                 string
	Progress                       io.Writer
}

func (c Config) validate() error {
	if len(c.Rates) == 0 || len(c.Ordered) == 0 || c.Duration <= 0 || c.Window < 1 || c.InstanceConcurrency < 1 || c.Instances < 1 || c.ModuleDir == "" || c.Dir == "" {
		return errors.New("hotrowbench: need rates, modes, Duration > 0, Window, InstanceConcurrency and Instances ≥ 1, a ModuleDir and a Dir")
	}
	for _, r := range c.Rates {
		if !(r > 0) {
			return fmt.Errorf("hotrowbench: rate %v is not positive", r)
		}
	}
	return nil
}

// Result is one phase's numbers.
type Result struct {
	Ordered            bool
	RTT                time.Duration
	Offered, Published float64 // per second, over the measured window
	Acked              float64 // acknowledgements per second over the measured window
	Lag                stats.Summary
	MaxOutstanding     int64
	Slope              float64       // outstanding messages' growth per second while measured
	Drain              time.Duration // after the load; -1: not within DrainMax
	Left               int64         // outstanding when the drain gave up
	Stale, Refused     int64
	Window             int // the push window at the end of the load
	// FnCores and SelfCores are the CPU the function and this process (the emulator, the relay and
	// the publisher) used over the measured window, in cores; Load the 1-minute load average at its
	// start: who spent the time, on a machine shared with others.
	FnCores, SelfCores, Load float64
}

// Run measures every mode at every rate and writes the table to w.
func Run(ctx context.Context, c Config, w io.Writer) error {
	if err := c.validate(); err != nil {
		return err
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	tmpl, err := os.ReadFile(filepath.Join(c.ModuleDir, Fixture))
	if err != nil {
		return fmt.Errorf("hotrowbench: %w", err)
	}
	ev, err := newEvents(tmpl)
	if err != nil {
		return err
	}
	rs, err := redisserver.Start(ctx, redisserver.Options{Dir: filepath.Join(c.Dir, "redis")})
	if err != nil {
		return err
	}
	defer rs.Stop()
	// The function dead-letters to the emulator it is started with; phases bring their own, so its
	// dead-letter publisher points at a placeholder that no hot-row message (all valid) needs.
	bin := filepath.Join(c.Dir, "cloudsql-cache-function")
	if err := functionproc.Build(ctx, c.ModuleDir, bin); err != nil {
		return err
	}
	port, err := freeport.Get()
	if err != nil {
		return err
	}
	fnLog, err := os.Create(filepath.Join(c.Dir, "function.log"))
	if err != nil {
		return err
	}
	defer fnLog.Close()
	fn, err := functionproc.Start(ctx, bin, port, []string{"REDIS_ADDR=" + rs.Addr(), "DEAD_LETTER_TOPIC=nack"}, fnLog)
	if err != nil {
		return err
	}
	defer fn.Stop()
	fmt.Fprintf(w, "hot row: one row's updates (Debezium compact format, %d B) published to the Pub/Sub emulator → push relay (RTT %v unless the table says 0, slow start up to %d, %d × %d concurrent at the function) → function → Redis; %s warm-up + %s per phase, %s, %d cores, shared with other work\n\n",
		len(tmpl), c.RTT, c.Window, c.InstanceConcurrency, c.Instances, c.Warmup, c.Duration, runtime.GOOS+"/"+runtime.GOARCH, runtime.NumCPU())
	type mode struct {
		ordered bool
		rtt     time.Duration
	}
	var modes []mode
	for _, ordered := range c.Ordered {
		modes = append(modes, mode{ordered, c.RTT})
	}
	if c.Baseline && c.RTT > 0 {
		modes = append(modes, mode{false, 0})
	}
	var results []Result
	for _, m := range modes {
		for _, rate := range c.Rates {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(c.Progress, "benchhotrow: ordered=%v rtt=%v %.0f/s …\n", m.ordered, m.rtt, rate)
			r, err := phase(ctx, c, fn, ev, m.ordered, m.rtt, rate)
			if err != nil {
				return err
			}
			printRaw(c.Progress, r)
			results = append(results, r)
		}
	}
	printTable(w, c.RTT, results)
	fmt.Fprintln(w)
	for _, r := range results {
		printRaw(w, r)
	}
	return ctx.Err()
}

// events makes the fixture's update with ever newer binlog positions.
type events struct {
	prefix, suffix []byte
	mu             sync.Mutex
	pos            int64
}

func newEvents(tmpl []byte) (*events, error) {
	var probe struct {
		Pos *int64 `json:"__pos"`
	}
	if err := json.Unmarshal(tmpl, &probe); err != nil || probe.Pos == nil {
		return nil, fmt.Errorf("hotrowbench: %s has no __pos (not a compact-format event)", Fixture)
	}
	field := []byte(`"__pos":` + strconv.FormatInt(*probe.Pos, 10))
	i := bytes.Index(tmpl, field)
	if i < 0 {
		return nil, fmt.Errorf("hotrowbench: %s: __pos is not written as %s", Fixture, field)
	}
	return &events{prefix: tmpl[:i+len(`"__pos":`)], suffix: bytes.TrimSpace(tmpl[i+len(field):]), pos: *probe.Pos}, nil
}

// next is the next update and its position.
func (e *events) next() ([]byte, int64) {
	e.mu.Lock()
	e.pos++
	p := e.pos
	e.mu.Unlock()
	b := append(append([]byte{}, e.prefix...), strconv.FormatInt(p, 10)...)
	return append(b, e.suffix...), p
}

// cpuNow is the CPU time so far of the function and of this process (0 where unreadable).
func cpuNow(fn *functionproc.Process) [2]time.Duration {
	f, _ := proccpu.Time(fn.Pid())
	self, _ := proccpu.Time(os.Getpid())
	return [2]time.Duration{f, self}
}

// loadAverage is the machine's 1-minute load average (0 if unreadable).
func loadAverage() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

func posOf(data []byte) (int64, bool) {
	var v struct {
		Pos *int64 `json:"__pos"`
	}
	if json.Unmarshal(data, &v) != nil || v.Pos == nil {
		return 0, false
	}
	return *v.Pos, true
}

// tracker is one phase's bookkeeping: when each position was published, and the acknowledgements.
type tracker struct {
	mu        sync.Mutex
	published map[int64]time.Time
	measured  map[int64]bool // published in the measured window
	lags      []float64      // ms, of measured messages
	acked     int64
	stale     int64
}

func (t *tracker) delivered(d relay.Delivery) {
	if !d.Acked || d.Repeat {
		return
	}
	pos, ok := posOf(d.Message.Data)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.acked++
	if d.Outcome == "stale" {
		t.stale++
	}
	if at, known := t.published[pos]; ok && known {
		if t.measured[pos] {
			t.lags = append(t.lags, float64(d.At.Sub(at).Microseconds())/1000)
		}
		delete(t.published, pos)
	}
}

func phase(ctx context.Context, c Config, fn *functionproc.Process, ev *events, ordered bool, rtt time.Duration, rate float64) (Result, error) {
	res := Result{Ordered: ordered, RTT: rtt, Offered: rate}
	endpoint := fn.URL()
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	var r *relay.Relay
	emu, err := pubsubemu.Start(pctx, pubsubemu.Options{OnSubscription: func(s string) { r.AddSubscription(s) }})
	if err != nil {
		return res, err
	}
	defer emu.Close()
	tr := &tracker{published: map[int64]time.Time{}, measured: map[int64]bool{}}
	r, err = relay.New(relay.Config{Client: emu.Client(), Endpoint: endpoint, Unordered: !ordered, RTT: rtt, SlowStart: true, MaxInFlight: c.Window,
		InstanceConcurrency: c.InstanceConcurrency, MaxInstances: c.Instances, OnAck: emu.Acked, OnDelivery: tr.delivered, Logger: logger})
	if err != nil {
		return res, err
	}
	relayDone := make(chan struct{})
	go func() { r.Run(pctx); close(relayDone) }()
	defer func() { cancel(); <-relayDone }()
	if err := emu.EnsureTopic(pctx, fixtureTopic); err != nil {
		return res, err
	}
	pub := emu.Client().Publisher("projects/" + emu.Project() + "/topics/" + fixtureTopic)
	pub.EnableMessageOrdering = true // Debezium Server's sink publishes with ordering keys
	defer pub.Stop()

	var published int64
	var pubMu sync.Mutex
	var pubErr error
	loadDone := make(chan struct{})
	t0 := time.Now()
	start, end := t0.Add(c.Warmup), t0.Add(c.Warmup+c.Duration)
	go func() {
		defer close(loadDone)
		for i := 0; ; i++ {
			due := t0.Add(time.Duration(float64(i) / rate * float64(time.Second)))
			if !due.Before(end) || pctx.Err() != nil {
				return
			}
			if d := time.Until(due); d > 0 {
				time.Sleep(d)
			}
			data, pos := ev.next()
			now := time.Now()
			tr.mu.Lock()
			tr.published[pos] = now
			if !now.Before(start) {
				tr.measured[pos] = true
			}
			tr.mu.Unlock()
			pubMu.Lock()
			published++
			pubMu.Unlock()
			res := pub.Publish(pctx, &pubsub.Message{Data: data, OrderingKey: fixtureKey})
			go func() {
				if _, err := res.Get(pctx); err != nil && pctx.Err() == nil {
					pubMu.Lock()
					pubErr = err
					pubMu.Unlock()
				}
			}()
		}
	}()
	outstanding := func() int64 {
		pubMu.Lock()
		p := published
		pubMu.Unlock()
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return p - tr.acked
	}
	var xs, ys []float64
	var pubStart, pubEnd, ackStart, ackEnd int64
	var stopped time.Time
	var cpu0 [2]time.Duration // the function's and this process's, at the window's start
	cpuRead := false
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		now := <-tick.C
		out := outstanding()
		res.MaxOutstanding = max(res.MaxOutstanding, out)
		inWindow := !now.Before(start) && now.Before(end)
		if inWindow {
			xs, ys = append(xs, now.Sub(t0).Seconds()), append(ys, float64(out))
			if pubStart == 0 {
				cpu0 = cpuNow(fn)
				res.Load = loadAverage()
				pubMu.Lock()
				pubStart = published
				pubMu.Unlock()
				tr.mu.Lock()
				ackStart = tr.acked
				tr.mu.Unlock()
			}
		}
		if !inWindow && pubStart != 0 && !cpuRead {
			cpuRead = true
			cpu1 := cpuNow(fn)
			wall := now.Sub(start).Seconds()
			res.FnCores, res.SelfCores = (cpu1[0]-cpu0[0]).Seconds()/wall, (cpu1[1]-cpu0[1]).Seconds()/wall
		}
		if stopped.IsZero() {
			select {
			case <-loadDone:
				stopped = now
				pubMu.Lock()
				pubEnd = published
				pubMu.Unlock()
				tr.mu.Lock()
				ackEnd = tr.acked
				tr.mu.Unlock()
				res.Window = r.Stats().PushWindow
			default:
			}
			continue
		}
		if out == 0 {
			res.Drain = now.Sub(stopped)
			break
		}
		if now.Sub(stopped) > c.DrainMax || ctx.Err() != nil {
			res.Drain, res.Left = -1, out
			break
		}
	}
	secs := c.Duration.Seconds()
	res.Published, res.Acked = float64(pubEnd-pubStart)/secs, float64(ackEnd-ackStart)/secs
	res.Slope = stats.Slope(xs, ys)
	tr.mu.Lock()
	// What was not delivered when the run gave up counts with its age then: a lower bound of its lag,
	// so the percentiles are lower bounds too, never flattered by leaving the slowest out.
	gaveUp := time.Now()
	for pos, at := range tr.published {
		if tr.measured[pos] {
			tr.lags = append(tr.lags, float64(gaveUp.Sub(at).Microseconds())/1000)
		}
	}
	res.Lag, res.Stale = stats.Summarize(tr.lags), tr.stale
	tr.mu.Unlock()
	st := r.Stats()
	res.Refused = st.Refused
	pubMu.Lock()
	defer pubMu.Unlock()
	if pubErr != nil {
		return res, fmt.Errorf("hotrowbench: publish: %w", pubErr)
	}
	if n := st.Outcomes["applied"] + st.Outcomes["stale"]; n == 0 {
		return res, fmt.Errorf("hotrowbench: the function applied nothing (outcomes %v): see %s", st.Outcomes, filepath.Join(c.Dir, "function.log"))
	}
	return res, nil
}
