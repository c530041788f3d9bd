// Package pubsubemu is the local Pub/Sub: an in-process pstest server, served over gRPC on a loopback
// TCP port (Addr) for other processes too, with a topic and a push subscription per table, created up
// front by EnsureTopic (Debezium Server publishes only to existing topics, as Terraform creates them) or
// when the CDC source first publishes to it, and a dead-letter topic. It is the cdc.Sink of the local
// pipeline.
//
// pstest keeps everything in memory, so unlike Pub/Sub it loses undelivered messages when the process
// stops. To keep the pipeline at-least-once across restarts anyway, a publish counts as done for the
// CDC source (which then advances its offset) only once the push relay has acknowledged the message:
// whatever was in flight at a stop is published again from the offset on the next start.
package pubsubemu

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/cloudsql-cache/cloudsql-cache/local/cdc"
)

// Options configure the emulator.
type Options struct {
	// Project is the Google Cloud project id of every name; "local" if empty.
	Project string
	// DeadLetterTopic is the topic id of dead letters; "cloudsql-cache-dead-letter" if empty.
	DeadLetterTopic string
	// MaxDeliveryAttempts is each subscription's dead-letter policy (5 to 100 on Pub/Sub); 0 means 5.
	MaxDeliveryAttempts int
	// OnSubscription is called with the full name of each new push subscription (the relay's cue).
	OnSubscription func(name string)
	// Retention is how long published messages are kept for a seek (the subscriptions'
	// retain_acked_messages and message_retention_duration); 0 means 10 minutes.
	Retention time.Duration
}

// Emulator is a running pstest server with a client connected to it.
type Emulator struct {
	opts   Options
	srv    *pstest.Server
	gsrv   *grpc.Server
	addr   string
	conn   *grpc.ClientConn
	client *pubsub.Client

	mu     sync.Mutex
	topics map[string]*pubsub.Publisher
	acked  map[string]chan struct{}

	// retained is every message published in the last Retention, oldest first, for Seek.
	retainMu sync.Mutex
	retained []retainedMessage
	seeks    sync.WaitGroup
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
	if opts.MaxDeliveryAttempts < 5 || opts.MaxDeliveryAttempts > 100 {
		return nil, fmt.Errorf("pubsubemu: max delivery attempts %d is outside Pub/Sub's 5..100", opts.MaxDeliveryAttempts)
	}
	if opts.Retention == 0 {
		opts.Retention = 10 * time.Minute
	}
	e := &Emulator{opts: opts, topics: map[string]*pubsub.Publisher{}, acked: map[string]chan struct{}{}}
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
// MaxRequestBytes: pstest offers no way to set its server's options. pstest's listener stays open
// unused.
func (e *Emulator) serve() error {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("pubsubemu: %w", err)
	}
	e.gsrv = grpc.NewServer(grpc.MaxRecvMsgSize(MaxRequestBytes))
	pb.RegisterPublisherServer(e.gsrv, &e.srv.GServer)
	pb.RegisterSubscriberServer(e.gsrv, &e.srv.GServer)
	pb.RegisterSchemaServiceServer(e.gsrv, &e.srv.GServer)
	e.addr = l.Addr().String()
	go func() { _ = e.gsrv.Serve(l) }()
	return nil
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

// DeadLetters returns the messages published to the dead-letter topic so far.
func (e *Emulator) DeadLetters() []*pstest.Message {
	var out []*pstest.Message
	for _, m := range e.srv.Messages() {
		if m.Topic == e.DeadLetterTopic() {
			out = append(out, m)
		}
	}
	return out
}

// Forget drops the server's record of published messages (pstest keeps every message ever published
// for its test API; subscriptions keep their own copies of what they have not acknowledged).
func (e *Emulator) Forget() {
	e.srv.ClearMessages()
}

// Publish implements cdc.Sink. The returned wait ends when the message has been published and
// acknowledged on its push subscription (see the package comment).
func (e *Emulator) Publish(ctx context.Context, m cdc.Message) func(context.Context) error {
	pub, err := e.publisher(ctx, m.Topic)
	if err != nil {
		return func(context.Context) error { return err }
	}
	res := pub.Publish(ctx, &pubsub.Message{Data: m.Data, OrderingKey: m.OrderingKey})
	return func(ctx context.Context) error {
		id, err := res.Get(ctx)
		if err != nil {
			// An ordered publisher pauses the key after a failure; resume it for the retry that
			// follows a restart of the source.
			pub.ResumePublish(m.OrderingKey)
			return fmt.Errorf("pubsubemu: publish to %s: %w", m.Topic, err)
		}
		select {
		case <-e.ackChan(id):
			e.mu.Lock()
			delete(e.acked, id)
			e.mu.Unlock()
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Acked tells the emulator that the relay acknowledged message id. A message can be acknowledged twice
// (redelivered after a lost acknowledgement); only the first one counts.
func (e *Emulator) Acked(id string) {
	c := e.ackChan(id)
	e.mu.Lock()
	defer e.mu.Unlock()
	select {
	case <-c:
	default:
		close(c)
	}
}

func (e *Emulator) ackChan(id string) chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	c, ok := e.acked[id]
	if !ok {
		c = make(chan struct{})
		e.acked[id] = c
	}
	return c
}

// EnsureTopic creates the topic and its push subscription if they do not exist yet, as Terraform does
// before Debezium Server starts: its sink publishes only to existing topics.
func (e *Emulator) EnsureTopic(ctx context.Context, topicID string) error {
	_, err := e.publisher(ctx, topicID)
	return err
}

// Messages returns every message published since the start (or the last Forget), in publish order,
// on every topic: what tests read to see exactly what a publisher sent.
func (e *Emulator) Messages() []*pstest.Message { return e.srv.Messages() }

// publisher returns the topic's ordered publisher, creating the topic and its push subscription first.
func (e *Emulator) publisher(ctx context.Context, topicID string) (*pubsub.Publisher, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, ok := e.topics[topicID]; ok {
		return p, nil
	}
	name := "projects/" + e.opts.Project + "/topics/" + topicID
	if _, err := e.client.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: name}); err != nil {
		return nil, fmt.Errorf("pubsubemu: create topic %s: %w", name, err)
	}
	sub := e.SubscriptionName(topicID)
	if _, err := e.client.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{
		Name:               sub,
		Topic:              name,
		AckDeadlineSeconds: 600,
		// Ordering is enforced by the relay, by message id (publish order), not by pstest: pstest
		// orders a key's messages by publish timestamp, and two messages can share one.
		EnableMessageOrdering: false,
		DeadLetterPolicy:      &pb.DeadLetterPolicy{DeadLetterTopic: e.DeadLetterTopic(), MaxDeliveryAttempts: int32(e.opts.MaxDeliveryAttempts)},
		RetryPolicy:           &pb.RetryPolicy{MinimumBackoff: durationpb.New(100 * time.Millisecond), MaximumBackoff: durationpb.New(10 * time.Second)},
	}); err != nil {
		return nil, fmt.Errorf("pubsubemu: create subscription %s: %w", sub, err)
	}
	p := e.client.Publisher(name)
	p.EnableMessageOrdering = true
	p.PublishSettings.DelayThreshold = time.Millisecond
	e.topics[topicID] = p
	if e.opts.OnSubscription != nil {
		e.opts.OnSubscription(sub)
	}
	return p, nil
}

// SubscriptionName is the push subscription of a topic id.
func (e *Emulator) SubscriptionName(topicID string) string {
	return "projects/" + e.opts.Project + "/subscriptions/" + topicID + "-push"
}

// MaxDeliveryAttempts is the subscriptions' dead-letter policy.
func (e *Emulator) MaxDeliveryAttempts() int { return e.opts.MaxDeliveryAttempts }

// Close stops the publishers, the client and the server.
func (e *Emulator) Close() {
	e.seeks.Wait()
	e.mu.Lock()
	for _, p := range e.topics {
		p.Stop()
	}
	e.topics = map[string]*pubsub.Publisher{}
	e.mu.Unlock()
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
