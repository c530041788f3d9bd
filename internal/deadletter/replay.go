package deadletter

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
)

// Queue is the dead-letter subscription and where replays go.
type Queue struct {
	// Client pulls and acknowledges on Subscription (and looks subscriptions up).
	Client *pubsub.Client
	// Publisher publishes replays; nil means Client. On Google Cloud, give it the regional endpoint
	// Debezium publishes through (<region>-pubsub.googleapis.com:443): ordering keys are ordered per
	// region.
	Publisher *pubsub.Client
	// Subscription is the dead-letter subscription, projects/<project>/subscriptions/<name>.
	Subscription string
	// TopicPrefix is Debezium's topic.prefix: the topic of table db.t is <TopicPrefix>.db.t in the
	// subscription's project. Empty: the topic of the subscription the letter came from.
	TopicPrefix string
	// Wait is how long a pull waits for messages before the subscription counts as drained; 0 means 5s.
	Wait time.Duration
	// Batch is the most messages one pull asks for; 0 means 100.
	Batch int

	topics map[string]string // subscription → its topic
}

// Outcome of one dead letter in a replay.
type Outcome string

const (
	Replayed     Outcome = "replayed"      // published to its topic, then acknowledged
	WouldReplay  Outcome = "would_replay"  // a dry run: left on the subscription
	Unreplayable Outcome = "unreplayable"  // no ordering key or no topic: left on the subscription
	Failed       Outcome = "publish_error" // the publish failed: left on the subscription
)

// Result is what happened to one dead letter that passed the filter.
type Result struct {
	Letter  Letter
	Outcome Outcome
	Topic   string
	Err     error // why it is unreplayable, or the publish error
}

// List calls each for every dead letter that passes f, up to limit (0: all), and leaves them all on the
// subscription. It returns how many messages it saw in all.
func (q *Queue) List(ctx context.Context, f Filter, limit int, each func(Letter)) (seen int, err error) {
	matched := 0
	return q.walk(ctx, func(l Letter) (ack, more bool, err error) {
		if f.Match(l) {
			each(l)
			matched++
		}
		return false, limit == 0 || matched < limit, nil
	})
}

// Replay publishes every dead letter that passes f, up to limit (0: all), to its table's topic with its
// original ordering key and data, and acknowledges it once Pub/Sub has stored the copy. With dryRun it
// publishes and acknowledges nothing. Letters that cannot be replayed, and those whose publish fails,
// stay on the subscription. each is called for every letter that passes f.
func (q *Queue) Replay(ctx context.Context, f Filter, limit int, dryRun bool, each func(Result)) (seen int, err error) {
	pubs := map[string]*pubsub.Publisher{}
	defer func() {
		for _, p := range pubs {
			p.Stop()
		}
	}()
	matched := 0
	return q.walk(ctx, func(l Letter) (ack, more bool, err error) {
		if !f.Match(l) {
			return false, true, nil
		}
		matched++
		more = limit == 0 || matched < limit
		r := Result{Letter: l}
		r.Topic, r.Err = q.topic(ctx, l)
		switch {
		case r.Err == nil && l.OrderingKey == "":
			r.Err = errors.New("no ordering key: the function reads the row's primary key from it, so the change cannot be replayed as it is")
		}
		if r.Err != nil {
			r.Outcome = Unreplayable
			each(r)
			return false, more, nil
		}
		if dryRun {
			r.Outcome = WouldReplay
			each(r)
			return false, more, nil
		}
		pub := pubs[r.Topic]
		if pub == nil {
			c := q.Publisher
			if c == nil {
				c = q.Client
			}
			pub = c.Publisher(r.Topic)
			pub.EnableMessageOrdering = true
			pub.PublishSettings.DelayThreshold = time.Millisecond
			pubs[r.Topic] = pub
		}
		attrs := make(map[string]string, len(l.Attributes)+1)
		for k, v := range l.Attributes {
			attrs[k] = v
		}
		attrs[AttrReplayOf] = l.ID
		if _, err := pub.Publish(ctx, &pubsub.Message{Data: l.Data, Attributes: attrs, OrderingKey: l.OrderingKey}).Get(ctx); err != nil {
			// An ordered publisher pauses the key after a failure; later letters of the key may go.
			pub.ResumePublish(l.OrderingKey)
			r.Outcome, r.Err = Failed, err
			each(r)
			return false, more, nil
		}
		r.Outcome = Replayed
		each(r)
		return true, more, nil
	})
}

// walk pulls the subscription until it is drained or visit says to stop, holding every message it
// does not acknowledge until the end (so no message is seen twice), then hands those back.
func (q *Queue) walk(ctx context.Context, visit func(Letter) (ack, more bool, err error)) (seen int, err error) {
	wait, batch := q.Wait, q.Batch
	if wait <= 0 {
		wait = 5 * time.Second
	}
	if batch <= 0 {
		batch = 100
	}
	admin := q.Client.SubscriptionAdminClient
	var held []string
	defer func() {
		// Back to the subscription at once (deadline 0), for the next list or replay. A fresh context:
		// this must happen also when ctx was cancelled.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		for i := 0; i < len(held); i += 1000 {
			ids := held[i:min(i+1000, len(held))]
			if nerr := admin.ModifyAckDeadline(rctx, &pb.ModifyAckDeadlineRequest{Subscription: q.Subscription, AckIds: ids, AckDeadlineSeconds: 0}); nerr != nil && err == nil {
				err = fmt.Errorf("deadletter: hand %d messages back to %s: %w", len(ids), q.Subscription, nerr)
			}
		}
	}()
	for {
		pctx, cancel := context.WithTimeout(ctx, wait)
		resp, perr := admin.Pull(pctx, &pb.PullRequest{Subscription: q.Subscription, MaxMessages: int32(batch)})
		cancel()
		if perr != nil {
			if ctx.Err() == nil && (errors.Is(perr, context.DeadlineExceeded) || strings.Contains(perr.Error(), "DeadlineExceeded")) {
				return seen, nil // nothing arrived within wait: drained
			}
			return seen, fmt.Errorf("deadletter: pull %s: %w", q.Subscription, perr)
		}
		msgs := resp.GetReceivedMessages()
		if len(msgs) == 0 {
			return seen, nil
		}
		var ack []string
		stop := false
		for i, m := range msgs {
			if stop {
				held = append(held, m.GetAckId())
				continue
			}
			seen++
			a, more, verr := visit(Classify(m))
			if verr != nil {
				for _, rest := range msgs[i+1:] {
					held = append(held, rest.GetAckId())
				}
				held = append(held, m.GetAckId())
				return seen, verr
			}
			if a {
				ack = append(ack, m.GetAckId())
			} else {
				held = append(held, m.GetAckId())
			}
			stop = !more
		}
		if len(ack) > 0 {
			if err := admin.Acknowledge(ctx, &pb.AcknowledgeRequest{Subscription: q.Subscription, AckIds: ack}); err != nil {
				// Published but not acknowledged: the letter will be replayed again, which the version
				// guard makes harmless.
				return seen, fmt.Errorf("deadletter: acknowledge %d replayed messages on %s (they were published; a second replay is harmless): %w", len(ack), q.Subscription, err)
			}
		}
		if stop {
			return seen, nil
		}
		// Keep what is held leased while the walk goes on.
		for i := 0; i < len(held); i += 1000 {
			ids := held[i:min(i+1000, len(held))]
			if err := admin.ModifyAckDeadline(ctx, &pb.ModifyAckDeadlineRequest{Subscription: q.Subscription, AckIds: ids, AckDeadlineSeconds: 600}); err != nil {
				return seen, fmt.Errorf("deadletter: extend the lease of %d messages: %w", len(ids), err)
			}
		}
	}
}

// topic is the topic a letter is replayed to.
func (q *Queue) topic(ctx context.Context, l Letter) (string, error) {
	if l.Table != "" && q.TopicPrefix != "" {
		project, ok := projectOf(q.Subscription)
		if !ok {
			return "", fmt.Errorf("deadletter: %q is not projects/<project>/subscriptions/<name>", q.Subscription)
		}
		return "projects/" + project + "/topics/" + q.TopicPrefix + "." + l.Table, nil
	}
	if l.Subscription == "" {
		return "", errors.New("no table topic: the data is not a change event (so it names no table) and no source subscription is recorded")
	}
	if t, ok := q.topics[l.Subscription]; ok {
		return t, nil
	}
	s, err := q.Client.SubscriptionAdminClient.GetSubscription(ctx, &pb.GetSubscriptionRequest{Subscription: l.Subscription})
	if err != nil {
		return "", fmt.Errorf("the topic of source subscription %s: %w", l.Subscription, err)
	}
	if q.topics == nil {
		q.topics = map[string]string{}
	}
	q.topics[l.Subscription] = s.GetTopic()
	return s.GetTopic(), nil
}

func projectOf(name string) (string, bool) {
	p := strings.Split(name, "/")
	if len(p) != 4 || p[0] != "projects" || p[2] != "subscriptions" || p[1] == "" || p[3] == "" {
		return "", false
	}
	return p[1], true
}
