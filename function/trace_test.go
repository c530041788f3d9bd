package function_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cloudsql-cache/cloudsql-cache/function"
)

func TestLogLinesCarryTheRequestsTrace(t *testing.T) {
	for _, tc := range []struct {
		name, header, value string
		want                map[string]any
	}{
		{"cloud trace context", "X-Cloud-Trace-Context", "105445AA7843BC8BF206B12000100000/1;o=1",
			map[string]any{"logging.googleapis.com/trace": "projects/my-project/traces/105445aa7843bc8bf206b12000100000", "logging.googleapis.com/spanId": "1", "logging.googleapis.com/trace_sampled": true}},
		{"traceparent", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
			map[string]any{"logging.googleapis.com/trace": "projects/my-project/traces/4bf92f3577b34da6a3ce929d0e0e4736", "logging.googleapis.com/spanId": "00f067aa0ba902b7", "logging.googleapis.com/trace_sampled": true}},
		{"traceparent not sampled", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0a",
			map[string]any{"logging.googleapis.com/trace": "projects/my-project/traces/4bf92f3577b34da6a3ce929d0e0e4736", "logging.googleapis.com/trace_sampled": false}},
		{"traceparent sampled, other flags", "traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0b",
			map[string]any{"logging.googleapis.com/trace_sampled": true}},
		{"cloud trace context without options", "X-Cloud-Trace-Context", "105445aa7843bc8bf206b12000100000",
			map[string]any{"logging.googleapis.com/trace": "projects/my-project/traces/105445aa7843bc8bf206b12000100000", "logging.googleapis.com/spanId": nil, "logging.googleapis.com/trace_sampled": false}},
		{"no header", "", "", map[string]any{"logging.googleapis.com/trace": nil}},
		{"malformed", "traceparent", "00-zz-00f067aa0ba902b7-01", map[string]any{"logging.googleapis.com/trace": nil}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			log := function.NewProjectLogger(&out, slog.LevelInfo, "my-project").With("component", "apply")
			h := function.Traced(func(w http.ResponseWriter, r *http.Request) {
				log.ErrorContext(r.Context(), "change event not applied", "message_id", "m-1")
			})
			r := httptest.NewRequest(http.MethodPost, "/", nil)
			if tc.header != "" {
				r.Header.Set(tc.header, tc.value)
			}
			h(httptest.NewRecorder(), r)
			var line map[string]any
			if err := json.Unmarshal(out.Bytes(), &line); err != nil {
				t.Fatalf("%v: %s", err, out.String())
			}
			if line["severity"] != "ERROR" || line["message"] != "change event not applied" || line["message_id"] != "m-1" || line["component"] != "apply" {
				t.Fatalf("line %s", out.String())
			}
			for k, v := range tc.want {
				if line[k] != v {
					t.Errorf("%s = %v, want %v (line %s)", k, line[k], v, out.String())
				}
			}
		})
	}
}
