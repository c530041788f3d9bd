package debezium

import (
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

// BenchmarkDecode compares Decode with the json.Unmarshal-based decoder it replaced, in the same run:
//
//	go test ./debezium -run '^$' -bench Decode -count 5
func BenchmarkDecode(b *testing.B) {
	data := benchEvent()
	for _, bc := range []struct {
		name   string
		decode func([]byte) (*Event, error)
	}{{"jsonscan", Decode}, {"json.Unmarshal_before", referenceDecode}} {
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.decode(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
