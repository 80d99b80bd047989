package redisadapter_test

import (
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestShardedReshard moves the slot of the namespace's channel to another
// master (CLUSTER SETSLOT … NODE, as redis-cli --cluster reshard ends a
// migration) while a rally server broadcasts every 10ms: the old owner
// ends its shard subscriptions (Redis 7 sends sunsubscribe), and the
// adapter subscribes again on the new owner, where the broadcasts go on.
func TestShardedReshard(t *testing.T) {
	rc := startRedisCluster(t)
	ms := newShardedCluster(t, rc, 2, nil)
	ctx := ctxTimeout(t, 30*time.Second)
	const channel = "socket.io#/#"
	slot := int(rc.Client(t).ClusterKeySlot(ctx, channel).Val())
	src := rc.masterOf(ctx, channel)
	var dst string
	for addr := range rc.masterAddrs(ctx) {
		if addr != src {
			dst = addr
			break
		}
	}
	ids := map[string]string{}
	for addr := range rc.masterAddrs(ctx) {
		c := redis.NewClient(&redis.Options{Addr: addr})
		ids[addr] = c.ClusterMyID(ctx).Val()
		c.Close()
	}

	var ticks arrivals
	recv := ms[1].dial(t, nil)
	recv.c.On("tick", func(_ string, n int) { ticks.record(n) })
	stop := make(chan struct{})
	var wg sync.WaitGroup
	sent := 0
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for ; ; sent++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			ms[0].hub.Emit("tick", "rally", sent)
		}
	})
	began := time.Now()
	eventually(t, 10*time.Second, "the ticks before the move", func() bool { return ticks.after(began.Add(200 * time.Millisecond)) })

	setslot := func(addr string, args ...any) {
		t.Helper()
		c := redis.NewClient(&redis.Options{Addr: addr})
		defer c.Close()
		if err := c.Do(ctx, append([]any{"CLUSTER", "SETSLOT", slot}, args...)...).Err(); err != nil {
			t.Fatalf("CLUSTER SETSLOT %d %v on %s: %v", slot, args, addr, err)
		}
	}
	setslot(dst, "IMPORTING", ids[src])
	setslot(src, "MIGRATING", ids[dst])
	moved := time.Now()
	setslot(dst, "NODE", ids[dst])
	setslot(src, "NODE", ids[dst])
	for addr := range ids {
		if addr != src && addr != dst {
			setslot(addr, "NODE", ids[dst])
		}
	}
	t.Logf("slot %d of %s moved from %s to %s", slot, channel, src, dst)

	// Both servers subscribed on the new owner, and the ticks go on.
	c := redis.NewClient(&redis.Options{Addr: dst})
	defer c.Close()
	eventually(t, 10*time.Second, "both servers subscribed on the new owner", func() bool {
		m, err := c.PubSubShardNumSub(ctx, channel).Result()
		return err == nil && m[channel] == 2
	})
	resubscribed := time.Since(moved)
	eventually(t, 10*time.Second, "the ticks after the move", func() bool { return ticks.after(time.Now().Add(-5 * time.Millisecond)) })
	time.Sleep(200 * time.Millisecond)
	close(stop)
	wg.Wait()
	time.Sleep(200 * time.Millisecond)
	silent, _, lost := ticks.outage(moved, 0, sent-1)
	t.Logf("subscribed on the new owner %v after the move; silent for %v; %d of %d ticks lost",
		resubscribed.Round(time.Millisecond), silent.Round(time.Millisecond), lost, sent)
	if silent > 5*time.Second {
		t.Fatalf("no broadcast delivered for %v around the move", silent)
	}
	for _, m := range ms {
		if len(m.logs.Lines("Redis ended a shard subscription")) == 0 {
			t.Errorf("server %d did not log the subscription Redis ended: %q", m.i, m.logs.All())
		}
	}
}
