package push

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"
)

// A body as a push subscription sends it (wrapped format, with a dead-letter policy so
// deliveryAttempt is present).
const realBody = `{"message":{"attributes":{"k":"v"},"data":"eyJvcCI6ImMifQ==","messageId":"2070443601311540","message_id":"2070443601311540","orderingKey":"{\"id\":1004}","publishTime":"2021-02-26T19:13:55.749Z","publish_time":"2021-02-26T19:13:55.749Z"},"subscription":"projects/myproject/subscriptions/mysubscription","deliveryAttempt":3}`

func TestDecode(t *testing.T) {
	m, err := Decode([]byte(realBody))
	if err != nil {
		t.Fatal(err)
	}
	want := &Message{
		ID:              "2070443601311540",
		Data:            []byte(`{"op":"c"}`),
		Attributes:      map[string]string{"k": "v"},
		PublishTime:     time.Date(2021, 2, 26, 19, 13, 55, 749000000, time.UTC),
		OrderingKey:     `{"id":1004}`,
		Subscription:    "projects/myproject/subscriptions/mysubscription",
		DeliveryAttempt: 3,
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v\nwant %+v", m, want)
	}
	back, err := Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	m2, err := Decode(back)
	if err != nil || !reflect.DeepEqual(m2, m) {
		t.Fatalf("round trip: %+v %v", m2, err)
	}
}

func TestDecodeRejects(t *testing.T) {
	cases := map[string]string{
		"not json":              `hello`,
		"unwrapped payload":     `{"op":"c","after":{"id":1}}`,
		"no message id":         `{"message":{"data":"e30="}}`,
		"bad base64":            `{"message":{"data":"!!!","messageId":"1"}}`,
		"bad publish time":      `{"message":{"data":"e30=","messageId":"1","publishTime":"yesterday"}}`,
		"negative attempt":      `{"message":{"data":"e30=","messageId":"1"},"deliveryAttempt":-1}`,
		"message not an object": `{"message":"x"}`,
		"array":                 `[]`,
		"null":                  `null`,
	}
	for name, body := range cases {
		if _, err := Decode([]byte(body)); !errors.Is(err, ErrNotPush) {
			t.Errorf("%s: err = %v, want ErrNotPush", name, err)
		}
	}
}

func TestReadRequestCapsBody(t *testing.T) {
	r := httptest.NewRequest("POST", "/", strings.NewReader(realBody))
	if _, err := ReadRequest(r, int64(len(realBody))); err != nil {
		t.Fatalf("body at the limit: %v", err)
	}
	r = httptest.NewRequest("POST", "/", bytes.NewReader(bytes.Repeat([]byte{' '}, 1001)))
	if _, err := ReadRequest(r, 1000); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
}

// The body is read whole whatever Content-Length claims: the length only sizes the first buffer.
func TestReadRequestDoesNotTrustContentLength(t *testing.T) {
	for _, declared := range []int64{-1, 0, 10, int64(len(realBody)), 10 << 20} {
		r := httptest.NewRequest("POST", "/", strings.NewReader(realBody))
		r.ContentLength = declared
		m, err := ReadRequest(r, 16<<20)
		if err != nil || m.ID != "2070443601311540" {
			t.Fatalf("Content-Length %d: %+v %v", declared, m, err)
		}
	}
}

// FuzzDecode: on any body Decode returns a message or an error wrapping ErrNotPush, never panics; and a
// decoded message re-encodes (Encode) to a body that decodes to the same message.
func FuzzDecode(f *testing.F) {
	f.Add([]byte(realBody))
	f.Add([]byte(`{"message":{"messageId":"1"}}`))
	f.Add([]byte(`{"message":{"data":null,"messageId":"1","attributes":null}}`))
	f.Add([]byte(`{"message":{"data":"","messageId":"1","message_id":"2","orderingKey":null,"ordering_key":"k"},"deliveryAttempt":null}`))
	f.Add([]byte(`{"message":{"data":"e3x\/fQ==","messageId":"1","publish_time":"2021-02-26T19:13:55+01:00"},"subscription":null}`))
	f.Add([]byte(`{"message":{"messageId":"1","attributes":{"a":"\u00e9","":""}},"deliveryAttempt":7,"subscription":"s"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body)
		if err != nil {
			if !errors.Is(err, ErrNotPush) {
				t.Fatalf("error not wrapping ErrNotPush: %v", err)
			}
			return
		}
		if m.ID == "" {
			t.Fatal("decoded a message without an id")
		}
		b, err := Encode(m)
		if err != nil {
			t.Fatal(err)
		}
		m2, err := Decode(b)
		if err != nil {
			t.Fatalf("re-encoded message %s does not decode: %v", b, err)
		}
		if m2.ID != m.ID || !bytes.Equal(m2.Data, m.Data) || !reflect.DeepEqual(m2.Attributes, m.Attributes) || !m2.PublishTime.Equal(m.PublishTime) ||
			m2.OrderingKey != m.OrderingKey || m2.Subscription != m.Subscription || m2.DeliveryAttempt != m.DeliveryAttempt {
			t.Fatalf("re-encoded message does not round-trip:\n got %+v\nwant %+v", m2, m)
		}
	})
}
