package rowcache

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

//go:embed apply.lua
var applySource string

// Result is what the script did with a change.
type Result int

const (
	// Applied: the change was newer than the stored version and is now stored.
	Applied Result = iota + 1
	// Duplicate: the stored version and value equal the change's; nothing was written.
	Duplicate
	// Stale: a newer version is stored; nothing was written.
	Stale
	// Truncated: the table was truncated after the change; nothing was written.
	Truncated
	// Resnapshotted: a snapshot of the table taken after the change has completed; nothing was written.
	Resnapshotted
	// SchemaChanged: a DDL statement after the change removed or replaced the table's rows (DROP,
	// RENAME, partition DDL, a changed row shape); nothing was written.
	SchemaChanged
	// Collided: the stored version equals the change's but the stored value differs: two changes share
	// a version (a compressed transaction without transaction metadata). The change, delivered after
	// the stored one in the key's order, is now stored.
	Collided
)

func (r Result) String() string {
	switch r {
	case Applied:
		return "applied"
	case Duplicate:
		return "duplicate"
	case Stale:
		return "stale"
	case Truncated:
		return "truncated"
	case Resnapshotted:
		return "resnapshot"
	case SchemaChanged:
		return "ddl"
	case Collided:
		return "version_collision"
	}
	return "unknown"
}

// BelowFloor reports whether r refused a change because the table's floor is newer than it.
func (r Result) BelowFloor() bool { return r == Truncated || r == Resnapshotted || r == SchemaChanged }

// FloorReason says why a table's floor was raised: every cached row of the table older than the floor
// is removed, and every older change refused.
type FloorReason string

const (
	// FloorTruncate: TRUNCATE TABLE.
	FloorTruncate FloorReason = "truncate"
	// FloorSnapshot: a snapshot of the table completed; its rows carry the floor's position.
	FloorSnapshot FloorReason = "snapshot"
	// FloorDDL: a DDL statement removed or replaced the table's rows without row events.
	FloorDDL FloorReason = "ddl"
)

// ParseFloor decodes a table's floor as the script stores it: "<version>" (a truncate's, and every
// floor written before floors had reasons) or "<version> <reason>".
func ParseFloor(value string) (Version, FloorReason, error) {
	head, why, ok := strings.Cut(value, " ")
	v, err := ParseVersion(head)
	if err != nil {
		return Version{}, "", fmt.Errorf("rowcache: floor %q: %w", value, err)
	}
	if !ok {
		return v, FloorTruncate, nil
	}
	switch r := FloorReason(why); r {
	case FloorSnapshot, FloorDDL, FloorTruncate:
		return v, r, nil
	}
	return Version{}, "", fmt.Errorf("rowcache: floor %q: unknown reason %q", value, why)
}

// TableKeys names the keys of one table for a sweep.
type TableKeys struct {
	// FloorKey holds the table's floor.
	FloorKey string
	// Pattern is a SCAN MATCH glob matching every key of the table (and possibly others).
	Pattern string
	// Owns reports whether a key that Pattern matched really is one of the table's; nil: every key
	// Pattern matches is. Only keys it owns are examined, so a glob that matches another table's keys
	// can never remove that table's rows.
	Owns func(key string) bool
}

// ErrForeignValue means a key the cache would write holds a value that is not a cloudsql-cache row
// (another application's key, or a non-string type). Retrying cannot help.
var ErrForeignValue = errors.New("rowcache: key holds a value that is not a cloudsql-cache row")

// DefaultInvalidationChannel is the pub/sub channel on which the script announces every key it
// changes, for the read path's in-process caches.
const DefaultInvalidationChannel = "cloudsql-cache:invalidations"

// ErrNotReplicated means Redis applied a write but fewer replicas than required confirmed it in time:
// a failover now could lose it, so it must not be acknowledged. Applying it again is safe (the script
// is idempotent) and waits again.
var ErrNotReplicated = errors.New("rowcache: the write did not reach enough replicas in time")

// BarrierChannel is the pub/sub channel of the replication barrier: a PUBLISH to it (nobody listens) is
// replicated like a write, so a WAIT after it covers every write the server made before it, on any
// connection, including a write of an earlier attempt that this one found already stored.
const BarrierChannel = "cloudsql-cache:replicated"

// Store applies versioned changes to Redis. It is safe for concurrent use.
type Store struct {
	rdb          redis.Cmdable
	cluster      *redis.ClusterClient // rdb, on a cluster
	script       *redis.Script
	tombstoneTTL time.Duration
	channel      string
	// replicas is how many replicas must confirm each write (0: none), within waitTimeout.
	replicas    int
	waitTimeout time.Duration
}

// NewStore returns a Store writing through rdb. Tombstones expire after tombstoneTTL (0: never); the
// TTL must outlast any redelivery or replay of the deleted row's older changes, or such a late change
// could bring the row back. Every key changed is published on DefaultInvalidationChannel.
//
// With a *redis.ClusterClient the Store uses the cluster's layout (cluster.go): each row is checked
// against its table's floor copy in its own slot, floors are raised in every slot, sweeps scan every
// primary, and changed keys are announced with SPUBLISH (sharded pub/sub) instead of PUBLISH.
func NewStore(rdb redis.Cmdable, tombstoneTTL time.Duration) *Store {
	s := &Store{rdb: rdb, script: redis.NewScript(applySource), tombstoneTTL: tombstoneTTL, channel: DefaultInvalidationChannel}
	s.cluster, _ = rdb.(*redis.ClusterClient)
	return s
}

// WithInvalidationChannel returns a copy of s that announces changed keys on channel ("" for none).
func (s *Store) WithInvalidationChannel(channel string) *Store {
	c := *s
	c.channel = channel
	return &c
}

// WithReplicaWait returns a copy of s whose Upsert and Delete return only once at least replicas
// replicas hold the write (and every write the server made before it), or ErrNotReplicated after
// timeout; Replicated does the same for any other writes. replicas 0 waits for nothing. On a cluster
// the replicas are those of the primary that took the write (cluster.go, runClusterScript).
func (s *Store) WithReplicaWait(replicas int, timeout time.Duration) *Store {
	c := *s
	c.replicas, c.waitTimeout = replicas, timeout
	return &c
}

// ReplicaWait reports how many replicas each write waits for (0: none).
func (s *Store) ReplicaWait() int { return s.replicas }

// Replicated waits until the configured number of replicas hold every write the server made so far,
// through the barrier; nil at once when the Store waits for none.
func (s *Store) Replicated(ctx context.Context) error {
	if s.replicas == 0 {
		return nil
	}
	if s.cluster != nil {
		return s.replicatedCluster(ctx)
	}
	pipe := s.rdb.Pipeline()
	w := s.barrier(ctx, pipe)
	_, _ = pipe.Exec(ctx)
	return s.waited(w)
}

// barrier queues the barrier's PUBLISH and the WAIT on pipe. WAIT waits for the replication offset Redis
// recorded for this connection, and a retry that wrote nothing (duplicate) must not depend on which
// commands record it: the PUBLISH is replicated, always, so a retry that finds its change already stored (duplicate: nothing
// written) still waits for the earlier attempt's write, which may be on another connection.
//
// A pipeline's reply is read under the client's read timeout, so the WAIT timeout must be shorter.
func (s *Store) barrier(ctx context.Context, pipe redis.Pipeliner) *redis.Cmd {
	pipe.Publish(ctx, BarrierChannel, "")
	return pipe.Do(ctx, "WAIT", s.replicas, s.waitTimeout.Milliseconds())
}

func (s *Store) waited(w *redis.Cmd) error {
	return s.waitedAfter(nil, w)
}

// waitedAfter is waited for a WAIT after the barrier write b (nil: none to check): a barrier that
// failed leaves the WAIT nothing of this connection's to wait for, so it confirms nothing.
func (s *Store) waitedAfter(b redis.Cmder, w *redis.Cmd) error {
	if b != nil && b.Err() != nil {
		return fmt.Errorf("%w: the replication barrier failed: %v", ErrNotReplicated, b.Err())
	}
	n, err := w.Int64()
	if err != nil {
		return fmt.Errorf("rowcache: WAIT: %w", err)
	}
	if n < int64(s.replicas) {
		return fmt.Errorf("%w: %d of %d replicas within %v", ErrNotReplicated, n, s.replicas, s.waitTimeout)
	}
	return nil
}

// Fill stores a row read from the database (row nil: "not found") at key, but only if the key holds
// nothing at all and the table's floor (floorKey) still holds floor, the value the caller read before
// its database read ("" for none): a fill never replaces a change, a tombstone or another fill, and
// never lands across a truncate, a completed snapshot or a DDL sweep. It expires after ttl, which bounds how long a fill that lost a race
// (the row changed and was evicted while the fill was in flight) can be served. It reports whether the
// fill was stored.
func (s *Store) Fill(ctx context.Context, key, floorKey, floor string, row []byte, ttl time.Duration) (bool, error) {
	var value []byte
	if row == nil {
		value = Version{}.AppendTo(nil)
	} else {
		value = EncodeRow(Version{}, row)
	}
	r, err := s.script.Run(ctx, s.rdb, []string{key, s.FloorKeyOf(floorKey, key)}, "f", "", value, strconv.FormatInt(ttl.Milliseconds(), 10), "", floor).Int()
	if err != nil {
		return false, fmt.Errorf("rowcache: fill %s: %w", key, err)
	}
	return r == 1, nil
}

// FillRequest is one fill of FillMany: Fill's arguments.
type FillRequest struct {
	Key, FloorKey, Floor string
	Row                  []byte // nil: "not found"
	TTL                  time.Duration
}

// FillResult is what became of one fill of FillMany: stored, refused (a change, a tombstone or another
// fill was there, or the floor moved), or failed with Err.
type FillResult struct {
	Stored bool
	Err    error
}

// FillMany makes the fills in one pipeline (on a cluster, one per node, sent in parallel), each under
// Fill's rule, and says what became of each.
func (s *Store) FillMany(ctx context.Context, fills []FillRequest) []FillResult {
	res := make([]FillResult, len(fills))
	pending := make([]int, len(fills))
	for i := range fills {
		pending[i] = i
	}
	for attempt := 0; len(pending) > 0; attempt++ {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(pending))
		for j, i := range pending {
			f := fills[i]
			value := Version{}.AppendTo(nil)
			if f.Row != nil {
				value = EncodeRow(Version{}, f.Row)
			}
			keys := []string{f.Key, s.FloorKeyOf(f.FloorKey, f.Key)}
			args := []any{"f", "", value, strconv.FormatInt(f.TTL.Milliseconds(), 10), "", f.Floor}
			if attempt == 0 {
				cmds[j] = s.script.EvalSha(ctx, pipe, keys, args...)
			} else {
				cmds[j] = s.script.Eval(ctx, pipe, keys, args...)
			}
		}
		_, _ = pipe.Exec(ctx)
		var again []int
		for j, cmd := range cmds {
			i := pending[j]
			r, err := cmd.Int()
			switch {
			case err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT"):
				// That node's script cache is empty (a restart, a failover): send the source.
				again = append(again, i)
			case err != nil:
				res[i].Err = fmt.Errorf("rowcache: fill %s: %w", fills[i].Key, err)
			default:
				res[i].Stored = r == 1
			}
		}
		pending = again
	}
	return res
}

// Upsert stores row (a JSON object) at key with version v if v is newer than the stored version and
// not older than the table's floor at floorKey.
func (s *Store) Upsert(ctx context.Context, key, floorKey string, v Version, row []byte) (Result, error) {
	return s.change(ctx, key, floorKey, "u", v.String(), EncodeRow(v, row), 0)
}

// Delete replaces the row at key with a tombstone carrying v, under the same rule as Upsert.
func (s *Store) Delete(ctx context.Context, key, floorKey string, v Version) (Result, error) {
	return s.change(ctx, key, floorKey, "d", v.String(), "", s.tombstoneTTL.Milliseconds())
}

// change runs an upsert or a delete. On a cluster the key is announced after the script (cluster.go,
// publish), also when the change was a duplicate: a change whose announcement failed, or was cut off by
// a crash, is answered with an error or not at all, redelivered, found a duplicate and announced then.
func (s *Store) change(ctx context.Context, key, floorKey, mode, ver string, value any, ttlMillis int64) (Result, error) {
	r, err := s.run(ctx, []string{key, s.FloorKeyOf(floorKey, key)}, mode, ver, value, ttlMillis)
	if err != nil || s.cluster == nil {
		return r, err
	}
	if r == Applied || r == Collided || r == Duplicate {
		if err := s.publish(ctx, key); err != nil {
			return 0, fmt.Errorf("rowcache: announce %s on %s: %w", key, s.channel, err)
		}
	}
	return r, nil
}

// Truncate records that a table was truncated at version v: RaiseFloor with FloorTruncate.
func (s *Store) Truncate(ctx context.Context, t TableKeys, v Version) (Result, int, error) {
	return s.RaiseFloor(ctx, t, v, FloorTruncate)
}

// RaiseFloor raises the table's floor to v (its column and row components zeroed: a floor is a binlog
// position) and deletes every cached value of the table (rows, tombstones, fills) whose position is
// strictly older than the floor. From then on every change of the table older than the floor is
// refused, so a late change from before it cannot bring a removed row back, and a value written at
// or after it is kept: a truncate cannot delete a row inserted after it, and a completed snapshot
// keeps its own rows, which carry exactly the snapshot's position.
//
// A floor only goes up: raising it to an older version does nothing and returns Stale (the newer
// floor's own sweep covers everything this one would remove); the same version returns Duplicate and
// finishes the sweep if an earlier attempt was cut off. The sweep records its progress beside the
// floor, so a retry resumes where the last attempt stopped. Values that are not cloudsql-cache rows
// are never deleted and never stop the sweep. It returns the number of keys deleted.
func (s *Store) RaiseFloor(ctx context.Context, t TableKeys, v Version, why FloorReason) (Result, int, error) {
	v.Column, v.Row = 0, 0
	ver := v.String()
	res, err := s.run(ctx, []string{t.FloorKey}, "T", ver, string(why), 0)
	if err != nil {
		return 0, 0, err
	}
	if res == Stale {
		return res, 0, nil
	}
	if err := s.script.Load(ctx, s.rdb).Err(); err != nil {
		return 0, 0, fmt.Errorf("rowcache: load script: %w", err)
	}
	if s.cluster != nil {
		return s.raiseClusterFloor(ctx, t, res, ver, why)
	}
	// The sweep's progress is kept beside the floor, so a retry (the message timed out on a large
	// keyspace) resumes where the last attempt stopped instead of starting over, and a replay of a
	// finished sweep does not sweep again.
	progressKey := t.FloorKey + ":sweep"
	var cursor uint64
	if p, err := s.rdb.Get(ctx, progressKey).Result(); err == nil {
		if pv, pc, ok := strings.Cut(p, " "); ok && pv == ver {
			if pc == "done" {
				return res, 0, nil
			}
			cursor, _ = strconv.ParseUint(pc, 10, 64)
		}
	} else if !errors.Is(err, redis.Nil) {
		return 0, 0, fmt.Errorf("rowcache: sweep progress: %w", err)
	}
	deleted, err := s.scan(ctx, t, cursor, func(keys []string, next uint64) (int, error) {
		n, err := s.sweep(ctx, keys, "x", ver)
		if err != nil {
			return n, fmt.Errorf("rowcache: %s sweep: %w", why, err)
		}
		mark := strconv.FormatUint(next, 10)
		if next == 0 {
			mark = "done"
		}
		if err := s.rdb.Set(ctx, progressKey, ver+" "+mark, 0).Err(); err != nil {
			return n, fmt.Errorf("rowcache: sweep progress: %w", err)
		}
		return n, nil
	})
	if err != nil {
		return 0, deleted, err
	}
	return res, deleted, nil
}

// SweepEpoch deletes every cached row and tombstone among keys whose version is from an epoch older
// than epoch: what an older version epoch left behind that no snapshot of the new source replaced
// (for instance the rows of a table the restored database no longer has). keys.FloorKey is not used.
// Keys that are not cloudsql-cache values are left alone. It returns the number deleted.
func (s *Store) SweepEpoch(ctx context.Context, keys TableKeys, epoch uint64) (int, error) {
	if err := s.script.Load(ctx, s.rdb).Err(); err != nil {
		return 0, fmt.Errorf("rowcache: load script: %w", err)
	}
	if s.cluster != nil {
		return s.scanCluster(ctx, keys, func(batch []string) (int, error) {
			return s.sweep(ctx, batch, "e", strconv.FormatUint(epoch, 10))
		})
	}
	return s.scan(ctx, keys, 0, func(batch []string, _ uint64) (int, error) {
		return s.sweep(ctx, batch, "e", strconv.FormatUint(epoch, 10))
	})
}

// scan walks the keys of t from cursor, a SCAN batch at a time, handing the keys t owns in each batch
// and the cursor after it (0 after the last) to batch, and returns the sum of batch's counts. batch's
// error stops the walk.
func (s *Store) scan(ctx context.Context, t TableKeys, cursor uint64, batch func(keys []string, next uint64) (int, error)) (int, error) {
	deleted := 0
	for {
		keys, next, err := s.rdb.Scan(ctx, cursor, t.Pattern, 1000).Result()
		if err != nil {
			return deleted, fmt.Errorf("rowcache: scan %q: %w", t.Pattern, err)
		}
		if t.Owns != nil {
			owned := keys[:0]
			for _, k := range keys {
				if t.Owns(k) {
					owned = append(owned, k)
				}
			}
			keys = owned
		}
		n, err := batch(keys, next)
		deleted += n
		if err != nil || next == 0 {
			return deleted, err
		}
		cursor = next
	}
}

// sweep runs a sweep mode of the script on each key, pipelined, and returns how many it deleted.
func (s *Store) sweep(ctx context.Context, keys []string, mode, ver string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(keys))
		channel := s.channel
		if s.cluster != nil {
			channel = "" // announced below, with SPUBLISH
		}
		for i, k := range keys {
			cmds[i] = s.script.EvalSha(ctx, pipe, []string{k}, mode, ver, "", "0", channel)
		}
		_, _ = pipe.Exec(ctx)
		n := 0
		var firstErr error
		var deleted []string
		for i, c := range cmds {
			r, err := c.Int()
			switch {
			case err == nil:
				// 1 deleted; 0 kept; -9 another application's value, which is not ours to delete.
				if r == 1 {
					n++
					deleted = append(deleted, keys[i])
				}
			case firstErr == nil:
				firstErr = err
			}
		}
		if firstErr != nil && redis.HasErrorPrefix(firstErr, "NOSCRIPT") && attempt == 0 {
			// The script cache was flushed (failover, SCRIPT FLUSH) between Load and Exec.
			if err := s.script.Load(ctx, s.rdb).Err(); err != nil {
				return n, fmt.Errorf("rowcache: reload script: %w", err)
			}
			continue
		}
		if err := s.publish(ctx, deleted...); err != nil && firstErr == nil {
			firstErr = fmt.Errorf("rowcache: announce swept keys: %w", err)
		}
		if firstErr != nil {
			return n, firstErr
		}
		return n, nil
	}
}

func (s *Store) run(ctx context.Context, keys []string, mode, ver string, value any, ttlMillis int64) (Result, error) {
	r, err := s.runScript(ctx, keys, mode, ver, value, strconv.FormatInt(ttlMillis, 10), s.channel)
	if errors.Is(err, ErrNotReplicated) {
		return 0, fmt.Errorf("rowcache: apply to %s: %w", keys[0], err)
	}
	if err != nil {
		if isForeign(err) {
			return 0, fmt.Errorf("%w: %s: %v", ErrForeignValue, keys[0], err)
		}
		return 0, fmt.Errorf("rowcache: apply to %s: %w", keys[0], err)
	}
	switch r {
	case 1:
		return Applied, nil
	case 2:
		return Collided, nil
	case 0:
		return Duplicate, nil
	case -1:
		return Stale, nil
	case -2:
		return Truncated, nil
	case -3:
		return Resnapshotted, nil
	case -4:
		return SchemaChanged, nil
	}
	return 0, fmt.Errorf("rowcache: apply to %s: unexpected script reply %d", keys[0], r)
}

// runScript runs the script and, when the Store waits for replicas, the barrier after it in the same
// pipeline: one round trip.
func (s *Store) runScript(ctx context.Context, keys []string, args ...any) (int64, error) {
	if s.replicas == 0 {
		return s.script.Run(ctx, s.rdb, keys, args...).Int64()
	}
	if s.cluster != nil {
		return s.runClusterScript(ctx, keys, args...)
	}
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		var cmd *redis.Cmd
		if attempt == 0 {
			cmd = s.script.EvalSha(ctx, pipe, keys, args...)
		} else {
			cmd = s.script.Eval(ctx, pipe, keys, args...)
		}
		w := s.barrier(ctx, pipe)
		_, _ = pipe.Exec(ctx)
		r, err := cmd.Int64()
		if err != nil && attempt == 0 && redis.HasErrorPrefix(err, "NOSCRIPT") {
			continue // the script cache is empty (a restart, a failover): send the source once
		}
		if err != nil {
			return 0, err
		}
		return r, s.waited(w)
	}
}

func isForeign(err error) bool { return redis.HasErrorPrefix(err, "FOREIGN") }

// Get reads one cached row with a single GET. found is false when the key is absent; a tombstone is
// returned as found with Entry.Deleted() true, so callers can tell "deleted" from "never cached".
func Get(ctx context.Context, rdb redis.Cmdable, key string) (e Entry, found bool, err error) {
	b, err := rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return Entry{}, false, nil
	}
	if err != nil {
		return Entry{}, false, fmt.Errorf("rowcache: get %s: %w", key, err)
	}
	e, err = Decode(b)
	if err != nil {
		return Entry{}, false, fmt.Errorf("rowcache: get %s: %w", key, err)
	}
	return e, true, nil
}
