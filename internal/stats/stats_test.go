package stats

import (
	"math"
	"testing"
)

func TestSummarize(t *testing.T) {
	v := make([]float64, 0, 200)
	for i := 200; i >= 1; i-- { // 1..200, in reverse
		v = append(v, float64(i))
	}
	s := Summarize(v)
	// Nearest rank: index ⌊q·n⌋ of the sorted samples.
	if s.N != 200 || s.P50 != 101 || s.P99 != 199 || s.Max != 200 {
		t.Fatalf("%+v", s)
	}
	if (Summarize(nil) != Summary{}) {
		t.Fatal("samples from nothing")
	}
	if q := Quantile([]float64{1, 2, 3}, 1); q != 3 {
		t.Fatalf("q=1: %v", q)
	}
}

func TestWindowKeepsTheLatest(t *testing.T) {
	w := NewWindow(3)
	for i := 1; i <= 5; i++ {
		w.Add(float64(i))
	}
	if s := w.Summary(); w.Len() != 3 || s.N != 3 || s.P50 != 4 || s.Max != 5 {
		t.Fatalf("len %d %+v, want 3, 4, 5 held", w.Len(), s)
	}
	w.Reset()
	if w.Len() != 0 {
		t.Fatal("Reset kept samples")
	}
}

func TestHistogramQuantile(t *testing.T) {
	// 100 observations: 50 at or under 500, 50 in (500, 1000].
	bounds := []float64{500, 1000, math.Inf(1)}
	counts := []float64{50, 100, 100}
	if v, ok := HistogramQuantile(0.5, bounds, counts); !ok || v != 500 {
		t.Fatalf("p50 %v %v", v, ok)
	}
	if v, _ := HistogramQuantile(0.99, bounds, counts); math.Abs(v-990) > 1e-9 {
		t.Fatalf("p99 %v", v)
	}
	if v, _ := HistogramQuantile(0.75, bounds, counts); v != 750 {
		t.Fatalf("p75 %v", v)
	}
	// Beyond the last finite bound: that bound, as PromQL says.
	if v, _ := HistogramQuantile(0.99, bounds, []float64{0, 10, 100}); v != 1000 {
		t.Fatalf("in the +Inf bucket: %v", v)
	}
	if _, ok := HistogramQuantile(0.5, bounds, []float64{0, 0, 0}); ok {
		t.Fatal("a quantile of no observations")
	}
}

func TestSlope(t *testing.T) {
	if s := Slope([]float64{0, 1, 2, 3}, []float64{1, 3, 5, 7}); s != 2 {
		t.Fatalf("slope %v", s)
	}
	if Slope([]float64{1}, []float64{1}) != 0 || Slope([]float64{1, 1}, []float64{1, 2}) != 0 {
		t.Fatal("a slope from no spread")
	}
}

func TestMillis(t *testing.T) {
	for v, want := range map[float64]string{7.25: "7.2 ms", 99.94: "99.9 ms", 100: "100 ms", 9999: "9999 ms", 10000: "10.0 s", 61234: "61.2 s"} {
		if got := Millis(v); got != want {
			t.Errorf("Millis(%v) = %q, want %q", v, got, want)
		}
	}
}
