package pipeline

import (
	"encoding/json"
	"sync"

	"github.com/cloudsql-cache/cloudsql-cache/internal/stats"
	"github.com/cloudsql-cache/cloudsql-cache/local/relay"
)

// Applied is a change the function answered "applied" to, on its first delivery, with the times its
// lag is measured from.
type Applied struct {
	relay.Delivery
	Op       string // the event's op ("c", "u", "d", "t", "r")
	CommitMs int64  // source.ts_ms: the commit in the database (whole seconds on MariaDB's binlog)
	TsUs     int64  // ts_us: when Debezium processed the change (0 if absent: the compact format drops it)
}

// appliedOf reads the times of an applied change's event; ok is false for anything else (another
// answer, a deliberate second delivery, a message that is not a change). It reads both event formats:
// Debezium's envelope (op, source.ts_ms, ts_us) and the compact one (__op, __source_ts_ms).
func appliedOf(d relay.Delivery) (a Applied, ok bool) {
	if !d.Acked || d.Repeat || d.Outcome != "applied" {
		return Applied{}, false
	}
	var ev struct {
		Op     string `json:"op"`
		TsUs   int64  `json:"ts_us"`
		Source struct {
			TsMs int64 `json:"ts_ms"`
		} `json:"source"`
		CompactOp   string `json:"__op"`
		CompactTsMs int64  `json:"__source_ts_ms"`
	}
	if json.Unmarshal(d.Message.Data, &ev) != nil {
		return Applied{}, false
	}
	switch {
	case ev.Op != "":
		return Applied{Delivery: d, Op: ev.Op, CommitMs: ev.Source.TsMs, TsUs: ev.TsUs}, true
	case ev.CompactOp != "":
		return Applied{Delivery: d, Op: ev.CompactOp, CommitMs: ev.CompactTsMs}, true
	}
	return Applied{}, false
}

// Lag is the lag of the recently applied changes (the last lagWindow, since the last ResetLag), in
// milliseconds, measured when the function answered: commit→cache (now − source.ts_ms, whose
// resolution is the binlog's: whole seconds on MariaDB) and Debezium→cache (now − ts_us, when Debezium
// made the event: the sink, Pub/Sub, push and the function). Snapshot reads, which carry no commit
// time of their own, are left out.
type Lag struct {
	Commit, Debezium stats.Summary
}

const lagWindow = 4096

type lagMeter struct {
	mu          sync.Mutex
	commit, dbz *stats.Window
}

func newLagMeter() *lagMeter {
	return &lagMeter{commit: stats.NewWindow(lagWindow), dbz: stats.NewWindow(lagWindow)}
}

func (l *lagMeter) observe(a Applied) {
	if a.Op == "r" || a.CommitMs <= 0 {
		return
	}
	commit := float64(a.At.UnixMilli() - a.CommitMs)
	dbz := -1.0
	if a.TsUs > 0 {
		dbz = float64(a.At.UnixMicro()-a.TsUs) / 1000
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.commit.Add(commit)
	if dbz >= 0 {
		l.dbz.Add(dbz)
	}
}

func (l *lagMeter) lag() Lag {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Lag{Commit: l.commit.Summary(), Debezium: l.dbz.Summary()}
}

func (l *lagMeter) reset() {
	l.mu.Lock()
	l.commit.Reset()
	l.dbz.Reset()
	l.mu.Unlock()
}
