// Package loadgen offers a fixed rate of row changes to a table of its own, open loop, for the
// end-to-end lag benchmark (cmd/benchlag): a 10 ms ticker works out how many row changes are due since
// the start (so the offered rate holds whatever the latency) and hands them, in multi-row statements of
// at most Config.Batch rows (90% UPDATE of existing rows, 10% INSERT of new ones), to Config.Conns
// connections, each owning its own keys (no lock waits between them). Every row carries its
// statement's sequence number in the column seq; the time its COMMIT returned to the client is kept
// per statement (CommitTime), so a change seen downstream can be timed from its commit exactly.
package loadgen

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Database and Table are where the load writes: Table is (id INT PRIMARY KEY, seq BIGINT, n INT,
// payload VARCHAR).
const (
	Database = "bench"
	Table    = "bench.items"
)

// Config configures a Generator.
type Config struct {
	DB       *sql.DB // with at least Conns connections
	Keys     int     // rows created by CreateTable, ids 0 … Keys-1; at least Conns
	Batch    int     // at most this many rows per statement
	Conns    int     // concurrent statements; connection w owns the ids w, w+Conns, …
	RowBytes int     // payload bytes per row
}

// Generator offers loads to the table. Its statements are numbered across loads.
type Generator struct {
	cfg     Config
	seq     atomic.Int64 // statement sequence numbers
	commits sync.Map     // seq → commit time (unix µs)
	nextNew []int        // per connection: the id of its next INSERTed row
}

// New returns a generator for cfg.
func New(cfg Config) (*Generator, error) {
	if cfg.DB == nil || cfg.Conns < 1 || cfg.Batch < 1 || cfg.Keys < cfg.Conns || cfg.RowBytes < 1 {
		return nil, fmt.Errorf("loadgen: need a database, Conns >= 1, Batch >= 1, Keys >= Conns and RowBytes >= 1 (got %+v)", cfg)
	}
	g := &Generator{cfg: cfg, nextNew: make([]int, cfg.Conns)}
	for i := range g.nextNew {
		g.nextNew[i] = cfg.Keys + 1_000_000 + i
	}
	return g, nil
}

// CreateTable creates the database and the table with Keys rows.
func (g *Generator) CreateTable(ctx context.Context) error {
	for _, q := range []string{
		"CREATE DATABASE " + Database,
		"CREATE TABLE " + Table + " (id INT NOT NULL PRIMARY KEY, seq BIGINT NOT NULL, n INT NOT NULL, payload VARCHAR(4000) NOT NULL)",
	} {
		if _, err := g.cfg.DB.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("loadgen: %s: %w", q, err)
		}
	}
	for lo := 0; lo < g.cfg.Keys; lo += 500 {
		var sb strings.Builder
		sb.WriteString("INSERT INTO " + Table + " VALUES ")
		for id := lo; id < min(lo+500, g.cfg.Keys); id++ {
			if id > lo {
				sb.WriteByte(',')
			}
			fmt.Fprintf(&sb, "(%d,0,0,REPEAT('x',%d))", id, g.cfg.RowBytes)
		}
		if _, err := g.cfg.DB.ExecContext(ctx, sb.String()); err != nil {
			return fmt.Errorf("loadgen: fill %s: %w", Table, err)
		}
	}
	return nil
}

// Load is the progress of one Offer, readable while it runs.
type Load struct {
	committed atomic.Int64 // row changes committed
	failed    atomic.Int64 // statements that failed
	firstSeq  atomic.Int64 // first statement of the measured window
	lastSeq   atomic.Int64 // last statement of the measured window
}

// Committed is the number of row changes committed so far.
func (l *Load) Committed() int64 { return l.committed.Load() }

// Failed is the number of statements that failed.
func (l *Load) Failed() int64 { return l.failed.Load() }

// Window is the first and last statement started in the measured window (0, 0 if none).
func (l *Load) Window() (first, last int64) { return l.firstSeq.Load(), l.lastSeq.Load() }

// Offer offers rate row changes per second for warmup+dur (or until ctx ends), then returns once
// every statement is done. Statements started between warmup and warmup+dur after the start are the
// measured window.
func (g *Generator) Offer(ctx context.Context, rate float64, warmup, dur time.Duration, l *Load) {
	c := g.cfg
	type job struct{ rows int }
	jobs := make(chan job, 1<<16)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < c.Conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(w)))
			owned := (c.Keys - w + c.Conns - 1) / c.Conns // ids w, w+conns, …
			for j := range jobs {
				seq := g.seq.Add(1)
				since := time.Since(t0)
				if since >= warmup && since < warmup+dur {
					l.firstSeq.CompareAndSwap(0, seq)
					l.lastSeq.Store(seq)
				}
				var q string
				n := min(j.rows, owned)
				if rnd.IntN(10) == 0 { // INSERT new rows
					var sb strings.Builder
					sb.WriteString("INSERT INTO " + Table + " VALUES ")
					for i := 0; i < j.rows; i++ {
						if i > 0 {
							sb.WriteByte(',')
						}
						id := g.nextNew[w]
						g.nextNew[w] += c.Conns
						fmt.Fprintf(&sb, "(%d,%d,0,REPEAT('y',%d))", id, seq, c.RowBytes)
					}
					q, n = sb.String(), j.rows
				} else { // UPDATE n distinct existing rows of this connection's
					ids := make(map[int]bool, n)
					for len(ids) < n {
						ids[w+c.Conns*rnd.IntN(owned)] = true
					}
					list := make([]int, 0, n)
					for id := range ids {
						list = append(list, id)
					}
					slices.Sort(list)
					var sb strings.Builder
					fmt.Fprintf(&sb, "UPDATE "+Table+" SET seq = %d, n = n + 1 WHERE id IN (", seq)
					for i, id := range list {
						if i > 0 {
							sb.WriteByte(',')
						}
						sb.WriteString(strconv.Itoa(id))
					}
					sb.WriteByte(')')
					q = sb.String()
				}
				res, err := c.DB.ExecContext(context.Background(), q)
				at := time.Now().UnixMicro()
				if err != nil {
					l.failed.Add(1)
					continue
				}
				g.commits.Store(seq, at)
				if k, err := res.RowsAffected(); err == nil {
					l.committed.Add(k)
				} else {
					l.committed.Add(int64(n))
				}
			}
		}(w)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var offered int64
	end := warmup + dur
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case now := <-tick.C:
			el := min(now.Sub(t0), end)
			due := int64(rate*el.Seconds()) - offered
			for due > 0 {
				n := min(due, int64(c.Batch))
				jobs <- job{rows: int(n)}
				offered += n
				due -= n
			}
			if el >= end {
				break loop
			}
		}
	}
	close(jobs)
	wg.Wait()
}

// CommitTime is when the COMMIT of statement seq returned to the client, in µs since the Unix epoch.
func (g *Generator) CommitTime(seq int64) (int64, bool) {
	at, ok := g.commits.Load(seq)
	if !ok {
		return 0, false
	}
	return at.(int64), true
}

// ForgetCommits drops the commit times kept so far.
func (g *Generator) ForgetCommits() { g.commits.Clear() }
