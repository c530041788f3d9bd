package apply_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/cloudsql-cache/cloudsql-cache/function/apply"
	"github.com/cloudsql-cache/cloudsql-cache/function/push"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// env is one handler wired to a real redis-server, a metrics reader, and optionally a pstest
// dead-letter topic.
type env struct {
	t      *testing.T
	redis  *redisserver.TestServer
	rdb    *redis.Client
	h      *apply.Handler
	reader *sdkmetric.ManualReader
	ps     *pstest.Server
	seq    atomic.Int64
}

type envOpt func(*tablepolicy.Config, *apply.Options)

func newEnv(t *testing.T, opts ...envOpt) *env {
	t.Helper()
	e := &env{t: t, redis: redisserver.StartForTest(t, redisserver.Options{})}
	e.rdb = e.redis.Client()
	cfg := tablepolicy.Config{}
	e.reader = sdkmetric.NewManualReader()
	o := apply.Options{
		Store:         rowcache.NewStore(redis.NewClient(&redis.Options{Addr: e.redis.Addr(), ReadTimeout: 5 * time.Second, WriteTimeout: 5 * time.Second, DialTimeout: 5 * time.Second, MaxRetries: -1}), time.Hour),
		MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(e.reader)),
		Timeout:       2 * time.Second,
	}
	for _, f := range opts {
		f(&cfg, &o)
	}
	p, err := tablepolicy.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o.Policy = p
	if o.DeadLetter == nil {
		o.DeadLetter = e.deadLetterTopic()
	}
	e.h, err = apply.New(o)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func withPolicy(f func(*tablepolicy.Config)) envOpt {
	return func(c *tablepolicy.Config, _ *apply.Options) { f(c) }
}

const dlqTopic = "projects/p/topics/cache-dead-letter"

func (e *env) deadLetterTopic() apply.DeadLetterer {
	e.ps = pstest.NewServer()
	e.t.Cleanup(func() { _ = e.ps.Close() })
	conn, err := grpc.NewClient(e.ps.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		e.t.Fatal(err)
	}
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, "p", option.WithGRPCConn(conn))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = client.Close() })
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: dlqTopic}); err != nil {
		e.t.Fatal(err)
	}
	pub := client.Publisher(dlqTopic)
	pub.PublishSettings.DelayThreshold = time.Millisecond
	e.t.Cleanup(pub.Stop)
	return apply.NewPubSubDeadLetter(pub)
}

// deliver posts one push envelope and returns the status and body.
func (e *env) deliver(data []byte, orderingKey string) (int, string) {
	e.t.Helper()
	m := &push.Message{
		ID:           fmt.Sprint(e.seq.Add(1)),
		Data:         data,
		OrderingKey:  orderingKey,
		PublishTime:  time.Now(),
		Subscription: "projects/p/subscriptions/cache",
	}
	body, err := push.Encode(m)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.post(body)
}

func (e *env) post(body []byte) (int, string) {
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body)))
	return rec.Code, strings.TrimSpace(rec.Body.String())
}

func (e *env) mustDeliver(data []byte, key string, want string) {
	e.t.Helper()
	code, body := e.deliver(data, key)
	if code != http.StatusOK || body != want {
		e.t.Fatalf("delivery of %s: %d %q, want 200 %q", truncate(string(data)), code, body, want)
	}
}

// get returns the cached row JSON, "<deleted>" for a tombstone, or "" when absent.
func (e *env) get(key string) string {
	e.t.Helper()
	en, found, err := rowcache.Get(context.Background(), e.rdb, key)
	if err != nil {
		e.t.Fatal(err)
	}
	switch {
	case !found:
		return ""
	case en.Deleted():
		return "<deleted>"
	}
	return string(en.Row)
}

// counts sums the event counter by outcome (and reason, as "outcome/reason").
func (e *env) counts() map[string]int64 {
	e.t.Helper()
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(context.Background(), &rm); err != nil {
		e.t.Fatal(err)
	}
	out := map[string]int64{}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name != "cloudsql_cache.events" {
				continue
			}
			for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
				o, _ := dp.Attributes.Value("outcome")
				r, _ := dp.Attributes.Value("reason")
				out[o.AsString()] += dp.Value
				if r.AsString() != "" {
					out[o.AsString()+"/"+r.AsString()] += dp.Value
				}
			}
		}
	}
	return out
}

// event builds a schemaless Debezium MySQL event.
func event(db, table string, op byte, file uint64, pos, row uint64, before, after string) []byte {
	img := func(s string) string {
		if s == "" {
			return "null"
		}
		return s
	}
	return []byte(fmt.Sprintf(`{"before":%s,"after":%s,"source":{"version":"3.6.1.Final","connector":"mysql","name":"srv","ts_ms":1700000000000,"snapshot":"false","db":%q,"table":%q,"server_id":1,"gtid":null,"file":"mysql-bin.%06d","pos":%d,"row":%d,"thread":7,"query":null},"op":"%c","ts_ms":1700000000100}`,
		img(before), img(after), db, table, file, pos, row, op))
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "testdata", "debezium", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func truncate(s string) string {
	if len(s) > 120 {
		return s[:120] + "…"
	}
	return s
}

func TestFixturesThroughTheHandler(t *testing.T) {
	e := newEnv(t)
	const key = "inventory.customers:1004"
	e.mustDeliver(fixture(t, "mysql-create-schema-docs.json"), `{"id":1004}`, "applied")
	if got := e.get(key); got != `{"id":1004,"first_name":"Anne","last_name":"Kretchmar","email":"annek@noanswer.org"}` {
		t.Fatalf("after create: %s", got)
	}
	e.mustDeliver(fixture(t, "mysql-create-noschema-serde-testfixture.json"), string(fixture(t, "mysql-key-schema-tutorial-docs.json")), "duplicate")
	e.mustDeliver(fixture(t, "mysql-update-noschema-docs.json"), `{"id":1004}`, "applied")
	if got := e.get(key); !strings.Contains(got, `"Anne Marie"`) {
		t.Fatalf("after update: %s", got)
	}
	// The serde fixture's update sits at position 154, before the docs update at 484: stale.
	e.mustDeliver(fixture(t, "mysql-update-noschema-serde-testfixture.json"), `{"id":1004}`, "stale")
	e.mustDeliver(fixture(t, "mysql-delete-noschema-docs.json"), `{"id":1004}`, "applied")
	if got := e.get(key); got != "<deleted>" {
		t.Fatalf("after delete: %s", got)
	}
	// The create (pos 154) replayed after the delete (pos 805) must not resurrect the row.
	e.mustDeliver(fixture(t, "mysql-create-schema-serde-testfixture.json"), `{"id":1004}`, "stale")
	if got := e.get(key); got != "<deleted>" {
		t.Fatalf("late create resurrected the row: %s", got)
	}
	for _, f := range []string{"mysql-transaction-begin-docs.json", "mysql-transaction-end-docs.json", "crafted-heartbeat-schema.json"} {
		code, body := e.deliver(fixture(t, f), "")
		if code != 200 || !strings.HasPrefix(body, "ignored: ") {
			t.Fatalf("%s: %d %q", f, code, body)
		}
	}
	e.mustDeliver(nil, `{"id":1004}`, "ignored: tombstone")
	// The truncate fixture is at pos 484, before the delete at 805: the table's rows written before it
	// are swept, and the tombstone (newer) stays.
	e.mustDeliver(fixture(t, "mysql-truncate-noschema-docs.json"), "default", "applied")
	// The schema change (pos 570) adds a column: the table's rows are swept as a truncate would, the
	// newer tombstone (805) stays.
	e.mustDeliver(fixture(t, "mysql-schema-change-value-docs.json"), `{"databaseName":"inventory"}`, "applied: ddl_sweep")
	if got := e.get(key); got != "<deleted>" {
		t.Fatalf("after the schema change: %s", got)
	}
	e.mustDeliver(fixture(t, "crafted-decimal-schema.json"), `{"id":7}`, "applied")
	if got := e.get("shop.orders:7"); got != `{"id":7,"total":"12.34","big":"18446744073709551615","updated_at":1700000000123456}` {
		t.Fatalf("decimal row: %s", got)
	}
	c := e.counts()
	want := map[string]int64{"applied": 6, "duplicate": 1, "stale": 2, "ignored": 4,
		"applied/ddl_sweep": 1, "ignored/transaction": 2, "ignored/heartbeat": 1, "ignored/tombstone": 1}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("count %s = %d, want %d (all: %v)", k, c[k], v, c)
		}
	}
}

func TestSnapshotThenStream(t *testing.T) {
	e := newEnv(t)
	snap := func(id int, name string) []byte {
		b := event("app", "users", 'r', 5, 1000, 0, "", fmt.Sprintf(`{"id":%d,"name":%q}`, id, name))
		return bytes.Replace(b, []byte(`"snapshot":"false"`), []byte(`"snapshot":"true"`), 1)
	}
	e.mustDeliver(snap(1, "snap"), `{"id":1}`, "applied")
	e.mustDeliver(event("app", "users", 'u', 5, 1200, 0, `{"id":1,"name":"snap"}`, `{"id":1,"name":"stream"}`), `{"id":1}`, "applied")
	// Debezium restarted and re-snapshotted from an older offset: the snapshot row is replayed.
	e.mustDeliver(snap(1, "snap"), `{"id":1}`, "stale")
	if got := e.get("app.users:1"); got != `{"id":1,"name":"stream"}` {
		t.Fatalf("got %s", got)
	}
	// A later snapshot (after binlog purge, at a newer position) wins over older streaming changes.
	e.mustDeliver(bytes.Replace(snap(1, "resnap"), []byte(`"file":"mysql-bin.000005"`), []byte(`"file":"mysql-bin.000006"`), 1), `{"id":1}`, "applied")
	if got := e.get("app.users:1"); got != `{"id":1,"name":"resnap"}` {
		t.Fatalf("got %s", got)
	}
}

func TestCompositeKeysAndExcludedColumns(t *testing.T) {
	e := newEnv(t, withPolicy(func(c *tablepolicy.Config) {
		c.ExcludeColumns = []string{"app.line_items.secret"}
		c.KeyTemplates = map[string]string{"app.orders": "order:{tenant}:{id}"}
	}))
	e.mustDeliver(event("app", "line_items", 'c', 1, 10, 0, "", `{"order_id":"a:b","line":2,"secret":"x","qty":1}`), `{"order_id":"a:b","line":2}`, "applied")
	e.mustDeliver(event("app", "line_items", 'c', 1, 10, 1, "", `{"order_id":"a","line":"b:2","secret":"y","qty":2}`), `{"order_id":"a","line":"b:2"}`, "applied")
	if got := e.get("app.line_items:a%3Ab:2"); got != `{"order_id":"a:b","line":2,"qty":1}` {
		t.Fatalf("first row: %s", got)
	}
	if got := e.get("app.line_items:a:b%3A2"); got != `{"order_id":"a","line":"b:2","qty":2}` {
		t.Fatalf("second row: %s", got)
	}
	e.mustDeliver(event("app", "orders", 'c', 1, 11, 0, "", `{"tenant":"acme","id":5}`), `{"tenant":"acme","id":5}`, "applied")
	if got := e.get("order:acme:5"); got == "" {
		t.Fatal("custom template key not written")
	}
}

func TestIncludeList(t *testing.T) {
	e := newEnv(t, withPolicy(func(c *tablepolicy.Config) { c.Tables = []string{"app.users"} }))
	e.mustDeliver(event("app", "audit", 'c', 1, 10, 0, "", `{"id":1}`), `{"id":1}`, "ignored: table_not_cached")
	if n := e.rdb.DBSize(context.Background()).Val(); n != 0 {
		t.Fatalf("%d keys written for an excluded table", n)
	}
}

func TestTruncateCannotDeleteLaterRows(t *testing.T) {
	e := newEnv(t)
	for i := 1; i <= 50; i++ {
		e.mustDeliver(event("app", "t", 'c', 1, uint64(100+i), 0, "", fmt.Sprintf(`{"id":%d}`, i)), fmt.Sprintf(`{"id":%d}`, i), "applied")
	}
	// Row 51 was inserted after the TRUNCATE (pos 500) but, having another ordering key, arrives first.
	e.mustDeliver(event("app", "t", 'c', 1, 600, 0, "", `{"id":51}`), `{"id":51}`, "applied")
	trunc := []byte(`{"source":{"version":"3.6.1.Final","connector":"mysql","name":"srv","ts_ms":1,"snapshot":"false","db":"app","table":"t","server_id":1,"file":"mysql-bin.000001","pos":500,"row":0},"op":"t","ts_ms":2}`)
	e.mustDeliver(trunc, "default", "applied")
	// A pre-truncate update of row 3, redelivered late.
	e.mustDeliver(event("app", "t", 'u', 1, 300, 0, `{"id":3}`, `{"id":3,"v":"late"}`), `{"id":3}`, "stale: truncated")
	for i := 1; i <= 50; i++ {
		if got := e.get(fmt.Sprintf("app.t:%d", i)); got != "" {
			t.Fatalf("row %d survived the truncate: %s", i, got)
		}
	}
	if got := e.get("app.t:51"); got != `{"id":51}` {
		t.Fatalf("row inserted after the truncate: %q", got)
	}
	e.mustDeliver(trunc, "default", "duplicate")
}

func TestEpochChange(t *testing.T) {
	e := newEnv(t)
	e.mustDeliver(event("app", "t", 'c', 900, 9000, 0, "", `{"id":1,"v":"old server"}`), `{"id":1}`, "applied")
	// The database was restored: the new server's binlog restarts at file 1. Without a new epoch its
	// changes look older than what is cached.
	restored := event("app", "t", 'r', 1, 4, 0, "", `{"id":1,"v":"restored"}`)
	e.mustDeliver(restored, `{"id":1}`, "stale")
	p, err := tablepolicy.New(tablepolicy.Config{Epoch: 1})
	if err != nil {
		t.Fatal(err)
	}
	h2, err := apply.New(apply.Options{Store: rowcache.NewStore(e.rdb, time.Hour), Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	e.h = h2
	e.mustDeliver(restored, `{"id":1}`, "applied")
	if got := e.get("app.t:1"); got != `{"id":1,"v":"restored"}` {
		t.Fatalf("got %s", got)
	}
}

func TestRedisDownGivesQuickRetryThenRecovers(t *testing.T) {
	e := newEnv(t)
	e.mustDeliver(event("app", "t", 'c', 1, 10, 0, "", `{"id":1}`), `{"id":1}`, "applied")
	e.redis.Kill()
	start := time.Now()
	code, body := e.deliver(event("app", "t", 'u', 1, 20, 0, `{"id":1}`, `{"id":1,"v":2}`), `{"id":1}`)
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "retry: ") {
		t.Fatalf("with Redis down: %d %q", code, body)
	}
	// The bound is the handler's own timeout (2s here), not the push deadline (up to 10 minutes).
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("answer took %v with Redis down", d)
	}
	e.redis.Restart() // data gone, as after a crash of an instance without persistence
	e.mustDeliver(event("app", "t", 'u', 1, 20, 0, `{"id":1}`, `{"id":1,"v":2}`), `{"id":1}`, "applied")
	if got := e.get("app.t:1"); got != `{"id":1,"v":2}` {
		t.Fatalf("got %s", got)
	}
	if c := e.counts(); c["retry/redis"] != 1 {
		t.Fatalf("retry count: %v", c)
	}
}

func TestBadMessagesAreDeadLettered(t *testing.T) {
	e := newEnv(t)
	e.rdb.Set(context.Background(), "app.t:9", "someone else's value", 0)
	bad := []struct {
		name, data, key, reason string
	}{
		{"not json", `{{{`, `{"id":1}`, "decode"},
		{"unknown op", strings.Replace(string(event("app", "t", 'c', 1, 1, 0, "", `{"id":1}`)), `"op":"c"`, `"op":"z"`, 1), `{"id":1}`, "decode"},
		{"no key (table without primary key)", string(event("app", "t", 'c', 1, 1, 0, "", `{"id":1}`)), "default", "key"},
		{"key does not match row", string(event("app", "t", 'c', 1, 1, 0, "", `{"id":1}`)), `{"id":2}`, "key"},
		{"foreign value", string(event("app", "t", 'c', 1, 1, 0, "", `{"id":9}`)), `{"id":9}`, "foreign_value"},
	}
	for _, b := range bad {
		code, body := e.deliver([]byte(b.data), b.key)
		if code != 200 || body != "dead_lettered: "+b.reason {
			t.Fatalf("%s: %d %q", b.name, code, body)
		}
	}
	msgs := e.ps.Messages()
	if len(msgs) != len(bad) {
		t.Fatalf("%d messages on the dead-letter topic, want %d", len(msgs), len(bad))
	}
	for i, m := range msgs {
		if string(m.Data) != bad[i].data {
			t.Errorf("%s: dead-lettered data %q differs from the original", bad[i].name, m.Data)
		}
		if !strings.HasPrefix(m.Attributes[apply.AttrReason], bad[i].reason+": ") || m.Attributes[apply.AttrOrderingKey] != bad[i].key || m.Attributes[apply.AttrMessageID] == "" {
			t.Errorf("%s: attributes %v", bad[i].name, m.Attributes)
		}
	}
	if c := e.counts(); c["dead_lettered"] != int64(len(bad)) {
		t.Fatalf("counts %v", c)
	}
	// The dead-letter topic failing means the message is neither applied nor preserved: retry.
	e.ps.SetAutoPublishResponse(false)
	// A non-retryable error, so the publisher does not wait for more responses from the fake.
	e.ps.AddPublishResponse(nil, status.Error(codes.PermissionDenied, "the function may not publish"))
	code, body := e.deliver([]byte(`{{{`), `{"id":1}`)
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "dead-letter") {
		t.Fatalf("dead-letter publish failure: %d %q", code, body)
	}
}

func TestWithoutDeadLetterTopicBadMessagesAreNacked(t *testing.T) {
	e := newEnv(t)
	p, _ := tablepolicy.New(tablepolicy.Config{})
	e.h, _ = apply.New(apply.Options{Store: rowcache.NewStore(e.rdb, 0), Policy: p})
	code, body := e.deliver([]byte(`{{{`), `{"id":1}`)
	if code != http.StatusBadRequest || !strings.HasPrefix(body, "rejected: decode") {
		t.Fatalf("%d %q", code, body)
	}
}

func TestEnvelopeErrors(t *testing.T) {
	e := newEnv(t, func(_ *tablepolicy.Config, o *apply.Options) { o.MaxBody = 4096 })
	if code, _ := e.post([]byte(`{"op":"c"}`)); code != http.StatusBadRequest {
		t.Fatalf("unwrapped body: %d", code)
	}
	if code, _ := e.post(bytes.Repeat([]byte(" "), 5000)); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("oversized body: %d", code)
	}
	rec := httptest.NewRecorder()
	e.h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Fatalf("GET: %d", rec.Code)
	}
}

// Concurrent deliveries of one key (redeliveries racing the original) through the HTTP handler.
func TestConcurrentDeliveriesThroughHandler(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(e.h)
	defer srv.Close()
	const n = 60
	bodies := make([][]byte, n)
	for i := range bodies {
		after := fmt.Sprintf(`{"id":1,"n":%d}`, i)
		op := byte('u')
		if i%10 == 9 {
			op, after = 'd', ""
		}
		b, _ := push.Encode(&push.Message{ID: fmt.Sprint(i), OrderingKey: `{"id":1}`,
			Data: event("app", "hot", op, 2, uint64(100+i), 0, `{"id":1}`, after)})
		bodies[i] = b
	}
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(seed uint64) {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, seed))
			for _, i := range rng.Perm(n) {
				resp, err := http.Post(srv.URL, "application/json", bytes.NewReader(bodies[i]))
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("status %d", resp.StatusCode)
				}
			}
		}(uint64(w))
	}
	wg.Wait()
	// Message 59, a delete, has the highest position: the row must end deleted.
	if got := e.get("app.hot:1"); got != "<deleted>" {
		t.Fatalf("final %q, want the delete", got)
	}
	c := e.counts()
	if c["applied"]+c["duplicate"]+c["stale"] != 6*n || c["applied"] < 1 {
		t.Fatalf("counts %v", c)
	}
}

// histEvent is one change of a random history.
type histEvent struct {
	key  int
	data []byte
	want string // the cached value after it: the row, or "<deleted>"
}

// The property: whatever the duplication, replay of a key's suffix, reordering within a key and
// interleaving across keys, the cache ends with exactly the newest version of every row.
func TestPropertyRandomHistories(t *testing.T) {
	e := newEnv(t)
	for seed := uint64(1); seed <= 8; seed++ {
		rng := rand.New(rand.NewPCG(seed, 99))
		table := fmt.Sprintf("p%d", seed)
		const keys = 12
		var pos uint64 = 4
		file := uint64(1)
		hist := make([][]histEvent, keys)
		live := make([]bool, keys)
		for step := 0; step < 300; step++ {
			k := rng.IntN(keys)
			pos += uint64(1 + rng.IntN(50))
			if rng.IntN(40) == 0 { // binlog rotation
				file++
				pos = 4
			}
			id := fmt.Sprintf(`{"id":%d}`, k)
			var ev histEvent
			switch {
			case live[k] && rng.IntN(4) == 0:
				ev = histEvent{k, event("app", table, 'd', file, pos, 0, id, ""), "<deleted>"}
				live[k] = false
			default:
				row := fmt.Sprintf(`{"id":%d,"v":%d}`, k, step)
				op := byte('u')
				if !live[k] {
					op = 'c'
				}
				ev = histEvent{k, event("app", table, op, file, pos, uint64(rng.IntN(3)), "", row), row}
				live[k] = true
			}
			hist[k] = append(hist[k], ev)
		}
		// Deliveries: per key the history in order, with duplicates, replays of a suffix and some
		// reordering; keys interleaved at random.
		queues := make([][]histEvent, keys)
		for k, h := range hist {
			for i := 0; i < len(h); i++ {
				queues[k] = append(queues[k], h[i])
				if rng.IntN(6) == 0 {
					queues[k] = append(queues[k], h[i]) // duplicate
				}
				if rng.IntN(15) == 0 && i > 0 {
					from := rng.IntN(i)
					queues[k] = append(queues[k], h[from:i+1]...) // replay of a suffix
				}
				if rng.IntN(10) == 0 && i > 1 {
					queues[k] = append(queues[k], h[rng.IntN(i)]) // an old one, out of order
				}
			}
		}
		for {
			var open []int
			for k := range queues {
				if len(queues[k]) > 0 {
					open = append(open, k)
				}
			}
			if len(open) == 0 {
				break
			}
			k := open[rng.IntN(len(open))]
			ev := queues[k][0]
			queues[k] = queues[k][1:]
			code, body := e.deliver(ev.data, fmt.Sprintf(`{"id":%d}`, ev.key))
			if code != 200 {
				t.Fatalf("seed %d: %d %q", seed, code, body)
			}
		}
		for k, h := range hist {
			if len(h) == 0 {
				continue
			}
			if got, want := e.get(fmt.Sprintf("app.%s:%d", table, k)), h[len(h)-1].want; got != want {
				t.Fatalf("seed %d key %d: cached %q, want %q", seed, k, got, want)
			}
		}
	}
}

func TestMetricsHaveTableAndOp(t *testing.T) {
	e := newEnv(t)
	e.mustDeliver(event("app", "t", 'c', 1, 10, 0, "", `{"id":1}`), `{"id":1}`, "applied")
	var rm metricdata.ResourceMetrics
	if err := e.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	m := rm.ScopeMetrics[0].Metrics[0]
	if m.Name != "cloudsql_cache.events" || m.Unit != "{event}" {
		t.Fatalf("metric %s %s", m.Name, m.Unit)
	}
	dp := m.Data.(metricdata.Sum[int64]).DataPoints[0]
	for k, want := range map[string]string{"table": "app.t", "op": "c", "outcome": "applied"} {
		if v, _ := dp.Attributes.Value(attributeKey(k)); v.AsString() != want {
			t.Errorf("attribute %s = %q, want %q", k, v.AsString(), want)
		}
	}
}

func attributeKey(k string) attribute.Key { return attribute.Key(k) }
