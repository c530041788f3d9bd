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

	"github.com/cloudsql-cache/cloudsql-cache/internal/jsonscan"
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

// envelope holds the raw members of a push body and of its message that Decode uses; nil means
// absent, a JSON null stays the raw "null".
type envelope struct {
	message, subscription, deliveryAttempt                            []byte
	data, attributes, id, idAlt, publish, publishAlt, order, orderAlt []byte
}

func setOnce(field *[]byte, name string, v []byte) error {
	if *field != nil {
		return fmt.Errorf("member %q appears twice", name)
	}
	*field = v
	return nil
}

func (e *envelope) setTop(name string, v []byte) error {
	switch name {
	case "message":
		return setOnce(&e.message, name, v)
	case "subscription":
		return setOnce(&e.subscription, name, v)
	case "deliveryAttempt":
		return setOnce(&e.deliveryAttempt, name, v)
	}
	return nil
}

func (e *envelope) setMessage(name string, v []byte) error {
	switch name {
	case "data":
		return setOnce(&e.data, name, v)
	case "attributes":
		return setOnce(&e.attributes, name, v)
	case "messageId":
		return setOnce(&e.id, name, v)
	case "message_id":
		return setOnce(&e.idAlt, name, v)
	case "publishTime":
		return setOnce(&e.publish, name, v)
	case "publish_time":
		return setOnce(&e.publishAlt, name, v)
	case "orderingKey":
		return setOnce(&e.order, name, v)
	case "ordering_key":
		return setOnce(&e.orderAlt, name, v)
	}
	return nil
}

// optString is jsonscan.OptString with the member's name in the error; absent and null read as "".
func optString(name string, v []byte) (string, error) {
	s, _, err := jsonscan.OptString(v)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrNotPush, name, err)
	}
	return s, nil
}

// Decode decodes a wrapped push envelope. The body is validated once (jsonscan.Valid) and walked with
// jsonscan; the message data is base64-decoded straight from the body. Decode gives the same answers
// as json.Unmarshal into the envelope's structure (FuzzDecode holds it to that) at a fifth of the cost.
func Decode(body []byte) (*Message, error) {
	if !jsonscan.Valid(body) {
		var v any
		err := json.Unmarshal(body, &v) // for encoding/json's description of what is wrong
		return nil, fmt.Errorf("%w: not JSON: %v", ErrNotPush, err)
	}
	var e envelope
	if err := jsonscan.EachMember(body, e.setTop); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotPush, err)
	}
	if e.message == nil || jsonscan.IsNull(e.message) {
		return nil, fmt.Errorf("%w: no \"message\" object (is the subscription set to unwrapped push? use the default wrapped format)", ErrNotPush)
	}
	if err := jsonscan.EachMember(e.message, e.setMessage); err != nil {
		return nil, fmt.Errorf("%w: message: %v", ErrNotPush, err)
	}
	m := &Message{}
	var err error
	for _, f := range []struct {
		dst       *string
		name, alt string
		v, vAlt   []byte
	}{
		{&m.ID, "messageId", "message_id", e.id, e.idAlt},
		{&m.OrderingKey, "orderingKey", "ordering_key", e.order, e.orderAlt},
	} {
		if *f.dst, err = optString(f.name, f.v); err == nil && *f.dst == "" {
			*f.dst, err = optString(f.alt, f.vAlt)
		}
		if err != nil {
			return nil, err
		}
	}
	if m.Subscription, err = optString("subscription", e.subscription); err != nil {
		return nil, err
	}
	if m.ID == "" {
		return nil, fmt.Errorf("%w: message has no messageId", ErrNotPush)
	}
	if e.attributes != nil && !jsonscan.IsNull(e.attributes) {
		if err := json.Unmarshal(e.attributes, &m.Attributes); err != nil {
			return nil, fmt.Errorf("%w: message %s: attributes: %v", ErrNotPush, m.ID, err)
		}
	}
	if e.data != nil && !jsonscan.IsNull(e.data) {
		if m.Data, err = decodeData(e.data); err != nil {
			return nil, fmt.Errorf("%w: message %s: %v", ErrNotPush, m.ID, err)
		}
	}
	publish, err := optString("publishTime", e.publish)
	if err == nil && publish == "" {
		publish, err = optString("publish_time", e.publishAlt)
	}
	if err != nil {
		return nil, err
	}
	if publish != "" {
		t, err := time.Parse(time.RFC3339Nano, publish)
		if err != nil {
			return nil, fmt.Errorf("%w: message %s: publishTime %q: %v", ErrNotPush, m.ID, publish, err)
		}
		m.PublishTime = t
	}
	n, ok, err := jsonscan.OptInt64(e.deliveryAttempt)
	if err != nil {
		return nil, fmt.Errorf("%w: message %s: deliveryAttempt: %v", ErrNotPush, m.ID, err)
	}
	if ok {
		if n < 0 {
			return nil, fmt.Errorf("%w: message %s: negative deliveryAttempt %d", ErrNotPush, m.ID, n)
		}
		m.DeliveryAttempt = int(n)
	}
	return m, nil
}

// decodeData decodes the base64 "data" string, without an intermediate Go string unless it has
// JSON escapes (which a standard encoder only writes for "/" as "\/").
func decodeData(v []byte) ([]byte, error) {
	src, ok := jsonscan.RawString(v)
	if !ok {
		s, err := jsonscan.String(v)
		if err != nil {
			return nil, fmt.Errorf("data: %v", err)
		}
		src = []byte(s)
	}
	dst := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
	n, err := base64.StdEncoding.Decode(dst, src)
	if err != nil {
		return nil, fmt.Errorf("data is not standard base64: %v", err)
	}
	return dst[:n], nil
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
