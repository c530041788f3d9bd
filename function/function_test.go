package function_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cloudsql-cache/cloudsql-cache/function"
	"github.com/cloudsql-cache/cloudsql-cache/function/push"
	"github.com/cloudsql-cache/cloudsql-cache/internal/testredis"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

func envFunc(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigFromEnv(t *testing.T) {
	c, err := function.ConfigFromEnv(envFunc(map[string]string{
		"REDIS_ADDR":            "10.0.0.3:6378",
		"DEAD_LETTER_TOPIC":     "projects/p/topics/dl",
		"CACHE_TABLES":          "inventory.customers, inventory.orders",
		"CACHE_EXCLUDE_COLUMNS": "inventory.customers.email",
		"CACHE_KEY_TEMPLATES":   "inventory.orders=order:{id}",
		"CACHE_VERSION_COLUMNS": "inventory.orders=updated_at",
		"CACHE_VERSION_EPOCH":   "3",
		"CACHE_TOMBSTONE_TTL":   "48h",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.Timeout != time.Second || c.ApplyTimeout != 10*time.Second || c.TombstoneTTL != 48*time.Hour ||
		c.Policy.Epoch != 3 || len(c.Policy.Tables) != 2 || c.Policy.KeyTemplates["inventory.orders"] != "order:{id}" ||
		c.Policy.VersionColumns["inventory.orders"] != "updated_at" || c.MaxBodyBytes != push.DefaultMaxBody {
		t.Fatalf("config %+v", c)
	}

	_, err = function.ConfigFromEnv(envFunc(map[string]string{
		"REDIS_TLS":           "yes please",
		"REDIS_TIMEOUT":       "soon",
		"CACHE_VERSION_EPOCH": "-1",
		"CACHE_KEY_TEMPLATES": "inventory.orders",
		"CACHE_TOMBSTONE_TTL": "-5s",
		"MAX_BODY_BYTES":      "12",
		"DEAD_LETTER_TOPIC":   "dl",
		"REDIS_DB":            "x",
	}))
	if err == nil {
		t.Fatal("want an error")
	}
	for _, name := range []string{"REDIS_ADDR", "REDIS_TLS", "REDIS_TIMEOUT", "CACHE_VERSION_EPOCH", "CACHE_KEY_TEMPLATES", "CACHE_TOMBSTONE_TTL", "MAX_BODY_BYTES", "DEAD_LETTER_TOPIC", "REDIS_DB"} {
		if !strings.Contains(err.Error(), name+": ") {
			t.Errorf("error does not name %s:\n%v", name, err)
		}
	}
	_, err = function.ConfigFromEnv(envFunc(map[string]string{"REDIS_ADDR": "r:6379", "DEAD_LETTER_TOPIC": "nack", "CACHE_KEY_TEMPLATE": "{pk}"}))
	if err == nil || !strings.Contains(err.Error(), "CACHE_") {
		t.Fatalf("bad template: %v", err)
	}
}

// Env is the contract with the README and the Terraform module: it must list exactly the variables
// the configuration code reads.
func TestEnvListsEveryVariableRead(t *testing.T) {
	var src []byte
	for _, f := range []string{"config.go", filepath.Join("..", "redisenv", "redisenv.go"), filepath.Join("..", "tablepolicy", "env.go")} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		src = append(src, b...)
	}
	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?:get|getenv|duration|list|pairs|bad)\("([A-Z_]+)"`).FindAllStringSubmatch(string(src), -1) {
		read[m[1]] = true
	}
	listed := map[string]bool{}
	for _, e := range function.Vars() {
		listed[e.Name] = true
	}
	var missing, extra []string
	for n := range read {
		if !listed[n] {
			missing = append(missing, n)
		}
	}
	for n := range listed {
		if !read[n] {
			extra = append(extra, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	if len(missing)+len(extra) > 0 {
		t.Fatalf("read but not in Env: %v; in Env but not read: %v", missing, extra)
	}
	readme, err := os.ReadFile(filepath.Join("..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for n := range listed {
		if !bytes.Contains(readme, []byte("`"+n+"`")) {
			t.Errorf("README.md does not document %s", n)
		}
	}
}

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cloudsql-cache-function")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cloudsql-cache-function")
	build := exec.Command("go", "build", "-o", binary, "../cmd/cloudsql-cache-function")
	build.Stderr = os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestBinaryRefusesBadConfiguration(t *testing.T) {
	cmd := exec.Command(binary)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 2 {
		t.Fatalf("exit: %v\n%s", err, out)
	}
	for _, want := range []string{"REDIS_ADDR: required", "DEAD_LETTER_TOPIC: required"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// The built function, on the Functions Framework, against Redis with AUTH and TLS (as Memorystore with
// in-transit encryption) and a Pub/Sub emulator for dead letters; then SIGTERM.
func TestBinaryServesPushRequests(t *testing.T) {
	rs := testredis.StartWith(t, testredis.Options{Password: "s3cret", TLS: true})
	ps := pstest.NewServer()
	defer ps.Close()
	conn, err := grpc.NewClient(ps.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client, err := pubsub.NewClient(ctx, "p", option.WithGRPCConn(conn))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	if _, err := client.TopicAdminClient.CreateTopic(ctx, &pb.Topic{Name: "projects/p/topics/dl"}); err != nil {
		t.Fatal(err)
	}

	port := freePort(t)
	cmd := exec.Command(binary)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"PORT=" + port,
		"HOST=127.0.0.1",
		"REDIS_ADDR=" + rs.Addr(),
		"REDIS_PASSWORD=s3cret",
		"REDIS_TLS=true",
		"REDIS_CA_FILE=" + rs.CAFile,
		"DEAD_LETTER_TOPIC=projects/p/topics/dl",
		"PUBSUB_EMULATOR_HOST=" + ps.Addr,
		"CACHE_EXCLUDE_COLUMNS=inventory.customers.email",
	}
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
	}()
	url := "http://127.0.0.1:" + port + "/"
	waitForServer(t, url, exited, logs)

	fixture, err := os.ReadFile(filepath.Join("..", "testdata", "debezium", "mysql-create-noschema-serde-testfixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	send := func(data []byte, key string) (int, string) {
		body, _ := push.Encode(&push.Message{ID: "m-" + key, Data: data, OrderingKey: key, PublishTime: time.Now()})
		resp, err := http.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, body := send(fixture, `{"id":1004}`); code != 200 || body != "applied" {
		t.Fatalf("fixture: %d %q\n%s", code, body, logs.String())
	}
	e, found, err := rowcache.Get(ctx, rs.Client(), "inventory.customers:1004")
	if err != nil || !found || string(e.Row) != `{"id":1004,"first_name":"Anne","last_name":"Kretchmar"}` {
		t.Fatalf("cached %q found=%v err=%v", e.Row, found, err)
	}
	if code, body := send([]byte("garbage"), `{"id":1}`); code != 200 || body != "dead_lettered: decode" {
		t.Fatalf("garbage: %d %q", code, body)
	}
	if n := len(ps.Messages()); n != 1 {
		t.Fatalf("%d dead letters", n)
	}
	logged := func() bool {
		return strings.Contains(logs.String(), `"severity":"ERROR"`) && strings.Contains(logs.String(), `"message_id":"m-{\"id\":1}"`)
	}
	// The line reaches logs through the process's stdout pipe, a little after the response.
	for deadline := time.Now().Add(5 * time.Second); !logged() && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !logged() {
		t.Errorf("the dead letter was not logged as a structured error:\n%s", logs.String())
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after SIGTERM (Cloud Run kills it then)")
	}
}

func waitForServer(t *testing.T, url string, exited chan error, logs *syncBuffer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("function exited: %v\n%s", err, logs.String())
		default:
		}
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("function did not listen on %s\n%s", url, logs.String())
}

// syncBuffer collects a subprocess's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return fmt.Sprint(l.Addr().(*net.TCPAddr).Port)
}
