package redisadapter_test

import (
	"fmt"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/client"
	"github.com/rallyhq/rally/internal/nodetest"
	"github.com/rallyhq/rally/redisadapter/sharded"
	"github.com/rallyhq/rally/sockettest"
)

// startClusterNode starts testdata/interop/sharded.js: a Node server with
// @socket.io/redis-adapter on a redis@4 cluster client of rc (adapter
// "sharded" or "classic", mode its subscriptionMode, prefix its channel
// prefix or key), with no server when adapter is "".
func startClusterNode(t *testing.T, rc *redisCluster, adapter string, mode sharded.SubscriptionMode, prefix, name string) *shnode {
	t.Helper()
	env := []string{"REDIS_NODES=" + rc.URLs(), "NAME=" + name, "PREFIX=" + prefix, "MODE=" + string(mode), "ADAPTER=" + adapter}
	if adapter != "" {
		env = append(env, "SERVER=1")
	}
	p := nodetest.Start(t, "sharded.js", nodetest.Options{Env: env})
	var ready struct {
		Port int
		UID  string
	}
	if err := p.WaitEvent(60*time.Second, "ready", nil).Decode(&ready); err != nil {
		t.Fatal(err)
	}
	n := &shnode{nproc: &nproc{t: t, p: p}, UID: ready.UID}
	if adapter != "" {
		n.Addr = fmt.Sprintf("127.0.0.1:%d", ready.Port)
		n.URL = "http://" + n.Addr
	}
	return n
}

// shnode is a sharded.js process; UID is its adapter's of "/" when it
// has a server.
type shnode struct {
	*nproc
	UID string
}

// TestShardedMixed runs every adapter operation between a rally hub on the
// sharded adapter and a Node server with createShardedAdapter on a redis@4
// cluster client, both ways, on a Redis Cluster, in each subscription
// mode. Each server has an official client (nodeOnRally, nodeOnNode) and
// a Go client (goOnRally, goOnNode).
func TestShardedMixed(t *testing.T) {
	nodetest.Node(t)
	rc := startRedisCluster(t)
	for _, mode := range []sharded.SubscriptionMode{sharded.Static, sharded.Dynamic, sharded.DynamicPrivate} {
		t.Run(string(mode), func(t *testing.T) { testShardedMixed(t, rc, mode) })
	}
}

func testShardedMixed(t *testing.T, rc *redisCluster, mode sharded.SubscriptionMode) {
	prefix := "mixed-" + string(mode)
	ch := func(room string) string { return prefix + "#/#" + room + "#" }
	ms := newShardedCluster(t, rc, 1, &shardedOptions{
		adapter: sharded.Options{ChannelPrefix: prefix, SubscriptionMode: mode, RequestsTimeout: 3 * time.Second},
		setup: func(m *shmember) {
			m.hub.OnConnect(func(s *rally.Socket) {
				var auth struct{ User string }
				s.Handshake().DecodeAuth(&auth)
				s.SetData(map[string]any{"server": "rally", "user": auth.User})
			})
			m.hub.OnServerEvent("ping-srv", func(arg string) string { return "pong from rally: " + arg })
		},
	})
	ra := ms[0]
	cc := ra.rdb
	nd := startClusterNode(t, rc, "sharded", mode, prefix, "node")
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
	waitShardSubs(t, cc, prefix+"#/#", 2)
	if n := nd.do("serverCount", nil).Get("count"); n != 2.0 {
		t.Fatalf("Node counts %v servers", n)
	}
	if n, err := ra.node.ServerCount(ctxTimeout(t, 5*time.Second), "/"); err != nil || n != 2 {
		t.Fatalf("rally counts %d servers (%v)", n, err)
	}
	ctx := ctxTimeout(t, 60*time.Second)

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

	// Rooms on two shards: goOnRally is in rooms[0], nodeOnNode in
	// rooms[1]; in the dynamic modes each has one subscriber, its server.
	rooms := roomsOnShards(t, rc, prefix, 2)
	goOnRally.join(t, rooms[0])
	nd.do("clientJoin", map[string]any{"client": "nodeOnNode", "room": rooms[1]})
	subs := map[sharded.SubscriptionMode]int{sharded.Dynamic: 1, sharded.DynamicPrivate: 1}[mode]
	waitShardSubs(t, cc, ch(rooms[0]), subs)
	waitShardSubs(t, cc, ch(rooms[1]), subs)
	// In dynamic-private mode each socket id has its channel too.
	waitShardSubs(t, cc, ch(goOnRally.c.ID()), map[sharded.SubscriptionMode]int{sharded.DynamicPrivate: 1}[mode])
	waitShardSubs(t, cc, ch(goOnNode.c.ID()), map[sharded.SubscriptionMode]int{sharded.DynamicPrivate: 1}[mode])
	for _, room := range rooms {
		nd.do("emit", map[string]any{"ev": "color", "args": []any{"node " + room}, "rooms": []string{room}})
		if err := ra.hub.To(room).Emit("color", "rally "+room); err != nil {
			t.Fatal(err)
		}
	}
	expectStrings(t, goOnRally, "color", "node "+rooms[0], "rally "+rooms[0])
	for _, from := range []string{"node ", "rally "} {
		nd.recv("nodeOnNode", "color", from+rooms[1])
	}
	nd.do("emit", map[string]any{"ev": "notin", "args": []any{"node"}, "except": []string{rooms[0]}})
	if err := ra.hub.Except(rooms[1]).Emit("notin", "rally"); err != nil {
		t.Fatal(err)
	}
	expectStrings(t, goOnRally, "notin", "rally")
	expectStrings(t, goOnNode, "notin", "node", "rally")
	nd.recv("nodeOnNode", "notin", "node")
	nd.recv("nodeOnRally", "notin", "node")
	nd.recv("nodeOnRally", "notin", "rally")
	// To a socket of the other server, by id, both ways.
	nd.do("emit", map[string]any{"ev": "direct", "args": []any{"node"}, "rooms": []string{goOnRally.c.ID()}})
	if err := ra.hub.To(goOnNode.c.ID()).Emit("direct", "rally"); err != nil {
		t.Fatal(err)
	}
	expectString(t, goOnRally, "direct", "node")
	expectString(t, goOnNode, "direct", "rally")
	shfence(t, ra, goOnRally, goOnNode)
	if n := goOnNode.ev.Count("color"); n != 0 {
		t.Errorf("goOnNode got %d room broadcasts, want 0", n)
	}
	if n := nd.count("nodeOnRally", "color"); n != 0 {
		t.Errorf("nodeOnRally got %d room broadcasts, want 0", n)
	}
	if n := nd.count("nodeOnNode", "notin"); n != 1 {
		t.Errorf("nodeOnNode got %d broadcasts except its room, want 1", n)
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
	if resp, _ := l.Get("responses").([]any); l.Get("error") != nil || len(resp) != 4 {
		t.Fatalf("Node emitWithAck: %v %v", l.Get("responses"), l.Get("error"))
	}

	// FetchSockets both ways, with data and rooms.
	socks, err := ra.hub.In(rooms[1]).FetchSockets(ctx)
	if err != nil || len(socks) != 1 {
		t.Fatalf("rally fetch in %s: %d %v", rooms[1], len(socks), err)
	}
	if d, _ := socks[0].Data.(map[string]any); d["server"] != "node" || d["user"] != "nodeOnNode" || !slices.Contains(socks[0].Rooms, rooms[1]) {
		t.Fatalf("Node's socket: %+v", socks[0])
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
			if s.ID == goOnRally.c.ID() && !slices.Contains(s.Rooms, rooms[0]) {
				t.Fatalf("rally's socket seen by Node: %+v", s)
			}
		}
	}
	if len(fetched.Sockets) != 4 || rallySockets != 2 {
		t.Fatalf("Node fetched %+v", fetched.Sockets)
	}

	// SocketsJoin from Node puts a rally socket in a new room: in the
	// dynamic modes rally subscribes to its channel, and a broadcast from
	// Node to it arrives. And back: rally joins Node's socket.
	nd.do("join", map[string]any{"rooms": []string{nodeOnRally}, "join": "fromnode"})
	if err := ra.hub.In(goOnNode.c.ID()).SocketsJoin("fromrally"); err != nil {
		t.Fatal(err)
	}
	waitShardSubs(t, cc, ch("fromnode"), subs)
	waitShardSubs(t, cc, ch("fromrally"), subs)
	nd.do("emit", map[string]any{"ev": "joined", "args": []any{"node"}, "rooms": []string{"fromnode"}})
	if err := ra.hub.To("fromrally").Emit("joined", "rally"); err != nil {
		t.Fatal(err)
	}
	nd.recv("nodeOnRally", "joined", "node")
	expectString(t, goOnNode, "joined", "rally")
	if err := ra.hub.In("fromnode").SocketsLeave("fromnode"); err != nil {
		t.Fatal(err)
	}
	nd.do("leave", map[string]any{"rooms": []string{"fromrally"}, "leave": "fromrally"})
	waitShardSubs(t, cc, ch("fromnode"), 0)
	waitShardSubs(t, cc, ch("fromrally"), 0)

	// ServerSideEmit with ack, both ways, and without.
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
	if err := ra.hub.In(rooms[1]).DisconnectSockets(false); err != nil {
		t.Fatal(err)
	}
	nd.p.WaitEvent(waitNode, "disconnect", map[string]any{"client": "nodeOnNode", "reason": "io server disconnect"})
	if goOnNode.c.Reason() != "" {
		t.Fatalf("goOnNode disconnected: %s", goOnNode.c.Reason())
	}
	// Their rooms' channels are released by both servers.
	waitShardSubs(t, cc, ch(rooms[0]), 0)
	waitShardSubs(t, cc, ch(rooms[1]), 0)
}
