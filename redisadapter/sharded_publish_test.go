package redisadapter_test

import (
	"testing"
	"time"

	"github.com/rallyhq/rally/client"
	"github.com/redis/go-redis/v9"
)

// TestShardedBroadcastsDoNotWaitForRedis: while every node of the cluster
// holds its clients' commands for a second (CLIENT PAUSE), a burst of
// broadcasts returns at once; once the cluster goes on, the other server's
// client gets every one, in order. Before the sharded adapter queued and
// pipelined its broadcasts, each Emit waited for its SPUBLISH, so the
// burst took the whole pause.
func TestShardedBroadcastsDoNotWaitForRedis(t *testing.T) {
	rc := startRedisCluster(t)
	ms := newShardedCluster(t, rc, 2, nil)
	far := ms[1].dial(t, &client.Options{DisableReconnection: true})
	shfence(t, ms[0], far)

	const burst = 200
	pause := time.Second
	ctx := ctxTimeout(t, 5*time.Second)
	for _, n := range rc.live() {
		c := redis.NewClient(&redis.Options{Addr: n.Addr})
		err := c.Do(ctx, "CLIENT", "PAUSE", pause.Milliseconds(), "ALL").Err()
		c.Close()
		if err != nil {
			t.Fatalf("CLIENT PAUSE on %s: %v", n.Addr, err)
		}
	}
	start := time.Now()
	for i := range burst {
		if err := ms[0].hub.Emit("n", i); err != nil {
			t.Fatalf("Emit %d: %v", i, err)
		}
	}
	took := time.Since(start)
	t.Logf("%d broadcasts returned in %v while the cluster was paused for %v", burst, took, pause)
	if took > pause/4 {
		t.Fatalf("%d broadcasts took %v while the cluster was paused: they waited for it", burst, took)
	}
	for i := range burst {
		var got int
		far.ev.Expect(t, "n", &got)
		if got != i {
			t.Fatalf("broadcast %d arrived as %d", i, got)
		}
	}
}
