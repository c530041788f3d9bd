package relay

import (
	"context"
	"sync"
)

// slowStartInitial is the push window a slow-starting relay begins with.
const slowStartInitial = 3

// pushWindow bounds the POSTs in flight. Fixed, it is MaxInFlight places. With slow start it models
// Pub/Sub's push flow control. Pub/Sub's push documentation (https://cloud.google.com/pubsub/docs/push,
// "Push subscription workflow", step 3) says: "Pub/Sub dynamically adjusts the rate of push requests
// based on the rate at which it receives success responses"; its flow-control description (a slow
// start: few outstanding pushes at first, more after each success, fewer after each failure, a
// non-success status such as 429 or 503 or no answer in time) is what the issue cites, but the stored
// copies read through the search tool do not include it or any constant. So the constants are TCP
// slow start's, which that description is named after: the window starts at slowStartInitial, gains
// one place per acknowledged push while the window is full (doubling every round trip while every push succeeds and more wait), halves on
// each failure (never below one), and never exceeds MaxInFlight.
type pushWindow struct {
	mu       sync.Mutex
	cond     *sync.Cond
	limit    int // the window now
	max      int
	slow     bool
	inFlight int
}

func newPushWindow(max int, slowStart bool) *pushWindow {
	w := &pushWindow{limit: max, max: max, slow: slowStart}
	if slowStart {
		w.limit = min(slowStartInitial, max)
	}
	w.cond = sync.NewCond(&w.mu)
	return w
}

// acquire waits for a place in the window; false if ctx ended first.
func (w *pushWindow) acquire(ctx context.Context) bool {
	stop := context.AfterFunc(ctx, func() {
		w.mu.Lock()
		w.cond.Broadcast()
		w.mu.Unlock()
	})
	defer stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.inFlight >= w.limit {
		if ctx.Err() != nil {
			return false
		}
		w.cond.Wait()
	}
	if ctx.Err() != nil {
		return false
	}
	w.inFlight++
	return true
}

// release gives a place back, with the push's result: acknowledged or not.
func (w *pushWindow) release(acked bool) {
	w.mu.Lock()
	full := w.inFlight >= w.limit
	w.inFlight--
	if w.slow {
		if acked {
			if full { // grown only while it limits, as TCP's (RFC 7661): an idle window stays small
				w.limit = min(w.limit+1, w.max)
			}
		} else {
			w.limit = max(w.limit/2, 1)
		}
	}
	w.cond.Broadcast()
	w.mu.Unlock()
}

func (w *pushWindow) size() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.limit
}
