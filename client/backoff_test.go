package client

import (
	"testing"
	"time"
)

// The delays follow the official Backoff's formula: min·2ⁿ, moved down when
// the tenths digit of the random draw is even and up when it is odd, by
// floor(draw·jitter·delay), then capped.
func TestBackoffFormula(t *testing.T) {
	draws := []float64{0.25, 0.35, 0.25, 0.99, 0.0}
	b := newBackoff(&Options{})
	b.rand = func() float64 {
		r := draws[0]
		draws = draws[1:]
		return r
	}
	want := []time.Duration{
		875 * time.Millisecond,  // 1000 - floor(0.25·0.5·1000)
		2350 * time.Millisecond, // 2000 + floor(0.35·0.5·2000)
		3500 * time.Millisecond, // 4000 - 500
		5000 * time.Millisecond, // 8000 + 3960, capped
		5000 * time.Millisecond, // 16000 - 0, capped
	}
	for i, w := range want {
		if d := b.duration(); d != w {
			t.Errorf("delay %d: %v, want %v", i, d, w)
		}
	}
	if b.attempts != len(want) {
		t.Errorf("attempts %d, want %d", b.attempts, len(want))
	}
	b.reset()
	b.rand = func() float64 { return 0 }
	if d := b.duration(); d != time.Second {
		t.Errorf("after reset: %v, want 1s", d)
	}
}

func TestBackoffOptions(t *testing.T) {
	exact := []time.Duration{100, 200, 400, 800, 800}
	for _, factor := range []float64{NoRandomization, -0.3, 1.5} {
		b := newBackoff(&Options{ReconnectionDelay: 100 * time.Millisecond, ReconnectionDelayMax: 800 * time.Millisecond, RandomizationFactor: factor})
		b.rand = func() float64 { return 0.95 }
		for i, w := range exact {
			if d := b.duration(); d != w*time.Millisecond {
				t.Errorf("factor %v, delay %d: %v, want %v", factor, i, d, w*time.Millisecond)
			}
		}
	}
	// A full jitter of 1 can bring a delay down to nothing, or double it.
	b := newBackoff(&Options{RandomizationFactor: 1, ReconnectionDelayMax: time.Hour})
	b.rand = func() float64 { return 0.8 }
	if d := b.duration(); d != 200*time.Millisecond {
		t.Errorf("jitter 1, draw 0.8: %v, want 200ms", d)
	}
	b.rand = func() float64 { return 0.9 }
	if d := b.duration(); d != 3800*time.Millisecond {
		t.Errorf("jitter 1, draw 0.9: %v, want 3.8s", d)
	}
	// Long after the cap, the delay stays at the cap.
	b = newBackoff(&Options{})
	b.attempts = 5000
	for range 3 {
		if d := b.duration(); d != 5*time.Second {
			t.Fatalf("attempt %d: %v", b.attempts, d)
		}
	}
}
