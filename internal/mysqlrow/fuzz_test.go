package mysqlrow_test

import (
	"encoding/json"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mysqlrow"
)

var fuzzColumns = []mysqlrow.Column{
	{Name: "i", DataType: "int"}, {Name: "u", DataType: "bigint", Unsigned: true}, {Name: "d", DataType: "decimal", Scale: 2},
	{Name: "f", DataType: "float"}, {Name: "g", DataType: "double"}, {Name: "dt", DataType: "datetime", FSP: 6},
	{Name: "dt3", DataType: "datetime", FSP: 3}, {Name: "ts", DataType: "timestamp", FSP: 3}, {Name: "da", DataType: "date"},
	{Name: "t", DataType: "time", FSP: 6}, {Name: "b", DataType: "bit", Length: 10}, {Name: "b1", DataType: "bit", Length: 1},
	{Name: "bin", DataType: "binary", Length: 4}, {Name: "js", DataType: "json"}, {Name: "s", DataType: "varchar"},
	{Name: "e", DataType: "enum", Members: []string{"a", "b"}}, {Name: "st", DataType: "set", Members: []string{"a", "b"}},
}

// FuzzFromText: any bytes in any column give valid JSON or an error, never a panic.
func FuzzFromText(f *testing.F) {
	for _, s := range []string{"12", "-1", "18446744073709551615", "1.5", "1e400", "2024-01-02 03:04:05.123456", "0000-00-00", "-838:59:59.5", "\xff\x00", `{"a":1}`, "a,b", ""} {
		f.Add(s, uint8(0))
	}
	f.Fuzz(func(t *testing.T, s string, which uint8) {
		c := fuzzColumns[int(which)%len(fuzzColumns)]
		out, err := c.FromText([]byte(s), false)
		if err == nil && !json.Valid(out) {
			t.Fatalf("%s %q: invalid JSON %s", c.DataType, s, out)
		}
	})
}
