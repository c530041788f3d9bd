package main_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"cloud.google.com/go/pubsub/v2/pstest"
	colmetricpb "go.opentelemetry.io/proto/otlp/collector/metrics/v1"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/cloudsql-cache/cloudsql-cache/function/push"
	"github.com/cloudsql-cache/cloudsql-cache/internal/freeport"
	"github.com/cloudsql-cache/cloudsql-cache/internal/redisserver"
	"github.com/cloudsql-cache/cloudsql-cache/local/funcmetrics"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

var binary string

// TestMain builds the binary once; the tests run it as Cloud Run does: configured by the environment,
// serving on PORT, stopped with SIGTERM.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "cloudsql-cache-function")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "cloudsql-cache-function")
	build := exec.Command("go", "build", "-o", binary, ".")
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
	rs := redisserver.StartForTest(t, redisserver.Options{Password: "s3cret", TLS: true})
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

	url, cmd, exited, logs := startFunction(t, "REDIS_ADDR="+rs.Addr(), "REDIS_PASSWORD=s3cret", "REDIS_TLS=true", "REDIS_CA_FILE="+rs.CAFile,
		"DEAD_LETTER_TOPIC=projects/p/topics/dl", "PUBSUB_EMULATOR_HOST="+ps.Addr, "CACHE_EXCLUDE_COLUMNS=inventory.customers.email")

	fixture, err := os.ReadFile(filepath.Join("..", "..", "testdata", "debezium", "mysql-create-noschema-serde-testfixture.json"))
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
	stopWithSIGTERM(t, cmd, exited, logs)
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

// stopWithSIGTERM sends the function SIGTERM and fails the test unless it exits cleanly within 10 s,
// when Cloud Run would kill it.
func stopWithSIGTERM(t *testing.T, cmd *exec.Cmd, exited chan error, logs *syncBuffer) {
	t.Helper()
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
	p, err := freeport.Get()
	if err != nil {
		t.Fatal(err)
	}
	return strconv.Itoa(p)
}

// startFunction runs the built binary with env (plus PATH, HOST and PORT) and waits for it to listen.
func startFunction(t *testing.T, env ...string) (url string, cmd *exec.Cmd, exited chan error, logs *syncBuffer) {
	t.Helper()
	port := freePort(t)
	cmd = exec.Command(binary)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "PORT=" + port, "HOST=127.0.0.1"}, env...)
	logs = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited = make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	url = "http://127.0.0.1:" + port + "/"
	waitForServer(t, url, exited, logs)
	return url, cmd, exited, logs
}

func deliverFixture(t *testing.T, url string, want string) {
	t.Helper()
	fixture, err := os.ReadFile(filepath.Join("..", "..", "testdata", "debezium", "mysql-create-noschema-serde-testfixture.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The fixture's source.ts_ms is 0 (unknown); commit it a second ago.
	fixture = bytes.Replace(fixture, []byte(`"ts_ms": 0,`), []byte(fmt.Sprintf(`"ts_ms": %d,`, time.Now().Add(-time.Second).UnixMilli())), 1)
	body, _ := push.Encode(&push.Message{ID: "m-1", Data: fixture, OrderingKey: `{"id":1004}`, PublishTime: time.Now(), DeliveryAttempt: 1})
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || strings.TrimSpace(string(b)) != want {
		t.Fatalf("delivery: %d %q, want %q", resp.StatusCode, b, want)
	}
}

// The /metrics endpoint serves the numbers operators see, in the Prometheus text format.
func TestBinaryServesPrometheusMetrics(t *testing.T) {
	rs := redisserver.StartForTest(t, redisserver.Options{})
	metricsAddr := "127.0.0.1:" + freePort(t)
	url, _, _, logs := startFunction(t, "REDIS_ADDR="+rs.Addr(), "DEAD_LETTER_TOPIC=nack", "METRICS_ADDR="+metricsAddr, "METRICS_EXPORTER=none", "GOOGLE_CLOUD_PROJECT=my-project")
	deliverFixture(t, url, "applied")
	deliverFixture(t, url, "duplicate")

	// A failure is logged with the trace of its request.
	body, _ := push.Encode(&push.Message{ID: "m-bad", Data: []byte("garbage"), OrderingKey: `{"id":1}`, PublishTime: time.Now()})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/7;o=1")
	bad, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	bad.Body.Close()
	if bad.StatusCode != http.StatusBadRequest {
		t.Fatalf("garbage with DEAD_LETTER_TOPIC=nack: %d", bad.StatusCode)
	}
	want := `"logging.googleapis.com/trace":"projects/my-project/traces/105445aa7843bc8bf206b12000100000"`
	// The line reaches logs through the process's stdout pipe, a little after the response.
	for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), want) && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), want) || !strings.Contains(logs.String(), `"message_id":"m-bad"`) {
		t.Errorf("the failure was not logged with its trace (%s):\n%s", want, logs.String())
	}
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	text := string(b)
	for _, re := range []string{
		`(?m)^cloudsql_cache_events_total\{[^}]*outcome="applied"[^}]*\} 1$`,
		`(?m)^cloudsql_cache_events_total\{[^}]*outcome="duplicate"[^}]*\} 1$`,
		`(?m)^cloudsql_cache_events_total\{[^}]*outcome="rejected"[^}]*reason="decode"[^}]*\} 1$`,
		`(?m)^cloudsql_cache_events_total\{[^}]*table="inventory\.customers"[^}]*\} 1$`,
		`(?m)^cloudsql_cache_replication_lag_milliseconds_count\{[^}]*table="inventory\.customers"[^}]*\} 1$`,
		`(?m)^cloudsql_cache_replication_lag_milliseconds_bucket\{[^}]*le="\+Inf"[^}]*\} 1$`,
		`(?m)^cloudsql_cache_replication_lag_milliseconds_bucket\{[^}]*le="500"\} 0$`, // committed a second ago
		`(?m)^cloudsql_cache_apply_duration_milliseconds_count\{[^}]*outcome="applied"[^}]*\} 1$`,
		`(?m)^cloudsql_cache_delivery_delay_milliseconds_count\{[^}]*\} 2$`,
		`(?m)^cloudsql_cache_source_position_bytes\{[^}]*file="mysql-bin\.000003"[^}]*\} \d+$`,
		`(?m)^cloudsql_cache_source_commit_time_milliseconds\{[^}]*table="inventory\.customers"[^}]*\} \d`,
	} {
		if !regexp.MustCompile(re).MatchString(text) {
			t.Errorf("/metrics has no line matching %s", re)
		}
	}
	// The local status line's reader (local/funcmetrics) reads the same numbers from the real format.
	snap, err := funcmetrics.Parse(strings.NewReader(text))
	if err != nil {
		t.Errorf("funcmetrics: %v", err)
	} else if p50, ok := snap.LagQuantile(0.5, funcmetrics.Snapshot{}); snap.Outcomes["applied"] != 1 || snap.Outcomes["duplicate"] != 1 || !ok || p50 <= 500 {
		t.Errorf("funcmetrics read outcomes %v, lag p50 %v %v (want 1 applied, 1 duplicate, lag above 500 ms)", snap.Outcomes, p50, ok)
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s\nlogs:\n%s", text, logs.String())
	}
}

// otlpReceiver is an OTLP/HTTP metrics endpoint that keeps every export request.
type otlpReceiver struct {
	mu   sync.Mutex
	reqs []*colmetricpb.ExportMetricsServiceRequest
}

func (o *otlpReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/metrics" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "unexpected "+r.URL.Path+" "+r.Header.Get("Content-Type"), http.StatusNotFound)
		return
	}
	b, _ := io.ReadAll(r.Body)
	req := &colmetricpb.ExportMetricsServiceRequest{}
	if err := proto.Unmarshal(b, req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	o.mu.Lock()
	o.reqs = append(o.reqs, req)
	o.mu.Unlock()
	out, _ := proto.Marshal(&colmetricpb.ExportMetricsServiceResponse{})
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(out)
}

// sums returns the events counter by outcome and the resource attributes of the last request.
func (o *otlpReceiver) sums() (events map[string]int64, resource map[string]string, names map[string]bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	events, resource, names = map[string]int64{}, map[string]string{}, map[string]bool{}
	for _, req := range o.reqs {
		for _, rm := range req.ResourceMetrics {
			for _, kv := range rm.GetResource().GetAttributes() {
				resource[kv.Key] = kv.GetValue().GetStringValue()
			}
			for _, sm := range rm.ScopeMetrics {
				for _, m := range sm.Metrics {
					names[m.Name] = true
					if m.Name != "cloudsql_cache.events" {
						continue
					}
					for _, dp := range m.GetSum().GetDataPoints() {
						for _, kv := range dp.Attributes {
							if kv.Key == "outcome" {
								events[kv.GetValue().GetStringValue()] = dp.GetAsInt()
							}
						}
					}
				}
			}
		}
	}
	return events, resource, names
}

// A fake GCE metadata server, as Cloud Run's.
func fakeMetadata(t *testing.T) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Metadata-Flavor", "Google")
		switch strings.TrimPrefix(r.URL.Path, "/computeMetadata/v1/") {
		case "project/project-id":
			io.WriteString(w, "my-project")
		case "instance/id":
			io.WriteString(w, "0069c7a9881f")
		case "instance/region":
			io.WriteString(w, "projects/123/regions/europe-west1")
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// Metrics not yet exported when SIGTERM arrives (the export interval is an hour) are flushed before
// the process exits, within Cloud Run's 10 s; they carry the Cloud Run resource.
func TestSIGTERMFlushesPendingMetrics(t *testing.T) {
	rs := redisserver.StartForTest(t, redisserver.Options{})
	recv := &otlpReceiver{}
	otlp := httptest.NewServer(recv)
	defer otlp.Close()
	md := fakeMetadata(t)
	url, cmd, exited, logs := startFunction(t, "REDIS_ADDR="+rs.Addr(), "DEAD_LETTER_TOPIC=nack",
		"METRICS_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT="+otlp.URL, "METRICS_EXPORT_INTERVAL=1h",
		"K_SERVICE=cloudsql-cache-apply", "K_REVISION=cloudsql-cache-apply-00007-abc", "GCE_METADATA_HOST="+strings.TrimPrefix(md.URL, "http://"))
	deliverFixture(t, url, "applied")
	if ev, _, _ := recv.sums(); len(ev) != 0 {
		t.Fatalf("exported before SIGTERM: %v", ev)
	}
	start := time.Now()
	stopWithSIGTERM(t, cmd, exited, logs)
	t.Logf("exited %v after SIGTERM", time.Since(start))
	recv.mu.Lock()
	if n := len(recv.reqs); n != 1 {
		t.Errorf("%d export requests at SIGTERM, want 1 (a second one would be refused by Cloud Monitoring's per-series rate limit)", n)
	}
	recv.mu.Unlock()
	events, res, names := recv.sums()
	if events["applied"] != 1 {
		t.Fatalf("events exported at SIGTERM: %v\n%s", events, logs.String())
	}
	for _, n := range []string{"cloudsql_cache.replication_lag", "cloudsql_cache.apply.duration", "cloudsql_cache.delivery.delay", "cloudsql_cache.source.position", "cloudsql_cache.source.commit_time"} {
		if !names[n] {
			t.Errorf("%s not exported; got %v", n, names)
		}
	}
	for k, want := range map[string]string{
		"service.name": "cloudsql-cache-apply", "faas.version": "cloudsql-cache-apply-00007-abc", "cloud.platform": "gcp_cloud_run",
		"service.instance.id": "0069c7a9881f", "cloud.region": "europe-west1", "gcp.project_id": "my-project",
	} {
		if res[k] != want {
			t.Errorf("resource %s = %q, want %q (all: %v)", k, res[k], want, res)
		}
	}
}

// An export the receiver refuses is logged as a structured warning, and SIGTERM still ends the process
// in time.
func TestRefusedExportIsLogged(t *testing.T) {
	rs := redisserver.StartForTest(t, redisserver.Options{})
	otlp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no", http.StatusBadRequest)
	}))
	defer otlp.Close()
	url, cmd, exited, logs := startFunction(t, "REDIS_ADDR="+rs.Addr(), "DEAD_LETTER_TOPIC=nack",
		"METRICS_EXPORTER=otlp", "OTEL_EXPORTER_OTLP_ENDPOINT="+otlp.URL, "METRICS_EXPORT_INTERVAL=1h")
	deliverFixture(t, url, "applied")
	stopWithSIGTERM(t, cmd, exited, logs)
	if !regexp.MustCompile(`(?m)^\{"message":\{.*"message":"[^"]*metrics not (exported|flushed).*\},"severity":"WARNING"`).MatchString(logs.String()) {
		t.Fatalf("no structured warning about the refused export:\n%s", logs.String())
	}
}
