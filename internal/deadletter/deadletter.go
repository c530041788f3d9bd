// Package deadletter reads the dead-letter subscription and replays what it holds. Two kinds of
// message end up there:
//
//   - the function's own dead letters (function/apply): permanently bad messages it published before
//     acknowledging them, with the original data, the original attributes and cloudsql_cache_*
//     attributes: the reason, the original ordering key and subscription;
//   - messages a push subscription's dead-letter policy forwarded after its maximum delivery attempts
//     (they kept failing with 5xx), with the attributes Pub/Sub adds: CloudPubSubDeadLetterSource*
//     (the subscription, its project, the delivery count, the original publish time and the last
//     delivery error), keeping the original ordering key.
//
// A replay publishes a message's original data and attributes to its table's topic with its original
// ordering key, then acknowledges it on the dead-letter subscription. Replaying is safe whatever the
// order: the function's version guard counts a change older than the cached row as stale.
package deadletter

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/function/apply"
)

// Attributes Pub/Sub adds to a message a subscription's dead-letter policy forwards
// (https://cloud.google.com/pubsub/docs/handling-failures).
const (
	AttrSourceSubscription        = "CloudPubSubDeadLetterSourceSubscription"
	AttrSourceSubscriptionProject = "CloudPubSubDeadLetterSourceSubscriptionProject"
	AttrSourceDeliveryCount       = "CloudPubSubDeadLetterSourceDeliveryCount"
	AttrSourceTopicPublishTime    = "CloudPubSubDeadLetterSourceTopicPublishTime"
	AttrSourceDeliveryError       = "CloudPubSubDeadLetterSourceDeliveryErrorMessage"
)

// AttrReplayOf is set on a replayed message: the dead letter's message id, to trace a replay.
const AttrReplayOf = "cloudsql_cache_replay_of"

// Origin says who dead-lettered a message.
type Origin string

const (
	FromFunction     Origin = "function"     // the function, with its reason
	FromSubscription Origin = "subscription" // a subscription's dead-letter policy
	// FromUnknown is a message with neither set of attributes (published there by hand, or by an
	// emulator that forwards without Pub/Sub's attributes).
	FromUnknown Origin = "unknown"
)

// ReasonDeliveryAttempts is the reason of a message a subscription forwarded: its deliveries kept
// failing until the policy's maximum.
const ReasonDeliveryAttempts = "delivery_attempts"

// Letter is one dead letter, as far as its attributes and data tell.
type Letter struct {
	AckID string
	// ID is the dead letter's message id on the dead-letter topic.
	ID     string
	Origin Origin
	// Reason is the short reason ("key", "decode", "foreign_value", … or ReasonDeliveryAttempts);
	// Detail is the long one (the function's error, or Pub/Sub's last delivery error).
	Reason, Detail string
	// Table is db.table from the change event's source block ("" when the data does not decode).
	Table string
	// OrderingKey is the original ordering key: the row's primary key JSON.
	OrderingKey string
	// Subscription is the push subscription the message came from, when known.
	Subscription string
	// SourceMessageID is the message's id on its table topic (function dead letters only).
	SourceMessageID string
	Attempts        int
	// PublishTime is when it was first published to its table topic; DeadLettered when it was
	// dead-lettered.
	PublishTime, DeadLettered time.Time
	// Data and Attributes are what a replay publishes: the original data, byte for byte, and the
	// original attributes without the dead-letter ones.
	Data       []byte
	Attributes map[string]string
}

// Classify reads a message of the dead-letter subscription.
func Classify(m *pb.ReceivedMessage) Letter {
	msg := m.GetMessage()
	a := msg.GetAttributes()
	l := Letter{AckID: m.GetAckId(), ID: msg.GetMessageId(), Data: msg.GetData(), Attributes: map[string]string{}}
	if t := msg.GetPublishTime(); t != nil {
		l.DeadLettered = t.AsTime()
	}
	for k, v := range a {
		if !strings.HasPrefix(k, "cloudsql_cache_") && !strings.HasPrefix(k, "CloudPubSubDeadLetter") {
			l.Attributes[k] = v
		}
	}
	switch {
	case a[apply.AttrReason] != "":
		l.Origin = FromFunction
		l.Detail = a[apply.AttrReason]
		l.Reason, _, _ = strings.Cut(l.Detail, ": ")
		l.OrderingKey = a[apply.AttrOrderingKey]
		l.Subscription = a[apply.AttrSubscription]
		l.SourceMessageID = a[apply.AttrMessageID]
		l.Attempts, _ = strconv.Atoi(a[apply.AttrDeliveryAttempt])
		l.PublishTime = parseTime(a[apply.AttrPublishTime])
		if t := parseTime(a[apply.AttrDeadLetteredAt]); !t.IsZero() {
			l.DeadLettered = t
		}
	case a[AttrSourceSubscription] != "":
		l.Origin = FromSubscription
		l.Reason = ReasonDeliveryAttempts
		l.Detail = a[AttrSourceDeliveryError]
		l.OrderingKey = msg.GetOrderingKey()
		l.Subscription = a[AttrSourceSubscription]
		if p := a[AttrSourceSubscriptionProject]; p != "" && !strings.HasPrefix(l.Subscription, "projects/") {
			l.Subscription = "projects/" + p + "/subscriptions/" + l.Subscription
		}
		l.Attempts, _ = strconv.Atoi(a[AttrSourceDeliveryCount])
		l.PublishTime = parseTime(a[AttrSourceTopicPublishTime])
	default:
		l.Origin = FromUnknown
		l.Reason = "unknown"
		l.OrderingKey = msg.GetOrderingKey()
	}
	// The table, from the change event itself: what the filters and the topic go by.
	if ev, err := debezium.Decode(l.Data); err == nil && ev.Kind == debezium.Change && ev.Source.DB != "" && ev.Source.Table != "" {
		l.Table = ev.Source.DB + "." + ev.Source.Table
	}
	return l
}

// parseTime reads an RFC 3339 time; Pub/Sub writes CloudPubSubDeadLetterSourceTopicPublishTime
// with a numeric offset ("…+00:00").
func parseTime(s string) time.Time {
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999-07:00"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t
		}
	}
	return time.Time{}
}

// Filter selects dead letters; an empty field matches everything.
type Filter struct {
	// Reason matches Letter.Reason exactly ("key", "decode", ReasonDeliveryAttempts, …).
	Reason string
	// Table matches Letter.Table (db.table).
	Table string
	// Origin matches Letter.Origin.
	Origin Origin
}

// Match reports whether l passes f.
func (f Filter) Match(l Letter) bool {
	return (f.Reason == "" || f.Reason == l.Reason) && (f.Table == "" || f.Table == l.Table) && (f.Origin == "" || f.Origin == l.Origin)
}

// MarshalJSON writes a letter for `cachectl dlq list -json`: the data as text when it is JSON.
func (l Letter) MarshalJSON() ([]byte, error) {
	type out struct {
		ID              string            `json:"id"`
		Origin          Origin            `json:"origin"`
		Reason          string            `json:"reason"`
		Detail          string            `json:"detail,omitempty"`
		Table           string            `json:"table,omitempty"`
		OrderingKey     string            `json:"ordering_key"`
		Subscription    string            `json:"subscription,omitempty"`
		SourceMessageID string            `json:"source_message_id,omitempty"`
		Attempts        int               `json:"attempts,omitempty"`
		PublishTime     *time.Time        `json:"publish_time,omitempty"`
		DeadLettered    *time.Time        `json:"dead_lettered,omitempty"`
		Attributes      map[string]string `json:"attributes,omitempty"`
		Data            json.RawMessage   `json:"data,omitempty"`
		DataBase64      []byte            `json:"data_base64,omitempty"`
	}
	o := out{ID: l.ID, Origin: l.Origin, Reason: l.Reason, Detail: l.Detail, Table: l.Table, OrderingKey: l.OrderingKey,
		Subscription: l.Subscription, SourceMessageID: l.SourceMessageID, Attempts: l.Attempts, Attributes: l.Attributes}
	if !l.PublishTime.IsZero() {
		o.PublishTime = &l.PublishTime
	}
	if !l.DeadLettered.IsZero() {
		o.DeadLettered = &l.DeadLettered
	}
	if json.Valid(l.Data) {
		o.Data = l.Data
	} else {
		o.DataBase64 = l.Data
	}
	return json.Marshal(o)
}
