package function

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

type traceKey struct{}

// traceContext is the trace a request belongs to, as a logging.Entry takes it.
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
		// LogEntry.spanId is 16 hex digits, as Cloud Trace shows span ids; this header carries the span id
		// in decimal. Zero or out of range names no span.
		var span string
		if id, err := strconv.ParseUint(m[2], 10, 64); err == nil && id != 0 {
			span = fmt.Sprintf("%016x", id)
		}
		return traceContext{traceID: strings.ToLower(m[1]), spanID: span, sampled: m[3] == "1"}, true
	}
	return traceContext{}, false
}

// traceOf is the trace Traced put in ctx, if any.
func traceOf(ctx context.Context) (traceContext, bool) {
	tc, ok := ctx.Value(traceKey{}).(traceContext)
	return tc, ok
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
