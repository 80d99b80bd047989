package redisadapter_test

import (
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
)

// adapterTally counts the adapter events a hub's observers are told of.
type adapterTally struct {
	mu    sync.Mutex
	kinds map[string]int
}

func observeAdapter(hub *rally.Hub) *adapterTally {
	at := &adapterTally{kinds: map[string]int{}}
	hub.Observe(&rally.Observer{Adapter: func(_ *rally.Namespace, e rally.AdapterEvent) {
		at.mu.Lock()
		at.kinds[e.Kind]++
		at.mu.Unlock()
	}})
	return at
}

func (at *adapterTally) count(kind string) int {
	at.mu.Lock()
	defer at.mu.Unlock()
	return at.kinds[kind]
}

// TestAdapterEvents checks that both adapters tell the hub's observers of
// what they publish and receive, and of a message they could not read.
func TestAdapterEvents(t *testing.T) {
	r := startRedis(t)
	rdb := r.Client(t)
	garbage := func(t *testing.T, channel string) {
		if err := rdb.Publish(ctxTimeout(t, 5*time.Second), channel, "garbage").Err(); err != nil {
			t.Fatal(err)
		}
	}
	check := func(t *testing.T, sender, receiver *adapterTally, emit func() error, channel string) {
		if err := emit(); err != nil {
			t.Fatal(err)
		}
		garbage(t, channel)
		eventually(t, 5*time.Second, "the receiver's events", func() bool {
			return receiver.count(rally.AdapterReceive) >= 2 && receiver.count(rally.AdapterError) >= 1
		})
		if n := sender.count(rally.AdapterPublish); n < 1 {
			t.Errorf("the sender reported %d publishes", n)
		}
		if n := sender.count(rally.AdapterError); n > 1 { // the garbage, if it reads its channel back
			t.Errorf("the sender reported %d errors", n)
		}
	}
	t.Run("classic", func(t *testing.T) {
		var tallies []*adapterTally
		ms := newCluster(t, r, 2, &clusterOptions{setup: func(m *member) { tallies = append(tallies, observeAdapter(m.hub)) }})
		check(t, tallies[0], tallies[1], func() error { return ms[0].hub.Emit("news", 1) }, "socket.io#/#")
	})
	t.Run("streams", func(t *testing.T) {
		var tallies []*adapterTally
		ms := newStreamsCluster(t, r, 2, &streamsOptions{setup: func(m *smember) { tallies = append(tallies, observeAdapter(m.hub)) }})
		check(t, tallies[0], tallies[1], func() error { return ms[0].hub.Emit("news", 1) }, "socket.io#/#")
	})
}
