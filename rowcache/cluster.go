package rowcache

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"
)

// The data layout on a Redis Cluster (Memorystore for Redis Cluster, Memorystore for Valkey).
//
// A cluster shards keys over 16,384 hash slots, and a script may only touch keys of one slot. The
// apply script reads a row's key and its table's floor together, so on a cluster the floor is kept once
// per slot: the copy for a row lives at SlotFloorKey(floorKey, KeySlot(rowKey)), a key whose hash tag
// is chosen to fall in the row's own slot. Rows keep their keys (and their templates' spread over the
// slots, so a table is shared by every shard); only the rare floor raises (a truncate, a completed
// snapshot, a row-removing DDL) pay, writing 16,384 small copies. A copy moves with its slot when the
// cluster is resharded, so the row and the floor it is checked against are always on one node, and the
// script stays atomic with the same guarantees as on one instance.
//
// The alternative, a hash tag per table in the key templates, would keep one floor but put a whole
// table in one slot, on one shard: a large table could not be spread, and would outgrow its shard.

// Slots is the number of hash slots of a Redis Cluster.
const Slots = 16384

// KeySlot returns the hash slot of key by the cluster's rule: CRC16 (XMODEM) of the key, or of its
// hash tag (the bytes between the first "{" and the first "}" after it, when not empty), mod 16384.
func KeySlot(key string) int {
	for i := 0; i < len(key); i++ {
		if key[i] == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						key = key[i+1 : j]
					}
					return int(crc16(key) % Slots)
				}
			}
			break
		}
	}
	return int(crc16(key) % Slots)
}

func crc16(s string) uint16 {
	var crc uint16
	for i := 0; i < len(s); i++ {
		crc ^= uint16(s[i]) << 8
		for b := 0; b < 8; b++ {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

var (
	slotTagsOnce sync.Once
	slotTags     [Slots]string
)

// SlotTag returns the hash tag of slot: the first of "0", "1", "2", … (decimal) whose slot is slot.
// It is part of the data layout (the per-slot floor copies are named with it): never change the rule.
func SlotTag(slot int) string {
	slotTagsOnce.Do(func() {
		left := Slots
		for n := 0; left > 0; n++ {
			t := strconv.Itoa(n)
			s := int(crc16(t) % Slots)
			if slotTags[s] == "" {
				slotTags[s] = t
				left--
			}
		}
	})
	return slotTags[slot]
}

// SlotFloorKey returns the key of floorKey's copy in slot: floorKey + ":{" + SlotTag(slot) + "}". A
// floor key must hold no "{" of its own (the table policy's escape them), or the tag would not be its
// first.
func SlotFloorKey(floorKey string, slot int) string {
	return floorKey + ":{" + SlotTag(slot) + "}"
}

// FloorKeyOf returns the key holding the floor that the row at rowKey is checked against: floorKey
// itself on one instance, the copy in the row's slot on a cluster. Fill checks a fill against this
// key; a reader passes it the floor it read from floorKey itself, which a raise writes before any
// copy, so a fill that read an older floor is refused in every slot whose copy has moved since.
func (s *Store) FloorKeyOf(floorKey, rowKey string) string {
	if s.cluster == nil {
		return floorKey
	}
	return SlotFloorKey(floorKey, KeySlot(rowKey))
}

// Cluster returns the cluster client s writes through, nil on one instance.
func (s *Store) Cluster() *redis.ClusterClient { return s.cluster }

// raiseSlotFloors writes the floor ver (with why) into every slot's copy of floorKey, each with the
// script's only-goes-up rule, pipelined (go-redis sends each slot's command to its primary, following
// MOVED and ASK). It runs before the sweep, so every change refused after it stays refused, and a
// change applied in a slot before its copy was written is older than the floor and swept.
func (s *Store) raiseSlotFloors(ctx context.Context, floorKey, ver string, why FloorReason, from int, done func(slots int) error) error {
	const batch = 2048
	for first := from; first < Slots; first += batch {
		for attempt := 0; ; attempt++ {
			pipe := s.rdb.Pipeline()
			cmds := make([]*redis.Cmd, 0, batch)
			for slot := first; slot < first+batch && slot < Slots; slot++ {
				cmds = append(cmds, s.script.EvalSha(ctx, pipe, []string{SlotFloorKey(floorKey, slot)}, "T", ver, string(why), "0", ""))
			}
			_, _ = pipe.Exec(ctx)
			var firstErr error
			for _, c := range cmds {
				if err := c.Err(); err != nil && firstErr == nil {
					firstErr = err
				}
			}
			if firstErr != nil && redis.HasErrorPrefix(firstErr, "NOSCRIPT") && attempt == 0 {
				if err := s.script.Load(ctx, s.rdb).Err(); err != nil {
					return err
				}
				continue
			}
			if firstErr != nil {
				return firstErr
			}
			break
		}
		if err := done(min(first+batch, Slots)); err != nil {
			return err
		}
	}
	return nil
}

// publish announces keys on a cluster's sharded invalidation channel (SPUBLISH: only the channel's
// shard forwards it, where PUBLISH would go to every node). The script cannot: a script may only
// SPUBLISH to a channel of its keys' slot, and readers would then subscribe to every slot's.
func (s *Store) publish(ctx context.Context, keys ...string) error {
	if s.cluster == nil || s.channel == "" || len(keys) == 0 {
		return nil
	}
	if len(keys) == 1 {
		return s.cluster.SPublish(ctx, s.channel, keys[0]).Err()
	}
	pipe := s.cluster.Pipeline()
	for _, k := range keys {
		pipe.SPublish(ctx, s.channel, k)
	}
	_, err := pipe.Exec(ctx)
	return err
}

// raiseClusterFloor is RaiseFloor's cluster half, after the table's floor key itself was raised (res):
// every slot's copy, then a sweep of every primary. Its progress is kept beside the floor as on one
// instance: the slots whose copies are written ("<floor> slots <n>", so that a retry of a raise cut off
// by the apply timeout resumes, and every retry gets further), then "<floor> done". The sweep itself
// is kept only whole: a retry of a sweep cut off part-way sweeps every primary again (each key is
// examined once more, nothing is deleted twice).
func (s *Store) raiseClusterFloor(ctx context.Context, t TableKeys, res Result, ver string, why FloorReason) (Result, int, error) {
	progressKey := t.FloorKey + ":sweep"
	from := 0
	if p, err := s.rdb.Get(ctx, progressKey).Result(); err == nil {
		if p == ver+" done" {
			return res, 0, nil
		}
		if n, ok := strings.CutPrefix(p, ver+" slots "); ok {
			from, _ = strconv.Atoi(n)
		}
	} else if !errors.Is(err, redis.Nil) {
		return 0, 0, fmt.Errorf("rowcache: sweep progress: %w", err)
	}
	mark := func(slots int) error {
		return s.rdb.Set(ctx, progressKey, ver+" slots "+strconv.Itoa(slots), 0).Err()
	}
	if err := s.raiseSlotFloors(ctx, t.FloorKey, ver, why, from, mark); err != nil {
		return 0, 0, fmt.Errorf("rowcache: %s floor in every slot: %w", why, err)
	}
	deleted, err := s.scanCluster(ctx, t, func(keys []string) (int, error) {
		n, err := s.sweep(ctx, keys, "x", ver)
		if err != nil {
			return n, fmt.Errorf("rowcache: %s sweep: %w", why, err)
		}
		return n, nil
	})
	if err != nil {
		return 0, deleted, err
	}
	if err := s.rdb.Set(ctx, progressKey, ver+" done", 0).Err(); err != nil {
		return 0, deleted, fmt.Errorf("rowcache: sweep progress: %w", err)
	}
	return res, deleted, nil
}

// ScanKeys hands every key matching pattern to batch, a SCAN batch at a time: on one instance one SCAN,
// on a cluster one per primary (ForEachMaster), each SCAN's batches in order, the primaries' in
// parallel (batch must be safe for concurrent use). On a cluster the walk is repeated while the slot
// map changed under it, or a slot was being migrated, at its start or end: a key moved from a primary
// not yet scanned to one already scanned would otherwise be missed. Keys may be handed over more than
// once.
func ScanKeys(ctx context.Context, rdb redis.Cmdable, pattern string, batch func(keys []string) error) error {
	cc, ok := rdb.(*redis.ClusterClient)
	if !ok {
		var cursor uint64
		for {
			keys, next, err := rdb.Scan(ctx, cursor, pattern, 1000).Result()
			if err != nil {
				return fmt.Errorf("rowcache: scan %q: %w", pattern, err)
			}
			if err := batch(keys); err != nil {
				return err
			}
			if next == 0 {
				return nil
			}
			cursor = next
		}
	}
	const attempts = 5
	for attempt := 1; ; attempt++ {
		before, stableBefore, err := topology(ctx, cc)
		if err != nil {
			return err
		}
		err = cc.ForEachMaster(ctx, func(ctx context.Context, node *redis.Client) error {
			var cursor uint64
			for {
				keys, next, err := node.Scan(ctx, cursor, pattern, 1000).Result()
				if err != nil {
					return fmt.Errorf("rowcache: scan %q on %s: %w", pattern, node.Options().Addr, err)
				}
				if err := batch(keys); err != nil {
					return err
				}
				if next == 0 {
					return nil
				}
				cursor = next
			}
		})
		if err != nil {
			return err
		}
		after, stableAfter, err := topology(ctx, cc)
		if err != nil {
			return err
		}
		if stableBefore && stableAfter && before == after {
			return nil
		}
		if attempt == attempts {
			return fmt.Errorf("rowcache: scan %q: the cluster's slots kept moving during %d scans of every primary", pattern, attempts)
		}
		// Let the next scan see the new primaries.
		cc.ReloadState(ctx)
	}
}

// topology is the cluster's slot assignment as one node reports it (CLUSTER NODES: each primary's id
// and slots), and whether no slot is being migrated.
func topology(ctx context.Context, cc *redis.ClusterClient) (string, bool, error) {
	text, err := cc.ClusterNodes(ctx).Result()
	if err != nil {
		return "", false, fmt.Errorf("rowcache: cluster nodes: %w", err)
	}
	stable := true
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) < 8 || !strings.Contains(f[2], "master") {
			continue
		}
		for _, slot := range f[8:] {
			if strings.HasPrefix(slot, "[") {
				stable = false
			}
		}
		lines = append(lines, f[0]+" "+strings.Join(f[8:], " "))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n"), stable, nil
}

// scanCluster is scan on a cluster: ScanKeys over every primary, t.Owns applied, the batches' counts
// summed.
func (s *Store) scanCluster(ctx context.Context, t TableKeys, batch func(keys []string) (int, error)) (int, error) {
	var mu sync.Mutex
	total := 0
	err := ScanKeys(ctx, s.rdb, t.Pattern, func(keys []string) error {
		if t.Owns != nil {
			owned := make([]string, 0, len(keys))
			for _, k := range keys {
				if t.Owns(k) {
					owned = append(owned, k)
				}
			}
			keys = owned
		}
		n, err := batch(keys)
		mu.Lock()
		total += n
		mu.Unlock()
		return err
	})
	return total, err
}

// Waiting for replicas on a cluster. WAIT waits until the replicas of the node it is sent to hold
// every write that node made for the connection it arrives on, so it must follow the script on the
// same connection, to the primary serving the row's slot: the ClusterClient routes each command on
// its own and would send a keyless WAIT to any node. The barrier is a write in the row's slot
// (barrierKey): on a cluster PUBLISH is carried by the cluster bus, not the replication stream, so it
// would not make a retry that found its change already stored (nothing written) wait for the earlier
// attempt's write. A redirect (MOVED, ASK: the slot moved or is moving) is an error, retried by the
// caller once the client reloaded the slot map: following it would split the script and its WAIT
// over two nodes.

// barrierTTL bounds how long a slot's barrier key outlives the last write of the slot.
const barrierTTL = time.Minute

// barrierKey is the replication barrier's key in slot.
func barrierKey(slot int) string { return BarrierChannel + ":{" + SlotTag(slot) + "}" }

// clusterBarrier queues the barrier write in slot and the WAIT on pipe, a pipeline of one node.
func (s *Store) clusterBarrier(ctx context.Context, pipe redis.Pipeliner, slot int) (*redis.StatusCmd, *redis.Cmd) {
	b := pipe.Set(ctx, barrierKey(slot), "", barrierTTL)
	return b, pipe.Do(ctx, "WAIT", s.replicas, s.waitTimeout.Milliseconds())
}

// runClusterScript is runScript on a cluster: the script, the barrier and the WAIT in one pipeline to
// the primary serving keys[0]'s slot (every key of a call is in that slot).
func (s *Store) runClusterScript(ctx context.Context, keys []string, args ...any) (int64, error) {
	node, err := s.cluster.MasterForKey(ctx, keys[0])
	if err != nil {
		return 0, fmt.Errorf("rowcache: the primary of %s: %w", keys[0], err)
	}
	slot := KeySlot(keys[0])
	for attempt := 0; ; attempt++ {
		pipe := node.Pipeline()
		var cmd *redis.Cmd
		if attempt == 0 {
			cmd = s.script.EvalSha(ctx, pipe, keys, args...)
		} else {
			cmd = s.script.Eval(ctx, pipe, keys, args...)
		}
		b, w := s.clusterBarrier(ctx, pipe, slot)
		_, _ = pipe.Exec(ctx)
		r, err := cmd.Int64()
		if err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			continue
		}
		if err != nil {
			return 0, s.redirected(ctx, node, err)
		}
		return r, s.waitedAfter(b, w)
	}
}

// redirected turns a MOVED or ASK answer of node into an error to retry; on it, and on an error that is
// not Redis's answer (the node is down or unreachable: a failover), it asks the client to reload its
// slot map, so that the retry goes to the slot's primary. Other errors pass as they are.
func (s *Store) redirected(ctx context.Context, node *redis.Client, err error) error {
	_, moved := redis.IsMovedError(err)
	_, ask := redis.IsAskError(err)
	var answer redis.Error
	if moved || ask || !errors.As(err, &answer) {
		s.cluster.ReloadState(ctx)
	}
	if moved || ask {
		return fmt.Errorf("rowcache: %s no longer serves the slot (the cluster is resharding; retry): %w", node.Options().Addr, err)
	}
	return err
}

// replicatedCluster is Replicated on a cluster: the barrier and a WAIT on every primary, in parallel,
// each in one of its slots.
func (s *Store) replicatedCluster(ctx context.Context) error {
	ranges, err := s.cluster.ClusterSlots(ctx).Result()
	if err != nil {
		return fmt.Errorf("rowcache: cluster slots: %w", err)
	}
	slotOf := map[string]int{} // a slot of each primary, by node ID
	for _, r := range ranges {
		if len(r.Nodes) > 0 {
			if _, ok := slotOf[r.Nodes[0].ID]; !ok {
				slotOf[r.Nodes[0].ID] = r.Start
			}
		}
	}
	var g errgroup.Group
	for _, slot := range slotOf {
		g.Go(func() error {
			node, err := s.cluster.MasterForKey(ctx, barrierKey(slot))
			if err != nil {
				return fmt.Errorf("rowcache: the primary of slot %d: %w", slot, err)
			}
			pipe := node.Pipeline()
			b, w := s.clusterBarrier(ctx, pipe, slot)
			_, _ = pipe.Exec(ctx)
			if b.Err() != nil {
				return s.redirected(ctx, node, fmt.Errorf("%w: the replication barrier on %s failed: %w", ErrNotReplicated, node.Options().Addr, b.Err()))
			}
			if err := s.waitedAfter(b, w); err != nil {
				return fmt.Errorf("%w (primary %s)", err, node.Options().Addr)
			}
			return nil
		})
	}
	return g.Wait()
}
