// Package hist is a lock-free log-linear latency histogram: exact below
// 128 ns, then 64 buckets per power of two (at most 1.6 % error), up to
// about 18 minutes. Record is one atomic add, so connections' goroutines
// share one histogram.
package hist

import (
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	subBits  = 6
	linear   = 1 << (subBits + 1) // values below are their own bucket
	maxShift = 40 - (subBits + 1)
	nBuckets = linear + maxShift*(1<<subBits)
)

// Histogram counts durations.
type Histogram struct {
	counts [nBuckets]atomic.Uint64
	total  atomic.Uint64
}

func bucket(v uint64) int {
	if v < linear {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1)
	if shift > maxShift {
		return nBuckets - 1
	}
	top := v >> shift // in [64, 127]
	return linear + (shift-1)*(1<<subBits) + int(top-(1<<subBits))
}

// value returns the middle of bucket i.
func value(i int) uint64 {
	if i < linear {
		return uint64(i)
	}
	i -= linear
	shift := i>>subBits + 1
	top := uint64(i&(1<<subBits-1) + 1<<subBits)
	return top<<shift + (uint64(1)<<shift)/2
}

// Record adds one duration; negative ones count as zero.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucket(uint64(d))].Add(1)
	h.total.Add(1)
}

// Count returns the number of durations recorded.
func (h *Histogram) Count() uint64 { return h.total.Load() }

// Reset forgets every duration. It must not race with Record.
func (h *Histogram) Reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
	h.total.Store(0)
}

// Quantile returns the duration below which the fraction q of durations
// fall (0 when empty).
func (h *Histogram) Quantile(q float64) time.Duration {
	n := h.total.Load()
	if n == 0 {
		return 0
	}
	rank := uint64(q*float64(n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	if rank > n {
		rank = n
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			return time.Duration(value(i))
		}
	}
	return time.Duration(value(nBuckets - 1))
}

// Max returns the largest duration's bucket value.
func (h *Histogram) Max() time.Duration {
	for i := nBuckets - 1; i >= 0; i-- {
		if h.counts[i].Load() > 0 {
			return time.Duration(value(i))
		}
	}
	return 0
}
