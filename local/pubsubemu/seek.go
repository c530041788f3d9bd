package pubsubemu

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// A seek to a time, as Pub/Sub does it for a subscription that retains acknowledged messages, or whose
// topic retains every message (topic message retention): every message published since then and still
// retained by either is delivered again; older ones are gone, and the seek succeeds all the same, as
// Pub/Sub's does. pstest's own Seek cannot be used: the messages it puts back
// have lost their data ("This was not preserved!" in its source) and come from every topic. So the
// emulator keeps what was published within the longer retention and answers a seek by publishing the
// subscription's topic's messages since the time again, in their order, with their data, attributes
// and ordering keys: they reach the subscription (the only one of a table's topic here) as new
// messages, after what it already has. Like a real seek's redeliveries, they may interleave with new
// messages of the same key; the version guard makes either order harmless.

type retainedMessage struct {
	topic       string
	at          time.Time
	data        []byte
	attributes  map[string]string
	orderingKey string
}

// retainReactor records every published message; pstest then publishes it as usual.
type retainReactor struct{ e *Emulator }

func (r retainReactor) React(req any) (bool, any, error) {
	pr, ok := req.(*pb.PublishRequest)
	if !ok || strings.HasPrefix(pr.Topic, r.e.DeadLetterTopic()) {
		return false, nil, nil
	}
	e := r.e
	e.retainMu.Lock()
	defer e.retainMu.Unlock()
	now := e.now()
	if e.keep > 0 {
		for _, m := range pr.Messages {
			e.retained = append(e.retained, retainedMessage{topic: pr.Topic, at: now, data: m.Data, attributes: maps.Clone(m.Attributes), orderingKey: m.OrderingKey})
		}
	}
	e.expire(now)
	return false, nil, nil
}

// expire drops what no retention holds any more (retainMu held).
func (e *Emulator) expire(now time.Time) {
	cut := 0
	for cut < len(e.retained) && now.Sub(e.retained[cut].at) > e.keep {
		cut++
	}
	e.retained = e.retained[cut:]
}

// seekReactor answers Seek (pstest holds its lock meanwhile, so the publishing happens after).
type seekReactor struct{ e *Emulator }

func (r seekReactor) React(req any) (bool, any, error) {
	sr, ok := req.(*pb.SeekRequest)
	if !ok {
		return false, nil, nil
	}
	t, ok := sr.Target.(*pb.SeekRequest_Time)
	if !ok {
		return true, (*pb.SeekResponse)(nil), fmt.Errorf("pubsubemu: only a seek to a time is emulated, not %T", sr.Target)
	}
	topicID, ok := strings.CutSuffix(strings.TrimPrefix(sr.Subscription, "projects/"+r.e.opts.Project+"/subscriptions/"), "-push")
	if !ok {
		return true, (*pb.SeekResponse)(nil), fmt.Errorf("pubsubemu: %s is not a table's push subscription", sr.Subscription)
	}
	topic := "projects/" + r.e.opts.Project + "/topics/" + topicID
	since := t.Time.AsTime()
	var replay []retainedMessage
	r.e.retainMu.Lock()
	r.e.expire(r.e.now())
	for _, m := range r.e.retained {
		if m.topic == topic && !m.at.Before(since) {
			replay = append(replay, m)
		}
	}
	r.e.retainMu.Unlock()
	if r.e.closing.Load() {
		return true, (*pb.SeekResponse)(nil), fmt.Errorf("pubsubemu: closing")
	}
	// Counted before the answer, so that a caller that waits for nothing outstanding after its seek
	// waits for the replay too.
	r.e.replaying.Add(int64(len(replay)))
	r.e.seeks.Add(1)
	go func() {
		defer r.e.seeks.Done()
		r.e.replay(topicID, replay)
	}()
	return true, &pb.SeekResponse{}, nil
}

func (e *Emulator) replay(topicID string, ms []retainedMessage) {
	ctx := context.Background()
	pub := e.client.Publisher(topicID)
	pub.EnableMessageOrdering = true
	defer pub.Stop()
	var results []*pubsub.PublishResult
	for _, m := range ms {
		results = append(results, pub.Publish(ctx, &pubsub.Message{Data: m.data, Attributes: m.attributes, OrderingKey: m.orderingKey}))
	}
	for i, r := range results {
		// A publish to the emulator fails only when it is closing; the message is then dropped with it.
		if _, err := r.Get(ctx); err != nil {
			pub.ResumePublish(ms[i].orderingKey)
		}
		e.replaying.Add(-1)
	}
}
