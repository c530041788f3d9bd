package debezium

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// benchEvent is an update of a ~1 KB row, both images present, as Debezium Server publishes it
// without schemas: the apply function's common case.
func benchEvent() []byte {
	row := fmt.Sprintf(`{"id":42,"email":"user42@example.com","name":"User 42","balance":"1234.56","created_at":1700000000000000,"updated_at":1700000000123456,"bio":%q}`,
		strings.Repeat("lorem ipsum dolor sit amet ", 32))
	return []byte(fmt.Sprintf(`{"before":%s,"after":%s,"source":{"version":"3.6.1.Final","connector":"mysql","name":"bench","ts_ms":1700000000123,"snapshot":"false","db":"shop","table":"customers","server_id":1,"gtid":null,"file":"mysql-bin.000007","pos":1234567,"row":0,"thread":7,"query":null},"op":"u","ts_ms":1700000000200}`, row, row))
}

// BenchmarkDecode measures Decode beside json.Valid on the same event, in the same run: one pass of
// encoding/json's scanner, the least any decoder built on it costs.
//
//	go test ./debezium -run '^$' -bench Decode -count 5
func BenchmarkDecode(b *testing.B) {
	data := benchEvent()
	for _, bc := range []struct {
		name string
		run  func([]byte) error
	}{
		{"Decode", func(data []byte) error { _, err := Decode(data); return err }},
		{"json.Valid_baseline", func(data []byte) error {
			if !json.Valid(data) {
				return errors.New("invalid JSON")
			}
			return nil
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if err := bc.run(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
