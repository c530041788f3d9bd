package readcache

import (
	"sync"
	"time"
)

// breaker stops calling Redis after consecutive failures, so that a slow or dead Redis costs each
// read one quick skip instead of a timeout, and lets one probe through per cool-down to notice
// recovery. The cool-down doubles while probes fail, up to max.
type breaker struct {
	threshold     int
	base, max     time.Duration
	now           func() time.Time
	mu            sync.Mutex
	failures      int
	cooldown      time.Duration
	openUntil     time.Time
	probeInFlight bool
}

func newBreaker(threshold int, base, max time.Duration) *breaker {
	return &breaker{threshold: threshold, base: base, max: max, cooldown: base, now: time.Now}
}

// allow reports whether to call Redis now; probe is true for the one call let through while open.
func (b *breaker) allow() (ok, probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.failures < b.threshold {
		return true, false
	}
	if b.probeInFlight || b.now().Before(b.openUntil) {
		return false, false
	}
	b.probeInFlight = true
	return true, true
}

func (b *breaker) success(probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures = 0
	b.cooldown = b.base
	if probe {
		b.probeInFlight = false
	}
}

// release gives back a probe whose call ended without telling anything about Redis (the caller gave
// up, or the pool was exhausted), so the next call may probe.
func (b *breaker) release(probe bool) {
	if !probe {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.probeInFlight = false
}

func (b *breaker) failure(probe bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.failures++
	if probe {
		b.probeInFlight = false
		b.cooldown = min(2*b.cooldown, b.max)
	}
	if b.failures >= b.threshold {
		b.openUntil = b.now().Add(b.cooldown)
	}
}
