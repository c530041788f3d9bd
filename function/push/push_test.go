package push

import (
	"bytes"
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/internal/jsonscan/jsonscantest"
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

func FuzzDecode(f *testing.F) {
	f.Add([]byte(realBody))
	f.Add([]byte(`{"message":{"messageId":"1"}}`))
	f.Add([]byte(`{"message":{"data":null,"messageId":"1","attributes":null}}`))
	f.Add([]byte(`{"message":{"data":"","messageId":"1","message_id":"2","orderingKey":null,"ordering_key":"k"},"deliveryAttempt":null}`))
	f.Add([]byte(`{"message":{"data":"e3x\/fQ==","messageId":"1","publish_time":"2021-02-26T19:13:55Z"},"subscription":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body)
		want, wantErr := referenceDecode(body)
		if !jsonscantest.Ambiguous(body, "message", "subscription", "deliveryAttempt", "data", "attributes",
			"messageId", "message_id", "publishTime", "publish_time", "orderingKey", "ordering_key") {
			switch {
			case err == nil && wantErr == nil && !reflect.DeepEqual(m, want):
				t.Fatalf("%q:\n got %+v\nwant %+v (the json.Unmarshal-based decoder)", body, m, want)
			case err == nil && wantErr != nil:
				t.Fatalf("%q: decoded %+v, the json.Unmarshal-based decoder failed: %v", body, m, wantErr)
			case err != nil && wantErr == nil:
				t.Fatalf("%q: %v, the json.Unmarshal-based decoder gave %+v", body, err, want)
			}
		}
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
		if err != nil || m2.ID != m.ID || !bytes.Equal(m2.Data, m.Data) || m2.OrderingKey != m.OrderingKey {
			t.Fatalf("re-encoded message does not round-trip: %v", err)
		}
	})
}
