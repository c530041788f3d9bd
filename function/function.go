// Package function wires the apply handler from the environment and registers it with the Functions
// Framework for Go, as the HTTP function Name. Cloud Run runs it from the image built from
// cmd/cloudsql-cache-function; a push subscription POSTs every change event to it.
package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"cloud.google.com/go/pubsub/v2"
	"github.com/GoogleCloudPlatform/functions-framework-go/functions"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/metric"
	"google.golang.org/api/option"

	"github.com/cloudsql-cache/cloudsql-cache/function/apply"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy/published"
)

// Name is the function's name in the Functions Framework (FUNCTION_TARGET).
const Name = "Apply"

// Deps are what the environment does not configure: where logs and metrics go, what the function
// calls itself, and (in tests) how to reach Pub/Sub.
type Deps struct {
	Logger        *slog.Logger
	MeterProvider metric.MeterProvider
	PubSubOptions []option.ClientOption
	// Version names the function in the table policy it publishes (Version(os.Getenv) on Cloud Run);
	// "" is "unknown".
	Version string
	// PolicyHeartbeat is how often the policy is published again; 0 is published.HeartbeatInterval.
	PolicyHeartbeat time.Duration
}

// New builds the handler for cfg. Close releases its Redis and Pub/Sub clients.
func New(ctx context.Context, cfg Config, deps Deps) (h *apply.Handler, closeFn func() error, err error) {
	policy, err := tablepolicy.New(cfg.Policy)
	if err != nil {
		return nil, nil, err
	}
	// A *redis.Client for a standalone Redis, a *redis.ClusterClient for a cluster (REDIS_MODE): the
	// Store takes the cluster's layout from the client it is given.
	rdb, err := cfg.Redis.NewUniversalClient()
	if err != nil {
		return nil, nil, fmt.Errorf("function: %w", err)
	}
	var closers []func() error
	closeAll := func() error {
		var errs []error
		for i := len(closers) - 1; i >= 0; i-- {
			errs = append(errs, closers[i]())
		}
		return errors.Join(errs...)
	}
	logger := deps.Logger
	if logger == nil {
		// First, so that it is released last, after every client that may still log.
		var closeLog func() error
		if logger, closeLog, err = NewProjectLogger(os.Stdout, slog.LevelInfo, cfg.Project); err != nil {
			return nil, nil, err
		}
		closers = append(closers, closeLog)
	}
	closers = append(closers, rdb.Close)
	var dlq apply.DeadLetterer
	if cfg.DeadLetterTopic != NackDeadLetters {
		project := strings.Split(cfg.DeadLetterTopic, "/")[1]
		client, err := pubsub.NewClient(ctx, project, deps.PubSubOptions...)
		if err != nil {
			_ = closeAll()
			return nil, nil, fmt.Errorf("function: Pub/Sub client for DEAD_LETTER_TOPIC: %w", err)
		}
		pub := client.Publisher(cfg.DeadLetterTopic)
		// A dead letter is published synchronously inside a request: do not wait to fill a batch.
		pub.PublishSettings.DelayThreshold = time.Millisecond
		closers = append(closers, client.Close, func() error { pub.Stop(); return nil })
		dlq = apply.NewPubSubDeadLetter(pub)
	}
	store := rowcache.NewStore(rdb, cfg.TombstoneTTL).WithInvalidationChannel(cfg.InvalidationChannel).WithReplicaWait(cfg.WaitReplicas, cfg.WaitTimeout)
	h, err = apply.New(apply.Options{
		Store:         store,
		Policy:        policy,
		DeadLetter:    dlq,
		MaxBody:       cfg.MaxBodyBytes,
		Timeout:       cfg.ApplyTimeout,
		Logger:        logger,
		MeterProvider: deps.MeterProvider,
	})
	if err != nil {
		_ = closeAll()
		return nil, nil, err
	}
	// The policy is published for readers (tablepolicy/published) now, and again every heartbeat for
	// as long as this instance runs: readers count a policy as the function's while it is seen.
	version, every := deps.Version, deps.PolicyHeartbeat
	if version == "" {
		version = "unknown"
	}
	if every <= 0 {
		every = published.HeartbeatInterval
	}
	pubCtx, cancel := context.WithTimeout(ctx, cfg.Redis.Timeout)
	defer cancel()
	if err := published.Publish(pubCtx, rdb, policy, version, time.Now()); err != nil {
		// Not fatal: deliveries are answered 503 until Redis is back, and Pub/Sub retries them; the
		// heartbeat publishes the policy once Redis answers.
		logger.Warn("Redis is not reachable at start-up: the table policy is not published yet", "redis_addr", cfg.Redis.Addr, "error", err.Error())
	}
	hbCtx, stopHeartbeat := context.WithCancel(context.WithoutCancel(ctx))
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		published.Heartbeat(hbCtx, rdb, policy, version, every, func(err error) {
			logger.Warn("the table policy could not be published", "redis_addr", cfg.Redis.Addr, "error", err.Error())
		})
	}()
	// After rdb's closer in the list, so run before it.
	closers = append(closers, func() error { stopHeartbeat(); <-hbDone; return nil })
	one, standalone := rdb.(*redis.Client)
	if cfg.WatchInterval > 0 && !standalone {
		logger.Warn("the loss watcher does not run on a cluster (REDIS_MODE=cluster) yet: a shard's restart or failover is not noticed; see the README's On a cluster")
	}
	if cfg.WatchInterval > 0 && standalone {
		stop, err := startWatcher(ctx, cfg, deps, logger, one, store)
		if err != nil {
			_ = closeAll()
			return nil, nil, err
		}
		closers = append(closers, stop)
	}
	return h, closeAll, nil
}

// Register reads the configuration from getenv, builds the handler and registers it with the Functions
// Framework. The returned function releases the handler's clients.
func Register(ctx context.Context, getenv func(string) string, deps Deps) (closeFn func() error, err error) {
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return nil, err
	}
	return RegisterConfig(ctx, cfg, deps)
}

// RegisterConfig builds the handler for cfg and registers it with the Functions Framework.
func RegisterConfig(ctx context.Context, cfg Config, deps Deps) (closeFn func() error, err error) {
	h, closeFn, err := New(ctx, cfg, deps)
	if err != nil {
		return nil, err
	}
	functions.HTTP(Name, Traced(h.ServeHTTP))
	return closeFn, nil
}
