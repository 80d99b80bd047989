package redisadapter_test

import (
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"regexp"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/internal/nodetest"
	"github.com/rallyhq/rally/redisadapter/streams"
	"github.com/rallyhq/rally/sockettest"
)

// nproc is a testdata/interop/streams.js process: a Node server with
// @socket.io/redis-streams-adapter (SERVER=1), or only official clients.
type nproc struct {
	t    *testing.T
	p    *nodetest.Process
	seq  int
	URL  string // the server's, when it has one
	Addr string
}

func startStreamsNode(t *testing.T, r *redisServer, server bool, name string, recovery time.Duration) *nproc {
	t.Helper()
	env := []string{"REDIS_URL=" + r.URL(), "NAME=" + name}
	if server {
		env = append(env, "SERVER=1")
	}
	if recovery > 0 {
		env = append(env, fmt.Sprintf("RECOVERY_MS=%d", recovery.Milliseconds()))
	}
	p := nodetest.Start(t, "streams.js", nodetest.Options{Env: env})
	var ready struct{ Port int }
	if err := p.WaitEvent(60*time.Second, "ready", nil).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	n := &nproc{t: t, p: p}
	if server {
		n.Addr = fmt.Sprintf("127.0.0.1:%d", ready.Port)
		n.URL = "http://" + n.Addr
	}
	return n
}

// do runs a command and returns its answer.
func (n *nproc) do(op string, fields map[string]any) nodetest.Line {
	n.t.Helper()
	n.seq++
	cmd := map[string]any{"op": op, "id": n.seq}
	for k, v := range fields {
		cmd[k] = v
	}
	n.p.Send(cmd)
	id := float64(n.seq)
	l := n.p.WaitLine(waitNode, "the answer to "+op, func(l nodetest.Line) bool {
		return (l.Event == "done" || l.Event == "failed") && l.Get("id") == id
	})
	if l.Event == "failed" {
		n.t.Fatalf("node %s: %s", op, l.Text("error"))
	}
	return l
}

func (n *nproc) recv(client, ev string, args ...any) {
	n.t.Helper()
	if args == nil {
		args = []any{}
	}
	n.p.WaitEvent(waitNode, "recv", map[string]any{"client": client, "ev": ev, "args": args})
}

// received returns the events a client received, in order, from line
// index from on.
func (n *nproc) received(client string, from int) []nodetest.Line {
	var out []nodetest.Line
	for _, l := range n.p.Lines()[from:] {
		if l.Event == "recv" && l.Text("client") == client {
			out = append(out, l)
		}
	}
	return out
}

func (n *nproc) count(client, ev string) int {
	c := 0
	for _, l := range n.received(client, 0) {
		if l.Text("ev") == ev {
			c++
		}
	}
	return c
}

// TestStreamsMixed runs the adapter operations between a rally hub and a
// Node server with @socket.io/redis-streams-adapter, both ways: each has
// an official client (nodeOnRally, nodeOnNode) and a Go client.
func TestStreamsMixed(t *testing.T) {
	nodetest.Node(t)
	r := startRedis(t)
	ms := newStreamsCluster(t, r, 1, &streamsOptions{
		adapter: streams.Options{RequestsTimeout: 3 * time.Second},
		setup: func(m *smember) {
			m.hub.OnConnect(func(s *rally.Socket) {
				var auth struct{ User string }
				s.Handshake().DecodeAuth(&auth)
				s.SetData(map[string]any{"server": "rally", "user": auth.User})
			})
			m.hub.OnServerEvent("ping-srv", func(arg string) string { return "pong from rally: " + arg })
		},
	})
	ra := ms[0]
	nd := startStreamsNode(t, r, true, "node", 0)
	nd.do("connect", map[string]any{"client": "nodeOnNode", "url": nd.URL, "auth": map[string]any{"user": "nodeOnNode"}})
	nodeOnRally := nd.do("connect", map[string]any{"client": "nodeOnRally", "url": ra.srv.URL, "auth": map[string]any{"user": "nodeOnRally"}}).Text("sid")
	goOnRally := ra.dial(t, &client.Options{Auth: map[string]string{"user": "goOnRally"}})
	c := client.New(nd.URL, &client.Options{Auth: map[string]string{"user": "goOnNode"}})
	t.Cleanup(func() { c.Close() })
	goOnNode := &peer{c: c, ev: sockettest.Record(c)}
	if err := c.Connect(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, p := range []*peer{goOnRally, goOnNode} {
		p.c.On("question", func(q string) string { return "go: " + q })
	}
	waitStreams(t, ms, 2, "/")
	if n := nd.do("serverCount", nil).Get("count"); n != 2.0 {
		t.Fatalf("Node counts %v servers", n)
	}
	ctx := ctxTimeout(t, 30*time.Second)

	// Broadcasts to everyone, both ways, binary included.
	if err := ra.hub.Emit("news", "from rally", []byte{1, 2}); err != nil {
		t.Fatal(err)
	}
	nd.do("emit", map[string]any{"ev": "news", "args": []any{"from node", map[string]any{"$buffer": "0304"}}})
	for _, name := range []string{"nodeOnNode", "nodeOnRally"} {
		nd.recv(name, "news", "from rally", map[string]any{"$buffer": "0102"})
		nd.recv(name, "news", "from node", map[string]any{"$buffer": "0304"})
	}
	expectStrings(t, goOnRally, "news", "from rally", "from node")
	expectStrings(t, goOnNode, "news", "from rally", "from node")

	// Rooms and except, both ways: goOnRally and nodeOnNode are in blue.
	goOnRally.join(t, "blue")
	nd.do("clientJoin", map[string]any{"client": "nodeOnNode", "room": "blue"})
	nd.do("emit", map[string]any{"ev": "color", "args": []any{"node"}, "rooms": []string{"blue"}})
	if err := ra.hub.To("blue").Emit("color", "rally"); err != nil {
		t.Fatal(err)
	}
	nd.do("emit", map[string]any{"ev": "notblue", "args": []any{"node"}, "except": []string{"blue"}})
	if err := ra.hub.Except("blue").Emit("notblue", "rally"); err != nil {
		t.Fatal(err)
	}
	expectStrings(t, goOnRally, "color", "node", "rally")
	expectStrings(t, goOnNode, "notblue", "node", "rally")
	for _, from := range []string{"node", "rally"} {
		nd.recv("nodeOnNode", "color", from)
		nd.recv("nodeOnRally", "notblue", from)
	}

	// EmitWithAck across, both ways: every client answers.
	replies, err := ra.hub.EmitWithAck(ctx, "question", "q1")
	if err != nil || len(replies) != 4 {
		t.Fatalf("rally EmitWithAck: %d replies, %v", len(replies), err)
	}
	var acks []string
	for _, rep := range replies {
		var s string
		rep.Decode(&s)
		acks = append(acks, s)
	}
	sort.Strings(acks)
	if want := []string{"go: q1", "go: q1", "nodeOnNode: q1", "nodeOnRally: q1"}; !slices.Equal(acks, want) {
		t.Fatalf("acks %q, want %q", acks, want)
	}
	l := nd.do("emitAck", map[string]any{"ev": "question", "args": []any{"q2"}, "timeout": 5000})
	if l.Get("error") != nil {
		t.Fatalf("Node emitWithAck: %v", l.Get("error"))
	}
	if resp, _ := l.Get("responses").([]any); len(resp) != 4 {
		t.Fatalf("Node emitWithAck responses %v", l.Get("responses"))
	}

	// FetchSockets both ways, with data and rooms.
	socks, err := ra.hub.In("blue").FetchSockets(ctx)
	if err != nil || len(socks) != 2 {
		t.Fatalf("rally fetch: %d %v", len(socks), err)
	}
	for _, s := range socks {
		d, _ := s.Data.(map[string]any)
		if s.ID != goOnRally.c.ID() && (d["server"] != "node" || d["user"] != "nodeOnNode" || !slices.Contains(s.Rooms, "blue")) {
			t.Fatalf("Node's socket: %+v", s.SocketInfo)
		}
	}
	var fetched struct {
		Sockets []struct {
			ID    string
			Rooms []string
			Data  map[string]any
		}
	}
	nd.do("fetch", nil).Decode(&fetched)
	rallySockets := 0
	for _, s := range fetched.Sockets {
		if s.Data["server"] == "rally" {
			rallySockets++
			if s.ID == goOnRally.c.ID() && !slices.Contains(s.Rooms, "blue") {
				t.Fatalf("rally's socket seen by Node: %+v", s)
			}
		}
	}
	if len(fetched.Sockets) != 4 || rallySockets != 2 {
		t.Fatalf("Node fetched %+v", fetched.Sockets)
	}

	// SocketsJoin and SocketsLeave, both ways.
	nd.do("join", map[string]any{"rooms": []string{"blue"}, "join": "green"})
	if err := ra.hub.In("blue").SocketsJoin("teal"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the joins on both servers", func() bool {
		s1, e1 := ra.hub.In("green").FetchSockets(ctx)
		s2, e2 := ra.hub.In("teal").FetchSockets(ctx)
		return e1 == nil && e2 == nil && len(s1) == 2 && len(s2) == 2
	})
	if err := ra.hub.In("green").SocketsLeave("green"); err != nil {
		t.Fatal(err)
	}
	nd.do("leave", map[string]any{"rooms": []string{"teal"}, "leave": "teal"})
	eventually(t, 10*time.Second, "the leaves on both servers", func() bool {
		s1, e1 := ra.hub.In("green").FetchSockets(ctx)
		s2, e2 := ra.hub.In("teal").FetchSockets(ctx)
		return e1 == nil && e2 == nil && len(s1) == 0 && len(s2) == 0
	})

	// ServerSideEmit with ack, both ways.
	answers, err := ra.hub.ServerSideEmitWithAck(ctx, "ping-srv", "hi")
	var answer string
	if err != nil || len(answers) != 1 || answers[0].Decode(&answer) != nil || answer != "pong from node: hi" {
		t.Fatalf("rally serverSideEmitWithAck: %v %v %q", answers, err, answer)
	}
	l = nd.do("sseAck", map[string]any{"ev": "ping-srv", "args": []any{"yo"}})
	if resp, _ := l.Get("responses").([]any); len(resp) != 1 || resp[0] != "pong from rally: yo" {
		t.Fatalf("Node serverSideEmitWithAck: %v %v", l.Get("responses"), l.Get("error"))
	}
	if err := ra.hub.ServerSideEmit(ctx, "note", "n1", 2); err != nil {
		t.Fatal(err)
	}
	nd.p.WaitEvent(waitNode, "sse", map[string]any{"ev": "note", "args": []any{"n1", 2}})

	// DisconnectSockets, both ways.
	nd.do("disconnect", map[string]any{"rooms": []string{goOnRally.c.ID()}})
	select {
	case <-goOnRally.c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("goOnRally was not disconnected by Node")
	}
	if err := ra.hub.In("blue").DisconnectSockets(false); err != nil {
		t.Fatal(err)
	}
	nd.p.WaitEvent(waitNode, "disconnect", map[string]any{"client": "nodeOnNode", "reason": "io server disconnect"})
	if goOnNode.c.Reason() != "" {
		t.Fatalf("goOnNode disconnected: %s", goOnNode.c.Reason())
	}
	_ = nodeOnRally
}

// proxy is a TCP proxy the official client connects to, so that the test
// can send its reconnection to another server: Hold keeps new connections
// waiting; Retarget drops the connections made so far and sends the held
// ones, and all later ones, to another address.
type proxy struct {
	l      net.Listener
	wg     sync.WaitGroup
	mu     sync.Mutex
	target string
	hold   bool
	held   []net.Conn
	conns  map[net.Conn]struct{}
	closed bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l, target: target, conns: make(map[net.Conn]struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				c.Close()
				return
			}
			if p.hold {
				p.held = append(p.held, c)
				p.mu.Unlock()
				continue
			}
			target := p.target
			p.mu.Unlock()
			p.pipe(c, target)
		}
	}()
	t.Cleanup(func() {
		l.Close()
		p.mu.Lock()
		p.closed = true
		for c := range p.conns {
			c.Close()
		}
		for _, c := range p.held {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *proxy) URL() string { return "http://" + p.l.Addr().String() }

func (p *proxy) pipe(c net.Conn, target string) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		up, err := net.DialTimeout("tcp", target, 5*time.Second)
		if err != nil {
			c.Close()
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			up.Close()
			return
		}
		p.conns[c], p.conns[up] = struct{}{}, struct{}{}
		p.mu.Unlock()
		done := make(chan struct{}, 2)
		go func() { io.Copy(up, c); up.Close(); done <- struct{}{} }()
		go func() { io.Copy(c, up); c.Close(); done <- struct{}{} }()
		<-done
		<-done
		p.mu.Lock()
		delete(p.conns, c)
		delete(p.conns, up)
		p.mu.Unlock()
	}()
}

// Hold keeps new connections waiting.
func (p *proxy) Hold() {
	p.mu.Lock()
	p.hold = true
	p.mu.Unlock()
}

// Retarget closes the current connections and sends the held and later
// ones to target.
func (p *proxy) Retarget(target string) {
	p.mu.Lock()
	p.target, p.hold = target, false
	for c := range p.conns {
		c.Close()
	}
	held := p.held
	p.held = nil
	p.mu.Unlock()
	for _, c := range held {
		p.pipe(c, target)
	}
}

// recoveryServer is one side of a recovery test: a rally hub on the
// streams adapter or a Node server with the official adapter.
type recoveryServer struct {
	name string
	addr string
	// emit broadcasts from this server: to everyone, or to rooms.
	emit func(ev string, args []any, rooms []string)
	// disconnected waits until the server saw socket sid disconnect.
	disconnected func(sid string)
}

func rallyRecoveryServer(t *testing.T, r *redisServer, name string, d time.Duration) (*recoveryServer, *smember) {
	gone := make(chan string, 16)
	ms := newStreamsCluster(t, r, 1, &streamsOptions{
		recovery: &rally.Recovery{MaxDisconnectionDuration: d},
		setup: func(m *smember) {
			m.hub.OnConnect(func(s *rally.Socket) {
				if !s.Recovered() {
					var auth struct{ User string }
					s.Handshake().DecodeAuth(&auth)
					s.SetData(map[string]any{"server": name, "user": auth.User})
				}
			})
			m.hub.On("whoami", func(s *rally.Socket) map[string]any {
				return map[string]any{"id": s.ID(), "rooms": s.Rooms(), "data": s.Data(), "recovered": s.Recovered()}
			})
			m.hub.OnDisconnect(func(s *rally.Socket, reason string) { gone <- s.ID() })
		},
	})
	m := ms[0]
	return &recoveryServer{
		name: name,
		addr: m.srv.Listener.Addr().String(),
		emit: func(ev string, args []any, rooms []string) {
			if err := m.hub.To(rooms...).Emit(ev, hexBuffers(args)...); err != nil {
				t.Errorf("%s: emit %s: %v", name, ev, err)
			}
		},
		disconnected: func(sid string) {
			timeout := time.After(waitNode)
			for {
				select {
				case id := <-gone:
					if id == sid {
						return
					}
				case <-timeout:
					t.Fatalf("%s did not see %s disconnect", name, sid)
				}
			}
		},
	}, m
}

func nodeRecoveryServer(t *testing.T, r *redisServer, name string, d time.Duration) *recoveryServer {
	n := startStreamsNode(t, r, true, name, d)
	return &recoveryServer{
		name: name,
		addr: n.Addr,
		emit: func(ev string, args []any, rooms []string) {
			n.do("emit", map[string]any{"ev": ev, "args": args, "rooms": rooms})
		},
		disconnected: func(sid string) {
			n.p.WaitEvent(waitNode, "server-disconnect", map[string]any{"id": sid})
		},
	}
}

// hexBuffers turns the scripts' {"$buffer": hex} into []byte.
func hexBuffers(args []any) []any {
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = a
		if m, ok := a.(map[string]any); ok && len(m) == 1 {
			if h, ok := m["$buffer"].(string); ok {
				if b, err := hex.DecodeString(h); err == nil {
					out[i] = b
				}
			}
		}
	}
	return out
}

var offsetRE = regexp.MustCompile(`^[0-9]+-[0-9]+$`)

// TestStreamsRecoveryAcrossServers: the official client, connected to
// server A with recovery on, loses its transport; server B broadcasts to
// everyone, to the client's room, to its id (and to others); the client
// reconnects to B and recovers its id, rooms and data, and gets each
// missed event once, in order, with its offset. Node→Node is the
// reference the others match.
func TestStreamsRecoveryAcrossServers(t *testing.T) {
	nodetest.Node(t)
	for _, pair := range []struct{ a, b string }{{"rally", "rally"}, {"rally", "node"}, {"node", "rally"}, {"node", "node"}} {
		t.Run(pair.a+"→"+pair.b, func(t *testing.T) {
			r := startRedis(t)
			servers := make([]*recoveryServer, 2)
			for i, kind := range []string{pair.a, pair.b} {
				name := fmt.Sprintf("%s-%c", kind, 'A'+i)
				if kind == "rally" {
					servers[i], _ = rallyRecoveryServer(t, r, name, time.Minute)
				} else {
					servers[i] = nodeRecoveryServer(t, r, name, time.Minute)
				}
			}
			checkRecovery(t, r, servers[0], servers[1], true)
		})
	}
}

// checkRecovery runs the scenario from a to b; when recovered is false,
// the client must get a new socket and none of the missed events.
func checkRecovery(t *testing.T, r *redisServer, a, b *recoveryServer, recovered bool) (cl *nproc, sid string) {
	t.Helper()
	rdb := r.Client(t)
	ctx := ctxTimeout(t, 60*time.Second)
	cl = startStreamsNode(t, r, false, "clients", 0)
	px := newProxy(t, a.addr)
	sid = cl.do("connect", map[string]any{"client": "c", "url": px.URL(), "auth": map[string]any{"user": "u1"}}).Text("sid")
	cl.do("clientJoin", map[string]any{"client": "c", "room": "r1"})
	// An event with an offset, for the client to present.
	a.emit("first", []any{1}, nil)
	cl.p.WaitEvent(waitNode, "recv", map[string]any{"client": "c", "ev": "first"})
	first := cl.received("c", 0)
	if args, _ := first[len(first)-1].Get("args").([]any); len(args) != 2 || !offsetRE.MatchString(fmt.Sprint(args[1])) {
		t.Fatalf("first: args %v, want [1, offset]", args)
	}

	px.Hold()
	mark := len(cl.p.Lines())
	cl.do("cut", map[string]any{"client": "c"})
	a.disconnected(sid)

	before, err := rdb.XLen(ctx, "socket.io").Result()
	if err != nil {
		t.Fatal(err)
	}
	b.emit("m1", []any{"all"}, nil)
	b.emit("m2", []any{"room", map[string]any{"$buffer": "0a0b"}}, []string{"r1"})
	b.emit("m3", []any{"id"}, []string{sid})
	b.emit("other", []any{"not for c"}, []string{"r2"})
	b.emit("m4", []any{"all again"}, nil)
	eventually(t, 10*time.Second, "the broadcasts in the stream", func() bool {
		n, err := rdb.XLen(ctx, "socket.io").Result()
		return err == nil && n >= before+5
	})
	px.Retarget(b.addr)

	var l nodetest.Line
	cl.p.WaitFor(waitNode, "the reconnection", func(lines []nodetest.Line) bool {
		for _, x := range lines[mark:] {
			if x.Event == "connect" && x.Text("client") == "c" {
				l = x
				return true
			}
		}
		return false
	})
	if !recovered {
		if l.Get("recovered") == true || l.Text("id") == sid {
			t.Fatalf("reconnection %s: want a new socket", l.Raw)
		}
		b.emit("after", []any{"x"}, nil)
		cl.p.WaitEvent(waitNode, "recv", map[string]any{"client": "c", "ev": "after"})
		for _, e := range cl.received("c", mark) {
			if ev := e.Text("ev"); ev != "after" {
				t.Errorf("not recovered, yet got %s", e.Raw)
			}
		}
		return cl, sid
	}
	if l.Get("recovered") != true || l.Text("id") != sid {
		t.Fatalf("reconnection %s: want recovered %s", l.Raw, sid)
	}
	var who struct {
		Info struct {
			ID        string
			Rooms     []string
			Data      map[string]any
			Recovered bool
		}
		Recovered bool
	}
	cl.do("whoami", map[string]any{"client": "c"}).Decode(&who)
	rooms := who.Info.Rooms
	sort.Strings(rooms)
	wantRooms := []string{"r1", sid}
	sort.Strings(wantRooms)
	if who.Info.ID != sid || !who.Info.Recovered || !who.Recovered || !slices.Equal(rooms, wantRooms) ||
		who.Info.Data["server"] != a.name || who.Info.Data["user"] != "u1" {
		t.Fatalf("recovered socket on %s: %+v, want id %s rooms %v data from %s", b.name, who, sid, wantRooms, a.name)
	}
	// A live event after, then every missed one exactly once, in order.
	b.emit("after", []any{"live"}, []string{sid})
	cl.p.WaitEvent(waitNode, "recv", map[string]any{"client": "c", "ev": "after"})
	var got []string
	for _, e := range cl.received("c", mark) {
		args, _ := e.Get("args").([]any)
		ev := e.Text("ev")
		got = append(got, ev)
		if len(args) == 0 || !offsetRE.MatchString(fmt.Sprint(args[len(args)-1])) {
			t.Errorf("%s from %s: args %v, want an offset last", ev, b.name, args)
		}
		if ev == "m2" && (len(args) != 3 || fmt.Sprint(args[1]) != "map[$buffer:0a0b]") {
			t.Errorf("m2: args %v", args)
		}
	}
	if want := []string{"m1", "m2", "m3", "m4", "after"}; !slices.Equal(got, want) {
		t.Fatalf("events after the reconnection: %q, want %q", got, want)
	}
	return cl, sid
}

// TestStreamsRecoveryExpired: a session kept for less than the
// disconnection lasts is gone from Redis (PX), and the client gets a new
// socket without the events it missed.
func TestStreamsRecoveryExpired(t *testing.T) {
	nodetest.Node(t)
	for _, pair := range []struct{ a, b string }{{"rally", "rally"}, {"node", "rally"}, {"rally", "node"}} {
		t.Run(pair.a+"→"+pair.b, func(t *testing.T) {
			r := startRedis(t)
			rdb := r.Client(t)
			servers := make([]*recoveryServer, 2)
			for i, kind := range []string{pair.a, pair.b} {
				name := fmt.Sprintf("%s-%c", kind, 'A'+i)
				if kind == "rally" {
					servers[i], _ = rallyRecoveryServer(t, r, name, 500*time.Millisecond)
				} else {
					servers[i] = nodeRecoveryServer(t, r, name, 500*time.Millisecond)
				}
			}
			// Wrap a's disconnect wait: once seen, wait for Redis to
			// expire the session.
			wait := servers[0].disconnected
			servers[0].disconnected = func(sid string) {
				wait(sid)
				// Node persists without waiting: the key may appear
				// after the disconnect event.
				ctx := ctxTimeout(t, 10*time.Second)
				since, seen := time.Now(), false
				eventually(t, 10*time.Second, "the session to expire", func() bool {
					keys, err := rdb.Keys(ctx, "sio:session:*").Result()
					seen = seen || len(keys) > 0
					return err == nil && len(keys) == 0 && (seen || time.Since(since) > 2*time.Second)
				})
			}
			checkRecovery(t, r, servers[0], servers[1], false)
		})
	}
}

// TestStreamsRecoveryRedisRestart: Redis (without persistence, as the
// tests run it) is stopped and started again on the same port while the
// client is away. Sessions and the stream live in Redis memory, so both
// are gone: the client gets a new socket, without the events it missed.
// Both rally servers resume: the reader goes on after the last entry it
// read, the subscriptions are restored, and broadcasts cross again.
func TestStreamsRecoveryRedisRestart(t *testing.T) {
	nodetest.Node(t)
	r := startRedis(t)
	a, ma := rallyRecoveryServer(t, r, "rally-A", time.Minute)
	b, mb := rallyRecoveryServer(t, r, "rally-B", time.Minute)
	goOnA := ma.dial(t, nil)
	cl := startStreamsNode(t, r, false, "clients", 0)
	px := newProxy(t, a.addr)
	sid := cl.do("connect", map[string]any{"client": "c", "url": px.URL()}).Text("sid")
	a.emit("first", []any{1}, nil)
	cl.p.WaitEvent(waitNode, "recv", map[string]any{"client": "c", "ev": "first"})
	px.Hold()
	mark := len(cl.p.Lines())
	cl.do("cut", map[string]any{"client": "c"})
	a.disconnected(sid)
	rdb := r.Client(t)
	ctx := ctxTimeout(t, 60*time.Second)
	if keys, err := rdb.Keys(ctx, "sio:session:*").Result(); err != nil || len(keys) != 1 {
		t.Fatalf("sessions before the restart: %v %v", keys, err)
	}

	r.Stop()
	// While Redis is down, a broadcast fails, and is still delivered here.
	if err := mb.hub.Emit("during", 1); err == nil {
		t.Error("a broadcast while Redis is down reported no error")
	}
	r.Start()
	start := time.Now()
	// B's broadcasts reach A's client again once both are reconnected.
	eventually(t, 30*time.Second, "a broadcast from B to reach A's client", func() bool {
		mb.hub.Emit("ping", 1)
		return goOnA.ev.Count("ping") > 0
	})
	t.Logf("broadcasts cross again %v after Redis answers", time.Since(start).Round(10*time.Millisecond))
	if keys, err := rdb.Keys(ctx, "sio:session:*").Result(); err != nil || len(keys) != 0 {
		t.Fatalf("sessions after the restart: %v %v", keys, err)
	}
	b.emit("missed", []any{"x"}, nil)
	px.Retarget(b.addr)
	var l nodetest.Line
	cl.p.WaitFor(waitNode, "the reconnection", func(lines []nodetest.Line) bool {
		for _, x := range lines[mark:] {
			if x.Event == "connect" && x.Text("client") == "c" {
				l = x
				return true
			}
		}
		return false
	})
	if l.Get("recovered") == true || l.Text("id") == sid {
		t.Fatalf("reconnection %s: the session was in Redis memory, want a new socket", l.Raw)
	}
	// The new socket on B and the Go client on A both get A's broadcast.
	a.emit("after", []any{"y"}, nil)
	cl.p.WaitEvent(waitNode, "recv", map[string]any{"client": "c", "ev": "after"})
	expectString(t, goOnA, "after", "y")
	if n := cl.count("c", "missed"); n != 0 {
		t.Fatalf("missed delivered %d times to a new socket", n)
	}
	if len(ma.logs.Lines("WARN", "reading the stream")) == 0 && len(ma.logs.Lines("WARN", "connecting the stream reader")) == 0 {
		t.Errorf("the reader logged no Redis error: %q", ma.logs.All())
	}
}
