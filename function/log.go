package function

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"sync"
	"time"

	"cloud.google.com/go/logging"
	"google.golang.org/api/option"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// logID names the log for the Logging API, which is never called: on stdout, Cloud Run files every
// line under its own run.googleapis.com/stdout log.
const logID = "cloudsql-cache"

// errNoLoggingAPI is what the logging client's connection answers if anything ever tries to use it.
var errNoLoggingAPI = errors.New("function: the Logging API is not used: entries are written to stdout")

// NewLogger is NewProjectLogger without a project, so without trace correlation: for tools and tests.
func NewLogger(w io.Writer, level slog.Level) (logger *slog.Logger, closeFn func() error, err error) {
	return NewProjectLogger(w, level, "")
}

// NewProjectLogger returns a logger that writes each record as one JSON line on w (os.Stdout on Cloud
// Run), the way Google recommends logging from Cloud Run: a Cloud Logging client library logger
// (cloud.google.com/go/logging) with logging.RedirectAsJSON. Cloud Run's agent ingests the lines;
// nothing is sent through the Logging API, so no request waits on the network to log and no buffered
// entry is lost when SIGTERM comes: each entry is on w when the call returns. The library, not this
// package, decides the shape of a line, so it stays what the agent parses:
//
//	{"message":{"message":"change event not applied","message_id":"…","table":"…",…},"severity":"ERROR",
//	 "timestamp":"…","logging.googleapis.com/trace":"projects/<project>/traces/<id>",
//	 "logging.googleapis.com/spanId":"…","logging.googleapis.com/trace_sampled":true}
//
// Severity comes from the slog level (DEBUG, INFO, WARNING, ERROR); the message and the attributes,
// groups as nested objects, are the entry's JSON payload, which the library writes under "message"
// (in Logs Explorer: jsonPayload.message.message_id, …). A record logged with the context of a request
// that carried a trace header (see Traced) gets the entry's trace, span id and sampling flag; with no
// project there is no trace. The library also writes, once per process and after the first entry, a
// DEFAULT-severity line with its own version ("logging.googleapis.com/diagnostic"), and its
// "timestamp" is in a form the agent does not read (googleapis/google-cloud-go#7023), so an entry is
// timed when its line is written, which here is when it is logged.
//
// Making the client neither needs credentials nor touches the network: its gRPC connection is one
// that never dials, and the monitored resource, which only the Logging API would use, is given instead
// of detected from the metadata server. closeFn releases the client; the logger keeps writing after it.
func NewProjectLogger(w io.Writer, level slog.Level, project string) (logger *slog.Logger, closeFn func() error, err error) {
	// Left to make its own connection, NewClient would look for credentials (asking the metadata
	// server when it finds none) and start connecting to logging.googleapis.com. This one stays idle:
	// only an API call would dial, and it would fail at once.
	conn, err := grpc.NewClient("passthrough:///logging-api-unused",
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(context.Context, string) (net.Conn, error) { return nil, errNoLoggingAPI }))
	if err != nil {
		return nil, nil, fmt.Errorf("function: logging connection: %w", err)
	}
	// The parent only names the log for the Logging API; "projects/" is a valid one when the project is
	// unknown. logging.DetectProjectID would ask the metadata server.
	client, err := logging.NewClient(context.Background(), "projects/"+project,
		option.WithGRPCConn(conn), option.WithoutAuthentication())
	if err != nil {
		_ = conn.Close()
		return nil, nil, fmt.Errorf("function: logging client: %w", err)
	}
	out := client.Logger(logID,
		logging.RedirectAsJSON(&lockedWriter{w: w}),
		// Without a resource the logger detects one, probing the metadata server (seconds off Google
		// Cloud). On stdout the resource is not written at all: Cloud Run's agent sets it.
		logging.CommonResource(nil))
	return slog.New(&entryHandler{out: out, level: level, project: project}), client.Close, nil
}

// lockedWriter makes each entry one uninterrupted write, as slog's handlers do: the logging library
// writes to its io.Writer without a lock, and a test's buffer is not safe for concurrent writes.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// entryHandler is a slog.Handler that turns records into logging.Entry values.
type entryHandler struct {
	out     *logging.Logger
	level   slog.Level
	project string
	// with holds the attributes of Logger.With, each with the groups open when it was added; groups
	// are the groups open now, where a record's own attributes go.
	with   []groupedAttrs
	groups []string
}

type groupedAttrs struct {
	groups []string
	attrs  []slog.Attr
}

func (h *entryHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= h.level }

func (h *entryHandler) Handle(ctx context.Context, r slog.Record) error {
	payload := map[string]any{}
	for _, g := range h.with {
		putAttrs(payload, g.groups, g.attrs...)
	}
	r.Attrs(func(a slog.Attr) bool {
		putAttrs(payload, h.groups, a)
		return true
	})
	// Last, so that an attribute called "message" cannot hide it.
	payload["message"] = r.Message
	e := logging.Entry{Timestamp: r.Time, Severity: severity(r.Level), Payload: payload}
	if tc, ok := traceOf(ctx); ok && h.project != "" {
		e.Trace = "projects/" + h.project + "/traces/" + tc.traceID
		e.SpanID = tc.spanID
		e.TraceSampled = tc.sampled
	}
	// LogSync, not Log: the same synchronous write to the redirect writer, but its error comes back here
	// instead of going to the client's OnError.
	if err := h.out.LogSync(ctx, e); err != nil {
		return fmt.Errorf("function: log entry %q not written: %w", r.Message, err)
	}
	return nil
}

func (h *entryHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if len(as) == 0 {
		return h
	}
	c := *h
	c.with = append(h.with[:len(h.with):len(h.with)], groupedAttrs{groups: h.groups, attrs: as})
	return &c
}

func (h *entryHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	c := *h
	c.groups = append(h.groups[:len(h.groups):len(h.groups)], name)
	return &c
}

// severity maps slog's levels to Cloud Logging's, each range to the nearest below.
func severity(l slog.Level) logging.Severity {
	switch {
	case l >= slog.LevelError:
		return logging.Error
	case l >= slog.LevelWarn:
		return logging.Warning
	case l >= slog.LevelInfo:
		return logging.Info
	default:
		return logging.Debug
	}
}

// putAttrs puts attributes into the payload object m, inside the nested groups, following slog's rules
// for handlers: empty attributes and empty groups are left out, a group without a key is inlined.
func putAttrs(m map[string]any, groups []string, as ...slog.Attr) {
	for _, a := range as {
		a.Value = a.Value.Resolve()
		if a.Equal(slog.Attr{}) {
			continue
		}
		if a.Value.Kind() == slog.KindGroup {
			ga := a.Value.Group()
			if len(ga) == 0 {
				continue
			}
			if a.Key == "" {
				putAttrs(m, groups, ga...)
			} else {
				putAttrs(m, append(groups[:len(groups):len(groups)], a.Key), ga...)
			}
			continue
		}
		obj := m
		for _, g := range groups {
			sub, ok := obj[g].(map[string]any)
			if !ok {
				sub = map[string]any{}
				obj[g] = sub
			}
			obj = sub
		}
		obj[a.Key] = jsonValue(a.Value)
	}
}

// maxExactInt is the largest integer a JSON payload keeps exactly: the library turns it into a protobuf
// Struct, whose numbers are float64.
const maxExactInt = 1 << 53

// jsonValue is v as a value the payload can always marshal, so that one odd attribute cannot cost the
// whole entry: what encoding/json refuses becomes its fmt text, and integers a float64 would round
// become strings. Durations are nanoseconds and errors their text, as in slog.JSONHandler.
func jsonValue(v slog.Value) any {
	switch v.Kind() {
	case slog.KindString:
		return v.String()
	case slog.KindBool:
		return v.Bool()
	case slog.KindInt64:
		return exactInt(v.Int64())
	case slog.KindDuration:
		return exactInt(int64(v.Duration()))
	case slog.KindUint64:
		if u := v.Uint64(); u > maxExactInt {
			return fmt.Sprint(u)
		}
		return v.Uint64()
	case slog.KindFloat64:
		if f := v.Float64(); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Sprint(f)
		}
		return v.Float64()
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	}
	a := v.Any()
	if err, ok := a.(error); ok {
		return err.Error()
	}
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Sprintf("%+v", a)
	}
	return json.RawMessage(b)
}

func exactInt(i int64) any {
	if i > maxExactInt || i < -maxExactInt {
		return fmt.Sprint(i)
	}
	return i
}
