package redisadapter_test

import (
	"bytes"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/internal/nodetest"
	"github.com/rallyhq/rally/redisadapter"
	"github.com/rallyhq/rally/sockettest"
)

// The mixed cluster, the proof of wire compatibility: on one Redis, a
// rally hub with this adapter and a Node Socket.IO server with
// @socket.io/redis-adapter (testdata/interop/cluster.js). Each server has
// a Go client (rally's) and a Node client (socket.io-client):
//
//	goOnRally, nodeOnRally  -> the rally hub
//	goOnNode,  nodeOnNode   -> the Node server
type mixed struct {
	t     *testing.T
	redis *redisServer
	rally *member
	node  *nodetest.Process
	seq   int

	nodeURL     string
	ids         map[string]string // client name -> socket id
	goOnRally   *peer
	goOnNode    *peer
	serverNotes chan []any // server-side "note" events heard by the rally hub
}

const waitNode = 20 * time.Second

func startMixed(t *testing.T) *mixed {
	t.Helper()
	nodetest.Node(t) // skip (or fail under CI) before starting anything
	r := startRedis(t)
	x := &mixed{t: t, redis: r, serverNotes: make(chan []any, 10)}
	ms := newCluster(t, r, 1, &clusterOptions{
		adapter: redisadapter.Options{RequestsTimeout: 2 * time.Second},
		setup: func(m *member) {
			m.hub.OnConnect(func(s *rally.Socket) {
				var auth struct{ User string }
				s.Handshake().DecodeAuth(&auth)
				s.SetData(map[string]any{"server": "rally", "user": auth.User})
			})
			m.hub.OnServerEvent("ping-srv", func(arg string) string { return "pong from rally: " + arg })
			m.hub.OnServerEvent("note", func(args ...any) { x.serverNotes <- args })
		},
	})
	x.rally = ms[0]
	x.node = nodetest.Start(t, "cluster.js", nodetest.Options{
		Env: []string{"REDIS_URL=" + r.URL(), "RALLY_URL=" + x.rally.srv.URL, "REQUESTS_TIMEOUT=2000"},
	})
	// Node takes seconds to load its modules on a busy machine.
	ready := x.node.WaitEvent(60*time.Second, "ready", nil)

	var info struct {
		Port int
		IDs  map[string]string
	}
	if err := ready.Decode(&info); err != nil {
		t.Fatal(err)
	}
	x.ids = info.IDs
	x.nodeURL = fmt.Sprintf("http://127.0.0.1:%d", info.Port)

	x.goOnRally = x.rally.dial(t, &client.Options{Auth: map[string]string{"user": "goOnRally"}})
	x.goOnRally.c.On("question", func(q string) string { return "goOnRally: " + q })
	c := client.New(x.nodeURL, &client.Options{Auth: map[string]string{"user": "goOnNode"}})
	t.Cleanup(func() { c.Close() })
	x.goOnNode = &peer{c: c, ev: sockettest.Record(c)}
	c.On("question", func(q string) string { return "goOnNode: " + q })
	if err := c.Connect(ctxTimeout(t, 5*time.Second)); err != nil {
		t.Fatal(err)
	}
	x.ids["goOnRally"], x.ids["goOnNode"] = x.goOnRally.c.ID(), c.ID()

	// Both servers subscribed and counted.
	waitCluster(t, ms, 2, "/")
	return x
}

// do runs a command in the Node script and returns its answer.
func (x *mixed) do(op string, fields map[string]any) nodetest.Line {
	x.t.Helper()
	x.seq++
	cmd := map[string]any{"op": op, "id": x.seq}
	for k, v := range fields {
		cmd[k] = v
	}
	x.node.Send(cmd)
	id := float64(x.seq)
	l := x.node.WaitLine(waitNode, fmt.Sprintf("the answer to %s", op), func(l nodetest.Line) bool {
		return (l.Event == "done" || l.Event == "failed") && l.Get("id") == id
	})
	if l.Event == "failed" {
		x.t.Fatalf("node %s: %s", op, l.Text("error"))
	}
	return l
}

// nodeRecv waits until a Node client received an event with these args.
func (x *mixed) nodeRecv(client, ev string, args ...any) {
	x.t.Helper()
	if args == nil {
		args = []any{}
	}
	x.node.WaitEvent(waitNode, "recv", map[string]any{"client": client, "ev": ev, "args": args})
}

// nodeCount counts the events a Node client received.
func (x *mixed) nodeCount(client, ev string) int {
	n := 0
	for _, l := range x.node.Lines() {
		if l.Event == "recv" && l.Text("client") == client && l.Text("ev") == ev {
			n++
		}
	}
	return n
}

// fence emits a marker from both servers and waits until the four clients
// got both: everything published before has then been delivered.
func (x *mixed) fence() {
	x.t.Helper()
	fenceSeq.Lock()
	fenceSeq.n++
	n := fenceSeq.n
	fenceSeq.Unlock()
	x.rally.hub.Emit("fence", "rally", n)
	x.do("emit", map[string]any{"ev": "fence", "args": []any{"node", n}})
	for _, p := range []*peer{x.goOnRally, x.goOnNode} {
		seen := map[string]bool{}
		for !seen["rally"] || !seen["node"] {
			var who string
			var got int
			p.ev.Expect(x.t, "fence", &who, &got)
			if got == n {
				seen[who] = true
			}
		}
	}
	for _, from := range []string{"rally", "node"} {
		for _, c := range []string{"nodeOnRally", "nodeOnNode"} {
			x.nodeRecv(c, "fence", from, n)
		}
	}
}

// expectStrings waits for the event n times on p and checks the first
// arguments, in any order.
func expectStrings(t *testing.T, p *peer, event string, want ...string) {
	t.Helper()
	var got []string
	for range want {
		var s string
		p.ev.Expect(t, event, &s)
		got = append(got, s)
	}
	sort.Strings(got)
	want = slices.Clone(want)
	sort.Strings(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %q, want %q", event, got, want)
	}
}

func TestMixedBroadcast(t *testing.T) {
	x := startMixed(t)
	everyone := []string{"nodeOnNode", "nodeOnRally"}

	// rally -> everyone, binary included: Node re-encodes the bin it got
	// through Redis for its clients.
	if err := x.rally.hub.Emit("news", "from rally", 7, []byte{1, 2, 3}, map[string]any{"k": "v", "f": 0.5}); err != nil {
		t.Fatal(err)
	}
	for _, c := range everyone {
		x.nodeRecv(c, "news", "from rally", 7, map[string]any{"$buffer": "010203"}, map[string]any{"k": "v", "f": 0.5})
	}
	for _, p := range []*peer{x.goOnRally, x.goOnNode} {
		var s string
		var n int
		var b []byte
		var m map[string]any
		p.ev.Expect(t, "news", &s, &n, &b, &m)
		if s != "from rally" || n != 7 || !bytes.Equal(b, []byte{1, 2, 3}) || m["k"] != "v" {
			t.Fatalf("news: %q %d %v %v", s, n, b, m)
		}
	}

	// Node -> everyone.
	x.do("emit", map[string]any{"ev": "news", "args": []any{"from node", map[string]any{"$buffer": "0405"}, nil, true}})
	for _, c := range everyone {
		x.nodeRecv(c, "news", "from node", map[string]any{"$buffer": "0405"}, nil, true)
	}
	for _, p := range []*peer{x.goOnRally, x.goOnNode} {
		var s string
		var b []byte
		var null any
		var yes bool
		p.ev.Expect(t, "news", &s, &b, &null, &yes)
		if s != "from node" || !bytes.Equal(b, []byte{4, 5}) || null != nil || !yes {
			t.Fatalf("news from node: %q %v %v %v", s, b, null, yes)
		}
	}

	// Rooms, both ways: goOnRally and nodeOnNode are in blue.
	x.goOnRally.join(t, "blue")
	x.do("clientJoin", map[string]any{"client": "nodeOnNode", "room": "blue"})
	x.do("emit", map[string]any{"ev": "color", "args": []any{"from node"}, "rooms": []string{"blue"}})
	expectString(t, x.goOnRally, "color", "from node")
	x.nodeRecv("nodeOnNode", "color", "from node")
	if err := x.rally.hub.To("blue").Emit("color", "from rally"); err != nil {
		t.Fatal(err)
	}
	x.nodeRecv("nodeOnNode", "color", "from rally")
	expectString(t, x.goOnRally, "color", "from rally")

	// Except, both ways.
	x.do("emit", map[string]any{"ev": "notblue", "args": []any{"node"}, "except": []string{"blue"}})
	if err := x.rally.hub.Except("blue").Emit("notblue", "rally"); err != nil {
		t.Fatal(err)
	}
	expectStrings(t, x.goOnNode, "notblue", "node", "rally")
	for _, from := range []string{"node", "rally"} {
		x.nodeRecv("nodeOnRally", "notblue", from)
	}
	// A socket's own id as a room (RemoteSocket.emit from Node).
	x.do("emit", map[string]any{"ev": "direct", "args": []any{"to goOnRally"}, "rooms": []string{x.ids["goOnRally"]}})
	expectString(t, x.goOnRally, "direct", "to goOnRally")

	// Volatile from rally reaches Node's clients (they are idle).
	if err := x.rally.hub.All().Volatile().Emit("vol", "v"); err != nil {
		t.Fatal(err)
	}
	x.nodeRecv("nodeOnNode", "vol", "v")

	// Exactly once each, nowhere else.
	x.fence()
	counts := map[string]map[string]int{
		"goOnRally":   {"news": 2, "color": 2, "notblue": 0, "direct": 1},
		"goOnNode":    {"news": 2, "color": 0, "notblue": 2, "direct": 0},
		"nodeOnRally": {"news": 2, "color": 0, "notblue": 2, "direct": 0},
		"nodeOnNode":  {"news": 2, "color": 2, "notblue": 0, "direct": 0},
	}
	for name, evs := range counts {
		for ev, want := range evs {
			var got int
			switch name {
			case "goOnRally":
				got = x.goOnRally.ev.Count(ev)
			case "goOnNode":
				got = x.goOnNode.ev.Count(ev)
			default:
				got = x.nodeCount(name, ev)
			}
			if got != want {
				t.Errorf("%s got %q %d times, want %d", name, ev, got, want)
			}
		}
	}
}

func TestMixedFetchSockets(t *testing.T) {
	x := startMixed(t)
	x.goOnRally.join(t, "blue")
	x.do("clientJoin", map[string]any{"client": "nodeOnNode", "room": "blue"})

	// rally fetches Node's sockets.
	socks, err := x.rally.hub.All().FetchSockets(ctxTimeout(t, 5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*rally.RemoteSocket{}
	for _, s := range socks {
		byID[s.ID] = s
	}
	if len(socks) != 4 {
		t.Fatalf("fetched %d sockets, want 4", len(socks))
	}
	nn := byID[x.ids["nodeOnNode"]]
	if nn == nil {
		t.Fatal("nodeOnNode not fetched")
	}
	var auth struct{ User string }
	if err := nn.Handshake.DecodeAuth(&auth); err != nil || auth.User != "nodeOnNode" {
		t.Fatalf("auth %s %v", nn.Handshake.Auth, err)
	}
	if nn.Handshake.Query.Get("EIO") != "4" || nn.Handshake.Header.Get("Host") == "" || nn.Handshake.Address == "" ||
		time.Since(nn.Handshake.Issued) > time.Minute || !strings.HasPrefix(nn.Handshake.URL, "/socket.io/") {
		t.Fatalf("handshake %+v", nn.Handshake)
	}
	if data, _ := nn.Data.(map[string]any); data["server"] != "node" || data["user"] != "nodeOnNode" {
		t.Fatalf("data %#v", nn.Data)
	}
	if !slices.Contains(nn.Rooms, "blue") || !slices.Contains(nn.Rooms, nn.ID) {
		t.Fatalf("rooms %v", nn.Rooms)
	}
	socks, err = x.rally.hub.In("blue").FetchSockets(ctxTimeout(t, 5*time.Second))
	var ids []string
	for _, s := range socks {
		ids = append(ids, s.ID)
	}
	sort.Strings(ids)
	want := []string{x.ids["goOnRally"], x.ids["nodeOnNode"]}
	sort.Strings(want)
	if err != nil || !slices.Equal(ids, want) {
		t.Fatalf("In(blue): %v %v", ids, err)
	}

	// Node fetches rally's sockets.
	l := x.do("fetch", nil)
	var res struct {
		Sockets []struct {
			ID        string
			Rooms     []string
			Data      map[string]any
			Handshake struct {
				Headers map[string]any
				Time    string
				Address string
				Issued  float64
				URL     string
				Query   map[string]any
				Auth    map[string]any
			}
		}
	}
	if err := l.Decode(&res); err != nil {
		t.Fatal(err)
	}
	if len(res.Sockets) != 4 {
		t.Fatalf("Node fetched %d sockets: %s", len(res.Sockets), l.Raw)
	}
	found := false
	for _, s := range res.Sockets {
		if s.ID != x.ids["goOnRally"] {
			continue
		}
		found = true
		h := s.Handshake
		if s.Data["server"] != "rally" || s.Data["user"] != "goOnRally" || h.Auth["user"] != "goOnRally" ||
			h.Query["EIO"] != "4" || h.Headers["user-agent"] == nil || h.Address != "127.0.0.1" || h.Issued == 0 ||
			!strings.Contains(h.Time, "GMT+0000") || !strings.HasPrefix(h.URL, "/socket.io/") {
			t.Fatalf("rally socket as Node sees it: %+v", s)
		}
		if !slices.Contains(s.Rooms, "blue") {
			t.Fatalf("rooms %v", s.Rooms)
		}
	}
	if !found {
		t.Fatalf("goOnRally not in Node's fetch: %s", l.Raw)
	}
	l = x.do("fetch", map[string]any{"rooms": []string{"blue"}})
	if err := l.Decode(&res); err != nil || len(res.Sockets) != 2 {
		t.Fatalf("Node In(blue): %s", l.Raw)
	}

	// allRooms both ways.
	rooms, err := x.rally.node.AllRooms(ctxTimeout(t, 5*time.Second), "/")
	if err != nil || !slices.Contains(rooms, x.ids["nodeOnNode"]) || !slices.Contains(rooms, "blue") {
		t.Fatalf("rally allRooms %v %v", rooms, err)
	}
	l = x.do("allRooms", nil)
	var ar struct{ Rooms []string }
	l.Decode(&ar)
	if !slices.Contains(ar.Rooms, x.ids["goOnRally"]) {
		t.Fatalf("Node allRooms %v", ar.Rooms)
	}
	if l := x.do("serverCount", nil); l.Get("count") != float64(2) {
		t.Fatalf("Node's serverCount: %s", l.Raw)
	}
}

func TestMixedServerSideEmit(t *testing.T) {
	x := startMixed(t)

	// rally -> Node, with ack.
	replies, err := x.rally.hub.ServerSideEmitWithAck(ctxTimeout(t, 5*time.Second), "ping-srv", "r")
	if err != nil || len(replies) != 1 {
		t.Fatalf("rally -> node: %d %v", len(replies), err)
	}
	var s string
	if replies[0].Decode(&s); s != "pong from node: r" {
		t.Fatalf("answer %q", s)
	}
	// Node -> rally, with ack.
	l := x.do("sseAck", map[string]any{"ev": "ping-srv", "args": []any{"n"}})
	if l.Get("error") != nil || !slices.Equal(anyStrings(l.Get("responses")), []string{"pong from rally: n"}) {
		t.Fatalf("node -> rally: %s", l.Raw)
	}

	// Without ack, binary included, both ways.
	if err := x.rally.hub.ServerSideEmit(ctxTimeout(t, 5*time.Second), "note", "from rally", []byte{1}); err != nil {
		t.Fatal(err)
	}
	x.node.WaitEvent(waitNode, "sse", map[string]any{"ev": "note", "args": []any{"from rally", map[string]any{"$buffer": "01"}}})
	x.do("sse", map[string]any{"ev": "note", "args": []any{"from node", 2}})
	select {
	case args := <-x.serverNotes:
		if len(args) != 2 || args[0] != "from node" || args[1] != float64(2) {
			t.Fatalf("note %v", args)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("rally did not get Node's server-side event")
	}
	// Neither server hears its own.
	x.do("serverCount", nil)
	if n := len(x.serverNotes); n != 0 {
		t.Fatalf("rally heard %d more notes", n)
	}
	for _, l := range x.node.Lines() {
		if l.Event == "sse" && strings.Contains(l.Raw, "from node") {
			t.Fatalf("Node heard its own event: %s", l.Raw)
		}
	}
}

func anyStrings(v any) []string {
	a, _ := v.([]any)
	var out []string
	for _, e := range a {
		s, _ := e.(string)
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

func TestMixedBroadcastWithAck(t *testing.T) {
	x := startMixed(t)
	all := []string{"goOnNode: q", "goOnRally: q", "nodeOnNode: q", "nodeOnRally: q"}

	// From Node: rally reports its client count and forwards its clients'
	// acks; Node's callback gets all four before the timeout.
	start := time.Now()
	l := x.do("emitAck", map[string]any{"ev": "question", "args": []any{"q"}, "timeout": 5000})

	if l.Get("error") != nil || !slices.Equal(anyStrings(l.Get("responses")), all) {
		t.Fatalf("from Node: %s", l.Raw)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("from Node: took %v", d)
	}

	// From rally.
	replies, err := x.rally.hub.EmitWithAck(ctxTimeout(t, 5*time.Second), "question", "q")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range replies {
		var s string
		r.Decode(&s)
		got = append(got, s)
	}
	sort.Strings(got)
	if !slices.Equal(got, all) {
		t.Fatalf("from rally: %v", got)
	}

	// To a room with members on the other server only, both ways; and a
	// server with no member reports zero (Node would time out otherwise).
	x.do("clientJoin", map[string]any{"client": "nodeOnNode", "room": "n"})
	replies, err = x.rally.hub.To("n").EmitWithAck(ctxTimeout(t, 5*time.Second), "question", "q")
	if err != nil || len(replies) != 1 {
		t.Fatalf("rally to room n: %d %v", len(replies), err)
	}
	x.goOnRally.join(t, "r")
	l = x.do("emitAck", map[string]any{"ev": "question", "args": []any{"q"}, "rooms": []string{"r"}, "timeout": 5000})
	if l.Get("error") != nil || !slices.Equal(anyStrings(l.Get("responses")), []string{"goOnRally: q"}) {
		t.Fatalf("Node to room r: %s", l.Raw)
	}
	l = x.do("emitAck", map[string]any{"ev": "question", "args": []any{"q"}, "rooms": []string{"nobody"}, "timeout": 5000})
	if l.Get("error") != nil || len(anyStrings(l.Get("responses"))) != 0 {
		t.Fatalf("Node to nobody: %s", l.Raw)
	}
}

func TestMixedEmitters(t *testing.T) {
	x := startMixed(t)
	x.goOnRally.join(t, "blue")
	x.do("clientJoin", map[string]any{"client": "nodeOnNode", "room": "blue"})

	// Node's emitter reaches rally's clients (and Node's).
	x.do("emitterEmit", map[string]any{"ev": "from-node-emitter", "args": []any{"x", map[string]any{"$buffer": "ff"}}})
	for _, p := range []*peer{x.goOnRally, x.goOnNode} {
		var s string
		var b []byte
		p.ev.Expect(t, "from-node-emitter", &s, &b)
		if s != "x" || !bytes.Equal(b, []byte{0xff}) {
			t.Fatalf("node emitter: %q %v", s, b)
		}
	}
	x.nodeRecv("nodeOnRally", "from-node-emitter", "x", map[string]any{"$buffer": "ff"})
	x.do("emitterEmit", map[string]any{"ev": "emitter-room", "args": []any{"node"}, "rooms": []string{"blue"}})
	expectString(t, x.goOnRally, "emitter-room", "node")

	// rally's emitter reaches Node's clients (and rally's).
	e := redisadapter.NewEmitter(x.redis.Client(t), nil)
	ctx := ctxTimeout(t, 5*time.Second)
	if err := e.Emit(ctx, "from-go-emitter", "y", []byte{0xee}, 3); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"nodeOnNode", "nodeOnRally"} {
		x.nodeRecv(c, "from-go-emitter", "y", map[string]any{"$buffer": "ee"}, 3)
	}
	for _, p := range []*peer{x.goOnRally, x.goOnNode} {
		expectString(t, p, "from-go-emitter", "y")
	}
	if err := e.To("blue").Emit(ctx, "emitter-room", "go"); err != nil {
		t.Fatal(err)
	}
	x.nodeRecv("nodeOnNode", "emitter-room", "go")
	expectString(t, x.goOnRally, "emitter-room", "go")
	if err := e.Except("blue").Volatile().Emit(ctx, "emitter-except", "go"); err != nil {
		t.Fatal(err)
	}
	x.nodeRecv("nodeOnRally", "emitter-except", "go")
	expectString(t, x.goOnNode, "emitter-except", "go")
	if err := e.Emit(ctx, "disconnect"); err == nil {
		t.Fatal("the emitter sent a reserved event")
	}

	// Joins from both emitters, applied by both servers.
	x.do("emitterJoin", map[string]any{"rooms": []string{"blue"}, "join": []string{"from-node-emitter"}})
	if err := e.In("blue").SocketsJoin(ctx, "from-go-emitter"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "joins applied", func() bool {
		rooms := x.goOnRally.rooms(t)
		return slices.Contains(rooms, "from-node-emitter") && slices.Contains(rooms, "from-go-emitter")
	})
	l := x.do("clientRooms", map[string]any{"client": "nodeOnNode"})
	rooms := anyStrings(l.Get("rooms"))
	if !slices.Contains(rooms, "from-node-emitter") || !slices.Contains(rooms, "from-go-emitter") {
		t.Fatalf("nodeOnNode's rooms %v", rooms)
	}
	if err := e.SocketsLeave(ctx, "from-go-emitter"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "leave applied", func() bool { return !slices.Contains(x.goOnRally.rooms(t), "from-go-emitter") })

	// Server-side events from both emitters reach both servers.
	x.do("emitterSse", map[string]any{"ev": "note", "args": []any{"node emitter"}})
	if err := e.ServerSideEmit(ctx, "note", "go emitter"); err != nil {
		t.Fatal(err)
	}
	x.node.WaitEvent(waitNode, "sse", map[string]any{"ev": "note", "args": []any{"go emitter"}})
	x.node.WaitEvent(waitNode, "sse", map[string]any{"ev": "note", "args": []any{"node emitter"}})
	got := map[string]bool{}
	for range 2 {
		select {
		case args := <-x.serverNotes:
			got[fmt.Sprint(args...)] = true
		case <-time.After(5 * time.Second):
			t.Fatalf("rally heard %v", got)
		}
	}
	if !got["node emitter"] || !got["go emitter"] {
		t.Fatalf("rally heard %v", got)
	}

	// Disconnects from both emitters.
	if err := e.In(x.ids["nodeOnNode"]).DisconnectSockets(ctx, false); err != nil {
		t.Fatal(err)
	}
	x.node.WaitEvent(waitNode, "disconnect", map[string]any{"client": "nodeOnNode", "reason": "io server disconnect"})
	x.do("emitterDisconnect", map[string]any{"rooms": []string{x.ids["goOnRally"]}, "close": true})
	select {
	case <-x.goOnRally.c.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("goOnRally was not disconnected by Node's emitter")
	}
}

func TestMixedJoinLeaveDisconnect(t *testing.T) {
	x := startMixed(t)

	// rally makes a Node socket join, then leave.
	if err := x.rally.hub.In(x.ids["nodeOnNode"]).SocketsJoin("green", "teal"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "nodeOnNode in green", func() bool {
		return slices.Contains(anyStrings(x.do("clientRooms", map[string]any{"client": "nodeOnNode"}).Get("rooms")), "green")
	})
	if err := x.rally.hub.In("green").SocketsLeave("teal"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "nodeOnNode out of teal", func() bool {
		return !slices.Contains(anyStrings(x.do("clientRooms", map[string]any{"client": "nodeOnNode"}).Get("rooms")), "teal")
	})

	// Node makes a rally socket join, then leave.
	x.do("join", map[string]any{"rooms": []string{x.ids["goOnRally"]}, "join": []string{"violet", "pink"}})
	eventually(t, 5*time.Second, "goOnRally in violet", func() bool { return slices.Contains(x.goOnRally.rooms(t), "violet") })
	x.do("leave", map[string]any{"rooms": []string{"violet"}, "leave": []string{"pink"}})
	eventually(t, 5*time.Second, "goOnRally out of pink", func() bool { return !slices.Contains(x.goOnRally.rooms(t), "pink") })

	// Disconnects both ways; the others stay.
	if err := x.rally.hub.In(x.ids["nodeOnNode"]).DisconnectSockets(false); err != nil {
		t.Fatal(err)
	}
	x.node.WaitEvent(waitNode, "disconnect", map[string]any{"client": "nodeOnNode", "reason": "io server disconnect"})
	x.do("disconnect", map[string]any{"rooms": []string{x.ids["goOnRally"]}})
	select {
	case <-x.goOnRally.c.Done():
		if r := x.goOnRally.c.Reason(); r != client.ReasonServerDisconnect {
			t.Fatalf("reason %q", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("goOnRally was not disconnected by Node")
	}
	// The survivors still get broadcasts from both sides.
	x.rally.hub.Emit("still", "rally")
	x.do("emit", map[string]any{"ev": "still", "args": []any{"node"}})
	for _, from := range []string{"rally", "node"} {
		x.nodeRecv("nodeOnRally", "still", from)
	}
	expectStrings(t, x.goOnNode, "still", "rally", "node")
	for _, l := range x.node.Lines() {
		if l.Event == "disconnect" && l.Text("client") != "nodeOnNode" {
			t.Fatalf("unexpected disconnect: %s", l.Raw)
		}
	}
}

// The raw bytes rally publishes are the ones Node's notepack writes: the
// broadcast of the section 8 vector, captured from Redis.
func TestMixedWireBytes(t *testing.T) {
	x := startMixed(t)
	s := newSpy(t, x.redis, "socket.io#*")
	x.do("emit", map[string]any{"ev": "hello", "args": []any{1}})
	x.rally.hub.Emit("hello", 1)
	eventually(t, 5*time.Second, "two broadcasts", func() bool { return len(s.messages()) >= 2 })
	msgs := s.messages()
	// Same bytes but the 6-character uid.
	strip := func(p string) string { return p[:2] + p[8:] }
	if strip(msgs[0].Payload) != strip(msgs[1].Payload) {
		t.Fatalf("Node: %x\nrally: %x", msgs[0].Payload, msgs[1].Payload)
	}
}
