package readcache

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"

	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// A Sampler measures how consistent the reads of a Client are: it samples reads as they are served
// and decides, for each, whether the row served was the database's current row when the read started,
// and if not, for how long it had been superseded.
//
// How it decides. The cache's versions are binlog coordinates, so a clock of the database's binlog
// position (read every ClockInterval: SHOW BINARY LOG STATUS, or SHOW MASTER STATUS) dates every
// change to within that interval. The sampler subscribes to the invalidation channel the apply function
// publishes on and reads each changed key's new version: the changes the function applied, in order,
// per key. For a sampled read served from the cache with version V:
//   - the first change of the key applied after the value was read from Redis, newer than V, is the
//     change that superseded it; if there is none yet, the row is read from the database: equal to what
//     was served, the read was current; different, the sampler waits (up to MaxWait) for the function to
//     apply the change that explains the difference;
//   - the read was stale if that change had certainly committed when the read started (a reading of
//     the clock that contained it had come back), by the time since the last reading that did not
//     contain it: an upper bound, too high by at most one ClockInterval plus one status query. A
//     change committed within that resolution of the read's start counts as current;
//   - a difference no applied change explains within MaxWait is "unresolved": the cache did not catch
//     up (a lost change, a row the function encodes differently). It counts as inconsistent;
//   - a read served from the database by its own query is current by construction. One that joined a
//     query another read had begun (concurrent misses share one) may have missed a change committed
//     after that query began: it is judged like a cached read, the query's start taken as when the
//     value was read, and every change that may have committed after it as missed (conservative).
//
// A read whose key's history may be incomplete (the sampler's subscription was down, or the value was
// read from Redis before the sampler started) is skipped, not judged. When the function applied two
// changes of a key before the sampler read the first one's version, that version is unknown; its
// commit is then estimated from the next change's (the same apply delay assumed) and the read counts in
// Inexact.
//
// It costs a database query per sampled read, a status query every ClockInterval, and a GET per change
// the function applies (pipelined). Its metrics: cloudsql_cache.read.consistency (a counter by result:
// current, stale, unresolved, skipped, dropped, and source), cloudsql_cache.read.staleness (a histogram
// in ms of every judged read, 0 for a current one, by source) and cloudsql_cache.read.staleness.max (a
// gauge: the largest staleness among the last stale reads, ms).
type Sampler struct {
	c     *Client
	o     SamplerOptions
	db    *sql.DB
	clock *posClock
	hist  *history
	m     samplerMetrics

	limiter limiter
	queue   chan observation
	judging atomic.Int64 // reads the workers took from queue and are judging
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	// beforeJudge, a test hook, runs before a cache-served read is judged.
	beforeJudge func(observation)

	mu      sync.Mutex
	pending []pendingRead
	st      samplerCounts
	window  []float64 // staleness of the last stale reads, ms
	next    int
}

// SamplerOptions configure a Sampler.
type SamplerOptions struct {
	// DB is the database to check reads against: the primary Debezium reads, whose binlog positions
	// the cache's versions are. Its user needs SELECT on the cached tables and the right to read the
	// binlog position (REPLICATION CLIENT on MySQL, BINLOG MONITOR or SUPER on MariaDB). Default: the
	// Client's DB.
	DB *sql.DB
	// Fraction of reads sampled; default 0.01.
	Fraction float64
	// MaxPerSecond caps the sampled reads; default 100.
	MaxPerSecond float64
	// ClockInterval is how often the binlog position is read: the resolution of every staleness;
	// default 10ms.
	ClockInterval time.Duration
	// MaxWait is how long a read that differs from the database waits for the function to apply the
	// change that superseded it before it counts as unresolved; default 30s.
	MaxWait time.Duration
	// Window is how many stale reads Stats summarizes; default 100000.
	Window int
	// MeterProvider records the sampler's metrics; default: the Client's.
	MeterProvider metric.MeterProvider
}

// samplerWorkers judge sampled reads concurrently: each judgment may be a database query.
const samplerWorkers = 4

// Buckets of the staleness histogram and of Stats.Within, in milliseconds.
var stalenessBuckets = []float64{1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000}

// SamplerStats are a Sampler's counts since it started.
type SamplerStats struct {
	// Judged reads: Current + Stale + Unresolved.
	Current, Stale, Unresolved int64
	// Skipped reads could not be judged (the key's history may be incomplete); Dropped were sampled
	// while the sampler was busy. Inexact stale or current reads had an estimated commit time.
	Skipped, Dropped, Inexact int64
	// Pending reads wait for the function to apply the change that explains a difference.
	Pending int
	// Staleness of the last stale reads (at most Window of them), in milliseconds.
	Staleness Summary
	// within[i]: judged reads stale by at most stalenessBuckets[i] (current ones included).
	within []int64
}

// Summary is a distribution: its count, median, 99th percentile and maximum.
type Summary struct {
	N             int
	P50, P99, Max float64
}

// Judged is the number of reads judged.
func (s SamplerStats) Judged() int64 { return s.Current + s.Stale + s.Unresolved }

// ConsistentFraction is the share of judged reads that were current (1 with none judged).
func (s SamplerStats) ConsistentFraction() float64 {
	if s.Judged() == 0 {
		return 1
	}
	return float64(s.Current) / float64(s.Judged())
}

// Within is the share of judged reads current or stale by at most d (1 with none judged); d is
// rounded down to a bucket of the staleness histogram (1, 2, 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5,
// 5, 10, 30 s). Unresolved reads are never within.
func (s SamplerStats) Within(d time.Duration) float64 {
	if s.Judged() == 0 {
		return 1
	}
	return float64(s.withinCount(d)) / float64(s.Judged())
}

// StaleOver is the number of judged reads stale by more than d, unresolved ones included (d rounded
// down to a bucket, as for Within).
func (s SamplerStats) StaleOver(d time.Duration) int64 { return s.Judged() - s.withinCount(d) }

func (s SamplerStats) withinCount(d time.Duration) int64 {
	ms := float64(d) / float64(time.Millisecond)
	n := s.Current
	for i, b := range stalenessBuckets {
		if b <= ms && i < len(s.within) {
			n = s.within[i]
		}
	}
	return n
}

type samplerCounts struct {
	current, stale, unresolved, skipped, dropped, inexact int64
	within                                                []int64
}

// observation is one sampled read.
type observation struct {
	served
	pk         []any
	found      bool
	json       []byte
	start, end time.Time
}

type pendingRead struct {
	o        observation
	deadline time.Time
}

// NewSampler starts sampling c's reads. It reads the binlog position once to check that it can (and
// fails with what privilege is missing if not). Close it before closing c.
func NewSampler(ctx context.Context, c *Client, o SamplerOptions) (*Sampler, error) {
	if o.DB == nil {
		o.DB = c.o.DB
	}
	var errs []error
	if o.DB == nil {
		errs = append(errs, errors.New("readcache: the sampler needs a database (SamplerOptions.DB or the Client's)"))
	}
	if o.Fraction == 0 {
		o.Fraction = 0.01
	}
	if o.Fraction < 0 || o.Fraction > 1 {
		errs = append(errs, fmt.Errorf("readcache: SamplerOptions.Fraction %v is not within 0..1", o.Fraction))
	}
	if o.MaxPerSecond == 0 {
		o.MaxPerSecond = 100
	}
	if o.MaxPerSecond < 0 {
		errs = append(errs, fmt.Errorf("readcache: SamplerOptions.MaxPerSecond %v is negative", o.MaxPerSecond))
	}
	if o.ClockInterval <= 0 {
		o.ClockInterval = 10 * time.Millisecond
	}
	if o.MaxWait <= 0 {
		o.MaxWait = 30 * time.Second
	}
	if o.Window <= 0 {
		o.Window = 100000
	}
	if o.MeterProvider == nil {
		o.MeterProvider = c.o.MeterProvider
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	s := &Sampler{c: c, o: o, db: o.DB, queue: make(chan observation, 1024)}
	s.limiter = limiter{every: time.Duration(float64(time.Second) / o.MaxPerSecond)}
	s.st.within = make([]int64, len(stalenessBuckets))
	s.ctx, s.cancel = context.WithCancel(context.WithoutCancel(ctx))
	// The history must reach back as far as a served value can be old: an L1 row lives L1MaxAge, and a
	// judgment may wait MaxWait after the read.
	keep := c.o.L1MaxAge + o.MaxWait + time.Minute
	clock, err := newPosClock(ctx, o.DB, keep)
	if err != nil {
		s.cancel()
		return nil, err
	}
	s.clock = clock
	var merr error
	if s.m, merr = newSamplerMetrics(o.MeterProvider, s); merr != nil {
		s.cancel()
		return nil, merr
	}
	s.hist = newHistory(s.ctx, c.o.Redis, c.o.InvalidationChannel, c.o.RedisTimeout, keep)
	s.wg.Add(3 + samplerWorkers)
	go func() { defer s.wg.Done(); s.clock.run(s.ctx, o.ClockInterval) }()
	go func() { defer s.wg.Done(); s.hist.run(s.ctx) }()
	go func() { defer s.wg.Done(); s.waitPending() }()
	for i := 0; i < samplerWorkers; i++ {
		go func() { defer s.wg.Done(); s.work() }()
	}
	if !c.sampler.CompareAndSwap(nil, s) {
		s.Close()
		return nil, errors.New("readcache: the client already has a sampler")
	}
	return s, nil
}

// Close stops sampling and waits for the sampler's goroutines; reads still being judged are dropped.
func (s *Sampler) Close() error {
	s.c.sampler.CompareAndSwap(s, nil)
	s.cancel()
	err := s.hist.sub.close()
	s.wg.Wait()
	if s.m.reg != nil {
		err = errors.Join(err, s.m.reg.Unregister())
	}
	return err
}

// Stats returns the counts so far.
func (s *Sampler) Stats() SamplerStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SamplerStats{
		Current: s.st.current, Stale: s.st.stale, Unresolved: s.st.unresolved,
		Skipped: s.st.skipped, Dropped: s.st.dropped, Inexact: s.st.inexact,
		Pending: len(s.pending) + len(s.queue) + int(s.judging.Load()),
		within:  slices.Clone(s.st.within),
	}
	w := slices.Clone(s.window)
	sort.Float64s(w)
	if n := len(w); n > 0 {
		st.Staleness = Summary{N: n, P50: w[n/2], P99: w[min(n-1, n*99/100)], Max: w[n-1]}
	}
	return st
}

// offer is called by Get with every read while the sampler is on.
func (s *Sampler) offer(pk []any, row Row, sv served, err error, start, end time.Time) {
	if sv.key == "" || (err != nil && !errors.Is(err, ErrNotFound)) {
		return // nothing served: a bad request, or both Redis and the database failed
	}
	if s.o.Fraction < 1 && rand.Float64() >= s.o.Fraction {
		return
	}
	if !s.limiter.allow() {
		return
	}
	o := observation{served: sv, pk: slices.Clone(pk), found: err == nil, json: row.JSON, start: start, end: end}
	select {
	case s.queue <- o:
	default:
		s.count(o, "dropped", 0, false)
	}
}

// work judges queued reads: those it cannot decide at once wait in pending.
func (s *Sampler) work() {
	for {
		select {
		case <-s.ctx.Done():
			return
		case o := <-s.queue:
			s.judging.Add(1)
			s.judge(o)
			s.judging.Add(-1)
		}
	}
}

func (s *Sampler) judge(o observation) {
	if o.from == FromDatabase && !o.fetched.Before(o.start) {
		// Its own query, begun after the read started: the database's answer, current by construction.
		s.count(o, "current", 0, false)
		return
	}
	if s.beforeJudge != nil {
		s.beforeJudge(o)
	}
	if !s.hist.covers(o.fetched) {
		s.count(o, "skipped", 0, false)
		return
	}
	if s.decide(o) {
		return
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.c.o.DBTimeout)
	d, err := s.c.query(ctx, o.t, o.meta, o.pk)
	cancel()
	if err != nil {
		s.count(o, "skipped", 0, false)
		return
	}
	dbFound := d.found
	if o.from != FromDatabase {
		dbFound = d.found && d.fillKey == o.key // a row found under another spelling is not this key's
	}
	if dbFound == o.found && (!dbFound || bytes.Equal(d.row.JSON, o.json)) {
		s.count(o, "current", 0, false)
		return
	}
	if s.decide(o) { // applied while the database was being read
		return
	}
	s.mu.Lock()
	if len(s.pending) >= 10000 {
		s.mu.Unlock()
		s.count(o, "dropped", 0, false)
		return
	}
	s.pending = append(s.pending, pendingRead{o: o, deadline: time.Now().Add(s.o.MaxWait)})
	s.mu.Unlock()
}

// decide judges o by the first change of its key applied after its value was read, if there is one
// and the clock has dated it.
func (s *Sampler) decide(o observation) bool {
	var ch change
	var ok bool
	if o.from == FromDatabase {
		ch, ok = s.missedByQuery(o)
	} else {
		ch, ok = s.hist.superseding(o.key, o.fetched, o.version)
	}
	if !ok {
		return false
	}
	low, high, exact, dated := s.commitTime(ch)
	if !dated {
		return false // the clock has not read past it yet
	}
	if o.from == FromDatabase && low.Before(o.fetched) {
		low = o.fetched // a change the query missed committed after it began
	}
	// Stale only if the change had certainly committed when the read started (a clock reading past
	// it had come back); by at most the time since the last reading before it.
	if !high.Before(o.start) {
		s.count(o, "current", 0, !exact)
	} else {
		s.count(o, "stale", float64(o.start.Sub(low))/float64(time.Millisecond), !exact)
	}
	return true
}

// missedByQuery is, for a row a shared query read from the database (begun before this read
// started, at o.fetched), the first change of the row that may have committed after the query began:
// the first one the query may have missed. Without a version of the row served, every such change is
// taken as missed, which can only make the read look staler than it was.
func (s *Sampler) missedByQuery(o observation) (change, bool) {
	key := o.key
	if o.changesKey != "" {
		key = o.changesKey
	}
	for _, ch := range s.hist.changesSince(key, o.fetched) {
		_, high, _, dated := s.commitTime(ch)
		if !dated {
			return change{}, false // not dated yet: decide later, in order
		}
		if !high.Before(o.fetched) {
			return ch, true
		}
	}
	return change{}, false
}

// commitTime dates the commit of change ch: after low, before high. exact is false for an estimate;
// dated is false when the clock has not yet read a position past it.
func (s *Sampler) commitTime(ch change) (low, high time.Time, exact, dated bool) {
	if ch.known {
		low, high, exact, dated = s.clock.commit(ch.version)
		return low, high, exact, dated
	}
	// Overwritten before the sampler read its version: assume it took as long to apply as the next
	// change whose version is known.
	if ch.next != nil && ch.next.known {
		nlow, _, _, ok := s.clock.commit(ch.next.version)
		if !ok {
			return time.Time{}, time.Time{}, false, false
		}
		est := ch.at.Add(-ch.next.at.Sub(nlow))
		return est, est, false, true
	}
	return ch.at, ch.at, false, true
}

// waitPending judges the reads waiting for their change to be applied.
func (s *Sampler) waitPending() {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case now := <-t.C:
			s.mu.Lock()
			waiting := s.pending
			s.pending = nil
			s.mu.Unlock()
			var still []pendingRead
			for _, p := range waiting {
				switch {
				case !s.hist.covers(p.o.fetched):
					s.count(p.o, "skipped", 0, false)
				case s.decide(p.o):
				case now.After(p.deadline):
					s.count(p.o, "unresolved", 0, false)
				default:
					still = append(still, p)
				}
			}
			s.mu.Lock()
			s.pending = append(s.pending, still...)
			s.mu.Unlock()
		}
	}
}

func (s *Sampler) count(o observation, result string, stalenessMs float64, inexact bool) {
	ctx := context.Background()
	s.m.results.Add(ctx, 1, s.m.attrs(result, o.from))
	judged := result == "current" || result == "stale" || result == "unresolved"
	if judged && result != "unresolved" {
		s.m.staleness.Record(ctx, stalenessMs, s.m.sourceAttrs[o.from])
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch result {
	case "current":
		s.st.current++
	case "stale":
		s.st.stale++
		if len(s.window) < s.o.Window {
			s.window = append(s.window, stalenessMs)
		} else {
			s.window[s.next] = stalenessMs
			s.next = (s.next + 1) % s.o.Window
		}
	case "unresolved":
		s.st.unresolved++
	case "skipped":
		s.st.skipped++
	case "dropped":
		s.st.dropped++
	}
	if inexact && judged {
		s.st.inexact++
	}
	if judged && result != "unresolved" {
		for i, b := range stalenessBuckets {
			if stalenessMs <= b {
				s.st.within[i]++
			}
		}
	}
}

// maxStaleness is the largest staleness in the window, ms.
func (s *Sampler) maxStaleness() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := 0.0
	for _, v := range s.window {
		m = max(m, v)
	}
	return m
}

// limiter lets through one event per every, spaced evenly.
type limiter struct {
	every time.Duration
	next  atomic.Int64
}

func (l *limiter) allow() bool {
	now := time.Now().UnixNano()
	for {
		n := l.next.Load()
		if now < n {
			return false
		}
		if l.next.CompareAndSwap(n, now+int64(l.every)) {
			return true
		}
	}
}

type samplerMetrics struct {
	reg         metric.Registration
	results     metric.Int64Counter
	staleness   metric.Float64Histogram
	attrSets    map[string]metric.MeasurementOption
	sourceAttrs map[Source]metric.MeasurementOption
}

func (m samplerMetrics) attrs(result string, from Source) metric.MeasurementOption {
	return m.attrSets[result+" "+string(from)]
}

func newSamplerMetrics(mp metric.MeterProvider, s *Sampler) (samplerMetrics, error) {
	if mp == nil {
		mp = noop.NewMeterProvider()
	}
	meter := mp.Meter("github.com/cloudsql-cache/cloudsql-cache/readcache")
	var m samplerMetrics
	var errs [3]error
	m.results, errs[0] = meter.Int64Counter("cloudsql_cache.read.consistency", metric.WithUnit("{read}"),
		metric.WithDescription("Sampled reads by result: current, stale, unresolved (the cache did not catch up within the sampler's wait), skipped (not judged), dropped (the sampler was busy)."))
	m.staleness, errs[1] = meter.Float64Histogram("cloudsql_cache.read.staleness", metric.WithUnit("ms"),
		metric.WithDescription("How long the row a sampled read served had been superseded in the database when the read started; 0 for a current read."),
		metric.WithExplicitBucketBoundaries(append([]float64{0}, stalenessBuckets...)...))
	var gauge metric.Float64ObservableGauge
	gauge, errs[2] = meter.Float64ObservableGauge("cloudsql_cache.read.staleness.max", metric.WithUnit("ms"),
		metric.WithDescription("The largest staleness among the sampler's recent stale reads."))
	if err := errors.Join(errs[:]...); err != nil {
		return m, fmt.Errorf("readcache: sampler metrics: %w", err)
	}
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveFloat64(gauge, s.maxStaleness())
		return nil
	}, gauge)
	if err != nil {
		return m, fmt.Errorf("readcache: sampler metrics: %w", err)
	}
	m.reg = reg
	m.attrSets = map[string]metric.MeasurementOption{}
	m.sourceAttrs = map[Source]metric.MeasurementOption{}
	for _, from := range []Source{FromL1, FromRedis, FromDatabase} {
		m.sourceAttrs[from] = metric.WithAttributeSet(attribute.NewSet(attribute.String("source", string(from))))
		for _, r := range []string{"current", "stale", "unresolved", "skipped", "dropped"} {
			m.attrSets[r+" "+string(from)] = metric.WithAttributeSet(attribute.NewSet(attribute.String("result", r), attribute.String("source", string(from))))
		}
	}
	return m, nil
}

// --- The binlog position clock --------------------------------------------------------------------

// posClock remembers when the database's binlog reached each position: runs of equal readings, in
// order.
type posClock struct {
	db    *sql.DB
	query string
	keep  time.Duration

	mu   sync.Mutex
	runs []posRun
}

// posRun is a run of readings of one position: the first and last time a reading was sent, and when
// the first was answered.
type posRun struct {
	file, pos           uint64
	firstSent, lastSent time.Time
	firstRecv           time.Time
}

func newPosClock(ctx context.Context, db *sql.DB, keep time.Duration) (*posClock, error) {
	c := &posClock{db: db, keep: keep}
	var errs []error
	for _, q := range []string{"SHOW BINARY LOG STATUS", "SHOW MASTER STATUS"} { // MySQL 8.2+; MariaDB and older MySQL
		c.query = q
		if err := c.read(ctx); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", q, err))
			continue
		}
		return c, nil
	}
	return nil, fmt.Errorf("readcache: the sampler cannot read the binlog position (it needs binary logging on and REPLICATION CLIENT on MySQL, BINLOG MONITOR on MariaDB): %w", errors.Join(errs...))
}

func (c *posClock) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_ = c.read(rctx) // a missed reading only widens the interval a commit is dated within
			cancel()
		}
	}
}

func (c *posClock) read(ctx context.Context) error {
	sent := time.Now()
	rows, err := c.db.QueryContext(ctx, c.query)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return errors.New("no binlog position (is binary logging on?)")
	}
	vals := make([]sql.RawBytes, len(cols))
	dest := make([]any, len(cols))
	for i := range vals {
		dest[i] = &vals[i]
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	recv := time.Now()
	var file string
	var pos uint64
	for i, col := range cols {
		switch strings.ToLower(col) {
		case "file":
			file = string(vals[i])
		case "position":
			pos, err = strconv.ParseUint(string(vals[i]), 10, 64)
			if err != nil {
				return fmt.Errorf("position %q: %w", vals[i], err)
			}
		}
	}
	dot := strings.LastIndexByte(file, '.')
	seq, err := strconv.ParseUint(file[dot+1:], 10, 64)
	if dot < 0 || err != nil {
		return fmt.Errorf("binlog file %q has no sequence number", file)
	}
	c.add(seq, pos, sent, recv)
	return nil
}

func (c *posClock) add(file, pos uint64, sent, recv time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := len(c.runs); n > 0 && c.runs[n-1].file == file && c.runs[n-1].pos == pos {
		c.runs[n-1].lastSent = sent
		return
	}
	c.runs = append(c.runs, posRun{file: file, pos: pos, firstSent: sent, lastSent: sent, firstRecv: recv})
	// Forget what is older than keep (keeping the run in force at that time).
	cut := 0
	for cut+1 < len(c.runs) && sent.Sub(c.runs[cut+1].firstSent) > c.keep {
		cut++
	}
	if cut > 0 {
		c.runs = slices.Delete(c.runs, 0, cut)
	}
}

// commit dates the change at v: low is the latest time a reading was sent that did not contain it
// yet (so it committed after low), high the time the first reading that contained it came back (so it
// had committed by then). exact is false if every reading contains it (it committed before the
// clock's memory; low is then the oldest reading); ok is false if no reading contains it yet.
func (c *posClock) commit(v rowcache.Version) (low, high time.Time, exact, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The first run past v: the binlog's end is beyond the position of the event holding the change.
	i := sort.Search(len(c.runs), func(i int) bool {
		r := c.runs[i]
		return r.file > v.File || (r.file == v.File && r.pos > v.Pos)
	})
	if i == len(c.runs) {
		return time.Time{}, time.Time{}, false, false
	}
	high = c.runs[i].firstRecv
	if i == 0 {
		return c.runs[0].firstSent, high, false, true
	}
	return c.runs[i-1].lastSent, high, true, true
}

// --- The history of applied changes ---------------------------------------------------------------

// change is a change of a key the function applied, as the sampler heard of it.
type change struct {
	at      time.Time // when its invalidation arrived
	version rowcache.Version
	// known is false when the key had changed again before the sampler read it: its version is then
	// between its neighbours'.
	known bool
	next  *change // the key's next change, once known (for estimates)
}

// history keeps, for every key changed lately, the changes the function applied, from the
// invalidation channel and a GET of each changed key.
type history struct {
	rdb     redis.UniversalClient
	timeout time.Duration
	keep    time.Duration
	sub     *subscription
	keys    chan heard

	mu      sync.Mutex
	changes map[string][]*change
	// The history is complete from since on while the subscription is up and the reader is not
	// behind; any gap moves since to when it ended.
	subUp, behind bool
	since         time.Time
}

type heard struct {
	key string
	at  time.Time
}

func newHistory(ctx context.Context, rdb redis.UniversalClient, channel string, timeout, keep time.Duration) *history {
	h := &history{rdb: rdb, timeout: timeout, keep: keep, keys: make(chan heard, 1<<16), changes: map[string][]*change{}}
	h.sub = startSubscription(ctx, rdb, channel, 250*time.Millisecond, h.heard, h.setUp)
	return h
}

func (h *history) heard(key string) {
	select {
	case h.keys <- heard{key, time.Now()}:
	default:
		// The reader is behind: this change's version will never be known, so the history is
		// incomplete until the backlog is gone.
		h.setState(func() { h.behind = true })
	}
}

func (h *history) setUp(up bool) { h.setState(func() { h.subUp = up }) }

// setState applies f to the state; becoming complete again starts a new since.
func (h *history) setState(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	was := h.subUp && !h.behind
	f()
	if !was && h.subUp && !h.behind {
		h.since = time.Now()
	}
}

// covers reports whether every change applied since from is in the history.
func (h *history) covers(from time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.subUp && !h.behind && !from.Before(h.since)
}

// run reads the version of each changed key, a pipeline of GETs for what has arrived.
func (h *history) run(ctx context.Context) {
	prune := time.NewTicker(time.Second)
	defer prune.Stop()
	for {
		var batch []heard
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			h.prune(time.Now())
			continue
		case k := <-h.keys:
			batch = append(batch, k)
		}
	drain:
		for len(batch) < 512 {
			select {
			case k := <-h.keys:
				batch = append(batch, k)
			default:
				break drain
			}
		}
		h.read(ctx, batch)
		if len(h.keys) == 0 {
			h.mu.Lock()
			behind := h.behind
			h.mu.Unlock()
			if behind {
				h.setState(func() { h.behind = false })
			}
		}
	}
}

func (h *history) read(ctx context.Context, batch []heard) {
	rctx, cancel := context.WithTimeout(ctx, max(h.timeout, time.Second))
	defer cancel()
	pipe := h.rdb.Pipeline()
	cmds := make([]*redis.StringCmd, len(batch))
	for i, k := range batch {
		cmds[i] = pipe.Get(rctx, k.key)
	}
	_, _ = pipe.Exec(rctx)
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, k := range batch {
		b, err := cmds[i].Bytes()
		ch := &change{at: k.at}
		switch {
		case err == nil:
			if e, derr := rowcache.Decode(b); derr == nil {
				ch.version, ch.known = e.Version, true
			}
		case errors.Is(err, redis.Nil):
			// Deleted by a sweep (truncate, epoch) or expired: a change without a version.
		default:
			// Redis failed: this change's version is lost.
		}
		list := h.changes[k.key]
		if n := len(list); n > 0 {
			prev := list[n-1]
			if ch.known && prev.known && prev.version == ch.version {
				// The key changed again before the previous change's version was read.
				prev.known = false
			}
			prev.next = ch
		}
		h.changes[k.key] = append(list, ch)
	}
}

// superseding is the first change of key applied after fetched and newer than v.
func (h *history) superseding(key string, fetched time.Time, v rowcache.Version) (change, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, ch := range h.changes[key] {
		if ch.at.Before(fetched) {
			continue
		}
		if ch.known && ch.version.Compare(v) <= 0 {
			continue // applied before the read, its invalidation heard after it
		}
		c := *ch
		if ch.next != nil {
			n := *ch.next
			c.next = &n
		}
		return c, true
	}
	return change{}, false
}

// changesSince is a copy of the changes of key applied after t, in order.
func (h *history) changesSince(key string, t time.Time) []change {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []change
	for _, ch := range h.changes[key] {
		if ch.at.Before(t) {
			continue
		}
		c := *ch
		if ch.next != nil {
			n := *ch.next
			c.next = &n
		}
		out = append(out, c)
	}
	return out
}

func (h *history) prune(now time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for k, list := range h.changes {
		i := 0
		for i < len(list) && now.Sub(list[i].at) > h.keep {
			i++
		}
		if i == len(list) {
			delete(h.changes, k)
		} else if i > 0 {
			h.changes[k] = list[i:]
		}
	}
}
