// Package losswatch notices, without a person, a Redis that restarted, failed over or lost data, and
// repairs what the loss may have taken by seeking the push subscriptions back past it.
//
// Nothing announces such a loss to the function: Memorystore's failover of a primary whose last writes
// had not reached the replica, a restart from an append-only file fsynced once a second, or a restart
// without persistence each leave Redis answering as before, only with less in it. So the watcher looks,
// every interval, at three things that cost one INFO and one small script:
//
//   - the server's run_id: a new one is a restart or, when the new server's replication history
//     (master_replid2) continues the old one's (master_replid), a failover to a promoted replica;
//   - a marker key written once: gone (or another) means the data set is not the one it watched;
//   - a heartbeat key, the newest time any instance wrote it (only ever raised): older than what
//     this instance saw stored means Redis went back in time, to about the heartbeat it still holds.
//
// Redis loses a suffix of its writes, never a hole in the middle (the append-only file and the
// replication stream are both in order), so everything written before the surviving heartbeat is
// there and anything after it may be gone. The repair seeks every push subscription to that heartbeat
// less a margin for messages delivered late (retries), so Pub/Sub delivers again every change it
// delivered since; the version guard makes the replay harmless. After a restart or failover the seek
// happens even when no loss shows, because writes made after the last heartbeat could be gone
// without the heartbeat moving back. A marker gone means everything was lost: the seek goes back
// as far as retention allows.
package losswatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
)

// Keys the watcher owns, under the cache's reserved prefix.
const (
	MarkerKey    = "cloudsql-cache:marker"
	HeartbeatKey = "cloudsql-cache:heartbeat"
	// repairLockPrefix + the event's identity: one instance repairs each event. Under the reserved
	// prefix cloudsql-cache:, which no table's key can have.
	repairLockPrefix = "cloudsql-cache:repair:"
)

// Metric names.
const (
	MetricRestarts = "cloudsql_cache.redis.restarts"
	MetricLosses   = "cloudsql_cache.redis.losses"
	MetricRepairs  = "cloudsql_cache.repairs"

	// StateBeyondRetention is the MetricRepairs state of a repair whose loss began before the oldest
	// message Pub/Sub retains: counted besides finished, since the seek replays only part of the loss.
	StateBeyondRetention = "beyond_retention"
)

// Seeker replays every push subscription's messages published at or after a time (a Pub/Sub seek).
type Seeker interface {
	Seek(ctx context.Context, t time.Time) error
}

// Options configure a Watcher.
type Options struct {
	Redis redis.Cmdable
	// Replicated waits until Redis's replicas hold every write so far (rowcache.Store.Replicated), so
	// a heartbeat counts as stored only once it would survive a failover; nil: no replicas to wait for.
	Replicated func(context.Context) error
	// Interval between checks by Run; 0 means 5s.
	Interval time.Duration
	// Seeker repairs; nil: losses are detected, counted and logged, not repaired.
	Seeker Seeker
	// SeekMargin is how much earlier than the loss the subscriptions are sought to: the longest a
	// message can wait in Pub/Sub (retries) before the write it leads to. 0 means 10 minutes.
	SeekMargin time.Duration
	// SeekMax is how far back Pub/Sub still holds messages to replay (the topics' message retention,
	// or the subscriptions' with retain_acked_messages); 0 means 7 days. A seek never goes further back;
	// a loss that began before it is reported (RepairBeyondRetention), since a seek there would replay
	// only part of what was lost, silently.
	SeekMax       time.Duration
	Logger        *slog.Logger
	MeterProvider metric.MeterProvider
	// Now is the clock (tests); nil means time.Now.
	Now func() time.Time
}

// Kind is what a check found.
type Kind string

const (
	// None: the same server, the same data.
	None Kind = ""
	// Started: the watcher's first look (or an empty Redis it marks as the cache's from now on).
	Started Kind = "started"
	// Restart: another process answers, not a promoted replica; writes after the newest surviving
	// heartbeat may be gone (an append-only file fsynced once a second).
	Restart Kind = "restart"
	// Failover: a promoted replica answers; writes it had not received may be gone.
	Failover Kind = "failover"
	// PartialLoss: the heartbeat went back: writes after it are gone.
	PartialLoss Kind = "partial_loss"
	// TotalLoss: the marker is gone or another: the data set was lost (a restart without persistence).
	TotalLoss Kind = "total_loss"
)

// Report is what one check saw and did.
type Report struct {
	Kind Kind
	// RunID is the server's run_id; Role its replication role.
	RunID, Role string
	// Survived is the newest heartbeat Redis still held: writes before it survived. Zero when
	// nothing survived.
	Survived time.Time
	// SeekTo is where the repair sought the subscriptions (zero: no repair).
	SeekTo time.Time
	// Repaired: the seek succeeded (false with SeekTo set: it failed, or another instance repairs).
	Repaired bool
	// BeyondRetention: the loss began before the oldest message Pub/Sub still retains (SeekMax), so
	// the seek (to that oldest time) replays only part of it; counted as state beyond_retention.
	BeyondRetention bool
}

// Watcher watches one Redis. Check and Run are not for concurrent use.
type Watcher struct {
	o   Options
	log *slog.Logger
	id  string

	// What the last successful check saw.
	runID, replID string
	marker        string
	heartbeat     int64 // ms; the newest value known to be stored (and replicated)
	// pending is a repair that failed, retried by the next check.
	pending *pendingRepair

	restarts, losses, repairs metric.Int64Counter
}

type pendingRepair struct {
	lock string
	// from is where the loss requires the replay to start; the seek goes there, or to the oldest
	// retained message when that is later (the retention may have passed it while seeks failed).
	from time.Time
	why  Kind
}

// New returns a Watcher.
func New(o Options) (*Watcher, error) {
	if o.Redis == nil {
		return nil, errors.New("losswatch: Redis is required")
	}
	if o.Interval <= 0 {
		o.Interval = 5 * time.Second
	}
	if o.SeekMargin <= 0 {
		o.SeekMargin = 10 * time.Minute
	}
	if o.SeekMax <= 0 {
		o.SeekMax = 7 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &Watcher{o: o, log: o.Logger}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	w.id = hex.EncodeToString(b)
	mp := o.MeterProvider
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	m := mp.Meter("github.com/cloudsql-cache/cloudsql-cache/function/losswatch")
	var errs [3]error
	w.restarts, errs[0] = m.Int64Counter(MetricRestarts, metric.WithUnit("{event}"),
		metric.WithDescription("Redis restarts and failovers the function noticed, by kind: restart or failover."))
	w.losses, errs[1] = m.Int64Counter(MetricLosses, metric.WithUnit("{event}"),
		metric.WithDescription("Losses of Redis data the function noticed, by extent: partial (the heartbeat went back) or total (the marker is gone)."))
	w.repairs, errs[2] = m.Int64Counter(MetricRepairs, metric.WithUnit("{repair}"),
		metric.WithDescription("Repairs (seeks of the push subscriptions back past a loss), by state: started, finished or failed, and why."))
	if err := errors.Join(errs[:]...); err != nil {
		return nil, fmt.Errorf("losswatch: metrics: %w", err)
	}
	return w, nil
}

// Run checks every interval until ctx ends, logging failed checks.
func (w *Watcher) Run(ctx context.Context) {
	t := time.NewTicker(w.o.Interval)
	defer t.Stop()
	for {
		cctx, cancel := context.WithTimeout(ctx, w.o.Interval)
		if _, err := w.Check(cctx); err != nil && ctx.Err() == nil {
			w.log.Warn("Redis could not be checked for restarts and losses", "error", err.Error())
		}
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// checkScript reads the marker and the heartbeat, creates the marker when there is none (ARGV[1]) and
// raises the heartbeat to ARGV[2] (ms) unless it is newer, in one step, so that no instance's check can
// fall between another's read and write. It returns the marker as it was (false: none), the
// heartbeat as it was, and whether the database held any key.
var checkScript = redis.NewScript(`
local marker = redis.call('GET', KEYS[1])
local hb = tonumber(redis.call('GET', KEYS[2]) or '0') or 0
local empty = redis.call('DBSIZE') == 0
if not marker then redis.call('SET', KEYS[1], ARGV[1]) end
if tonumber(ARGV[2]) > hb then redis.call('SET', KEYS[2], ARGV[2]) end
return {marker, tostring(hb), empty and 1 or 0}
`)

// Check looks once, and repairs what it finds lost.
func (w *Watcher) Check(ctx context.Context) (Report, error) {
	info, err := w.o.Redis.Info(ctx, "server", "replication").Result()
	if err != nil {
		return Report{}, fmt.Errorf("losswatch: INFO: %w", err)
	}
	f := infoFields(info)
	rep := Report{RunID: f["run_id"], Role: f["role"]}
	if rep.RunID == "" {
		return rep, errors.New("losswatch: INFO has no run_id")
	}
	now := w.o.Now()
	newMarker := w.id + " " + strconv.FormatInt(now.UnixMilli(), 10)
	res, err := checkScript.Run(ctx, w.o.Redis, []string{MarkerKey, HeartbeatKey}, newMarker, now.UnixMilli()).Slice()
	if err != nil {
		return rep, fmt.Errorf("losswatch: check: %w", err)
	}
	marker, _ := res[0].(string)
	hb, _ := strconv.ParseInt(fmt.Sprint(res[1]), 10, 64)
	if hb > 0 {
		rep.Survived = time.UnixMilli(hb)
	}
	heartbeatStored := true
	if w.o.Replicated != nil {
		// The heartbeat counts only once it would survive a failover, as an acknowledged change does.
		heartbeatStored = w.o.Replicated(ctx) == nil
	}

	first := w.runID == ""
	switch {
	case first && marker == "":
		rep.Kind = Started
		w.log.Info("Redis holds no marker: this cache's data set starts now", "run_id", rep.RunID, "empty", res[2] == int64(1))
	case first:
		rep.Kind = Started
	case marker == "" || marker != w.marker:
		rep.Kind = TotalLoss
	case hb < w.heartbeat:
		rep.Kind = PartialLoss
	case rep.RunID != w.runID && f["master_replid2"] == w.replID:
		rep.Kind = Failover
	case rep.RunID != w.runID:
		rep.Kind = Restart
	}
	if !first && rep.RunID != w.runID {
		kind := "restart"
		if f["master_replid2"] == w.replID {
			kind = "failover"
		}
		w.restarts.Add(ctx, 1, metric.WithAttributes(attribute.String("kind", kind)))
	}

	var why Kind
	switch rep.Kind {
	case TotalLoss:
		w.losses.Add(ctx, 1, metric.WithAttributes(attribute.String("extent", "total")))
		why, rep.SeekTo = TotalLoss, now.Add(-w.o.SeekMax)
		if created := markerTime(w.marker); !created.IsZero() {
			rep.SeekTo = created.Add(-w.o.SeekMargin) // nothing older was ever in this data set
		}
		w.log.Error("Redis lost its data (the cache's marker is gone): every cached row, tombstone and floor; repairing from Pub/Sub's retention",
			"run_id", rep.RunID, "previous_run_id", w.runID, "seek_to", rep.SeekTo.UTC().Format(time.RFC3339))
	case PartialLoss:
		w.losses.Add(ctx, 1, metric.WithAttributes(attribute.String("extent", "partial")))
		why, rep.SeekTo = PartialLoss, rep.Survived.Add(-w.o.SeekMargin)
		w.log.Error("Redis lost writes: its heartbeat went back; repairing from before the loss",
			"run_id", rep.RunID, "previous_run_id", w.runID, "survived", rep.Survived.UTC().Format(time.RFC3339Nano),
			"lost_since", time.UnixMilli(w.heartbeat).UTC().Format(time.RFC3339Nano), "seek_to", rep.SeekTo.UTC().Format(time.RFC3339))
	case Restart, Failover:
		why, rep.SeekTo = rep.Kind, rep.Survived.Add(-w.o.SeekMargin)
		w.log.Warn("Redis restarted or failed over: writes after its last surviving heartbeat may be gone; repairing from before it",
			"kind", string(rep.Kind), "run_id", rep.RunID, "previous_run_id", w.runID, "role", rep.Role,
			"survived", rep.Survived.UTC().Format(time.RFC3339Nano), "seek_to", rep.SeekTo.UTC().Format(time.RFC3339))
	}
	from := rep.SeekTo
	if oldest := now.Add(-w.o.SeekMax); !rep.SeekTo.IsZero() && rep.SeekTo.Before(oldest) {
		rep.SeekTo = oldest
	}

	// What this check saw becomes what the next compares with.
	w.runID, w.replID = rep.RunID, f["master_replid"]
	if marker == "" {
		marker = newMarker
	}
	w.marker = marker
	switch {
	case rep.Kind == TotalLoss || rep.Kind == PartialLoss:
		w.heartbeat = hb // what survived; raised below if this check's write is stored
	case hb > w.heartbeat:
		w.heartbeat = hb
	}
	if heartbeatStored && now.UnixMilli() > w.heartbeat {
		w.heartbeat = now.UnixMilli()
	}

	if why != None && w.o.Seeker != nil {
		// One repair per event across instances: an event is a server process (its run_id) with a data
		// set (the marker, also a new one after a FLUSHALL), whichever instance sees it first and
		// whatever it saw.
		w.pending = &pendingRepair{lock: repairLockPrefix + rep.RunID + ":" + marker, from: from, why: why}
	}
	if w.pending != nil {
		var to time.Time
		if rep.Repaired, to, rep.BeyondRetention = w.repair(ctx, now); rep.Repaired {
			rep.SeekTo = to
		}
	}
	return rep, nil
}

// repair runs the pending repair, unless another instance has it; it reports whether it sought, to
// when, and whether the loss began before what Pub/Sub retains.
func (w *Watcher) repair(ctx context.Context, now time.Time) (sought bool, to time.Time, beyond bool) {
	p := w.pending
	ok, err := w.o.Redis.SetNX(ctx, p.lock, w.id, time.Hour).Result()
	if err != nil {
		w.log.Warn("repair postponed: Redis did not answer", "error", err.Error())
		return false, time.Time{}, false
	}
	if !ok {
		if owner, _ := w.o.Redis.Get(ctx, p.lock).Result(); owner != w.id {
			w.pending = nil // another instance repairs this one
			return false, time.Time{}, false
		}
	}
	// Pub/Sub accepts a seek to any time and replays what it retains, without a word about the rest:
	// the watcher says it instead.
	to = p.from
	if oldest := now.Add(-w.o.SeekMax); to.Before(oldest) {
		to, beyond = oldest, true
	}
	reason := attribute.String("reason", string(p.why))
	w.repairs.Add(ctx, 1, metric.WithAttributes(attribute.String("state", "started"), reason))
	if err := w.o.Seeker.Seek(ctx, to); err != nil {
		w.repairs.Add(ctx, 1, metric.WithAttributes(attribute.String("state", "failed"), reason))
		w.log.Error("repair failed: the push subscriptions could not be sought back; retried at the next check",
			"seek_to", to.UTC().Format(time.RFC3339), "error", err.Error())
		return false, time.Time{}, beyond
	}
	w.repairs.Add(ctx, 1, metric.WithAttributes(attribute.String("state", "finished"), reason))
	w.log.Warn("repair started: the push subscriptions were sought back; Pub/Sub delivers their messages again",
		"seek_to", to.UTC().Format(time.RFC3339), "reason", string(p.why))
	if beyond {
		w.repairs.Add(ctx, 1, metric.WithAttributes(attribute.String("state", StateBeyondRetention), reason))
		what := "rows that changed between the loss and the oldest retained message may be cached at an older version: re-snapshot the tables (README: Redis failover, restart and data loss), then run verify"
		if p.why == TotalLoss {
			what = "rows that did not change since the oldest retained message stay uncached (reads fill them from the database) until they change or a re-snapshot fills them"
		}
		w.log.Error("repair incomplete: the loss began before the oldest message Pub/Sub retains (REPAIR_SEEK_MAX); "+what,
			"lost_from", p.from.UTC().Format(time.RFC3339), "seek_to", to.UTC().Format(time.RFC3339), "reason", string(p.why))
	}
	w.pending = nil
	return true, to, beyond
}

func markerTime(marker string) time.Time {
	_, ms, ok := strings.Cut(marker, " ")
	if !ok {
		return time.Time{}
	}
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return time.Time{}
	}
	return time.UnixMilli(n)
}

func infoFields(info string) map[string]string {
	f := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			f[k] = v
		}
	}
	return f
}
