package function

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The repair's seeks run side by side, not one after another: the repair has one deadline for them
// all, which seeks of many subscriptions in a row would miss at every check. Each seek reaches the real
// Pub/Sub fake (pstest) only once another is outstanding; one at a time, the first waits in vain and
// the test fails.
func TestRepairSeeksTheSubscriptionsConcurrently(t *testing.T) {
	ctx := context.Background()
	srv := pstest.NewServer()
	t.Cleanup(func() { _ = srv.Close() })
	var mu sync.Mutex
	outstanding, peak := 0, 0
	both := make(chan struct{})
	barrier := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		if strings.HasSuffix(method, "/Seek") {
			mu.Lock()
			outstanding++
			if peak = max(peak, outstanding); peak == 2 {
				close(both)
			}
			mu.Unlock()
			defer func() { mu.Lock(); outstanding--; mu.Unlock() }()
			select {
			case <-both:
			case <-time.After(30 * time.Second):
				return fmt.Errorf("no other seek outstanding in 30 s: the seeks ran one at a time")
			}
		}
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	const project = "local"
	c, err := pubsub.NewClient(ctx, project, option.WithEndpoint(srv.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials())), option.WithGRPCDialOption(grpc.WithUnaryInterceptor(barrier)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	var subs []string
	for i := range 3 {
		topic := fmt.Sprintf("projects/%s/topics/t%d", project, i)
		if _, err := c.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: topic}); err != nil {
			t.Fatal(err)
		}
		sub := fmt.Sprintf("projects/%s/subscriptions/t%d-push", project, i)
		if _, err := c.SubscriptionAdminClient.CreateSubscription(ctx, &pb.Subscription{Name: sub, Topic: topic}); err != nil {
			t.Fatal(err)
		}
		subs = append(subs, sub)
	}
	s := &subscriptionSeeker{subs: subs, clients: map[string]*pubsub.Client{project: c}}
	if err := s.Seek(ctx, time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if peak < 2 {
		t.Fatalf("at most %d seeks at once", peak)
	}
}
