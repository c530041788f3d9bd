package hotrowbench

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

// The benchmark's updates are the recorded Debezium event with only __pos advanced: each decodes as a
// compact update of the same row at a newer position, so every one is a newer version.
func TestEventsAreTheFixtureAtNewerPositions(t *testing.T) {
	tmpl, err := os.ReadFile(filepath.Join("..", "..", Fixture))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := newEvents(tmpl)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(tmpl, &want); err != nil {
		t.Fatal(err)
	}
	base := int64(want["__pos"].(float64))
	for i := int64(1); i <= 3; i++ {
		data, pos := ev.next()
		if pos != base+i {
			t.Fatalf("position %d, want %d", pos, base+i)
		}
		if p, ok := posOf(data); !ok || p != pos {
			t.Fatalf("posOf = %d, %v; want %d", p, ok, pos)
		}
		var got map[string]any
		if err := json.Unmarshal(data, &got); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		want["__pos"] = float64(pos)
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(want)
		if !bytes.Equal(a, b) {
			t.Fatalf("event %d differs from the fixture beyond __pos:\n got  %s\n want %s", i, a, b)
		}
		e, err := debezium.Decode(data)
		if err != nil || e.Op != debezium.Update || e.Source.Pos != uint64(pos) {
			t.Fatalf("decoded %+v, %v: want an update at position %d", e, err, pos)
		}
	}
	if _, err := newEvents([]byte(`{"before":null,"after":{"id":1}}`)); err == nil {
		t.Error("a template without __pos was accepted")
	}
}
