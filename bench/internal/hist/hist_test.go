package hist

import (
	"testing"
	"time"
)

func TestBucketsRoundTrip(t *testing.T) {
	for _, v := range []uint64{0, 1, 127, 128, 129, 1000, 123456, 1 << 30, 987654321} {
		got := value(bucket(v))
		if v < linear && got != v {
			t.Errorf("value(bucket(%d)) = %d, want exact", v, got)
		}
		if diff := float64(got) - float64(v); diff < 0 && -diff > float64(v)*0.016 || diff > float64(v)*0.016 {
			t.Errorf("value(bucket(%d)) = %d, more than 1.6%% off", v, got)
		}
	}
	if b := bucket(1 << 62); b != nBuckets-1 {
		t.Errorf("huge value in bucket %d, want the last", b)
	}
}

func TestQuantiles(t *testing.T) {
	var h Histogram
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Microsecond)
	}
	check := func(q float64, want time.Duration) {
		t.Helper()
		got := h.Quantile(q)
		if d := got - want; d < -want/50 || d > want/50 {
			t.Errorf("Quantile(%v) = %v, want about %v", q, got, want)
		}
	}
	check(0.5, 500*time.Microsecond)
	check(0.99, 990*time.Microsecond)
	check(1, 1000*time.Microsecond)
	if h.Count() != 1000 {
		t.Errorf("Count = %d", h.Count())
	}
	h.Reset()
	if h.Quantile(0.5) != 0 || h.Max() != 0 {
		t.Error("not empty after Reset")
	}
}
