package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/redis/go-redis/v9"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cloudsql-cache/cloudsql-cache/function/apply"
	"github.com/cloudsql-cache/cloudsql-cache/function/push"
	"github.com/cloudsql-cache/cloudsql-cache/internal/deadletter"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

const (
	project    = "p"
	tableTopic = "projects/p/topics/cloudsql-cache.inventory.customers"
	tableSub   = "projects/p/subscriptions/cloudsql-cache.inventory.customers.apply"
	dlqTopic   = "projects/p/topics/cloudsql-cache-dead-letter"
	dlqSub     = "projects/p/subscriptions/cloudsql-cache-dead-letter"
)

// pubsubEnv is a pstest server with the deployment's topics and subscriptions, a Redis, and the apply
// handler.
type pubsubEnv struct {
	t      *testing.T
	srv    *pstest.Server
	client *pubsub.Client
	rdb    *redis.Client
	env    map[string]string
}

func newPubsubEnv(t *testing.T) *pubsubEnv {
	t.Helper()
	e := &pubsubEnv{t: t, srv: pstest.NewServer()}
	t.Cleanup(func() { _ = e.srv.Close() })
	conn, err := grpc.NewClient(e.srv.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if e.client, err = pubsub.NewClient(ctx, project, option.WithGRPCConn(conn)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.client.Close() })
	for _, topic := range []string{tableTopic, dlqTopic} {
		if _, err := e.client.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topic}); err != nil {
			t.Fatal(err)
		}
	}
	// The table's subscription, ordered as Terraform makes it. (Without pstest's dead-letter policy:
	// pstest forwards a message, then fails to acknowledge it on the source subscription, since it
	// acknowledges by message id where it expects an ack id, and so forwards it again and again.)
	if _, err := e.client.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{Name: tableSub, Topic: tableTopic,
		EnableMessageOrdering: true, AckDeadlineSeconds: 10}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{Name: dlqSub, Topic: dlqTopic, AckDeadlineSeconds: 60}); err != nil {
		t.Fatal(err)
	}
	e.rdb = redisserver.StartForTest(t, redisserver.Options{}).Client()
	e.env = map[string]string{"PUBSUB_EMULATOR_HOST": e.srv.Addr, "DEAD_LETTER_SUBSCRIPTION": dlqSub, "TOPIC_PREFIX": "cloudsql-cache"}
	return e
}

// handler is the apply handler with the table policy cfg, dead-lettering to the dead-letter topic.
func (e *pubsubEnv) handler(cfg tablepolicy.Config) *apply.Handler {
	e.t.Helper()
	p, err := tablepolicy.New(cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	pub := e.client.Publisher(dlqTopic)
	pub.PublishSettings.DelayThreshold = time.Millisecond
	e.t.Cleanup(pub.Stop)
	h, err := apply.New(apply.Options{Store: rowcache.NewStore(e.rdb, time.Hour), Policy: p, DeadLetter: apply.NewPubSubDeadLetter(pub)})
	if err != nil {
		e.t.Fatal(err)
	}
	return h
}

// push delivers m to h as a push subscription would, and returns the answer.
func (e *pubsubEnv) push(h *apply.Handler, m *push.Message) string {
	e.t.Helper()
	body, err := push.Encode(m)
	if err != nil {
		e.t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
	return strings.TrimSpace(rec.Body.String())
}

func (e *pubsubEnv) cachectl(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(context.Background(), args, func(k string) string { return e.env[k] }, &out, &errb)
	return code, out.String(), errb.String()
}

func fixture(t *testing.T, name string) []byte {
	b, err := os.ReadFile("../../testdata/debezium/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Both kinds of dead letter, listed with their origin, reason, table and key; a dry run changes
// nothing; a replay filtered by table republishes each to the table's topic with its original ordering
// key and data and acknowledges it, and the function, its configuration fixed, applies them. What the
// filter leaves out stays on the subscription.
func TestDeadLetterListAndReplay(t *testing.T) {
	e := newPubsubEnv(t)
	ctx := context.Background()
	const key = `{"id":1004}`
	create := fixture(t, "mysql-create-noschema-serde-testfixture.json")
	update := fixture(t, "mysql-update-noschema-docs.json")
	other := bytes.ReplaceAll(create, []byte("1004"), []byte("1005"))

	// 1. The function, misconfigured (a key template naming a column the key lacks), dead-letters the
	// insert with reason "key", and an undecodable message with reason "decode".
	broken := e.handler(tablepolicy.Config{KeyTemplates: map[string]string{"inventory.customers": "customer:{email}"}})
	if got := e.push(broken, &push.Message{ID: "m1", Data: create, OrderingKey: key, Subscription: tableSub, PublishTime: time.Now(), DeliveryAttempt: 1}); got != "dead_lettered: key" {
		t.Fatalf("the insert: %q, want dead_lettered: key", got)
	}
	if got := e.push(broken, &push.Message{ID: "m2", Data: []byte("not a change"), OrderingKey: key, Subscription: tableSub}); got != "dead_lettered: decode" {
		t.Fatalf("junk: %q", got)
	}
	// 2. The update, forwarded by the subscription's dead-letter policy after its attempts, with the
	// attributes Pub/Sub adds.
	dl := e.client.Publisher(dlqTopic)
	dl.EnableMessageOrdering = true
	defer dl.Stop()
	if _, err := dl.Publish(ctx, &pubsub.Message{Data: update, OrderingKey: key, Attributes: map[string]string{
		deadletter.AttrSourceSubscription:        "cloudsql-cache.inventory.customers.apply",
		deadletter.AttrSourceSubscriptionProject: project,
		deadletter.AttrSourceDeliveryCount:       "50",
		deadletter.AttrSourceTopicPublishTime:    "2026-11-01T10:00:00.123+00:00",
		deadletter.AttrSourceDeliveryError:       "HTTP 503",
	}}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	// 3. Another row, with neither set of attributes (published there by hand, say), but its ordering key.
	if _, err := dl.Publish(ctx, &pubsub.Message{Data: other, OrderingKey: `{"id":1005}`}).Get(ctx); err != nil {
		t.Fatal(err)
	}

	code, out, errs := e.cachectl("dlq", "list", "-wait", "600ms")
	if code != 0 {
		t.Fatalf("list: %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"function      key    inventory.customers  {\"id\":1004}", "function      decode  -", "subscription  delivery_attempts  inventory.customers  {\"id\":1004}  50", "unknown       unknown  inventory.customers  {\"id\":1005}"} {
		if !strings.Contains(squeeze(out), squeeze(want)) {
			t.Errorf("list does not show %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "4 dead letters match of 4") {
		t.Errorf("list summary: %s", errs)
	}
	if code, out, _ := e.cachectl("dlq", "list", "-reason", "key", "-wait", "600ms", "-json"); code != 0 || strings.Count(out, "\n") != 1 || !strings.Contains(out, `"data":{`) {
		t.Errorf("list -reason key -json: %d\n%s", code, out)
	}

	code, out, errs = e.cachectl("dlq", "replay", "-dry-run", "-table", "inventory.customers", "-wait", "600ms")
	if code != 0 || strings.Count(out, "would_replay") != 3 || !strings.Contains(out, "-> "+tableTopic) {
		t.Fatalf("dry run: %d\n%s%s", code, out, errs)
	}
	if n := pulled(t, e, tableSub); len(n) != 0 {
		t.Fatalf("a dry run published %d messages", len(n))
	}

	code, out, errs = e.cachectl("dlq", "replay", "-table", "inventory.customers", "-wait", "600ms")
	if code != 0 || strings.Count(out, "replayed") != 3 {
		t.Fatalf("replay: %d\n%s%s", code, out, errs)
	}
	// Deliver the table's subscription to the fixed function as push would: in order per key, each
	// acknowledged once answered.
	fixed := e.handler(tablepolicy.Config{})
	var delivered []*pb.ReceivedMessage
	for round := 0; round < 10; round++ {
		msgs := pulled(t, e, tableSub)
		if len(msgs) == 0 {
			break
		}
		for _, m := range msgs {
			delivered = append(delivered, m)
			got := e.push(fixed, &push.Message{ID: m.Message.MessageId, Data: m.Message.Data, Attributes: m.Message.Attributes, OrderingKey: m.Message.OrderingKey, Subscription: tableSub})
			if got != "applied" && !strings.HasPrefix(got, "stale") {
				t.Errorf("the function answered %q to a replay", got)
			}
			if err := e.client.SubscriptionAdminClient.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: tableSub, AckIds: []string{m.AckId}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if len(delivered) != 3 {
		t.Fatalf("%d messages on the table's subscription after the replay, want 3", len(delivered))
	}
	data := map[string]bool{string(create): true, string(update): true, string(other): true}
	for _, m := range delivered {
		if m.Message.Attributes[deadletter.AttrReplayOf] == "" {
			t.Errorf("replayed message %s has no %s", m.Message.MessageId, deadletter.AttrReplayOf)
		}
		if !data[string(m.Message.Data)] {
			t.Errorf("message with ordering key %q: its data changed in the replay", m.Message.OrderingKey)
		}
		if k := m.Message.OrderingKey; k != key && k != `{"id":1005}` {
			t.Errorf("replayed with ordering key %q", k)
		}
	}
	for id, want := range map[string]string{"inventory.customers:1004": `"first_name":"Anne Marie"`, "inventory.customers:1005": `"id":1005`} {
		v, err := e.rdb.Get(ctx, id).Result()
		if err != nil || !strings.Contains(v, want) {
			t.Errorf("%s after the replay: %q %v, want %s", id, v, err, want)
		}
	}
	// The decode dead letter is all that is left.
	code, out, errs = e.cachectl("dlq", "list", "-wait", "600ms")
	if code != 0 || !strings.Contains(errs, "1 dead letters match of 1") || !strings.Contains(out, "decode") {
		t.Errorf("after the replay: %d\n%s%s", code, out, errs)
	}
}

func squeeze(s string) string { return strings.Join(strings.Fields(s), " ") }

func pulled(t *testing.T, e *pubsubEnv, sub string) []*pb.ReceivedMessage {
	t.Helper()
	resp, err := e.client.SubscriptionAdminClient.Pull(context.Background(), &pb.PullRequest{Subscription: sub, MaxMessages: 100, ReturnImmediately: true})
	if err != nil {
		t.Fatal(err)
	}
	return resp.ReceivedMessages
}

// A letter without an ordering key cannot be replayed (the function reads the row's key from it): it is
// reported and stays. Configuration problems are all reported at once.
func TestDeadLetterProblems(t *testing.T) {
	e := newPubsubEnv(t)
	ctx := context.Background()
	dl := e.client.Publisher(dlqTopic)
	defer dl.Stop()
	if _, err := dl.Publish(ctx, &pubsub.Message{Data: fixture(t, "mysql-create-noschema-serde-testfixture.json"),
		Attributes: map[string]string{deadletter.AttrSourceSubscription: tableSub}}).Get(ctx); err != nil {
		t.Fatal(err)
	}
	code, out, _ := e.cachectl("dlq", "replay", "-wait", "600ms")
	if code != 0 || !strings.Contains(out, "unreplayable") || !strings.Contains(out, "no ordering key") {
		t.Errorf("replay of a letter without an ordering key: %d\n%s", code, out)
	}
	if code, _, errs := e.cachectl("dlq", "list", "-wait", "600ms"); code != 0 || !strings.Contains(errs, "1 dead letters match of 1") {
		t.Errorf("the unreplayable letter is not still there: %s", errs)
	}
	e.env = map[string]string{}
	code, _, errs := e.cachectl("dlq", "list", "-origin", "martian", "-table", "nodot", "-dry-run")
	for _, want := range []string{"-subscription", "-origin \"martian\"", "-table \"nodot\"", "-dry-run is for replay"} {
		if code != 2 || !strings.Contains(errs, want) {
			t.Errorf("exit %d, does not say %q:\n%s", code, want, errs)
		}
	}
}
