package function

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/pubsub/v2"
	pb "cloud.google.com/go/pubsub/v2/apiv1/pubsubpb"
	"github.com/redis/go-redis/v9"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/cloudsql-cache/cloudsql-cache/function/losswatch"
	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// startWatcher runs the loss watcher (function/losswatch) for as long as the function runs; the
// returned function stops it and releases its Pub/Sub clients.
func startWatcher(ctx context.Context, cfg Config, deps Deps, logger *slog.Logger, rdb *redis.Client, store *rowcache.Store) (func() error, error) {
	o := losswatch.Options{
		Redis: rdb, Interval: cfg.WatchInterval, SeekMargin: cfg.SeekMargin, SeekMax: cfg.SeekMax,
		Logger: logger, MeterProvider: deps.MeterProvider,
	}
	if store.ReplicaWait() > 0 {
		o.Replicated = store.Replicated
	}
	var closers []func() error
	if len(cfg.RepairSubscriptions) > 0 {
		s := &subscriptionSeeker{subs: cfg.RepairSubscriptions, clients: map[string]*pubsub.Client{}}
		for _, sub := range cfg.RepairSubscriptions {
			project := strings.Split(sub, "/")[1]
			if _, ok := s.clients[project]; ok {
				continue
			}
			c, err := pubsub.NewClient(ctx, project, deps.PubSubOptions...)
			if err != nil {
				for _, c := range s.clients {
					_ = c.Close()
				}
				return nil, fmt.Errorf("function: Pub/Sub client for REPAIR_SUBSCRIPTIONS: %w", err)
			}
			s.clients[project] = c
			closers = append(closers, c.Close)
		}
		o.Seeker = s
	}
	w, err := losswatch.New(o)
	if err != nil {
		return nil, err
	}
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() { defer close(done); w.Run(wctx) }()
	return func() error {
		cancel()
		<-done
		var errs []error
		for _, c := range closers {
			errs = append(errs, c())
		}
		return errors.Join(errs...)
	}, nil
}

// subscriptionSeeker seeks every repair subscription to a time: Pub/Sub then delivers again every
// retained message published since, acknowledged or not.
type subscriptionSeeker struct {
	subs    []string
	clients map[string]*pubsub.Client // by project
}

// seekConcurrency is how many subscriptions are sought at once. A repair has one deadline for every
// seek (the check's, at least 10 s) and a failed one seeks them all again at the next check: one at a
// time, a deployment of many tables (a subscription each, 100–500 ms a seek) would miss the deadline at
// every check and never be repaired, replaying the first subscriptions again each time.
const seekConcurrency = 16

func (s *subscriptionSeeker) Seek(ctx context.Context, t time.Time) error {
	errs := make([]error, len(s.subs))
	sem := make(chan struct{}, seekConcurrency)
	var wg sync.WaitGroup
	for i, sub := range s.subs {
		c := s.clients[strings.Split(sub, "/")[1]]
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			_, err := c.SubscriptionAdminClient.Seek(ctx, &pb.SeekRequest{Subscription: sub, Target: &pb.SeekRequest_Time{Time: timestamppb.New(t)}})
			if err != nil {
				errs[i] = fmt.Errorf("seek %s to %s: %w", sub, t.UTC().Format(time.RFC3339), err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}
