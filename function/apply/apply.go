// Package apply is the function's core: it takes one Pub/Sub push delivery, decodes the Debezium event
// in it, and applies it to Redis through the version-guarded script, answering with the status code
// that tells Pub/Sub what to do (2xx acknowledges; anything else is retried with backoff).
//
// Every message ends in exactly one outcome:
//
//	applied       the change is now in Redis (or a schema change swept tables) 200
//	duplicate     the same version and value were already stored              200
//	stale         a newer version, or a newer floor of the table, is stored   200
//	ignored       nothing to do (heartbeat, an uncached table, an index DDL…) 200
//	dead_lettered permanently bad, preserved on the dead-letter topic first   200
//	retry         Redis or the dead-letter topic failed; try again later      503
//	rejected      permanently bad and no dead-letter topic is configured      400
package apply

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel/metric"

	"github.com/cloudsql-cache/cloudsql-cache/debezium"
	"github.com/cloudsql-cache/cloudsql-cache/function/push"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// Outcome is how a message was handled.
type Outcome string

const (
	Applied      Outcome = "applied"
	Duplicate    Outcome = "duplicate"
	Stale        Outcome = "stale"
	Ignored      Outcome = "ignored"
	DeadLettered Outcome = "dead_lettered"
	Retry        Outcome = "retry"
	Rejected     Outcome = "rejected"
)

// Result describes the handling of one message, for the response, metrics and logs.
type Result struct {
	Outcome Outcome
	// Reason refines the outcome: why a message was ignored, stale or bad ("heartbeat",
	// "table_not_cached", "truncated", "resnapshot", "ddl", "decode", "key", …), or what an applied one
	// also did ("version_collision", "snapshot_sweep", "ddl_sweep").
	Reason  string
	Table   string // db.table, when known
	Op      string // c, u, d, r, t, when known
	Key     string
	Version string
	Err     error // the cause, for retry, dead_lettered and rejected
}

// DeadLetterer preserves a permanently bad message with the reason it could not be applied.
type DeadLetterer interface {
	DeadLetter(ctx context.Context, m *push.Message, reason error) error
}

// PermanentError marks a message that can never be applied as it is.
type PermanentError struct {
	Reason string // short, fixed vocabulary, used as a metric attribute
	Err    error
}

func (e *PermanentError) Error() string { return e.Reason + ": " + e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// Options configure a Handler.
type Options struct {
	Store  *rowcache.Store
	Policy *tablepolicy.Policy
	// DeadLetter preserves bad messages. Nil means bad messages are answered 400, so the subscription's
	// own dead-letter policy takes them after its retries (slower: it blocks the key meanwhile).
	DeadLetter DeadLetterer
	// MaxBody caps the request body; 0 means push.DefaultMaxBody.
	MaxBody int64
	// Timeout bounds the handling of one message; 0 means 10s.
	Timeout time.Duration
	// Logger receives one line per failure; nothing is logged on the success path.
	Logger *slog.Logger
	// MeterProvider receives the metrics (see metrics.go); nil means no metrics.
	MeterProvider metric.MeterProvider
}

// Handler is the push endpoint. It is safe for concurrent use.
type Handler struct {
	store  *rowcache.Store
	policy *tablepolicy.Policy
	// known holds the tables this process has added to the registry of known tables.
	known   sync.Map
	dlq     DeadLetterer
	maxBody int64
	timeout time.Duration
	log     *slog.Logger
	metrics *metrics
}

// New returns a Handler.
func New(o Options) (*Handler, error) {
	if o.Store == nil || o.Policy == nil {
		return nil, errors.New("apply: Store and Policy are required")
	}
	h := &Handler{store: o.Store, policy: o.Policy, dlq: o.DeadLetter, maxBody: o.MaxBody, timeout: o.Timeout, log: o.Logger}
	if h.maxBody <= 0 {
		h.maxBody = push.DefaultMaxBody
	}
	if h.timeout <= 0 {
		h.timeout = 10 * time.Second
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	var err error
	if h.metrics, err = newMetrics(o.MeterProvider); err != nil {
		return nil, err
	}
	return h, nil
}

// ServeHTTP handles one push delivery.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "apply: POST a Pub/Sub push envelope", http.StatusMethodNotAllowed)
		return
	}
	m, err := push.ReadRequest(r, h.maxBody)
	if err != nil {
		// Not a message we can preserve: the body is not (all) there. Pub/Sub never sends such a body
		// unless the subscription is misconfigured (unwrapped push), so say so loudly.
		status := http.StatusBadRequest
		if errors.Is(err, push.ErrTooLarge) {
			status = http.StatusRequestEntityTooLarge
		}
		h.log.Error("rejected push request", "error", err.Error(), "status", status)
		h.metrics.record(r.Context(), &push.Message{}, Result{Outcome: Rejected, Reason: "envelope"}, observation{})
		http.Error(w, err.Error(), status)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	res := h.handleAt(ctx, m, start)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch res.Outcome {
	case Retry:
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "retry: %v\n", res.Err)
	case Rejected:
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "rejected: %v\n", res.Err)
	default:
		w.WriteHeader(http.StatusOK)
		if res.Reason != "" {
			fmt.Fprintf(w, "%s: %s\n", res.Outcome, res.Reason)
		} else {
			fmt.Fprintf(w, "%s\n", res.Outcome)
		}
	}
}

// reasonReplicaWait is the retry's reason when Redis applied a change but too few replicas confirmed it
// within REDIS_WAIT_TIMEOUT.
const reasonReplicaWait = "replica_wait"

// Handle applies one message and returns its outcome; it never panics on any input.
func (h *Handler) Handle(ctx context.Context, m *push.Message) Result {
	return h.handleAt(ctx, m, time.Now())
}

func (h *Handler) handleAt(ctx context.Context, m *push.Message, start time.Time) Result {
	obs := observation{start: start}
	res := h.handle(ctx, m, &obs)
	var perm *PermanentError
	if res.Outcome == "" && errors.As(res.Err, &perm) {
		res.Reason = perm.Reason
		if h.dlq == nil {
			res.Outcome = Rejected
		} else if err := h.dlq.DeadLetter(ctx, m, res.Err); err != nil {
			res.Outcome, res.Reason, res.Err = Retry, "dead_letter_publish", fmt.Errorf("dead-letter %v: %w", res.Err, err)
		} else {
			res.Outcome = DeadLettered
		}
	} else if res.Outcome == "" {
		res.Outcome = Retry
		if res.Reason == "" {
			res.Reason = "redis"
		}
	}
	if res.Outcome != Retry && res.Outcome != Rejected && obs.wrote && !obs.replicated {
		// Writes outside the pipelined Upsert/Delete (floors, sweeps, snapshot and schema
		// bookkeeping): acknowledged only once the replicas hold them too.
		if err := h.store.Replicated(ctx); err != nil {
			res.Outcome, res.Reason, res.Err = Retry, reasonReplicaWait, err
			obs.redisErr = err
		}
	}
	if res.Outcome == Retry && errors.Is(res.Err, rowcache.ErrNotReplicated) {
		res.Reason = reasonReplicaWait
	}
	h.metrics.record(ctx, m, res, obs)
	if res.Reason == "version_collision" {
		// Two changes of one key under one version: a compressed transaction without transaction
		// metadata. The later one was stored, but any replay of the pair out of order would not be.
		h.log.LogAttrs(ctx, slog.LevelWarn, "version collision: two different changes share one version; turn on provide.transaction.metadata or binlog_transaction_compression off",
			slog.String("outcome", string(res.Outcome)), slog.String("reason", res.Reason), slog.String("message_id", m.ID),
			slog.String("ordering_key", m.OrderingKey), slog.String("table", res.Table), slog.String("op", res.Op),
			slog.String("key", res.Key), slog.String("version", res.Version))
	}
	if res.Err != nil {
		level := slog.LevelError
		if res.Outcome == Retry {
			level = slog.LevelWarn
		}
		h.log.LogAttrs(ctx, level, "change event not applied",
			slog.String("outcome", string(res.Outcome)),
			slog.String("reason", res.Reason),
			slog.String("error", res.Err.Error()),
			slog.String("message_id", m.ID),
			slog.String("subscription", m.Subscription),
			slog.Int("delivery_attempt", m.DeliveryAttempt),
			slog.String("ordering_key", m.OrderingKey),
			slog.String("table", res.Table),
			slog.String("op", res.Op),
			slog.String("key", res.Key),
			slog.String("version", res.Version),
		)
	}
	return res
}

func (h *Handler) handle(ctx context.Context, m *push.Message, obs *observation) (res Result) {
	defer func() {
		// Decoding is written not to panic; this keeps a bug from turning one message into a crash loop
		// of the whole service. The message is dead-lettered with the panic as its reason.
		if p := recover(); p != nil {
			res = Result{Table: res.Table, Op: res.Op, Err: &PermanentError{Reason: "panic", Err: fmt.Errorf("%v", p)}}
		}
	}()
	ev, err := debezium.Decode(m.Data)
	if err != nil {
		return Result{Err: &PermanentError{Reason: "decode", Err: err}}
	}
	switch ev.Kind {
	case debezium.Change:
		return h.change(ctx, m, ev, obs)
	case debezium.SchemaChange:
		return h.schemaChange(ctx, ev, obs)
	}
	return Result{Outcome: Ignored, Reason: ev.Kind.String()}
}

// change applies a row change or a truncate, then, for a snapshot's marker records, completes what
// the snapshot has finished (snapshot.go).
func (h *Handler) change(ctx context.Context, m *push.Message, ev *debezium.Event, obs *observation) Result {
	res := Result{Table: ev.Source.DB + "." + ev.Source.Table, Op: ev.Op.String()}
	obs.source, obs.hasSource = ev.Source, true
	ch, ok, err := h.policy.Resolve(ev, m.OrderingKey)
	switch {
	case err != nil:
		res.Err = &PermanentError{Reason: "key", Err: err}
	case !ok:
		res.Outcome, res.Reason = Ignored, "table_not_cached"
	default:
		h.write(ctx, ch, &res, obs)
	}
	var perm *PermanentError
	if res.Outcome == "" && !errors.As(res.Err, &perm) {
		return res // Redis failed: the retry does the rest
	}
	if ev.Op == debezium.Read && snapshotEnds(ev.Source.Snapshot) {
		obs.wrote, obs.replicated = true, false
		n, err := h.snapshotMarker(ctx, ev)
		if err != nil {
			obs.redisErr = err
			return Result{Table: res.Table, Op: res.Op, Key: res.Key, Version: res.Version, Err: err}
		}
		if n > 0 && res.Reason == "" {
			res.Reason = "snapshot_sweep"
		}
	}
	return res
}

// write applies one cache change and sets res's outcome (or its error).
func (h *Handler) write(ctx context.Context, ch tablepolicy.Change, res *Result, obs *observation) {
	res.Key, res.Version = ch.Key, ch.Version.String()
	obs.wrote = true
	// The registry first: an Upsert's or Delete's replica wait, pipelined with the script, then
	// covers it too.
	err := h.register(ctx, ch.Table)
	var r rowcache.Result
	if err == nil {
		switch ch.Kind {
		case tablepolicy.Upsert:
			r, err = h.store.Upsert(ctx, ch.Key, ch.Table.FloorKey, ch.Version, ch.Row)
			obs.replicated = true
		case tablepolicy.Delete:
			r, err = h.store.Delete(ctx, ch.Key, ch.Table.FloorKey, ch.Version)
			obs.replicated = true
		case tablepolicy.Truncate:
			res.Key = ch.Table.Pattern
			r, err = h.raiseFloor(ctx, ch.Table, ch.Version, rowcache.FloorTruncate, "")
		}
	}
	obs.replied = time.Now()
	if err != nil {
		if errors.Is(err, rowcache.ErrForeignValue) {
			res.Err = &PermanentError{Reason: "foreign_value", Err: err}
		} else {
			res.Err = err
			obs.redisErr = err
		}
		return
	}
	switch r {
	case rowcache.Applied:
		res.Outcome = Applied
	case rowcache.Duplicate:
		res.Outcome = Duplicate
	case rowcache.Stale:
		res.Outcome = Stale
	case rowcache.Collided:
		res.Outcome, res.Reason = Applied, "version_collision"
	case rowcache.Truncated, rowcache.Resnapshotted, rowcache.SchemaChanged:
		res.Outcome, res.Reason = Stale, r.String()
	}
}
