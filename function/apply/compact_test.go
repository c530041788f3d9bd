package apply_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/function/apply"
	"github.com/cloudsql-cache/cloudsql-cache/function/push"
)

// compactMessages are the real Debezium messages of one format in testdata/debezium/compact: two
// Debezium Servers, one per format, read the same database through the same snapshot and changes
// (local/debeziumserver TestCompactFormat).
func compactMessages(t *testing.T, format string) []realMessage {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "debezium", "compact", format)
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

// changeIdentity is what one change is, whatever its form: its topic, key and position. It pairs a
// full message with its compact counterpart; the representation is what the test compares.
func changeIdentity(t *testing.T, m realMessage) string {
	t.Helper()
	ev, err := debezium.Decode(m.Data)
	if err != nil {
		t.Fatalf("%s: %v", m.File, err)
	}
	id := fmt.Sprintf("%s|%s|%s|%v|%s", m.Step, m.Topic, m.Key, ev.Kind, ev.Op)
	switch ev.Kind {
	case debezium.Change:
		var order uint64
		if ev.Transaction != nil {
			order = ev.Transaction.TotalOrder
		}
		id += fmt.Sprintf("|%d/%d/%d/%d", ev.Source.FileSeq, ev.Source.Pos, ev.Source.Row, order)
	case debezium.SchemaChange:
		id += "|" + ev.Schema.DDL
	}
	return id
}

// TestCompactFormatIsEquivalent replays real Debezium output of the same changes in both formats, the
// compact messages in the order of their full counterparts, each format against its own Redis: every
// message must end in the same outcome, reason, key and version, and the two Redis must hold the same
// keys with the same values.
func TestCompactFormatIsEquivalent(t *testing.T) {
	full, compact := compactMessages(t, "full"), compactMessages(t, "compact")
	if len(full) != len(compact) {
		t.Fatalf("%d full messages, %d compact", len(full), len(compact))
	}
	byID := map[string][]realMessage{}
	transformed := 0
	for _, m := range compact {
		id := changeIdentity(t, m)
		byID[id] = append(byID[id], m)
		if strings.Contains(string(m.Data), `"__op":`) {
			transformed++
		}
	}
	if transformed == 0 {
		t.Fatal("no message in the compact fixtures is in the compact form")
	}
	a, b := newEnv(t), newEnv(t)
	ctx := context.Background()
	outcomes := map[string]int{}
	for i, fm := range full {
		id := changeIdentity(t, fm)
		if len(byID[id]) == 0 {
			t.Fatalf("%s (%s) has no compact counterpart", fm.File, id)
		}
		cm := byID[id][0]
		byID[id] = byID[id][1:]
		ra := a.h.Handle(ctx, &push.Message{ID: fmt.Sprint(i), Data: fm.Data, OrderingKey: fm.Key})
		rb := b.h.Handle(ctx, &push.Message{ID: fmt.Sprint(i), Data: cm.Data, OrderingKey: cm.Key})
		if same(ra) != same(rb) {
			t.Errorf("%s: full %s, compact %s (%s): %s", fm.File, same(ra), same(rb), cm.File, cm.Data)
		}
		outcomes[string(ra.Outcome)+"/"+ra.Reason+"/"+ra.Op]++
	}
	t.Logf("outcomes (outcome/reason/op: count): %v", outcomes)
	for _, want := range []string{"applied//c", "applied//u", "applied//d", "applied//r", "applied//t"} {
		if outcomes[want] == 0 {
			t.Errorf("no %s outcome: the fixtures do not exercise it", want)
		}
	}
	da, db := redisContents(t, a.rdb), redisContents(t, b.rdb)
	if len(da) == 0 {
		t.Fatal("nothing in Redis")
	}
	for k, v := range da {
		if db[k] != v {
			t.Errorf("key %s: full stored %s, compact %s", k, v, db[k])
		}
	}
	for k, v := range db {
		if _, ok := da[k]; !ok {
			t.Errorf("key %s only after the compact format: %s", k, v)
		}
	}
}

func same(r apply.Result) string {
	return fmt.Sprintf("%s/%s table=%s op=%s key=%s version=%s", r.Outcome, r.Reason, r.Table, r.Op, r.Key, r.Version)
}

// redisContents is every key of a Redis with its type and value (and whether it expires).
func redisContents(t *testing.T, rdb redis.UniversalClient) map[string]string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, k := range keys {
		typ, err := rdb.Type(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		var v any
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, k).Result()
		case "set":
			var s []string
			s, err = rdb.SMembers(ctx, k).Result()
			sort.Strings(s)
			v = s
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "list":
			v, err = rdb.LRange(ctx, k, 0, -1).Result()
		default:
			v = "<" + typ + ">"
		}
		if err != nil {
			t.Fatal(err)
		}
		ttl, err := rdb.TTL(ctx, k).Result()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = fmt.Sprintf("%s %v expires=%v", typ, v, ttl > 0)
	}
	return out
}
