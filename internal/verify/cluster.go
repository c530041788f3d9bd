package verify

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// On a cluster (Config.Redis a *redis.ClusterClient) a SCAN covers one node only, and MGET keys of one
// slot only. The extras pass walks every primary in turn behind one resumable cursor, and the lookups
// are pipelined GETs, which go-redis sends to each key's primary.

// nodeBits is how much of a cluster cursor is the node's own SCAN cursor; the primary's index is above
// it. A node's cursor is a position in its hash table, far below 2^48 for any node's memory.
const nodeBits = 48

// scan is SCAN on one instance; on a cluster a walk of every primary in order of their first slot,
// cursor = primary index << nodeBits | that primary's cursor. A primary that gives up its slots or a
// failover during the walk may shift the order, so a walk across a resharding may miss extra keys:
// run verify again after one.
func scan(ctx context.Context, rdb redis.UniversalClient, cursor uint64, match string, count int64) ([]string, uint64, error) {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		return rdb.Scan(ctx, cursor, match, count).Result()
	}
	primaries, err := primariesBySlot(ctx, cc)
	if err != nil {
		return nil, 0, err
	}
	i, nodeCursor := int(cursor>>nodeBits), cursor&(1<<nodeBits-1)
	if i >= len(primaries) {
		return nil, 0, nil
	}
	node, err := cc.MasterForKey(ctx, primaries[i])
	if err != nil {
		return nil, 0, fmt.Errorf("primary of slot %s: %w", primaries[i], err)
	}
	keys, next, err := node.Scan(ctx, nodeCursor, match, count).Result()
	if err != nil {
		return nil, 0, err
	}
	if next >= 1<<nodeBits {
		return nil, 0, errors.New("a node's SCAN cursor does not fit a cluster cursor")
	}
	if next == 0 {
		if i+1 == len(primaries) {
			return keys, 0, nil
		}
		return keys, uint64(i+1) << nodeBits, nil
	}
	return keys, uint64(i)<<nodeBits | next, nil
}

// primariesBySlot names each primary by a key in its first slot, in slot order.
func primariesBySlot(ctx context.Context, cc *redis.ClusterClient) ([]string, error) {
	slots, err := cc.ClusterSlots(ctx).Result()
	if err != nil {
		return nil, fmt.Errorf("CLUSTER SLOTS: %w", err)
	}
	first := map[string]int{}
	for _, s := range slots {
		if len(s.Nodes) == 0 {
			continue
		}
		id := s.Nodes[0].ID
		if f, ok := first[id]; !ok || s.Start < f {
			first[id] = s.Start
		}
	}
	starts := make([]int, 0, len(first))
	for _, f := range first {
		starts = append(starts, f)
	}
	sort.Ints(starts)
	keys := make([]string, len(starts))
	for i, s := range starts {
		keys[i] = slotKey(s)
	}
	return keys, nil
}

// mget is MGET on one instance, pipelined GETs on a cluster; absent keys are nil, as MGET's.
func mget(ctx context.Context, rdb redis.UniversalClient, keys ...string) ([]any, error) {
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		return rdb.MGet(ctx, keys...).Result()
	}
	pipe := rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(keys))
	for i, k := range keys {
		cmds[i] = pipe.Get(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	vals := make([]any, len(keys))
	for i, c := range cmds {
		if v, err := c.Result(); err == nil {
			vals[i] = v
		}
	}
	return vals, nil
}

func slotKey(slot int) string { return "{" + rowcache.SlotTag(slot) + "}" }
