package rowcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// SnapshotKeys are where the completion of one snapshot (one source, one position) is joined: the
// set of tables its schema records announced, and the mark its last record leaves.
type SnapshotKeys struct {
	Tables, Last string
}

// snapshotTTL bounds how long a snapshot's bookkeeping is kept: far longer than a snapshot's records
// take to be delivered, retried and replayed from the dead-letter topic.
const snapshotTTL = 30 * 24 * time.Hour

// SnapshotLast records that the snapshot's last record has been seen and returns the tables announced
// for it so far. With SnapshotTable it completes every announced table whichever arrives first: each
// step writes its half and reads the other's in one transaction, so of two concurrent steps the later
// one sees the earlier one's write.
func (s *Store) SnapshotLast(ctx context.Context, k SnapshotKeys) ([]string, error) {
	var members *redis.StringSliceCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, k.Last, "1", snapshotTTL)
		members = p.SMembers(ctx, k.Tables)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("rowcache: snapshot last %s: %w", k.Last, err)
	}
	return members.Val(), nil
}

// SnapshotTable announces table as part of the snapshot and reports whether the snapshot's last record
// has already been seen (then the caller completes the table itself).
func (s *Store) SnapshotTable(ctx context.Context, k SnapshotKeys, table string) (lastSeen bool, err error) {
	var exists *redis.IntCmd
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.SAdd(ctx, k.Tables, table)
		p.Expire(ctx, k.Tables, snapshotTTL)
		exists = p.Exists(ctx, k.Last)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("rowcache: snapshot table %s: %w", k.Tables, err)
	}
	return exists.Val() == 1, nil
}

// Fingerprint returns the schema fingerprint stored at key with the version of the schema record that
// wrote it; ok is false if none is stored.
func (s *Store) Fingerprint(ctx context.Context, key string) (v Version, fp string, ok bool, err error) {
	val, err := s.rdb.Get(ctx, key).Result()
	if errors.Is(err, redis.Nil) {
		return Version{}, "", false, nil
	}
	if err != nil {
		return Version{}, "", false, fmt.Errorf("rowcache: fingerprint %s: %w", key, err)
	}
	head, fp, _ := strings.Cut(val, " ")
	if v, err = ParseVersion(head); err != nil {
		return Version{}, "", false, fmt.Errorf("rowcache: fingerprint %s: %w", key, err)
	}
	return v, fp, true, nil
}

// SetFingerprint stores a table's schema fingerprint written by the schema record at version v,
// unless a newer record's is stored (a replayed older record does not undo a newer one).
func (s *Store) SetFingerprint(ctx context.Context, key string, v Version, fp string) error {
	if _, err := s.run(ctx, []string{key}, "F", v.String(), fp, 0); err != nil {
		return fmt.Errorf("rowcache: set fingerprint: %w", err)
	}
	return nil
}

// AddToSet adds members to the set at key (the registry of known tables).
func (s *Store) AddToSet(ctx context.Context, key string, members ...string) error {
	if len(members) == 0 {
		return nil
	}
	args := make([]any, len(members))
	for i, m := range members {
		args[i] = m
	}
	if err := s.rdb.SAdd(ctx, key, args...).Err(); err != nil {
		return fmt.Errorf("rowcache: add to %s: %w", key, err)
	}
	return nil
}

// SetMembers returns the members of the set at key.
func (s *Store) SetMembers(ctx context.Context, key string) ([]string, error) {
	m, err := s.rdb.SMembers(ctx, key).Result()
	if err != nil {
		return nil, fmt.Errorf("rowcache: members of %s: %w", key, err)
	}
	return m, nil
}
