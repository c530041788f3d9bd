package readcache

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// subscription holds a Redis subscription to one channel and says whether it can be trusted to
// deliver every message. A connection that dies silently (a dead peer, a dropped NAT entry: no FIN,
// no RST) looks open and simply stops delivering; go-redis's Receive then blocks forever. So a PING is
// sent through the subscription every interval and the subscription counts as dead when nothing at
// all (a message, a pong, a confirmation) has arrived for deadAfter: it is then closed and made again
// on a new connection. up(false) is called on every failure, up(true) once a new subscription is
// confirmed; messages may have been lost in between.
type subscription struct {
	rdb       redis.UniversalClient
	channel   string
	interval  time.Duration
	deadAfter time.Duration
	message   func(payload string)
	up        func(bool)

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	mu     sync.Mutex
	ps     *redis.PubSub
}

func startSubscription(ctx context.Context, rdb redis.UniversalClient, channel string, interval time.Duration, message func(string), up func(bool)) *subscription {
	s := &subscription{rdb: rdb, channel: channel, interval: interval, deadAfter: 4 * interval, message: message, up: up, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go s.run()
	return s
}

// close stops the subscription and waits for its goroutines.
func (s *subscription) close() error {
	s.cancel()
	s.mu.Lock()
	var err error
	if s.ps != nil {
		err = s.ps.Close() // unblocks Receive
	}
	s.mu.Unlock()
	<-s.done
	return err
}

func (s *subscription) run() {
	defer close(s.done)
	for s.ctx.Err() == nil {
		s.mu.Lock()
		if s.ctx.Err() != nil {
			s.mu.Unlock()
			return
		}
		s.ps = s.subscribe()
		ps := s.ps
		s.mu.Unlock()
		s.receive(ps)
		s.up(false)
		_ = ps.Close()
		pause := 100 * time.Millisecond // no tight loop while Redis is down
		if cc, ok := s.rdb.(*redis.ClusterClient); ok {
			// The channel's slot may have moved (a reshard: the old primary sent sunsubscribe) or its
			// primary failed over: subscribe again where the slot is now, once the client has a new slot
			// map (ReloadState reloads it in the background).
			cc.ReloadState(s.ctx)
			pause = 200 * time.Millisecond
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(pause):
		}
	}
}

// subscribe subscribes to the channel: PUBLISH's on one instance; on a cluster the sharded channel the
// apply function SPUBLISHes to, on the primary serving its slot.
func (s *subscription) subscribe() *redis.PubSub {
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		return cc.SSubscribe(s.ctx, s.channel)
	}
	return s.rdb.Subscribe(s.ctx, s.channel)
}

// receive delivers ps's messages until it fails or stays silent for deadAfter.
func (s *subscription) receive(ps *redis.PubSub) {
	pctx, stop := context.WithCancel(s.ctx)
	defer stop()
	go func() {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		for {
			select {
			case <-pctx.Done():
				return
			case <-t.C:
				_ = ps.Ping(pctx) // a write error shows as the silence the receiver notices
			}
		}
	}()
	confirmed := false
	for {
		msg, err := ps.ReceiveTimeout(s.ctx, s.deadAfter)
		if err != nil || s.ctx.Err() != nil {
			return // closed, failed, or silent for deadAfter: a new subscription on a new connection
		}
		switch m := msg.(type) {
		case *redis.Subscription:
			if (m.Kind == "subscribe" || m.Kind == "ssubscribe") && m.Channel == s.channel {
				if confirmed {
					// go-redis reconnected and subscribed again by itself (a Ping's write failed while
					// nothing was receiving): messages may have been lost in between.
					s.up(false)
				}
				confirmed = true
				s.up(true)
			} else if m.Kind == "unsubscribe" || m.Kind == "sunsubscribe" {
				return
			}
		case *redis.Message:
			s.message(m.Payload)
		case *redis.Pong:
		}
	}
}
