package verify

import (
	"time"
)

// meter reports a pass's progress to cfg.Progress, every cfg.ProgressEvery.
type meter struct {
	r            *runner
	table, phase string
	start        time.Time
	base         int64   // Done when this run of the pass began (a resumed pass starts past 0)
	baseFraction float64 // Fraction then, -1 until known
	last         time.Time
}

func (r *runner) meter(table, phase string, done int64) *meter {
	now := time.Now()
	return &meter{r: r, table: table, phase: phase, start: now, base: done, baseFraction: -1, last: now}
}

// tick reports done and fraction (-1: unknown) if a report is due, or final.
func (m *meter) tick(done int64, fraction float64, tr TableReport, final bool) {
	now := time.Now()
	if m.baseFraction < 0 && fraction >= 0 && !final {
		m.baseFraction = 0
		if m.base > 0 { // resumed: measure the rate from the first report on
			m.baseFraction, m.base, m.start = fraction, done, now
		}
	}
	if m.r.cfg.Progress == nil {
		return
	}
	if !final && now.Sub(m.last) < m.r.cfg.ProgressEvery {
		return
	}
	m.last = now
	elapsed := now.Sub(m.start)
	p := Progress{Table: m.table, Phase: m.phase, Done: done, Fraction: fraction, ETA: -1,
		Missing: tr.Missing, Extra: tr.Extra, Different: tr.Different, Final: final}
	if s := elapsed.Seconds(); s > 0 {
		p.Rate = float64(done-m.base) / s
	}
	if final {
		p.Fraction, p.ETA = 1, 0
	} else if fraction > 0 && m.baseFraction >= 0 && fraction > m.baseFraction {
		p.ETA = time.Duration(float64(elapsed) * (1 - fraction) / (fraction - m.baseFraction))
	}
	m.r.cfg.Progress(p)
}
