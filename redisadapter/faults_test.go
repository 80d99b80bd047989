package redisadapter_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally/redisadapter"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
	"github.com/rallyhq/rally/sockettest"
)

// tickStream broadcasts "tick" n from a server every interval and records
// when each arrives at a client.
type tickStream struct {
	mu       sync.Mutex
	sent     map[int]time.Time
	received map[int]time.Time
	stop     chan struct{}
	done     chan struct{}
}

func startTicks(t *testing.T, from *member, to *peer, interval time.Duration) *tickStream {
	ts := &tickStream{sent: map[int]time.Time{}, received: map[int]time.Time{}, stop: make(chan struct{}), done: make(chan struct{})}
	to.c.On("tick", func(n int) {
		ts.mu.Lock()
		if _, dup := ts.received[n]; !dup {
			ts.received[n] = time.Now()
		}
		ts.mu.Unlock()
	})
	go func() {
		defer close(ts.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		deadline := time.After(time.Minute) // bounded, whatever happens
		for n := 0; ; n++ {
			ts.mu.Lock()
			ts.sent[n] = time.Now()
			ts.mu.Unlock()
			from.hub.Emit("tick", n) // fails while Redis is down
			select {
			case <-tick.C:
			case <-ts.stop:
				return
			case <-deadline:
				return
			}
		}
	}()
	t.Cleanup(ts.halt)
	return ts
}

func (ts *tickStream) halt() {
	select {
	case <-ts.stop:
	default:
		close(ts.stop)
	}
	<-ts.done
}

// firstAfter returns when the first tick sent after t arrived.
func (ts *tickStream) firstAfter(t time.Time) (time.Time, bool) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	var first time.Time
	for n, at := range ts.received {
		if ts.sent[n].After(t) && (first.IsZero() || at.Before(first)) {
			first = at
		}
	}
	return first, !first.IsZero()
}

func (ts *tickStream) count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.received)
}

// Broadcasts resume after Redis restarts: the subscriber connection is
// re-established and its subscriptions made again, and publishing
// reconnects. The time from Redis answering again to the first broadcast
// sent after that reaching a client of another server is logged.
func TestRedisRestart(t *testing.T) {
	for _, mode := range []string{"stop", "kill"} {
		t.Run(mode, func(t *testing.T) {
			r := startRedis(t)
			ms := newCluster(t, r, 2, &clusterOptions{adapter: redisadapter.Options{RequestsTimeout: time.Second}})
			b := ms[1].dial(t, nil)
			ts := startTicks(t, ms[0], b, 10*time.Millisecond)
			eventually(t, 5*time.Second, "ticks flowing", func() bool { return ts.count() > 5 })

			down := time.Now()
			if mode == "kill" {
				r.Kill()
			} else {
				r.Stop()
			}
			time.Sleep(500 * time.Millisecond) // an outage
			r.Start()
			up := time.Now()
			var first time.Time
			eventually(t, 20*time.Second, "broadcasts after the restart", func() bool {
				var ok bool
				first, ok = ts.firstAfter(up)
				return ok
			})
			ts.halt()
			t.Logf("%s: Redis down for %v; first broadcast sent after Redis answered again reached the other server's client %v later",
				mode, up.Sub(down).Round(time.Millisecond), first.Sub(up).Round(time.Millisecond))
			if first.Sub(up) > 10*time.Second {
				t.Errorf("resumed after %v", first.Sub(up))
			}

			// Both servers subscribed again, requests work again.
			for _, m := range ms {
				eventually(t, 10*time.Second, "resubscription logged", func() bool {
					return len(m.logs.Lines("subscribed again")) > 0
				})
			}
			waitCluster(t, ms, 2, "/")
			socks, err := ms[0].hub.All().FetchSockets(ctxTimeout(t, 5*time.Second))
			if err != nil || len(socks) != 1 || socks[0].ID != b.c.ID() {
				t.Fatalf("fetchSockets after the restart: %v %v", socks, err)
			}
		})
	}
}

// A server counted by Redis (its subscription is there) that never
// answers makes requests fail after RequestsTimeout with ErrTimeout, not
// hang.
func TestDeadServerTimesOut(t *testing.T) {
	r := startRedis(t)
	const timeout = 300 * time.Millisecond
	ms := newCluster(t, r, 1, &clusterOptions{adapter: redisadapter.Options{RequestsTimeout: timeout}})
	a := ms[0].dial(t, nil)
	a.c.On("question", func() string { return "here" })

	// The zombie: subscribed to the request channel, never answering, like
	// a server whose process hangs.
	zombie := r.Client(t).Subscribe(context.Background(), "socket.io-request#/#")
	t.Cleanup(func() { zombie.Close() })
	if _, err := zombie.Receive(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "two servers counted", func() bool {
		n, _ := ms[0].node.ServerCount(ctxTimeout(t, time.Second), "/")
		return n == 2
	})

	check := func(op string, err error, elapsed time.Duration) {
		t.Helper()
		t.Logf("%s: failed after %v: %v", op, elapsed.Round(time.Millisecond), err)
		if !errors.Is(err, redisadapter.ErrTimeout) {
			t.Fatalf("%s: %v, want ErrTimeout", op, err)
		}
		if !strings.Contains(err.Error(), "timeout reached") || !strings.Contains(err.Error(), "0 responses received out of 1") {
			t.Fatalf("%s: unclear error %q", op, err)
		}
		if elapsed < timeout || elapsed > timeout+3*time.Second {
			t.Fatalf("%s: failed after %v, want about %v", op, elapsed, timeout)
		}
	}
	start := time.Now()
	_, err := ms[0].hub.All().FetchSockets(ctxTimeout(t, 5*time.Second))
	check("fetchSockets", err, time.Since(start))

	start = time.Now()
	_, err = ms[0].hub.ServerSideEmitWithAck(ctxTimeout(t, 5*time.Second), "anyone")
	check("serverSideEmitWithAck", err, time.Since(start))

	start = time.Now()
	_, err = ms[0].node.AllRooms(ctxTimeout(t, 5*time.Second), "/")
	check("allRooms", err, time.Since(start))

	// A broadcast with ack waits for the missing server's count until its
	// context ends, and returns what arrived.
	start = time.Now()
	replies, err := ms[0].hub.EmitWithAck(ctxTimeout(t, timeout), "question")
	t.Logf("emitWithAck: failed after %v: %v", time.Since(start).Round(time.Millisecond), err)
	if !errors.Is(err, context.DeadlineExceeded) || len(replies) != 1 || !strings.Contains(err.Error(), "1 of 2 servers reported") {
		t.Fatalf("emitWithAck: %d replies, %v", len(replies), err)
	}
	// The requester's own ctx ends a request before the timeout.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := ms[0].hub.All().FetchSockets(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fetchSockets with a short context: %v", err)
	}
}

// Garbage published on any channel is logged and skipped; the messages
// after it still arrive.
func TestMalformedMessagesSkipped(t *testing.T) {
	r := startRedis(t)
	ms := newCluster(t, r, 2, nil)
	a, b := ms[0].dial(t, nil), ms[1].dial(t, nil)
	b.join(t, "blue")

	var own []string
	eventually(t, 5*time.Second, "response channels", func() bool {
		own, _ = ms[0].rdb.PubSubChannels(ctxTimeout(t, time.Second), "socket.io-response#/#?*#").Result()
		return len(own) == 2
	})
	channels := append([]string{"socket.io#/#", "socket.io#/#blue#", "socket.io-request#/#", "socket.io-response#/#"}, own...)
	garbage := [][]byte{
		{0xc1},
		[]byte("garbage"),
		[]byte("{not json"),
		[]byte(`{"type":"x"}`),
		{0x93, 0x01, 0x02}, // [1, 2, <missing>]
		mustMsgpack(t, []any{"NODEID", int64(5), msgpack.Map{}}),
		mustMsgpack(t, []any{"NODEID", msgpack.Map{{Key: "nsp", Value: "/"}, {Key: "data", Value: []any{int64(1)}}}, msgpack.Map{}}),
		mustMsgpack(t, msgpack.Map{{Key: "type", Value: 7}, {Key: "requestId", Value: "zzz"}, {Key: "packet", Value: "?"}}),
		mustMsgpack(t, msgpack.Map{{Key: "type", Value: 6}, {Key: "data", Value: msgpack.Map{}}}),
		{},
	}
	for _, ch := range channels {
		for _, g := range garbage {
			if err := ms[0].rdb.Publish(context.Background(), ch, g).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}

	// Later messages arrive, on every channel kind.
	ms[0].hub.Emit("after", "all")
	expectString(t, b, "after", "all")
	ms[0].hub.To("blue").Emit("after-room", "blue")
	expectString(t, b, "after-room", "blue")
	socks, err := ms[1].hub.All().FetchSockets(ctxTimeout(t, 5*time.Second))
	if err != nil || len(socks) != 2 {
		t.Fatalf("fetchSockets after garbage: %d %v", len(socks), err)
	}
	if err := ms[1].hub.Emit("after-2", "x"); err != nil {
		t.Fatal(err)
	}
	expectString(t, a, "after-2", "x")

	// Each server logged what it skipped on each channel it listens to:
	// the shared ones (server 0 has no socket in blue, so it does not even
	// decode that room's messages) and its own response channel.
	logged := func(m *member, ch string) bool { return len(m.logs.Lines("malformed", "channel="+ch+" ")) > 0 }
	for _, m := range ms {
		for _, ch := range channels[:4] {
			if want := !(ch == "socket.io#/#blue#" && m.i == 0); logged(m, ch) != want {
				t.Errorf("server %d: logged garbage on %s: %v, want %v", m.i, ch, !want, want)
			}
		}
		n := 0
		for _, ch := range own {
			if logged(m, ch) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("server %d logged garbage on %d own response channels, want 1", m.i, n)
		}
		if panics := m.logs.Lines("panic"); len(panics) > 0 {
			t.Errorf("server %d: %v", m.i, panics)
		}
		if t.Failed() {
			t.Logf("server %d logs:\n%s", m.i, strings.Join(m.logs.All(), "\n"))
		}
	}
}

func mustMsgpack(t *testing.T, v any) []byte {
	t.Helper()
	b, err := msgpack.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A hub created while Redis is down subscribes once Redis is up: creating
// it does not block, and Ready waits for the subscriptions.
func TestStartWithoutRedis(t *testing.T) {
	r := startRedis(t)
	r.Stop()
	var ms []*member
	for i := range 2 {
		m := &member{i: i, rdb: r.Client(t)}
		lg, rec := newLogRecorder(t)
		m.logs = rec
		m.node = redisadapter.New(m.rdb, &redisadapter.Options{Logger: lg})
		start := time.Now()
		m.hub = rallyHub(m)
		if d := time.Since(start); d > time.Second {
			t.Fatalf("creating a hub took %v with Redis down", d)
		}
		m.srv = sockettest.NewServer(t, m.hub)
		ms = append(ms, m)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := ms[0].node.Ready(ctx); err == nil {
		t.Fatal("ready without Redis")
	}
	r.Start()
	waitCluster(t, ms, 2, "/")
	b := ms[1].dial(t, nil)
	if err := ms[0].hub.Emit("hello", "after"); err != nil {
		t.Fatal(err)
	}
	expectString(t, b, "hello", "after")
}
