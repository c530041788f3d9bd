// Package verify is the drift checker: it compares a database's tables with the cache row by row and
// reports rows missing from the cache, cached rows whose primary key no longer exists (extra), and rows
// whose cached JSON differs from the database.
//
// It is built to run against production tables of any size, in memory that does not grow with them:
//
//   - the rows pass reads each table in primary-key order, in chunks (keyset pagination, so every query
//     is an index range scan), optionally within a key range, at a bounded rate, and compares each chunk
//     with one MGET;
//   - the extras pass SCANs the table's own keys (a MATCH glob of the table's key prefix, each key then
//     held to a KeyOwner) and looks the primary keys of each batch up in the database with one query,
//     instead of remembering every key the rows pass saw;
//   - rows that change while it runs can look different for a moment: each difference waits in a
//     bounded queue until the settle delay has passed and is reported only if it persists;
//   - a checkpoint file records where each table stands, so an interrupted run resumes where it stopped;
//   - a sampling mode checks random chunks of a table and estimates its drift, with a confidence
//     interval, in a fraction of the time.
package verify

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/cloudsql-cache/cloudsql-cache/tablepolicy"
)

// Config configures a check.
type Config struct {
	// DB is opened with a DSN passed through mysqlrow.CheckDSN: the primary, or better a read replica.
	DB     *sql.DB
	Redis  redis.UniversalClient
	Policy *tablepolicy.Policy
	// Tables are the db.table names to check.
	Tables []string
	// ChunkSize is the number of rows per query (and keys per extras batch); 0 means 500.
	ChunkSize int
	// Pause between chunks bounds the load on the database; 0 means none.
	Pause time.Duration
	// RowsPerSecond caps the rows read from the database (and keys looked up in it) per second; 0 means
	// no cap.
	RowsPerSecond float64
	// Settle is how long a difference waits before it is checked again; 0 means 2s. Against a read
	// replica it must exceed the replica's lag.
	Settle time.Duration
	// MaxDiffs bounds the differences kept in the report (all are counted); 0 means 100.
	MaxDiffs int
	// MaxPending bounds the differences waiting for their second look; when it is reached the check
	// waits for the oldest. 0 means 10,000.
	MaxPending int

	// From and To restrict the rows pass to primary keys From <= key < To, each a prefix of the key's
	// values in key order, as the server prints them (nil: unbounded). Only with a single table.
	From, To []string
	// Extras says whether the extras pass runs. The zero value runs it for full checks only (no From,
	// To or Sample): a range or a sample sees only part of the table's rows.
	Extras ExtrasMode
	// ExtrasFilterBytes bounds the Bloom filter of the keys the rows pass read, which lets the extras
	// pass skip the cached keys of rows it has seen and look only the others up in the database. It is
	// sized for the table (about 20 bits a row, a false-positive rate near 0.01%) up to this bound; 0
	// means 256 MiB (a hundred million rows at about 0.01%); negative means no filter: every cached key is looked up (exact, but one random
	// read of the table per cached row). A false positive hides an extra row: the report gives the
	// rate.
	ExtrasFilterBytes int64
	// Sample, if positive, checks that many chunks of SampleChunk rows starting at random points of the
	// table's first primary-key column (which must be an integer) instead of every row, and estimates
	// the table's drift from them. No extras pass, no checkpoint.
	Sample int
	// SampleChunk is the number of consecutive rows read at each random point; 0 means 20.
	SampleChunk int
	// Seed seeds the sample's random points; 0 picks one.
	Seed uint64

	// Checkpoint, if set, is a file where the check records its progress; a check started with the same
	// file and the same tables and range resumes from it. It is removed when the check completes.
	Checkpoint string
	// Progress, if set, is called every ProgressEvery (0 means 10s) and at the end of each pass.
	Progress      func(Progress)
	ProgressEvery time.Duration
	// Owner decides which keys under a table's SCAN pattern are the table's; nil means ExactOwner.
	Owner KeyOwner
}

// ExtrasMode says whether the extras pass runs.
type ExtrasMode int

const (
	ExtrasAuto ExtrasMode = iota // for full checks only
	ExtrasOn
	ExtrasOff
)

// KeyOwner reports whether key, found by a SCAN of t.Pattern, is one of table t's keys. A prefix
// pattern also matches keys of other tables whose prefix extends it (app.t:* and a template
// "app.t:x:{id}" of another table), and keys no table owns.
type KeyOwner func(t *tablepolicy.Table, key string) bool

// ExactOwner owns exactly the keys the table's key template can produce (tablepolicy.Table.OwnsKey),
// so another table's key under the same SCAN prefix, or a key no table owns, is never counted.
func ExactOwner(t *tablepolicy.Table, key string) bool { return t.OwnsKey(key) }

// PrefixOwner owns the keys that start with the table's literal key prefix: exactly what the SCAN
// pattern matches, and more than the table owns when another table's prefix extends it.
func PrefixOwner(t *tablepolicy.Table, key string) bool {
	return strings.HasPrefix(key, literalPrefix(t.Pattern))
}

// literalPrefix is the literal text of a SCAN pattern that is an escaped prefix followed by "*".
func literalPrefix(pattern string) string {
	p := strings.TrimSuffix(pattern, "*")
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '\\' && i+1 < len(p) {
			i++
		}
		b.WriteByte(p[i])
	}
	return b.String()
}

// Kind of a difference.
type Kind string

const (
	Missing   Kind = "missing"   // in the database, not in the cache (or a tombstone)
	Extra     Kind = "extra"     // a live row in the cache whose key is not in the database
	Different Kind = "different" // cached JSON differs from the database row
)

// Diff is one difference.
type Diff struct {
	Kind  Kind
	Table string
	Key   string
	DB    string // the row JSON from the database ("" for extra)
	Cache string // the cached value ("" for missing)
}

// TableReport counts one table.
type TableReport struct {
	Table                     string
	Rows                      int64 // database rows checked
	Missing, Extra, Different int
	// Keys is the number of the table's cached keys the extras pass looked at.
	Keys int64
	// Foreign counts keys in the table's key space holding a value that is not cloudsql-cache's; they
	// are neither checked nor drift (a foreign value under a row's key is also counted as different).
	Foreign int
	// Unchecked counts live cached rows whose primary key could not be read back from the cached JSON
	// (a key column excluded from the cache): the extras pass could not look them up.
	Unchecked int
	Skipped   string // why the table was not checked, if it was not
	// ExtrasSkipped says why the extras pass did not run, if it did not.
	ExtrasSkipped string
	// Looked is how many of Keys the extras pass looked up in the database; the others were the keys of
	// rows the rows pass read, by the Bloom filter, whose size and false-positive rate (the chance that
	// an extra row is taken for one of those) are FilterBytes and FalsePositive. FilterBytes 0: every key
	// was looked up.
	Looked        int64
	FilterBytes   int64
	FalsePositive float64
	// Estimate is set by a sample: the table's drift extrapolated from the rows checked.
	Estimate *Estimate
}

// Drift is the number of differences found in the table.
func (t TableReport) Drift() int { return t.Missing + t.Extra + t.Different }

// Estimate is a sample's extrapolation to the whole table.
type Estimate struct {
	TableRows int64 // the server's estimate of the table's row count (information_schema.TABLES)
	// Rate is the share of the sampled rows that differ, with a 95% Wilson score interval; DriftLow and
	// DriftHigh are that interval applied to TableRows.
	Rate, RateLow, RateHigh float64
	DriftLow, DriftHigh     int64
}

// Report is the result of a check.
type Report struct {
	Tables []TableReport
	Diffs  []Diff
}

// Drift is the number of differences found.
func (r *Report) Drift() int {
	n := 0
	for _, t := range r.Tables {
		n += t.Drift()
	}
	return n
}

// Progress is where a pass of one table stands.
type Progress struct {
	Table string
	Phase string // "rows", "extras" or "sample"
	// Done is the rows (rows, sample) or keys (extras) checked so far in this pass.
	Done int64
	// Fraction is the share of the pass done, 0 to 1, or -1 when it cannot be told.
	Fraction float64
	// Rate is Done per second since the pass started (or resumed).
	Rate float64
	// ETA is the time left at that rate, or -1 when it cannot be told.
	ETA                       time.Duration
	Missing, Extra, Different int
	Final                     bool // the pass has finished
}

// ErrInterrupted wraps the error of a check stopped by its context after it saved a checkpoint: the
// same command resumes it.
var ErrInterrupted = errors.New("verify: interrupted")

// Run checks every table of cfg.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.DB == nil || cfg.Redis == nil || cfg.Policy == nil {
		return nil, errors.New("verify: DB, Redis and Policy are required")
	}
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, rep: &Report{}}
	if cfg.RowsPerSecond > 0 {
		r.limit = rate.NewLimiter(rate.Limit(cfg.RowsPerSecond), cfg.ChunkSize)
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	r.rnd = rand.New(rand.NewPCG(seed, 0x7e51f))
	var cp *checkpoint
	if cfg.Checkpoint != "" {
		var err error
		if cp, err = loadCheckpoint(cfg.Checkpoint, cfg.checkpointKey()); err != nil {
			return nil, err
		}
		r.cp = cp
		r.rep.Tables = append(r.rep.Tables, cp.Done...)
		r.rep.Diffs = append(r.rep.Diffs, cp.Diffs...)
	}
	for _, name := range cfg.Tables {
		if cp != nil && cp.done(name) {
			continue
		}
		db, table, _ := strings.Cut(name, ".")
		var st *tableState
		if cp != nil && cp.Current != nil && cp.Current.Report.Table == name {
			st = cp.Current
		}
		tr, err := r.checkTable(ctx, db, table, st)
		if err != nil {
			if ctx.Err() != nil && r.cp != nil {
				if serr := r.save(true); serr != nil {
					return nil, errors.Join(err, serr)
				}
				return nil, fmt.Errorf("%w: %s: checkpoint %s saved: %v", ErrInterrupted, name, cfg.Checkpoint, err)
			}
			return nil, err
		}
		r.rep.Tables = append(r.rep.Tables, tr)
		if r.cp != nil {
			r.cp.Done = append(r.cp.Done, tr)
			r.cp.Current = nil
			if err := r.save(true); err != nil {
				return nil, err
			}
		}
	}
	if r.cp != nil {
		if err := removeCheckpoint(cfg.Checkpoint); err != nil {
			return nil, err
		}
	}
	return r.rep, nil
}

func (c *Config) defaults() error {
	if c.ChunkSize <= 0 {
		c.ChunkSize = 500
	}
	if c.Settle == 0 {
		c.Settle = 2 * time.Second
	}
	if c.MaxDiffs <= 0 {
		c.MaxDiffs = 100
	}
	if c.MaxPending <= 0 {
		c.MaxPending = 10000
	}
	if c.SampleChunk <= 0 {
		c.SampleChunk = 20
	}
	if c.ExtrasFilterBytes == 0 {
		c.ExtrasFilterBytes = 256 << 20
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = 10 * time.Second
	}
	if c.Owner == nil {
		c.Owner = ExactOwner
	}
	var errs []error
	for _, name := range c.Tables {
		if db, table, ok := strings.Cut(name, "."); !ok || db == "" || table == "" {
			errs = append(errs, fmt.Errorf("verify: %q is not db.table", name))
		}
	}
	if (c.From != nil || c.To != nil) && len(c.Tables) != 1 {
		errs = append(errs, errors.New("verify: a key range (From, To) needs exactly one table"))
	}
	if c.Sample > 0 && c.Checkpoint != "" {
		errs = append(errs, errors.New("verify: a sample takes no checkpoint (it is quick and random)"))
	}
	if c.Sample > 0 && c.Extras == ExtrasOn {
		errs = append(errs, errors.New("verify: a sample has no extras pass (it sees only some rows)"))
	}
	return errors.Join(errs...)
}

// extras reports whether the extras pass runs.
func (c *Config) extras() bool {
	switch c.Extras {
	case ExtrasOn:
		return true
	case ExtrasOff:
		return false
	}
	return c.From == nil && c.To == nil && c.Sample == 0
}

// runner is one Run.
type runner struct {
	cfg   Config
	rep   *Report
	limit *rate.Limiter
	rnd   *rand.Rand
	cp    *checkpoint
	saved time.Time
	// current is the table being checked (its pending differences go into the checkpoint).
	current *tableCheck
}

// addDiff keeps d in the report if there is room, and in the checkpoint with it.
func (r *runner) addDiff(d Diff) {
	if len(r.rep.Diffs) < r.cfg.MaxDiffs {
		r.rep.Diffs = append(r.rep.Diffs, d)
		if r.cp != nil {
			r.cp.Diffs = append(r.cp.Diffs, d)
		}
	}
}

// wait spends n rows of the rate budget and the pause between chunks.
func (r *runner) wait(ctx context.Context, n int) error {
	if r.limit != nil && n > 0 {
		for n > 0 {
			step := min(n, r.limit.Burst())
			if err := r.limit.WaitN(ctx, step); err != nil {
				return err
			}
			n -= step
		}
	}
	return sleep(ctx, r.cfg.Pause)
}

func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
