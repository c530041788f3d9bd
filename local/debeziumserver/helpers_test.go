package debeziumserver_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2/pstest"

	"github.com/cloudsql-cache/cloudsql-cache/internal/mariadbserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/debeziumserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/pubsubemu"
)

// stack is a MariaDB, the Pub/Sub emulator and the configuration of a Debezium Server between them.
type stack struct {
	t     *testing.T
	mysql *mariadbserver.TestServer
	root  *sql.DB
	emu   *pubsubemu.Emulator
	cfg   debeziumserver.Config
}

// fetchTimes records how long getting the distribution took in this test binary, for the report.
var fetchTime time.Duration

func newStack(t *testing.T, tables []string, env map[string]string, props map[string]string) *stack {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	dist, err := debeziumserver.Fetch(ctx, debeziumserver.FetchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if fetchTime == 0 {
		fetchTime = time.Since(start)
		t.Logf("Fetch (cache %s): %v", dist.Home, fetchTime)
	}
	java, err := debeziumserver.FindJava(os.Getenv)
	if err != nil {
		t.Fatal(err)
	}
	s := &stack{t: t, mysql: mariadbserver.StartForTest(t, mariadbserver.Options{})}
	s.root = s.mysql.DB("")
	host, port := splitAddr(t, s.mysql.Addr())
	db := debeziumserver.DB{Host: host, Port: port, User: "debezium", Password: "dbz-local-pw", ServerID: 5501, StateDatabase: "debezium_state"}
	if err := debeziumserver.PrepareDatabase(ctx, s.root, db); err != nil {
		t.Fatal(err)
	}
	s.emu, err = pubsubemu.Start(ctx, pubsubemu.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.emu.Close)
	s.cfg = debeziumserver.Config{
		Dist: dist, Java: java, ConfigDir: filepath.Join("..", "..", "debezium-server"), RunDir: t.TempDir(),
		DB: db, TopicPrefix: "local", Tables: tables,
		PubSub: debeziumserver.PubSub{Project: s.emu.Project(), EmulatorAddr: s.emu.Addr()},
		Env:    env, Properties: props,
	}
	abs, err := filepath.Abs(s.cfg.ConfigDir)
	if err != nil {
		t.Fatal(err)
	}
	s.cfg.ConfigDir = abs
	topics, err := s.cfg.Topics()
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range topics {
		if err := s.emu.EnsureTopic(ctx, topic); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func splitAddr(t *testing.T, addr string) (string, int) {
	i := strings.LastIndexByte(addr, ':')
	p, err := strconv.Atoi(addr[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	return addr[:i], p
}

// start starts Debezium Server and stops it (SIGTERM) when the test ends; on failure the test log gets
// the end of its log.
func (s *stack) start() *debeziumserver.Server {
	s.t.Helper()
	srv, err := debeziumserver.Start(context.Background(), s.cfg)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			s.t.Error(err)
		}
		if s.t.Failed() {
			s.t.Logf("the end of the Debezium Server log:\n%s", srv.LogTail(80))
		}
	})
	return srv
}

// message is a published message with its data decoded.
type message struct {
	ID    int
	Topic string // topic id
	Key   string // ordering key
	Attrs map[string]string
	Data  []byte
	Event map[string]any // Data as JSON, nil if it is not an object
}

func (m message) op() string { s, _ := m.Event["op"].(string); return s }

func (m message) source() map[string]any { s, _ := m.Event["source"].(map[string]any); return s }

func (m message) image(name string) map[string]any { r, _ := m.Event[name].(map[string]any); return r }

// messages are the emulator's messages on topic (every topic for ""), in publish order.
func (s *stack) messages(topic string) []message {
	var out []message
	for _, m := range s.emu.Messages() {
		id := m.Topic[strings.LastIndexByte(m.Topic, '/')+1:]
		if topic != "" && id != topic {
			continue
		}
		out = append(out, decodeMessage(s.t, id, m))
	}
	sort.Slice(out, func(a, b int) bool { return out[a].ID < out[b].ID })
	return out
}

func decodeMessage(t *testing.T, topic string, m *pstest.Message) message {
	n, err := strconv.Atoi(strings.TrimPrefix(m.ID, "m"))
	if err != nil {
		t.Fatalf("pstest message id %q", m.ID)
	}
	out := message{ID: n, Topic: topic, Key: m.OrderingKey, Attrs: m.Attributes, Data: m.Data}
	var ev map[string]any
	if json.Unmarshal(m.Data, &ev) == nil {
		out.Event = ev
	}
	return out
}

// waitMessages waits until topic has at least n messages and returns them all.
func (s *stack) waitMessages(topic string, n int, within time.Duration) []message {
	s.t.Helper()
	deadline := time.Now().Add(within)
	for {
		got := s.messages(topic)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s: %d messages after %v, want %d:\n%s", topic, len(got), within, n, dump(got))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func dump(ms []message) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "  %s key=%s attrs=%v %s\n", m.Topic, m.Key, m.Attrs, m.Data)
	}
	return b.String()
}

func (s *stack) exec(db *sql.DB, stmts ...string) {
	s.t.Helper()
	s.mysql.Exec(db, stmts...)
}
