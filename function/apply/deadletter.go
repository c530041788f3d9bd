package apply

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"

	"github.com/cloudsql-cache/cloudsql-cache/function/push"
)

// Attributes the dead-letter topic's messages carry besides the original ones. The data is the
// original message's data, byte for byte, so a fixed message can be republished as it is.
const (
	AttrReason          = "cloudsql_cache_reason"
	AttrMessageID       = "cloudsql_cache_message_id"
	AttrOrderingKey     = "cloudsql_cache_ordering_key"
	AttrSubscription    = "cloudsql_cache_subscription"
	AttrPublishTime     = "cloudsql_cache_publish_time"
	AttrDeliveryAttempt = "cloudsql_cache_delivery_attempt"
	AttrDeadLetteredAt  = "cloudsql_cache_dead_lettered_at"
)

// Pub/Sub limits: at most 100 attributes, values of at most 1024 bytes.
const (
	maxAttrs     = 100
	maxAttrValue = 1024
)

// PubSubDeadLetter publishes bad messages to a dead-letter topic.
type PubSubDeadLetter struct {
	pub *pubsub.Publisher
	now func() time.Time
}

// NewPubSubDeadLetter publishes through pub. Publishing is synchronous: DeadLetter returns only once
// Pub/Sub has stored the message, so the original is acknowledged only after that.
func NewPubSubDeadLetter(pub *pubsub.Publisher) *PubSubDeadLetter {
	return &PubSubDeadLetter{pub: pub, now: time.Now}
}

// DeadLetter publishes m with reason.
func (d *PubSubDeadLetter) DeadLetter(ctx context.Context, m *push.Message, reason error) error {
	attrs := map[string]string{
		AttrReason:          clip(reason.Error()),
		AttrMessageID:       m.ID,
		AttrOrderingKey:     clip(m.OrderingKey),
		AttrSubscription:    m.Subscription,
		AttrDeliveryAttempt: strconv.Itoa(m.DeliveryAttempt),
		AttrDeadLetteredAt:  d.now().UTC().Format(time.RFC3339Nano),
	}
	if !m.PublishTime.IsZero() {
		attrs[AttrPublishTime] = m.PublishTime.UTC().Format(time.RFC3339Nano)
	}
	for k, v := range m.Attributes {
		if len(attrs) >= maxAttrs {
			break
		}
		if _, ours := attrs[k]; !ours {
			attrs[k] = v
		}
	}
	_, err := d.pub.Publish(ctx, &pubsub.Message{Data: m.Data, Attributes: attrs}).Get(ctx)
	if err != nil {
		return fmt.Errorf("apply: publish message %s to dead-letter topic %s: %w", m.ID, d.pub, err)
	}
	return nil
}

func clip(s string) string {
	if len(s) <= maxAttrValue {
		return s
	}
	return strings.ToValidUTF8(s[:maxAttrValue-3], "") + "..."
}
