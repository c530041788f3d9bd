package function_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/compute/metadata"
	"cloud.google.com/go/logging"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/cloudsql-cache/cloudsql-cache/function"
)

// diagnosticKey marks the line the logging library writes once per process, after its first entry.
const diagnosticKey = "logging.googleapis.com/diagnostic"

// entries parses the JSON lines a logger wrote, without the library's diagnostic line.
func entries(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var es []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var e map[string]any
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("not a JSON line: %v: %s", err, sc.Bytes())
		}
		if m, ok := e["message"].(map[string]any); ok && m[diagnosticKey] != nil {
			continue
		}
		es = append(es, e)
	}
	return es
}

func onlyEntry(t *testing.T, out []byte) map[string]any {
	t.Helper()
	es := entries(t, out)
	if len(es) != 1 {
		t.Fatalf("%d entries, want 1:\n%s", len(es), out)
	}
	return es[0]
}

// payload is an entry's JSON payload, which the library writes under "message".
func payload(t *testing.T, e map[string]any) map[string]any {
	t.Helper()
	p, ok := e["message"].(map[string]any)
	if !ok {
		t.Fatalf("message is %T, not the JSON payload object: %v", e["message"], e)
	}
	return p
}

func newLogger(t *testing.T, w *bytes.Buffer, level slog.Level, project string) *slog.Logger {
	t.Helper()
	log, closeLog, err := function.NewProjectLogger(w, level, project)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := closeLog(); err != nil {
			t.Error(err)
		}
	})
	return log
}

func TestLogSeverityMessageAndAttributes(t *testing.T) {
	var out bytes.Buffer
	log := newLogger(t, &out, slog.LevelDebug, "").With("component", "apply")
	log.Debug("debug line", "n", 1)
	log.Info("info line", "ok", true)
	log.Warn("change event not applied", "outcome", "retry", "message_id", "m-1", "table", "shop.products",
		"key", "shop.products:tea", "version", "0.0.2.68466.0", "delivery_attempt", 2)
	log.WithGroup("redis").With("addr", "127.0.0.1:6390").Error("down", "error", errors.New("refused"),
		slog.Group("", "inlined", "yes"), slog.Group("empty"), "took", 1500*time.Millisecond)
	es := entries(t, out.Bytes())
	if len(es) != 4 {
		t.Fatalf("%d entries:\n%s", len(es), out.String())
	}
	want := []struct {
		severity string
		payload  map[string]any
	}{
		{"DEBUG", map[string]any{"message": "debug line", "component": "apply", "n": 1.0}},
		{"INFO", map[string]any{"message": "info line", "component": "apply", "ok": true}},
		{"WARNING", map[string]any{"message": "change event not applied", "component": "apply", "outcome": "retry",
			"message_id": "m-1", "table": "shop.products", "key": "shop.products:tea", "version": "0.0.2.68466.0",
			"delivery_attempt": 2.0}},
		{"ERROR", map[string]any{"message": "down", "component": "apply", "redis": map[string]any{
			"addr": "127.0.0.1:6390", "error": "refused", "inlined": "yes", "took": float64(1500 * time.Millisecond)}}},
	}
	for i, w := range want {
		if es[i]["severity"] != w.severity {
			t.Errorf("entry %d: severity %v, want %s", i, es[i]["severity"], w.severity)
		}
		if p := payload(t, es[i]); !reflect.DeepEqual(p, w.payload) {
			t.Errorf("entry %d: payload\n%v\nwant\n%v", i, p, w.payload)
		}
		if es[i]["timestamp"] == nil {
			t.Errorf("entry %d: no timestamp", i)
		}
	}

	out.Reset()
	info := newLogger(t, &out, slog.LevelInfo, "")
	info.Debug("dropped")
	if info.Enabled(context.Background(), slog.LevelDebug) || out.Len() != 0 {
		t.Fatalf("debug logged at level info: %s", out.String())
	}
}

// The line is the logging library's own serialization of the entry: the same bytes (as JSON) as the
// library writes for a logging.Entry built by hand. A hand-made slog JSON line, with attributes at the
// top level and slog's own keys, fails this.
func TestLogLineIsTheLoggingLibrarysEntry(t *testing.T) {
	at := time.Date(2026, 7, 1, 12, 0, 0, 123456789, time.UTC)
	var got bytes.Buffer
	log := newLogger(t, &got, slog.LevelInfo, "my-project")
	h := function.Traced(func(w http.ResponseWriter, r *http.Request) {
		rec := slog.NewRecord(at, slog.LevelWarn, "change event not applied", 0)
		rec.AddAttrs(slog.String("message_id", "m-1"), slog.String("table", "shop.products"),
			slog.String("key", "shop.products:tea"), slog.String("version", "0.0.2.68466.0"))
		if err := log.Handler().Handle(r.Context(), rec); err != nil {
			t.Fatal(err)
		}
	})
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	h(httptest.NewRecorder(), r)

	conn, err := grpc.NewClient("passthrough:///unused", grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return nil, errors.New("no network") }))
	if err != nil {
		t.Fatal(err)
	}
	client, err := logging.NewClient(context.Background(), "projects/my-project", option.WithGRPCConn(conn), option.WithoutAuthentication())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var want bytes.Buffer
	ref := client.Logger("reference", logging.RedirectAsJSON(&want), logging.CommonResource(nil))
	if err := ref.LogSync(context.Background(), logging.Entry{
		Timestamp: at,
		Severity:  logging.Warning,
		Payload: map[string]any{"message": "change event not applied", "message_id": "m-1", "table": "shop.products",
			"key": "shop.products:tea", "version": "0.0.2.68466.0"},
		Trace:        "projects/my-project/traces/4bf92f3577b34da6a3ce929d0e0e4736",
		SpanID:       "00f067aa0ba902b7",
		TraceSampled: true,
	}); err != nil {
		t.Fatal(err)
	}
	g, w := onlyEntry(t, got.Bytes()), onlyEntry(t, want.Bytes())
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("line\n%s\nis not the library's\n%s", got.String(), want.String())
	}
	for k := range g {
		if k != "message" && k != "severity" && k != "timestamp" && !strings.HasPrefix(k, "logging.googleapis.com/") {
			t.Errorf("top-level field %q is not one of Cloud Logging's special fields", k)
		}
	}
}

// Values encoding/json refuses, and integers a float64 would round, do not cost the entry.
func TestLogValuesJSONCannotCarry(t *testing.T) {
	var out bytes.Buffer
	log := newLogger(t, &out, slog.LevelInfo, "")
	log.Error("odd values", "nan", math.NaN(), "chan", make(chan int), "big", int64(1)<<60,
		"small", int64(-42), "at", time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC), "message", "an attribute")
	p := payload(t, onlyEntry(t, out.Bytes()))
	if p["nan"] != "NaN" || !strings.HasPrefix(p["chan"].(string), "0x") || p["big"] != "1152921504606846976" ||
		p["small"] != -42.0 || p["at"] != "2026-07-01T12:00:00Z" || p["message"] != "odd values" {
		t.Fatalf("payload %v", p)
	}
}

// Concurrent records are whole lines (run with -race: the writer is a plain buffer).
func TestLogConcurrentLines(t *testing.T) {
	var out bytes.Buffer
	log := newLogger(t, &out, slog.LevelInfo, "")
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() {
			for range 50 {
				log.With("worker", i).Warn("retry")
			}
		})
	}
	wg.Wait()
	if n := len(entries(t, out.Bytes())); n != 1000 {
		t.Fatalf("%d entries, want 1000", n)
	}
}

// Making the logger and logging ask nothing of the metadata server, which off Google Cloud would cost
// seconds of time-outs at start-up. GCE_METADATA_HOST points every metadata lookup of the Google
// libraries at a server that counts them; the control at the end shows that a lookup is counted.
func TestLoggerAsksNoMetadataServer(t *testing.T) {
	var lookups atomic.Int32
	md := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		lookups.Add(1)
		http.NotFound(w, r)
	}))
	defer md.Close()
	t.Setenv("GCE_METADATA_HOST", strings.TrimPrefix(md.URL, "http://"))

	start := time.Now()
	var out bytes.Buffer
	log, closeLog, err := function.NewProjectLogger(&out, slog.LevelInfo, "my-project")
	if err != nil {
		t.Fatal(err)
	}
	made := time.Since(start)
	h := function.Traced(func(w http.ResponseWriter, r *http.Request) {
		log.ErrorContext(r.Context(), "change event not applied", "message_id", "m-1")
	})
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/1;o=1")
	h(httptest.NewRecorder(), r)
	if err := closeLog(); err != nil {
		t.Fatal(err)
	}
	// A request still in flight at shutdown can log after the client is closed.
	h(httptest.NewRecorder(), r)
	if n := lookups.Load(); n != 0 {
		t.Fatalf("%d metadata server lookups", n)
	}
	if made > time.Second {
		t.Errorf("making the logger took %v", made)
	}
	if n := len(entries(t, out.Bytes())); n != 2 {
		t.Fatalf("%d entries, want 2:\n%s", n, out.String())
	}

	// Control: a metadata lookup, as the library's resource detection makes, is counted.
	_, _ = metadata.NewClient(nil).GetWithContext(context.Background(), "project/project-id")
	if lookups.Load() == 0 {
		t.Fatal("control: the lookup was not counted; the test cannot see one")
	}
}
