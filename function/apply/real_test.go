package apply_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	"github.com/cloudsql-cache/cloudsql-cache/function/apply"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// realMessage is one message real Debezium Server 3.6.1 published (testdata/debezium/real): its data
// byte for byte, the topic and the ordering key it was published with.
type realMessage struct {
	File, Step, Topic, Key string
	Data                   []byte
}

func realMessages(t *testing.T) []realMessage {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "debezium", "real")
	raw, err := os.ReadFile(filepath.Join(dir, "messages.json"))
	if err != nil {
		t.Fatal(err)
	}
	var manifest struct {
		Messages []struct {
			File        string `json:"file"`
			Step        string `json:"step"`
			Topic       string `json:"topic"`
			OrderingKey string `json:"ordering_key"`
		} `json:"messages"`
	}
	if err := json.Unmarshal(raw, &manifest); err != nil {
		t.Fatal(err)
	}
	var out []realMessage
	for _, m := range manifest.Messages {
		data, err := os.ReadFile(filepath.Join(dir, m.File))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, realMessage{File: m.File, Step: m.Step, Topic: m.Topic, Key: m.OrderingKey, Data: data})
	}
	return out
}

// pick returns the real messages of step on topics ending in topic ("" for any) whose data contains
// every one of has.
func pick(t *testing.T, all []realMessage, step, topic string, has ...string) []realMessage {
	t.Helper()
	var out []realMessage
next:
	for _, m := range all {
		if m.Step != step || !strings.HasSuffix(m.Topic, topic) {
			continue
		}
		for _, h := range has {
			if !strings.Contains(string(m.Data), h) {
				continue next
			}
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		t.Fatalf("no real message of step %s on %s with %q", step, topic, has)
	}
	return out
}

// one is pick for exactly one message.
func one(t *testing.T, all []realMessage, step, topic string, has ...string) realMessage {
	t.Helper()
	ms := pick(t, all, step, topic, has...)
	if len(ms) != 1 {
		t.Fatalf("%d real messages of step %s on %s with %q, want 1", len(ms), step, topic, has)
	}
	return ms[0]
}

// without returns ms minus the messages in drop.
func without(ms []realMessage, drop ...realMessage) []realMessage {
	var out []realMessage
	for _, m := range ms {
		keep := true
		for _, d := range drop {
			if d.File == m.File {
				keep = false
			}
		}
		if keep {
			out = append(out, m)
		}
	}
	return out
}

// withSnapshotMarker rewrites a real message's source.snapshot marker.
func withSnapshotMarker(m realMessage, marker string) realMessage {
	var ev map[string]any
	_ = json.Unmarshal(m.Data, &ev)
	old := ev["source"].(map[string]any)["snapshot"].(string)
	m.Data = []byte(strings.Replace(string(m.Data), `"snapshot":"`+old+`"`, `"snapshot":"`+marker+`"`, 1))
	m.File += "~" + marker
	return m
}

func (e *env) deliverReal(m realMessage) (int, string) {
	e.t.Helper()
	return e.deliver(m.Data, m.Key)
}

func (e *env) mustDeliverReal(m realMessage, want string) {
	e.t.Helper()
	code, body := e.deliverReal(m)
	if code != 200 || (want != "" && body != want) {
		e.t.Fatalf("%s: %d %q, want 200 %q", m.File, code, body, want)
	}
}

// withEpoch returns an env whose handler runs with CACHE_VERSION_EPOCH=epoch on the same Redis (a
// function deployed with a raised epoch after a restore).
func (e *env) withEpoch(epoch uint64) *env {
	e.t.Helper()
	p, err := tablepolicy.New(tablepolicy.Config{Epoch: epoch})
	if err != nil {
		e.t.Fatal(err)
	}
	n := &env{t: e.t, redis: e.redis, rdb: e.rdb, reader: sdkmetric.NewManualReader()}
	n.h, err = apply.New(apply.Options{
		Store:         rowcache.NewStore(e.rdb, time.Hour),
		Policy:        p,
		DeadLetter:    n.deadLetterTopic(),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(n.reader)),
		Timeout:       2 * time.Second,
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}
