package redisadapter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/redisadapter/sharded"
	"github.com/rallyhq/rally/sockettest"
	"github.com/redis/go-redis/v9"
)

// shmember is one rally server of a test cluster on the sharded adapter.
type shmember struct {
	i    int
	hub  *rally.Hub
	srv  *sockettest.Server
	node *sharded.Node
	rdb  *redis.ClusterClient
	logs *logRecorder
}

type shardedOptions struct {
	adapter sharded.Options
	// unobserved leaves the Node's Observer out.
	unobserved bool
	setup      func(m *shmember)
}

// newShardedCluster starts n rally hubs on the sharded adapter, each with
// its own cluster client of rc, and waits until each is ready and counted.
func newShardedCluster(t *testing.T, rc *redisCluster, n int, so *shardedOptions) []*shmember {
	t.Helper()
	if so == nil {
		so = &shardedOptions{}
	}
	members := make([]*shmember, n)
	for i := range members {
		m := &shmember{i: i, rdb: rc.Client(t)}
		opts := so.adapter
		if opts.Logger == nil {
			opts.Logger, m.logs = newLogRecorder(t)
		}
		m.node = sharded.New(m.rdb, &opts)
		m.hub = rally.NewHub(&rally.Options{Adapter: m.node.Adapter})
		if !so.unobserved {
			m.hub.Observe(m.node.Observer())
		}
		m.hub.On("join", func(s *rally.Socket, rooms ...string) { s.Join(rooms...) })
		m.hub.On("leave", func(s *rally.Socket, room string) { s.Leave(room) })
		m.hub.On("rooms", func(s *rally.Socket) []string { return s.Rooms() })
		if so.setup != nil {
			so.setup(m)
		}
		m.srv = sockettest.NewServer(t, m.hub)
		members[i] = m
		t.Cleanup(func() { m.node.Close() })
	}
	ctx := ctxTimeout(t, 10*time.Second)
	for _, m := range members {
		if err := m.node.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, fmt.Sprintf("%d servers on /", n), func() bool {
		c, err := members[0].node.ServerCount(ctx, "/")
		return err == nil && c == n
	})
	return members
}

func (m *shmember) dial(t *testing.T, opts *client.Options) *peer {
	t.Helper()
	c := m.srv.Socket(t, "/", opts)
	p := &peer{c: c, ev: sockettest.Record(c)}
	m.srv.Connect(t, c)
	return p
}

// shfence broadcasts a marker from m and waits until every peer got it.
func shfence(t *testing.T, m *shmember, peers ...*peer) {
	t.Helper()
	fenceSeq.Lock()
	fenceSeq.n++
	n := fenceSeq.n
	fenceSeq.Unlock()
	if err := m.hub.Emit("fence", n); err != nil {
		t.Fatal(err)
	}
	for _, p := range peers {
		for {
			var got int
			p.ev.Expect(t, "fence", &got)
			if got == n {
				break
			}
		}
	}
}

// shardSubs counts the subscribers of a shard channel over the nodes.
func shardSubs(ctx context.Context, cc *redis.ClusterClient, channel string) (int, error) {
	var mu sync.Mutex
	total := 0
	err := cc.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
		m, err := c.PubSubShardNumSub(ctx, channel).Result()
		mu.Lock()
		total += int(m[channel])
		mu.Unlock()
		return err
	})
	return total, err
}

// waitShardSubs waits until channel has want subscribers.
func waitShardSubs(t *testing.T, cc *redis.ClusterClient, channel string, want int) {
	t.Helper()
	ctx := ctxTimeout(t, 10*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := shardSubs(ctx, cc, channel)
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d subscribers (%v), want %d", channel, got, err, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// roomsOnShards returns n room names whose channels (<prefix>#/#<room>#)
// are served by n different masters.
func roomsOnShards(t *testing.T, rc *redisCluster, prefix string, n int) []string {
	t.Helper()
	ctx := ctxTimeout(t, 10*time.Second)
	var rooms []string
	seen := map[string]bool{}
	for i := 0; len(rooms) < n && i < 100; i++ {
		room := fmt.Sprintf("room%d", i)
		m := rc.masterOf(ctx, prefix+"#/#"+room+"#")
		if !seen[m] {
			seen[m] = true
			rooms = append(rooms, room)
		}
	}
	if len(rooms) < n {
		t.Fatalf("found %d rooms on different shards, want %d", len(rooms), n)
	}
	return rooms
}

// shardSpy records what is published on shard channels, through a
// connection of its own per channel.
type shardSpy struct {
	mu   sync.Mutex
	msgs []*redis.Message
	wg   sync.WaitGroup
}

func newShardSpy(t *testing.T, rc *redisCluster, channels ...string) *shardSpy {
	t.Helper()
	s := &shardSpy{}
	t.Cleanup(s.wg.Wait) // after every PubSub is closed
	cc := rc.Client(t)
	for _, ch := range channels {
		ps := cc.SSubscribe(context.Background(), ch)
		if _, err := ps.Receive(ctxTimeout(t, 5*time.Second)); err != nil {
			t.Fatalf("spy on %s: %v", ch, err)
		}
		c := ps.Channel()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			for m := range c {
				s.mu.Lock()
				s.msgs = append(s.msgs, m)
				s.mu.Unlock()
			}
		}()
		t.Cleanup(func() { ps.Close() })
	}
	return s
}

// on returns the payloads seen on channel.
func (s *shardSpy) on(channel string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, m := range s.msgs {
		if m.Channel == channel {
			out = append(out, m.Payload)
		}
	}
	return out
}

// TestShardedBroadcast checks broadcasts between three rally servers on a
// Redis Cluster in each subscription mode: to everyone, to rooms whose
// channels are on different shards, except, to a socket id, local; each
// delivered once, and the room channels subscribed by the servers with
// sockets in the room only.
func TestShardedBroadcast(t *testing.T) {
	rc := startRedisCluster(t)
	for _, mode := range []sharded.SubscriptionMode{sharded.Static, sharded.Dynamic, sharded.DynamicPrivate} {
		t.Run(string(mode), func(t *testing.T) {
			prefix := "bc-" + string(mode)
			ms := newShardedCluster(t, rc, 3, &shardedOptions{adapter: sharded.Options{ChannelPrefix: prefix, SubscriptionMode: mode}})
			cc := rc.Client(t)
			rooms := roomsOnShards(t, rc, prefix, 3)
			a, b, c := ms[0].dial(t, nil), ms[1].dial(t, nil), ms[2].dial(t, nil)
			c2 := ms[2].dial(t, nil)
			b.join(t, rooms[0])
			c.join(t, rooms[1], rooms[2])
			spy := newShardSpy(t, rc, prefix+"#/#", prefix+"#/#"+rooms[0]+"#", prefix+"#/#"+c2.c.ID()+"#")
			roomSubs := map[sharded.SubscriptionMode]int{sharded.Static: 0, sharded.Dynamic: 1, sharded.DynamicPrivate: 1}[mode]
			for i, room := range rooms {
				spies := map[bool]int{true: 1}[i == 0]
				waitShardSubs(t, cc, prefix+"#/#"+room+"#", roomSubs+spies)
			}
			idSubs := map[sharded.SubscriptionMode]int{sharded.DynamicPrivate: 1}[mode]
			waitShardSubs(t, cc, prefix+"#/#"+c2.c.ID()+"#", idSubs+1) // the spy's
			waitShardSubs(t, cc, prefix+"#/#", 3+1)

			// To everyone, binary included, both ways; each once.
			if err := ms[0].hub.Emit("news", "from 0", []byte{1, 2, 3}); err != nil {
				t.Fatal(err)
			}
			for _, p := range []*peer{a, b, c, c2} {
				var s string
				var bin []byte
				p.ev.Expect(t, "news", &s, &bin)
				if s != "from 0" || !bytes.Equal(bin, []byte{1, 2, 3}) {
					t.Fatalf("news: %q %v", s, bin)
				}
			}
			// To each room, from a server without sockets in it.
			for i, room := range rooms {
				if err := ms[0].hub.To(room).Emit("room", fmt.Sprint(i)); err != nil {
					t.Fatal(err)
				}
			}
			expectString(t, b, "room", "0")
			expectStrings(t, c, "room", "1", "2")
			// To two rooms at once (the namespace's channel), except, by id.
			if err := ms[1].hub.To(rooms[0], rooms[1]).Emit("two", "t"); err != nil {
				t.Fatal(err)
			}
			if err := ms[0].hub.Except(rooms[1]).Emit("others", "o"); err != nil {
				t.Fatal(err)
			}
			if err := ms[0].hub.To(c2.c.ID()).Emit("direct", "d"); err != nil {
				t.Fatal(err)
			}
			if err := ms[0].hub.All().Local().Emit("local", "l"); err != nil {
				t.Fatal(err)
			}
			expectString(t, b, "two", "t")
			expectString(t, c, "two", "t")
			expectStrings(t, a, "others", "o")
			expectStrings(t, b, "others", "o")
			expectStrings(t, c2, "others", "o")
			expectString(t, c2, "direct", "d")
			expectString(t, a, "local", "l")
			for _, m := range ms {
				shfence(t, m, a, b, c, c2)
			}
			for _, x := range []struct {
				p    *peer
				ev   string
				want int
			}{{a, "room", 0}, {c2, "room", 0}, {b, "room", 1}, {c, "room", 2}, {a, "two", 0}, {c2, "two", 0},
				{c, "others", 0}, {c, "direct", 0}, {b, "local", 0}, {c2, "local", 0}, {a, "news", 1}, {c2, "news", 1}} {
				if n := x.p.ev.Count(x.ev); n != x.want {
					t.Errorf("%s received %d times, want %d", x.ev, n, x.want)
				}
			}

			// Where the broadcasts went: rooms[0]'s on its channel in the
			// dynamic modes, the socket id's on its channel in
			// dynamic-private only; JSON without binary, MessagePack with.
			main, room0, id := spy.on(prefix+"#/#"), spy.on(prefix+"#/#"+rooms[0]+"#"), spy.on(prefix+"#/#"+c2.c.ID()+"#")
			count := func(payloads []string, needle string) int {
				n := 0
				for _, p := range payloads {
					if strings.Contains(p, needle) {
						n++
					}
				}
				return n
			}
			wantRoom, wantID := 0, 0
			switch mode {
			case sharded.Dynamic:
				wantRoom = 1
			case sharded.DynamicPrivate:
				wantRoom, wantID = 1, 1
			}
			if n := count(room0, `"room","0"`); n != wantRoom {
				t.Errorf("%d broadcasts to %s on its channel, want %d: %q", n, rooms[0], wantRoom, room0)
			}
			if n := count(main, `"room","0"`); n != 1-wantRoom {
				t.Errorf("%d broadcasts to %s on the namespace's channel, want %d", n, rooms[0], 1-wantRoom)
			}
			if n := count(id, `"direct","d"`); n != wantID {
				t.Errorf("%d broadcasts to a socket id on its channel, want %d", n, wantID)
			}
			if n := count(main, `"two","t"`); n != 1 {
				t.Errorf("%d broadcasts to two rooms on the namespace's channel, want 1", n)
			}
			var binary int
			for _, p := range main {
				if p[0] != '{' && strings.Contains(p, "from 0") {
					binary++
				}
			}
			if binary != 1 {
				t.Errorf("%d MessagePack broadcasts with binary on the namespace's channel, want 1", binary)
			}

			// The last socket of a room leaves: the server unsubscribes.
			if mode != sharded.Static {
				if _, err := b.c.EmitWithAck(ctxTimeout(t, 5*time.Second), "leave", rooms[0]); err != nil {
					t.Fatal(err)
				}
				waitShardSubs(t, cc, prefix+"#/#"+rooms[0]+"#", 1) // the spy
			}
		})
	}
}

// TestShardedRequestsAcrossServers checks the requests between rally
// servers on a Redis Cluster: FetchSockets, SocketsJoin and SocketsLeave,
// EmitWithAck, ServerSideEmit with and without ack, DisconnectSockets.
func TestShardedRequestsAcrossServers(t *testing.T) {
	rc := startRedisCluster(t)
	notes := make(chan string, 10)
	ms := newShardedCluster(t, rc, 3, &shardedOptions{
		adapter: sharded.Options{RequestsTimeout: 3 * time.Second},
		setup: func(m *shmember) {
			i := m.i
			m.hub.OnConnect(func(s *rally.Socket) { s.SetData(map[string]any{"server": i}) })
			m.hub.OnServerEvent("load", func(x int) int { return 100*i + x })
			if i != 2 {
				m.hub.OnServerEvent("note", func(s string) { notes <- fmt.Sprint(i, s) })
			}
		},
	})
	p0, p1, p2 := ms[0].dial(t, nil), ms[1].dial(t, nil), ms[2].dial(t, nil)
	for i, p := range []*peer{p0, p1, p2} {
		p.c.On("question", func(q string) string { return fmt.Sprintf("%d: %s", i, q) })
	}
	ctx := ctxTimeout(t, 20*time.Second)

	infos, err := ms[0].hub.All().FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]any{}
	for _, info := range infos {
		got[info.ID] = info.Data
		if info.Handshake == nil {
			t.Errorf("socket %s without handshake", info.ID)
		}
	}
	if len(infos) != 3 {
		t.Fatalf("fetched %d sockets, want 3", len(infos))
	}
	for i, p := range []*peer{p0, p1, p2} {
		d, _ := got[p.c.ID()].(map[string]any)
		if d == nil || d["server"] != float64(i) && d["server"] != i {
			t.Errorf("socket of server %d: data %v (all: %v)", i, got[p.c.ID()], got)
		}
	}

	if err := ms[0].hub.In(p2.c.ID()).SocketsJoin("joined"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the remote join", func() bool { return slices.Contains(p2.rooms(t), "joined") })
	// The joined room has its channel: a broadcast from server 1 reaches p2.
	waitShardSubs(t, ms[0].rdb, "socket.io#/#joined#", 1)
	if err := ms[1].hub.To("joined").Emit("hello", "joined"); err != nil {
		t.Fatal(err)
	}
	expectString(t, p2, "hello", "joined")
	infos, err = ms[1].hub.In("joined").FetchSockets(ctx)
	if err != nil || len(infos) != 1 || infos[0].ID != p2.c.ID() {
		t.Fatalf("fetch in joined: %v %v", infos, err)
	}
	if err := ms[1].hub.In("joined").SocketsLeave("joined"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the remote leave", func() bool { return !slices.Contains(p2.rooms(t), "joined") })
	waitShardSubs(t, ms[0].rdb, "socket.io#/#joined#", 0)

	replies, err := ms[1].hub.EmitWithAck(ctx, "question", "why?")
	if err != nil {
		t.Fatal(err)
	}
	var answers []string
	for _, rep := range replies {
		var s string
		rep.Decode(&s)
		answers = append(answers, s)
	}
	slices.Sort(answers)
	if want := []string{"0: why?", "1: why?", "2: why?"}; !slices.Equal(answers, want) {
		t.Fatalf("acks: %q, want %q", answers, want)
	}

	loads, err := ms[0].hub.ServerSideEmitWithAck(ctx, "load", 5)
	if err != nil {
		t.Fatal(err)
	}
	var ns []int
	for _, l := range loads {
		var n int
		l.Decode(&n)
		ns = append(ns, n)
	}
	slices.Sort(ns)
	if !slices.Equal(ns, []int{105, 205}) {
		t.Fatalf("server-side answers: %v", ns)
	}
	if _, err := ms[1].hub.ServerSideEmitWithAck(ctx, "note", "x"); !errors.Is(err, rally.ErrNoHandler) {
		t.Fatalf("note: %v, want ErrNoHandler", err)
	}
	if got := <-notes; got != "0x" {
		t.Fatalf("note handled as %q", got)
	}
	if err := ms[2].hub.ServerSideEmit(ctx, "note", "y"); err != nil {
		t.Fatal(err)
	}
	var heard []string
	for range 2 {
		select {
		case n := <-notes:
			heard = append(heard, n)
		case <-time.After(5 * time.Second):
			t.Fatalf("server-side event heard by %q only", heard)
		}
	}
	slices.Sort(heard)
	if !slices.Equal(heard, []string{"0y", "1y"}) {
		t.Fatalf("server-side event heard as %q", heard)
	}

	if err := ms[0].hub.In(p1.c.ID()).DisconnectSockets(false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p1.c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the socket of server 1 was not disconnected")
	}
	if p1.c.Reason() != client.ReasonServerDisconnect {
		t.Fatalf("reason %q", p1.c.Reason())
	}
	eventually(t, 5*time.Second, "2 sockets left", func() bool {
		infos, err := ms[2].hub.All().FetchSockets(ctx)
		return err == nil && len(infos) == 2
	})

	// A server that shuts down is no longer counted, and its channels are
	// released.
	if err := ms[2].hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "2 servers", func() bool {
		n, err := ms[0].node.ServerCount(ctx, "/")
		return err == nil && n == 2
	})
}

// TestShardedRoomsWithoutObserver checks that a Node whose Observer is not
// registered still subscribes to a new room's channel, within its poll.
func TestShardedRoomsWithoutObserver(t *testing.T) {
	rc := startRedisCluster(t)
	ms := newShardedCluster(t, rc, 2, &shardedOptions{unobserved: true})
	a, b := ms[0].dial(t, nil), ms[1].dial(t, nil)
	b.join(t, "polled")
	began := time.Now()
	waitShardSubs(t, ms[0].rdb, "socket.io#/#polled#", 1)
	t.Logf("room channel subscribed %v after the join", time.Since(began).Round(time.Millisecond))
	if err := ms[0].hub.To("polled").Emit("hi", "polled"); err != nil {
		t.Fatal(err)
	}
	expectString(t, b, "hi", "polled")
	shfence(t, ms[0], a, b)
	if n := a.ev.Count("hi"); n != 0 {
		t.Fatalf("a got %d events for a room it is not in", n)
	}
	if _, err := b.c.EmitWithAck(ctxTimeout(t, 5*time.Second), "leave", "polled"); err != nil {
		t.Fatal(err)
	}
	waitShardSubs(t, ms[0].rdb, "socket.io#/#polled#", 0)
}

// TestShardedSingleServer runs the sharded adapter on one Redis 7 server
// (a *redis.Client, every channel on one subscription): broadcasts to
// rooms with channels of their own, a fetch.
func TestShardedSingleServer(t *testing.T) {
	r := startRedis(t)
	var ms []*shmember
	for i := range 2 {
		logger, logs := newLogRecorder(t)
		m := &shmember{i: i, logs: logs, node: sharded.New(r.Client(t), &sharded.Options{Logger: logger})}
		m.hub = rally.NewHub(&rally.Options{Adapter: m.node.Adapter})
		m.hub.Observe(m.node.Observer())
		m.hub.On("join", func(s *rally.Socket, rooms ...string) { s.Join(rooms...) })
		m.srv = sockettest.NewServer(t, m.hub)
		t.Cleanup(func() { m.node.Close() })
		ms = append(ms, m)
	}
	ctx := ctxTimeout(t, 10*time.Second)
	for _, m := range ms {
		if err := m.node.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, "2 servers", func() bool {
		n, err := ms[0].node.ServerCount(ctx, "/")
		return err == nil && n == 2
	})
	a, b := ms[0].dial(t, nil), ms[1].dial(t, nil)
	b.join(t, "r1", "r2")
	rdb := r.Client(t)
	eventually(t, 5*time.Second, "the room channels subscribed", func() bool {
		m, err := rdb.PubSubShardNumSub(ctx, "socket.io#/#r1#", "socket.io#/#r2#").Result()
		return err == nil && m["socket.io#/#r1#"] == 1 && m["socket.io#/#r2#"] == 1
	})
	for _, room := range []string{"r1", "r2"} {
		if err := ms[0].hub.To(room).Emit("room", room); err != nil {
			t.Fatal(err)
		}
	}
	expectStrings(t, b, "room", "r1", "r2")
	shfence(t, ms[0], a, b)
	if n := a.ev.Count("room"); n != 0 {
		t.Fatalf("a got %d room broadcasts, want 0", n)
	}
	socks, err := ms[1].hub.All().FetchSockets(ctx)
	if err != nil || len(socks) != 2 {
		t.Fatalf("fetch: %d sockets, %v", len(socks), err)
	}
}
