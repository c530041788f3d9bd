package pubsubemu

import (
	"bytes"
	"context"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// Debezium Server's sink batches up to 9.5 MB of messages into one Publish request, and the relay
// pulls many messages at once: both pass gRPC's 4 MiB default, which the emulator must raise.
func TestLargeRequests(t *testing.T) {
	// The client retries a refused request (RESOURCE_EXHAUSTED) for a minute: fail sooner.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	e, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if err := e.EnsureTopic(ctx, "big"); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("x"), 3<<20)
	var msgs []*pb.PubsubMessage
	for i := 0; i < 3; i++ { // 9 MiB in one request
		msgs = append(msgs, &pb.PubsubMessage{Data: big, OrderingKey: `{"id":1}`})
	}
	resp, err := e.Client().TopicAdminClient.Publish(ctx, &pb.PublishRequest{Topic: "projects/local/topics/big", Messages: msgs})
	if err != nil {
		t.Fatalf("a 9 MiB publish: %v", err)
	}
	if len(resp.MessageIds) != 3 {
		t.Fatalf("%d message ids", len(resp.MessageIds))
	}
	if got := len(e.Messages()); got != 3 {
		t.Fatalf("Messages: %d", got)
	}
	pulled, err := e.Client().SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: e.SubscriptionName("big"), MaxMessages: 10, ReturnImmediately: true})
	if err != nil {
		t.Fatalf("a 9 MiB pull: %v", err)
	}
	if len(pulled.ReceivedMessages) != 3 || !bytes.Equal(pulled.ReceivedMessages[0].Message.Data, big) {
		t.Fatalf("pulled %d messages", len(pulled.ReceivedMessages))
	}
}

func TestPublishToMissingTopicFails(t *testing.T) {
	ctx := context.Background()
	e, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, err = e.Client().TopicAdminClient.Publish(ctx, &pb.PublishRequest{Topic: "projects/local/topics/nope", Messages: []*pb.PubsubMessage{{Data: []byte("x")}}})
	if err == nil {
		t.Fatal("publish to a topic never created succeeded")
	}
}
