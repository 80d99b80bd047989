package redisadapter_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/redisadapter"
	"github.com/rallyhq/rally/redisadapter/internal/msgpack"
	"github.com/rallyhq/rally/sockettest"
	"github.com/redis/go-redis/v9"
)

// member is one rally server of a test cluster.
type member struct {
	i    int
	hub  *rally.Hub
	srv  *sockettest.Server
	node *redisadapter.Node
	rdb  *redis.Client
	logs *logRecorder
}

type clusterOptions struct {
	adapter redisadapter.Options
	// setup registers handlers on each hub before it serves.
	setup func(m *member)
}

// newCluster starts n rally hubs sharing r, each with its own Redis
// client, and waits until each is subscribed and counted.
func newCluster(t *testing.T, r *redisServer, n int, co *clusterOptions) []*member {
	t.Helper()
	if co == nil {
		co = &clusterOptions{}
	}
	members := make([]*member, n)
	for i := range members {
		m := &member{i: i, rdb: r.Client(t)}
		var logger = co.adapter.Logger
		if logger == nil {
			logger, m.logs = newLogRecorder(t)
		}
		opts := co.adapter
		opts.Logger = logger
		m.node = redisadapter.New(m.rdb, &opts)
		m.hub = rallyHub(m)
		if co.setup != nil {
			co.setup(m)
		}
		m.srv = sockettest.NewServer(t, m.hub)
		members[i] = m
	}
	waitCluster(t, members, n, "/")
	return members
}

// rallyHub returns a hub on m's node with the handlers the tests use.
func rallyHub(m *member) *rally.Hub {
	hub := rally.NewHub(&rally.Options{Adapter: m.node.Adapter})
	hub.On("join", func(s *rally.Socket, rooms ...string) { s.Join(rooms...) })
	hub.On("leave", func(s *rally.Socket, room string) { s.Leave(room) })
	hub.On("relay", func(s *rally.Socket, args ...any) { s.Broadcast().Emit("relay", args...) })
	hub.On("rooms", func(s *rally.Socket) []string { return s.Rooms() })
	return hub
}

// waitCluster waits until every member's subscriptions are confirmed and
// Redis counts want servers on nsp.
func waitCluster(t *testing.T, members []*member, want int, nsp string) {
	t.Helper()
	ctx := ctxTimeout(t, 5*time.Second)
	for _, m := range members {
		if err := m.node.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 5*time.Second, fmt.Sprintf("%d servers on %s", want, nsp), func() bool {
		n, err := members[0].node.ServerCount(ctx, nsp)
		return err == nil && n == want
	})
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// peer is a client of a member.
type peer struct {
	c  *client.Socket
	ev *sockettest.Recorder
}

func (m *member) dial(t *testing.T, opts *client.Options) *peer {
	t.Helper()
	c := m.srv.Socket(t, "/", opts)
	p := &peer{c: c, ev: sockettest.Record(c)}
	m.srv.Connect(t, c)
	return p
}

func (p *peer) join(t *testing.T, rooms ...string) {
	t.Helper()
	args := make([]any, len(rooms))
	for i, r := range rooms {
		args[i] = r
	}
	if _, err := p.c.EmitWithAck(ctxTimeout(t, 5*time.Second), "join", args...); err != nil {
		t.Fatal(err)
	}
}

func (p *peer) rooms(t *testing.T) []string {
	t.Helper()
	r, err := p.c.EmitWithAck(ctxTimeout(t, 5*time.Second), "rooms")
	if err != nil {
		t.Fatal(err)
	}
	var rooms []string
	r.Decode(&rooms)
	return rooms
}

// fence broadcasts a marker from m and waits until every peer got it:
// whatever was published before has then been delivered, so counts can be
// compared exactly.
var fenceSeq struct {
	sync.Mutex
	n int
}

func fence(t *testing.T, m *member, peers ...*peer) {
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

// expectString waits for event on p and checks its first argument.
func expectString(t *testing.T, p *peer, event, want string) {
	t.Helper()
	var got string
	p.ev.Expect(t, event, &got)
	if got != want {
		t.Fatalf("%s: got %q, want %q", event, got, want)
	}
}

// spy records what is published on a pattern, through a connection of
// its own.
type spy struct {
	mu   sync.Mutex
	msgs []*redis.Message
}

func newSpy(t *testing.T, r *redisServer, patterns ...string) *spy {
	t.Helper()
	rdb := r.Client(t)
	ps := rdb.PSubscribe(context.Background(), patterns...)
	if _, err := ps.Receive(ctxTimeout(t, 5*time.Second)); err != nil { // the confirmation
		t.Fatal(err)
	}
	for range len(patterns) - 1 {
		ps.Receive(ctxTimeout(t, 5*time.Second))
	}
	s := &spy{}
	ch := ps.Channel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ch {
			s.mu.Lock()
			s.msgs = append(s.msgs, m)
			s.mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ps.Close()
		<-done
	})
	return s
}

func (s *spy) channels() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, len(s.msgs))
	for i, m := range s.msgs {
		out[i] = m.Channel
	}
	return out
}

func (s *spy) messages() []*redis.Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.msgs)
}

func (s *spy) reset() {
	s.mu.Lock()
	s.msgs = nil
	s.mu.Unlock()
}

func TestBroadcastAcrossServers(t *testing.T) {
	r := startRedis(t)
	ms := newCluster(t, r, 3, nil)
	a, b, c := ms[0].dial(t, nil), ms[1].dial(t, nil), ms[2].dial(t, nil)
	a2 := ms[0].dial(t, nil)
	all := []*peer{a, a2, b, c}
	b.join(t, "blue")
	c.join(t, "blue", "muted")

	// To everyone, with binary and numbers.
	if err := ms[0].hub.Emit("news", "all", 42, []byte{1, 2, 3}, map[string]any{"n": 1.5}); err != nil {
		t.Fatal(err)
	}
	for _, p := range all {
		var s string
		var n int
		var bin []byte
		var m map[string]float64
		p.ev.Expect(t, "news", &s, &n, &bin, &m)
		if s != "all" || n != 42 || !bytes.Equal(bin, []byte{1, 2, 3}) || m["n"] != 1.5 {
			t.Fatalf("news: %q %d %v %v", s, n, bin, m)
		}
	}

	// To a room, from a server none of whose sockets is in it.
	if err := ms[0].hub.To("blue").Emit("color", "blue"); err != nil {
		t.Fatal(err)
	}
	expectString(t, b, "color", "blue")
	expectString(t, c, "color", "blue")

	// Except a room.
	if err := ms[1].hub.Except("muted").Emit("loud", "x"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{a, a2, b} {
		expectString(t, p, "loud", "x")
	}

	// Rooms and except combined: blue minus muted.
	if err := ms[2].hub.To("blue", "nowhere").Except("muted").Emit("mix", "m"); err != nil {
		t.Fatal(err)
	}
	expectString(t, b, "mix", "m")

	// socket.broadcast from a client: everyone but the sender, once.
	if err := b.c.Emit("relay", "hi"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{a, a2, c} {
		expectString(t, p, "relay", "hi")
	}

	// Local stays on the server.
	if err := ms[1].hub.All().Local().Emit("local", "l"); err != nil {
		t.Fatal(err)
	}
	expectString(t, b, "local", "l")

	// Nothing was delivered twice, nor where it should not be: a fence
	// from another server arrives after anything sent before it.
	fence(t, ms[1], all...)
	fence(t, ms[0], all...)
	want := map[*peer]map[string]int{
		a:  {"news": 1, "color": 0, "loud": 1, "mix": 0, "relay": 1, "local": 0},
		a2: {"news": 1, "color": 0, "loud": 1, "mix": 0, "relay": 1, "local": 0},
		b:  {"news": 1, "color": 1, "loud": 1, "mix": 1, "relay": 0, "local": 1},
		c:  {"news": 1, "color": 1, "loud": 0, "mix": 0, "relay": 1, "local": 0},
	}
	for p, counts := range want {
		for ev, n := range counts {
			if got := p.ev.Count(ev); got != n {
				t.Errorf("client %s got %q %d times, want %d", p.c.ID(), ev, got, n)
			}
		}
	}
}

// A broadcast to exactly one room goes to that room's channel; others to
// the namespace channel; Local ones are not published. A server with no
// socket in the room skips the room channel's messages undecoded.
func TestRoomChannel(t *testing.T) {
	r := startRedis(t)
	ms := newCluster(t, r, 2, nil)
	s := newSpy(t, r, "socket.io#*")
	a, b := ms[0].dial(t, nil), ms[1].dial(t, nil)
	b.join(t, "blue")

	ms[0].hub.To("blue").Emit("one", "1")
	expectString(t, b, "one", "1")
	ms[0].hub.To("blue", "red").Emit("two", 2)
	ms[0].hub.Emit("all", 3)
	ms[0].hub.To("blue").Local().Emit("local", 4)
	ms[0].hub.Of("/").To(a.c.ID()).Emit("direct", 5)
	fence(t, ms[0], a, b)
	eventually(t, 5*time.Second, "the spy", func() bool { return len(s.channels()) >= 5 })
	got := s.channels()
	want := []string{"socket.io#/#blue#", "socket.io#/#", "socket.io#/#", "socket.io#/#" + a.c.ID() + "#", "socket.io#/#"}
	if !slices.Equal(got, want) {
		t.Fatalf("channels %q\nwant     %q", got, want)
	}
	if b.ev.Count("local") != 0 || a.ev.Count("direct") != 1 {
		t.Fatalf("local %d, direct %d", b.ev.Count("local"), a.ev.Count("direct"))
	}

	// A message on a room channel reaches a server only when one of its
	// sockets is in the room, whatever its options say: this one selects
	// every socket.
	msg := nodeBroadcast(t, "NODEID", "/", []any{"ghost", "boo"}, nil)
	if err := ms[0].rdb.Publish(context.Background(), "socket.io#/#blue#", msg).Err(); err != nil {
		t.Fatal(err)
	}
	expectString(t, b, "ghost", "boo")
	fence(t, ms[1], a, b)
	if a.ev.Count("ghost") != 0 {
		t.Fatal("a server without the room delivered a room channel message")
	}
}

// nodeBroadcast encodes a broadcast message as a Node server would.
func nodeBroadcast(t *testing.T, uid, nsp string, data []any, rooms []any) []byte {
	t.Helper()
	if rooms == nil {
		rooms = []any{}
	}
	b, err := msgpack.Marshal([]any{uid,
		msgpack.Map{{Key: "type", Value: 2}, {Key: "data", Value: data}, {Key: "nsp", Value: nsp}},
		msgpack.Map{{Key: "rooms", Value: rooms}, {Key: "except", Value: []any{}}, {Key: "flags", Value: msgpack.Map{}}}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestJoinLeaveDisconnectAcrossServers(t *testing.T) {
	r := startRedis(t)
	ms := newCluster(t, r, 2, nil)
	a, b := ms[0].dial(t, nil), ms[1].dial(t, nil)
	b2 := ms[1].dial(t, nil)
	b.join(t, "blue")

	// Join: server 0 makes blue (on server 1) join red.
	if err := ms[0].hub.In("blue").SocketsJoin("red", "green"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b in red", func() bool { return slices.Contains(b.rooms(t), "red") })
	if rooms := b.rooms(t); !slices.Contains(rooms, "green") {
		t.Fatalf("b's rooms %v", rooms)
	}
	if rooms := b2.rooms(t); slices.Contains(rooms, "red") {
		t.Fatalf("b2 joined too: %v", rooms)
	}
	// The requesting server applies its own part once: a's socket joins
	// locally, at once.
	if err := ms[0].hub.In(a.c.ID()).SocketsJoin("mine"); err != nil {
		t.Fatal(err)
	}
	if rooms := a.rooms(t); !slices.Contains(rooms, "mine") {
		t.Fatalf("local join: %v", rooms)
	}
	ms[0].hub.To("red").Emit("in-red", "r")
	expectString(t, b, "in-red", "r")

	// Leave.
	if err := ms[0].hub.In(b.c.ID()).SocketsLeave("red"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "b out of red", func() bool { return !slices.Contains(b.rooms(t), "red") })

	// Disconnect: from server 1, a socket of server 0; its client sees the
	// server disconnect it, the other clients stay.
	if err := ms[1].hub.In(a.c.ID()).DisconnectSockets(false); err != nil {
		t.Fatal(err)
	}
	select {
	case <-a.c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a was not disconnected")
	}
	if a.c.Reason() != client.ReasonServerDisconnect {
		t.Fatalf("reason %q", a.c.Reason())
	}
	// Disconnect with close, across servers, by room.
	if err := ms[0].hub.In("blue").DisconnectSockets(true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("b was not disconnected")
	}
	fence(t, ms[0], b2)
	if !b2.c.Connected() {
		t.Fatal("b2 was disconnected")
	}
}

func TestFetchSocketsAcrossServers(t *testing.T) {
	r := startRedis(t)
	ms := newCluster(t, r, 3, &clusterOptions{setup: func(m *member) {
		m.hub.OnConnect(func(s *rally.Socket) {
			s.SetData(map[string]any{"server": m.i, "user": s.Handshake().Query.Get("user")})
		})
	}})
	a := ms[0].dial(t, nil)
	b := ms[1].dial(t, &client.Options{
		Auth:   map[string]string{"token": "secret"},
		Query:  url.Values{"user": {"bob"}},
		Header: http.Header{"X-Team": {"blue"}},
	})
	b.join(t, "blue")
	// ms[2] has no socket: it must still answer, at once.

	// (A server that did not answer would make it fail with ErrTimeout.)
	socks, err := ms[0].hub.All().FetchSockets(ctxTimeout(t, 10*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ids := func(socks []*rally.RemoteSocket) []string {
		var out []string
		for _, s := range socks {
			out = append(out, s.ID)
		}
		sort.Strings(out)
		return out
	}
	want := []string{a.c.ID(), b.c.ID()}
	sort.Strings(want)
	if got := ids(socks); !slices.Equal(got, want) {
		t.Fatalf("fetched %v, want %v", got, want)
	}

	socks, err = ms[2].hub.In("blue").FetchSockets(ctxTimeout(t, 5*time.Second))
	if err != nil || len(socks) != 1 {
		t.Fatalf("In(blue): %v %v", ids(socks), err)
	}
	s := socks[0]
	h := s.Handshake
	var auth map[string]string
	if err := h.DecodeAuth(&auth); err != nil || auth["token"] != "secret" {
		t.Fatalf("auth %s %v", h.Auth, err)
	}
	if h.Query.Get("user") != "bob" || h.Query.Get("EIO") != "4" || h.Header.Get("X-Team") != "blue" ||
		h.Address != "127.0.0.1" || time.Since(h.Issued) > time.Minute || !strings.HasPrefix(h.URL, "/socket.io/") {
		t.Fatalf("handshake %+v", h)
	}
	if !slices.Contains(s.Rooms, "blue") || !slices.Contains(s.Rooms, b.c.ID()) {
		t.Fatalf("rooms %v", s.Rooms)
	}
	data, _ := s.Data.(map[string]any)
	if data["server"] != float64(1) || data["user"] != "bob" {
		t.Fatalf("data %#v", s.Data)
	}

	socks, err = ms[1].hub.Except("blue").FetchSockets(ctxTimeout(t, 5*time.Second))
	if got := ids(socks); err != nil || !slices.Equal(got, []string{a.c.ID()}) {
		t.Fatalf("Except(blue): %v %v", got, err)
	}
	socks, err = ms[0].hub.In("nobody").FetchSockets(ctxTimeout(t, 5*time.Second))
	if err != nil || len(socks) != 0 {
		t.Fatalf("In(nobody): %v %v", ids(socks), err)
	}
	socks, err = ms[0].hub.All().Local().FetchSockets(ctxTimeout(t, 5*time.Second))
	if got := ids(socks); err != nil || !slices.Equal(got, []string{a.c.ID()}) {
		t.Fatalf("Local: %v %v", got, err)
	}

	// A remote socket's methods act through the adapter.
	socks, _ = ms[0].hub.In(b.c.ID()).FetchSockets(ctxTimeout(t, 5*time.Second))
	if err := socks[0].Emit("direct", "to b"); err != nil {
		t.Fatal(err)
	}
	expectString(t, b, "direct", "to b")

	// allRooms spans the servers.
	rooms, err := ms[2].node.AllRooms(ctxTimeout(t, 5*time.Second), "/")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{a.c.ID(), b.c.ID(), "blue"} {
		if !slices.Contains(rooms, want) {
			t.Fatalf("allRooms %v lacks %s", rooms, want)
		}
	}
}

func TestServerSideEmitAcrossServers(t *testing.T) {
	r := startRedis(t)
	type note struct {
		server int
		text   string
		bin    []byte
	}
	notes := make(chan note, 10)
	ms := newCluster(t, r, 3, &clusterOptions{setup: func(m *member) {
		m.hub.OnServerEvent("note", func(text string, bin []byte) { notes <- note{m.i, text, bin} })
		if m.i > 0 {
			m.hub.OnServerEvent("whoami", func(greeting string) (string, []byte) {
				return fmt.Sprintf("%s from %d", greeting, m.i), []byte{byte(m.i)}
			})
			m.hub.OnServerEvent("blob", func() []byte { return []byte{9, byte(m.i)} })
		}
	}})

	// Without ack: every other server's handler, not this one's.
	if err := ms[0].hub.ServerSideEmit(ctxTimeout(t, 5*time.Second), "note", "hello", []byte{7}); err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for range 2 {
		select {
		case n := <-notes:
			if n.text != "hello" || !bytes.Equal(n.bin, []byte{7}) {
				t.Fatalf("note %+v", n)
			}
			got[n.server] = true
		case <-time.After(5 * time.Second):
			t.Fatal("a server did not get the event")
		}
	}
	if !got[1] || !got[2] {
		t.Fatalf("servers %v", got)
	}

	// With ack: one answer per other server, its handler's first result.
	replies, err := ms[0].hub.ServerSideEmitWithAck(ctxTimeout(t, 5*time.Second), "whoami", "hi")
	if err != nil || len(replies) != 2 {
		t.Fatalf("replies %d, %v", len(replies), err)
	}
	var answers []string
	for _, r := range replies {
		var s string
		if r.Len() != 1 || r.Decode(&s) != nil {
			t.Fatalf("reply %v", r.Values())
		}
		answers = append(answers, s)
	}
	sort.Strings(answers)
	if !slices.Equal(answers, []string{"hi from 1", "hi from 2"}) {
		t.Fatalf("answers %v", answers)
	}
	// Binary answers stay binary.
	replies, err = ms[0].hub.ServerSideEmitWithAck(ctxTimeout(t, 5*time.Second), "blob")
	if err != nil || len(replies) != 2 {
		t.Fatalf("blob: %d %v", len(replies), err)
	}
	for _, r := range replies {
		var b []byte
		if err := r.Decode(&b); err != nil || len(b) != 2 || b[0] != 9 {
			t.Fatalf("blob %v %v", b, err)
		}
	}

	// A server without a handler answers with the error; the others' answers
	// are returned too.
	replies, err = ms[1].hub.ServerSideEmitWithAck(ctxTimeout(t, 5*time.Second), "whoami", "yo")
	if !errors.Is(err, rally.ErrNoHandler) || len(replies) != 2 {
		t.Fatalf("from 1: %d replies, %v", len(replies), err)
	}
	if _, err := ms[0].hub.ServerSideEmitWithAck(ctxTimeout(t, 5*time.Second), "nobody listens"); !errors.Is(err, rally.ErrNoHandler) {
		t.Fatalf("unknown event: %v", err)
	}
}

func TestServerSideEmitSingleServer(t *testing.T) {
	r := startRedis(t)
	ms := newCluster(t, r, 1, nil)
	replies, err := ms[0].hub.ServerSideEmitWithAck(ctxTimeout(t, time.Second), "x")
	if err != nil || len(replies) != 0 {
		t.Fatalf("alone: %v %v", replies, err)
	}
}

func TestBroadcastWithAckAcrossServers(t *testing.T) {
	r := startRedis(t)
	ms := newCluster(t, r, 3, nil)
	var peers []*peer
	for _, i := range []int{0, 0, 1} { // server 2 has no client
		p := ms[i].dial(t, nil)
		name := fmt.Sprintf("client of %d", i)
		// Only the first argument of an ack travels between servers, as
		// with the Node adapter.
		p.c.On("question", func(q string) map[string]any {
			return map[string]any{"text": name + ": " + q, "bin": []byte{byte(i)}}
		})
		peers = append(peers, p)
	}

	for _, from := range ms {
		// Every server must report its count, server 2 a zero, or this
		// fails when the context ends.
		replies, err := from.hub.EmitWithAck(ctxTimeout(t, 10*time.Second), "question", "why")
		if err != nil {
			t.Fatalf("from %d: %v", from.i, err)
		}
		var answers []string
		for _, r := range replies {
			var answer struct {
				Text string
				Bin  []byte
			}
			if err := r.Decode(&answer); err != nil || len(answer.Bin) != 1 {
				t.Fatalf("reply %v: %v", r.Values(), err)
			}
			answers = append(answers, answer.Text)
		}
		sort.Strings(answers)
		want := []string{"client of 0: why", "client of 0: why", "client of 1: why"}
		if !slices.Equal(answers, want) {
			t.Fatalf("from %d: answers %v", from.i, answers)
		}
	}

	// To a room on one server.
	peers[2].join(t, "solo")
	replies, err := ms[2].hub.To("solo").EmitWithAck(ctxTimeout(t, 5*time.Second), "question", "who")
	if err != nil || len(replies) != 1 {
		t.Fatalf("room: %d %v", len(replies), err)
	}
	// Nobody selected: done at once.
	replies, err = ms[0].hub.To("nobody").EmitWithAck(ctxTimeout(t, 5*time.Second), "question", "who")
	if err != nil || len(replies) != 0 {
		t.Fatalf("nobody: %d %v", len(replies), err)
	}
}

// Close unsubscribes: the server is no longer counted.
func TestCloseUnsubscribes(t *testing.T) {
	r := startRedis(t)
	ms := newCluster(t, r, 2, nil)
	ms[1].hub.Of("/admin")
	waitCluster(t, ms[1:], 1, "/admin")
	ms[1].hub.Close()
	eventually(t, 5*time.Second, "one server left", func() bool {
		n, err := ms[0].node.ServerCount(ctxTimeout(t, time.Second), "/")
		return err == nil && n == 1
	})
	res, err := ms[0].rdb.PubSubNumPat(ctxTimeout(t, time.Second)).Result()
	if err != nil || res != 1 {
		t.Fatalf("patterns left: %d %v", res, err)
	}
	chans, _ := ms[0].rdb.PubSubChannels(ctxTimeout(t, time.Second), "*admin*").Result()
	if len(chans) != 0 {
		t.Fatalf("channels of /admin left: %v", chans)
	}
}

// The channels follow the key option, and namespaces other than "/" have
// their own.
func TestKeyAndNamespaces(t *testing.T) {
	r := startRedis(t)
	s := newSpy(t, r, "*")
	ms := newCluster(t, r, 2, &clusterOptions{
		adapter: redisadapter.Options{Key: "myapp"},
		setup:   func(m *member) { m.hub.Of("/admin") },
	})
	waitCluster(t, ms, 2, "/admin")
	c := ms[1].srv.Socket(t, "/admin", nil)
	ev := sockettest.Record(c)
	ms[1].srv.Connect(t, c)
	ms[0].hub.Of("/admin").Emit("hello", "admins")
	var got string
	ev.Expect(t, "hello", &got)
	if got != "admins" {
		t.Fatal(got)
	}
	eventually(t, 5*time.Second, "the broadcast on myapp#/admin#", func() bool { return slices.Contains(s.channels(), "myapp#/admin#") })
	chans, _ := ms[0].rdb.PubSubChannels(ctxTimeout(t, time.Second), "myapp-*").Result()
	sort.Strings(chans)
	for _, want := range []string{"myapp-request#/#", "myapp-request#/admin#", "myapp-response#/#", "myapp-response#/admin#"} {
		if !slices.Contains(chans, want) {
			t.Fatalf("channels %v lack %s", chans, want)
		}
	}
	// One request-channel subscription per namespace per server.
	counts, _ := ms[0].rdb.PubSubNumSub(ctxTimeout(t, time.Second), "myapp-request#/#", "myapp-request#/admin#").Result()
	if counts["myapp-request#/#"] != 2 || counts["myapp-request#/admin#"] != 2 {
		t.Fatalf("NUMSUB %v", counts)
	}
}

// Requests of older adapter versions and of other implementations: the
// single-socket join/leave/disconnect forms and SOCKETS (type 0) are
// answered; PublishOnSpecificResponseChannel answers on the requester's
// own channel.
func TestOtherRequests(t *testing.T) {
	r := startRedis(t)
	ms := newCluster(t, r, 2, &clusterOptions{adapter: redisadapter.Options{PublishOnSpecificResponseChannel: true}})
	s := newSpy(t, r, "socket.io-response#*")
	a := ms[0].dial(t, nil)
	a.join(t, "blue")
	publish := func(req string) {
		t.Helper()
		if err := ms[1].rdb.Publish(context.Background(), "socket.io-request#/#", req).Err(); err != nil {
			t.Fatal(err)
		}
	}
	answer := func(channel, substring string) {
		t.Helper()
		eventually(t, 5*time.Second, "an answer with "+substring, func() bool {
			for _, m := range s.messages() {
				if m.Channel == channel && strings.Contains(m.Payload, substring) {
					return true
				}
			}
			return false
		})
	}

	publish(`{"uid":"OTHER1","requestId":"j1","type":2,"sid":"` + a.c.ID() + `","room":"legacy"}`)
	answer("socket.io-response#/#OTHER1#", `{"requestId":"j1"}`)
	if !slices.Contains(a.rooms(t), "legacy") {
		t.Fatal("legacy join not applied")
	}
	publish(`{"uid":"OTHER1","requestId":"l1","type":3,"sid":"` + a.c.ID() + `","room":"legacy"}`)
	answer("socket.io-response#/#OTHER1#", `{"requestId":"l1"}`)
	if slices.Contains(a.rooms(t), "legacy") {
		t.Fatal("legacy leave not applied")
	}
	publish(`{"uid":"OTHER1","requestId":"s1","type":0,"rooms":["blue"]}`)
	answer("socket.io-response#/#OTHER1#", `{"requestId":"s1","sockets":["`+a.c.ID()+`"]}`)
	publish(`{"uid":"OTHER1","requestId":"r1","type":1}`)
	answer("socket.io-response#/#OTHER1#", `"blue"`)
	// Node accepts msgpack requests; so does rally, whatever the number
	// format of the type (float64 here).
	mp := mustMsgpack(t, msgpack.Map{{Key: "type", Value: 2}, {Key: "opts", Value: msgpack.Map{{Key: "rooms", Value: []any{"blue"}}}}, {Key: "rooms", Value: []any{"mp"}}})
	mp = bytes.Replace(mp, []byte("\xa4type\x02"), []byte("\xa4type\xcb\x40\x00\x00\x00\x00\x00\x00\x00"), 1)
	if !bytes.Contains(mp, []byte{0xcb, 0x40}) {
		t.Fatalf("no float64 type in %x", mp)
	}
	publish(string(mp))
	eventually(t, 5*time.Second, "msgpack join", func() bool { return slices.Contains(a.rooms(t), "mp") })
	// An unknown type is ignored, quietly.
	publish(`{"uid":"OTHER1","type":42}`)

	// A rally requester gets the answers on its own channel.
	socks, err := ms[1].hub.All().FetchSockets(ctxTimeout(t, 10*time.Second))
	if err != nil || len(socks) != 1 {
		t.Fatalf("fetch: %d %v", len(socks), err)
	}
	for _, m := range s.messages() {
		if m.Channel == "socket.io-response#/#" {
			t.Fatalf("an answer on the shared channel: %s", m.Payload)
		}
	}

	publish(`{"uid":"OTHER1","requestId":"d1","type":4,"sid":"` + a.c.ID() + `","close":false}`)
	answer("socket.io-response#/#OTHER1#", `{"requestId":"d1"}`)
	select {
	case <-a.c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("legacy disconnect not applied")
	}
	if n := len(ms[0].logs.Lines("malformed")); n != 0 {
		t.Fatalf("logged %d malformed messages: %v", n, ms[0].logs.All())
	}
}

func TestEmitter(t *testing.T) {
	r := startRedis(t)
	ms := newCluster(t, r, 1, &clusterOptions{
		adapter: redisadapter.Options{Key: "app"},
		setup:   func(m *member) { m.hub.Of("/admin") },
	})
	waitCluster(t, ms, 1, "/admin")
	s := newSpy(t, r, "app#*")
	c := ms[0].srv.Socket(t, "/admin", nil)
	ev := sockettest.Record(c)
	ms[0].srv.Connect(t, c)
	other := ms[0].dial(t, nil)

	e := redisadapter.NewEmitter(r.Client(t), &redisadapter.Options{Key: "app"})
	ctx := ctxTimeout(t, 10*time.Second)
	admin := e.Of("admin")
	if err := admin.Emit(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	ev.Wait(t, "x")
	// The bytes of the section 8 emitter vector (there for namespace "/").
	eventually(t, 5*time.Second, "the spy", func() bool { return len(s.messages()) == 1 })
	want := mustHex(t, "93a7656d697474657283a47479706502a46461746191a178a36e7370a62f61646d696e83a5726f6f6d7390a5666c61677380a665786365707490")
	if m := s.messages()[0]; m.Channel != "app#/admin#" || m.Payload != string(want) {
		t.Fatalf("published %q %x", m.Channel, m.Payload)
	}

	// Selections are values: a kept one does not change.
	toBlue := admin.To("blue")
	if err := admin.In(c.ID()).SocketsJoin(ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the join", func() bool {
		socks, _ := ms[0].hub.Of("/admin").In("blue").FetchSockets(ctx)
		return len(socks) == 1
	})
	if err := toBlue.Except("nobody").Emit(ctx, "blue", []byte{1}); err != nil {
		t.Fatal(err)
	}
	var b []byte
	ev.Expect(t, "blue", &b)
	if !bytes.Equal(b, []byte{1}) {
		t.Fatal(b)
	}
	if err := toBlue.SocketsLeave(ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the leave", func() bool {
		socks, _ := ms[0].hub.Of("/admin").In("blue").FetchSockets(ctx)
		return len(socks) == 0
	})
	for _, reserved := range []string{"connect", "disconnect", "newListener"} {
		if err := e.Emit(ctx, reserved); err == nil {
			t.Errorf("emitted %q", reserved)
		}
		if err := e.ServerSideEmit(ctx, reserved); err == nil {
			t.Errorf("server-side emitted %q", reserved)
		}
	}
	if err := e.ServerSideEmit(ctx, "connection"); err == nil {
		t.Error("server-side emitted connection")
	}
	if err := admin.DisconnectSockets(ctx, true); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("not disconnected")
	}
	// The main namespace was not concerned.
	if !other.c.Connected() {
		t.Fatal("a socket of / was disconnected")
	}
}

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
