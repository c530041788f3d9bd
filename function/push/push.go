// Package push decodes and encodes the body of a Pub/Sub push request: the default "wrapped" JSON
// envelope that a push subscription POSTs to its endpoint.
//
//	{"message": {"data": "<base64>", "attributes": {...}, "messageId": "...", "publishTime": "...",
//	             "orderingKey": "..."},
//	 "subscription": "projects/<p>/subscriptions/<s>", "deliveryAttempt": 2}
//
// Unwrapped push (the message data as the raw body) is not accepted: it drops the message id, the
// ordering key and the delivery attempt, which the cache needs.
package push

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Message is one Pub/Sub message as delivered by a push subscription.
type Message struct {
	ID              string
	Data            []byte
	Attributes      map[string]string
	PublishTime     time.Time
	OrderingKey     string
	Subscription    string
	DeliveryAttempt int // 0 when the subscription has no dead-letter policy (Pub/Sub omits it then)
}

// DefaultMaxBody is the default cap on a push body: Pub/Sub messages are at most 10 MB, which base64
// and the envelope grow by about a third.
const DefaultMaxBody = 16 << 20

// ErrTooLarge is returned by ReadRequest when the body exceeds the limit.
var ErrTooLarge = errors.New("push: request body too large")

// ErrNotPush is wrapped by every error about a body that is not a wrapped push envelope.
var ErrNotPush = errors.New("push: not a Pub/Sub push envelope")

type wireMessage struct {
	Data         *string           `json:"data"`
	Attributes   map[string]string `json:"attributes"`
	MessageID    string            `json:"messageId"`
	MessageIDAlt string            `json:"message_id"`
	PublishTime  string            `json:"publishTime"`
	PublishTime2 string            `json:"publish_time"`
	OrderingKey  string            `json:"orderingKey"`
	OrderingKey2 string            `json:"ordering_key"`
}

type wireEnvelope struct {
	Message         *wireMessage `json:"message"`
	Subscription    string       `json:"subscription"`
	DeliveryAttempt *int         `json:"deliveryAttempt"`
}

// ReadRequest reads and decodes a push request, reading at most limit bytes of body.
func ReadRequest(r *http.Request, limit int64) (*Message, error) {
	body, err := readBody(r, limit)
	if err != nil {
		return nil, err
	}
	return Decode(body)
}

// readBody reads the whole body into one buffer sized from Content-Length (push requests carry it),
// instead of io.ReadAll's doubling from 512 bytes.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	size := r.ContentLength
	if size < 0 || size > limit {
		size = 512 // unknown, or about to be refused: let the reads below find out
	}
	// A declared length is trusted up to 1 MiB: a client claiming more grows the buffer by sending it.
	size = min(size, 1<<20)
	body := make([]byte, 0, size+1) // +1: the read that sees EOF must not have to grow it
	lr := io.LimitReader(r.Body, limit+1)
	for {
		if len(body) == cap(body) {
			body = append(body, 0)[:len(body)]
		}
		n, err := lr.Read(body[len(body):cap(body)])
		body = body[:len(body)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("push: read body: %w", err)
		}
	}
	if int64(len(body)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return body, nil
}

// Decode decodes a wrapped push envelope with encoding/json. Members are matched as json.Unmarshal
// matches struct fields: case-insensitively, the last of a repeated member winning.
func Decode(body []byte) (*Message, error) {
	var env wireEnvelope
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

// first is a if set, else b: the camelCase member, else its snake_case twin.
func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// Encode builds the wrapped envelope Pub/Sub would POST for m, byte-compatible with what push
// subscriptions send (both the camelCase and snake_case id and time fields).
func Encode(m *Message) ([]byte, error) {
	data := base64.StdEncoding.EncodeToString(m.Data)
	wm := wireMessage{
		Data:         &data,
		Attributes:   m.Attributes,
		MessageID:    m.ID,
		MessageIDAlt: m.ID,
		OrderingKey:  m.OrderingKey,
	}
	if !m.PublishTime.IsZero() {
		wm.PublishTime = m.PublishTime.UTC().Format(time.RFC3339Nano)
		wm.PublishTime2 = wm.PublishTime
	}
	env := wireEnvelope{Message: &wm, Subscription: m.Subscription}
	if m.DeliveryAttempt > 0 {
		env.DeliveryAttempt = &m.DeliveryAttempt
	}
	b, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("push: encode message %s: %w", m.ID, err)
	}
	return b, nil
}
