package readcache

import (
	"container/list"
	"sync"
	"time"
)

// l1 is a size-bounded LRU of rows in the service's own memory. It is only trusted while the
// invalidation subscription is up: every key the apply script changes is published, and the
// subscriber drops it here. gen counts invalidations, so a read that raced one (it fetched the row
// from Redis just before the change, and would store it just after the invalidation went by) does not
// store its now-stale row.
type l1 struct {
	mu      sync.Mutex
	size    int
	maxAge  time.Duration
	ll      *list.List
	items   map[string]*list.Element
	gen     uint64
	healthy bool
	// downs counts the subscription's failures (tests wait for a resubscription with it).
	downs int
	now   func() time.Time
}

type l1entry struct {
	key    string
	row    Row
	stored time.Time
}

func newL1(size int, maxAge time.Duration) *l1 {
	return &l1{size: size, maxAge: maxAge, ll: list.New(), items: map[string]*list.Element{}, now: time.Now}
}

// get returns the row and the current generation (to pass to put after a Redis read).
func (c *l1) get(key string) (Row, bool, uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.healthy {
		return Row{}, false, c.gen
	}
	if el, ok := c.items[key]; ok {
		e := el.Value.(*l1entry)
		if c.now().Sub(e.stored) < c.maxAge {
			c.ll.MoveToFront(el)
			return e.row, true, c.gen
		}
		c.remove(el)
	}
	return Row{}, false, c.gen
}

// put stores row unless an invalidation arrived since gen was read, or the subscription is down.
func (c *l1) put(key string, row Row, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.healthy || c.gen != gen {
		return
	}
	if el, ok := c.items[key]; ok {
		el.Value.(*l1entry).row, el.Value.(*l1entry).stored = row, c.now()
		c.ll.MoveToFront(el)
		return
	}
	c.items[key] = c.ll.PushFront(&l1entry{key: key, row: row, stored: c.now()})
	for c.ll.Len() > c.size {
		c.remove(c.ll.Back())
	}
}

func (c *l1) invalidate(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	if el, ok := c.items[key]; ok {
		c.remove(el)
	}
}

// setHealthy empties the cache on every change of the subscription's state: while it was down,
// invalidations may have been missed.
func (c *l1) setHealthy(ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.healthy = ok
	if !ok {
		c.downs++
	}
	c.ll.Init()
	clear(c.items)
}

func (c *l1) remove(el *list.Element) {
	c.ll.Remove(el)
	delete(c.items, el.Value.(*l1entry).key)
}
