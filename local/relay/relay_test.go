package relay_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/cloudsql-cache/cloudsql-cache/function/push"
	"github.com/cloudsql-cache/cloudsql-cache/local/pubsubemu"
	"github.com/cloudsql-cache/cloudsql-cache/local/relay"
)

// TestPushSemantics: per-key order with one message outstanding per key, acknowledgement only on the
// success codes, retries with deliveryAttempt counted, and dead-lettering after the maximum attempts;
// the observer hears every answer.
func TestPushSemantics(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	inFlight := map[string]bool{}
	got := map[string][]string{}
	attempts := map[string][]int{}
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := push.ReadRequest(r, 1<<20)
		if err != nil {
			t.Errorf("bad push body: %v", err)
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		if inFlight[m.OrderingKey] {
			t.Errorf("two messages of key %s outstanding at once", m.OrderingKey)
		}
		inFlight[m.OrderingKey] = true
		attempts[string(m.Data)] = append(attempts[string(m.Data)], m.DeliveryAttempt)
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		inFlight[m.OrderingKey] = false
		mu.Unlock()
		switch {
		case strings.HasPrefix(string(m.Data), "poison"):
			w.WriteHeader(503) // never accepted
		case strings.HasPrefix(string(m.Data), "flaky") && m.DeliveryAttempt < 3:
			w.WriteHeader(500)
		case strings.HasPrefix(string(m.Data), "accepted"):
			w.WriteHeader(204)
		default:
			mu.Lock()
			got[m.OrderingKey] = append(got[m.OrderingKey], string(m.Data))
			mu.Unlock()
			fmt.Fprintln(w, "applied")
		}
	}))
	defer fn.Close()

	var r *relay.Relay
	emu, err := pubsubemu.Start(ctx, pubsubemu.Options{MaxDeliveryAttempts: 5, OnSubscription: func(s string) { r.AddSubscription(s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	dlq := emu.Client().Publisher(emu.DeadLetterTopic())
	var observed []relay.Delivery
	r, err = relay.New(relay.Config{Client: emu.Client(), Endpoint: fn.URL, MaxDeliveryAttempts: 5, DeadLetter: dlq,
		MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, OnAck: emu.Acked,
		OnDelivery: func(d relay.Delivery) { mu.Lock(); observed = append(observed, d); mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	if err := emu.EnsureTopic(ctx, "local.app.t"); err != nil {
		t.Fatal(err)
	}
	pub := orderedPublisher(emu, "local.app.t")
	defer pub.Stop()
	var results []*pubsub.PublishResult
	publish := func(key, data string) {
		results = append(results, pub.Publish(ctx, &pubsub.Message{OrderingKey: key, Data: []byte(data)}))
	}
	for i := 0; i < 30; i++ {
		for _, k := range []string{"a", "b", "c"} {
			publish(k, fmt.Sprintf("%s-%02d", k, i))
		}
	}
	publish("d", "poison")
	publish("d", "after-poison")
	publish("e", "flaky")
	publish("e", "accepted")
	for _, res := range results {
		if _, err := res.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitAcked(t, emu, r, int64(len(results)), 20*time.Second)
	mu.Lock()
	for _, k := range []string{"a", "b", "c"} {
		for i, d := range got[k] {
			if want := fmt.Sprintf("%s-%02d", k, i); d != want {
				t.Errorf("key %s delivered %s at %d, want %s", k, d, i, want)
			}
		}
	}
	if fmt.Sprint(attempts["poison"]) != "[1 2 3 4 5]" || fmt.Sprint(attempts["flaky"]) != "[1 2 3]" {
		t.Errorf("delivery attempts: poison %v, flaky %v", attempts["poison"], attempts["flaky"])
	}
	if len(got["d"]) != 1 || got["d"][0] != "after-poison" {
		t.Errorf("the key after a dead-lettered message: %v", got["d"])
	}
	// Every push was answered and observed once, with its data, attempt, answer and acknowledgement.
	heard := map[string][]string{}
	for _, d := range observed {
		heard[string(d.Message.Data)] = append(heard[string(d.Message.Data)], fmt.Sprintf("%d:%s:%v", d.Attempt, d.Outcome, d.Acked))
	}
	if len(observed) != 90+1+5+3+1 || fmt.Sprint(heard["a-07"]) != "[1:applied:true]" ||
		fmt.Sprint(heard["poison"]) != "[1:503:false 2:503:false 3:503:false 4:503:false 5:503:false]" ||
		fmt.Sprint(heard["flaky"]) != "[1:500:false 2:500:false 3:applied:true]" || fmt.Sprint(heard["accepted"]) != "[1::true]" {
		t.Errorf("%d deliveries observed: a-07 %v, poison %v, flaky %v, accepted %v", len(observed), heard["a-07"], heard["poison"], heard["flaky"], heard["accepted"])
	}
	mu.Unlock()
	if dl := emu.DeadLetters(); len(dl) != 1 || string(dl[0].Data) != "poison" || dl[0].Attributes["CloudPubSubDeadLetterSourceDeliveryCount"] != "5" {
		t.Errorf("dead letters: %v", dl)
	}
	st := r.Stats()
	if st.RelayDLQ != 1 || st.Backlog != 0 || st.Outcomes["applied"] != 92 {
		t.Errorf("stats %+v", st)
	}
	cancel()
	<-done
}

// TestOrderAcrossPulls: with more messages waiting than one pull returns, each key's messages still
// arrive in publish order. pstest hands out an arbitrary subset per pull, so a relay that dispatched
// each pull's batch on its own would deliver some key's later message before its earlier one.
func TestOrderAcrossPulls(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const keys, perKey = 3, 1200 // 3601 messages with the seed: several pulls of at most 1000
	var mu sync.Mutex
	got := map[string][]string{}
	total := 0
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m, err := push.ReadRequest(r, 1<<20)
		if err != nil {
			t.Errorf("bad push body: %v", err)
			w.WriteHeader(400)
			return
		}
		mu.Lock()
		got[m.OrderingKey] = append(got[m.OrderingKey], string(m.Data))
		total++
		mu.Unlock()
	}))
	defer fn.Close()
	var r *relay.Relay
	emu, err := pubsubemu.Start(ctx, pubsubemu.Options{MaxDeliveryAttempts: 5, OnSubscription: func(s string) { r.AddSubscription(s) }})
	if err != nil {
		t.Fatal(err)
	}
	defer emu.Close()
	r, err = relay.New(relay.Config{Client: emu.Client(), Endpoint: fn.URL, MaxDeliveryAttempts: 5,
		DeadLetter: emu.Client().Publisher(emu.DeadLetterTopic()), MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	// Everything is published before the relay starts.
	if err := emu.EnsureTopic(ctx, "local.app.t"); err != nil {
		t.Fatal(err)
	}
	pub := orderedPublisher(emu, "local.app.t")
	defer pub.Stop()
	results := []*pubsub.PublishResult{pub.Publish(ctx, &pubsub.Message{OrderingKey: "seed", Data: []byte("seed")})}
	for i := 0; i < perKey; i++ {
		for k := 0; k < keys; k++ {
			key := fmt.Sprintf("k%d", k)
			results = append(results, pub.Publish(ctx, &pubsub.Message{OrderingKey: key, Data: []byte(fmt.Sprintf("%s-%04d", key, i))}))
		}
	}
	for _, res := range results {
		if _, err := res.Get(ctx); err != nil {
			t.Fatal(err)
		}
	}
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	deadline := time.Now().Add(60 * time.Second)
	for {
		mu.Lock()
		n := total
		mu.Unlock()
		if n >= keys*perKey+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d messages delivered after 60s", n, keys*perKey+1)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	mu.Lock()
	defer mu.Unlock()
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("k%d", k)
		for i, d := range got[key] {
			if want := fmt.Sprintf("%s-%04d", key, i); d != want {
				t.Fatalf("key %s: delivery %d was %s, want %s", key, i, d, want)
			}
		}
	}
}

func orderedPublisher(emu *pubsubemu.Emulator, topic string) *pubsub.Publisher {
	pub := emu.Client().Publisher("projects/" + emu.Project() + "/topics/" + topic)
	pub.EnableMessageOrdering = true
	return pub
}

// waitAcked waits until the relay has acknowledged n messages and the emulator holds none outstanding.
func waitAcked(t *testing.T, emu *pubsubemu.Emulator, r *relay.Relay, n int64, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st := r.Stats()
		if st.Acked >= n && st.Backlog == 0 && emu.Outstanding() == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %d of %d acknowledged, backlog %d, %d outstanding in the emulator", within, st.Acked, n, st.Backlog, emu.Outstanding())
		}
		time.Sleep(5 * time.Millisecond)
	}
}
