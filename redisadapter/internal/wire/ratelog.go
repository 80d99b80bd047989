package wire

import (
	"log/slog"
	"sync"
	"time"
)

// RateLog logs warnings of one kind at most once per Every, counting those
// it left out, so that a flood of garbage or a long outage does not flood
// the log.
type RateLog struct {
	Every time.Duration

	mu         sync.Mutex
	last       time.Time
	suppressed int
}

// Warn logs msg with args at warning level, unless another warning was
// logged less than Every ago; the next one logged says how many were left
// out ("suppressed").
func (r *RateLog) Warn(log *slog.Logger, msg string, args ...any) {
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < r.Every {
		r.suppressed++
		r.mu.Unlock()
		return
	}
	r.last = now
	n := r.suppressed
	r.suppressed = 0
	r.mu.Unlock()
	if n > 0 {
		args = append(args, "suppressed", n)
	}
	log.Warn(msg, args...)
}
