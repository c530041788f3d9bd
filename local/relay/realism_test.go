package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/cloudsql-cache/cloudsql-cache/function/push"
	"github.com/cloudsql-cache/cloudsql-cache/local/pubsubemu"
	"github.com/cloudsql-cache/cloudsql-cache/local/relay"
)

// gate is a real HTTP function that counts the pushes it holds at once, and holds each until told to
// answer. A push answers with the status of the phase it arrived in, whatever the test does after, so
// that a push already let through cannot pick up a later phase's status.
type gate struct {
	mu       sync.Mutex
	inFlight map[string]int // by ordering key
	total    int
	peak     int
	arrivals map[string][]time.Time
	answered int
	cur      *gatePhase
	// when, if set, is asked at each arrival; once true, that push and the later ones arrive in a new
	// held phase answering whenStatus (the test needs no race with the relay to stop it).
	when       func() bool
	whenStatus int
}

// gatePhase is what pushes arriving in it do: wait until open is closed, then answer status.
type gatePhase struct {
	open   chan struct{}
	status int
}

func newGate() *gate {
	return &gate{inFlight: map[string]int{}, arrivals: map[string][]time.Time{}, cur: &gatePhase{open: make(chan struct{}), status: 200}}
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	m, err := push.ReadRequest(r, 1<<20)
	if err != nil {
		w.WriteHeader(400)
		return
	}
	g.mu.Lock()
	if g.when != nil && g.when() {
		g.cur, g.when = &gatePhase{open: make(chan struct{}), status: g.whenStatus}, nil
	}
	g.inFlight[m.OrderingKey]++
	g.total++
	g.peak = max(g.peak, g.total)
	g.arrivals[m.OrderingKey] = append(g.arrivals[m.OrderingKey], time.Now())
	p := g.cur
	g.mu.Unlock()
	select {
	case <-p.open:
	case <-r.Context().Done():
	}
	g.mu.Lock()
	g.inFlight[m.OrderingKey]--
	g.total--
	g.answered++
	g.mu.Unlock()
	w.WriteHeader(p.status)
}

// release lets the current phase's pushes, and those arriving in it, answer.
func (g *gate) release() { g.mu.Lock(); close(g.cur.open); g.mu.Unlock() }

// hold starts a phase whose pushes wait and then answer status; earlier phases' pushes keep theirs.
func (g *gate) hold(status int) {
	g.mu.Lock()
	g.cur = &gatePhase{open: make(chan struct{}), status: status}
	g.mu.Unlock()
}

// holdWhen starts a held phase answering status at the first arrival for which cond is true.
func (g *gate) holdWhen(cond func() bool, status int) {
	g.mu.Lock()
	g.when, g.whenStatus = cond, status
	g.mu.Unlock()
}

func (g *gate) snapshot() (total, peak, answered int, perKey map[string]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	perKey = map[string]int{}
	for k, v := range g.inFlight {
		perKey[k] = v
	}
	return g.total, g.peak, g.answered, perKey
}

// realRelay runs a relay with cfg against fn and publishes n messages of key (or of keys k0…kn-1
// when key is "").
func realRelay(t *testing.T, ctx context.Context, fn http.Handler, cfg relay.Config, key string, n int) *relay.Relay {
	t.Helper()
	srv := httptest.NewServer(fn)
	t.Cleanup(srv.Close)
	var r *relay.Relay
	emu, err := pubsubemu.Start(ctx, pubsubemu.Options{OnSubscription: func(s string) { r.AddSubscription(s) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	cfg.Client, cfg.Endpoint = emu.Client(), srv.URL
	cfg.MinBackoff, cfg.MaxBackoff = time.Millisecond, 5*time.Millisecond
	if r, err = relay.New(cfg); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	rctx, cancel := context.WithCancel(ctx)
	go func() { r.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := emu.EnsureTopic(ctx, "local.app.t"); err != nil {
		t.Fatal(err)
	}
	pub := orderedPublisher(emu, "local.app.t")
	defer pub.Stop()
	var results []*pubsub.PublishResult
	for i := 0; i < n; i++ {
		k := key
		if k == "" {
			k = fmt.Sprintf("k%d", i)
		}
		results = append(results, pub.Publish(ctx, &pubsub.Message{OrderingKey: k, Data: []byte(fmt.Sprint(i))}))
	}
	for _, res := range results {
		if _, err := res.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// waitFor polls cond for up to a minute (a loaded machine), failing with what.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after a minute: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// settle gives the relay time to send more than it should (a relay that does sends at once).
func settle() { time.Sleep(300 * time.Millisecond) }

// TestRTTSpacesAnOrderedKey: with RTT, a key's next push reaches the function no sooner than RTT after
// the previous one was answered, so an ordered key gets at most 1/RTT deliveries a second.
func TestRTTSpacesAnOrderedKey(t *testing.T) {
	ctx := context.Background()
	g := newGate()
	g.release()
	const rtt, n = 40 * time.Millisecond, 8
	r := realRelay(t, ctx, g, relay.Config{RTT: rtt}, "hot", n)
	waitFor(t, "all acknowledged", func() bool { return r.Stats().Acked == n })
	g.mu.Lock()
	defer g.mu.Unlock()
	at := g.arrivals["hot"]
	if len(at) != n {
		t.Fatalf("%d arrivals, want %d", len(at), n)
	}
	for i := 1; i < n; i++ {
		if gap := at[i].Sub(at[i-1]); gap < rtt {
			t.Errorf("push %d arrived %v after the previous one, less than the RTT %v", i, gap, rtt)
		}
	}
}

// TestUnorderedPushesOneKeyConcurrently: as with enable_message_ordering=false, one key's messages are
// outstanding at once; ordered, never more than one.
func TestUnorderedPushesOneKeyConcurrently(t *testing.T) {
	ctx := context.Background()
	for _, unordered := range []bool{false, true} {
		t.Run(fmt.Sprintf("unordered=%v", unordered), func(t *testing.T) {
			g := newGate()
			r := realRelay(t, ctx, g, relay.Config{Unordered: unordered}, "hot", 20)
			waitFor(t, "a push arrives", func() bool { total, _, _, _ := g.snapshot(); return total >= 1 })
			if unordered {
				waitFor(t, "20 pushes of one key at once", func() bool { _, _, _, k := g.snapshot(); return k["hot"] == 20 })
			} else {
				settle()
				if _, peak, _, _ := g.snapshot(); peak != 1 {
					t.Errorf("ordered: %d pushes of one key at once", peak)
				}
			}
			g.release()
			waitFor(t, "all acknowledged", func() bool { return r.Stats().Acked == 20 })
		})
	}
}

// TestSlowStart: the push window starts small, grows with successes and shrinks with failures; the
// function never holds more pushes than the window allows.
func TestSlowStart(t *testing.T) {
	ctx := context.Background()
	g := newGate()
	const n = 400
	r := realRelay(t, ctx, g, relay.Config{SlowStart: true, MaxInFlight: 64, MaxDeliveryAttempts: 0}, "", n)
	waitFor(t, "the first window in flight", func() bool { total, _, _, _ := g.snapshot(); return total >= 3 })
	settle()
	if total, _, _, _ := g.snapshot(); total != 3 || r.Stats().PushWindow != 3 {
		t.Fatalf("at the start %d pushes in flight, window %d; want 3 (slow start)", total, r.Stats().PushWindow)
	}
	// Successes: the window opens up to MaxInFlight. The first push to arrive once it is there is held,
	// and so is every later one, to be answered 503: messages are left for the failures whatever the
	// scheduling (a test polling for the full window could find every message already acknowledged).
	g.holdWhen(func() bool { return r.Stats().PushWindow == 64 }, 503)
	g.release()
	waitFor(t, "the window grows to 64", func() bool { return r.Stats().PushWindow == 64 })
	waitFor(t, "the full window held", func() bool { total, _, _, _ := g.snapshot(); return total == 64 })
	if _, peak, _, _ := g.snapshot(); peak > 64 {
		t.Errorf("%d pushes in flight, above MaxInFlight 64", peak)
	}
	if acked := r.Stats().Acked; acked >= n {
		t.Fatalf("all %d acknowledged before the failures", acked)
	}
	// Failures: everything answered 503 closes the window down to one. The pushes sent while it was
	// wider are answered first; after them, one push at a time.
	_, _, answered, _ := g.snapshot()
	g.release()
	waitFor(t, "the window shrinks to 1", func() bool { return r.Stats().PushWindow == 1 })
	waitFor(t, "the wider window's pushes answered", func() bool { _, _, a, _ := g.snapshot(); return a >= answered+200 })
	g.hold(200)
	settle()
	if total, _, _, _ := g.snapshot(); total != 1 {
		t.Errorf("after failures %d pushes in flight, want 1 (the window)", total)
	}
	g.release()
	waitFor(t, "all acknowledged", func() bool { return r.Stats().Acked == n })
}

// TestInstanceCap: the function never holds more than concurrency × instances pushes; a push that
// finds no place within QueueTimeout is answered 429 and retried.
func TestInstanceCap(t *testing.T) {
	ctx := context.Background()
	g := newGate()
	const n = 50
	var mu sync.Mutex
	outcomes := map[string]int{}
	r := realRelay(t, ctx, g, relay.Config{InstanceConcurrency: 3, MaxInstances: 2, QueueTimeout: 50 * time.Millisecond,
		OnDelivery: func(d relay.Delivery) { mu.Lock(); outcomes[d.Outcome]++; mu.Unlock() }}, "", n)
	waitFor(t, "6 pushes at the function", func() bool { total, _, _, _ := g.snapshot(); return total == 6 })
	waitFor(t, "pushes refused 429", func() bool { return r.Stats().Refused > 0 })
	if _, peak, _, _ := g.snapshot(); peak != 6 {
		t.Errorf("%d pushes at the function at once, cap 3×2", peak)
	}
	g.release()
	waitFor(t, "all acknowledged", func() bool { return r.Stats().Acked == n })
	mu.Lock()
	defer mu.Unlock()
	if outcomes["429"] == 0 || int64(outcomes["429"]) != r.Stats().Refused {
		t.Errorf("429 outcomes observed %d, refused %d", outcomes["429"], r.Stats().Refused)
	}
}

// TestNewRefusesNegativeBounds: a negative bound is refused at start-up. A negative MaxInFlight made a
// push window nothing could enter, and the relay hung delivering nothing.
func TestNewRefusesNegativeBounds(t *testing.T) {
	emu, err := pubsubemu.Start(context.Background(), pubsubemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(emu.Close)
	for _, cfg := range []relay.Config{{MaxInFlight: -1}, {MaxInFlight: -1, SlowStart: true}, {RTT: -time.Millisecond}, {InstanceConcurrency: -1},
		{MaxInstances: -1}, {QueueTimeout: -time.Second}} {
		cfg.Client, cfg.Endpoint = emu.Client(), "http://127.0.0.1:1"
		if _, err := relay.New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}
