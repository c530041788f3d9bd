package push

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkDecode compares Decode with the json.Unmarshal-based decoder it replaced, in the same run,
// on the push body of a ~2.4 KB change event (an update of a ~1 KB row):
//
//	go test ./function/push -run '^$' -bench Decode -count 5
func BenchmarkDecode(b *testing.B) {
	body, err := Encode(&Message{ID: "2070443601311540", Data: []byte(`{"before":{"bio":"` + strings.Repeat("x", 1100) +
		`"},"after":{"bio":"` + strings.Repeat("y", 1100) + `"},"op":"u"}`),
		OrderingKey: `{"id":42}`, PublishTime: time.Now(), Subscription: "projects/p/subscriptions/s", DeliveryAttempt: 1})
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		decode func([]byte) (*Message, error)
	}{{"jsonscan", Decode}, {"json.Unmarshal_before", referenceDecode}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.decode(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
