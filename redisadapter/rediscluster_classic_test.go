package redisadapter_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/rallyhq/rally"
	"github.com/rallyhq/rally/internal/nodetest"
	"github.com/rallyhq/rally/redisadapter"
	"github.com/rallyhq/rally/sockettest"
	"github.com/redis/go-redis/v9"
)

// cmember is a rally server with the classic adapter on a Redis Cluster.
type cmember struct {
	hub  *rally.Hub
	srv  *sockettest.Server
	node *redisadapter.Node
}

// newClassicOnCluster starts a rally hub with the classic adapter on a
// cluster client of rc or, with replica set, on a client of that one
// replica, where it subscribes (and publishes: PUBLISH on any node reaches
// the whole cluster).
func newClassicOnCluster(t *testing.T, rc *redisCluster, name string, replica string) *cmember {
	t.Helper()
	var cc redis.UniversalClient = redis.NewClusterClient(&redis.ClusterOptions{Addrs: rc.Addrs()})
	if replica != "" {
		cc = redis.NewClient(&redis.Options{Addr: replica})
	}
	t.Cleanup(func() { cc.Close() })
	logger, _ := newLogRecorder(t)
	m := &cmember{node: redisadapter.New(cc, &redisadapter.Options{RequestsTimeout: 3 * time.Second, Logger: logger})}
	m.hub = rally.NewHub(&rally.Options{Adapter: m.node.Adapter})
	m.hub.OnConnect(func(s *rally.Socket) { s.SetData(map[string]any{"server": name}) })
	m.hub.On("join", func(s *rally.Socket, rooms ...string) { s.Join(rooms...) })
	m.hub.OnServerEvent("ping-srv", func(arg string) string { return "pong from " + name + ": " + arg })
	m.srv = sockettest.NewServer(t, m.hub)
	if err := m.node.Ready(ctxTimeout(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m *cmember) dial(t *testing.T) *peer {
	t.Helper()
	c := m.srv.Socket(t, "/", nil)
	p := &peer{c: c, ev: sockettest.Record(c)}
	m.srv.Connect(t, c)
	return p
}

// TestClassicOnRedisCluster runs the classic adapter on a Redis Cluster
// (PUBLISH reaches every node there, masters and replicas): between rally
// servers, one of which subscribes on a replica (as node-redis's cluster
// client may too: it subscribes on a random node), and next to a Node
// server with createAdapter on a redis@4 cluster client. Servers
// subscribed on a replica are counted: PUBSUB NUMSUB is summed over every
// node, not only the masters.
func TestClassicOnRedisCluster(t *testing.T) {
	nodetest.Node(t)
	rc := startRedisCluster(t)
	rc.waitReplicasListed(20 * time.Second) // rally counts on the replicas too
	ctx := ctxTimeout(t, 30*time.Second)
	var replica string
	for _, n := range rc.live() {
		if !rc.masterAddrs(ctx)[n.Addr] {
			replica = n.Addr
			break
		}
	}
	a := newClassicOnCluster(t, rc, "a", "")
	b := newClassicOnCluster(t, rc, "b", replica)
	nd := startClusterNode(t, rc, "classic", "", "socket.io", "node")
	pa, pb := a.dial(t), b.dial(t)
	nd.do("connect", map[string]any{"client": "nodeOnNode", "url": nd.URL})
	eventually(t, 10*time.Second, "3 servers counted by rally", func() bool {
		n, err := a.node.ServerCount(ctx, "/")
		return err == nil && n == 3
	})

	// Broadcasts to everyone and to a room, from each kind of server.
	pb.join(t, "room")
	nd.do("clientJoin", map[string]any{"client": "nodeOnNode", "room": "room"})
	for _, m := range []*cmember{a, b} {
		if err := m.hub.Emit("news", fmt.Sprintf("from rally %p", m)); err != nil {
			t.Fatal(err)
		}
	}
	nd.do("emit", map[string]any{"ev": "news", "args": []any{"from node"}})
	for _, p := range []*peer{pa, pb} {
		expectStrings(t, p, "news", fmt.Sprintf("from rally %p", a), fmt.Sprintf("from rally %p", b), "from node")
	}
	nd.recv("nodeOnNode", "news", fmt.Sprintf("from rally %p", a))
	nd.recv("nodeOnNode", "news", fmt.Sprintf("from rally %p", b))
	if err := a.hub.To("room").Emit("room", "a"); err != nil {
		t.Fatal(err)
	}
	nd.do("emit", map[string]any{"ev": "room", "args": []any{"node"}, "rooms": []string{"room"}})
	expectStrings(t, pb, "room", "a", "node")
	nd.recv("nodeOnNode", "room", "a")

	// Requests from rally reach both other servers, the one subscribed on
	// a replica included.
	socks, err := a.hub.All().FetchSockets(ctx)
	if err != nil || len(socks) != 3 {
		t.Fatalf("fetch: %d sockets, %v", len(socks), err)
	}
	var servers []string
	for _, s := range socks {
		d, _ := s.Data.(map[string]any)
		servers = append(servers, fmt.Sprint(d["server"]))
	}
	slices.Sort(servers)
	if !slices.Equal(servers, []string{"a", "b", "node"}) {
		t.Fatalf("fetched the sockets of %q", servers)
	}
	answers, err := a.hub.ServerSideEmitWithAck(ctx, "ping-srv", "hi")
	var got []string
	for _, r := range answers {
		var s string
		r.Decode(&s)
		got = append(got, s)
	}
	slices.Sort(got)
	if err != nil || !slices.Equal(got, []string{"pong from b: hi", "pong from node: hi"}) {
		t.Fatalf("serverSideEmitWithAck: %q, %v", got, err)
	}
	for _, p := range []*peer{pa, pb} {
		p.c.On("question", func(q string) string { return "go: " + q })
	}
	replies, err := a.hub.EmitWithAck(ctx, "question", "q")
	if err != nil || len(replies) != 3 {
		t.Fatalf("EmitWithAck: %d replies, %v", len(replies), err)
	}
}
