package function_test

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/function"
)

func TestLogLinesCarryTheRequestsTrace(t *testing.T) {
	const (
		trace   = "logging.googleapis.com/trace"
		span    = "logging.googleapis.com/spanId"
		sampled = "logging.googleapis.com/trace_sampled"
	)
	for _, tc := range []struct {
		name, header, value string
		project             string
		want                map[string]any // nil: the field is absent
	}{
		{"cloud trace context", "X-Cloud-Trace-Context", "105445AA7843BC8BF206B12000100000/1;o=1", "my-project",
			map[string]any{trace: "projects/my-project/traces/105445aa7843bc8bf206b12000100000", span: "0000000000000001", sampled: true}},
		{"cloud trace context, large span id", "X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/18446744073709551615;o=0", "my-project",
			map[string]any{span: "ffffffffffffffff", sampled: nil}},
		{"cloud trace context, span id 0", "X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000/0;o=1", "my-project",
			map[string]any{trace: "projects/my-project/traces/105445aa7843bc8bf206b12000100000", span: nil, sampled: true}},
		{"traceparent", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "my-project",
			map[string]any{trace: "projects/my-project/traces/4bf92f3577b34da6a3ce929d0e0e4736", span: "00f067aa0ba902b7", sampled: true}},
		// The library leaves trace_sampled out when it is false, which Cloud Logging reads as false.
		{"traceparent not sampled", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0a", "my-project",
			map[string]any{trace: "projects/my-project/traces/4bf92f3577b34da6a3ce929d0e0e4736", span: "00f067aa0ba902b7", sampled: nil}},
		{"traceparent sampled, other flags", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0b", "my-project",
			map[string]any{sampled: true}},
		{"cloud trace context without options", "X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000", "my-project",
			map[string]any{trace: "projects/my-project/traces/105445aa7843bc8bf206b12000100000", span: nil, sampled: nil}},
		{"no header", "", "", "my-project", map[string]any{trace: nil, span: nil, sampled: nil}},
		{"malformed", "traceparent", "00-zz-00f067aa0ba902b7-01", "my-project", map[string]any{trace: nil, span: nil, sampled: nil}},
		{"no project", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "",
			map[string]any{trace: nil, span: nil, sampled: nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			log, closeLog, err := function.NewProjectLogger(&out, slog.LevelInfo, tc.project)
			if err != nil {
				t.Fatal(err)
			}
			defer closeLog()
			log = log.With("component", "apply")
			h := function.Traced(func(w http.ResponseWriter, r *http.Request) {
				log.ErrorContext(r.Context(), "change event not applied", "message_id", "m-1")
			})
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			if tc.header != "" {
				r.Header.Set(tc.header, tc.value)
			}
			h(httptest.NewRecorder(), r)
			line := onlyEntry(t, out.Bytes())
			p := payload(t, line)
			if line["severity"] != "ERROR" || p["message"] != "change event not applied" || p["message_id"] != "m-1" || p["component"] != "apply" {
				t.Fatalf("line %s", out.String())
			}
			for k, v := range tc.want {
				if got, ok := line[k]; v == nil && ok || v != nil && got != v {
					t.Errorf("%s = %v, want %v (line %s)", k, got, v, out.String())
				}
			}
		})
	}
}
