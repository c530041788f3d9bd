package verify

import (
	"context"
	"time"

	"github.com/cloudsql-cache/cloudsql-cache/rowcache"
)

// suspect is a difference waiting for its second look.
type suspect struct {
	Key string `json:"key"`
	// PK is the row's primary key as the server printed it (rows pass); nil for a possible extra,
	// whose key is read back from the cached row.
	PK    textValues `json:"pk,omitempty"`
	found time.Time
}

// settle looks again at the differences whose settle delay has passed. With all, it waits for every
// one; otherwise it waits only while more than MaxPending are queued, which bounds the queue.
func (c *tableCheck) settle(ctx context.Context, all bool) error {
	for len(c.pending) > 0 {
		s := c.pending[0]
		if wait := time.Until(s.found.Add(c.r.cfg.Settle)); wait > 0 {
			if !all && len(c.pending) <= c.r.cfg.MaxPending {
				return nil
			}
			if err := sleep(ctx, wait); err != nil {
				return err
			}
		}
		var err error
		if s.PK != nil {
			err = c.recheckRow(ctx, s)
		} else {
			err = c.recheckExtra(ctx, s)
		}
		if err != nil {
			return err
		}
		c.pending[0] = nil
		c.pending = c.pending[1:]
	}
	return nil
}

// recheckRow classifies a row that differed from the cache, now that changes in flight had time to
// land.
func (c *tableCheck) recheckRow(ctx context.Context, s *suspect) error {
	row, err := c.readOne(ctx, s.PK)
	if err != nil {
		return err
	}
	have, err := c.getCached(ctx, s.Key)
	if err != nil {
		return err
	}
	tr := &c.st.Report
	switch {
	case row == nil:
		// Deleted meanwhile: an extra if the cache still has it live.
		if e, ok := live(have); ok {
			tr.Extra++
			c.r.addDiff(Diff{Kind: Extra, Table: tr.Table, Key: s.Key, Cache: e})
		}
	case same(have, c.pt.RowJSON(row)):
	default:
		d := Diff{Table: tr.Table, Key: s.Key, DB: string(c.pt.RowJSON(row))}
		if e, ok := live(have); ok {
			d.Kind, d.Cache = Different, e
			tr.Different++
		} else {
			d.Kind = Missing
			if have != nil {
				d.Cache = have.(string)
			}
			tr.Missing++
		}
		c.r.addDiff(d)
	}
	return nil
}

// recheckExtra classifies a cached row whose primary key the database did not have: still cached and
// still not in the database is an extra.
func (c *tableCheck) recheckExtra(ctx context.Context, s *suspect) error {
	have, err := c.getCached(ctx, s.Key)
	if err != nil || have == nil {
		return err
	}
	e, err := rowcache.Decode([]byte(have.(string)))
	if err != nil || e.Deleted() {
		return nil
	}
	args, ok := c.pkArgs(e.Row)
	if !ok {
		return nil
	}
	found, err := c.lookup(ctx, [][]any{args})
	if err != nil {
		return err
	}
	if !found[s.Key] {
		tr := &c.st.Report
		tr.Extra++
		c.r.addDiff(Diff{Kind: Extra, Table: tr.Table, Key: s.Key, Cache: have.(string)})
	}
	return nil
}
