// Package published shares the apply function's table policy with its readers through Redis, so that
// there is one policy, the function's, and a reader whose own settings differ can tell before it
// writes rows no change will ever replace (a different key or table list) or columns the function
// never stores (a missing CACHE_EXCLUDE_COLUMNS).
//
// Every running instance of the function publishes its policy (tablepolicy.Policy.Canonical, with its
// fingerprints and the function's version) at start-up and again every HeartbeatInterval, into one
// document at Key. The document keeps one entry per policy fingerprint with when it was first published
// and when it was last seen; readers Load it and take as the function's policies those seen within
// Liveness, or, when none is, the one seen last.
//
// Why a set of live policies rather than one current policy: while Cloud Run rolls a revision out, or
// back, two revisions apply changes at once, each with its policy, and either may start new instances
// (scaling, a crash) in any order. "The last one published" would then name whichever instance started
// last, which can be the old revision's; a revision number would name the new one even after a
// rollback to the old. What is true is that every policy with a running instance is writing the cache,
// and a policy stops counting a Liveness after its last instance stopped. So a reader fills only when
// every live policy has its own read layout (State.Check): during a rollout that changes keys, tables
// or excluded columns it fills nothing (it still reads) until the old revision's instances are gone,
// and after a rollback the readers of the restored policy fill again as soon as the other policy's
// last heartbeat is older than Liveness.
package published

import (
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// Key is the Redis key of the document holding every published policy: a JSON string under the
// cache's reserved prefix, which no table's key can reach.
const Key = tablepolicy.MetaPrefix + "policies"

const (
	// HeartbeatInterval is how often a running function publishes its policy again.
	HeartbeatInterval = 30 * time.Second
	// Liveness is how long after its last publication a policy still counts as running: three missed
	// heartbeats.
	Liveness = 3 * HeartbeatInterval
	// Retention is how long a policy nobody publishes any more is kept in the document.
	Retention = 7 * 24 * time.Hour
)

var (
	// ErrNotPublished means no function has published a policy (it runs a release from before
	// publication, or has not started since Redis lost its data).
	ErrNotPublished = errors.New("published: no table policy is published")
	// ErrDiverged means the reader's policy is not the function's: see DivergedError.
	ErrDiverged = errors.New("published: the table policy differs from the function's")
	// ErrRollout means the function runs with more than one read layout at once: two revisions with
	// different keys, tables or excluded columns are both running.
	ErrRollout = errors.New("published: the function runs more than one table policy (a rollout in progress)")
)

//go:embed publish.lua
var publishSource string

var publishScript = redis.NewScript(publishSource)

// Publish records p as a policy the function runs, seen at now, with the function's version (for
// people: a Cloud Run revision, a build). Publishing the same policy again only moves its last
// sighting; policies nobody published for Retention are dropped.
func Publish(ctx context.Context, rdb redis.Scripter, p *tablepolicy.Policy, functionVersion string, now time.Time) error {
	err := publishScript.Run(ctx, rdb, []string{Key}, p.Fingerprint(), p.ReadFingerprint(), string(p.Canonical()),
		functionVersion, strconv.FormatInt(now.UnixMilli(), 10), strconv.FormatInt(Retention.Milliseconds(), 10)).Err()
	if err != nil {
		return fmt.Errorf("published: publish the table policy at %s: %w", Key, err)
	}
	return nil
}

// Heartbeat publishes p every interval until ctx is done, handing each failure to onError (which may
// be nil). The caller publishes once itself at start-up (Publish), so that it knows the outcome.
func Heartbeat(ctx context.Context, rdb redis.Scripter, p *tablepolicy.Policy, functionVersion string, interval time.Duration, onError func(error)) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			if err := Publish(ctx, rdb, p, functionVersion, now); err != nil && onError != nil && ctx.Err() == nil {
				onError(err)
			}
		}
	}
}

// Publication is one published policy.
type Publication struct {
	Fingerprint, ReadFingerprint string
	// Policy is the published policy; nil when Err says why this release cannot read it.
	Policy *tablepolicy.Policy
	Err    error
	// FunctionVersion is what the last instance to publish it said it was.
	FunctionVersion string
	// PublishedAt is its first publication, LastSeen its latest.
	PublishedAt, LastSeen time.Time
}

// State is the document as Load read it.
type State struct {
	// Now is the time liveness is judged at.
	Now time.Time
	// Publications holds every policy of the document, the one seen last first.
	Publications []Publication
}

// document and entry are the JSON the script writes.
type document struct {
	Format   int              `json:"format"`
	Policies map[string]entry `json:"policies"`
}

type entry struct {
	Policy          string `json:"policy"`
	ReadFingerprint string `json:"read_fingerprint"`
	FunctionVersion string `json:"function_version"`
	PublishedAtMs   int64  `json:"published_at_ms"`
	LastSeenMs      int64  `json:"last_seen_ms"`
}

// Load reads every published policy, judged live or not at now. It returns ErrNotPublished when
// there is none. A policy this release cannot read (a newer canonical format) is returned with its Err
// set, not dropped: it still counts as the function's.
func Load(ctx context.Context, rdb redis.Cmdable, now time.Time) (State, error) {
	raw, err := rdb.Get(ctx, Key).Bytes()
	if errors.Is(err, redis.Nil) {
		return State{Now: now}, ErrNotPublished
	}
	if err != nil {
		return State{Now: now}, fmt.Errorf("published: read %s: %w", Key, err)
	}
	var doc document
	if err := json.Unmarshal(raw, &doc); err != nil || doc.Format != 1 {
		return State{Now: now}, fmt.Errorf("published: %s does not hold a policy document of format 1 (%.60q)", Key, raw)
	}
	s := State{Now: now}
	for fp, e := range doc.Policies {
		pub := Publication{Fingerprint: fp, ReadFingerprint: e.ReadFingerprint, FunctionVersion: e.FunctionVersion,
			PublishedAt: time.UnixMilli(e.PublishedAtMs), LastSeen: time.UnixMilli(e.LastSeenMs)}
		pub.Policy, pub.Err = tablepolicy.FromCanonical([]byte(e.Policy))
		switch {
		case pub.Err != nil:
			pub.Policy = nil
		case pub.Policy.Fingerprint() != fp || pub.Policy.ReadFingerprint() != e.ReadFingerprint:
			pub.Policy, pub.Err = nil, fmt.Errorf("published: policy %s does not have the fingerprints it is published under", fp)
		}
		s.Publications = append(s.Publications, pub)
	}
	if len(s.Publications) == 0 {
		return s, ErrNotPublished
	}
	sort.Slice(s.Publications, func(i, j int) bool {
		a, b := s.Publications[i], s.Publications[j]
		if !a.LastSeen.Equal(b.LastSeen) {
			return a.LastSeen.After(b.LastSeen)
		}
		return a.Fingerprint < b.Fingerprint
	})
	return s, nil
}

// Live returns the policies the function runs with: those seen within Liveness of s.Now, the one
// seen last first; when none is (the function is stopped, scaled to zero or cut off from Redis), the
// one seen last, which is the policy the cache was last written with. Empty only for an empty State.
func (s State) Live() []Publication {
	var live []Publication
	for _, p := range s.Publications {
		if !p.LastSeen.Before(s.Now.Add(-Liveness)) {
			live = append(live, p)
		}
	}
	if len(live) == 0 && len(s.Publications) > 0 {
		live = s.Publications[:1]
	}
	return live
}

// Current returns the function's policy, for a reader that adopts it rather than configuring its own:
// the live policy seen last. It returns ErrRollout when the live policies differ in their read layout,
// and a live policy's Err when this release cannot read it.
func (s State) Current() (Publication, error) {
	live := s.Live()
	if len(live) == 0 {
		return Publication{}, ErrNotPublished
	}
	for _, p := range live {
		if p.Err != nil {
			return Publication{}, p.Err
		}
		if p.ReadFingerprint != live[0].ReadFingerprint {
			return Publication{}, rolloutError(live)
		}
	}
	return live[0], nil
}

// Check says whether a reader whose own policy is mine may fill the cache: nil when every live
// policy has mine's read layout (tablepolicy.Policy.ReadFingerprint; the epoch and version columns
// may differ). Otherwise a *DivergedError (errors.Is ErrDiverged) when no live policy has it, naming
// every setting to change, or ErrRollout when only some do.
func (s State) Check(mine *tablepolicy.Policy) error {
	live := s.Live()
	if len(live) == 0 {
		return ErrNotPublished
	}
	matched := 0
	for _, p := range live {
		if p.Err != nil {
			return p.Err
		}
		if p.ReadFingerprint == mine.ReadFingerprint() {
			matched++
		}
	}
	switch matched {
	case len(live):
		return nil
	case 0:
		var diffs []tablepolicy.Difference
		for _, d := range mine.Diff(live[0].Policy) {
			if d.Reads {
				diffs = append(diffs, d)
			}
		}
		return &DivergedError{Function: live[0], Differences: diffs}
	}
	return rolloutError(live)
}

func rolloutError(live []Publication) error {
	var parts []string
	for _, p := range live {
		parts = append(parts, fmt.Sprintf("%s (function %s, last seen %s)", p.ReadFingerprint, p.FunctionVersion, p.LastSeen.UTC().Format(time.RFC3339)))
	}
	return fmt.Errorf("%w: read layouts %s", ErrRollout, strings.Join(parts, ", "))
}

// DivergedError is a reader's policy that differs from the function's in what readers read or fill.
type DivergedError struct {
	// Function is the function's live publication compared with.
	Function Publication
	// Differences are the settings to change, Ours being the reader's value and Theirs the function's.
	Differences []tablepolicy.Difference
}

func (e *DivergedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "published: this table policy differs from the one the function runs (function %s, policy %s); set as the function does:",
		e.Function.FunctionVersion, e.Function.Fingerprint)
	for _, d := range e.Differences {
		b.WriteString("\n  " + d.String())
	}
	return b.String()
}

func (e *DivergedError) Unwrap() error { return ErrDiverged }
