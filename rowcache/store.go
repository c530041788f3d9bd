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
	// Duplicate: the stored version equals the change's; nothing was written.
	Duplicate
	// Stale: a newer version is stored; nothing was written.
	Stale
	// Truncated: the table was truncated at or after the change's version; nothing was written.
	Truncated
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
	}
	return "unknown"
}

// ErrForeignValue means a key the cache would write holds a value that is not a cloudsql-cache row
// (another application's key, or a non-string type). Retrying cannot help.
var ErrForeignValue = errors.New("rowcache: key holds a value that is not a cloudsql-cache row")

// DefaultInvalidationChannel is the pub/sub channel on which the script announces every key it
// changes, for the read path's in-process caches.
const DefaultInvalidationChannel = "cloudsql-cache:invalidations"

// Store applies versioned changes to Redis. It is safe for concurrent use.
type Store struct {
	rdb          redis.Cmdable
	script       *redis.Script
	tombstoneTTL time.Duration
	channel      string
}

// NewStore returns a Store writing through rdb. Tombstones expire after tombstoneTTL (0: never); the
// TTL must outlast any redelivery or replay of the deleted row's older changes, or such a late change
// could bring the row back. Every key changed is published on DefaultInvalidationChannel.
func NewStore(rdb redis.Cmdable, tombstoneTTL time.Duration) *Store {
	return &Store{rdb: rdb, script: redis.NewScript(applySource), tombstoneTTL: tombstoneTTL, channel: DefaultInvalidationChannel}
}

// WithInvalidationChannel returns a copy of s that announces changed keys on channel ("" for none).
func (s *Store) WithInvalidationChannel(channel string) *Store {
	c := *s
	c.channel = channel
	return &c
}

// Fill stores a row read from the database (row nil: "not found") at key, but only if the key holds
// nothing at all and the table's truncate floor (floorKey) still holds floor, the value the caller read
// before its database read ("" for none): a fill never replaces a change, a tombstone or another fill,
// and never lands across a truncate. It expires after ttl, which bounds how long a fill that lost a race
// (the row changed and was evicted while the fill was in flight) can be served. It reports whether the
// fill was stored.
func (s *Store) Fill(ctx context.Context, key, floorKey, floor string, row []byte, ttl time.Duration) (bool, error) {
	var value []byte
	if row == nil {
		value = Version{}.AppendTo(nil)
	} else {
		value = EncodeRow(Version{}, row)
	}
	r, err := s.script.Run(ctx, s.rdb, []string{key, floorKey}, "f", "", value, strconv.FormatInt(ttl.Milliseconds(), 10), "", floor).Int()
	if err != nil {
		return false, fmt.Errorf("rowcache: fill %s: %w", key, err)
	}
	return r == 1, nil
}

// Upsert stores row (a JSON object) at key with version v if v is newer than the stored version and
// than the table's truncate floor at floorKey.
func (s *Store) Upsert(ctx context.Context, key, floorKey string, v Version, row []byte) (Result, error) {
	return s.run(ctx, []string{key, floorKey}, "u", v.String(), EncodeRow(v, row), 0)
}

// Delete replaces the row at key with a tombstone carrying v, under the same rule as Upsert.
func (s *Store) Delete(ctx context.Context, key, floorKey string, v Version) (Result, error) {
	return s.run(ctx, []string{key, floorKey}, "d", v.String(), "", s.tombstoneTTL.Milliseconds())
}

// Truncate records that a table was truncated at version v, then deletes every cached row of the table
// (the keys matching pattern, a SCAN glob) whose version is older than v. Rows written after the
// truncate carry newer versions and are kept; changes older than v that arrive later are refused by the
// floor, so a truncate can neither delete a later row nor be undone by an earlier one.
// The truncate is ordered with rows by binlog position only (v.Column is ignored): a row written before
// the TRUNCATE is older than it, whatever its version column says.
// It returns the number of keys deleted. Sweeping is idempotent: a retried truncate resumes safely.
func (s *Store) Truncate(ctx context.Context, floorKey, pattern string, v Version) (Result, int, error) {
	v.Column = 0
	ver := v.String()
	res, err := s.run(ctx, []string{floorKey}, "T", ver, "", 0)
	if err != nil {
		return 0, 0, err
	}
	if res == Stale {
		// A newer truncate already happened; its own sweep covers everything this one would delete.
		return res, 0, nil
	}
	if err := s.script.Load(ctx, s.rdb).Err(); err != nil {
		return 0, 0, fmt.Errorf("rowcache: load script: %w", err)
	}
	// The sweep's progress is kept beside the floor, so a retry (the message timed out on a large
	// keyspace) resumes where the last attempt stopped instead of starting over, and a replay of a
	// finished truncate does not sweep again.
	progressKey := floorKey + ":sweep"
	var cursor uint64
	if p, err := s.rdb.Get(ctx, progressKey).Result(); err == nil {
		if pv, pc, ok := strings.Cut(p, " "); ok && pv == ver {
			if pc == "done" {
				return res, 0, nil
			}
			cursor, _ = strconv.ParseUint(pc, 10, 64)
		}
	} else if !errors.Is(err, redis.Nil) {
		return 0, 0, fmt.Errorf("rowcache: truncate sweep progress: %w", err)
	}
	deleted, err := s.scan(ctx, pattern, cursor, func(keys []string, next uint64) (int, error) {
		n, err := s.sweep(ctx, keys, "x", floorKey, ver)
		if err != nil {
			return n, fmt.Errorf("rowcache: truncate sweep: %w", err)
		}
		mark := strconv.FormatUint(next, 10)
		if next == 0 {
			mark = "done"
		}
		if err := s.rdb.Set(ctx, progressKey, ver+" "+mark, 0).Err(); err != nil {
			return n, fmt.Errorf("rowcache: truncate sweep progress: %w", err)
		}
		return n, nil
	})
	if err != nil {
		return 0, deleted, err
	}
	return res, deleted, nil
}

// SweepEpoch deletes every cached row and tombstone matching pattern whose version is from an epoch
// older than epoch: after a database restore, once the new source's snapshot has rewritten every row
// that still exists in the current epoch, what is left of the older epochs are rows that no longer
// exist. Keys that are not cloudsql-cache values are left alone. It returns the number deleted.
func (s *Store) SweepEpoch(ctx context.Context, pattern string, epoch uint64) (int, error) {
	if err := s.script.Load(ctx, s.rdb).Err(); err != nil {
		return 0, fmt.Errorf("rowcache: load script: %w", err)
	}
	return s.scan(ctx, pattern, 0, func(keys []string, _ uint64) (int, error) {
		return s.sweep(ctx, keys, "e", "", strconv.FormatUint(epoch, 10))
	})
}

// scan walks the keys matching pattern from cursor, a SCAN batch at a time, handing each batch and
// the cursor after it (0 after the last) to batch, and returns the sum of batch's counts. batch's
// error stops the walk.
func (s *Store) scan(ctx context.Context, pattern string, cursor uint64, batch func(keys []string, next uint64) (int, error)) (int, error) {
	deleted := 0
	for {
		keys, next, err := s.rdb.Scan(ctx, cursor, pattern, 1000).Result()
		if err != nil {
			return deleted, fmt.Errorf("rowcache: scan %q: %w", pattern, err)
		}
		n, err := batch(keys, next)
		deleted += n
		if err != nil || next == 0 {
			return deleted, err
		}
		cursor = next
	}
}

func (s *Store) sweep(ctx context.Context, keys []string, mode, floorKey, ver string) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	for attempt := 0; ; attempt++ {
		pipe := s.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(keys))
		for i, k := range keys {
			cmds[i] = s.script.EvalSha(ctx, pipe, []string{k, floorKey}, mode, ver, "", "0", s.channel)
		}
		_, _ = pipe.Exec(ctx)
		n := 0
		var firstErr error
		for _, c := range cmds {
			r, err := c.Int()
			switch {
			case err == nil:
				if r == 1 {
					n++
				}
			case isForeign(err):
				// Another application's key that happens to match the table's pattern: not ours to delete.
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
		if firstErr != nil {
			return n, firstErr
		}
		return n, nil
	}
}

func (s *Store) run(ctx context.Context, keys []string, mode, ver string, value any, ttlMillis int64) (Result, error) {
	r, err := s.script.Run(ctx, s.rdb, keys, mode, ver, value, strconv.FormatInt(ttlMillis, 10), s.channel).Int()
	if err != nil {
		if isForeign(err) {
			return 0, fmt.Errorf("%w: %s: %v", ErrForeignValue, keys[0], err)
		}
		return 0, fmt.Errorf("rowcache: apply to %s: %w", keys[0], err)
	}
	switch r {
	case 1:
		return Applied, nil
	case 0:
		return Duplicate, nil
	case -1:
		return Stale, nil
	case -2:
		return Truncated, nil
	}
	return 0, fmt.Errorf("rowcache: apply to %s: unexpected script reply %d", keys[0], r)
}

func isForeign(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "FOREIGN ") || strings.Contains(msg, "WRONGTYPE")
}

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
