// Package relay is the local Pub/Sub push delivery: it pulls each subscription of the emulator and POSTs
// every message to the function as Pub/Sub's wrapped push envelope, with push semantics: one
// outstanding message per ordering key, in publish order; acknowledged only on 102, 200, 201, 202 or
// 204; anything else (or no answer) retried with exponential backoff, deliveryAttempt counted, and
// forwarded to the dead-letter topic after the maximum attempts. It counts the function's outcomes and
// reports every answer to an observer (Config.OnDelivery), which is where the local pipeline measures
// lag: the relay moves messages and does not read them.
//
// Opt-in, it behaves as the cloud does under load (Config.RTT, SlowStart, InstanceConcurrency ×
// MaxInstances) and delivers as an unordered subscription (Config.Unordered).
package relay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/cloudsql-cache/cloudsql-cache/function/push"
)

// Config configures a Relay.
type Config struct {
	Client   *pubsub.Client
	Endpoint string // the function's URL
	// MaxDeliveryAttempts before a message goes to DeadLetter; 0 retries forever.
	MaxDeliveryAttempts int
	DeadLetter          *pubsub.Publisher
	// MinBackoff and MaxBackoff bound the retry delay (Pub/Sub's retry policy); 0 means 100ms and 10s.
	MinBackoff, MaxBackoff time.Duration
	// Timeout of one POST (Pub/Sub: the ack deadline); 0 means 30s.
	Timeout time.Duration
	// MaxInFlight bounds the POSTs outstanding at once, across keys; 0 means 80, what one Cloud Run
	// instance of the function accepts with Terraform's default function_concurrency (Cloud Run
	// queues or refuses the rest). Without a bound a snapshot would open a request per row at once.
	// With SlowStart it is the push window's ceiling.
	MaxInFlight int
	// Unordered delivers as a subscription with enable_message_ordering=false does: ordering keys are
	// ignored, so one key's messages are pushed concurrently and may be answered out of order.
	Unordered bool
	// RTT is a fixed round-trip time added to every push (waited before the request is sent),
	// simulating the network between Pub/Sub and Cloud Run: locally it is sub-millisecond, in the
	// cloud several milliseconds. It bounds an ordered key at 1/RTT deliveries a second. 0 adds
	// nothing.
	RTT time.Duration
	// SlowStart models Pub/Sub's push flow control instead of a fixed MaxInFlight window; see
	// pushWindow. The relay keeps one window across its subscriptions (Pub/Sub keeps one per
	// subscription): what the benchmarks using it deliver is one subscription.
	SlowStart bool
	// InstanceConcurrency × MaxInstances caps the requests the function has at once, as Cloud Run
	// caps a service (concurrency per instance × max instances); a push beyond the cap waits up to
	// QueueTimeout for a place, then is answered 429, as Cloud Run refuses requests it cannot place.
	// 0 for either means no cap.
	InstanceConcurrency, MaxInstances int
	// QueueTimeout is how long a push waits for a place under the instance cap; 0 means 10 s.
	QueueTimeout time.Duration
	// ExtendEvery is how often the ack deadlines of the messages the relay holds (pulled, waiting for
	// their key's turn or being retried) are renewed; 0 means a minute. It must be well below the
	// subscriptions' ack deadline, or the emulator hands held messages out again.
	ExtendEvery time.Duration
	// AckDeadline is what each renewal sets; 0 means 600 s.
	AckDeadline time.Duration
	// DuplicateRate is the share of acknowledged messages delivered a second time, a little later and
	// out of order with later changes of the key: Pub/Sub's at-least-once delivery, made frequent.
	DuplicateRate float64
	Seed          uint64
	// OnAck is called with each message id once it is acknowledged.
	OnAck func(id string)
	// OnDelivery, if set, is called with every answered push (the function's answer, or a failure to
	// get one), from the delivering goroutine, right after the answer: it must be quick and safe for
	// concurrent use.
	OnDelivery func(Delivery)
	Logger     *slog.Logger
}

// Delivery is one push of a message and its answer.
type Delivery struct {
	Message      *pb.PubsubMessage
	Subscription string
	Attempt      int    // 1 for the first push of the message
	Outcome      string // the function's answer ("applied", "stale", …), or "unreachable", a status code
	Acked        bool   // the answer acknowledges the message (102, 200, 201, 202 or 204)
	Repeat       bool   // a deliberate second delivery of an acknowledged message (DuplicateRate)
	At           time.Time
}

// Relay delivers subscriptions to an endpoint.
type Relay struct {
	cfg  Config
	http *http.Client
	log  *slog.Logger

	mu     sync.Mutex
	rnd    *rand.Rand
	subs   map[string]bool
	queues map[string][]*pb.ReceivedMessage // subscription + "\x00" + ordering key → in publish order
	held   map[string]*pb.ReceivedMessage   // by message id: everything in queues
	stats  counters
	window *pushWindow   // POSTs in flight: fixed at MaxInFlight, or slow start
	places chan struct{} // one per request at the function (the instance cap); nil: no cap
	wg     sync.WaitGroup
	ctx    context.Context
}

type counters struct {
	outcomes   map[string]int64
	acked      int64
	deliveries int64
	extra      int64 // duplicate deliveries sent on purpose
	relayDLQ   int64
	redeliv    int64 // messages the emulator handed out again while the relay held them
	extends    int64 // ack-deadline renewals sent
	refused    int64 // pushes answered 429 by the instance cap
}

// New builds a relay; call Run, then AddSubscription for each subscription.
func New(cfg Config) (*Relay, error) {
	if cfg.Client == nil || cfg.Endpoint == "" {
		return nil, errors.New("relay: client and endpoint are required")
	}
	if cfg.MaxDeliveryAttempts > 0 && cfg.DeadLetter == nil {
		return nil, errors.New("relay: max delivery attempts needs a dead-letter publisher")
	}
	if cfg.MinBackoff == 0 {
		cfg.MinBackoff = 100 * time.Millisecond
	}
	if cfg.MaxBackoff == 0 {
		cfg.MaxBackoff = 10 * time.Second
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 80
	}
	if cfg.ExtendEvery == 0 {
		cfg.ExtendEvery = time.Minute
	}
	if cfg.AckDeadline == 0 {
		cfg.AckDeadline = 600 * time.Second
	}
	if cfg.ExtendEvery >= cfg.AckDeadline {
		return nil, fmt.Errorf("relay: ExtendEvery %v must be below the ack deadline %v", cfg.ExtendEvery, cfg.AckDeadline)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	// A negative MaxInFlight would be a window no push ever enters: every key blocked for good.
	if cfg.MaxInFlight < 0 || cfg.RTT < 0 || cfg.InstanceConcurrency < 0 || cfg.MaxInstances < 0 || cfg.QueueTimeout < 0 {
		return nil, errors.New("relay: MaxInFlight, RTT, InstanceConcurrency, MaxInstances and QueueTimeout must not be negative")
	}
	if cfg.QueueTimeout == 0 {
		cfg.QueueTimeout = 10 * time.Second
	}
	var places chan struct{}
	if cfg.InstanceConcurrency > 0 && cfg.MaxInstances > 0 {
		places = make(chan struct{}, cfg.InstanceConcurrency*cfg.MaxInstances)
	}
	return &Relay{
		cfg:    cfg,
		http:   &http.Client{Timeout: cfg.Timeout, Transport: &http.Transport{MaxIdleConnsPerHost: 64}},
		log:    cfg.Logger,
		rnd:    rand.New(rand.NewPCG(cfg.Seed, 0x5eed)),
		subs:   map[string]bool{},
		queues: map[string][]*pb.ReceivedMessage{},
		held:   map[string]*pb.ReceivedMessage{},
		window: newPushWindow(cfg.MaxInFlight, cfg.SlowStart),
		places: places,
		stats:  counters{outcomes: map[string]int64{}},
	}, nil
}

// SetDuplicateRate changes Config.DuplicateRate from now on.
func (r *Relay) SetDuplicateRate(rate float64) {
	r.mu.Lock()
	r.cfg.DuplicateRate = rate
	r.mu.Unlock()
}

// SetEndpoint sets the function's URL (before Run).
func (r *Relay) SetEndpoint(url string) {
	r.mu.Lock()
	r.cfg.Endpoint = url
	r.mu.Unlock()
}

// Run delivers until ctx ends, then waits for deliveries in flight.
func (r *Relay) Run(ctx context.Context) {
	r.mu.Lock()
	r.ctx = ctx
	subs := make([]string, 0, len(r.subs))
	for s := range r.subs {
		subs = append(subs, s)
	}
	r.mu.Unlock()
	for _, s := range subs {
		r.startPuller(s)
	}
	<-ctx.Done()
	r.wg.Wait()
}

// AddSubscription starts delivering a subscription (safe to call before or during Run).
func (r *Relay) AddSubscription(name string) {
	r.mu.Lock()
	if r.subs[name] {
		r.mu.Unlock()
		return
	}
	r.subs[name] = true
	running := r.ctx != nil
	r.mu.Unlock()
	if running {
		r.startPuller(name)
	}
}

func (r *Relay) startPuller(sub string) {
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		r.pull(r.ctx, sub)
	}()
}

// pull moves a subscription's messages into per-key queues, in publish order.
func (r *Relay) pull(ctx context.Context, sub string) {
	idle := time.Millisecond
	lastExtend := time.Now()
	for ctx.Err() == nil {
		if time.Since(lastExtend) >= r.cfg.ExtendEvery {
			r.extend(ctx, sub)
			lastExtend = time.Now()
		}
		msgs, err := r.pullAll(ctx, sub)
		if err != nil {
			continue // stopping
		}
		if len(msgs) == 0 {
			sleep(ctx, idle)
			idle = min(idle*2, 5*time.Millisecond)
			continue
		}
		idle = time.Millisecond
		// pstest numbers messages m0, m1, … in publish order.
		sort.Slice(msgs, func(i, j int) bool { return msgID(msgs[i]) < msgID(msgs[j]) })
		r.mu.Lock()
		for _, m := range msgs {
			if h, ok := r.held[m.Message.MessageId]; ok {
				// Its ack deadline passed while it waited here: the emulator handed it out again. Keep
				// the one copy, acknowledged with the newest ack id.
				r.stats.redeliv++
				h.AckId = m.AckId
				continue
			}
			k := m.Message.OrderingKey
			if k == "" || r.cfg.Unordered {
				k = "\x01" + m.Message.MessageId // unordered: a queue of its own
			}
			q := sub + "\x00" + k
			r.queues[q] = append(r.queues[q], m)
			r.held[m.Message.MessageId] = m
			if len(r.queues[q]) == 1 {
				r.wg.Add(1)
				go r.work(ctx, sub, q)
			}
		}
		r.mu.Unlock()
	}
}

// pullBatch is the most messages one pull asks for.
const pullBatch = 1000

// pullAll pulls until the subscription has nothing more to give. One pull hands out an arbitrary
// subset of what is waiting (pstest walks a map), so a key's later message could come in this batch
// and its earlier one in the next; once a pull comes back short, everything published before it is in
// hand and sorting by message id restores the publish order.
func (r *Relay) pullAll(ctx context.Context, sub string) ([]*pb.ReceivedMessage, error) {
	var msgs []*pb.ReceivedMessage
	for {
		resp, err := r.cfg.Client.SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: sub, MaxMessages: pullBatch, ReturnImmediately: true})
		if err != nil {
			if ctx.Err() != nil {
				return nil, err // stopping: what was handed out comes back after its deadline
			}
			// Retry rather than deliver what is in hand: an older message of a key in hand may be
			// among those not pulled yet.
			r.log.Warn("pull", "subscription", sub, "error", err.Error())
			sleep(ctx, time.Second)
			continue
		}
		msgs = append(msgs, resp.ReceivedMessages...)
		if len(resp.ReceivedMessages) < pullBatch {
			return msgs, nil
		}
	}
}

// extend renews the ack deadline of every message of sub the relay holds, so that a long outage of the
// function does not make the emulator hand out the same messages again.
func (r *Relay) extend(ctx context.Context, sub string) {
	var ids []string
	r.mu.Lock()
	prefix := sub + "\x00"
	for q, msgs := range r.queues {
		if strings.HasPrefix(q, prefix) {
			for _, m := range msgs {
				ids = append(ids, m.AckId)
			}
		}
	}
	r.stats.extends++
	r.mu.Unlock()
	for len(ids) > 0 {
		n := min(len(ids), 1000)
		if err := r.cfg.Client.SubscriptionAdminClient.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{Subscription: sub, AckIds: ids[:n],
			AckDeadlineSeconds: int32(r.cfg.AckDeadline / time.Second)}); err != nil && ctx.Err() == nil {
			r.log.Warn("extend ack deadlines", "subscription", sub, "error", err.Error())
		}
		ids = ids[n:]
	}
}

func msgID(m *pb.ReceivedMessage) int64 {
	n, err := strconv.ParseInt(strings.TrimPrefix(m.Message.MessageId, "m"), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// work delivers one key's queue, one message at a time, until it is empty.
func (r *Relay) work(ctx context.Context, sub, q string) {
	defer r.wg.Done()
	for {
		r.mu.Lock()
		m := r.queues[q][0]
		r.mu.Unlock()
		if !r.deliver(ctx, sub, m) {
			return // stopping: the emulator hands it out again after the ack deadline
		}
		r.mu.Lock()
		ackID := m.AckId // the newest, if the emulator handed it out again meanwhile
		r.mu.Unlock()
		if err := r.cfg.Client.SubscriptionAdminClient.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: sub, AckIds: []string{ackID}}); err != nil && ctx.Err() == nil {
			r.log.Warn("acknowledge", "error", err.Error())
		}
		// Counted before OnAck, so that whoever waits for the acknowledgement finds it in Stats.
		r.mu.Lock()
		r.stats.acked++
		delete(r.held, m.Message.MessageId)
		r.mu.Unlock()
		if r.cfg.OnAck != nil {
			r.cfg.OnAck(m.Message.MessageId)
		}
		r.mu.Lock()
		r.queues[q] = r.queues[q][1:]
		if len(r.queues[q]) == 0 {
			delete(r.queues, q)
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
}

// deliver posts m until it is acknowledged or dead-lettered (true), or ctx ends (false).
func (r *Relay) deliver(ctx context.Context, sub string, rm *pb.ReceivedMessage) bool {
	m := rm.Message
	for attempt := 1; ; attempt++ {
		pm := &push.Message{ID: m.MessageId, Data: m.Data, Attributes: m.Attributes, OrderingKey: m.OrderingKey, Subscription: sub}
		if m.PublishTime != nil {
			pm.PublishTime = m.PublishTime.AsTime()
		}
		if r.cfg.MaxDeliveryAttempts > 0 {
			pm.DeliveryAttempt = attempt // Pub/Sub sends it only with a dead-letter policy
		}
		body, err := push.Encode(pm)
		if err != nil {
			r.log.Error("encode push", "error", err.Error())
			return false
		}
		ok, outcome := r.post(ctx, body)
		if ctx.Err() != nil {
			return false
		}
		r.record(Delivery{Message: m, Subscription: sub, Attempt: attempt, Outcome: outcome, Acked: ok})
		if ok {
			if r.duplicate() {
				r.wg.Add(1)
				go func() {
					defer r.wg.Done()
					sleep(ctx, time.Duration(r.intn(50))*time.Millisecond)
					if ctx.Err() == nil {
						ok, outcome := r.post(ctx, body)
						if ok {
							r.record(Delivery{Message: m, Subscription: sub, Attempt: attempt, Outcome: outcome, Acked: ok, Repeat: true})
						}
					}
				}()
			}
			return true
		}
		if r.cfg.MaxDeliveryAttempts > 0 && attempt >= r.cfg.MaxDeliveryAttempts {
			attrs := map[string]string{}
			for k, v := range m.Attributes {
				attrs[k] = v
			}
			attrs["CloudPubSubDeadLetterSourceSubscription"] = sub
			attrs["CloudPubSubDeadLetterSourceDeliveryCount"] = strconv.Itoa(attempt)
			res := r.cfg.DeadLetter.Publish(ctx, &pubsub.Message{Data: m.Data, Attributes: attrs})
			if _, err := res.Get(ctx); err != nil {
				if ctx.Err() != nil {
					return false
				}
				r.log.Error("dead-letter publish failed; retrying the message", "error", err.Error())
			} else {
				r.mu.Lock()
				r.stats.relayDLQ++
				r.mu.Unlock()
				r.log.Warn("message dead-lettered after max delivery attempts", "message_id", m.MessageId, "attempts", attempt, "last", outcome)
				return true
			}
		}
		backoff := r.cfg.MinBackoff << min(attempt-1, 20)
		if backoff > r.cfg.MaxBackoff || backoff <= 0 {
			backoff = r.cfg.MaxBackoff
		}
		sleep(ctx, backoff)
	}
}

// post sends one push request; ok means Pub/Sub would acknowledge it. outcome is the function's answer
// ("applied", "stale", …) or "retry"/"error". It holds a place in the push window for the whole round
// trip, and one under the instance cap while the function has the request.
func (r *Relay) post(ctx context.Context, body []byte) (ok bool, outcome string) {
	if !r.window.acquire(ctx) {
		return false, "stopping"
	}
	defer func() { r.window.release(ok) }()
	// The whole round trip in one wait (two would add the timer's overshoot twice on a loaded machine);
	// it is outside the instance cap, as network time is not an instance's.
	sleep(ctx, r.cfg.RTT)
	return r.send(ctx, body)
}

// send is the request at the function, under the instance cap.
func (r *Relay) send(ctx context.Context, body []byte) (ok bool, outcome string) {
	if r.places != nil {
		t := time.NewTimer(r.cfg.QueueTimeout)
		defer t.Stop()
		select {
		case r.places <- struct{}{}:
		case <-t.C:
			r.mu.Lock()
			r.stats.deliveries++
			r.stats.refused++
			r.mu.Unlock()
			return false, "429" // Cloud Run: no instance could take it
		case <-ctx.Done():
			return false, "stopping"
		}
		defer func() { <-r.places }()
	}
	r.mu.Lock()
	endpoint := r.cfg.Endpoint
	r.mu.Unlock()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return false, "error"
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.http.Do(req)
	r.mu.Lock()
	r.stats.deliveries++
	r.mu.Unlock()
	if err != nil {
		return false, "unreachable"
	}
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	outcome = strings.TrimSpace(string(text))
	if i := strings.IndexAny(outcome, ":\n"); i >= 0 {
		outcome = outcome[:i]
	}
	switch resp.StatusCode {
	case 102, 200, 201, 202, 204:
		return true, outcome
	}
	if outcome == "" {
		outcome = strconv.Itoa(resp.StatusCode)
	}
	return false, outcome
}

// record counts an answered push and reports it to the observer.
func (r *Relay) record(d Delivery) {
	d.At = time.Now()
	r.mu.Lock()
	if d.Repeat {
		// A deliberate second delivery: counted apart so the status line shows it.
		r.stats.extra++
	}
	r.stats.outcomes[d.Outcome]++
	r.mu.Unlock()
	if r.cfg.OnDelivery != nil {
		r.cfg.OnDelivery(d)
	}
}

func (r *Relay) duplicate() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cfg.DuplicateRate > 0 && r.rnd.Float64() < r.cfg.DuplicateRate
}

func (r *Relay) intn(n int) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.rnd.IntN(n)
}

// Stats is a snapshot of the relay's counters.
type Stats struct {
	Outcomes   map[string]int64 // by the function's answer: applied, duplicate, stale, ignored, dead_lettered, retry, unreachable, …
	Acked      int64            // messages acknowledged
	Deliveries int64            // POSTs sent, including retries and deliberate duplicates
	Duplicates int64            // deliberate second deliveries answered
	RelayDLQ   int64            // messages forwarded to the dead-letter topic after max attempts
	Backlog    int              // messages pulled and not yet acknowledged
	// Redelivered counts messages the emulator handed out again while the relay still held them (their
	// ack deadline passed: the renewals did not keep up); Extends counts the renewal rounds.
	Redelivered, Extends int64
	// Refused counts pushes the instance cap answered 429 (no place within QueueTimeout).
	Refused int64
	// PushWindow is the most POSTs the relay has in flight now (MaxInFlight without SlowStart).
	PushWindow int
}

// Stats returns the current counters.
func (r *Relay) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := Stats{Outcomes: map[string]int64{}, Acked: r.stats.acked, Deliveries: r.stats.deliveries, Duplicates: r.stats.extra, RelayDLQ: r.stats.relayDLQ,
		Backlog: len(r.held), Redelivered: r.stats.redeliv, Extends: r.stats.extends, Refused: r.stats.refused, PushWindow: r.window.size()}
	for k, v := range r.stats.outcomes {
		s.Outcomes[k] = v
	}
	return s
}

// String formats the counters for a status line.
func (s Stats) String() string {
	return fmt.Sprintf("applied %d  duplicate %d  stale %d  dead-lettered %d  backlog %d",
		s.Outcomes["applied"], s.Outcomes["duplicate"], s.Outcomes["stale"], s.Outcomes["dead_lettered"]+s.RelayDLQ, s.Backlog)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
