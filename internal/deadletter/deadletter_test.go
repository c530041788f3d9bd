package deadletter

import (
	"os"
	"testing"
	"time"

	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"

	"github.com/cloudsql-cache/cloudsql-cache/function/apply"
)

// Each kind of dead letter is read from the attributes its origin sets; the replayable attributes are
// the original ones, without the dead-letter ones.
func TestClassify(t *testing.T) {
	data, err := os.ReadFile("../../testdata/debezium/mysql-create-noschema-serde-testfixture.json")
	if err != nil {
		t.Fatal(err)
	}
	fn := Classify(&pb.ReceivedMessage{AckId: "a1", Message: &pb.PubsubMessage{MessageId: "d1", Data: data, Attributes: map[string]string{
		apply.AttrReason: "key: key template names column email", apply.AttrOrderingKey: `{"id":1004}`, apply.AttrSubscription: "projects/p/subscriptions/s",
		apply.AttrMessageID: "m7", apply.AttrDeliveryAttempt: "3", apply.AttrPublishTime: "2026-11-01T10:00:00Z", apply.AttrDeadLetteredAt: "2026-11-01T10:00:01.5Z",
		"debezium_header": "kept",
	}}})
	if fn.Origin != FromFunction || fn.Reason != "key" || fn.Table != "inventory.customers" || fn.OrderingKey != `{"id":1004}` ||
		fn.SourceMessageID != "m7" || fn.Attempts != 3 || !fn.PublishTime.Equal(time.Date(2026, 11, 1, 10, 0, 0, 0, time.UTC)) ||
		len(fn.Attributes) != 1 || fn.Attributes["debezium_header"] != "kept" {
		t.Errorf("the function's dead letter: %+v", fn)
	}
	sub := Classify(&pb.ReceivedMessage{Message: &pb.PubsubMessage{Data: data, OrderingKey: `{"id":1004}`, Attributes: map[string]string{
		AttrSourceSubscription: "t.apply", AttrSourceSubscriptionProject: "p", AttrSourceDeliveryCount: "50",
		AttrSourceTopicPublishTime: "2026-11-01T10:00:00.123+00:00", AttrSourceDeliveryError: "HTTP 503",
	}}})
	if sub.Origin != FromSubscription || sub.Reason != ReasonDeliveryAttempts || sub.Subscription != "projects/p/subscriptions/t.apply" ||
		sub.Attempts != 50 || sub.Detail != "HTTP 503" || sub.PublishTime.IsZero() || len(sub.Attributes) != 0 {
		t.Errorf("a forwarded dead letter: %+v", sub)
	}
	if u := Classify(&pb.ReceivedMessage{Message: &pb.PubsubMessage{Data: []byte("junk")}}); u.Origin != FromUnknown || u.Table != "" {
		t.Errorf("a bare message: %+v", u)
	}
	if !(Filter{Reason: "key", Table: "inventory.customers"}).Match(fn) || (Filter{Origin: FromSubscription}).Match(fn) {
		t.Error("filters")
	}
}
