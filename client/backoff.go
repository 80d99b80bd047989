package client

import (
	"math"
	"math/rand/v2"
	"time"
)

// Reconnection defaults, those of the official client.
const (
	defaultReconnectionDelay    = time.Second
	defaultReconnectionDelayMax = 5 * time.Second
	defaultRandomizationFactor  = 0.5
)

// NoRandomization, as Options.RandomizationFactor, makes every
// reconnection delay exact (randomizationFactor: 0 in the official
// client, which the zero value cannot say since it means the default).
const NoRandomization = -1

// backoff computes the delays between reconnection attempts with the
// formula of the official client's Backoff (contrib/backo2.js): the n-th
// delay (from 0) is min·2ⁿ, moved up or down by a random part of itself of
// at most jitter, then capped at max.
type backoff struct {
	min, max time.Duration
	jitter   float64 // in (0, 1], or 0 for none
	attempts int
	rand     func() float64 // in [0, 1)
}

func newBackoff(o *Options) backoff {
	b := backoff{min: o.ReconnectionDelay, max: o.ReconnectionDelayMax, jitter: o.RandomizationFactor, rand: rand.Float64}
	if b.min <= 0 {
		b.min = defaultReconnectionDelay
	}
	if b.max <= 0 {
		b.max = defaultReconnectionDelayMax
	}
	switch {
	case b.jitter == 0:
		b.jitter = defaultRandomizationFactor
	case b.jitter < 0 || b.jitter > 1:
		b.jitter = 0 // as the official Backoff, which ignores such a jitter
	}
	return b
}

// duration returns the delay before the next attempt and counts it.
func (b *backoff) duration() time.Duration {
	// The exponent stops growing long after the cap is reached, where the
	// official client's arithmetic overflows to a delay of 0.
	d := float64(b.min) * math.Pow(2, float64(min(b.attempts, 64)))
	b.attempts++
	if b.jitter > 0 {
		r := b.rand()
		deviation := math.Floor(r * b.jitter * d)
		if int(math.Floor(r*10))&1 == 0 {
			d -= deviation
		} else {
			d += deviation
		}
	}
	return time.Duration(math.Min(d, float64(b.max)))
}

// reset starts the count of attempts again, after a success.
func (b *backoff) reset() { b.attempts = 0 }
