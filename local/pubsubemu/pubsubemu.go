// Package pubsubemu is the local Pub/Sub: an in-process pstest server, served over gRPC on a loopback
// TCP port (Addr) for other processes too (Debezium Server publishes there, the function dead-letters
// there), with a topic and a push subscription per topic id created up front by EnsureTopic (Debezium
// Server publishes only to existing topics, as Terraform creates them) and a dead-letter topic.
//
// pstest keeps everything in memory: unlike Pub/Sub it loses undelivered messages when the process
// stops (the local pipeline drains before it stops), and it keeps a copy of every message ever
// published for its test API, which Forget drops, but only at a moment when every message published
// to a push subscription has been acknowledged: pstest's ClearMessages also empties the
// subscriptions, so clearing at any other moment would lose the messages waiting in them.
package pubsubemu

import (
	"context"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"
)

// Options configure the emulator.
type Options struct {
	// Project is the Google Cloud project id of every name; "local" if empty.
	Project string
	// DeadLetterTopic is the topic id of dead letters; "cloudsql-cache-dead-letter" if empty.
	DeadLetterTopic string
	// MaxDeliveryAttempts is each subscription's dead-letter policy (5 to 100 on Pub/Sub); 0 means 5.
	MaxDeliveryAttempts int
	// AckDeadline of the push subscriptions (10 s to 600 s, as on Pub/Sub); 0 means 600 s. A message
	// pulled and neither acknowledged nor extended within it is handed out again.
	AckDeadline time.Duration
	// OnSubscription is called with the full name of each new push subscription (the relay's cue).
	OnSubscription func(name string)
	// Retention is how long the subscriptions keep acknowledged messages for a seek (their
	// retain_acked_messages and message_retention_duration); 0 means 10 minutes.
	Retention time.Duration
	// NoAckedRetention: the subscriptions do not retain acknowledged messages (retain_acked_messages
	// false, as the Terraform module creates them); a seek then replays only what TopicRetention keeps.
	NoAckedRetention bool
	// TopicRetention is how long the topics keep every published message (their
	// message_retention_duration); 0: none. Pub/Sub's minimum is 10 minutes; any positive value here.
	TopicRetention time.Duration
}

// Emulator is a running pstest server with a client connected to it.
type Emulator struct {
	opts   Options
	srv    *pstest.Server
	gsrv   *grpc.Server
	addr   string
	conn   *grpc.ClientConn
	client *pubsub.Client

	// gate is held shared by every Publish and exclusively by Forget while it waits for the
	// subscriptions to drain, so that nothing is published between its check and pstest's clear.
	gate sync.RWMutex

	mu          sync.Mutex
	topics      map[string]bool     // full names of the topics with a push subscription
	outstanding map[string]struct{} // ids published to those topics and not acknowledged yet
	deadLetters []*pstest.Message   // everything published to the dead-letter topic, kept across Forget
	forgets     int

	// retained is every message published within the retention (keep), oldest first, for Seek.
	retainMu sync.Mutex
	keep     time.Duration
	now      func() time.Time // the clock of the retention (tests move it)
	retained []retainedMessage
	seeks    sync.WaitGroup
	// replaying counts the messages a seek is still to publish again (Outstanding includes them);
	// closing refuses seeks once Close has begun.
	replaying atomic.Int64
	closing   atomic.Bool
}

// Start starts the server and creates the dead-letter topic (with a subscription that keeps its
// messages).
func Start(ctx context.Context, opts Options) (*Emulator, error) {
	if opts.Project == "" {
		opts.Project = "local"
	}
	if opts.DeadLetterTopic == "" {
		opts.DeadLetterTopic = "cloudsql-cache-dead-letter"
	}
	if opts.MaxDeliveryAttempts == 0 {
		opts.MaxDeliveryAttempts = 5
	}
	if opts.AckDeadline == 0 {
		opts.AckDeadline = 600 * time.Second
	}
	if opts.MaxDeliveryAttempts < 5 || opts.MaxDeliveryAttempts > 100 {
		return nil, fmt.Errorf("pubsubemu: max delivery attempts %d is outside Pub/Sub's 5..100", opts.MaxDeliveryAttempts)
	}
	if opts.AckDeadline < 10*time.Second || opts.AckDeadline > 600*time.Second || opts.AckDeadline%time.Second != 0 {
		return nil, fmt.Errorf("pubsubemu: ack deadline %v is not whole seconds within Pub/Sub's 10s..600s", opts.AckDeadline)
	}
	if opts.Retention == 0 {
		opts.Retention = 10 * time.Minute
	}
	if opts.TopicRetention < 0 {
		return nil, fmt.Errorf("pubsubemu: topic retention %v is negative", opts.TopicRetention)
	}
	e := &Emulator{opts: opts, topics: map[string]bool{}, outstanding: map[string]struct{}{}, now: time.Now}
	// A message can be replayed while either retention holds it: the subscription's (acknowledged
	// messages retained) or the topic's.
	if !opts.NoAckedRetention {
		e.keep = opts.Retention
	}
	e.keep = max(e.keep, opts.TopicRetention)
	// pstest runs its reactors inside its own handlers, so they also see the requests of our server.
	e.srv = pstest.NewServer(
		pstest.ServerReactorOption{FuncName: "Publish", Reactor: retainReactor{e}},
		pstest.ServerReactorOption{FuncName: "Seek", Reactor: seekReactor{e}})
	if err := e.serve(); err != nil {
		_ = e.srv.Close()
		return nil, err
	}
	var err error
	// A pull answers up to its MaxMessages whatever their size (pstest has no byte limit, unlike Pub/Sub),
	// so the client takes large responses: gRPC's default 4 MiB would fail a pull of a few big rows.
	e.conn, err = grpc.NewClient(e.Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(maxResponseBytes)))
	if err != nil {
		e.srv.Close()
		return nil, fmt.Errorf("pubsubemu: %w", err)
	}
	e.client, err = pubsub.NewClient(ctx, opts.Project, option.WithGRPCConn(e.conn))
	if err != nil {
		e.Close()
		return nil, fmt.Errorf("pubsubemu: %w", err)
	}
	if _, err := e.client.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: e.DeadLetterTopic()}); err != nil {
		e.Close()
		return nil, fmt.Errorf("pubsubemu: dead-letter topic: %w", err)
	}
	if _, err := e.client.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{
		Name: e.DeadLetterTopic() + "-keep", Topic: e.DeadLetterTopic(),
	}); err != nil {
		e.Close()
		return nil, fmt.Errorf("pubsubemu: dead-letter subscription: %w", err)
	}
	return e, nil
}

// MaxRequestBytes is the largest gRPC request the emulator accepts. pstest's own server keeps gRPC's
// 4 MiB default, below the Publish requests Debezium Server's Pub/Sub sink sends (a batch is up to
// batch.request.byte.threshold, 9,500,000 bytes, of messages); Pub/Sub itself takes up to 10 MB.
const MaxRequestBytes = 16 << 20

// maxResponseBytes bounds what the emulator's own client (the relay's pulls) accepts in one response.
const maxResponseBytes = 256 << 20

// serve serves pstest's fake on a gRPC server of our own, which accepts requests up to
// MaxRequestBytes (pstest offers no way to set its server's options) and sees every publish (to track
// what is outstanding). pstest's listener stays open unused.
func (e *Emulator) serve() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("pubsubemu: %w", err)
	}
	e.gsrv = grpc.NewServer(grpc.MaxRecvMsgSize(MaxRequestBytes))
	pb.RegisterPublisherServer(e.gsrv, trackingPublisher{GServer: &e.srv.GServer, e: e})
	pb.RegisterSubscriberServer(e.gsrv, &e.srv.GServer)
	pb.RegisterSchemaServiceServer(e.gsrv, &e.srv.GServer)
	e.addr = l.Addr().String()
	go func() { _ = e.gsrv.Serve(l) }()
	return nil
}

// trackingPublisher is pstest's publisher service, recording each published message id as outstanding
// until the relay acknowledges it (Acked) and keeping a copy of every dead letter.
type trackingPublisher struct {
	*pstest.GServer
	e *Emulator
}

func (p trackingPublisher) Publish(ctx context.Context, req *pb.PublishRequest) (*pb.PublishResponse, error) {
	p.e.gate.RLock()
	defer p.e.gate.RUnlock()
	// Held across pstest's publish: the relay can pull and acknowledge a message as soon as pstest has
	// it, and Acked must find it recorded.
	p.e.mu.Lock()
	defer p.e.mu.Unlock()
	resp, err := p.GServer.Publish(ctx, req)
	if err != nil {
		return resp, err
	}
	switch {
	case req.Topic == p.e.DeadLetterTopic():
		for i, m := range req.Messages {
			p.e.deadLetters = append(p.e.deadLetters, &pstest.Message{ID: resp.MessageIds[i], Data: m.Data, Attributes: m.Attributes,
				PublishTime: m.PublishTime.AsTime(), OrderingKey: m.OrderingKey, Topic: req.Topic})
		}
	case p.e.topics[req.Topic]:
		for _, id := range resp.MessageIds {
			p.e.outstanding[id] = struct{}{}
		}
	}
	return resp, nil
}

// Addr is host:port of the server (gRPC, plaintext): PUBSUB_EMULATOR_HOST for other processes (the
// function), debezium.sink.pubsub.address for Debezium Server.
func (e *Emulator) Addr() string { return e.addr }

// Client is a client of the emulator.
func (e *Emulator) Client() *pubsub.Client { return e.client }

// Project is the project id.
func (e *Emulator) Project() string { return e.opts.Project }

// DeadLetterTopic is the full name of the dead-letter topic.
func (e *Emulator) DeadLetterTopic() string {
	return "projects/" + e.opts.Project + "/topics/" + e.opts.DeadLetterTopic
}

// DeadLetters returns the messages published to the dead-letter topic so far (Forget keeps them).
func (e *Emulator) DeadLetters() []*pstest.Message {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*pstest.Message(nil), e.deadLetters...)
}

// Acked tells the emulator that the relay acknowledged message id (call it after the Acknowledge
// RPC). A message can be acknowledged twice (redelivered after a lost acknowledgement); that is fine.
func (e *Emulator) Acked(id string) {
	e.mu.Lock()
	delete(e.outstanding, id)
	e.mu.Unlock()
}

// Outstanding is the number of messages published to push subscriptions and not acknowledged yet.
func (e *Emulator) Outstanding() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.outstanding) + int(e.replaying.Load())
}

// Forget drops pstest's record of published messages (it keeps every message ever published for its
// test API, so a long run would grow without bound), but only when no message is waiting in a push
// subscription: pstest's ClearMessages empties the subscriptions too. It holds new publishes back
// (they wait; none fails) for up to maxPause while the outstanding messages are acknowledged, and
// reports whether it cleared. The dead letters are kept (DeadLetters).
func (e *Emulator) Forget(maxPause time.Duration) bool {
	e.gate.Lock()
	defer e.gate.Unlock()
	deadline := time.Now().Add(maxPause)
	for {
		e.mu.Lock()
		if len(e.outstanding) == 0 {
			e.srv.ClearMessages()
			e.forgets++
			e.mu.Unlock()
			return true
		}
		e.mu.Unlock()
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond)
	}
}

// Forgets is how many times Forget cleared pstest's record.
func (e *Emulator) Forgets() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.forgets
}

// EnsureTopic creates the topic and its push subscription if they do not exist yet, as Terraform does
// before Debezium Server starts: its sink publishes only to existing topics.
func (e *Emulator) EnsureTopic(ctx context.Context, topicID string) error {
	name := "projects/" + e.opts.Project + "/topics/" + topicID
	e.mu.Lock()
	exists := e.topics[name]
	e.mu.Unlock()
	if exists {
		return nil
	}
	if _, err := e.client.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: name}); err != nil {
		return fmt.Errorf("pubsubemu: create topic %s: %w", name, err)
	}
	sub := e.SubscriptionName(topicID)
	if _, err := e.client.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{
		Name:               sub,
		Topic:              name,
		AckDeadlineSeconds: int32(e.opts.AckDeadline / time.Second),
		// Ordering is enforced by the relay, by message id (publish order), not by pstest: pstest
		// orders a key's messages by publish timestamp, and two messages can share one.
		EnableMessageOrdering: false,
		DeadLetterPolicy:      &pb.DeadLetterPolicy{DeadLetterTopic: e.DeadLetterTopic(), MaxDeliveryAttempts: int32(e.opts.MaxDeliveryAttempts)},
		RetryPolicy:           &pb.RetryPolicy{MinimumBackoff: durationpb.New(100 * time.Millisecond), MaximumBackoff: durationpb.New(10 * time.Second)},
	}); err != nil {
		return fmt.Errorf("pubsubemu: create subscription %s: %w", sub, err)
	}
	e.mu.Lock()
	e.topics[name] = true
	e.mu.Unlock()
	if e.opts.OnSubscription != nil {
		e.opts.OnSubscription(sub)
	}
	return nil
}

// Messages returns every message published since the start (or the last Forget), in publish order,
// on every topic: what tests read to see exactly what a publisher sent.
func (e *Emulator) Messages() []*pstest.Message { return e.srv.Messages() }

// SubscriptionName is the push subscription of a topic id.
func (e *Emulator) SubscriptionName(topicID string) string {
	return "projects/" + e.opts.Project + "/subscriptions/" + topicID + "-push"
}

// MaxDeliveryAttempts is the subscriptions' dead-letter policy.
func (e *Emulator) MaxDeliveryAttempts() int { return e.opts.MaxDeliveryAttempts }

// AckDeadline is the push subscriptions' ack deadline.
func (e *Emulator) AckDeadline() time.Duration { return e.opts.AckDeadline }

// Close stops the client and the server.
func (e *Emulator) Close() {
	e.closing.Store(true)
	e.seeks.Wait()
	if e.client != nil {
		_ = e.client.Close()
	}
	if e.conn != nil {
		_ = e.conn.Close()
	}
	if e.gsrv != nil {
		e.gsrv.Stop()
	}
	_ = e.srv.Close()
}
