package cdc

import (
	"context"
	"log/slog"
	"time"
)

// committer waits, in order, for each transaction's messages to be accepted by the sink and only then
// advances the durable offset: at-least-once, with publishing pipelined ahead of the waiting.
type committer struct {
	dir   string
	every time.Duration
	log   *slog.Logger
	queue chan batch
	done  chan struct{}
}

type batch struct {
	waits []func(context.Context) error
	off   Offset
	force bool // save at once (the end of the snapshot)
}

func newCommitter(dir string, every time.Duration, log *slog.Logger) *committer {
	return &committer{dir: dir, every: every, log: log, queue: make(chan batch, 4096), done: make(chan struct{})}
}

// commit queues a transaction; it blocks when too many are outstanding (back-pressure).
func (c *committer) commit(ctx context.Context, waits []func(context.Context) error, off Offset, force bool) error {
	select {
	case c.queue <- batch{waits, off, force}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *committer) close() { close(c.queue) }

func (c *committer) run(ctx context.Context) error {
	var last Offset
	dirty := false
	lastSave := time.Time{}
	save := func() error {
		if !dirty {
			return nil
		}
		if err := SaveOffset(c.dir, last); err != nil {
			return err
		}
		dirty, lastSave = false, time.Now()
		return nil
	}
	defer func() {
		// Whatever was confirmed before the stop is saved, so a clean stop resumes exactly there.
		if err := save(); err != nil {
			c.log.Error("save offset", "error", err.Error())
		}
	}()
	tick := time.NewTicker(c.every)
	defer tick.Stop()
	for {
		select {
		case b, ok := <-c.queue:
			if !ok {
				return nil
			}
			for _, w := range b.waits {
				if err := w(ctx); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
			}
			last, dirty = b.off, true
			if b.force || time.Since(lastSave) >= c.every {
				if err := save(); err != nil {
					return err
				}
			}
		case <-tick.C:
			if err := save(); err != nil {
				return err
			}
		case <-ctx.Done():
			return nil
		}
	}
}
