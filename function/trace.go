package function

import (
	"context"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// Cloud Logging's special fields that tie a log entry to a trace.
const (
	logTraceKey   = "logging.googleapis.com/trace"
	logSpanKey    = "logging.googleapis.com/spanId"
	logSampledKey = "logging.googleapis.com/trace_sampled"
)

type traceKey struct{}

type traceContext struct {
	traceID, spanID string
	sampled         bool
}

var (
	// traceparent: version-traceid-parentid-flags (W3C Trace Context).
	traceparentRE = regexp.MustCompile(`^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$`)
	// X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=OPTIONS, SPAN_ID in decimal.
	cloudTraceRE = regexp.MustCompile(`^([0-9a-fA-F]{32})(?:/([0-9]+))?(?:;o=([0-9]+))?$`)
)

// traceFrom reads the trace a request belongs to: traceparent first, then X-Cloud-Trace-Context.
func traceFrom(h http.Header) (traceContext, bool) {
	if m := traceparentRE.FindStringSubmatch(strings.TrimSpace(h.Get("traceparent"))); m != nil && strings.Trim(m[1], "0") != "" {
		flags, _ := strconv.ParseUint(m[3], 16, 8)
		return traceContext{traceID: m[1], spanID: m[2], sampled: flags&1 == 1}, true
	}
	if m := cloudTraceRE.FindStringSubmatch(strings.TrimSpace(h.Get("X-Cloud-Trace-Context"))); m != nil {
		return traceContext{traceID: strings.ToLower(m[1]), spanID: m[2], sampled: m[3] == "1"}, true
	}
	return traceContext{}, false
}

// Traced puts the trace of each request (from traceparent or X-Cloud-Trace-Context) in its context, so
// every line logged with that context is correlated with the trace in Cloud Logging.
func Traced(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if tc, ok := traceFrom(r.Header); ok {
			r = r.WithContext(context.WithValue(r.Context(), traceKey{}, tc))
		}
		next(w, r)
	}
}

// traceHandler adds Cloud Logging's trace fields to records logged with a traced context.
type traceHandler struct {
	slog.Handler
	project string
}

func (h traceHandler) Handle(ctx context.Context, r slog.Record) error {
	if tc, ok := ctx.Value(traceKey{}).(traceContext); ok && h.project != "" {
		r.AddAttrs(slog.String(logTraceKey, "projects/"+h.project+"/traces/"+tc.traceID))
		if tc.spanID != "" {
			r.AddAttrs(slog.String(logSpanKey, tc.spanID))
		}
		r.AddAttrs(slog.Bool(logSampledKey, tc.sampled))
	}
	return h.Handler.Handle(ctx, r)
}

func (h traceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return traceHandler{h.Handler.WithAttrs(as), h.project}
}

func (h traceHandler) WithGroup(name string) slog.Handler {
	return traceHandler{h.Handler.WithGroup(name), h.project}
}
