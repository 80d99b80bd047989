package redisadapter_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/redisadapter"
	"github.com/rallyhq/rally/redisadapter/streams"
	"github.com/rallyhq/rally/sockettest"
	"github.com/redis/go-redis/v9"
)

// smember is one rally server of a test cluster on the streams adapter.
type smember struct {
	i    int
	hub  *rally.Hub
	srv  *sockettest.Server
	node *streams.Node
	rdb  *redis.Client
	logs *logRecorder
}

type streamsOptions struct {
	adapter  streams.Options
	recovery *rally.Recovery
	setup    func(m *smember)
}

// newStreamsCluster starts n rally hubs on the streams adapter, sharing r,
// each with its own Redis client, and waits until each is ready and
// counted.
func newStreamsCluster(t *testing.T, r *redisServer, n int, so *streamsOptions) []*smember {
	t.Helper()
	if so == nil {
		so = &streamsOptions{}
	}
	members := make([]*smember, n)
	for i := range members {
		m := &smember{i: i, rdb: r.Client(t)}
		opts := so.adapter
		if opts.Logger == nil {
			opts.Logger, m.logs = newLogRecorder(t)
		}
		m.node = streams.New(m.rdb, &opts)
		m.hub = rally.NewHub(&rally.Options{Adapter: m.node.Adapter, ConnectionStateRecovery: so.recovery})
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
	waitStreams(t, members, n, "/")
	return members
}

// waitStreams waits until every member is ready and Redis counts want
// servers on nsp.
func waitStreams(t *testing.T, members []*smember, want int, nsp string) {
	t.Helper()
	ctx := ctxTimeout(t, 10*time.Second)
	for _, m := range members {
		if err := m.node.Ready(ctx); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, fmt.Sprintf("at least %d servers on %s", want, nsp), func() bool {
		n, err := members[0].node.ServerCount(ctx, nsp)
		return err == nil && n >= want
	})
}

func (m *smember) dial(t *testing.T, opts *client.Options) *peer {
	t.Helper()
	c := m.srv.Socket(t, "/", opts)
	p := &peer{c: c, ev: sockettest.Record(c)}
	m.srv.Connect(t, c)
	return p
}

// sfence broadcasts a marker from m and waits until every peer got it.
func sfence(t *testing.T, m *smember, peers ...*peer) {
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

func TestStreamsBroadcast(t *testing.T) {
	r := startRedis(t)
	ms := newStreamsCluster(t, r, 2, nil)
	a, b := ms[0].dial(t, nil), ms[1].dial(t, nil)
	b2 := ms[1].dial(t, nil)
	b.join(t, "room1")

	// To everyone, binary included, both ways; each once.
	if err := ms[0].hub.Emit("news", "from 0", []byte{1, 2, 3}, map[string]any{"n": 7}); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{a, b, b2} {
		var s string
		var bin []byte
		var m map[string]any
		p.ev.Expect(t, "news", &s, &bin, &m)
		if s != "from 0" || !bytes.Equal(bin, []byte{1, 2, 3}) || m["n"] != 7.0 {
			t.Fatalf("news: %q %v %v", s, bin, m)
		}
	}
	if err := ms[1].hub.Emit("news", "from 1"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{a, b, b2} {
		expectString(t, p, "news", "from 1")
	}

	// To a room, and except a room, across servers.
	if err := ms[0].hub.To("room1").Emit("room", "r1"); err != nil {
		t.Fatal(err)
	}
	if err := ms[0].hub.Except("room1").Emit("others", "o"); err != nil {
		t.Fatal(err)
	}
	// To a socket of the other server, by id.
	if err := ms[0].hub.To(b2.c.ID()).Emit("direct", "d"); err != nil {
		t.Fatal(err)
	}
	// Local stays.
	if err := ms[0].hub.All().Local().Emit("local", "l"); err != nil {
		t.Fatal(err)
	}
	expectString(t, b, "room", "r1")
	expectString(t, a, "others", "o")
	expectString(t, b2, "others", "o")
	expectString(t, b2, "direct", "d")
	expectString(t, a, "local", "l")
	sfence(t, ms[0], a, b, b2)
	sfence(t, ms[1], a, b, b2)
	for _, c := range []struct {
		p    *peer
		ev   string
		want int
	}{{a, "room", 0}, {b2, "room", 0}, {b, "others", 0}, {a, "direct", 0}, {b, "local", 0}, {b2, "local", 0}, {a, "news", 2}, {b, "news", 2}} {
		if n := c.p.ev.Count(c.ev); n != c.want {
			t.Errorf("%s received %d times, want %d", c.ev, n, c.want)
		}
	}
}

func TestStreamsRequestsAcrossServers(t *testing.T) {
	r := startRedis(t)
	ms := newStreamsCluster(t, r, 3, &streamsOptions{
		adapter: streams.Options{RequestsTimeout: 3 * time.Second},
		setup: func(m *smember) {
			i := m.i
			m.hub.OnConnect(func(s *rally.Socket) { s.SetData(map[string]any{"server": i}) })
			m.hub.OnServerEvent("load", func(x int) int { return 100*i + x })
			if i != 2 {
				m.hub.OnServerEvent("note", func(s string) {})
			}
		},
	})
	p0, p1, p2 := ms[0].dial(t, nil), ms[1].dial(t, nil), ms[2].dial(t, nil)
	for i, p := range []*peer{p0, p1, p2} {
		i := i
		p.c.On("question", func(q string) string { return fmt.Sprintf("%d: %s", i, q) })
	}
	ctx := ctxTimeout(t, 10*time.Second)

	// FetchSockets with data and handshakes.
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
	for i, p := range []*peer{p0, p1, p2} {
		d, _ := got[p.c.ID()].(map[string]any)
		if d == nil || d["server"] != float64(i) && d["server"] != i {
			t.Errorf("socket of server %d: data %v (all: %v)", i, got[p.c.ID()], got)
		}
	}

	// SocketsJoin, SocketsLeave across servers.
	if err := ms[0].hub.In(p2.c.ID()).SocketsJoin("joined"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the remote join", func() bool { return slices.Contains(p2.rooms(t), "joined") })
	infos, err = ms[1].hub.In("joined").FetchSockets(ctx)
	if err != nil || len(infos) != 1 || infos[0].ID != p2.c.ID() {
		t.Fatalf("fetch in joined: %v %v", infos, err)
	}
	if err := ms[1].hub.In("joined").SocketsLeave("joined"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "the remote leave", func() bool { return !slices.Contains(p2.rooms(t), "joined") })

	// EmitWithAck across servers: every client answers once.
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

	// ServerSideEmitWithAck: one answer per other server.
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
	// A server without a handler answers with an error.
	_, err = ms[0].hub.ServerSideEmitWithAck(ctx, "note", "x")
	if !errors.Is(err, rally.ErrNoHandler) {
		t.Fatalf("note: %v, want ErrNoHandler", err)
	}

	// DisconnectSockets across servers.
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
}

func TestStreamsServerCountAndClose(t *testing.T) {
	r := startRedis(t)
	ms := newStreamsCluster(t, r, 2, nil)
	ctx := ctxTimeout(t, 10*time.Second)
	if err := ms[1].hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "1 server", func() bool {
		n, err := ms[0].node.ServerCount(ctx, "/")
		return err == nil && n == 1
	})
	// With the others gone, requests answer at once.
	if _, err := ms[0].hub.ServerSideEmitWithAck(ctx, "load"); err != nil {
		t.Fatal(err)
	}
	if err := ms[0].hub.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestStreamsWireFormat reads what rally writes in the stream and on the
// channels, field by field, as Node's RedisStreamsAdapter.decode does.
func TestStreamsWireFormat(t *testing.T) {
	r := startRedis(t)
	ms := newStreamsCluster(t, r, 1, nil)
	rdb := r.Client(t)
	ctx := ctxTimeout(t, 10*time.Second)
	if err := ms[0].hub.To("r1").Except("r2").Emit("plain", "text", 1.5); err != nil {
		t.Fatal(err)
	}
	if err := ms[0].hub.Emit("bin", []byte{0xff}); err != nil {
		t.Fatal(err)
	}
	if err := ms[0].hub.In("r1").SocketsJoin("r3"); err != nil {
		t.Fatal(err)
	}
	entries, err := rdb.XRange(ctx, "socket.io", "-", "+").Result()
	if err != nil || len(entries) != 3 {
		t.Fatalf("stream: %v %v", entries, err)
	}
	uid, _ := entries[0].Values["uid"].(string)
	if len(uid) != 16 {
		t.Errorf("uid %q, want 16 hex digits", uid)
	}
	want := []map[string]any{
		{"uid": uid, "nsp": "/", "type": "3", "data": `{"packet":{"type":2,"data":["plain","text",1.5]},"opts":{"rooms":["r1"],"except":["r2"],"flags":{}}}`},
		{"uid": uid, "nsp": "/", "type": "3"},
		{"uid": uid, "nsp": "/", "type": "4", "data": `{"opts":{"rooms":["r1"],"except":[],"flags":{}},"rooms":["r3"]}`},
	}
	for i, e := range entries {
		for k, v := range want[i] {
			if e.Values[k] != v {
				t.Errorf("entry %d field %s: %q, want %q", i, k, e.Values[k], v)
			}
		}
	}
	if d, _ := entries[1].Values["data"].(string); strings.HasPrefix(d, "{") || d == "" {
		t.Errorf("binary broadcast data %q, want base64 MessagePack", d)
	}
	// MAXLEN ~ keeps the stream bounded.
	info, err := rdb.XInfoStream(ctx, "socket.io").Result()
	if err != nil || info.Length != 3 {
		t.Fatalf("XINFO: %+v %v", info, err)
	}
}

func TestStreamsMalformedEntriesSkipped(t *testing.T) {
	r := startRedis(t)
	ms := newStreamsCluster(t, r, 2, nil)
	p := ms[1].dial(t, nil)
	rdb := r.Client(t)
	ctx := ctxTimeout(t, 10*time.Second)
	bad := []map[string]any{
		{"uid": "x", "nsp": "/", "type": "3", "data": "{not json"},
		{"uid": "x", "nsp": "/", "type": "3", "data": "!!!not base64"},
		{"uid": "x", "nsp": "/", "type": "three"},
		{"uid": "x", "nsp": "/", "type": "3", "data": `{"packet":{"type":2,"data":[]},"opts":{}}`},
		{"uid": "x", "nsp": "/", "type": "4", "data": `{"rooms":["a"]}`},
		{"uid": "x", "type": "3"}, // no namespace: skipped silently, as by Node
		{"uid": "x", "nsp": "/", "type": "3", "data": strings.Repeat("x", 2<<20)},
	}
	for _, v := range bad {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: "socket.io", Values: v}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := rdb.Publish(ctx, "socket.io#/#", "garbage").Err(); err != nil {
		t.Fatal(err)
	}
	sfence(t, ms[0], p)
	eventually(t, 5*time.Second, "the warnings", func() bool {
		return len(ms[1].logs.Lines("WARN", "skipping")) > 0
	})
	// Rate-limited: far fewer lines than bad entries.
	if n := len(ms[1].logs.Lines("WARN", "skipping")); n > 2 {
		t.Errorf("%d warnings for %d bad entries, want them rate-limited: %q", n, len(bad)+1, ms[1].logs.All())
	}
}

func TestStreamsOversizedEntrySkipped(t *testing.T) {
	r := startRedis(t)
	ms := newStreamsCluster(t, r, 2, &streamsOptions{adapter: streams.Options{MaxEntryBytes: 1 << 10}})
	p := ms[1].dial(t, nil)
	if err := ms[0].hub.Emit("big", strings.Repeat("x", 4<<10)); err != nil {
		t.Fatal(err)
	}
	sfence(t, ms[0], p)
	if n := p.ev.Count("big"); n != 0 {
		t.Fatalf("oversized broadcast delivered %d times", n)
	}
	if len(ms[1].logs.Lines("oversized")) == 0 {
		t.Fatalf("no warning: %q", ms[1].logs.All())
	}
}

func TestStreamsErrorsAreRedisadapters(t *testing.T) {
	if streams.ErrTimeout != redisadapter.ErrTimeout || streams.ErrClosed != redisadapter.ErrClosed {
		t.Fatal("the streams adapter's errors differ from redisadapter's")
	}
}

var _ = context.Background
