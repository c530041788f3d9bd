package push

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"
)

type refMessage struct {
	Data         *string           `json:"data"`
	Attributes   map[string]string `json:"attributes"`
	MessageID    string            `json:"messageId"`
	MessageIDAlt string            `json:"message_id"`
	PublishTime  string            `json:"publishTime"`
	PublishTime2 string            `json:"publish_time"`
	OrderingKey  string            `json:"orderingKey"`
	OrderingKey2 string            `json:"ordering_key"`
}

type refEnvelope struct {
	Message         *refMessage `json:"message"`
	Subscription    string      `json:"subscription"`
	DeliveryAttempt *int        `json:"deliveryAttempt"`
}

// referenceDecode is Decode as it was written with json.Unmarshal into structs, before the hot
// path moved to jsonscan: FuzzDecode holds the two to the same answers.
func referenceDecode(body []byte) (*Message, error) {
	var env refEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotPush, err)
	}
	wm := env.Message
	if wm == nil {
		return nil, fmt.Errorf("%w: no \"message\" object (is the subscription set to unwrapped push? use the default wrapped format)", ErrNotPush)
	}
	m := &Message{
		ID:           first(wm.MessageID, wm.MessageIDAlt),
		Attributes:   wm.Attributes,
		OrderingKey:  first(wm.OrderingKey, wm.OrderingKey2),
		Subscription: env.Subscription,
	}
	if m.ID == "" {
		return nil, fmt.Errorf("%w: message has no messageId", ErrNotPush)
	}
	if wm.Data != nil {
		d, err := base64.StdEncoding.DecodeString(*wm.Data)
		if err != nil {
			return nil, fmt.Errorf("%w: message %s: data is not standard base64: %v", ErrNotPush, m.ID, err)
		}
		m.Data = d
	}
	if ts := first(wm.PublishTime, wm.PublishTime2); ts != "" {
		t, err := time.Parse(time.RFC3339Nano, ts)
		if err != nil {
			return nil, fmt.Errorf("%w: message %s: publishTime %q: %v", ErrNotPush, m.ID, ts, err)
		}
		m.PublishTime = t
	}
	if env.DeliveryAttempt != nil {
		if *env.DeliveryAttempt < 0 {
			return nil, fmt.Errorf("%w: message %s: negative deliveryAttempt %d", ErrNotPush, m.ID, *env.DeliveryAttempt)
		}
		m.DeliveryAttempt = *env.DeliveryAttempt
	}
	return m, nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
