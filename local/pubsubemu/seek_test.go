package pubsubemu

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// pullAll pulls and acknowledges what the subscription has now, in message id order.
func pullAll(t *testing.T, e *Emulator, sub string) []string {
	t.Helper()
	ctx := context.Background()
	var got []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := e.Client().SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: sub, MaxMessages: 100, ReturnImmediately: true})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.ReceivedMessages) == 0 && (len(got) > 0 || time.Now().After(deadline)) {
			return got
		}
		var ids []string
		for _, rm := range resp.ReceivedMessages {
			got = append(got, string(rm.Message.Data)+"@"+rm.Message.OrderingKey+"/"+rm.Message.Attributes["a"])
			ids = append(ids, rm.AckId)
		}
		if len(ids) > 0 {
			if err := e.Client().SubscriptionAdminClient.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: sub, AckIds: ids}); err != nil {
				t.Fatal(err)
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A seek delivers again, with their data, attributes and ordering keys, exactly the topic's messages
// published since the time, acknowledged or not; other topics' messages are not touched.
func TestSeekRedeliversWhatWasPublishedSince(t *testing.T) {
	ctx := context.Background()
	e, err := Start(ctx, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	for _, topic := range []string{"a", "b"} {
		if err := e.EnsureTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	publish := func(topic string, data ...string) {
		var msgs []*pb.PubsubMessage
		for _, d := range data {
			msgs = append(msgs, &pb.PubsubMessage{Data: []byte(d), OrderingKey: "k" + d, Attributes: map[string]string{"a": "x" + d}})
		}
		if _, err := e.Client().TopicAdminClient.Publish(ctx, &pb.PublishRequest{Topic: "projects/local/topics/" + topic, Messages: msgs}); err != nil {
			t.Fatal(err)
		}
	}
	publish("a", "1", "2")
	time.Sleep(20 * time.Millisecond)
	since := time.Now()
	time.Sleep(20 * time.Millisecond)
	publish("a", "3", "4")
	publish("b", "9")
	if got := pullAll(t, e, e.SubscriptionName("a")); len(got) != 4 {
		t.Fatalf("first delivery: %v", got)
	}
	pullAll(t, e, e.SubscriptionName("b"))
	if _, err := e.Client().SubscriptionAdminClient.Seek(ctx, &pb.SeekRequest{Subscription: e.SubscriptionName("a"), Target: &pb.SeekRequest_Time{Time: timestamppb.New(since)}}); err != nil {
		t.Fatal(err)
	}
	got := pullAll(t, e, e.SubscriptionName("a"))
	slices.Sort(got)
	if want := []string{"3@k3/x3", "4@k4/x4"}; !slices.Equal(got, want) {
		t.Fatalf("after the seek: %v, want %v", got, want)
	}
	resp, err := e.Client().SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: e.SubscriptionName("b"), MaxMessages: 10, ReturnImmediately: true})
	if err != nil || len(resp.ReceivedMessages) != 0 {
		t.Fatalf("topic b after a's seek: %d messages, %v", len(resp.GetReceivedMessages()), err)
	}
}

// The module's subscriptions keep no acknowledged message: a seek replays what the topics retain
// (topic message retention), and only that. Without it, a seek replays nothing acknowledged; a
// message older than the topic's retention is gone, and the seek succeeds all the same, as Pub/Sub's.
func TestSeekReplaysWhatTheTopicRetains(t *testing.T) {
	ctx := context.Background()
	seekAll := func(t *testing.T, e *Emulator, since time.Time) []string {
		t.Helper()
		if _, err := e.Client().SubscriptionAdminClient.Seek(ctx, &pb.SeekRequest{Subscription: e.SubscriptionName("a"), Target: &pb.SeekRequest_Time{Time: timestamppb.New(since)}}); err != nil {
			t.Fatal(err)
		}
		e.seeks.Wait()
		got := pullAll(t, e, e.SubscriptionName("a"))
		slices.Sort(got)
		return got
	}
	start := func(t *testing.T, o Options) (*Emulator, func(...string)) {
		t.Helper()
		e, err := Start(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { e.Close() })
		if err := e.EnsureTopic(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		return e, func(data ...string) {
			t.Helper()
			var msgs []*pb.PubsubMessage
			for _, d := range data {
				msgs = append(msgs, &pb.PubsubMessage{Data: []byte(d), OrderingKey: "k" + d, Attributes: map[string]string{"a": "x" + d}})
			}
			if _, err := e.Client().TopicAdminClient.Publish(ctx, &pb.PublishRequest{Topic: "projects/local/topics/a", Messages: msgs}); err != nil {
				t.Fatal(err)
			}
		}
	}

	t.Run("topic retention, acknowledged messages not retained", func(t *testing.T) {
		e, publish := start(t, Options{NoAckedRetention: true, TopicRetention: time.Hour})
		since := time.Now().Add(-time.Second)
		publish("1", "2")
		if got := pullAll(t, e, e.SubscriptionName("a")); len(got) != 2 {
			t.Fatalf("first delivery: %v", got)
		}
		if got, want := seekAll(t, e, since), []string{"1@k1/x1", "2@k2/x2"}; !slices.Equal(got, want) {
			t.Fatalf("after the seek: %v, want %v", got, want)
		}
	})
	t.Run("no retention at all", func(t *testing.T) {
		e, publish := start(t, Options{NoAckedRetention: true})
		since := time.Now().Add(-time.Second)
		publish("1")
		if got := pullAll(t, e, e.SubscriptionName("a")); len(got) != 1 {
			t.Fatalf("first delivery: %v", got)
		}
		if _, err := e.Client().SubscriptionAdminClient.Seek(ctx, &pb.SeekRequest{Subscription: e.SubscriptionName("a"), Target: &pb.SeekRequest_Time{Time: timestamppb.New(since)}}); err != nil {
			t.Fatal(err)
		}
		e.seeks.Wait()
		resp, err := e.Client().SubscriptionAdminClient.Pull(ctx, &pb.PullRequest{Subscription: e.SubscriptionName("a"), MaxMessages: 10, ReturnImmediately: true})
		if err != nil || len(resp.ReceivedMessages) != 0 {
			t.Fatalf("a seek without any retention replayed %d messages (%v)", len(resp.GetReceivedMessages()), err)
		}
	})
	t.Run("older than the topic's retention", func(t *testing.T) {
		e, publish := start(t, Options{NoAckedRetention: true, TopicRetention: time.Hour})
		var clock atomic.Int64
		clock.Store(time.Now().UnixNano())
		advance := func(d time.Duration) { clock.Add(int64(d)) }
		e.retainMu.Lock()
		e.now = func() time.Time { return time.Unix(0, clock.Load()) }
		e.retainMu.Unlock()
		publish("old")
		advance(50 * time.Minute)
		publish("new")
		pullAll(t, e, e.SubscriptionName("a"))
		advance(20 * time.Minute) // "old" is 70 minutes old, "new" 20
		if got, want := seekAll(t, e, time.Now().Add(-time.Hour)), []string{"new@knew/xnew"}; !slices.Equal(got, want) {
			t.Fatalf("after the seek: %v, want %v", got, want)
		}
	})
	t.Run("the subscription's retention of acknowledged messages, as before", func(t *testing.T) {
		e, publish := start(t, Options{TopicRetention: 0})
		since := time.Now().Add(-time.Second)
		publish("1")
		pullAll(t, e, e.SubscriptionName("a"))
		if got, want := seekAll(t, e, since), []string{"1@k1/x1"}; !slices.Equal(got, want) {
			t.Fatalf("after the seek: %v, want %v", got, want)
		}
	})
}
