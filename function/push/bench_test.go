package push

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// BenchmarkDecode measures Decode beside json.Valid on the same body, in the same run: one pass of
// encoding/json's scanner, the least any decoder built on it costs. The body is the push request of a
// ~2.4 KB change event (an update of a ~1 KB row):
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
		name string
		run  func([]byte) error
	}{
		{"Decode", func(body []byte) error { _, err := Decode(body); return err }},
		{"json.Valid_baseline", func(body []byte) error {
			if !json.Valid(body) {
				return errors.New("invalid JSON")
			}
			return nil
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.run(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
