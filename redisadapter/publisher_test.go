package redisadapter_test

import (
	"errors"
	"testing"
	"time"

	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/redisadapter"
)

// pauseRedis makes r hold every client's commands for d (CLIENT PAUSE).
func pauseRedis(t *testing.T, r *redisServer, d time.Duration) {
	t.Helper()
	if err := r.Client(t).Do(ctxTimeout(t, 5*time.Second), "CLIENT", "PAUSE", d.Milliseconds(), "ALL").Err(); err != nil {
		t.Fatalf("CLIENT PAUSE: %v", err)
	}
}

// TestBroadcastsDoNotWaitForRedis: while Redis holds every command for a
// second, a burst of broadcasts returns at once; once Redis goes on, the
// other server's client gets every one, in order. Before broadcasts were
// queued and pipelined, each Emit waited for its PUBLISH, so the burst took
// the whole pause.
func TestBroadcastsDoNotWaitForRedis(t *testing.T) {
	r := startRedis(t)
	ms := newCluster(t, r, 2, nil)
	far := ms[1].dial(t, &client.Options{DisableReconnection: true})
	fence(t, ms[0], far)

	const burst = 200
	pause := time.Second
	pauseRedis(t, r, pause)
	start := time.Now()
	for i := range burst {
		if err := ms[0].hub.Emit("n", i); err != nil {
			t.Fatalf("Emit %d: %v", i, err)
		}
	}
	took := time.Since(start)
	t.Logf("%d broadcasts returned in %v while Redis was paused for %v", burst, took, pause)
	if took > pause/4 {
		t.Fatalf("%d broadcasts took %v while Redis was paused: they waited for it", burst, took)
	}
	for i := range burst {
		var got int
		far.ev.Expect(t, "n", &got)
		if got != i {
			t.Fatalf("broadcast %d arrived as %d", i, got)
		}
	}
}

// TestPublishQueueIsBounded: with Redis paused, broadcasts queue up to the
// adapter's bound, then fail at once with ErrPublishQueueFull; what was
// queued is delivered once Redis goes on, and broadcasting works again.
func TestPublishQueueIsBounded(t *testing.T) {
	r := startRedis(t)
	ms := newCluster(t, r, 2, nil)
	far := ms[1].dial(t, &client.Options{DisableReconnection: true})
	fence(t, ms[0], far)

	pauseRedis(t, r, 2*time.Second)
	queued := 0
	var err error
	for range 20_000 {
		if err = ms[0].hub.Emit("n", queued); err != nil {
			break
		}
		queued++
	}
	if !errors.Is(err, redisadapter.ErrPublishQueueFull) {
		t.Fatalf("after %d broadcasts: %v, want ErrPublishQueueFull", queued, err)
	}
	// 10,000 wait behind the pipeline in flight (at most 512).
	if queued < 10_000 || queued > 10_000+512 {
		t.Fatalf("%d broadcasts queued before the queue was full, want 10,000 and at most 512 in flight", queued)
	}
	for i := range queued {
		var got int
		far.ev.Expect(t, "n", &got)
		if got != i {
			t.Fatalf("broadcast %d arrived as %d", i, got)
		}
	}
	if err := ms[0].hub.Emit("after", "x"); err != nil {
		t.Fatalf("Emit after the queue drained: %v", err)
	}
	expectString(t, far, "after", "x")
}
