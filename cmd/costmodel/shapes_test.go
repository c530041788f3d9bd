package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
)

// TestShapesMatchFixtures: measuredShapes are what the real Debezium output in testdata/debezium/compact
// weighs, op by op and format by format, for the ~1 KB-row table: recapture the fixtures and this
// fails until the shapes are updated.
func TestShapesMatchFixtures(t *testing.T) {
	for format, shapes := range measuredShapes {
		dir := filepath.Join("..", "..", "testdata", "debezium", "compact", format)
		raw, err := os.ReadFile(filepath.Join(dir, "messages.json"))
		if err != nil {
			t.Fatal(err)
		}
		var m struct {
			Messages []struct {
				File  string `json:"file"`
				Topic string `json:"topic"`
				Bytes struct {
					Key        int `json:"ordering_key"`
					Data       int `json:"data"`
					Attributes int `json:"attributes"`
				} `json:"bytes"`
			} `json:"messages"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		seen := map[byte]bool{}
		for _, msg := range m.Messages {
			if !strings.HasSuffix(msg.Topic, ".wide") {
				continue
			}
			data, err := os.ReadFile(filepath.Join(dir, msg.File))
			if err != nil {
				t.Fatal(err)
			}
			ev, err := debezium.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			img := ev.After
			if img == nil {
				img = ev.Before
			}
			row := float64(len(img.AppendJSON(nil, nil)))
			wire := float64(msg.Bytes.Key + msg.Bytes.Data + msg.Bytes.Attributes)
			op := byte(ev.Op)
			if got := shapes[op].Bytes(row); got != wire {
				t.Errorf("%s %s (%c): the shape gives %v B for a %v B row, the fixture weighs %v B", format, msg.File, op, got, row, wire)
			}
			seen[op] = true
		}
		for op := range shapes {
			if !seen[op] {
				t.Errorf("%s: no fixture of op %c on the wide table", format, op)
			}
		}
	}
}

func TestParseOpMix(t *testing.T) {
	m, err := ParseOpMix("u=0.7, c=0.2,d=0.1")
	if err != nil || m['u'] != 0.7 || m['c'] != 0.2 || m['d'] != 0.1 || len(m) != 3 {
		t.Fatalf("%v %v", m, err)
	}
	for _, bad := range []string{"", "u", "u=2", "x=1", "u=0.3,c=0.3", "u=-1,c=2", "uu=1"} {
		if _, err := ParseOpMix(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
