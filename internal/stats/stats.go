// Package stats is the one implementation of the statistics the local pipeline and the benchmarks
// report: quantiles of latency samples (nearest rank), of a Prometheus histogram (as PromQL's
// histogram_quantile computes them), a window of the most recent samples, and a least-squares slope.
package stats

import (
	"fmt"
	"math"
	"slices"
)

// Summary is the distribution of a set of samples.
type Summary struct {
	N             int
	P50, P99, Max float64
}

// Summarize sorts samples in place and returns their count, median, 99th percentile and maximum (all 0
// for no samples).
func Summarize(samples []float64) Summary {
	if len(samples) == 0 {
		return Summary{}
	}
	slices.Sort(samples)
	return Summary{N: len(samples), P50: Quantile(samples, 0.5), P99: Quantile(samples, 0.99), Max: samples[len(samples)-1]}
}

// Quantile is the q-quantile (0..1) of sorted by nearest rank: the sample at index ⌊q·n⌋, the last one
// for q = 1. It is 0 for no samples.
func Quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}

// Window keeps the most recent samples, at most its size, for quantiles of "lately". It is not safe for
// concurrent use.
type Window struct {
	samples []float64
	size    int
	next    int // where the next sample goes once the window is full
}

// NewWindow returns a window of the last size samples.
func NewWindow(size int) *Window { return &Window{size: size} }

// Add records a sample, replacing the oldest one when the window is full.
func (w *Window) Add(v float64) {
	if len(w.samples) < w.size {
		w.samples = append(w.samples, v)
		return
	}
	w.samples[w.next] = v
	w.next = (w.next + 1) % w.size
}

// Len is the number of samples held.
func (w *Window) Len() int { return len(w.samples) }

// Reset forgets every sample.
func (w *Window) Reset() { w.samples, w.next = nil, 0 }

// Summary summarizes the samples held (Summarize of a copy).
func (w *Window) Summary() Summary { return Summarize(slices.Clone(w.samples)) }

// HistogramQuantile is the q-quantile (0..1) of a cumulative histogram, as PromQL's
// histogram_quantile computes it: bounds are the buckets' upper bounds in increasing order (the last
// may be +Inf), counts the cumulative count of each; the quantile is interpolated linearly inside its
// bucket, and beyond the last finite bound it is that bound. ok is false when the histogram is empty.
func HistogramQuantile(q float64, bounds, counts []float64) (v float64, ok bool) {
	if len(counts) == 0 || counts[len(counts)-1] <= 0 {
		return 0, false
	}
	rank := q * counts[len(counts)-1]
	for i, c := range counts {
		if c >= rank {
			lower, prev := 0.0, 0.0
			if i > 0 {
				lower, prev = bounds[i-1], counts[i-1]
			}
			if math.IsInf(bounds[i], 1) {
				return lower, true
			}
			if c == prev {
				return bounds[i], true
			}
			return lower + (bounds[i]-lower)*(rank-prev)/(c-prev), true
		}
	}
	return bounds[len(bounds)-1], true
}

// Slope is the least-squares slope of y over x (0 with fewer than two points or no spread in x).
func Slope(x, y []float64) float64 {
	n := float64(len(x))
	if n < 2 {
		return 0
	}
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// Millis formats a figure in milliseconds for a report's table: seconds from 10 s up, whole
// milliseconds from 100 ms, a tenth below.
func Millis(v float64) string {
	switch {
	case v >= 10000:
		return fmt.Sprintf("%.1f s", v/1000)
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	default:
		return fmt.Sprintf("%.1f ms", v)
	}
}
